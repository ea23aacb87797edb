"""Rewrite an owned sheet's cell data inside its worksheet XML.

Only ``<sheetData>``, ``<dimension>`` and (when links are asked for) ``<hyperlinks>`` are
replaced; columns, views, frozen panes, data validations, conditional formats and extensions
keep their bytes. Layout:

* output sheets: the contract's columns in contract order from column A, the header in the row
  where it already is (row 1 for a blank sheet), the banner (``SheetWrite.note``) one blank
  column right of the last header;
* the ledger: columns stay where staff put them (matched by header after trimming), extra
  columns keep their place, missing contract columns are appended; rows carrying ``_row`` are
  written at that Excel row, others below the last one. A cell whose value did not change keeps
  its XML verbatim (formula, rich text, shared string, staff's formatting); cells in columns
  without a header are carried over untouched.

A row that already exists (a formatted blank row filled in, a changed row) keeps its ``<row>``
attributes — height, style, hidden, outline level — when its cells are written anew.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from numbers import Integral
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr, unescape

from python_calamine import CalamineWorkbook

from .. import schema
from ..errors import DuplicateColumns, HealthbookError, MissingColumns
from .ooxml import (
    AFTER_HYPERLINKS,
    CELL_RE,
    DATE1904_OFFSET,
    DIMENSION_RE,
    EPOCH,
    FORMULA_PREFIXES,
    HOLDS_VALUE_RE,
    HYPERLINKS_RE,
    MAX_TEXT,
    NS_MAIN,
    ROW_RE,
    Cell,
    Row,
    ZipParts,
    attrs_of,
    cell_value,
    cell_xml,
    col_index,
    col_name,
    find_top,
    insert_before_any,
    number_text,
    parse_rows,
    plain,
    ref_of,
    rels_name,
    row_starts,
    row_xml,
    sheet_data_span,
    sheet_location,
    sheet_parts,
    split_ref,
    t_open,
    to_serial,
    workbook_part,
)
from .package import Package
from .read import HEADER_SEARCH_ROWS, ROW, clean_header, frame_from_rows, records
from .styles import is_date_code
from .tables import (
    calculated_bodies,
    formula_only,
    last_value_row,
    sheet_totals,
    table_headers,
)
from .verify import grid, has_bool, is_bool
from .write_types import FILLS, SheetWrite

_COL_RE = re.compile(r"<(?:\w+:)?col\b[^>]*?/>", re.S)
_R_ATTR = re.compile(r'\br="(\d+)"')
_ROW_OPEN = re.compile(r"<(?:\w+:)?row\b([^>]*?)/?>")


def _row_attrs(row_text: str, r: int) -> str:
    """The attributes of an existing ``<row>`` (height, style, hidden, outline level...), kept when
    its cells are written anew; ``row_xml`` drops the ``spans`` hint."""
    attrs = _ROW_OPEN.match(row_text).group(1)
    return attrs if _R_ATTR.search(attrs) else f' r="{r}"{attrs}'


_ROW_STYLE = re.compile(r'\ss="(\d+)"')
_CUSTOM_FORMAT = re.compile(r'\scustomFormat="(?:1|true)"')


def row_style(attrs: str) -> int | None:
    """The style staff gave a whole row (``customFormat``), which Excel gives a cell typed into it."""
    if _CUSTOM_FORMAT.search(attrs):
        m = _ROW_STYLE.search(attrs)
        return int(m.group(1)) if m else None
    return None


@dataclass
class Written:
    """What a sheet now holds, for the re-read check.

    ``cells``: (row, col) → value for header and banner cells; ``rows``: row → values in the
    column order ``order`` (compact: a 100k-row ledger is checked without a dict per cell);
    ``blocks``: (rows, values column by column in ``order``) for rows encoded in bulk.
    """

    sheet: str
    cells: dict[tuple[int, int], object] = field(default_factory=dict)
    rows: dict[int, list] = field(default_factory=dict)
    blocks: list[tuple[list[int], list[list]]] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    header_row: int = 1
    columns: dict[str, int] = field(default_factory=dict)  # column key → 0-based index
    # An output sheet's table totals rows moved down below the rows written: old first row → rows moved
    totals_moved: dict[int, int] = field(default_factory=dict)


def header_layout(rows: list[Row], sheet: schema.Sheet, strings: list[str]) -> tuple[int | None, dict[int, str]]:
    """(Excel row of the header, {column index: cleaned header text}) — None when there is none."""
    wanted = set(sheet.headers)
    best, best_hits, best_cells = None, 0, {}
    for row in rows:
        if row.r > HEADER_SEARCH_ROWS:
            break
        cells = {}
        for cell in row.cells:
            value = cell_value(cell, strings)
            if value is not None and str(value).strip():
                cells[cell.col] = clean_header(value)
        hits = len(wanted & set(cells.values()))
        if hits > best_hits:
            best, best_hits, best_cells = row.r, hits, cells
    return best, best_cells


def col_styles(xml: str) -> dict[int, int]:
    """Column index → default style from ``<cols>`` (what Excel applies to a new cell there)."""
    found = {}
    for m in _COL_RE.finditer(xml[: sheet_data_span(xml)[0]]):
        attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(0)))
        if "style" in attrs:
            for c in range(int(attrs["min"]) - 1, min(int(attrs["max"]), 300)):
                found[c] = int(attrs["style"])
    return found


# The common, unprefixed cell as Excel, xlsxwriter and openpyxl write it: r first, then s, then t.
_CELL_FAST = re.compile(r'(<c r="([A-Z]+)(\d+)"(?: s="(\d+)")?(?: t="(\w+)")?([^>]*?)(?:/>|>(.*?)</c>))', re.S)
_ROW_FAST = re.compile(r'(<row r="(\d+)"([^>]*?)(?:/>|>.*?</row>))', re.S)
_ROW_NOT_FAST = re.compile(r'<row(?! r=")[\s>/]')
_NOT_FAST = re.compile(r'<c(?:>|/>|\s(?!r="))')
_V = re.compile(r"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.S)  # <x:v> in a prefixed sheet


def _equal(a: object, b: object) -> bool:
    """``a == b``, False where the comparison has no truth value (pandas' NA)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _same_cell(a: object, b: object) -> bool:
    """Whether a cell that reads ``a`` (calamine) already shows ``b`` (blank: ""): a boolean is not
    a number (Python's ``True == 1`` and ``False == 0`` are not Excel's TRUE and 1), while
    1 == 1.0 (calamine reads numbers as floats); text staff typed with spaces around it, or a
    cell holding only spaces, shows what the reader gave for it (trimmed, blank) — as ``_same``."""
    if type(a) is str and type(b) is str:
        return a == b or a.strip() == b
    return is_bool(a) == is_bool(b) and _equal(a, b)


class _OldRows(Mapping):
    """The old sheetData's rows by number, held as (start, end) offsets into it: a row's text is
    cut only when asked for, and rows kept as they were are copied back as a few long runs."""

    def __init__(self, data: str, spans: dict[int, tuple[int, int]]):
        self.data, self.spans = data, spans

    def __getitem__(self, r: int) -> str:
        a, b = self.spans[r]
        return self.data[a:b]

    def __iter__(self) -> Iterator[int]:
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)

    def __contains__(self, r: object) -> bool:
        return r in self.spans

    def has_value(self, r: int) -> bool:
        a, b = self.spans[r]
        return HOLDS_VALUE_RE.search(self.data, a, b) is not None


