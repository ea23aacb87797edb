"""Excel tables (插入 → 表格, Ctrl+T) on owned sheets grow with the rows a write appends.

Staff turn 台账 into a table for banded rows, filters and structured references
(``=SUM(表1[参与人数])`` on another sheet). Excel grows a table when a row is typed right below
it; a table part left as it was would leave our new rows outside it (no banding, no filter, not
counted). So, after an owned sheet is rewritten, each table of that sheet

* whose header row is our header row and whose columns cover every contract column of the sheet,
* whose range ends at or below the sheet's old last row holding a value (the new rows follow it),
* with no totals row (new rows would sit below the totals: Excel itself inserts them above it),

has ``ref`` on ``<table>`` (and on its ``<autoFilter>``, when that ended with it) moved down to
the new last row holding a value — a byte edit of those two attributes, nothing else. Tables
anywhere else are left as they are: nothing is lost, the rows are simply outside them.
``verify.check_table_grew`` proves the written part differs from the old one in exactly that.

A calculated column (``calculatedColumnFormula``: staff typed one formula and Excel filled the
column) gets its formula in each row the table grows over, translated to the row as Excel
fills it down — what Excel does for a row typed below the table; left blank, the new rows would
show nothing where every other row shows a result. The cell has no cached value: the writer
already asks Excel to recalculate on open (``fullCalcOnLoad``), the ledger holding formulas.
A cell the write gave a value keeps it. An array formula column: the table is not grown.

Staff also pre-extend a table (its range reaching below the data, rows ready for typing): Excel
fills a calculated column into those empty rows too, with cached results (0, 1900, ""). A row
whose only cells holding anything are formulas in a calculated column of a table over it
(``formula_only``) is no record: the readers leave it out (``SheetTables.not_records``), and the
writer fills new records into such rows below the last record (``last_value_row`` with the
tables' ``bodies`` skips them), keeping the formula cells — the table's ref unchanged while the
new rows fit inside it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, unescape

from .. import schema
from .ooxml import (
    HOLDS_VALUE_RE,
    NS_REL,
    REF_RE,
    ROW_NUMBER_RE,
    Row,
    ZipParts,
    attrs_of,
    col_index,
    col_name,
    has_formula,
    parse_rels,
    rels_name,
    row_xml,
    sheet_data_span,
    sheet_parts,
)
from .read import may_hold_tables

if TYPE_CHECKING:  # the reader imports this module too: it needs no package machinery
    from pathlib import Path

    from .package import Package

REL_TABLE = NS_REL + "/table"

_TABLE_TAG = re.compile(r"<(?:\w+:)?table\b[^>]*>")
_AUTOFILTER_TAG = re.compile(r"<(?:\w+:)?autoFilter\b[^>]*>")
_REF_ATTR = re.compile(r'(\sref=")([^"]*)(")')
_RANGE = re.compile(r"^\$?([A-Z]+)\$?(\d+):\$?([A-Z]+)\$?(\d+)$")
_ROW_TAG = re.compile(r"<(?:\w+:)?row\b([^>]*?)(/?)>")
_ROW_CLOSE = re.compile(r"</(?:\w+:)?row>")
_TABLE_COLUMN = re.compile(r"<(?:\w+:)?tableColumn\b[^>]*?(?:/>|>.*?</(?:\w+:)?tableColumn>)", re.S)
_CALCULATED = re.compile(r"<(?:\w+:)?calculatedColumnFormula\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?calculatedColumnFormula>)",
                         re.S)


@dataclass(frozen=True)
class Area:
    """A rectangular range: 0-based columns, Excel rows."""

    first_col: int
    first_row: int
    last_col: int
    last_row: int

    @classmethod
    def parse(cls, ref: str) -> Area | None:
        m = _RANGE.match(ref.strip())
        if not m:
            return None
        return cls(col_index(m.group(1)), int(m.group(2)), col_index(m.group(3)), int(m.group(4)))

    def down(self, rows: int) -> Area:
        """The same columns, ``rows`` rows lower."""
        return Area(self.first_col, self.first_row + rows, self.last_col, self.last_row + rows)


@dataclass(frozen=True)
class Growth:
    """A table grown by a write (for the result and the check)."""

    part: str
    old_ref: str
    new_ref: str


def table_parts(parts: Mapping[str, bytes], sheet_part: str) -> list[str]:
    """The table parts the worksheet ``sheet_part`` relates to (none for most masters);
    ``parts``: the package's parts by name (``Package.parts``, or a zip's: ``ZipParts``)."""
    rels = parts.get(rels_name(sheet_part))
    if not rels or b"/table" not in rels:
        return []
    return [rel.target for rel in parse_rels(rels, sheet_part) if rel.type == REL_TABLE and not rel.external]


def tables_headed_at(parts: Mapping[str, bytes], sheet_part: str, header_row: int) -> list[str]:
    """The table parts on worksheet ``sheet_part`` whose header row is Excel row ``header_row``."""
    found = []
    for table in table_parts(parts, sheet_part):
        xml = parts.get(table)
        tag = _TABLE_TAG.search(xml.decode("utf-8", "replace")) if xml else None
        if tag is None or attrs_of(tag.group(0)).get("headerRowCount", "1") == "0":
            continue
        area = Area.parse(_ref_of(tag.group(0)))
        if area is not None and area.first_row == header_row:
            found.append(table)
    return found


def table_headers(parts: Mapping[str, bytes], sheet_part: str, header_row: int) -> dict[int, str]:
    """0-based column → column name of the tables headed at ``header_row``: Excel keeps each
    name in its header cell too, and repairs a table whose header cell says otherwise."""
    names: dict[int, str] = {}
    for table in tables_headed_at(parts, sheet_part, header_row):
        xml = parts[table].decode("utf-8", "replace")
        area = Area.parse(_ref_of(_TABLE_TAG.search(xml).group(0)))
        for c, column in enumerate(_TABLE_COLUMN.finditer(xml), start=area.first_col):
            name = re.search(r'\sname="([^"]*)"', column.group(0))
            if name and c <= area.last_col:
                names[c] = unescape(name.group(1), {"&quot;": '"', "&apos;": "'"})
    return names


def totals_area(xml: str | bytes) -> Area | None:
    """The totals row(s) of a table part (``totalsRowCount`` rows at the bottom of ``ref``), or
    None when it has none (表设计 → 汇总行 unticked: ``totalsRowShown`` alone means none now)."""
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", "replace")
    tag = _TABLE_TAG.search(xml)
    if not tag:
        return None
    ref = _REF_ATTR.search(tag.group(0))
    area = Area.parse(ref.group(2)) if ref else None
    try:
        count = int(attrs_of(tag.group(0)).get("totalsRowCount", "0"))
    except ValueError:
        return None
    if area is None or count < 1 or area.last_row - count < area.first_row:
        return None
    return Area(area.first_col, area.last_row - count + 1, area.last_col, area.last_row)


def sheet_totals(parts: Mapping[str, bytes], sheet_part: str) -> list[Area]:
    """The totals rows of the tables on worksheet ``sheet_part``."""
    found = []
    for table in table_parts(parts, sheet_part):
        xml = parts.get(table)
        area = totals_area(xml) if xml else None
        if area is not None:
            found.append(area)
    return found


@dataclass(frozen=True)
class Body:
    """A table's body (rows between its header and totals rows, its columns) and its calculated
    columns: absolute 0-based column → formula as the table part stores it (no ``=``)."""

    area: Area
    formulas: dict[int, str]

    def covers(self, r: int) -> bool:
        return self.area.first_row <= r <= self.area.last_row


def calculated_bodies(parts: Mapping[str, bytes], sheet_part: str) -> list[Body]:
    """The tables on worksheet ``sheet_part`` with calculated columns (array formulas left out:
    those rows are not ours to read past or fill)."""
    found = []
    for table in table_parts(parts, sheet_part):
        data = parts.get(table)
        if not data or b"calculatedColumnFormula" not in data:
            continue
        xml = data.decode("utf-8", "replace")
        tag = _TABLE_TAG.search(xml)
        area = Area.parse(_ref_of(xml))
        formulas = calculated_columns(xml)
        if tag is None or area is None or not formulas:
            continue
        given = attrs_of(tag.group(0))
        try:
            head, foot = int(given.get("headerRowCount", "1")), int(given.get("totalsRowCount", "0"))
        except ValueError:
            continue
        body = Area(area.first_col, area.first_row + head, area.last_col, area.last_row - foot)
        if body.first_row <= body.last_row:
            found.append(Body(body, {area.first_col + i: f for i, f in formulas.items()}))
    return found


def formula_only(row_text: str, r: int, bodies: Iterable[Body]) -> bool:
    """Whether the ``<row>`` ``row_text`` (Excel row ``r``) holds nothing but formulas of the
    calculated columns of tables over it: a row Excel filled in advance, not a record."""
    calculated = {c for body in bodies if body.covers(r) for c in body.formulas}
    if not calculated:
        return False
    found = False
    for cell in Row(r, "", xml=row_text).cells:
        if not cell.body or not HOLDS_VALUE_RE.search(cell.body):
            continue  # a formatted blank cell
        if cell.col not in calculated or not has_formula(cell.body.encode()):
            return False  # a value, or a formula staff typed elsewhere: someone's data
        found = True
    return found


@dataclass
class SheetTables:
    """What the tables on one contract sheet say about its rows, for the readers."""

    totals: list[Area]
    bodies: list[Body]
    path: Path | None = None  # the file and the sheet's part, for a closer look at a few rows
    part: str = ""

    def not_records(self, grid: list[list]) -> list[Area]:
        """The rows of the sheet's cell ``grid`` (calamine's, from A1) that are no records: its
        tables' totals rows, and rows holding nothing but calculated column formulas. The grid
        tells which rows may be such (blank outside the calculated columns: few, and none in a
        table without empty rows); the sheet's XML decides, for those rows only."""
        found = list(self.totals)
        maybe = set()
        for body in self.bodies:
            area, calculated = body.area, set(body.formulas)
            others = [c for c in range(area.first_col, area.last_col + 1) if c not in calculated]
            probe = others[0] if others else None
            for r in range(area.first_row, min(area.last_row, len(grid)) + 1):
                line = grid[r - 1]
                if probe is not None and probe < len(line) and line[probe] != "":
                    continue  # most rows: a record (one look)
                if all(v == "" for c, v in enumerate(line) if c not in calculated):
                    maybe.add(r)
        if maybe and self.path is not None:
            with zipfile.ZipFile(self.path) as zf:
                xml = zf.read(self.part).decode("utf-8", "replace")
            for r, text in rows_by_number(xml, maybe).items():
                if formula_only(text, r, self.bodies):
                    found.append(Area(0, r, max(len(grid[0]) - 1 if grid else 0, 0), r))
        return found


