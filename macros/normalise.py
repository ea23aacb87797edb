"""Raw frames → schema-typed frames, reading the messy ways people type dates and numbers.

Typed cells (real dates, numbers) take a vectorised fast path; only text left over in a date or
number column goes through the Chinese parsers, once per distinct text. Every value that was read
differently from how it was typed gives a warning saying what it was read as ("按 2020-06-22
处理"); a value that cannot be read gives an error. The raw frames are never modified.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import cn2an
import numpy as np
import pandas as pd

from . import schema
from .problems import Problem

ROW = "_row"
# Excel's day zero (serial 1 = 1900-01-01, with Excel's 1900 leap-year bug folded in after day 60).
EXCEL_EPOCH = date(1899, 12, 30)
# Dates outside this window cannot be meant (and would not fit datetime64[ns]).
MIN_YEAR, MAX_YEAR = 1900, 2200
# A number in a date column is read as an Excel serial only from 1950-01-01 on (622 is no date).
MIN_SERIAL = 18264
KEY_SEPARATOR = "/"

# Codes of the problems this module reports (stable: receipts and tests rely on them).
NORMALISED = "normalised"
APPROXIMATE = "approximate"
BAD_DATE = "bad_date"
BAD_NUMBER = "bad_number"


# ---------------------------------------------------------------- text

# Full-width letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) and the ideographic space, folded to ASCII.
# Free text keeps its Chinese punctuation, which full NFKC would turn into ASCII （，：；）.
_WIDTH_FOLD = {c: c - 0xFEE0 for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))}
_WIDTH_FOLD[0x3000] = 0x20


def nfkc(text: str) -> str:
    """NFKC and trimmed (codes, choices, dates and numbers typed as text)."""
    return unicodedata.normalize("NFKC", text).strip()


_WIDE = re.compile("[\u3000\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def fold_width(text: str) -> str:
    """Full-width letters, digits and spaces to ASCII, trimmed; Chinese punctuation kept."""
    # translate() with a dict is slow on long Chinese text: most text has nothing to fold.
    return (text.translate(_WIDTH_FOLD) if _WIDE.search(text) else text).strip()


def is_code_column(sheet: schema.Sheet, column: schema.Column) -> bool:
    """Keys, references and choices: NFKC and upper case (they are compared, not read)."""
    return (column.key in sheet.key or column.list_name is not None or bool(column.choices)
            or column.type == "choice")


def text_of(value: object) -> str | None:
    """A non-text cell as the text a person sees (1200.0 → "1200", a date → "2020-06-22")."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes") if value.time() != time() else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------- dates

@dataclass(frozen=True)
class Reading:
    """How one typed value was read: the value, or why not."""

    value: object = None        # date / float, None when unreadable
    changed: bool = False       # read differently from how it was typed
    approximate: bool = False   # "800余次": the number is a lower bound or estimate
    reason: str = ""            # Chinese, when unreadable
    shown: str = ""             # how the typed value is quoted, when not its cell text


_CN_DIGIT = {"〇": 0, "零": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM = "〇零○一二两三四五六七八九十"
_TIME_SUFFIX = re.compile(r"^(.*?\d[日号]?)(?:[T\s]+|(?<=[日号]))\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")
_YMD_CN = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})[日号]?$")
_YMD_SEP = re.compile(r"^(\d{4})([./-])(\d{1,2})\2(\d{1,2})$")
_MD_CN = re.compile(r"^(\d{1,2})月(\d{1,2})[日号]?$")
_MD_SEP = re.compile(r"^(\d{1,2})[./-](\d{1,2})$")
_YMD_HANZI = re.compile(rf"^([{_CN_NUM}]{{4}})年([{_CN_NUM}]{{1,2}})月([{_CN_NUM}]{{1,3}})[日号]?$")
_MD_HANZI = re.compile(rf"^([{_CN_NUM}]{{1,2}})月([{_CN_NUM}]{{1,3}})[日号]?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^\d{5}(?:\.0+)?$")