_COLS: dict[str, int] = {}


def _col(letters: str) -> int:
    c = _COLS.get(letters)
    if c is None:
        c = _COLS[letters] = col_index(letters)
    return c


# An existing cell: (style, type, body or None, its XML verbatim).
_Old = tuple


def _cells_in(row_xml: str, fast: bool) -> dict[int, _Old]:
    if not fast:
        [row] = parse_rows(row_xml) or [None]
        return {c.col: (c.style, c.attrs.get("t"), c.body, c.xml) for c in row.cells} if row else {}
    found = {}
    for whole, letters, _, s, t, rest, body in _CELL_FAST.findall(row_xml):
        if rest.strip():  # attributes in another order: read them properly
            attrs = attrs_of(whole[2:whole.index(">")])
            s, t = attrs.get("s", s), attrs.get("t", t)
        found[_col(letters)] = (int(s) if s else 0, t or None, body if whole[-2:] != "/>" else None, whole)
    return found


def _reads_blank(old_grid: list[list], r: int, columns: set[int]) -> bool:
    """Whether Excel row ``r`` holds nothing in ``columns`` as the reader sees it (text trimmed)."""
    line = old_grid[r - 1] if r - 1 < len(old_grid) else ()
    return not any(c < len(line) and (v := line[c]) != "" and not (type(v) is str and not v.strip())
                   for c in columns)


# Excel stores a formula filled down a column once, in its first cell (the master: t="shared",
# ref, si and the text); the others say only <f t="shared" si="N"/>. Writing a value over the
# master would leave them pointing at nothing (Excel then repairs the file and drops them).
_SHARED = 't="shared"'
_F_ELEMENT = re.compile(r"<(?P<p>(?:\w+:)?)f\b(?P<attrs>[^>]*?)(?:/>|>(?P<text>.*?)</(?P=p)f>)", re.S)


def _note_shared_master(cell: str, at: str, orphaned: dict[str, tuple[str, str, range]]) -> None:
    """Remember the shared formula whose master ``cell`` (at ``at``) is about to be written over."""
    m = _F_ELEMENT.search(cell)
    if not m or not m.group("text"):
        return  # a dependent (no text of its own): the others keep their master
    attrs = attrs_of(m.group("attrs"))
    if attrs.get("t") == "shared" and "si" in attrs and "ref" in attrs:
        first, _, last = attrs["ref"].partition(":")
        rows = range(split_ref(first)[0], split_ref(last or first)[0] + 1)
        orphaned[attrs["si"]] = (unescape(m.group("text"), _ENTITIES), at, rows)


_ENTITIES = {"&quot;": '"', "&apos;": "'"}


def _unshare(orphaned: dict[str, tuple[str, str, range]], new_rows: dict[int, list[tuple[int, str]]],
             verbatim: dict[int, str | tuple[int, int]], old_rows: _OldRows) -> None:
    """Give each cell that shared a formula whose master was written over the formula itself,
    translated to its own place (=F10 filled down reads =F11 in the next row), as Excel does."""
    from openpyxl.formula.translate import Translator  # rarely needed: imported only then

    def fixed(row_text: str) -> str:
        def cell(m: re.Match) -> str:
            body = m.group("body")
            if not body or _SHARED not in body:
                return m.group(0)
            at = attrs_of(m.group("attrs")).get("r", "")

            def own(f: re.Match) -> str:
                attrs = attrs_of(f.group("attrs"))
                found = orphaned.get(attrs.get("si", "")) if attrs.get("t") == "shared" else None
                if found is None or f.group("text") or not at:
                    return f.group(0)
                formula = Translator(f"={found[0]}", origin=found[1]).translate_formula(at)[1:]
                return f"<{f.group('p')}f>{escape(formula)}</{f.group('p')}f>"

            return m.group(0)[:m.start("body") - m.start()] + _F_ELEMENT.sub(own, body) + \
                m.group(0)[m.end("body") - m.start():]
        return CELL_RE.sub(cell, row_text)

    for r in sorted(set().union(*(found[2] for found in orphaned.values()))):
        kept = verbatim.get(r)
        if type(kept) is tuple:
            text = old_rows[r]
            if _SHARED in text:
                verbatim[r] = fixed(text)
        elif type(kept) is str:
            if _SHARED in kept:
                verbatim[r] = fixed(kept)
        elif r in new_rows:
            new_rows[r] = [(c, fixed(x) if _SHARED in x else x) for c, x in new_rows[r]]


_CELL_START = re.compile(r"<((?:\w+:)?)c\b([^>]*?)/?>")
_T_ATTR = re.compile(r"""\st\s*=\s*["'][^"']*["']""")


def _uncached(cell: str) -> str:
    """A formula cell without its cached result (stale once the row holds a record)."""
    start = _CELL_START.match(cell)
    f = _F_ELEMENT.search(cell, start.end())
    p = start.group(1)
    return f"<{p}c{_T_ATTR.sub('', start.group(2))}>{f.group(0)}</{p}c>"


class TotalsRowFormula(HealthbookError):
    """A totals row to move down holds a formula with cell references (Excel would stretch them;
    moved, they would add up the wrong rows)."""

    def __init__(self, sheet: str, row: int, ref: str, formula: str):
        super().__init__(f"工作表“{sheet}”第 {row} 行是表格的汇总行，新的数据行需要把它下移，但其中 {ref} 的公式"
                         f"“={formula}”引用了具体单元格，下移后会算错。请改用表格的汇总行功能（表设计 → 汇总行，"
                         "公式如 SUBTOTAL(109,表名[列名])），或删掉这一行的公式后重新运行。")


class ArrayFormulaCell(HealthbookError):
    """A value to write inside an array formula staff entered over several cells (Ctrl+Shift+Enter
    or a spilled dynamic array): Excel recalculates the array and the value is lost."""

    def __init__(self, sheet: str, cell: str, value: object, area: str, formula: str):
        shown = "空白" if value is None else f"“{value}”"
        super().__init__(f"工作表“{sheet}”的 {area} 是一个数组公式（={formula}），程序要把其中的 {cell} 改为{shown}，"
                         "但 Excel 打开时会用公式的结果盖掉它，本次未写入。请在 Excel 中选中 "
                         f"{area}，复制后“选择性粘贴 → 数值”（或改用普通公式），保存后重新运行。")


