"""Reading one submission form for consolidation: its 台账 rows, in one calamine pass, no frame.

Kept free of pandas (``macros.book.read`` imports it only where frames are built): consolidation
reads the inbox ahead in a second process that imports this module alone, so it starts fast.
"""

from __future__ import annotations

import html
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from python_calamine import CalamineWorkbook

from . import schema
from .book.ooxml import (
    FORMULA_PREFIXES,
    WORKSHEET_PART,
    ZipParts,
    col_name,
    has_formula,
    parse_rows,
    sheet_parts,
)
from .book.read import (
    HEADER_SEARCH_ROWS,
    actual_sheet_name,
    best_header_row,
    calamine_failure,
    clean_header,
    find_header_row,
    open_book,
    parse_grid,
    sheet_tables,
)
from .errors import HealthbookError

LEDGER = schema.LEDGER.name
KEY, COMMITTEE = "record_id", "committee_id"
KEYS = schema.LEDGER.keys
KEY_INDEX, COMMITTEE_INDEX = KEYS.index(KEY), KEYS.index(COMMITTEE)
# Prefilled form rows carry only the committee: a row is data when any of these holds a value.
DATA_INDEXES = [i for i, k in enumerate(KEYS) if k not in (COMMITTEE, "source")]
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)
_data_of = itemgetter(*DATA_INDEXES)
# A hand-typed sum row at the foot of a form (not an Excel table's totals row): the label, whitespace
# removed, in a row without 日期 or 项目编号, and without a 记录编号 other than the label itself
# (column A of the generated form is 记录编号: that is where every clerk types 合计).
TOTAL_LABELS = frozenset({"合计", "总计", "小计", "共计", "累计", "总数"})
_NO_TOTALS = [KEYS.index(k) for k in ("date", "project_id")]
# A header with a unit or note in brackets after it: "参与人数（人）", "完成数量(人次)". Only one pair
# of round brackets: "参与人数【人】" or "完成数量（个）（次）" stay columns of the maker's own.
_BRACKETED = re.compile(r"^(?P<header>[^（(]+)[（(][^）)]*[）)]$")


@dataclass
class Submission:
    """One submission as read: its ledger rows (raw values in contract column order)."""

    path: Path
    rows: list[list]  # aligned with schema.LEDGER.keys
    row_numbers: list[int]  # Excel rows
    columns: set[str]  # the contract columns the file carries
    info: dict[str, list] | None = None  # a generated form's hidden info sheet: its columns
    # Positions in ``rows`` holding text that starts like a formula (checked closely later).
    formula_rows: list[int] = field(default_factory=list)
    # (position in ``rows``, column key) of cells holding a real formula: calamine gives their
    # last computed value (none when the file was never saved by Excel), the formula is dropped.
    formula_cells: list[tuple[int, str]] = field(default_factory=list)
    # (position in ``rows``, column key, what Excel shows) of cells holding an error value (#N/A,
    # #DIV/0!...): calamine reads them blank, which would clear the master's value unannounced.
    error_cells: list[tuple[int, str, str]] = field(default_factory=list)
    # A form prefilled with records: each one's values as given (by 记录编号), keyed by column key.
    base: dict[str, dict] | None = None
    sheet_name: str = LEDGER  # the sheet read (a copy named "台账 (2)" when there is no 台账)
    # Header cells read as a contract column they name with a bracketed note: (Excel row, as typed, header).
    aliased: list[tuple[int, str, str]] = field(default_factory=list)
    totals_rows: list[int] = field(default_factory=list)  # hand-typed 合计 rows left out (Excel rows)
    # Blank cells of rows that lie under a merged cell's first row: (Excel row, column key) → "B8:B9".
    merged: dict[tuple[int, str], str] = field(default_factory=dict)
    passed_over: str | None = None  # an empty 台账 left for the one filled copy read instead
    # A hand-made form's columns of its own that hold values in records: header → Excel rows.
    # They are not merged (the ledger has no such column): the receipt must say so.
    extra_columns: dict[str, list[int]] = field(default_factory=dict)
    # (position in ``rows``, column key) of formula cells whose result the file does not hold at
    # all (no <v>: never computed), as against a result that is blank text (=IF(…,"",…)).
    unsaved_formula_cells: list[tuple[int, str]] = field(default_factory=list)

    @property
    def form_info(self):
        """What a generated form's hidden info sheet says (``forms.FormInfo``), or None."""
        if self.info is None:
            return None
        from .forms import read_form_info  # forms builds workbooks (xlsxwriter): not for the reader process

        return read_form_info(self.info)

    @property
    def info_committee(self) -> str | None:
        """The committee named by a generated form's hidden info sheet."""
        info = self.form_info
        return info.committee_id if info else None

    @property
    def info_master(self) -> str:
        """The file name of the master a generated form was made from ("" when not known)."""
        info = self.form_info
        return info.master if info else ""

    @property
    def keys(self) -> set[str]:
        return {str(r[KEY_INDEX]).strip() for r in self.rows if r[KEY_INDEX] is not None}


