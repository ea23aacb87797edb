"""Read the contract sheets of a workbook file into DataFrames with python-calamine.

One call per sheet. Headers are matched after removing whitespace (half- and full-width);
column order is free; extra columns are kept under their own header; ``_row`` holds each row's
Excel row number. Values keep their cell types (text, int, float, date/datetime); the
normaliser turns typed-in text such as "6月22日" into dates and numbers.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from python_calamine import CalamineWorkbook

from .. import schema
from ..errors import DuplicateColumns, MissingColumns, MissingSheet, NotAWorkbook, WorkbookNotFound

ROW = "_row"
# How far down a header row may sit (a title row or two above it is common in hand-made forms).
HEADER_SEARCH_ROWS = 10
_SPACES = re.compile(r"[\s\u3000]+")


def clean_header(value: object) -> str:
    """A header cell as matched against the contract: all whitespace removed."""
    return _SPACES.sub("", str(value)) if value is not None else ""


@dataclass
class Workbook:
    """The contract sheets of one workbook, as read."""

    path: Path
    frames: dict[str, pd.DataFrame]
    sheet_names: list[str] = field(default_factory=list)

    def __getitem__(self, sheet_name: str) -> pd.DataFrame:
        return self.frames[sheet_name]

    @property
    def settings(self) -> dict[str, object]:
        """设置 as a dict keyed by setting key (unknown items keyed by their own text)."""
        return settings_from_frame(self.frames.get(schema.SETTINGS.name))


def open_calamine(path: Path | str) -> CalamineWorkbook:
    """Open a workbook file, turning every failure into a Chinese error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WorkbookNotFound(path)
    if not zipfile.is_zipfile(path):
        raise NotAWorkbook(path, "文件不是 .xlsx/.xlsm 格式")
    try:
        return CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises several private error types
        raise NotAWorkbook(path, str(exc)[:80]) from exc


def read_workbook(path: Path | str, sheets: list[schema.Sheet] | None = None) -> Workbook:
    """Read ``sheets`` (default: every input sheet of the contract) from the file at ``path``."""
    path = Path(path)
    book = open_calamine(path)
    frames = {}
    for sheet in sheets or schema.INPUT_SHEETS:
        frames[sheet.name] = read_sheet(book, sheet, path)
    return Workbook(path, frames, list(book.sheet_names))


def read_sheet(book: CalamineWorkbook, sheet: schema.Sheet, path: Path) -> pd.DataFrame:
    """One contract sheet as a DataFrame keyed by column key, plus extras and ``_row``."""
    if sheet.name not in book.sheet_names:
        if sheet.optional:
            return empty_frame(sheet)
        raise MissingSheet(path, sheet.name)
    try:
        rows = book.get_sheet_by_name(sheet.name).to_python(skip_empty_area=False)
    except Exception as exc:
        raise NotAWorkbook(path, f"工作表“{sheet.name}”无法读取：{str(exc)[:60]}") from exc
    return frame_from_rows(rows, sheet, path)


def frame_from_rows(rows: list[list], sheet: schema.Sheet, path: Path | str) -> pd.DataFrame:
    """Turn a sheet's cell grid (first row = Excel row 1) into the contract frame."""
    header_index = find_header_row(rows, sheet)
    if header_index is None:
        found = [clean_header(v) for v in rows[0]] if rows else []
        raise MissingColumns(path, sheet.name, [c.header for c in sheet.required_columns], found)
    headers = [clean_header(v) for v in rows[header_index]]
    by_header = sheet.by_header()
    missing = [c.header for c in sheet.required_columns if c.header not in headers]
    if missing:
        raise MissingColumns(path, sheet.name, missing, headers)
    known = [h for h in headers if h in by_header]
    duplicated = sorted({h for h in known if known.count(h) > 1})
    if duplicated:
        raise DuplicateColumns(path, sheet.name, duplicated)

    names = []
    for i, header in enumerate(headers):
        if header in by_header:
            names.append(by_header[header].key)
        elif header:
            names.append(header)
        else:
            names.append(f"_blank{i}")
    keep = [i for i, n in enumerate(names) if not n.startswith("_blank")]
    body, row_numbers = [], []
    for excel_row, raw in enumerate(rows[header_index + 1:], start=header_index + 2):
        values = [_cell_value(raw[i]) if i < len(raw) else None for i in keep]
        if any(v is not None for v in values):
            body.append(values)
            row_numbers.append(excel_row)
    columns = [names[i] for i in keep]
    frame = pd.DataFrame(body, columns=columns, dtype=object)
    for col in sheet.columns:
        if col.key not in frame.columns:
            frame[col.key] = pd.Series([None] * len(frame), dtype=object)
    frame[ROW] = row_numbers
    extras = [c for c in columns if c not in set(sheet.keys)]
    frame = frame[[*sheet.keys, *extras, ROW]]
    # Where each header sits (index 0 = column A), so links and marks point at the real cell.
    frame.attrs["headers"] = headers
    return frame


def _cell_value(value: object) -> object:
    # calamine gives floats for every number and '' for blanks: restore ints and None.
    if value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return value


def find_header_row(rows: list[list], sheet: schema.Sheet) -> int | None:
    """Index of the first row (within the first few) holding the most contract headers."""
    wanted = set(sheet.headers)
    best, best_hits = None, 0
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        hits = len(wanted & {clean_header(v) for v in row})
        if hits > best_hits:
            best, best_hits = i, hits
    return best


def empty_frame(sheet: schema.Sheet) -> pd.DataFrame:
    return pd.DataFrame({**{c.key: pd.Series(dtype=object) for c in sheet.columns},
                         ROW: pd.Series(dtype=int)})


def settings_from_frame(frame: pd.DataFrame | None) -> dict[str, object]:
    """设置 rows → {setting key: value}; defaults for settings left out or blank."""
    values: dict[str, object] = {
        s.key: _typed_setting(s, s.default) if s.default else s.default
        for s in schema.SETTING_ITEMS
    }
    if frame is None:
        return values
    for item, value in zip(frame["item"], frame["value"]):
        if item is None:
            continue
        setting = schema.SETTINGS_BY_ITEM.get(str(item))
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.date()
        if setting is None:
            values[str(item)] = value
        else:
            values[setting.key] = _typed_setting(setting, value)
    return values


def _typed_setting(setting: schema.Setting, value: object) -> object:
    # Left as typed when it does not parse; the validator reports it.
    try:
        if setting.type == "integer":
            return int(float(str(value).strip()))
        if setting.type == "number":
            return float(str(value).strip())
    except ValueError:
        return value
    return value