def rows_by_number(xml: str, wanted: set[int]) -> dict[int, str]:
    """The ``<row>`` elements of a worksheet numbered ``wanted`` (that exist), by number: looked
    for from the end, as far up as the first of them."""
    start, end = sheet_data_span(xml)
    first = min(wanted, default=0)
    found = {}
    for r, m in _rows_from_end(xml, start, end):
        if r < first:
            break
        if r in wanted:
            found[r] = xml[m.start():m.end() if m.group(2) else _row_end(xml, m.end())]
    return found


def tables_by_sheet(zf: zipfile.ZipFile, sheets: Iterable[str], path: Path | None = None) -> dict[str, SheetTables]:
    """Contract sheet name → its tables' totals rows and calculated bodies, for the sheets that
    have any. Reads the few parts the lookup needs (the workbook, its rels, the sheets' rels,
    the table parts), and nothing at all when the zip holds no table part."""
    parts = ZipParts(zf)
    if not may_hold_tables(parts.names):
        return {}
    try:
        by_name = sheet_parts(parts)
        found = {}
        for sheet in sheets:
            part = by_name.get(sheet)
            if not part:
                continue
            areas, bodies = sheet_totals(parts, part), calculated_bodies(parts, part)
            if areas or bodies:
                found[sheet] = SheetTables(areas, bodies, path, part)
        return found
    except Exception:  # noqa: BLE001 — a structure calamine read without complaint: read every row
        return {}