class FileUnreadable(HealthbookError):
    def __init__(self, path: Path, reason: str, sheet: str = LEDGER):
        super().__init__(f"{path.name} 的工作表“{sheet}”无法读取（{reason}）。请用 Excel 打开检查后重新保存。")


class LedgerElsewhere(HealthbookError):
    def __init__(self, path: Path, ledger: str, sheets: list[str]):
        found = "、".join(f"“{n}”" for n in sheets)
        super().__init__(
            f"{path.name} 的工作表“{ledger}”是空的，记录填在了 {found} 几张工作表里，无法确定以哪张为准。"
            f"请把记录都填到“{LEDGER}”表中（删去其他副本），然后重新提交。")


class NoLedgerSheet(HealthbookError):
    def __init__(self, path: Path, sheets: list[str]):
        found = "、".join(f"“{n}”" for n in sheets) or "（无）"
        super().__init__(
            f"{path.name} 缺少工作表“{LEDGER}”（现有工作表：{found}）。请把填写记录的工作表改名为“{LEDGER}”"
            f"（双击工作表标签即可改名），或使用街道下发的填报表重新填写。")


def ledger_sheet_name(book: CalamineWorkbook) -> str | None:
    """The sheet holding a submission's records: its 台账 (matched like headers), else the one
    sheet whose name holds 台账 and whose first rows hold a ledger header (Excel names a copied
    sheet "台账 (2)"; "11月台账"; a notes sheet "台账填写说明" beside it is not the one)."""
    exact = {clean_header(n): n for n in book.sheet_names}.get(LEDGER)
    if exact is not None:
        return exact
    like = _like_ledger_sheets(book)
    return like[0] if len(like) == 1 else None


def _like_ledger_sheets(book: CalamineWorkbook) -> list[str]:
    """Sheets whose name holds 台账 and whose first rows hold a ledger header."""
    return [n for n in book.sheet_names if LEDGER in clean_header(n) and _holds_ledger_header(book, n)]


# A hand-made form's own columns that hold nothing to lose: a running number.
UNREAD_COLUMNS = frozenset({"序号", "行号", "No.", "NO.", "no."})
UNHEADED = " 列（无表头）"  # Submission.extra_columns' name for values typed under no header
# Contract headers a row must hold to be taken for the ledger's header on a sheet not named 台账.
LIKE_HEADER_HITS = 3


def _holds_ledger_header(book: CalamineWorkbook, name: str) -> bool:
    try:
        grid = book.get_sheet_by_name(name).to_python(skip_empty_area=False, nrows=HEADER_SEARCH_ROWS)
    except BaseException as exc:  # calamine's private error types, or a Rust panic
        if not calamine_failure(exc):
            raise
        return False
    return best_header_row(grid, schema.LEDGER)[1] >= min(LIKE_HEADER_HITS, len(schema.LEDGER.headers))


