"""Read the contract sheets of a workbook file into DataFrames with python-calamine.

One call per sheet. Headers are matched after removing whitespace (half- and full-width);
column order is free; extra columns are kept under their own header; ``_row`` holds each row's
Excel row number. Values keep their cell types (text, int, float, date/datetime); the
normaliser turns typed-in text such as "6月22日" into dates and numbers.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from python_calamine import CalamineWorkbook

from .. import schema
from ..errors import (
    DuplicateColumns,
    FormNotMaster,
    MissingColumns,
    MissingSheet,
    NotAWorkbook,
    WorkbookNotFound,
)
from .ooxml import clean_header

if TYPE_CHECKING:
    import pandas as pd

    from .tables import Area, SheetTables

ROW = "_row"
# How far down a header row may sit (a title row or two above it is common in hand-made forms).
HEADER_SEARCH_ROWS = 10


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
    return open_book(path)[0]


def open_book(path: Path | str) -> tuple[CalamineWorkbook, list[str]]:
    """``open_calamine``, and the zip's member names (listed by the checks anyway): whether
    there is any table part to look at is told from them."""
    path = Path(path)
    if not path.is_file():
        raise WorkbookNotFound(path)
    with open(path, "rb") as f:
        head = f.read(8)
    if head == OLE_MAGIC:
        raise NotAWorkbook(path, *_ole_reason(path))
    if not head:
        raise NotAWorkbook(path, "文件是空的，0 字节：可能没有保存好，或复制、下载时中断了", "请打开原文件确认内容后重新保存，再发送一次。")
    if not zipfile.is_zipfile(path):
        raise NotAWorkbook(path, "文件不是 .xlsx/.xlsm 格式，或已损坏、不完整")
    names = check_zip_sizes(path)
    try:
        return CalamineWorkbook.from_path(str(path)), names
    except BaseException as exc:
        if not calamine_failure(exc):
            raise
        raise NotAWorkbook(path, str(exc)[:80]) from exc


def calamine_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is calamine failing on a file: its private error types, or a Rust panic,
    which pyo3 raises as a BaseException (a date serial out of range does it)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


# An OLE compound file: Excel 97-2003 (.xls), or an .xlsx that Excel encrypted with a password.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Zip bombs: refused from the sizes the zip declares, before anything is expanded. A 200,000-row
# ledger expands to ~150 MB; real sheets compress 5-30 times.
MAX_UNCOMPRESSED = 2 << 30
MAX_RATIO, RATIO_FROM = 300, 64 << 20


def _ole_reason(path: Path) -> tuple[str, str]:
    """Why an OLE file is refused, and what to do."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if "EncryptionInfo".encode("utf-16-le") in head or "EncryptedPackage".encode("utf-16-le") in head:
        return ("文件设置了打开密码，已加密，程序无法读取",
                "请在 Excel 或 WPS 中打开它，去掉打开密码（Excel：文件 → 信息 → 保护工作簿 → 用密码进行加密，清空密码；"
                "WPS：文件 → 文档加密 → 密码加密，清空密码）后保存为 .xlsx，再重新提交。")
    return ("这是旧版 Excel 97-2003（.xls）格式或已加密的文件",
            "请用 Excel 或 WPS 打开，“另存为”Excel 工作簿（.xlsx）后再提交。")


