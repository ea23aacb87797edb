"""The rules of the contract, run over normalised frames: DataFrames in, problems out.

Every column rule is derived from ``schema`` (required, types, choices, keys); the cross-sheet
rules (references, 记录编号 form, 责任单位, settings) and plausibility warnings follow. Rules are
vectorised over whole columns; Python only loops over the rows that have a problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import date

import numpy as np
import pandas as pd

from . import schema
from .book.read import settings_from_frame
from .normalise import (
    ROW,
    format_number,
    normalise_frames,
    parse_number_text,
    programme_year,
    row_keys,
    text_of,
)
from .problems import Problem, Validation

ERROR, WARNING = schema.LEVEL_ERROR, schema.LEVEL_WARNING
STATUS_DONE = "已完成"
assert STATUS_DONE in schema.STATUSES
# An 活动内容 shorter than this says too little to be checked later.
MIN_ACTIVITY_CHARS = 4
RECORD_ID = re.compile(r"^(?P<committee>.+)-(?P<number>\d{4})$")
RECORD_ID_LOOSE = re.compile(r"^(?P<committee>[A-Za-z]\w*?)\s*[-_—－]?\s*(?P<number>\d{1,4})$")
YEAR_RANGE = (2000, 2100)


def validate(frames: dict[str, pd.DataFrame], settings: dict | None = None,
             as_of: date | None = None) -> Validation:
    """Normalise ``frames`` (raw, as read) and check every rule; ``as_of`` defaults to today.

    ``settings`` is the 设置 dict (``Workbook.settings``); read from the 设置 frame when omitted.
    """
    if settings is None:
        settings = settings_from_frame(frames.get(schema.SETTINGS.name))
    typed, problems = normalise_frames(frames, settings)
    rules = _Rules(frames, typed, settings, as_of or date.today())
    problems = problems + rules.run()
    return Validation(typed, sort_problems(problems))


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """Contract sheet order, then row, then column order (sheet-level problems first)."""
    sheet_order = {s.name: i for i, s in enumerate(schema.SHEETS)}

    def key(p: Problem) -> tuple:
        sheet = schema.SHEETS_BY_NAME.get(p.sheet)
        headers = sheet.headers if sheet else []
        column = headers.index(p.column) if p.column in headers else len(headers)
        return (sheet_order.get(p.sheet, len(sheet_order)), p.row or 0, column)

    return sorted(problems, key=key)


class _Rules:
    """One validation run: the frames, the settings and the problems found so far."""

    def __init__(self, raw: dict[str, pd.DataFrame], typed: dict[str, pd.DataFrame],
                 settings: dict, as_of: date):
        self.raw = raw
        self.typed = typed
        self.settings = settings
        self.as_of = as_of
        self.year = programme_year(settings)
        self.problems: list[Problem] = []
        self.keys = {
            s.name: row_keys(typed[s.name], s) for s in schema.INPUT_SHEETS if s.name in typed
        }

    def run(self) -> list[Problem]:
        for sheet in schema.INPUT_SHEETS:
            if sheet.name not in self.typed:
                continue
            self.column_rules(sheet)
            self.unique_keys(sheet)
        self.record_ids()
        self.references()
        self.units()
        self.settings_rows()
        self.plausibility()
        self.article_records()
        return self.problems

    # ------------------------------------------------------------ helpers

    def emit(self, sheet: schema.Sheet, mask: pd.Series | np.ndarray, column: schema.Column,
             level: str, code: str, message: Callable[[object], str],
             suggestion: Callable[[object], str] | str = "") -> None:
        """One problem per row where ``mask`` holds; messages built from the row's index label."""
        frame = self.typed[sheet.name]
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        keys = self.keys[sheet.name]
        for index in frame.index[mask]:
            self.problems.append(Problem(
                sheet.name, int(frame.at[index, ROW]), column.header, keys[index], level, code,
                message(index), suggestion(index) if callable(suggestion) else suggestion,
            ))

    def raw_text(self, sheet: schema.Sheet, key: str, index) -> str:
        return text_of(self.raw[sheet.name].at[index, key]) or ""

    # ------------------------------------------------------------ per column

    def column_rules(self, sheet: schema.Sheet) -> None:
        raw, typed = self.raw[sheet.name], self.typed[sheet.name]
        for col in sheet.columns:
            if col.key not in typed.columns:
                continue
            values = typed[col.key]
            if col.required:
                self.emit(sheet, raw[col.key].isna(), col, ERROR, "required",
                          lambda i, c=col: f"{c.header}未填写", _fill_hint(col))
            if col.choices:
                bad = values.notna() & ~values.isin(col.choices)
                choices = "、".join(col.choices)
                self.emit(sheet, bad, col, ERROR, "bad_choice",
                          lambda i, c=col, v=values, ch=choices: f"{c.header}“{v[i]}”不是可选值（{ch}）",
                          lambda i, c=col, v=values: _suggest_choice(v[i], c.choices))
            if col.type == "integer":
                fraction = values.notna() & (values % 1 != 0)
                self.emit(sheet, fraction, col, ERROR, "not_integer",
                          lambda i, c=col, v=values: f"{c.header}应为整数，现为 {format_number(v[i])}",
                          "请填写整数")
            if col.type in ("integer", "number"):
                negative = values.notna() & (values < 0)
                level = ERROR if col.type == "integer" else WARNING
                self.emit(sheet, negative, col, level, "negative",
                          lambda i, c=col, v=values: f"{c.header}为负数（{format_number(v[i])}）",
                          "请填写不小于 0 的数")

    def unique_keys(self, sheet: schema.Sheet) -> None:
        if not sheet.key:
            return
        keys = self.keys[sheet.name]
        frame = self.typed[sheet.name]
        present = keys.notna()
        repeated = present & keys.duplicated(keep="first")
        if not repeated.any():
            return
        first_row = frame[ROW][present & ~keys.duplicated(keep="first")]
        first_by_key = dict(zip(keys[first_row.index], first_row))
        column = sheet.column(sheet.key[0])
        names = "+".join(sheet.header_of(k) for k in sheet.key)
        self.emit(sheet, repeated, column, ERROR, "duplicate_key",
                  lambda i: f"{names}“{keys[i]}”重复，与第 {first_by_key[keys[i]]} 行相同",
                  f"每行的{names}应唯一，请修改或删除重复行")

    # ------------------------------------------------------------ cross-sheet

    def record_ids(self) -> None:
        sheet = schema.LEDGER
        if sheet.name not in self.typed:
            return
        ledger = self.typed[sheet.name]
        ids, committees = ledger["record_id"], ledger["committee_id"]
        parts = ids.str.extract(RECORD_ID.pattern) if ids.notna().any() else None
        col = sheet.column("record_id")
        if parts is None:
            return
        malformed = ids.notna() & parts["committee"].isna()
        self.emit(sheet, malformed, col, ERROR, "bad_record_id",
                  lambda i: f"记录编号“{ids[i]}”格式不对，应为“居委会编号-4位数字”，如 C01-0007",
                  lambda i: _suggest_record_id(ids[i], committees[i]))
        mismatch = parts["committee"].notna() & committees.notna() & (parts["committee"] != committees)
        self.emit(sheet, mismatch, col, ERROR, "record_id_committee",
                  lambda i: f"记录编号“{ids[i]}”与居委会编号“{committees[i]}”不符",
                  "记录编号应以本行的居委会编号开头；如居委会填错，请改正居委会编号")

    def references(self) -> None:
        projects = self._lookup(schema.PROJECTS)
        committees = self._lookup(schema.COMMITTEES)
        for sheet in (schema.LEDGER, schema.TARGETS):
            if sheet.name not in self.typed:
                continue
            frame = self.typed[sheet.name]
            for key, known, code, what in (
                ("project_id", projects, "unknown_project", "项目"),
                ("committee_id", committees, "unknown_committee", "居委会"),
            ):
                if known is None:
                    continue
                values = frame[key]
                bad = values.notna() & ~values.isin(list(known))
                col = sheet.column(key)
                suggest = _Suggester(known)
                self.emit(sheet, bad, col, ERROR, code,
                          lambda i, v=values, c=col, w=what: f"{c.header}“{v[i]}”在“{w}”表中不存在",
                          lambda i, v=values, s=suggest: s(v[i]))

    def _lookup(self, sheet: schema.Sheet) -> dict[str, str] | None:
        """Valid codes of a config sheet → their names (None when the sheet was not read)."""
        frame = self.typed.get(sheet.name)
        if frame is None:
            return None
        id_key = sheet.key[0]
        rows = frame[frame[id_key].notna()]
        return dict(zip(rows[id_key], rows["name"].fillna("")))

    def units(self) -> None:
        sheet = schema.PROJECTS
        if sheet.name not in self.typed:
            return
        units = self.typed[sheet.name]["units"]
        empty_part = units.notna() & units.map(
            lambda u: u is not None and any(not p.strip() for p in u.split(schema.UNIT_SEPARATOR)))
        self.emit(sheet, empty_part, sheet.column("units"), ERROR, "empty_unit",
                  lambda i: f"责任单位“{units[i]}”中有空的单位名",
                  f"多个单位用一个顿号“{schema.UNIT_SEPARATOR}”分隔，如：发展办{schema.UNIT_SEPARATOR}服务办")

    def settings_rows(self) -> None:
        sheet = schema.SETTINGS
        raw = self.raw.get(sheet.name)
        if raw is None:
            return
        typed = self.typed[sheet.name]
        items = typed["item"]
        value_col, item_col = sheet.column("value"), sheet.column("item")
        known_items = list(schema.SETTINGS_BY_ITEM)
        unknown = items.notna() & ~items.isin(known_items)
        self.emit(sheet, unknown, item_col, WARNING, "unknown_setting",
                  lambda i: f"设置项“{items[i]}”不是已知的设置，将被忽略",
                  lambda i: _suggest_choice(items[i], tuple(known_items)))
        bad_reasons: dict = {}
        for index, item, value in zip(typed.index, items, raw["value"]):
            setting = schema.SETTINGS_BY_ITEM.get(item) if item else None
            if setting is None:
                continue
            reason = _setting_problem(setting, value)
            if reason:
                bad_reasons[index] = reason
        bad = typed.index.isin(list(bad_reasons))
        self.emit(sheet, bad, value_col, ERROR, "bad_setting",
                  lambda i: f"设置“{items[i]}”的值“{self.raw_text(sheet, 'value', i)}”{bad_reasons[i]}",
                  lambda i: schema.SETTINGS_BY_ITEM[items[i]].help)
        year_item = schema.SETTINGS_BY_KEY["year"].item
        year_rows = typed.index[items == year_item]
        if self.year is None and not any(i in bad_reasons for i in year_rows):
            blank = typed.index.isin(year_rows)
            message = (f"“{year_item}”未填写：只写了月日的日期无法补全年份，"
                       "也无法检查日期是否在试点年度内")
            if blank.any():
                self.emit(sheet, blank, value_col, WARNING, "missing_year", lambda i: message,
                          "请填写试点年度，如 2020")
            else:
                self.problems.append(Problem(sheet.name, None, value_col.header, None, WARNING,
                                             "missing_year", message, "请填写试点年度，如 2020"))

    # ------------------------------------------------------------ plausibility

    def plausibility(self) -> None:
        sheet = schema.LEDGER
        if sheet.name not in self.typed:
            return
        ledger = self.typed[sheet.name]
        dates = ledger["date"]
        col = sheet.column("date")
        today = pd.Timestamp(self.as_of)
        future = dates.notna() & (dates > today)
        self.emit(sheet, future, col, WARNING, "future_date",
                  lambda i: f"日期 {dates[i].date().isoformat()} 晚于今天（{self.as_of.isoformat()}）",
                  "请核对日期")
        if self.year is not None:
            outside = dates.notna() & ~future & (dates.dt.year != self.year)
            self.emit(sheet, outside, col, WARNING, "outside_year",
                      lambda i: f"日期 {dates[i].date().isoformat()} 不在试点年度 {self.year} 年内",
                      "请核对年份")
        self._above_target(ledger)
        quantity, status = ledger["quantity"], ledger["status"]
        done_zero = (status == STATUS_DONE) & (quantity == 0)
        self.emit(sheet, done_zero, sheet.column("quantity"), WARNING, "done_without_quantity",
                  lambda i: f"状态为“{STATUS_DONE}”，但完成数量为 0", "请填写完成数量，或改正状态")
        activity = ledger["activity"]
        short = activity.notna() & (activity.str.len() < MIN_ACTIVITY_CHARS)
        self.emit(sheet, short, sheet.column("activity"), WARNING, "short_activity",
                  lambda i: f"活动内容“{activity[i]}”过短，看不出做了什么",
                  f"请写明活动内容（至少 {MIN_ACTIVITY_CHARS} 个字）")
        self._probable_duplicates(ledger)

    def _above_target(self, ledger: pd.DataFrame) -> None:
        projects = self.typed.get(schema.PROJECTS.name)
        if projects is None:
            return
        street = projects.drop_duplicates("project_id").set_index("project_id")["target"]
        target = ledger["project_id"].map(street)
        scope = pd.Series("项目全年目标值", index=ledger.index)
        targets = self.typed.get(schema.TARGETS.name)
        if targets is not None and len(targets):
            per = targets.drop_duplicates(["project_id", "committee_id"]).set_index(
                ["project_id", "committee_id"])["target"]
            pairs = pd.MultiIndex.from_arrays([ledger["project_id"], ledger["committee_id"]])
            own = pd.Series(per.reindex(pairs).to_numpy(), index=ledger.index)
            scope = scope.where(own.isna(), "该居委会在该项目上的目标")
            target = own.fillna(target)
        quantity = ledger["quantity"]
        above = quantity.notna() & target.notna() & (target > 0) & (quantity > target)
        sheet = schema.LEDGER
        self.emit(sheet, above, sheet.column("quantity"), WARNING, "quantity_above_target",
                  lambda i: (f"单条记录的完成数量 {format_number(quantity[i])} 超过{scope[i]} "
                             f"{format_number(target[i])}"),
                  "请核对数量是否多写了位数，或是否应拆成多条记录")

    def _probable_duplicates(self, ledger: pd.DataFrame) -> None:
        fields = ["committee_id", "project_id", "date", "activity"]
        complete = ledger[fields].notna().all(axis=1)
        if not complete.any():
            return
        subset = ledger.loc[complete, fields]
        repeated = subset.duplicated(keep="first")
        if not repeated.any():
            return
        firsts = subset[~subset.duplicated(keep="first")]
        first_row = {tuple(r): row for r, row in zip(firsts.itertuples(index=False),
                                                    ledger.loc[firsts.index, ROW])}
        mask = pd.Series(False, index=ledger.index)
        mask[repeated.index[repeated]] = True
        sheet = schema.LEDGER
        self.emit(sheet, mask, sheet.column("activity"), WARNING, "probable_duplicate",
                  lambda i: (f"与第 {first_row[tuple(ledger.loc[i, fields])]} 行的居委会、项目、日期和"
                             "活动内容都相同，可能重复录入"),
                  "如确是两次活动，请在活动内容或备注中写明区别；否则删除重复行")

    def article_records(self) -> None:
        sheet, ledger = schema.ARTICLES, self.typed.get(schema.LEDGER.name)
        if sheet.name not in self.typed or ledger is None:
            return
        known = set(ledger["record_id"].dropna())
        refs = self.typed[sheet.name]["record_ids"]
        missing = refs.map(lambda v: [r.strip() for r in v.split(schema.UNIT_SEPARATOR)
                                      if r.strip() and r.strip() not in known] if v else [])
        self.emit(sheet, missing.map(bool), sheet.column("record_ids"), WARNING, "unknown_record",
                  lambda i: f"关联记录编号 {'、'.join(missing[i])} 在台账中不存在",
                  "请核对记录编号，多个编号用顿号分隔")