def last_value_row(xml: str, bodies: Iterable[Body] = ()) -> int | None:
    """The last Excel row of a worksheet holding a value or a formula (None: none does) — the
    row below which the writer appends (``owned.rewrite_sheet``'s rule). With the sheet's
    calculated ``bodies``, rows holding nothing but their formulas do not count: new records
    go into them."""
    start, end = sheet_data_span(xml)
    stop = end
    bodies = list(bodies)
    for r, m in _rows_from_end(xml, start, end):
        if not m.group(2) and HOLDS_VALUE_RE.search(xml, m.end(), stop):
            if not (bodies and formula_only(xml[m.start():stop], r, bodies)):
                return r
        stop = m.start()
    return None


def _rows_from_end(xml: str, start: int, end: int) -> Iterator[tuple[int, re.Match]]:
    """(row number, start tag) of the rows in ``xml[start:end]`` (sheetData), last first.

    Rows are in ascending order (Excel repairs a file otherwise); written ``<row r="N"`` they are
    found from the end without walking megabytes of rows. Anything else is parsed in full."""
    if xml.startswith("<sheetData", start):
        stop = end
        while (at := xml.rfind("<row", start, stop)) >= 0:
            m = _ROW_TAG.match(xml, at)
            number = ROW_NUMBER_RE.search(m.group(1)) if m else None
            if number is None:
                break  # a row without its number: count them all (from here up)
            yield int(number.group(1)), m
            stop = at
        else:
            return
    else:
        stop = end
    rows, r = [], 0
    for m in _ROW_TAG.finditer(xml, start, stop):
        number = ROW_NUMBER_RE.search(m.group(1))
        r = int(number.group(1)) if number else r + 1
        rows.append((r, m))
    yield from reversed(rows)