def read_submission(path: Path) -> Submission:
    """Read the 台账 sheet (and a generated form's hidden info sheet): one calamine pass, no frame."""
    book, names = open_book(path)
    ledger_name = ledger_sheet_name(book)
    if ledger_name is None:
        raise NoLedgerSheet(path, book.sheet_names)
    passed_over = None
    parsed = _ledger_rows(path, book, names, ledger_name)
    if not parsed[0] and clean_header(ledger_name) == LEDGER:
        # An empty 台账 beside a filled copy ("台账 (2)"): the records are there, not nowhere.
        filled = [(n, other) for n in _like_ledger_sheets(book) if clean_header(n) != LEDGER
                  for other in [_filled_rows(path, book, names, n)] if other]
        if len(filled) > 1:
            raise LedgerElsewhere(path, ledger_name, [n for n, _ in filled])
        if filled:
            passed_over = ledger_name
            ledger_name, parsed = filled[0]
    rows, numbers, totals_rows, aliased, merges, names, headers, part_key, extras = parsed
    info = None
    info_name = actual_sheet_name(book, schema.FORM_INFO.name)
    if info_name is not None:
        # A small grid: parsed without a DataFrame (this runs once per file).
        info_grid = book.get_sheet_by_name(info_name).to_python(skip_empty_area=False)
        info_names, info_rows, _, _ = parse_grid(info_grid, schema.FORM_INFO, path)
        info = {name: list(values) for name, values in zip(info_names, zip(*info_rows))} if info_rows else None
    base = None
    base_name = actual_sheet_name(book, schema.FORM_BASE.name)
    if base_name is not None:
        base_grid = book.get_sheet_by_name(base_name).to_python(skip_empty_area=False)
        base_names, base_rows, _, _ = parse_grid(base_grid, schema.FORM_BASE, path)
        given = [dict(zip(base_names, values)) for values in base_rows]
        base = {str(row[KEY]).strip(): row for row in given if row.get(KEY) is not None}
    formulas, unsaved, errors = [], [], []
    cells, error_values = special_cells(path, part_key)
    if cells or error_values:
        by_header = schema.LEDGER.by_header()
        key_of = {c: by_header[h].key for c, h in enumerate(headers) if h in by_header}
        position = {n: i for i, n in enumerate(numbers)}
        formulas = sorted({(position[r], key_of[c]) for r, c, _ in cells if r in position and c in key_of})
        unsaved = sorted({(position[r], key_of[c]) for r, c, saved in cells
                          if not saved and r in position and c in key_of})
        errors = sorted({(position[r], key_of[c], shown) for r, c, shown in error_values
                         if r in position and c in key_of})
    return Submission(path, rows, numbers, set(names) & set(KEYS), info, _formula_rows(rows), formulas, errors,
                      base, ledger_name, aliased, totals_rows, _merged_blanks(merges, rows, numbers, headers),
                      passed_over, extras, unsaved_formula_cells=unsaved)


def _ledger_rows(path: Path, book: CalamineWorkbook, sheet_names: list[str], ledger_name: str) -> tuple:
    """The sheet's records (contract column order), their Excel rows, the 合计 rows left out, the
    headers read as the column they name, its merged ranges, column names, headers, part key."""
    try:
        sheet = book.get_sheet_by_name(ledger_name)
        grid = sheet.to_python(skip_empty_area=False)
        merges = sheet.merged_cell_ranges or []
    except BaseException as exc:  # calamine's private error types, or a Rust panic
        if not calamine_failure(exc):
            raise
        raise FileUnreadable(path, str(exc)[:60], ledger_name) from exc
    aliased = _alias_headers(grid)
    # A form staff turned into a table: its totals row (汇总), and empty rows Excel filled with a
    # calculated column's formulas, are not records.
    part_key = clean_header(ledger_name)  # as ``sheet_parts`` keys it
    tables = sheet_tables(path, sheet_names, [part_key]).get(part_key)
    names, body, row_numbers, headers = parse_grid(grid, schema.LEDGER, path, tables.not_records(grid) if tables else None,
                                                   ledger_name)
    # Each row in contract column order (a column the file lacks reads the None put at the end).
    pick = itemgetter(*[names.index(k) if k in names else len(names) for k in KEYS])
    rows, numbers, totals_rows = [], [], []
    extra_at = [(i, n) for i, n in enumerate(names) if n not in KEYS and n not in UNREAD_COLUMNS]
    extras: dict[str, list[int]] = {}
    unnamed = [c for c, header in enumerate(headers) if not header]
    for values, excel_row in zip(body, row_numbers):
        values.append(None)
        row = list(pick(values))
        if _data_of(row).count(None) < len(DATA_INDEXES):
            if _is_totals_row(values, row):
                totals_rows.append(excel_row)
                continue
            rows.append(row)
            numbers.append(excel_row)
            for i, name in extra_at:
                if values[i] is not None:
                    extras.setdefault(name, []).append(excel_row)
            cells = grid[excel_row - 1]
            for c in unnamed:  # typed beside the table, under no header
                value = cells[c] if c < len(cells) else None
                if value is not None and (value.strip() if isinstance(value, str) else value != ""):
                    extras.setdefault(f"{col_name(c)}{UNHEADED}", []).append(excel_row)
    return rows, numbers, totals_rows, aliased, merges, names, headers, part_key, extras