# ---------------------------------------------------------------- suggestions

class _Suggester:
    """"您是否指 C03 新福康里居委会？" from the nearest valid code or name, cached per value."""

    def __init__(self, known: dict[str, str]):
        self.known = known
        self.by_upper = {code.upper(): code for code in known}
        self.by_name = {name: code for code, name in known.items() if name}
        self.cache: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        text = str(value)
        if text not in self.cache:
            self.cache[text] = self._suggest(text)
        return self.cache[text]

    def _suggest(self, text: str) -> str:
        code = self.by_upper.get(text.upper()) or self.by_name.get(text)
        if code is None:
            close = difflib.get_close_matches(text.upper(), list(self.by_upper), n=1, cutoff=0.6)
            code = self.by_upper[close[0]] if close else None
        if code is None:
            close = difflib.get_close_matches(text, list(self.by_name), n=1, cutoff=0.5)
            code = self.by_name[close[0]] if close else None
        if code is None:
            return "请从下拉列表中选择"
        name = self.known[code]
        return f"您是否指 {code} {name}？".replace("  ", " ") if name else f"您是否指 {code}？"


def _suggest_choice(value: object, choices: tuple[str, ...]) -> str:
    text = str(value)
    contained = [c for c in choices if text and (text in c or c in text)]
    close = contained or difflib.get_close_matches(text, list(choices), n=1, cutoff=0.3)
    if close:
        return f"您是否指“{close[0]}”？"
    return f"请从下拉列表中选择：{'、'.join(choices)}"


def _suggest_record_id(value: object, committee: object) -> str:
    m = RECORD_ID_LOOSE.match(str(value))
    if m:
        prefix = committee if isinstance(committee, str) else m["committee"].upper()
        return f"您是否指 {prefix}-{int(m['number']):04d}？"
    return "可留空，由系统按居委会自动编号"


def _fill_hint(column: schema.Column) -> str:
    return column.help or f"请填写{column.header}"


def _setting_problem(setting: schema.Setting, value: object) -> str:
    """Why a setting's value is not of its type ('' when it is fine or blank)."""
    if value is None or setting.type == "text":
        return ""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        number = parse_number_text(str(value)).value
    if number is None:
        return "不是数字"
    if setting.type == "integer" and not float(number).is_integer():
        return "应为整数"
    if number < 0:
        return "不能为负数"
    if setting.key == "year" and not YEAR_RANGE[0] <= number <= YEAR_RANGE[1]:
        return "不是合理的年份"
    return ""
