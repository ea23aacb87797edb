"""The rules of the contract, run over normalised frames: DataFrames in, problems out.

Every column rule is derived from ``schema`` (required, types, choices, keys); the cross-sheet
rules (references, 记录编号 form, 责任单位, settings) and plausibility warnings follow. Rules are
vectorised over whole columns; Python only loops over the rows that have a problem.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable
from datetime import date

import numpy as np
import pandas as pd

from . import schema
from .book.read import settings_from_frame
from .normalise import (
    BAD_DATE,
    BAD_NUMBER,
    NORMALISED,
    ROW,
    format_number,
    normalise_frames,
    programme_year,
    read_setting,
    row_keys,
    split_units,
    text_of,
    unit_parts,
    units_text,
)
from .problems import Problem, Validation
from .rollup import THRESHOLDS, reported_in_year, thresholds, year_mismatch_text

ERROR, WARNING = schema.LEVEL_ERROR, schema.LEVEL_WARNING
STATUS_DONE = "已完成"
# Values accepted with a warning that are most likely typos (100000 for 10, a year off): each can
# change what leaders read, so a consolidation names them to the office, not only in the receipt.
ABOVE_TARGET, IMPLAUSIBLE_PARTICIPANTS, OUTSIDE_YEAR = "quantity_above_target", "participants_implausible", "outside_year"
DOUBTFUL = frozenset({ABOVE_TARGET, IMPLAUSIBLE_PARTICIPANTS, OUTSIDE_YEAR})
assert STATUS_DONE in schema.STATUSES
# An 活动内容 shorter than this says too little to be checked later.
# More people than a street has at one activity is a typing slip, not an event.
MAX_PLAUSIBLE_PARTICIPANTS = 100_000
MIN_ACTIVITY_CHARS = 4
RECORD_ID_LOOSE = re.compile(r"^(?P<committee>[A-Za-z]\w*?)\s*[-_—－]?\s*(?P<number>\d{1,4})$")
LONG_RECORD_ID = re.compile(r"(?P<committee>.+)-[1-9]\d{4,}")
CODE_PARTS = re.compile(r"^([A-Z]+)[-_ ]?0*(\d+)$")
# 责任单位 names one character apart are taken for one unit typed two ways only from this length:
# the office's 3-character 办 (党建办, 党政办) differ in one character and are different units.
MIN_TWIN_CHARS = 4
CHINESE_NUMERALS = "〇零一二三四五六七八九十百"
UNIT_TWIN = "unit_twin"


YEAR_MISMATCH, YEAR_ENDED = "year_mismatch", "year_ended"
NO_PROJECTS, BLANK_SETTING = "no_projects", "blank_setting"
# What makes every notice false, not one row: no notice is made while one of these stands.
NOTICE_BLOCKING = (YEAR_MISMATCH, NO_PROJECTS, "missing_year")


def notice_blockers(validation: Validation) -> list[str]:
    """Why no notice may be made from the workbook validated (each problem's message, once); also a
    发文序号 that cannot be read (the notices would carry 1号 again) or a 年度 that cannot (without a
    year nothing says which year the letters count: a workbook years old counted "2232 天未填报")."""
    unreadable = {schema.SETTINGS_BY_KEY[k].item for k in ("doc_number", "year")}
    found = [p.message for p in validation.problems
             if p.code in NOTICE_BLOCKING or (p.code == "bad_setting" and p.key in unreadable)]
    return list(dict.fromkeys(found))


def validate(frames: dict[str, pd.DataFrame], settings: dict | None = None,
             as_of: date | None = None) -> Validation:
    """Normalise ``frames`` (raw, as read) and check every rule; ``as_of`` defaults to today.

    ``settings`` is the 设置 dict (``Workbook.settings``); read from the 设置 frame when omitted.
    Cross-sheet rules run only against the sheets given: to check a submission form's ledger,
    pass it together with the master's 项目/居委会/目标 frames.
    """
    if settings is None:
        settings = settings_from_frame(frames.get(schema.SETTINGS.name))
    typed, problems = normalise_frames(frames, settings)
    unreadable = {(p.sheet, p.row, p.column) for p in problems if p.code in (BAD_DATE, BAD_NUMBER)}
    rules = _Rules(frames, typed, settings, as_of or date.today(), unreadable)
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
    """One validation run: the frames, the settings and the problems found so far.

    Masks are computed over whole columns; messages are built by row position (numpy arrays),
    only for the rows that have a problem.
    """

    def __init__(self, raw: dict[str, pd.DataFrame], typed: dict[str, pd.DataFrame],
                 settings: dict, as_of: date, unreadable: set[tuple] = frozenset()):
        self.raw = raw
        self.unreadable = unreadable  # (sheet, row, header) already reported as unreadable
        self.typed = typed
        self.settings = settings
        self.as_of = as_of
        self.year = programme_year(settings)
        self.problems: list[Problem] = []
        self.keys = {s.name: row_keys(typed[s.name], s) for s in schema.INPUT_SHEETS if s.name in typed}

    def run(self) -> list[Problem]:
        for sheet in schema.INPUT_SHEETS:
            if sheet.name not in self.typed:
                continue
            self.column_rules(sheet)
            self.unique_keys(sheet)
        self.record_ids()
        self.references()
        self.units()
        self.project_targets_and_deadlines()
        self.target_shares()
        self.settings_rows()
        self.plausibility()
        self.article_records()
        self.article_pictures()
        return self.problems

    # ------------------------------------------------------------ helpers

    def emit(self, sheet: schema.Sheet, mask: pd.Series | np.ndarray, column: schema.Column,
             level: str, code: str, message: Callable[[int], str],
             suggestion: Callable[[int], str] | str = "") -> None:
        """One problem per row where ``mask`` holds; texts built from the row's position."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        rows = self.typed[sheet.name][ROW].to_numpy()
        keys = self.keys[sheet.name]
        for pos in np.flatnonzero(mask):
            self.problems.append(Problem(
                sheet.name, int(rows[pos]), column.header, keys[pos], level, code,
                message(pos), suggestion(pos) if callable(suggestion) else suggestion,
            ))

    def values(self, sheet: schema.Sheet, key: str) -> np.ndarray:
        return self.typed[sheet.name][key].to_numpy()

    # ------------------------------------------------------------ per column

    def column_rules(self, sheet: schema.Sheet) -> None:
        typed = self.typed[sheet.name]
        rows = typed[ROW].to_numpy()
        for col in sheet.columns:
            if col.key not in typed.columns:
                continue
            series = typed[col.key]
            v = series.to_numpy()
            if col.required:
                # Typed value missing: blank, or unreadable (reported already, with the reason).
                missing = series.isna().to_numpy().copy()
                for pos in np.flatnonzero(missing) if self.unreadable else ():
                    if (sheet.name, int(rows[pos]), col.header) in self.unreadable:
                        missing[pos] = False
                self.emit(sheet, missing, col, ERROR, "required",
                          lambda i, c=col: f"{c.header}未填写", _fill_hint(col))
            if col.choices:
                bad = series.notna() & ~series.isin(col.choices)
                choices = "、".join(col.choices)
                self.emit(sheet, bad, col, ERROR, "bad_choice",
                          lambda i, c=col, v=v, ch=choices: f"{c.header}“{v[i]}”不是可选值（{ch}）",
                          lambda i, c=col, v=v: _suggest_choice(v[i], c.choices))
            if col.type == "integer":
                fraction = series.notna() & (series % 1 != 0)
                self.emit(sheet, fraction, col, ERROR, "not_integer",
                          lambda i, c=col, v=v: f"{c.header}应为整数，现为 {format_number(v[i])}",
                          "请填写整数")
            if col.type in ("integer", "number"):
                negative = series.notna() & (series < 0)
                level = ERROR if col.type == "integer" else WARNING
                self.emit(sheet, negative, col, level, "negative",
                          lambda i, c=col, v=v: f"{c.header}为负数（{format_number(v[i])}）",
                          "请填写不小于 0 的数")

    def unique_keys(self, sheet: schema.Sheet) -> None:
        if not sheet.key:
            return
        keys = pd.Series(self.keys[sheet.name])
        present = keys.notna()
        repeated = present & keys.duplicated(keep="first")
        if not repeated.any():
            return
        rows = pd.Series(self.typed[sheet.name][ROW].to_numpy())
        first_row = rows.groupby(keys.where(present)).transform("first").to_numpy()
        k = keys.to_numpy()
        names = "+".join(sheet.header_of(key) for key in sheet.key)
        self.emit(sheet, repeated, sheet.column(sheet.key[0]), ERROR, "duplicate_key",
                  lambda i: f"{names}“{k[i]}”重复，与第 {int(first_row[i])} 行相同",
                  f"每行的{names}应唯一，请修改或删除重复行")

    # ------------------------------------------------------------ cross-sheet

    def record_ids(self) -> None:
        sheet = schema.LEDGER
        if sheet.name not in self.typed:
            return
        ledger = self.typed[sheet.name]
        ids = ledger["record_id"]
        if not ids.notna().any():
            return
        committees = ledger["committee_id"]
        # numpy string ufuncs: ``<prefix>-<4 digits>`` without a Python loop over the rows.
        a = ids.fillna("").to_numpy(dtype=str)
        well_formed = ((np.strings.str_len(a) >= 6) & (np.strings.slice(a, -5, -4) == "-")
                       & np.strings.isdigit(np.strings.slice(a, -4, None)))
        prefix = np.strings.slice(a, 0, -5)
        # From a committee's 10,000th record on, numbers take 5 digits and more (``LedgerMerge.next_id``).
        for pos in np.flatnonzero(~well_formed & (np.strings.str_len(a) >= 7)):
            m = LONG_RECORD_ID.fullmatch(str(a[pos]))
            if m:
                well_formed[pos], prefix[pos] = True, m["committee"]
        i_, c_ = ids.to_numpy(), committees.to_numpy()
        col = sheet.column("record_id")
        rid, cid = col.header, sheet.header_of("committee_id")
        malformed = ids.notna().to_numpy() & ~well_formed
        self.emit(sheet, malformed, col, ERROR, "bad_record_id",
                  lambda i: f"{rid}“{i_[i]}”格式不对，应为“{cid}-4位数字”，如 C01-0007（第 10000 号起为 5 位，如 C01-10000）",
                  lambda i: _suggest_record_id(i_[i], c_[i]))
        # Only against a known committee: an unknown one is reported (with a suggestion) already.
        known = committees.isin(list(self._lookup(schema.COMMITTEES) or ())).to_numpy()
        mismatch = well_formed & known & (prefix != committees.fillna("").to_numpy(dtype=str))
        self.emit(sheet, mismatch, col, ERROR, "record_id_committee",
                  lambda i: f"{rid}“{i_[i]}”与{cid}“{c_[i]}”不符",
                  f"{rid}应以本行的{cid}开头；如{cid}填错，请改正{cid}")

    def references(self) -> None:
        projects = self._lookup(schema.PROJECTS)
        committees = self._lookup(schema.COMMITTEES)
        for sheet in (schema.LEDGER, schema.TARGETS):
            if sheet.name not in self.typed:
                continue
            for key, known, code, what in (
                ("project_id", projects, "unknown_project", schema.PROJECTS.name),
                ("committee_id", committees, "unknown_committee", schema.COMMITTEES.name),
            ):
                if known is None:
                    continue
                series = self.typed[sheet.name][key]
                bad = series.notna() & ~series.isin(list(known))
                col, v, suggest = sheet.column(key), series.to_numpy(), _Suggester(known, what)
                self.emit(sheet, bad, col, ERROR, code,
                          lambda i, v=v, c=col, w=what: f"{c.header}“{v[i]}”在“{w}”表中不存在",
                          lambda i, v=v, s=suggest: s(v[i]))

    def _lookup(self, sheet: schema.Sheet) -> dict[str, str] | None:
        """Valid codes of a config sheet → their names (None when the sheet was not read)."""
        frame = self.typed.get(sheet.name)
        if frame is None:
            return None
        id_key = sheet.key[0]
        rows = frame[frame[id_key].notna()]
        return dict(zip(rows[id_key], rows["name"].fillna("")))

    def units(self) -> None:
        """责任单位 as the roll-up splits them (``split_units``): a piece left empty is an error,
        other separators than 、 (or a unit named twice) a warning naming the units read."""
        sheet = schema.PROJECTS
        if sheet.name not in self.typed:
            return
        units = self.values(sheet, "units")
        sep, header, col = schema.UNIT_SEPARATOR, sheet.header_of("units"), sheet.column("units")
        empty_part = [u is not None and "" in unit_parts(u) for u in units]
        self.emit(sheet, empty_part, col, ERROR, "empty_unit",
                  lambda i: f"{header}“{units[i]}”中有空的单位名",
                  f"多个单位用一个顿号“{sep}”分隔，如：发展办{sep}服务办")
        shown = [units_text(u) for u in units]
        read_as = [u is not None and not e and shown[i] != u for i, (u, e) in enumerate(zip(units, empty_part))]
        self.emit(sheet, read_as, col, WARNING, NORMALISED,
                  lambda i: f"{header}“{units[i]}”按 {len(split_units(units[i]))} 个单位“{shown[i]}”处理",
                  lambda i: f"多个单位用一个顿号“{sep}”分隔；如无误，可直接改为：{shown[i]}")
        self._unit_twins(units)

    def _unit_twins(self, units: np.ndarray) -> None:
        """Two 责任单位 names one IME slip apart (中心/中芯, a character doubled or dropped inside): one
        unit typed two ways, which 单位进度 would list as two. Marked on the rows of the rarer spelling."""
        sheet, header = schema.PROJECTS, schema.PROJECTS.header_of("units")
        rows = self.typed[sheet.name][ROW].to_numpy()
        named: dict[str, list[int]] = {}  # unit → positions of the rows naming it, in order
        for pos, cell in enumerate(units):
            for unit in split_units(cell) if cell is not None else ():
                named.setdefault(unit, []).append(pos)
        names = list(named)
        twins: dict[int, list[tuple[str, str]]] = {}  # position → (its spelling, the other one)
        for a_i, a in enumerate(names):
            for b in names[a_i + 1:]:
                if not _near_twins(a, b):
                    continue
                # The rarer spelling is the slip; on a tie, the one that came later.
                odd, usual = (a, b) if len(named[a]) < len(named[b]) else (b, a)
                for pos in dict.fromkeys(named[odd]):
                    twins.setdefault(pos, []).append((odd, usual))

        def rows_of(unit: str) -> str:
            at = sorted({int(rows[p]) for p in named[unit]})
            return f"第 {'、'.join(map(str, at[:3]))} {'等行' if len(at) > 3 else '行'}"

        self.emit(sheet, [pos in twins for pos in range(len(units))], sheet.column("units"), WARNING,
                  UNIT_TWIN,
                  lambda i: "；".join(f"{header}“{odd}”与{rows_of(usual)}的“{usual}”只差一个字，"
                                     f"“{schema.UNIT_PROGRESS.name}”表中会算作两个单位"
                                     for odd, usual in twins[i]),
                  lambda i: "；".join(f"如是同一单位，请统一写成一种写法（如都写“{usual}”）；如确是两个单位，可不改"
                                     for _odd, usual in twins[i]))

    def target_shares(self) -> None:
        """目标 rows against the project's 目标值, as the roll-up shares targets out (rollup.py):
        rows adding up to more than it judge the committees on another total than the project;
        rows taking all of it leave committees without a row (one added since) a target of 0,
        so their work counts toward no 完成率."""
        names = (schema.PROJECTS.name, schema.COMMITTEES.name, schema.TARGETS.name)
        if any(n not in self.typed for n in names):
            return
        projects, committees, targets = (self.typed[n] for n in names)
        known = set(committees["committee_id"].dropna())
        rows = targets[targets["project_id"].isin(set(projects["project_id"].dropna()))
                       & targets["committee_id"].isin(known)]
        rows = rows.assign(target=pd.to_numeric(rows["target"], errors="coerce")).dropna(subset=["target"])
        given = rows.groupby("project_id")["target"].sum()
        covered = rows.groupby("project_id")["committee_id"].agg(set)
        total_col, header = schema.PROJECTS.column("target"), schema.PROJECTS.header_of("target")
        street = pd.to_numeric(projects["target"], errors="coerce").to_numpy()
        ids = projects["project_id"].to_numpy()
        over = [pid in given and s == s and given[pid] > s for pid, s in zip(ids, street)]
        self.emit(schema.PROJECTS, over, total_col, WARNING, "targets_exceed",
                  lambda i: f"“{schema.TARGETS.name}”表中该项目各居委会的目标合计 {given[ids[i]]:g}，大于{header} "
                            f"{street[i]:g}：项目按 {street[i]:g} 计算完成率，各居委会按各自的目标计算，两者对不上",
                  f"请核对{header}或“{schema.TARGETS.name}”表中该项目的各行")
        left_out: dict[str, list[str]] = {}
        for pid, s in zip(ids, street):
            if pid in given and s == s and given[pid] >= s:
                for committee in sorted(known - covered[pid]):
                    left_out.setdefault(committee, []).append(str(pid))
        committee_ids = committees["committee_id"].to_numpy()
        self.emit(schema.COMMITTEES, [c in left_out for c in committee_ids], schema.COMMITTEES.column("committee_id"),
                  WARNING, "no_target_share",
                  lambda i: f"在项目 {'、'.join(left_out[committee_ids[i]])} 上没有目标："
                            f"“{schema.TARGETS.name}”表已把这些项目的{header}全部分给了其他居委会，"
                            "该居委会在这些项目上的完成数量不计入完成率",
                  f"如该居委会也承担这些项目，请在“{schema.TARGETS.name}”表中为它各加一行目标；"
                  f"如它确实不承担，也请各加一行，{schema.TARGETS.header_of('target')}填 0，本提醒即不再出现")

    def project_targets_and_deadlines(self) -> None:
        """A street-wide 目标值 of 0 is a slip (no 完成率, no traffic light); so is a 截止日期 outside 年度."""
        sheet = schema.PROJECTS
        if sheet.name not in self.typed:
            return
        if self.typed[sheet.name]["project_id"].notna().sum() == 0:
            # A slip of 删除行 or a bad paste: every ledger row is then "unknown project", and
            # letters would tell each committee its rows are wrong.
            self.problems.append(Problem(
                sheet.name, None, sheet.header_of("project_id"), None, ERROR, NO_PROJECTS,
                f"“{sheet.name}”表中没有任何项目：台账都无法计入，通知因此不会生成",
                f"请恢复“{sheet.name}”表的内容（可用 healthbook restore 从备份恢复主工作簿）"))
        target = self.typed[sheet.name]["target"]
        header = sheet.header_of("target")
        self.emit(sheet, (target == 0).fillna(False), sheet.column("target"), WARNING, "zero_target",
                  lambda i: f"{header}为 0：该项目无法计算完成率，进度通报中不显示完成率和进度状态",
                  f"请填写全街道全年{header}（大于 0 的数字）")
        if self.year is None:
            return
        # 2019 typed for 2020 makes every committee overdue and sends them all a 催办通知.
        deadline = self.typed[sheet.name]["deadline"]
        d, header = deadline.to_numpy(), sheet.header_of("deadline")
        self.emit(sheet, deadline.notna() & (deadline.dt.year != self.year), sheet.column("deadline"),
                  WARNING, OUTSIDE_YEAR,
                  lambda i: f"{header} {str(d[i])[:10]} 不在试点年度 {self.year} 年内", "请核对年份")

    def settings_rows(self) -> None:
        sheet = schema.SETTINGS
        raw = self.raw.get(sheet.name)
        if raw is None:
            return
        items = self.values(sheet, "item")
        value_col, item_col = sheet.column("value"), sheet.column("item")
        known_items = tuple(schema.SETTINGS_BY_ITEM)
        unknown = [item is not None and item not in schema.SETTINGS_BY_ITEM for item in items]
        self.emit(sheet, unknown, item_col, WARNING, "unknown_setting",
                  lambda i: f"设置项“{items[i]}”不是已知的设置，将被忽略",
                  lambda i: _suggest_choice(items[i], known_items))
        raw_values = raw["value"].to_numpy()
        # Read as the reader and the roll-up read them (``read_setting``): one reading of "20%" or "十".
        readings = [
            read_setting(schema.SETTINGS_BY_ITEM[item], value) if item in schema.SETTINGS_BY_ITEM else None
            for item, value in zip(items, raw_values)
        ]
        reasons = [r.reason if r is not None else "" for r in readings]
        self.emit(sheet, [bool(r) for r in reasons], value_col, ERROR, "bad_setting",
                  lambda i: f"设置“{items[i]}”的值“{text_of(raw_values[i])}”{reasons[i]}",
                  lambda i: schema.SETTINGS_BY_ITEM[items[i]].help)
        self._thresholds(items, raw_values, readings)
        year_item = schema.SETTINGS_BY_KEY["year"].item
        as_date = [item == year_item and r is not None and r.value is not None and r.changed
                   for item, r in zip(items, readings)]
        self.emit(sheet, as_date, value_col, WARNING, NORMALISED,
                  lambda i: f"设置“{year_item}”的值是日期“{text_of(raw_values[i])}”（单元格格式为日期），"
                            f"按 {readings[i].value} 年处理",
                  lambda i: f"请把该单元格格式改为“常规”，填写 {readings[i].value}")
        self._notice_settings(items, raw_values)
        year_rows = [item == year_item for item in items]
        if self.year is not None:
            self._as_of_in_year(year_rows, year_item)
            return
        if any(r and reason for r, reason in zip(year_rows, reasons)):
            return  # already reported as a bad value
        message = (f"“{year_item}”未填写：只写了月日的日期无法补全年份，"
                   "也无法检查日期是否在试点年度内")
        hint = f"请填写{year_item}，如 2020"
        if any(year_rows):
            self.emit(sheet, year_rows, value_col, WARNING, "missing_year", lambda i: message, hint)
        else:
            self.problems.append(Problem(sheet.name, None, value_col.header, None, WARNING,
                                         "missing_year", message, hint))

    def _as_of_in_year(self, year_rows: list[bool], year_item: str) -> None:
        """The date reported for against 年度. Before the year starts nothing can have been done: every
        committee would get a letter for filing nothing (年度 2021 typed while 2020 runs). In the first
        quarter after it, a report is the year's final standing (its last rows counted, the new year's
        not). Later than that, the workbook is a year (or six) out of date: letters would count
        "2232 days without a row"."""
        sheet, value_col = schema.SETTINGS, schema.SETTINGS.column("value")
        as_of, year = self.as_of, self.year
        if not reported_in_year(as_of, year):
            self.emit(sheet, year_rows, value_col, ERROR, YEAR_MISMATCH,
                      lambda i: f"{year_mismatch_text(as_of, year)}：应完成多少、是否逾期、"
                                "多久未填报都会按错的年度计算，进度表因此不更新，通知也不会生成",
                      f"如统计的是 {as_of.year} 年，请把“{year_item}”改为 {as_of.year}；如要统计 {year} 年，"
                      f"请指定该年内的截止日期（如 healthbook report 工作簿 --as-of {year}-12-31）")
        elif as_of.year > year:
            self.emit(sheet, year_rows, value_col, WARNING, YEAR_ENDED,
                      lambda i: f"统计截止日期 {as_of.isoformat()} 已过试点年度 {year} 年：按 {year} 年全年的目标统计，"
                                f"{as_of.year} 年的台账不计入",
                      f"如已开始 {as_of.year} 年的工作，请把“{year_item}”改为 {as_of.year}")

    def _notice_settings(self, items: np.ndarray, raw_values: np.ndarray) -> None:
        """Settings the notices print, left blank: said here, where the clerk looks before a report."""
        sheet, value_col = schema.SETTINGS, schema.SETTINGS.column("value")
        printed = {schema.SETTINGS_BY_KEY[k].item for k in schema.NOTICE_SETTINGS}
        number_item = schema.SETTINGS_BY_KEY["doc_number"].item
        blank = [item in printed | {number_item} and not (text_of(value) or "").strip()
                 for item, value in zip(items, raw_values)]
        self.emit(sheet, blank, value_col, WARNING, BLANK_SETTING,
                  lambda i: f"设置“{items[i]}”未填写，" + (
                      "通知的发文字号将从 1 号起编，可能与已发出的文号重复" if items[i] == number_item
                      else "通知中相应的地方会是空的"),
                  lambda i: schema.SETTINGS_BY_ITEM[items[i]].help)

    def _thresholds(self, items: np.ndarray, raw_values: np.ndarray, readings: list) -> None:
        """滞后 thresholds typed as percentage points (15 for 0.15), or a 严重 one not above the other."""
        sheet, value_col = schema.SETTINGS, schema.SETTINGS.column("value")
        keys = [schema.SETTINGS_BY_ITEM[i].key if i in schema.SETTINGS_BY_ITEM else None for i in items]
        read = [r.value if k in THRESHOLDS and r is not None else None for k, r in zip(keys, readings)]
        points = [v is not None and r.changed for v, r in zip(read, readings)]
        self.emit(sheet, points, value_col, WARNING, NORMALISED,
                  lambda i: f"设置“{items[i]}”的值“{text_of(raw_values[i])}”不小于 1，"
                            f"按 {read[i] * 100:g} 个百分点（{read[i]:g}）处理",
                  lambda i: f"如无误，可直接改为 {read[i]:g}")
        # Compared as the roll-up uses them (``rollup.thresholds``: a threshold left blank is its default).
        typed = {k: r for k, r in zip(keys, read) if r is not None}
        lag, severe = thresholds(typed)
        lag_typed, severe_typed = (key in typed for key in THRESHOLDS)
        if typed and severe <= lag:
            lag_item, item = (schema.SETTINGS_BY_KEY[key].item for key in THRESHOLDS)

            def said(value: float, was_typed: bool) -> str:
                return f"{value:g}" if was_typed else f"{value:g}，未填时的默认值"

            # On the severe threshold's row (the one to raise), else on the one typed.
            on = THRESHOLDS[1] if THRESHOLDS[1] in keys else THRESHOLDS[0]
            self.emit(sheet, [k == on for k in keys], value_col, WARNING, "threshold_order",
                      lambda i: f"“{item}”（{said(severe, severe_typed)}）不大于“{lag_item}”"
                                f"（{said(lag, lag_typed)}），不会有居委会被判为“滞后”，落后的都算“严重滞后”",
                      f"“{item}”应大于“{lag_item}”，如 0.15 和 0.30")

    # ------------------------------------------------------------ plausibility

    def plausibility(self) -> None:
        sheet = schema.LEDGER
        if sheet.name not in self.typed:
            return
        ledger = self.typed[sheet.name]
        dates = ledger["date"]
        d = dates.to_numpy()

        def iso(i: int) -> str:
            return str(d[i])[:10]

        col = sheet.column("date")
        future = dates.notna() & (dates > pd.Timestamp(self.as_of))
        # A report for a past date is judged by that date: it is not "today" to the clerk.
        when = "今天" if self.as_of == date.today() else "统计截止日期"
        self.emit(sheet, future, col, WARNING, "future_date",
                  lambda i: f"日期 {iso(i)} 晚于{when}（{self.as_of.isoformat()}）", "请核对日期")
        if self.year is not None:
            outside = dates.notna() & ~future & (dates.dt.year != self.year)
            self.emit(sheet, outside, col, WARNING, OUTSIDE_YEAR,
                      lambda i: f"日期 {iso(i)} 不在试点年度 {self.year} 年内", "请核对年份")
        self._above_target(ledger)
        quantity, status = ledger["quantity"], ledger["status"]
        q, st = sheet.header_of("quantity"), sheet.header_of("status")
        done_zero = (status == STATUS_DONE) & (quantity == 0)
        self.emit(sheet, done_zero, sheet.column("quantity"), WARNING, "done_without_quantity",
                  lambda i: f"{st}为“{STATUS_DONE}”，但{q}为 0", f"请填写{q}，或改正{st}")
        people = ledger["participants"]
        p_header, counts = sheet.header_of("participants"), people.to_numpy()
        crowd = people > MAX_PLAUSIBLE_PARTICIPANTS
        self.emit(sheet, crowd, sheet.column("participants"), WARNING, IMPLAUSIBLE_PARTICIPANTS,
                  lambda i: f"{p_header} {counts[i]:,.0f} 人，一次活动不太可能有这么多人",
                  f"请核对{p_header}（是否多输了几位数）")
        activity = ledger["activity"]
        a, act = activity.to_numpy(), sheet.header_of("activity")
        short = activity.notna() & (activity.str.len() < MIN_ACTIVITY_CHARS)
        self.emit(sheet, short, sheet.column("activity"), WARNING, "short_activity",
                  lambda i: f"{act}“{a[i]}”过短，看不出做了什么",
                  f"请写明{act}（至少 {MIN_ACTIVITY_CHARS} 个字）")
        self._probable_duplicates(ledger)

    def _above_target(self, ledger: pd.DataFrame) -> None:
        projects = self.typed.get(schema.PROJECTS.name)
        if projects is None:
            return
        street = projects.dropna(subset=["project_id"]).drop_duplicates("project_id")
        target = ledger["project_id"].map(street.set_index("project_id")["target"])
        own = pd.Series(np.nan, index=ledger.index)
        targets = self.typed.get(schema.TARGETS.name)
        if targets is not None and len(targets):
            per = targets.drop_duplicates(["project_id", "committee_id"]).set_index(
                ["project_id", "committee_id"])["target"]
            pairs = pd.MultiIndex.from_arrays([ledger["project_id"], ledger["committee_id"]])
            own = pd.Series(per.reindex(pairs).to_numpy(), index=ledger.index)
        scope = np.where(own.notna(), "该居委会在该项目上的目标",
                         f"项目全年{schema.PROJECTS.header_of('target')}")
        target = own.fillna(target)
        quantity = ledger["quantity"]
        above = quantity.notna() & target.notna() & (target > 0) & (quantity > target)
        q, t = quantity.to_numpy(), target.to_numpy()
        sheet = schema.LEDGER
        self.emit(sheet, above, sheet.column("quantity"), WARNING, ABOVE_TARGET,
                  lambda i: (f"单条记录的{sheet.header_of('quantity')} {format_number(q[i])} "
                             f"超过{scope[i]} {format_number(t[i])}"),
                  "请核对数量是否多写了位数，或是否应拆成多条记录")

    def _probable_duplicates(self, ledger: pd.DataFrame) -> None:
        fields = list(schema.LIKELY_DUPLICATE_KEYS)
        complete = ledger[fields].notna().all(axis=1)
        repeated = complete & ledger.duplicated(fields, keep="first")
        if not repeated.any():
            return
        groups = ledger.groupby(fields, sort=False, dropna=True)[ROW]
        first_row = groups.transform("first").to_numpy()
        sheet = schema.LEDGER
        same = "、".join(sheet.header_of(f) for f in fields)
        act, note = sheet.header_of("activity"), sheet.header_of("note")
        self.emit(sheet, repeated, sheet.column("activity"), WARNING, "probable_duplicate",
                  lambda i: f"与第 {int(first_row[i])} 行的{same}都相同，可能重复录入",
                  f"如确是两次活动，请在{act}或{note}中写明区别；否则删除重复行")

    def article_pictures(self) -> None:
        """A 图片说明 without a 图片文件: the bulletin prints a caption only under its picture, so
        the caption would vanish without a word."""
        sheet = schema.ARTICLES
        if sheet.name not in self.typed:
            return
        articles = self.typed[sheet.name]
        if "caption" not in articles.columns:
            return
        caption, image = sheet.header_of("caption"), sheet.header_of("image")
        c = articles["caption"].to_numpy()
        # A workbook made before 图片文件 was added to the contract has no such column: no picture.
        pictured = articles["image"].notna() if "image" in articles.columns else False
        alone = articles["caption"].notna() & ~pictured
        self.emit(sheet, alone, sheet.column("caption"), WARNING, "caption_without_picture",
                  lambda i: f"{caption}“{c[i]}”没有对应的图片（{image}未填），简报中不会印出这句说明",
                  f"请在“{image}”中填写图片相对本工作簿的路径（如 图片\\会议现场.jpg），或清空{caption}")

    def article_records(self) -> None:
        sheet, ledger = schema.ARTICLES, self.typed.get(schema.LEDGER.name)
        if sheet.name not in self.typed or ledger is None:
            return
        known = set(ledger["record_id"].dropna())
        sep, ledger_name = schema.UNIT_SEPARATOR, schema.LEDGER.name
        missing = [
            [r.strip() for r in v.split(sep) if r.strip() and r.strip() not in known] if v else []
            for v in self.values(sheet, "record_ids")
        ]
        self.emit(sheet, [bool(m) for m in missing], sheet.column("record_ids"), WARNING,
                  "unknown_record",
                  lambda i: f"{sheet.header_of('record_ids')} {sep.join(missing[i])} 在“{ledger_name}”表中不存在",
                  f"请核对{schema.LEDGER.header_of('record_id')}，多个编号用顿号“{sep}”分隔")


# ---------------------------------------------------------------- suggestions

class _Suggester:
    """"您是否指 C03 新福康里居委会？" from the nearest valid code or name, cached per value.
    A well-formed code that is not there (C14 among C01–C13) is most likely a new one: the
    nearest code is then offered second, after adding it to ``sheet_name``."""

    def __init__(self, known: dict[str, str], sheet_name: str | None = None):
        self.known, self.sheet_name = known, sheet_name
        self.by_upper = {code.upper(): code for code in known}
        self.by_name = {name: code for code, name in known.items() if name}
        # "C3" is C03: same letters, same number.
        self.by_number = {_code_number(code): code for code in known if _code_number(code)}
        self.cache: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        text = str(value)
        if text not in self.cache:
            self.cache[text] = self._suggest(text)
        return self.cache[text]

    def _suggest(self, text: str) -> str:
        code = (self.by_upper.get(text.upper()) or self.by_name.get(text)
                or self.by_number.get(_code_number(text)))
        parts = _code_number(text)
        if code is None and self.sheet_name and parts and parts[0] in {letters for letters, _ in self.by_number}:
            guess = self._nearest(text) or "请从下拉列表中选择"
            return (f"如是新设的{self.sheet_name}，需先由街道在主工作簿的“{self.sheet_name}”表中加上 {text.strip()}；"
                    f"如是填错，{guess}")
        return self._nearest(text, code) or "请从下拉列表中选择"

    def _nearest(self, text: str, code: str | None = None) -> str:
        if code is None:
            close = difflib.get_close_matches(text.upper(), list(self.by_upper), n=1, cutoff=0.6)
            code = self.by_upper[close[0]] if close else None
        if code is None:
            close = difflib.get_close_matches(text, list(self.by_name), n=1, cutoff=0.5)
            code = self.by_name[close[0]] if close else None
        if code is None:
            return ""
        name = self.known[code]
        return f"您是否指 {code} {name}？".replace("  ", " ") if name else f"您是否指 {code}？"


def _near_twins(a: str, b: str) -> bool:
    """``a`` and ``b`` one Chinese IME slip apart, the shorter at least ``MIN_TWIN_CHARS`` long and the
    difference no numeral (第一中学/第二中学): a character swapped for one read alike (中心/中芯,
    卫生/卫声), one typed twice (中心心) or one dropped inside the name. Other one-character
    differences are different units: 党群/党建服务中心, 东片/西片居委会, 城运中心站/城运中心."""
    if len(a) > len(b):
        a, b = b, a
    if len(a) < MIN_TWIN_CHARS or len(b) - len(a) > 1 or a == b:
        return False
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if len(a) == len(b):
        if a[start + 1:] != b[start + 1:]:
            return False
        differ = a[start] + b[start]
        slip = bool(_readings(a[start]) & _readings(b[start]))
    else:
        if a[start:] != b[start + 1:]:
            return False
        differ = b[start]
        # ``start`` is the last place the extra character can be: a repeat shows as the one before it.
        doubled = start > 0 and b[start - 1] == differ
        slip = doubled or 0 < start < len(b) - 1
    return slip and not any(c.isdigit() or c in CHINESE_NUMERALS for c in differ)


@functools.cache
def _readings(char: str) -> frozenset[str]:
    """The toneless pinyin readings of ``char`` (every one of a 多音字); a non-Chinese character reads
    as itself. Imported here: pypinyin's dictionaries take half a second, paid only when a pair of
    units one character apart turns up."""
    from pypinyin import Style, pinyin

    [readings] = pinyin(char, style=Style.NORMAL, heteronym=True)
    return frozenset(readings)


def _code_number(code: str) -> tuple[str, int] | None:
    m = CODE_PARTS.match(code.strip().upper())
    return (m[1], int(m[2])) if m else None


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
        # Both ways: offered alone, an existing record's key would lead a new row onto that record.
        return (f"如指记录 {prefix}-{int(m['number']):04d}，请改为 {prefix}-{int(m['number']):04d}；"
                "如是新记录，请留空，由系统按居委会自动编号")
    return "可留空，由系统按居委会自动编号"


def _fill_hint(column: schema.Column) -> str:
    return column.help or f"请填写{column.header}"