def _filled_rows(path: Path, book: CalamineWorkbook, sheet_names: list[str], name: str) -> tuple | None:
    """``_ledger_rows`` of another sheet when it holds records; None when it holds none or cannot be read."""
    try:
        parsed = _ledger_rows(path, book, sheet_names, name)
    except HealthbookError:
        return None
    return parsed if parsed[0] else None


def _alias_headers(grid: list[list]) -> list[tuple[int, str, str]]:
    """Read a header cell that names a contract column with a bracketed note ("参与人数（人）") as
    that column, in place in ``grid`` (a hand-made form's own header row; no other row is changed):
    without it an optional column would be silently left out as an extra one. Returns
    (Excel row, as typed, header)."""
    by_header = schema.LEDGER.by_header()

    def aliases(row: list) -> dict[int, str]:
        present = {clean_header(v) for v in row}
        found = {}
        for c, value in enumerate(row):
            m = _BRACKETED.match(clean_header(value)) if isinstance(value, str) else None
            if m and m["header"] in by_header and m["header"] not in present:
                found[c] = m["header"]
                present.add(m["header"])
        return found

    head = grid[:HEADER_SEARCH_ROWS]
    found = [aliases(row) for row in head]
    if not any(found):
        return []
    loose = [[named.get(c, v) for c, v in enumerate(row)] for row, named in zip(head, found)]
    header = find_header_row(loose, schema.LEDGER)
    if header is None:
        return []
    row = grid[header]
    aliased = [(header + 1, row[c].strip(), name) for c, name in found[header].items()]
    for c, name in found[header].items():
        row[c] = name
    return aliased


def is_total_label(value: object) -> bool:
    """"合计", " 合　计 ", "合计：", "（合计）": a totals label, not data (NFKC: full-width forms too)."""
    if type(value) is not str:
        return False
    return clean_header(unicodedata.normalize("NFKC", value)).strip(":()[]") in TOTAL_LABELS


def _is_totals_row(values: list, row: list) -> bool:
    """A 合计 row typed by hand: a total label in any cell, no 日期 or 项目编号, and no 记录编号 but
    the label itself (a 记录编号 "合计" is no record's number)."""
    if any(row[i] is not None for i in _NO_TOTALS):
        return False
    key = row[KEY_INDEX]
    if key is not None and not is_total_label(key):
        return False
    return any(is_total_label(v) for v in values)


def _merged_blanks(merges: list, rows: list[list], numbers: list[int], headers: list[str]) -> dict:
    """(Excel row, column key) → the merged range, for each blank contract cell under the first row
    of a vertical merge: Excel shows the merged value there, the file holds it in the first row only."""
    if not merges:
        return {}
    by_header = schema.LEDGER.by_header()
    position = {n: i for i, n in enumerate(numbers)}
    found = {}
    for (top, left), (bottom, right) in merges:
        for c in range(left, right + 1):
            column = by_header.get(headers[c]) if c < len(headers) else None
            if column is None or bottom == top:
                continue
            where = f"{col_name(left)}{top + 1}:{col_name(right)}{bottom + 1}"
            for r in range(top + 2, bottom + 2):  # Excel rows below the first
                i = position.get(r)
                if i is not None and rows[i][KEYS.index(column.key)] is None:
                    found[(r, column.key)] = where
    return found


