"""How values read in Chinese documents: dates, numbers, percents, numerals, and safe file names."""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from datetime import date, datetime, time

WEEKDAYS = "一二三四五六日"
# A 完成率 that does not apply (no target): "0%" would read as "nothing done".
NO_TARGET = "暂无目标"
DIGITS = "零一二三四五六七八九"


def is_nat(value: object) -> bool:
    """pandas' NaT (a datetime subclass), told without importing pandas: the receipt-writing
    worker process never loads it, and without pandas loaded no value can be NaT."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NaT


def is_na(value: object) -> bool:
    """pandas' NA (a string column's blank), told the same way as NaT: it has no truth value,
    so ``value or fallback`` on it raises."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and value is pandas.NA


def as_date(value: object) -> date | None:
    """A date from a date, datetime, Timestamp or ISO text; None for blanks and NaT."""
    if value is None or is_nat(value):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):  # a pandas Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def blank(value: object) -> bool:
    if value is None or is_nat(value) or is_na(value):
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def text(value: object) -> str:
    """Cell text for display: '' for blanks, integral floats without '.0'."""
    if blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cn_date(value: object) -> str:
    """``2020年6月22日`` (GB/T 9704: no zero padding)."""
    d = as_date(value)
    return f"{d.year}年{d.month}月{d.day}日" if d else ""


def cn_weekday(value: object) -> str:
    d = as_date(value)
    return f"星期{WEEKDAYS[d.weekday()]}" if d else ""


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


def clock(value: object) -> str:
    """A 开始时间 as people write it: an Excel time (0.375 or 14:30:00) → 9:00 / 14:30; text as typed."""
    if blank(value):
        return ""
    if isinstance(value, (datetime, time)):
        return f"{value.hour}:{value.minute:02d}"
    typed = str(value).strip()
    try:
        serial = float(typed)
    except ValueError:  # 14:30:00 (a time read as text) and ９：３０ (typed with a Chinese IME)
        m = _CLOCK.match(unicodedata.normalize("NFKC", typed))
        return f"{int(m[1])}:{m[2]}" if m else typed
    if not (0 <= serial < 1 or serial >= 18264):  # an Excel time, or a date-time (44155.375); 9.30 is text
        return typed
    minutes = round((serial % 1) * 24 * 60) % (24 * 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def num(value: object) -> str:
    """A quantity: thousands separators, at most two decimals, '' when blank."""
    if blank(value):
        return ""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if x.is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def pct(value: object) -> str:
    """A raw fraction as a percent with one decimal (1.25 → 125.0%); 暂无目标 when blank — every
    percent the notices show is a 完成率, blank exactly when there is no target."""
    if blank(value):
        return NO_TARGET
    try:
        return f"{float(value) * 100:.1f}%"
    except (TypeError, ValueError):
        return str(value)


def cn_numeral(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 23 → 二十三 (enough for list numbering)."""
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return "十" + (DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return DIGITS[n // 10] + "十" + (DIGITS[n % 10] if n % 10 else "")
    return str(n)


def doc_number(prefix: str, year: int, number: int) -> str:
    """发文字号 such as ``石二街道〔2020〕3号`` (六角括号, no 第, no zero padding)."""
    return f"{prefix}〔{year}〕{int(number)}号"


FILTERS = {"cn_date": cn_date, "weekday": cn_weekday, "num": num, "pct": pct, "cn_numeral": cn_numeral}

# Characters Windows refuses in file names, control characters, and whitespace runs.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_SPACES = re.compile(r"\s+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
MAX_NAME = 80


def safe_name(*parts: object) -> str:
    """A deterministic file name stem from ``parts`` joined by '_', safe on Windows.

    NFKC first (full-width letters become ASCII, so the result is stable however it was typed),
    then forbidden characters → '_', no leading dots or spaces, no trailing dots or spaces,
    no reserved device names, at most MAX_NAME characters.
    """
    pieces = []
    for part in parts:
        piece = unicodedata.normalize("NFKC", text(part))
        piece = _UNSAFE.sub("_", _SPACES.sub(" ", piece)).strip(" ._")
        if piece:
            pieces.append(piece)
    name = "_".join(pieces) or "未命名"
    name = name[:MAX_NAME].strip(" .")
    if name.split(".")[0].upper() in _RESERVED:
        name = "_" + name
    return name