def grow_tables(pkg: Package, sheet: schema.Sheet, header_row: int, columns: dict[str, int],
                totals_moved: dict[int, int] | None = None) -> list[Growth]:
    """Grow the tables of owned ``sheet`` (just rewritten in ``pkg``) over its appended rows,
    and fill their calculated columns there.

    ``header_row`` and ``columns`` (column key → 0-based index) are where the write put the
    header and the contract's columns; ``totals_moved``: an output sheet's totals rows the write
    moved down, by their old first row → rows moved (``owned.Written``). Such a table's end (and
    its filter's) moves down with its totals row, as when Excel inserts rows above it.
    """
    part = pkg.sheets.get(sheet.name)
    if part is None or part not in pkg.parts:
        return []  # an owned sheet we added: no table relates to it
    tables = [t for t in table_parts(pkg.parts, part) if t in pkg.parts]
    if not tables:
        return []
    moved = []
    if totals_moved:
        for table in tables:
            xml = pkg.parts[table].decode("utf-8")
            area = totals_area(xml)
            shift = totals_moved.get(area.first_row) if area else None
            if shift:
                new = _part_moved_down(xml, shift)
                pkg.set_text(table, new)
                moved.append(Growth(table, _ref_of(xml), _ref_of(new)))
        tables = [t for t in tables if t not in {g.part for g in moved}]
    old_last = last_value_row(pkg.parts[part].decode("utf-8"))
    if old_last is not None:  # an emptied totals row is still taken: the write appended below it
        old_last = max([old_last, *(a.last_row for a in sheet_totals(pkg.parts, part))])
    new_last = last_value_row(pkg.text(part))
    if old_last is None or new_last is None or new_last <= old_last:
        return moved  # nothing appended
    wanted = [columns[k] for k in sheet.keys if k in columns]
    grown = []
    for table in tables:
        xml = pkg.parts[table].decode("utf-8")
        new = grown_table(xml, header_row, wanted, old_last, new_last)
        if new is None:
            continue
        formulas = calculated_columns(xml)
        if formulas is None:
            continue  # an array formula column
        pkg.set_text(table, new)
        old_area, area = Area.parse(_ref_of(xml)), Area.parse(_ref_of(new))
        if formulas:
            pkg.set_text(part, fill_formulas(pkg.text(part), old_area, area.last_row, formulas))
        grown.append(Growth(table, _ref_of(xml), _ref_of(new)))
    return moved + grown


def calculated_columns(xml: str) -> dict[int, str] | None:
    """A table part's calculated columns: position in the table (0-based) → formula (no ``=``);
    None when one is an array formula (not grown)."""
    found = {}
    for i, column in enumerate(_TABLE_COLUMN.findall(xml)):
        m = _CALCULATED.search(column)
        if m is None:
            continue
        if re.search(r'\sarray="(1|true)"', m.group(1)) or not (m.group(2) or "").strip():
            return None
        found[i] = unescape(m.group(2), {"&quot;": '"', "&apos;": "'"})
    return found


def fill_formulas(xml: str, old: Area, new_last: int, formulas: dict[int, str]) -> str:
    """Each row below ``old`` up to ``new_last`` gets each calculated column's formula (translated
    from the first data row, as Excel stores it) where it has no cell holding a value; the new
    cell takes the format of that column's cell in the table's old last row."""
    from openpyxl.formula.translate import Translator  # only here: most writes grow no table

    start, end = sheet_data_span(xml)
    tags = []
    for r, m in _rows_from_end(xml, start, end):
        if r < old.last_row:
            break
        tags.append((r, m))
    styles: dict[int, str] = {}
    edits = []  # (start, end, new row xml) in xml
    for r, m in reversed(tags):
        if r == old.last_row or r <= new_last:
            close = m.end() if m.group(2) else _row_end(xml, m.end())
            row = Row(r, m.group(1), xml=xml[m.start():close])
            cells = {c.col: c for c in row.cells}
            if r == old.last_row:
                styles = {i: cells[old.first_col + i].attrs.get("s", "") for i in formulas
                          if old.first_col + i in cells}
                continue
            added = []
            for i, formula in formulas.items():
                c = old.first_col + i
                if c in cells and cells[c].body and HOLDS_VALUE_RE.search(cells[c].body):
                    continue  # a value the write gave it
                ref = f"{col_name(c)}{r}"
                text = Translator("=" + formula, origin=f"{col_name(c)}{old.first_row + 1}").translate_formula(ref)
                s = f' s="{styles[i]}"' if styles.get(i) else ""
                added.append((c, f'<c r="{ref}"{s}><f>{escape(text[1:])}</f></c>'))
            if added:
                kept = [(c.col, c.xml) for c in row.cells if c.col not in dict(added)]
                edits.append((m.start(), close, row_xml(r, kept + added, m.group(1))))
    parts, at = [], 0
    for a, b, text in edits:  # in order: one join
        parts += [xml[at:a], text]
        at = b
    return "".join(parts) + xml[at:]