def _has_error_value(data: bytes) -> bool:
    return b't="e"' in data or b"t='e'" in data


_VALUE = re.compile(r"<(?:\w+:)?v>([^<]*)<")


def _result_saved(body: str, kind: str | None) -> bool:
    """Whether a formula cell holds the result it last showed: a value, or blank text (Excel and
    LibreOffice write ``t="str"`` with an empty ``<v>``). openpyxl writes an empty ``<v>`` with no
    type for a formula it never computed."""
    value = _VALUE.search(body)
    return bool(value and value.group(1)) or (kind == "str" and value is not None)


def special_cells(path: Path, sheet: str) -> tuple[list[tuple[int, int, bool]], list[tuple[int, int, str]]]:
    """The cells of ``sheet`` calamine does not tell about: (Excel row, 0-based column, whether its
    result is saved) of those holding a formula, and (Excel row, column, the error shown) of those
    holding an error value; none when the file cannot be looked into (calamine has read it already)."""
    try:
        with zipfile.ZipFile(path) as zf:
            worksheets = {n: zf.read(n) for n in zf.namelist() if WORKSHEET_PART.match(n)}
            if worksheets and not any(has_formula(d) or _has_error_value(d) for d in worksheets.values()):
                return [], []  # the usual case, told without parsing the workbook's structure
            part = sheet_parts(ZipParts(zf)).get(sheet)
            data = worksheets.get(part) or (zf.read(part) if part else b"")
    except Exception:  # noqa: BLE001 — only a closer look: the file was read without it
        return [], []
    formulas, errors = has_formula(data), _has_error_value(data)  # data validations' <formula1> are not cells
    if not (formulas or errors):
        return [], []
    found, shown = [], []
    for row in parse_rows(data.decode("utf-8", "replace")):
        for cell in row.cells:
            if formulas and cell.body and has_formula(cell.body.encode()):
                found.append((row.r, cell.col, _result_saved(cell.body, cell.attrs.get("t"))))
            if errors and cell.attrs.get("t") == "e":
                value = _VALUE.search(cell.body or "")
                shown.append((row.r, cell.col, html.unescape(value.group(1)) if value else "#N/A"))
    return found, shown


def _formula_rows(rows: list[list]) -> list[int]:
    """Positions of the rows with a text cell starting like a formula (= + - @)."""
    found = set()
    for column in zip(*rows):
        for n, value in enumerate(column):
            if type(value) is str and value[:1] in _FORMULA_FIRST:
                found.add(n)
    return sorted(found)


def read_for_consolidation(path: Path) -> Submission | str:
    """``read_submission`` for the reader process: a file's problem comes back as its Chinese text
    (the named errors take several arguments and would not survive pickling)."""
    try:
        return read_submission(path)
    except HealthbookError as err:
        return str(err)


RECEIPT_TEMPLATE = "receipt.html"
# What the receipt template may use (consolidate.receipt_context gives exactly these).
RECEIPT_VARIABLES = ("contact", "file", "committee_id", "committee_name", "status", "status_text", "time", "master",
                     "rows_added", "rows_updated", "rows_unchanged", "rows", "errors", "warnings")


def receipt_html(templates: str | None, context: dict, fresh: bool = False) -> str:
    """A committee's receipt (回执) as HTML (``templates``: the office's own copies, tried first;
    ``fresh``: look again whether they changed). A template the office broke raises the Chinese
    ``TemplateProblem`` naming the tag."""
    from .render.env import HtmlTemplates  # jinja2 only: this runs in the worker process too

    return HtmlTemplates.for_folder(Path(templates) if templates else None, fresh).render(
        RECEIPT_TEMPLATE, context, RECEIPT_VARIABLES)


def render_receipt(path: Path, templates: str | None, context: dict) -> None:
    """Render a receipt and write it. Consolidation's worker process does this while the main
    process merges; a failure there is done again here, where its error shows."""
    write_text(path, receipt_html(templates, context))


def write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file through a temporary file beside it: never a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def watch_parent() -> None:
    """Initializer of the reader process: end it as soon as the consolidating process is gone,
    even killed (SIGKILL), instead of waiting for work forever."""
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