def check_zip_sizes(path: Path) -> list[str]:
    """Refuse a zip whose declared sizes would expand past what any workbook needs (a zip bomb);
    returns its member names."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except Exception as exc:  # BadZipFile, NotImplementedError (odd "zip version"), ValueError, ...
        raise NotAWorkbook(path, f"文件已损坏或不完整：{str(exc)[:60]}") from exc
    if not any(i.filename.startswith("xl/workbook") for i in infos):
        raise NotAWorkbook(path, "压缩包里没有 Excel 工作簿的内容，可能是 Word 文档或其他文件改了扩展名")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED:
        raise NotAWorkbook(path, f"解压后将达 {total / 2**30:.1f} GB，远超正常工作簿，疑似“压缩炸弹”，未解压即拒绝")
    for info in infos:
        if info.file_size > RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise NotAWorkbook(path, f"其中的 {info.filename} 压缩比异常（{info.file_size // max(info.compress_size, 1)} 倍），"
                                     "疑似“压缩炸弹”，未解压即拒绝")
    return [i.filename for i in infos]


def read_workbook(path: Path | str, sheets: list[schema.Sheet] | None = None,
                  grids: dict[str, list[list]] | None = None) -> Workbook:
    """Read ``sheets`` (default: every input sheet of the contract) from the file at ``path``.

    ``grids``, when given, receives each sheet's cells as calamine read them (the writer compares
    them with what it is asked to write, instead of reading the sheet again)."""
    path = Path(path)
    book, names = open_book(path)
    sheets = sheets or schema.INPUT_SHEETS
    tables = sheet_tables(path, names, [s.name for s in sheets])
    frames = {}
    for sheet in sheets:
        frames[sheet.name] = read_sheet(book, sheet, path, grids, tables.get(sheet.name))
    return Workbook(path, frames, [clean_header(n) for n in book.sheet_names])


def sheet_tables(path: Path, names: list[str], sheets: list[str]) -> dict[str, SheetTables]:
    """Sheet name → what the Excel tables on it say about its rows: their totals rows (表设计 →
    汇总行) and the rows Excel filled with nothing but a calculated column's formulas are not
    records (``SheetTables.not_records``). Most workbooks hold no table part: told from the zip's
    member ``names``, nothing read."""
    if not may_hold_tables(names):
        return {}
    from .tables import tables_by_sheet  # imported only for a workbook that has tables

    with zipfile.ZipFile(path) as zf:
        return tables_by_sheet(zf, sheets, path)


def may_hold_tables(names: list[str]) -> bool:
    """Whether a zip with these member names may hold a table part (Excel and LibreOffice write
    ``xl/tables/tableN.xml``; a false alarm only costs a look)."""
    return any(n.rpartition("/")[2].lower().startswith("table") for n in names)


def actual_sheet_name(book: CalamineWorkbook, name: str) -> str | None:
    """The workbook's own name for contract sheet ``name``: "台账 " with a stray space is still
    the 台账 (sheet names are matched like headers)."""
    return {clean_header(n): n for n in book.sheet_names}.get(name)


def not_contract(names: Iterable[str]) -> list[str]:
    """Sheet names that are none of the contract's (a missing sheet's look-alike is among them)."""
    contract = {s.name for s in schema.SHEETS}
    return [n for n in names if clean_header(n) not in contract]


def read_sheet(book: CalamineWorkbook, sheet: schema.Sheet, path: Path,
               grids: dict[str, list[list]] | None = None, tables: SheetTables | None = None) -> pd.DataFrame:
    """One contract sheet as a DataFrame keyed by column key, plus extras and ``_row``;
    ``tables``: the sheet's tables (their rows that are no records are left out)."""
    actual = actual_sheet_name(book, sheet.name)
    if actual is None:
        if sheet.optional:
            return empty_frame(sheet)
        if actual_sheet_name(book, schema.FORM_INFO.name) is not None:
            raise FormNotMaster(path)
        raise MissingSheet(path, sheet.name, not_contract(book.sheet_names))
    try:
        rows = book.get_sheet_by_name(actual).to_python(skip_empty_area=False)
    except BaseException as exc:
        if not calamine_failure(exc):
            raise
        raise NotAWorkbook(path, f"工作表“{sheet.name}”无法读取：{str(exc)[:60]}") from exc
    if grids is not None:
        grids[sheet.name] = rows
    return frame_from_rows(rows, sheet, path, tables.not_records(rows) if tables else None)


def frame_from_rows(rows: list[list], sheet: schema.Sheet, path: Path | str,
                    totals: list[Area] | None = None) -> pd.DataFrame:
    """Turn a sheet's cell grid (first row = Excel row 1) into the contract frame (leaving out
    the ``totals`` rows of tables over it)."""
    # pandas is imported where frames are built: consolidation's reader process parses
    # submission forms with ``parse_grid`` alone and starts without it (about 0.4 s sooner).
    import pandas as pd

    columns, body, row_numbers, headers = parse_grid(rows, sheet, path, totals)
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