def _row_end(data: str, after: int) -> int:
    """End of the ``<row>`` element whose start tag ends at ``after``."""
    return _ROW_CLOSE.search(data, after).end()


def grown_table(xml: str, header_row: int, wanted_cols: list[int], old_last: int, new_last: int) -> str | None:
    """The table part ``xml`` grown to ``new_last``, or None when it is not ours to grow."""
    tag = _TABLE_TAG.search(xml)
    if not tag:
        return None
    attrs = tag.group(0)
    ref = _REF_ATTR.search(attrs)
    area = Area.parse(ref.group(2)) if ref else None
    if area is None:
        return None
    given = attrs_of(attrs)
    if given.get("headerRowCount", "1") == "0" or given.get("totalsRowCount", "0") != "0":
        return None  # no header row (not ours), or a totals row the new rows would sit under
    if area.first_row != header_row or not wanted_cols:
        return None  # elsewhere on the sheet
    if area.first_col > min(wanted_cols) or area.last_col < max(wanted_cols):
        return None  # does not cover our columns
    if not old_last <= area.last_row < new_last:
        return None  # rows below it that are not in it (not contiguous), or nothing beyond it
    end = area.last_row
    new_attrs = attrs[:ref.start(2)] + _with_last_row(ref.group(2), new_last) + attrs[ref.end(2):]
    out = xml[:tag.start()] + new_attrs + xml[tag.end():]
    flt = _AUTOFILTER_TAG.search(out, tag.start() + len(new_attrs))
    if flt:
        fref = _REF_ATTR.search(flt.group(0))
        farea = Area.parse(fref.group(2)) if fref else None
        if farea is not None and farea.last_row == end:
            at = flt.start() + fref.start(2)
            out = out[:at] + _with_last_row(fref.group(2), new_last) + out[flt.start() + fref.end(2):]
    return out


def _part_moved_down(xml: str, shift: int) -> str:
    """A table part whose last rows (its totals row) moved down ``shift`` rows: ``ref``'s last row
    moved so, and its filter's (which ends above the totals row)."""
    tag = _TABLE_TAG.search(xml)
    ref = _REF_ATTR.search(tag.group(0))
    area = Area.parse(ref.group(2))
    new_tag = tag.group(0)[:ref.start(2)] + _with_last_row(ref.group(2), area.last_row + shift) + tag.group(0)[ref.end(2):]
    out = xml[:tag.start()] + new_tag + xml[tag.end():]
    flt = _AUTOFILTER_TAG.search(out, tag.start() + len(new_tag))
    fref = _REF_ATTR.search(flt.group(0)) if flt else None
    farea = Area.parse(fref.group(2)) if fref else None
    if farea is not None:
        at = flt.start() + fref.start(2)
        out = out[:at] + _with_last_row(fref.group(2), farea.last_row + shift) + out[flt.start() + fref.end(2):]
    return out


def table_ref(xml: str) -> str | None:
    """The ``ref`` of a table part's ``<table>`` element."""
    return _ref_of(xml) or None


def autofilter_ref(xml: str) -> str | None:
    tag = _TABLE_TAG.search(xml)
    flt = _AUTOFILTER_TAG.search(xml, tag.end()) if tag else None
    ref = _REF_ATTR.search(flt.group(0)) if flt else None
    return ref.group(2) if ref else None


def _ref_of(xml: str) -> str:
    tag = _TABLE_TAG.search(xml)
    ref = _REF_ATTR.search(tag.group(0)) if tag else None
    return ref.group(2) if ref else ""




def _with_last_row(ref: str, row: int) -> str:
    """``A1:L314`` → ``A1:L<row>`` (absolute markers kept)."""
    first, last = ref.split(":")
    m = REF_RE.search(last)
    return f"{first}:{last[:m.start(2)]}{row}{last[m.end(2):]}"