def _hanzi_small(text: str) -> int | None:
    """一 … 三十一 (month and day numerals)."""
    if "十" in text:
        tens, _, ones = text.partition("十")
        t = _CN_DIGIT.get(tens, -1) if tens else 1
        o = _CN_DIGIT.get(ones, -1) if ones else 0
        return None if t < 0 or o < 0 else t * 10 + o
    return _CN_DIGIT.get(text) if len(text) == 1 else None


def _make(y: int | None, m: int | None, d: int | None) -> date | str:
    if y is None:
        return f"只写了月日，但“{schema.SETTINGS.name}”表的“{schema.SETTINGS_BY_KEY['year'].item}”未填，无法确定年份"
    if m is None or d is None:
        return "无法识别月或日"
    try:
        return date(y, m, d)
    except ValueError:
        return f"日期不存在（{y}年{m}月{d}日）"


def serial_to_date(serial: float) -> date | None:
    """An Excel serial day number (1900 date system) → date, None when out of range."""
    if not (1 <= serial < 2958466) or math.isnan(serial):
        return None
    day = EXCEL_EPOCH + timedelta(days=int(serial))
    return day if MIN_YEAR <= day.year <= MAX_YEAR else None


@lru_cache(maxsize=65536)
def parse_date_text(text: str, year: int | None = None) -> Reading:
    """A date typed as text, by explicit patterns only (never a time out of "6.22")."""
    t = nfkc(text)
    match = _TIME_SUFFIX.match(t)
    if match:  # "2020-06-22 00:00:00": a date written with a time of day
        t = match.group(1)
    t = re.sub(r"\s+", "", t)
    result: date | str
    if m := _YMD_CN.match(t):
        result = _make(int(m[1]), int(m[2]), int(m[3]))
    elif m := _YMD_SEP.match(t):
        result = _make(int(m[1]), int(m[3]), int(m[4]))
    elif m := _MD_CN.match(t) or _MD_SEP.match(t):
        result = _make(year, int(m[1]), int(m[2]))
    elif m := _YMD_HANZI.match(t):
        y = int("".join(str(_CN_DIGIT.get(c, 0)) for c in m[1])) if all(c in _CN_DIGIT for c in m[1]) else None
        result = _make(y, _hanzi_small(m[2]), _hanzi_small(m[3])) if y else "无法识别年份"
    elif m := _MD_HANZI.match(t):
        result = _make(year, _hanzi_small(m[1]), _hanzi_small(m[2]))
    elif m := _COMPACT.match(t):
        result = _make(int(m[1]), int(m[2]), int(m[3]))
    elif _SERIAL.match(t):
        result = serial_to_date(float(t)) or "不是有效的 Excel 日期序号"
    else:
        result = "无法识别为日期，请写成 2020-06-22 或 2020年6月22日"
    if isinstance(result, str):
        return Reading(reason=result)
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        return Reading(reason=f"年份 {result.year} 不合理")
    return Reading(result, changed=t != result.isoformat())


def read_date_number(value: float, year: int | None = None) -> Reading:
    """A number in a date column: an Excel serial, 20200622, or 6.22 typed for 6月22日."""
    if math.isnan(value) or math.isinf(value):
        return Reading(reason="不是有效的日期")
    if value.is_integer():
        v = int(value)
        if 19000101 <= v <= 22001231:
            return parse_date_text(str(v), year)
        day = serial_to_date(value) if v >= MIN_SERIAL else None
        if day:
            return Reading(day, changed=True)
        return Reading(reason="不是有效的日期")
    # Excel stores "6.22" typed into a date cell as the number 6.22 (a time on 1900-01-06):
    # read it as 月.日 when that is unambiguous, never as a time of day.
    shown = f"{value:.6f}".rstrip("0")
    month, _, day = shown.partition(".")
    if len(day) == 2 and 1 <= int(month) <= 12:
        reading = parse_date_text(f"{int(month)}月{int(day)}日", year)
        return Reading(reading.value, True, reason=reading.reason, shown=shown)
    if len(day) == 1 and 1 <= int(month) <= 12:
        return Reading(reason=f"无法确定是 {month}月{day}日 还是 {month}月{day}0日", shown=shown)
    return Reading(reason="是带小数的数字，不是日期", shown=shown)