_ARRAY_HINT = 't="array"'
_ARRAY_F = re.compile(r"<(?:\w+:)?f\b([^>]*?\st=\"array\"[^>]*?)(?:/>|>([^<]*)<)")


def _array_cells(data: str) -> dict[tuple[int, int], tuple[str, str]]:
    """(row, column) of each cell inside an array formula but its first → (area, formula)."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for m in _ARRAY_F.finditer(data):
        area = attrs_of(m.group(1)).get("ref", "")
        corners = [split_ref(x) for x in area.split(":")] if area else []
        if len(corners) != 2:
            continue
        (r1, c1), (r2, c2) = corners
        formula = unescape(m.group(2) or "")
        for r in range(r1, r2 + 1):
            for c in range(c1, c2 + 1):
                if (r, c) != (r1, c1):
                    found[(r, c)] = (area, formula)
    return found


_ROW_R = re.compile(r"""(<(?:\w+:)?row\b[^>]*?\sr\s*=\s*["'])\d+(["'])""")
_CELL_R = re.compile(r"""(<(?:\w+:)?c\b[^>]*?\sr\s*=\s*["'][A-Z]+)\d+(["'])""")
_A1_REF = re.compile(r"(?<![A-Za-z_\[.])\$?[A-Z]{1,3}\$?\d+(?![\w\[(])")


def _refers_to_cells_of(reference: str, sheet: str) -> bool:
    """Whether a formula's range operand names cells of ``sheet`` (no sheet given, or this one):
    moving the row would leave those pointing at the wrong rows; another sheet's cells do not move."""
    where, bang, cells = reference.rpartition("!")
    # Tab names as headers are matched: '居委会进度 ' (a stray space staff typed) is this sheet.
    if bang and clean_header(where.strip("'").replace("''", "'")) != clean_header(sheet):
        return False
    return _A1_REF.search(cells) is not None


def _moved_row(text: str, old: int, new: int, sheet: str) -> str:
    """An output sheet's table totals row ``<row>`` moved from row ``old`` to ``new``: its
    number and its cells' references; formulas must not refer to cells (structured references,
    as Excel's totals row writes them, need no change)."""
    from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError  # only here: rarely needed

    for cell in Row(old, "", xml=text).cells:
        f = _F_ELEMENT.search(cell.body or "")
        if f is None or not f.group("text"):
            continue
        formula = html.unescape(f.group("text"))  # openpyxl writes &#36827; for 进
        try:
            ranges = [t.value for t in Tokenizer("=" + formula).items
                      if t.type == Token.OPERAND and t.subtype == Token.RANGE and "[" not in t.value]
        except TokenizerError:
            ranges = [re.sub(r'\[[^\]]*\]|"[^"]*"', "", formula)]
        if any(_refers_to_cells_of(value, sheet) for value in ranges):
            raise TotalsRowFormula(sheet, old, cell.attrs.get("r", ""), formula)
        if 'ref="' in f.group("attrs"):  # a shared or array formula's range: in this row only
            raise TotalsRowFormula(sheet, old, cell.attrs.get("r", ""), formula)
    text = _ROW_R.sub(lambda m: f"{m.group(1)}{new}{m.group(2)}", text, count=1)
    return _CELL_R.sub(lambda m: f"{m.group(1)}{new}{m.group(2)}", text)


def _old_grid(pkg: Package, sheet_name: str) -> list[list]:
    """The sheet as calamine reads it from the original file (row i = Excel row i + 1)."""
    book = CalamineWorkbook.from_path(str(pkg.path))
    return grid(book, sheet_name)


def _old_value(old: _Old, strings: list[str]) -> object:
    """The value an existing cell holds (cached result for a formula)."""
    _, t, body, xml = old
    if body is None or t == "e":  # an error (#N/A, a staff VLOOKUP's) reads as blank, as calamine reads it
        return None
    if body.startswith("<v>") and body.endswith("</v>") and body.count("<") == 2:
        raw = body[3:-4]
        if t is None:
            try:
                return float(raw)
            except ValueError:
                return raw
        if t == "s":
            try:
                return strings[int(raw)]
            except (ValueError, IndexError):
                return None
    if "<f" not in body:
        if t is None or t == "n":
            m = _V.search(body)
            try:
                return float(m.group(1)) if m else None
            except ValueError:
                return m.group(1)
        if t == "s":
            m = _V.search(body)
            try:
                return strings[int(m.group(1))] if m else None
            except (ValueError, IndexError):
                return None
    return cell_value(Cell(0, xml, {"t": t} if t else {}, body), strings)


def rewrite_sheet(
    pkg: Package,
    write: SheetWrite,
    extra_cells: dict[int, list[tuple[int, str]]] | None = None,
    drop_cols: set[int] | None = None,
    old_grid: list[list] | None = None,
) -> Written:
    """Replace the cell data of ``write.sheet`` in ``pkg``; returns what the check should find.

    ``extra_cells`` (row → (column, cell xml)) are merged in, e.g. the mark memory; cells of
    ``drop_cols`` in the old data are not carried over. ``old_grid``: the ledger as calamine read
    it from this very file (read here when not given).
    """
    sheet = write.sheet
    part = pkg.sheets.get(sheet.name) or pkg.add_sheet(sheet.name, blank_sheet_xml(sheet))
    drop_cols = drop_cols or set()
    xml = pkg.text(part)
    start, end = sheet_data_span(xml)
    data = xml[start:end]
    prefix = re.match(r"<((?:\w+:)?)sheetData", data).group(1)
    fast = not prefix and not _NOT_FAST.search(data)
    ledger = sheet.role == "ledger"
    strings = pkg.strings
    styles = pkg.styles
    by_col_style = col_styles(xml)

    # Rows by number, as offsets into ``data``; only the first few are parsed cell by cell.
    spans: dict[int, tuple[int, int]] = {}
    starts = row_starts(data) if fast else None
    if starts:  # cut between row starts: no regex walks through every row's cells
        ends = [at for _, at in starts[1:]] + [data.rindex("</")]
        spans = {r: (at, end_at) for (r, at), end_at in zip(starts, ends)}
    elif fast and not _ROW_NOT_FAST.search(data):
        for m in _ROW_FAST.finditer(data):
            spans[int(m.group(2))] = m.span()
    else:
        last = 0
        for m in ROW_RE.finditer(data):
            attrs = m.group("attrs")
            rm = _R_ATTR.search(attrs)
            last = int(rm.group(1)) if rm else last + 1
            spans[last] = m.span()
    old_rows = _OldRows(data, spans)
    head = parse_rows("".join(old_rows[r] for r in sorted(r for r in spans if r <= HEADER_SEARCH_ROWS)))
    header_r, header_cells = header_layout(head, sheet, strings)
    if ledger and old_rows:
        # Never guess where staff's columns are: writing under the wrong headers would scramble
        # the ledger. The same check read_workbook makes.
        missing = [c.header for c in sheet.required_columns if c.header not in header_cells.values()]
        if header_r is None or missing:
            raise MissingColumns(pkg.path, sheet.name, missing or [c.header for c in sheet.required_columns],
                                 list(header_cells.values()))
    staff_columns = False  # an appended sheet whose columns staff moved or added to
    contract = {i: col.header for i, col in enumerate(sheet.columns)}
    moved = {c: t for c, t in header_cells.items() if c in contract} != contract  # staff's own may follow ours
    if write.append and not ledger and moved and header_r is not None \
            and set(contract.values()) <= set(header_cells.values()):
        # An audit trail whose columns staff moved, or put columns of their own among (核对人,
        # with what they typed in it), keeps its header and old lines as they are; new lines go
        # under the columns where staff put them, as in the ledger. (Rewritten whole in contract
        # order, staff's own columns and what they held would be lost.) One of our headers twice:
        # which column holds the lines is unknown, and the reader refuses it too.
        typed = list(header_cells.values())
        twice = sorted({t for t in typed if t in contract.values() and typed.count(t) > 1})
        if twice:
            raise DuplicateColumns(pkg.path, sheet.name, twice)
        staff_columns = True
    elif write.append and not ledger and moved and any(r > (header_r or 0) for r in old_rows):
        # Lines under a header that lacks one of ours: read and rewritten whole under the right
        # headers (refused by the reader when a required one is gone). Its tables' totals rows
        # are no lines (kept, or moved below the lines).
        old = frame_from_rows(_old_grid(pkg, sheet.name), sheet, pkg.path,
                              sheet_totals(pkg.parts, part)).drop(columns=ROW)
        return rewrite_sheet(pkg, replace(write, rows=records(old) + write.rows, append=False),
                             extra_cells, drop_cols, old_grid)
    header_r = header_r or 1
    out = Written(sheet.name, header_row=header_r)

    # Column layout.
    if ledger:
        extra = sorted(set().union(*write.rows) if write.rows else set(), key=str)
        out.columns = ledger_columns(header_cells, sheet, tuple(k for k in extra if not k.startswith("_")))
    elif staff_columns:
        out.columns = ledger_columns(header_cells, sheet)
    else:
        out.columns = {col.key: i for i, col in enumerate(sheet.columns)}
    layout = sorted(out.columns.items(), key=lambda kv: kv[1])
    out.order = [c for _, c in layout]
    layout_cols = set(out.order)
    headers = {c: (by_header_key(sheet, key) or key) for key, c in layout}
    columns = {key: _column(sheet, key) for key, _ in layout}

    head_by_r = {row.r: row for row in head}
    header_old = head_by_r.get(header_r)
    header_style = header_old.cells[0].style if header_old and header_old.cells else 0

    new_rows: dict[int, list[tuple[int, str]]] = {}
    row_attrs: dict[int, str] = {}
    unsorted: set[int] = set()
    for row in head:  # rows above the header stay as they were
        if row.r < header_r:
            new_rows[row.r] = [(c.col, c.xml) for c in row.cells]
            row_attrs[row.r] = row.attrs_text

    # Header row: existing header cells kept; missing headers added; the banner replaced.
    # Under a table staff made over an output sheet, a header cell holds its table column's name
    # (staff may have renamed it, or added a column of their own to the table): Excel repairs a
    # table whose header cells differ from its column names.
    named = table_headers(pkg.parts, part, header_r) if not ledger and part in pkg.parts else {}
    header_out: dict[int, str] = {}
    if header_old:
        row_attrs[header_r] = header_old.attrs_text
        for cell in header_old.cells:
            if ledger or cell.col in layout_cols or cell.col in named:
                header_out[cell.col] = cell.xml
    for c in set(named) - layout_cols:
        if _header_text(header_old, c, strings) != named[c]:
            header_out[c] = cell_xml(ref_of(header_r, c), named[c], header_style)
        out.cells[(header_r, c)] = named[c]
    for c, text in headers.items():
        text = named.get(c, text)
        now = _header_text(header_old, c, strings)
        if c not in header_out or clean_header(now) != clean_header(text):
            # A sheet from an older layout gets today's header.
            header_out[c] = cell_xml(ref_of(header_r, c), text, header_style)
            now = text
        out.cells[(header_r, c)] = now
    banner_col = max(layout_cols | set(named)) + 2 if layout_cols else 1
    if write.note:
        if not ledger:
            for c in [c for c in header_out if c > max(layout_cols) and c not in named]:
                del header_out[c]
        header_out[banner_col] = cell_xml(ref_of(header_r, banner_col), write.note, 0)
        out.cells[(header_r, banner_col)] = write.note
    elif header_old and not ledger:
        ours = set(sheet.headers)
        for cell in header_old.cells:  # keep the existing banner when no new note is given
            if cell.col not in layout_cols and cell.col not in drop_cols:
                if clean_header(cell_value(cell, strings)) in ours:
                    continue  # one of our headers that staff moved right: its column is ours again
                header_out[cell.col] = cell.xml
    new_rows[header_r] = sorted(header_out.items())

    # Where each data row goes.
    placed: list[int] = []
    taken: set[int] = set()
    # `_row` as read (int; numpy integers too); anything else means "below the last row".
    explicit = [r if type(r := row.get(ROW)) is int else
                int(r) if isinstance(r, Integral) and not isinstance(r, bool) else None
                for row in write.rows]
    last = max([header_r, *(r for r in explicit if r is not None)])
    # Appending (变更记录): the rows already there stay byte for byte; the new ones go below the
    # last one holding a value (formatted blank rows below it are filled in).
    kept = sorted(r for r in spans if r > header_r) if write.append and not ledger else []
    for r in reversed(kept):  # from the end: the first row holding a value is the last one
        if old_rows.has_value(r):
            last = max(last, r)
            break
    # A table's totals row (汇总, SUBTOTAL formulas) is staff's: the reader leaves it out. Even
    # emptied by staff (totalsRowCount still 1) it is taken: a record written there would be
    # one no reader sees (and the next run would add it again below).
    totals_areas = sheet_totals(pkg.parts, part)
    totals = {r for area in totals_areas for r in range(area.first_row, area.last_row + 1)}
    if write.append or ledger:
        last = max([last, *(r for r in totals if r > header_r)])
    # Rows of a table staff extended in advance, holding only its calculated columns' formulas
    # (Excel filled them: cached 0, 1900, ""): no reader takes them for records; new records
    # go into them, the formulas stay (tables.formula_only).
    tables = calculated_bodies(pkg.parts, part) if ledger and part in pkg.parts else []
    prefilled: dict[int, bool] = {}

    def formula_row(r: int) -> bool:
        if not tables or r not in spans:
            return False
        found = prefilled.get(r)
        if found is None:
            found = prefilled[r] = formula_only(old_rows[r], r, tables)
        return found

    if ledger:
        # New rows go below the last row holding a value; formatted blank rows below the data,
        # and rows holding only a table's calculated formulas, are filled in (and lend the new
        # cells their formats), not skipped.
        wanted_rows = {r for r in explicit if r is not None}
        for r in sorted(spans, reverse=True):  # from the end: the first found is the last
            if r <= max(last, header_r):
                break
            if r not in wanted_rows and old_rows.has_value(r) and not formula_row(r):
                last = r
                break
    for want in explicit:
        if want is not None:
            if want <= header_r or want in taken:
                raise ValueError(f"{sheet.name}: row {want} is the header or used twice")
            r = want
        else:
            last += 1
            r = last
        taken.add(r)
        placed.append(r)

    fills, links = write.fills, write.links
    # Cells inside staff's array formulas (but their first): Excel would put the formula's result
    # back over a value written there, so a change there is refused.
    arrays = _array_cells(data) if ledger and _ARRAY_HINT in data else {}
    cache: dict[tuple, int] = {}
    link_xml: list[str] = []
    external: list[str] = []
    max_r, max_c = header_r, max(header_out, default=0)
    # Rows to write as they are: new text (str), or an old row's span in ``data`` (tuple).
    verbatim: dict[int, str | tuple[int, int]] = {r: spans[r] for r in kept if r not in taken}
    if not ledger and not write.append:
        # An output sheet is rewritten whole, but a totals row staff gave a table over it (汇总,
        # SUBTOTAL) is theirs: below the rows written it stays, byte for byte. When the rows
        # reach it (more committees than rows above it), it moves down below them, as Excel
        # inserts rows above a table's totals row; tables.grow_tables moves the table's end too.
        below = max(placed, default=header_r)
        for area in totals_areas:
            if area.first_row > below:
                verbatim.update((r, spans[r]) for r in range(area.first_row, area.last_row + 1) if r in spans)
            elif area.first_col <= max(layout_cols) and area.first_row > header_r:
                shift = below + 1 - area.first_row
                for r in range(area.first_row, area.last_row + 1):
                    if r in spans:
                        verbatim[r + shift] = _moved_row(old_rows[r], r, r + shift, sheet.name)
                out.totals_moved[area.first_row] = shift
    if verbatim:
        max_r = max(max_r, *verbatim)
    if not ledger:
        old_grid = []
    elif old_grid is None:
        old_grid = _old_grid(pkg, sheet.name)
    marked_rows = {i for i, _ in fills} | {i for i, _ in links}
    orphaned: dict[str, tuple[str, str, range]] = {}  # shared formulas whose master cell we wrote over
    extra_rows = set(extra_cells or ())
    # The bulk of a large write (a consolidation's new rows, the output sheets) is rows with no
    # old cells, fills or links: encoded a column at a time.
    # Existing rows of the ledger, and formatted blank rows an append fills, are written cell by
    # cell below: their pre-formatted cells, row style and staff's cells beside ours stay.
    keeps_old = ledger or write.append
    bulk = [index for index, r in enumerate(placed)
            if not (keeps_old and r in spans) and index not in marked_rows and r not in extra_rows] \
        if BULK else []
    if bulk:
        encoder = _BulkEncoder(layout, by_col_style, columns, styles, cache, not ledger, pkg.date1904)
        bulk_r = [placed[i] for i in bulk]
        bodies, value_columns = encoder.encode([write.rows[i] for i in bulk], bulk_r)
        out.blocks.append((bulk_r, value_columns))
        for r, body in zip(bulk_r, bodies):
            if r in spans:  # an output sheet's old row written over: its height and style stay
                verbatim[r] = row_xml(r, [(0, body)] if body else [], _row_attrs(old_rows[r], r))
            elif body:
                verbatim[r] = f'<row r="{r}">{body}</row>'
        max_r = max(max_r, *(r for r in bulk_r if r in verbatim), header_r)
    done = set(bulk)
    # Old rows whose values did not change keep their XML verbatim. Compared a column at a time
    # against calamine's reading (blank = "", 12 == 12.0, TRUE != 1; trimmed text falls through).
    width = len(old_grid[0]) if old_grid else 0  # calamine's grid is rectangular
    same = [index for index, r in enumerate(placed)
            if r in spans and r - 1 < len(old_grid) and index not in done and index not in marked_rows]
    if same:
        same_r = [placed[i] for i in same]
        old_lines = [old_grid[r - 1] for r in same_r]
        # The check reads back what the kept rows hold (text with its spaces), not the rows given.
        held_columns = []
        differs: set[int] = set()
        for key, c in layout:
            now = ["" if (v := write.rows[i].get(key)) is None else v for i in same]
            before = [line[c] for line in old_lines] if c < width else [""] * len(same)
            if not _equal(now, before) or has_bool(now) or has_bool(before):
                differs.update(j for j, (a, b) in enumerate(zip(before, now)) if not _same_cell(a, b))
            held_columns.append(before)
        if differs:
            keep = [j for j in range(len(same)) if j not in differs]
            same, same_r = [same[j] for j in keep], [same_r[j] for j in keep]
            held_columns = [[column[j] for j in keep] for column in held_columns]
        out.blocks.append((same_r, held_columns))
        for r in same_r:
            verbatim[r] = spans[r]
        done.update(same)
        max_r = max([max_r, *same_r])  # none left when every old row changed
    for index, (r, row) in enumerate(zip(placed, write.rows)):
        if index in done:
            continue
        old = _cells_in(old_rows[r], fast) if keeps_old and r in spans else {}
        base_of_row = row_style(_row_attrs(old_rows[r], r)) if r in spans else None
        # A record written into a row holding only calculated formulas: a column it leaves blank
        # keeps its formula, as in Excel (a value typed there replaces it, as in Excel).
        calculated = {c for body in tables if body.covers(r) for c in body.formulas} \
            if old and formula_row(r) else ()
        cells: list[tuple[int, str]] = []
        values: list = []
        for key, c in layout:
            value = plain(row.get(key))
            if type(value) is str and len(value) > MAX_TEXT:
                value = value[:MAX_TEXT]  # Excel's limit; longer text makes the file unreadable
            fill = fills.get((index, key)) if fills else None
            link = bool(links) and (index, key) in links
            o = old.get(c)
            if c in calculated and value is None and not fill and not link and o is not None and o[2] \
                    and _F_ELEMENT.search(o[2]):
                cells.append((c, _uncached(o[3])))
                values.append("")  # no cached result: Excel computes it on open (fullCalcOnLoad)
                continue
            if o is not None:
                before = _old_value(o, strings)
                if not fill and not link and _same(before, value, pkg.date1904):
                    cells.append((c, o[3]))  # unchanged: formula, rich text, formatting kept
                    # (a date as itself: the serial counts from the workbook's epoch, 1900 or 1904)
                    values.append(value if isinstance(value, (date, time)) else "" if before is None else before)
                    continue
                if (r, c) in arrays:
                    raise ArrayFormulaCell(sheet.name, ref_of(r, c), value, *arrays[(r, c)])
                base = o[0]
                if _SHARED in o[3]:  # written over: a formula other cells share must not go with it
                    _note_shared_master(o[3], ref_of(r, c), orphaned)
            elif value is None and not fill and not link:
                values.append("")  # no cell: the row's format, else the column's, shows as before
                continue
            else:  # a new cell takes its row's style, else its column's (as Excel does)
                base = by_col_style.get(c, 0) if base_of_row is None else base_of_row
            kind = _kind(value)
            if kind or fill or link:
                ck = (base, kind, key, fill, link)
                style = cache.get(ck)
                if style is None:
                    style = cache[ck] = _style_for(styles, base, columns[key], kind, value, fill, link, not ledger)
            else:
                style = base
            text = cell_xml(ref_of(r, c), value, style, pkg.date1904)
            if text:
                cells.append((c, text))
            values.append("" if value is None else value)  # as calamine reads a blank
            if link:
                target = links[(index, key)]
                display = str(value if value is not None else target)
                if is_location(target):
                    where = f"location={quoteattr(sheet_location(target, pkg.sheet_names))}"
                else:  # a file: an external relationship in the sheet's rels part
                    external.append(target)
                    where = f'r:id="{EXTERNAL_LINK_ID}{len(external)}"'
                link_xml.append(f'<hyperlink ref="{ref_of(r, c)}" {where} display={quoteattr(display)}/>')
        if old and not layout_cols.issuperset(old):
            for c, o in old.items():  # cells in columns without a header are not ours to drop
                if c not in layout_cols and c not in drop_cols:
                    cells.append((c, o[3]))
                    unsorted.add(r)
                    max_c = max(max_c, c)
        out.rows[r] = values
        new_rows[r] = cells
        if r in spans and r not in row_attrs:  # an existing row: its height and style stay
            row_attrs[r] = _row_attrs(old_rows[r], r)
        if cells:
            max_r = max(max_r, r)
    max_c = max([max_c, *layout_cols])
    if ledger:
        for r in set(old_rows) - taken:
            if r <= header_r:
                continue
            if r in totals or not old_rows.has_value(r) or _reads_blank(old_grid, r, layout_cols) \
                    or formula_row(r):
                # A formatted blank row, one the reader saw as blank (staff's notes beside the
                # ledger, a formula giving "", spaces) or left out (a table's totals row, a row
                # of its calculated formulas only): no caller could have dropped it. It stays,
                # byte for byte.
                verbatim[r] = spans[r]
                max_r = max(max_r, r)
                continue
            # A row the caller dropped: its cells in columns without a header stay.
            for c, o in _cells_in(old_rows[r], fast).items():
                if c not in layout_cols and c not in drop_cols:
                    new_rows.setdefault(r, []).append((c, o[3]))
                    unsorted.add(r)
                    max_r, max_c = max(max_r, r), max(max_c, c)
                elif _SHARED in o[3]:
                    _note_shared_master(o[3], ref_of(r, c), orphaned)
    if orphaned:
        _unshare(orphaned, new_rows, verbatim, old_rows)
    for r, extra in (extra_cells or {}).items():
        new_rows.setdefault(r, []).extend(extra)
        unsorted.add(r)
        max_r, max_c = max(max_r, r), max([max_c, *(c for c, _ in extra)])

    parts = []
    run_start = run_end = -1  # old rows that follow each other in ``data`` go back as one slice
    for r in sorted(new_rows.keys() | verbatim.keys()):
        kept_as = verbatim.get(r)
        if type(kept_as) is tuple:
            if kept_as[0] != run_end:
                if run_end > run_start:
                    parts.append(data[run_start:run_end])
                run_start = kept_as[0]
            run_end = kept_as[1]
            continue
        if run_end > run_start:
            parts.append(data[run_start:run_end])
            run_start = run_end = -1
        if kept_as is not None:
            parts.append(kept_as)
            continue
        cells = new_rows[r]
        if r in unsorted:
            cells = sorted(cells, key=lambda t: t[0])
        if r in row_attrs:
            parts.append(row_xml(r, cells, row_attrs[r]))
        elif cells:
            parts.append(f'<row r="{r}">{"".join(x for _, x in cells)}</row>')
    if run_end > run_start:
        parts.append(data[run_start:run_end])
    # Under a prefixed root, a default namespace on sheetData puts our unprefixed rows in place.
    ns = f' xmlns="{NS_MAIN}"' if prefix else ""
    # <dimension> comes before sheetData and <hyperlinks> after it: neither search scans the rows.
    if keeps_old:  # staff's cells in unheaded columns stay (most in rows kept whole): so does their reach
        max_c = max(max_c, _dimension_last_col(xml[:start]))
    head_xml = _set_dimension(xml[:start], f"A1:{col_name(max_c)}{max_r}")
    tail_xml = xml[end:]
    # One join: each copy of a large sheet's text costs a tenth of a second.
    xml = "".join([head_xml, f"<{prefix}sheetData{ns}>", *parts, f"</{prefix}sheetData>", tail_xml])
    if not ledger or links:
        xml = _set_hyperlinks(xml, link_xml, after=len(xml) - len(tail_xml))
        _set_link_relationships(pkg, part, external)
        root = re.search(r"<(?:\w+:)?worksheet\b[^>]*>", xml)
        if external and root and "xmlns:r=" not in root.group(0):
            xml = xml[: root.start()] + root.group(0)[:-1] + f' xmlns:r="{NS_REL}">' + xml[root.end():]
    pkg.set_text(part, xml)
    return out


EXCEL_EPOCH_ORDINAL = EPOCH.toordinal()  # dates as whole serials, without a datetime each
_MARCH_1900 = date(1900, 3, 1)


BULK = True  # False: every row takes the general path (tests compare the two)


class _BulkEncoder:
    """Rows with no old cells, fills or links, encoded a column at a time: what ``cell_xml`` and
    ``_style_for`` give cell by cell, with the per-column work (letters, styles, escaping) done once.
    """

    def __init__(self, layout: list[tuple[str, int]], by_col_style: dict[int, int],
                 columns: dict[str, schema.Column | None], styles, cache: dict, ours: bool,
                 date1904: bool = False):
        self.columns = [(key, col_name(c), by_col_style.get(c, 0)) for key, c in layout]
        self.date1904 = date1904
        self.epoch = EXCEL_EPOCH_ORDINAL + (DATE1904_OFFSET if date1904 else 0)
        self.by_key = columns
        self.styles, self.cache, self.ours = styles, cache, ours

    def style(self, key: str, base: int, kind: str | None, value: object) -> int:
        """The cell format for a value of ``kind`` in column ``key`` (cached as the general path does)."""
        if kind is None:
            return base
        ck = (base, kind, key, None, False)
        style = self.cache.get(ck)
        if style is None:
            style = self.cache[ck] = _style_for(self.styles, base, self.by_key[key], kind, value,
                                                None, False, self.ours)
        return style

    def encode(self, rows: list[dict], numbers: list[int]) -> tuple[list[str], list[list]]:
        """(each row's cells as XML, each column's values as calamine reads them back)."""
        rs = [str(r) for r in numbers]
        cell_columns, value_columns = [], []
        for key, letter, base in self.columns:
            values = [row.get(key) for row in rows]
            kinds = set(map(type, values))
            kinds.discard(type(None))
            if not kinds <= _PLAIN_KINDS or (str in kinds and "" in values):
                values = [plain(v) for v in values]
                kinds = set(map(type, values))
                kinds.discard(type(None))
            if str in kinds and max(map(len, [v for v in values if type(v) is str])) > MAX_TEXT:
                # Excel's limit; longer text makes the file unreadable.
                values = [v[:MAX_TEXT] if type(v) is str else v for v in values]
            cell_columns.append(self.column(key, letter, base, values, kinds, rs))
            value_columns.append(["" if v is None else v for v in values])
        return ["".join(cells) for cells in zip(*cell_columns)], value_columns

    def column(self, key: str, letter: str, base: int, values: list, kinds: set, rs: list[str]) -> list[str]:
        """The cells of one column ("" for a blank: no cell, the column's own style shows)."""
        def attr(style: int) -> str:
            return f' s="{style}"' if style else ""

        if kinds == {str}:
            texts = [v for v in values if v is not None]
            joined = " ".join(texts)
            starts = "\x00" + "\x00".join(texts)  # a text starting "=" shows as "\x00="
            if (not any("\x00" + c in starts for c in FORMULA_PREFIXES) and "_x" not in joined
                    and joined.isprintable() and "&" not in joined and "<" not in joined and ">" not in joined):
                s = attr(base)
                # Printable text has no whitespace but the space: a space at either end needs preserve.
                if "\x00 " in starts or " \x00" in starts + "\x00":
                    return ["" if v is None else f'<c r="{letter}{r}"{s} t="inlineStr"><is>{t_open(v)}{v}</t></is></c>'
                            for v, r in zip(values, rs)]
                return ["" if v is None else f'<c r="{letter}{r}"{s} t="inlineStr"><is><t>{v}</t></is></c>'
                        for v, r in zip(values, rs)]
        elif kinds and kinds <= {int, float}:
            s = attr(self.style(key, base, "number", 0))
            return ["" if v is None else f'<c r="{letter}{r}"{s}><v>{number_text(v)}</v></c>'
                    for v, r in zip(values, rs)] if float in kinds else \
                ["" if v is None else f'<c r="{letter}{r}"{s}><v>{v}</v></c>' for v, r in zip(values, rs)]
        elif kinds == {date} and min(v for v in values if v is not None) >= _MARCH_1900:
            # (earlier days: Excel's serials skip its 29 February 1900; to_serial below knows)
            s = attr(self.style(key, base, "date", next(v for v in values if v is not None)))
            return ["" if v is None else f'<c r="{letter}{r}"{s}><v>{v.toordinal() - self.epoch}</v></c>'
                    for v, r in zip(values, rs)]
        elif kinds == {datetime}:  # 变更记录's times: a run's rows share a few moments
            memo: dict[datetime, str] = {}
            for v in set(values) - {None}:
                memo[v] = f'{attr(self.style(key, base, _kind(v), v))}><v>{number_text(to_serial(v, self.date1904))}</v></c>'
            return ["" if v is None else f'<c r="{letter}{r}"{memo[v]}' for v, r in zip(values, rs)]
        return ["" if v is None else cell_xml(f"{letter}{r}", v, self.style(key, base, _kind(v), v), self.date1904)
                for v, r in zip(values, rs)]


# Kinds a value may be as it is: blanks are None, floats finite (checked), text not empty (checked).
_PLAIN_KINDS = {str, int, date}




def ledger_columns(header_cells: dict[int, str], sheet: schema.Sheet,
                   extra_keys: tuple[str, ...] = ()) -> dict[str, int]:
    """Where the ledger's columns go (key → 0-based column): staff's stay where they are, matched
    by cleaned header (their own columns keyed by header text); contract columns the sheet lacks
    are appended after the last header, in contract order, then ``extra_keys``."""
    by_header = sheet.by_header()
    columns = {by_header[text].key if text in by_header else text: c for c, text in header_cells.items()}
    next_col = max(header_cells, default=-1) + 1
    for key in [*(col.key for col in sheet.columns), *extra_keys]:
        if key not in columns:
            columns[key] = next_col
            next_col += 1
    return columns


def blank_sheet_xml(sheet: schema.Sheet) -> str:
    """A new, empty owned sheet: the contract's column widths and a frozen header row."""
    cols = "".join(f'<col min="{i}" max="{i}" width="{c.width + 0.71}" customWidth="1"/>'
                   for i, c in enumerate(sheet.columns, start=1))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{NS_MAIN}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships"><dimension ref="A1"/><sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
            f'<cols>{cols}</cols><sheetData/><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" '
            'header="0.3" footer="0.3"/></worksheet>')


def _column(sheet: schema.Sheet, key: str) -> schema.Column | None:
    try:
        return sheet.column(key)
    except KeyError:
        return None


def _kind(value: object) -> str | None:
    """What a value needs from its cell format (None: nothing)."""
    t = type(value)
    if t is str:
        return "text" if value[:1] in FORMULA_PREFIXES else None
    if t is int or t is float:
        return "number"
    if t is datetime:
        return "datetime" if (value.hour, value.minute, value.second) != (0, 0, 0) else "date"
    if t is date:
        return "date"
    if t is time:
        return "time"
    if isinstance(value, (date, datetime, time)):
        return "date"
    return None


def by_header_key(sheet: schema.Sheet, key: str) -> str | None:
    try:
        return sheet.header_of(key)
    except KeyError:
        return None


def _header_text(row: Row | None, c: int, strings: list[str]) -> str:
    if row is None:
        return ""
    for cell in row.cells:
        if cell.col == c:
            value = cell_value(cell, strings)
            return "" if value is None else str(value)
    return ""


def _same(old: object, new: object, date1904: bool = False) -> bool:
    """Whether a cell that held ``old`` already shows ``new`` (so its XML can stay as it was)."""
    t = type(new)
    if t is str:
        return type(old) is str and (old == new or old.strip() == new)
    if new is None:  # a cell holding only spaces reads as blank: the spaces staff typed stay
        return old is None or (type(old) is str and not old.strip())
    if is_bool(new):  # TRUE (a staff formula's =ISNUMBER(F5), say) is not 1
        return type(old) is bool and old == bool(new)
    if type(old) is not float:
        return False
    if t is int or t is float:
        return abs(new - old) < 1e-9
    if isinstance(new, (date, time)):
        return abs(to_serial(new, date1904) - old) < 1e-9
    return False


def _style_for(styles, base: int, column: schema.Column | None, kind: str | None, value: object,
               fill: str | None, link: bool, ours: bool = False) -> int:
    """The cell format for a value. ``ours`` (output sheets): the contract's number format wins;
    the ledger keeps a format staff chose and only fills in a General one."""
    style = base
    wanted = column.number_format if column is not None else None
    if kind in ("date", "datetime", "time"):
        if ours and wanted and is_date_code(wanted):
            if styles.numfmt_code(style) != wanted:
                style = styles.derive(style, num_format=wanted)
        elif not styles.is_date(style):
            style = styles.derive(style, num_format=_date_format(column, value))
    elif kind == "number":
        # A date format on a number column's cell (staff formatted a blank row below the data
        # as dates, say) would show the number as a day and read it back as one: the record
        # would change, and the next run add it again. It gets the column's format then, too.
        if wanted and (styles.is_general(style) or (ours and styles.numfmt_code(style) != wanted)
                       or (styles.is_date(style) and not is_date_code(wanted))):
            style = styles.derive(style, num_format=wanted)
    elif kind == "text":
        # Shown as typed, and Excel will not turn it into a formula when the cell is edited.
        style = styles.derive(style, quote_prefix=True)
    if fill:
        style = styles.derive(style, fill=FILLS.get(fill, fill))
    if link:
        style = styles.derive(style, link=True)
    return style


def _date_format(column: schema.Column | None, value: object) -> str:
    if column is not None and column.number_format and re.search(r"[yd]", column.number_format):
        return column.number_format
    if isinstance(value, time):
        return "hh:mm"
    if isinstance(value, datetime) and (value.hour, value.minute, value.second) != (0, 0, 0):
        return schema.DATETIME_FORMAT
    return schema.DATE_FORMAT


def _dimension_last_col(head: str) -> int:
    """The last column (0-based) the sheet's ``<dimension>`` spans, -1 when it has none."""
    m = DIMENSION_RE.search(head)
    ref = m and re.search(r'ref="(?:[A-Z]+\d+:)?([A-Z]+)\d+"', m.group(0))
    return col_index(ref.group(1)) if ref else -1


def _set_dimension(xml: str, ref: str) -> str:
    m = DIMENSION_RE.search(xml)
    if m:
        new = re.sub(r'ref="[^"]*"', f'ref="{ref}"', m.group(0))
        return xml[:m.start()] + new + xml[m.end():]
    return xml


EXTERNAL_LINK_ID = "rIdHbLink"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_HYPERLINK = NS_REL + "/hyperlink"
_LINK_REL_RE = re.compile(r'<Relationship\b[^>]*\bType="' + re.escape(REL_HYPERLINK) + r'"[^>]*/>')


def is_location(target: str) -> bool:
    """An in-workbook target such as "'台账'!B5" (anything else is a file or web address)."""
    return "!" in target and not re.search(r"[/\\]|^\w+:", target.split("!")[0].strip("'"))


def _set_link_relationships(pkg: Package, part: str, targets: list[str]) -> None:
    """Replace the hyperlink relationships of an owned sheet (they are all ours) with ``targets``.

    Ids are ``rIdHbLink<n>`` so they never collide with the sheet's other relationships.
    """
    rels_part = rels_name(part)
    if not pkg.exists(rels_part):
        if not targets:
            return
        pkg.set_text(rels_part, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                'relationships"></Relationships>')
    xml = pkg.text(rels_part)
    kept = _LINK_REL_RE.sub("", xml)
    if kept.rstrip().endswith("/>") and "</Relationships>" not in kept:
        kept = kept.rstrip()[:-2] + "></Relationships>"
    added = "".join(
        f'<Relationship Id="{EXTERNAL_LINK_ID}{i}" Type="{REL_HYPERLINK}" '
        f'Target={quoteattr(target.replace(chr(92), "/"))} TargetMode="External"/>'
        for i, target in enumerate(targets, start=1)
    )
    if added or kept != xml:
        close = kept.rindex("</")
        pkg.set_text(rels_part, kept[:close] + added + kept[close:])


def _set_hyperlinks(xml: str, links: list[str], after: int = 0) -> str:
    """Replace the <hyperlinks> element (which follows sheetData, ending at ``after``)."""
    m = HYPERLINKS_RE.search(xml, after)
    ns = ""
    if re.match(r"(?:<\?[^>]*\?>\s*)?<\w+:worksheet\b", xml):  # a prefixed root: give ours the main namespace
        ns = f' xmlns="{NS_MAIN}"'
    element = f"<hyperlinks{ns}>{''.join(links)}</hyperlinks>" if links else ""
    if m and find_top(xml, "hyperlinks"):
        return xml[:m.start()] + element + xml[m.end():]
    if element:
        return insert_before_any(xml, element, AFTER_HYPERLINKS)
    return xml


def next_free_row(path: Path | str, sheet: schema.Sheet, taken: Iterable[int]) -> int:
    """The Excel row ``rewrite_sheet`` gives the first ledger row written without ``_row`` (the
    next ones follow it) while the rows in ``taken`` keep theirs: below every row of the file
    that holds a value (and every table's totals row), so formatted blank rows under the data
    are filled in.

    Lets a caller number new rows before the write, so that problems, marks and links computed
    in memory point at the rows the new records will occupy. Reads only that sheet's part;
    must follow ``rewrite_sheet``'s placement rule.
    """
    last = max(taken, default=1)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        small = {n: zf.read(n) for n in ("_rels/.rels",) if n in names}
        wb_part = workbook_part(small)
        small[wb_part] = zf.read(wb_part)
        if rels_name(wb_part) in names:
            small[rels_name(wb_part)] = zf.read(rels_name(wb_part))
        part = sheet_parts(small).get(sheet.name)
        if part is None or part not in names:
            return last + 1
        xml = zf.read(part).decode("utf-8")
        # A table's totals row is taken even when staff emptied it (rewrite_sheet's rule).
        last = max([last, *(a.last_row for a in sheet_totals(ZipParts(zf), part))])
        bodies = calculated_bodies(ZipParts(zf), part)  # rows of their formulas only are free
    # One rule for "the last row holding a value", found from the end (tables.last_value_row):
    # decoding a 60k-row ledger costs ~65 ms here, once per consolidation.
    return max(last, last_value_row(xml, bodies) or 0) + 1