def records(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as dicts keyed by column, as ``to_dict("records")`` gives them for our
    frames (Python values) in a third of the time: a 60k-row ledger in 0.13 s rather than 0.42 s."""
    if frame.columns.has_duplicates:  # frame[c] would be a frame: pandas' own way
        return frame.to_dict("records")
    columns = list(frame.columns)
    return [dict(zip(columns, values)) for values in zip(*(frame[c].tolist() for c in columns))]


def parse_grid(rows: list[list], sheet: schema.Sheet, path: Path | str,
               totals: list[Area] | None = None, sheet_name: str | None = None,
               ) -> tuple[list[str], list[list], list[int], list[str]]:
    """The header matching and cell cleaning behind ``frame_from_rows``, without a DataFrame.
    ``sheet_name``: the sheet's own name for messages, when it is not the contract's ("台账 (2)").

    Returns the column names found (contract keys, or an extra column's own header), the
    non-blank rows' cleaned values in that order, their Excel row numbers, and the header row
    as cleaned (index 0 = column A). Consolidation
    uses it to read many small files without building a frame for each.

    ``totals``: rows of tables on the sheet that are no records (``SheetTables.not_records``: a
    totals row, 汇总 and SUBTOTAL formulas; a row holding only a calculated column's formulas):
    left out when the area spans a contract column (a table of staff's own beside the ledger
    leaves the ledger's rows alone).
    """
    header_index = find_header_row(rows, sheet)
    if header_index is None:
        found = [clean_header(v) for v in rows[0]] if rows else []
        raise MissingColumns(path, sheet_name or sheet.name, [c.header for c in sheet.required_columns], found)
    headers = [clean_header(v) for v in rows[header_index]]
    by_header = sheet.by_header()
    missing = [c.header for c in sheet.required_columns if c.header not in headers]
    if missing:
        raise MissingColumns(path, sheet_name or sheet.name, missing, headers)
    known = [h for h in headers if h in by_header]
    duplicated = sorted({h for h in known if known.count(h) > 1})
    if duplicated:
        raise DuplicateColumns(path, sheet_name or sheet.name, duplicated)

    names = []
    for i, header in enumerate(headers):
        if header in by_header:
            names.append(by_header[header].key)
        elif header:
            names.append(header)
        else:
            names.append(f"_blank{i}")
    keep = [i for i, n in enumerate(names) if not n.startswith("_blank")]
    width = len(headers)
    grid = [raw if len(raw) >= width else [*raw, *[""] * (width - len(raw))]
            for raw in rows[header_index + 1:]]
    # Cleaned a column at a time (one type check per column, not per cell): consolidation reads
    # many small files this way.
    columns = list(zip(*grid)) if grid else [()] * width
    cleaned = [_clean_column(columns[i]) for i in keep]
    body, row_numbers = [], []
    blank = (None,) * len(keep)
    for excel_row, values in enumerate(zip(*cleaned), start=header_index + 2):
        if values != blank:
            body.append(list(values))
            row_numbers.append(excel_row)
    if totals:
        # Only a table over a contract column: staff's own table beside the ledger, even under
        # headers of theirs in our header row (read as extra columns), has its totals row on a
        # row that may hold a record (汇总 under 核对次数 beside C01-0004): that record stays.
        ours = [i for i in keep if headers[i] in by_header]
        skip = {r for area in totals if any(area.first_col <= i <= area.last_col for i in ours)
                for r in range(max(area.first_row, header_index + 2), area.last_row + 1)}
        if skip:
            kept = [n for n, r in enumerate(row_numbers) if r not in skip]
            body, row_numbers = [body[n] for n in kept], [row_numbers[n] for n in kept]
    return [names[i] for i in keep], body, row_numbers, headers


# Cell types that ``_cell_value`` returns unchanged, apart from text.
_KEPT_TYPES = frozenset({str, int, bool, date, datetime, time, timedelta, type(None)})


def _clean_column(values: tuple) -> list:
    """``_cell_value`` over one column, with the loop specialised to the types present."""
    kinds = set(map(type, values))
    if kinds <= _KEPT_TYPES:
        return [(v.strip() or None) if type(v) is str else v for v in values]
    if kinds <= _KEPT_TYPES | {float}:
        return [(v.strip() or None) if type(v) is str
                else (int(v) if type(v) is float and v.is_integer() else v) for v in values]
    return [None if v == "" else _cell_value(v) for v in values]


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
    return best_header_row(rows, sheet)[0]


def best_header_row(rows: list[list], sheet: schema.Sheet) -> tuple[int | None, int]:
    """``find_header_row``'s row, and how many contract headers it holds."""
    wanted = set(sheet.headers)
    best, best_hits = None, 0
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        hits = len(wanted & {clean_header(v) for v in row})
        if hits > best_hits:
            best, best_hits = i, hits
    return best, best_hits


def empty_frame(sheet: schema.Sheet) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({**{c.key: pd.Series(dtype=object) for c in sheet.columns},
                         ROW: pd.Series(dtype=int)})


def settings_from_frame(frame: pd.DataFrame | None) -> dict[str, object]:
    """设置 rows → {setting key: typed value}, as ``normalise.read_setting`` reads each (the one
    reading the validator and the roll-up use too): defaults for settings left out, blank or
    unusable (the validator reports those); unknown items keyed by their own text, as typed."""
    # Imported here: this module is also run where pandas (imported by normalise) is never loaded.
    from ..normalise import read_setting, setting_default

    values: dict[str, object] = {s.key: setting_default(s) for s in schema.SETTING_ITEMS}
    if frame is None:
        return values
    for item, value in zip(frame["item"], frame["value"]):
        if item is None or value is None:
            continue
        if isinstance(value, datetime):
            value = value.date()
        setting = schema.SETTINGS_BY_ITEM.get(str(item))
        if setting is None:
            values[str(item)] = value
            continue
        typed = read_setting(setting, value).value
        if typed is not None:
            values[setting.key] = typed
    return values