def early_cell_serial(cell: date) -> float:
    """The serial number behind a date cell in 1900 (calamine counts serial 1 as 1900-01-01)."""
    moment = cell if isinstance(cell, datetime) else datetime(cell.year, cell.month, cell.day)
    return (moment - datetime(1899, 12, 31)).total_seconds() / 86400


# ---------------------------------------------------------------- numbers

# Units people write after a count ("800余次", "30万元"); anything else after a number is not a count.
UNITS = frozenset(
    "人 人次 次 场 场次 个 幢 栋 座 处 户 家 所 名 位 项 期 篇 份 本 册 张 件 台 套 条 天 日 小时 课时 学时 "
    "元 万元 块 公里 米 平方米 岁 周 批 支 队 组 轮 节 课 堂 班 床 辆 箱 袋 盒 斤 公斤 吨 间 户次 人天".split()
)
_APPROX_BEFORE = ("大约", "将近", "接近", "超过", "约", "近", "逾", "超")
_APPROX_AFTER = ("余", "多", "来")
_APPROX_TAIL = ("左右", "以上", "上下")
_MULT = {"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_NUMERAL = "零〇○一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟点"
_NUMBER = re.compile(
    rf"^(?P<pre>{'|'.join(_APPROX_BEFORE)})?"
    rf"(?P<sign>[-+])?(?P<num>\d+(?:\.\d+)?|\.\d+|[{_CN_NUMERAL}]+)"
    r"(?P<mult>[百千万亿])?(?P<after>[余多来])?(?P<mult2>[万亿])?"
    r"(?P<unit>[\u4e00-\u9fff]{0,4}?|%)"
    rf"(?P<tail>{'|'.join(_APPROX_TAIL)})?$"
)
_PLAIN = re.compile(r"^-?\d+(?:\.\d+)?$")
# Digits with commas or spaces between them (full-width ones are ASCII after NFKC), and the only
# such text that is one number: thousands in groups of three ("1,200", "12 000").
_SEPARATED_DIGITS = re.compile(r"\d+(?:(?:,\s?|\s)\d+)+")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+|\d{1,3}(?:, \d{3})+|\d{1,3}(?: \d{3})+")


@lru_cache(maxsize=65536)
def parse_number_text(text: str) -> Reading:
    """A number typed as text: 1,200 · １２００ · 三十 · 30万 · 800余次 · 约200人 · 200多人."""
    t = nfkc(text).strip()
    for digits in _SEPARATED_DIGITS.findall(t):
        if not _THOUSANDS.fullmatch(digits):  # "30，40", "1,2", "12,5": several numbers, or a decimal comma
            return Reading(reason="有逗号或空格隔开的几个数字，无法确定是哪一个数（千位分隔只能是 1,200 这样三位一组）")
    t = re.sub(r"[\s,]", "", t)
    if _PLAIN.match(t):
        return Reading(float(t), changed=text.strip() != t)
    m = _NUMBER.match(t)
    if not m:
        return Reading(reason="无法识别为数字")
    if m["unit"] and m["unit"] != "%" and m["unit"] not in UNITS:
        return Reading(reason=f"无法识别为数字（“{m['unit']}”不是计量单位）")
    num = m["num"]
    try:
        if num[0] in "0123456789.":
            value = float(num)
        else:
            value = float(cn2an.cn2an(num, "smart"))
    except Exception:  # cn2an raises several types on odd numerals
        return Reading(reason="无法识别为数字")
    value *= _MULT.get(m["mult"] or "", 1) * _MULT.get(m["mult2"] or "", 1)
    if m["unit"] == "%":
        value /= 100
    if m["sign"] == "-":
        value = -value
    approximate = bool(m["pre"] or m["after"] or m["tail"])
    return Reading(value, changed=True, approximate=approximate)


def format_number(value: float) -> str:
    """A number as it is shown in messages: 800, 12.5, 300000."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# ---------------------------------------------------------------- frames

@dataclass
class _Context:
    """Where problems of one sheet go; rows and keys by position."""

    sheet: schema.Sheet
    rows: np.ndarray
    problems: list[Problem]
    keys: np.ndarray | None = None

    def report(self, pos: int, column: schema.Column, level: str, code: str, message: str,
               suggestion: str = "") -> None:
        key = self.keys[pos] if self.keys is not None else None
        self.problems.append(Problem(
            self.sheet.name, int(self.rows[pos]), column.header, key, level, code, message, suggestion,
        ))


def row_keys(typed: pd.DataFrame, sheet: schema.Sheet) -> np.ndarray:
    """Each row's key as shown in problems (记录编号; "P06/C01" for composite keys), or None.

    ``typed`` holds normalised key columns (text or None).
    """
    if not sheet.key or typed.empty:
        return np.full(len(typed), None, dtype=object)
    if len(sheet.key) == 1:
        return typed[sheet.key[0]].to_numpy(dtype=object)
    parts = [typed[k].to_numpy(dtype=object) for k in sheet.key]
    return np.array([KEY_SEPARATOR.join(p) if all(p) else None for p in zip(*parts)], dtype=object)


def code_text(value: object) -> str | None:
    """A key, reference or choice as the validator compares it: NFKC, trimmed, upper case
    ("ｃ０１" and "c01" are C01)."""
    text = _clean_text(value, code=True)
    return text.upper() if text is not None else None


def _clean_text(value: object, code: bool) -> str | None:
    if isinstance(value, str):
        if value.isascii():
            return value.strip() or None
        text = nfkc(value).upper() if code else fold_width(value)
        return text or None
    text = text_of(value)
    if text is None:
        return None
    return (nfkc(text).upper() if code else fold_width(text)) or None


# ---------------------------------------------------------------- 责任单位

# Units are separated by 、 (contract); commas, semicolons and slashes typed instead separate too
# ("发展办/党建办" is two units), and so does whitespace — Chinese names hold none — except between
# two Latin letters or digits, a space inside an English name ("Health Centre"), and before a
# bracket or inside one ("社区卫生服务中心 (CHC)", "( 静安 )"): a bracket is part of the name.
_OPEN, _CLOSE = "(（\\[【〔《", ")）\\]】〕》"
_UNIT_SPLIT = re.compile(rf"\s*[、，,；;/／\\]\s*"
                         rf"|(?<![A-Za-z0-9\s{_OPEN}])\s+(?![\s{_OPEN}{_CLOSE}])"
                         rf"|(?<![\s{_OPEN}])\s+(?![A-Za-z0-9\s{_OPEN}{_CLOSE}])")


def unit_parts(text: object) -> list[str]:
    """The pieces between separators, as typed ('' where two separators meet or one ends the text)."""
    return _UNIT_SPLIT.split(str(text).strip()) if text is not None else []


def split_units(text: object) -> list[str]:
    """The responsible units a 责任单位 cell names, each once, in order — the one splitter the
    validator, the roll-up (单位进度) and the notices use."""
    return list(dict.fromkeys(" ".join(p.split()) for p in unit_parts(text) if p))


def units_text(text: object) -> str | None:
    """A 责任单位 cell as shown everywhere: its units joined by 、 (None when it names none)."""
    return schema.UNIT_SEPARATOR.join(split_units(text)) or None


# ---------------------------------------------------------------- 设置

YEAR_RANGE = (2000, 2100)
_NOT_A_NUMBER, _NOT_WHOLE, _NEGATIVE, _NOT_A_YEAR = "不是数字", "应为整数", "不能为负数", "不是合理的年份"


def read_setting(setting: schema.Setting, value: object) -> Reading:
    """A 设置 value as healthbook uses it — the one reading the reader (``Workbook.settings``),
    the validator and the roll-up share, so "20%", "０．２", "15", "十" mean one thing to all.

    ``value``: text settings as typed; ``integer`` → int ("十五", "30天", "2020年" for 年度);
    ``number`` → float; ``fraction`` → float, "15%" and 0.15 alike, and a bare number of 1 or more
    read as percentage points (15 → 0.15, ``changed`` set: nobody would ever be behind at 15),
    while one typed with a percent sign is what it says ("100%" → 1.0). None when blank, or when
    it cannot be used — ``reason`` then says why (the validator's message; users get the default).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Reading()
    if setting.type == "text":
        return Reading(value)
    if setting.key == "year" and isinstance(value, date):
        return _year_of_date(value)
    if isinstance(value, bool | date):  # a datetime is a date too
        return Reading(reason=_NOT_A_NUMBER)
    percent_sign = False
    if isinstance(value, int | float):
        number = float(value)
        if math.isnan(number):
            return Reading()
    else:
        text = nfkc(str(value))
        if setting.key == "year":
            text = text.removesuffix("年")  # "2020年", as it is said
        number = parse_number_text(text).value
        if number is None:
            return Reading(reason=_NOT_A_NUMBER)
        percent_sign = "%" in text
    if setting.type == "integer" and not number.is_integer():
        return Reading(reason=_NOT_WHOLE)
    if number < 0:
        return Reading(reason=_NEGATIVE)
    if setting.type == "integer":
        if setting.key == "year" and not YEAR_RANGE[0] <= number <= YEAR_RANGE[1]:
            return Reading(reason=_NOT_A_YEAR)
        return Reading(int(number))
    if setting.type == "fraction" and number >= 1 and not percent_sign:
        return Reading(number / 100, changed=True)
    return Reading(number)


def _year_of_date(value: date) -> Reading:
    """年度 in a cell Excel holds as a date: "2020-1" typed becomes 2020-01-01 (its year), and 2020
    in a cell formatted as a date reads as 1905-07-12 (its serial number is the year). ``changed``
    set, so the validator says how it was read."""
    day = value.date() if isinstance(value, datetime) else value
    serial = (day - EXCEL_EPOCH).days
    for year in (day.year, serial):
        if YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
            return Reading(year, changed=True)
    return Reading(reason=_NOT_A_YEAR)


def setting_default(setting: schema.Setting) -> object:
    """The contract's default of a setting, typed as ``read_setting`` types values (None when a
    number has none; text settings keep their text, '' when none)."""
    return setting.default if setting.type == "text" else read_setting(setting, setting.default).value


def setting_value(settings: dict | None, key: str) -> object:
    """A setting from a 设置 dict, typed: the value, or its default when blank or unusable.

    ``settings`` holds typed values (``Workbook.settings``: the reader ran ``read_setting``);
    text where a number belongs (a dict made by hand) is read here the same way, and so is a
    whole number (reading it again changes nothing) — but not a fraction, which is already one
    ("100%" became 1.0, which read again would be 1 point).
    """
    setting = schema.SETTINGS_BY_KEY[key]
    value = (settings or {}).get(key)
    if setting.type != "text" and (isinstance(value, str) or setting.type == "integer"):
        value = read_setting(setting, value).value
    blank = value is None or (isinstance(value, float) and math.isnan(value)) or value == ""
    return setting_default(setting) if blank else value


def programme_year(settings: dict | None) -> int | None:
    """The 年度 setting as an int, when it reads as one."""
    year = setting_value(settings, "year")
    return int(year) if isinstance(year, int | float) and not isinstance(year, bool) else None


def normalise_frames(
    frames: dict[str, pd.DataFrame], settings: dict | None = None,
) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """Schema-typed copies of ``frames`` plus the problems met while reading them.

    ``date`` → datetime64[ns] (NaT blank/unreadable); ``integer``/``number`` → float64 (NaN);
    text and choices → ``str`` (NFKC for codes and choices, full-width letters/digits folded in
    free text) or ``None``. Sheets not in the contract are passed through unchanged.
    """
    year = programme_year(settings)
    problems: list[Problem] = []
    out: dict[str, pd.DataFrame] = {}
    for name, raw in frames.items():
        sheet = schema.SHEETS_BY_NAME.get(name)
        if sheet is None:
            out[name] = raw.copy()
            continue
        out[name] = normalise_frame(raw, sheet, year, problems)
    return out, problems


def normalise_frame(raw: pd.DataFrame, sheet: schema.Sheet, year: int | None,
                    problems: list[Problem]) -> pd.DataFrame:
    """One sheet: typed columns in a new frame; problems appended to ``problems``."""
    frame = raw.copy(deep=False)  # columns are replaced, never changed in place
    rows = (raw[ROW].to_numpy() if ROW in raw.columns else np.arange(2, len(raw) + 2))
    ctx = _Context(sheet, rows, problems)
    present = [c for c in sheet.columns if c.key in raw.columns]
    # Key columns first: every problem names its row's key.
    changes = {}
    key_columns = [c for c in present if c.key in sheet.key]
    for column in [*key_columns, None, *[c for c in present if c.key not in sheet.key]]:
        if column is None:
            ctx.keys = row_keys(frame, sheet) if len(key_columns) == len(sheet.key) else None
            continue
        series = raw[column.key]
        if column.type == "date":
            frame[column.key] = _normalise_dates(series, column, year, ctx)
        elif column.type in ("integer", "number"):
            frame[column.key] = _normalise_numbers(series, column, ctx)
        else:
            frame[column.key], changes[column.key] = _normalise_texts(series, sheet, column)
    for column in present:
        for pos in np.flatnonzero(changes.get(column.key, ())):
            ctx.report(pos, column, schema.LEVEL_WARNING, NORMALISED,
                       f"{column.header}“{raw[column.key].iat[pos]}”按“{frame[column.key].iat[pos]}”处理",
                       f"如无误，可直接改为 {frame[column.key].iat[pos]}")
    return frame


def _normalise_texts(series: pd.Series, sheet: schema.Sheet,
                     column: schema.Column) -> tuple[pd.Series, np.ndarray]:
    """Cleaned text, and where a code was typed differently (Ｐ０１ is compared as P01)."""
    code = is_code_column(sheet, column)
    if column.key in sheet.key:  # distinct by design: factorizing would not pay
        codes, uniques = np.arange(len(series)), series.to_numpy(dtype=object)
        codes[series.isna().to_numpy()] = -1
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # Each distinct value once; plain ASCII needs only a strip (and codes upper case: c01 is C01).
    if code:  # (a key column's blanks are among its values: a submission's new rows have no key)
        cleaned = [None if x is None else (x.strip().upper() or None) if type(x) is str and x.isascii()
                   else _clean_text(x, code) for x in uniques]
    else:
        cleaned = [(x.strip() or None) if type(x) is str and x.isascii() else _clean_text(x, code)
                   for x in uniques]
    values = np.array([*cleaned, None], dtype=object)[codes]
    if code:
        changed = [type(x) is str and c is not None and c != x.strip() for x, c in zip(uniques, cleaned)]
        flags = np.array([*changed, False], dtype=bool)[codes]
    else:
        flags = np.zeros(len(values), dtype=bool)
    return pd.Series(values, index=series.index, dtype=object), flags


def _types(series: pd.Series) -> pd.Series:
    return series.map(type)


def _normalise_dates(series: pd.Series, column: schema.Column, year: int | None,
                     ctx: _Context) -> pd.Series:
    result = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]")
    if series.empty:
        return pd.Series(result, index=series.index)
    # Fast path: real date cells of a plausible year, converted in one call.
    is_date = _types(series).isin((date, datetime, pd.Timestamp)).to_numpy().copy()
    if is_date.any():
        positions = np.flatnonzero(is_date)
        # A ledger holds a few hundred distinct days: convert each once.
        codes, uniques = pd.factorize(series.iloc[positions])
        days = pd.to_datetime(list(uniques), errors="coerce")
        years = np.asarray(days.year)
        good = (years > MIN_YEAR) & (years <= MAX_YEAR)
        converted = days.where(good).astype("datetime64[ns]").normalize().to_numpy()
        ok = good[codes]
        result[positions[ok]] = converted[codes[ok]]
        is_date[positions[~ok]] = False
    # Leftovers: 1900 cells (a number such as 6.22 typed into a date cell), numbers (Excel
    # serials) and text, each distinct value read once.
    positions = np.flatnonzero(~is_date & series.notna().to_numpy())
    if len(positions):
        leftovers = series.iloc[positions]
        codes, uniques = pd.factorize(leftovers)
        readings = [_read_date_value(v, year) for v in uniques]
        values = pd.to_datetime([r.value for r in readings], errors="coerce").astype("datetime64[ns]")
        result[positions] = values.to_numpy()[codes]
        for pos, code, value in zip(positions, codes, leftovers):
            reading = readings[code]
            typed = reading.shown or text_of(value)
            if reading.value is None and reading.reason:
                ctx.report(pos, column, schema.LEVEL_ERROR, BAD_DATE,
                           f"{column.header}“{typed}”{reading.reason}",
                           "请填写日期，如 2020-06-22 或 2020年6月22日")
            elif reading.value is not None and reading.changed:
                iso = reading.value.isoformat()
                ctx.report(pos, column, schema.LEVEL_WARNING, NORMALISED,
                           f"{column.header}“{typed}”按 {iso} 处理", f"如无误，可直接改为 {iso}")
    return pd.Series(result, index=series.index)


def _read_date_value(value: object, year: int | None) -> Reading:
    if isinstance(value, str) and not value.strip():
        return Reading()  # blank (the live adapter may hand over ''): the required rule decides
    if isinstance(value, bool):
        return Reading(reason="不是日期")
    if isinstance(value, date):
        if value.year > MIN_YEAR:
            return Reading(reason="年份不合理")
        return read_date_number(round(early_cell_serial(value), 6), year)
    if isinstance(value, int | float):
        return read_date_number(float(value), year)
    if isinstance(value, str):
        return parse_date_text(value, year)
    return Reading(reason="不是日期")


def _normalise_numbers(series: pd.Series, column: schema.Column, ctx: _Context) -> pd.Series:
    result = np.full(len(series), np.nan, dtype="float64")
    if series.empty:
        return pd.Series(result, index=series.index)
    # Fast path: number cells (bool is its own type, so TRUE/FALSE stay out).
    is_num = _types(series).isin((int, float, np.int64, np.float64)).to_numpy()
    if is_num.any():
        result[is_num] = series[is_num].to_numpy(dtype="float64")
    positions = np.flatnonzero(~is_num & series.notna().to_numpy())
    if len(positions):
        leftovers = series.iloc[positions]
        codes, uniques = pd.factorize(leftovers)
        readings = [_read_number_value(v) for v in uniques]
        values = np.array([np.nan if r.value is None else r.value for r in readings], dtype="float64")
        result[positions] = values[codes]
        for pos, code, value in zip(positions, codes, leftovers):
            reading = readings[code]
            typed = text_of(value)
            if reading.value is None and reading.reason:
                ctx.report(pos, column, schema.LEVEL_ERROR, BAD_NUMBER,
                           f"{column.header}“{typed}”{reading.reason}", "请只填数字，如 1200")
            elif reading.value is None:
                continue
            elif reading.approximate:
                ctx.report(pos, column, schema.LEVEL_WARNING, APPROXIMATE,
                           f"{column.header}“{typed}”是约数，按 {format_number(reading.value)} 计",
                           "如有准确数字，请改为准确数字")
            elif reading.changed:
                ctx.report(pos, column, schema.LEVEL_WARNING, NORMALISED,
                           f"{column.header}“{typed}”按 {format_number(reading.value)} 处理",
                           f"如无误，可直接改为 {format_number(reading.value)}")
    return pd.Series(result, index=series.index)


def _read_number_value(value: object) -> Reading:
    if isinstance(value, str) and not value.strip():
        return Reading()  # blank (the live adapter may hand over ''): the required rule decides
    if isinstance(value, str):
        return parse_number_text(value)
    if isinstance(value, bool):
        return Reading(reason="不是数字")
    if isinstance(value, datetime | date):
        return Reading(reason="是日期，不是数字")
    return Reading(reason="不是数字")
