"""Marks on input cells: a fill by level and a note with the message; undone on the next run.

How the original look is remembered: every marked cell gets a *new* cell format (its own format
cloned, fill changed) appended to styles.xml, and one row of the **mark memory** — hidden columns
far right on the owned 校验结果 sheet (from ``MEMORY_COL``), written in the same write — records
sheet, cell, original format index, mark format index and whether the cell was created. The next
marking run first restores every remembered cell whose format is still the mark format (a cell
staff re-formatted meanwhile is left alone), deletes cells it created that are still empty, and
removes every note authored by ``healthbook``. Cell values are never touched.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from .. import schema
from .notes import check_notes, set_notes
from .ooxml import (
    NS_MAIN,
    cell_value,
    edit_cells,
    head_rows,
    parse_rows,
    ref_of,
    row_starts,
    row_xml,
    rows_at,
    set_style,
    sheet_data_span,
    split_ref,
)
from .owned import cell_xml, col_styles, header_layout, row_style
from .package import Package
from .read import HEADER_SEARCH_ROWS, clean_header
from .write_types import FILLS, Mark

MEMORY_COL = 100  # 0-based (column CW): far enough right that long messages overflow freely
MEMORY_HEADERS = ("healthbook标记-工作表", "单元格", "原样式", "标记样式", "新建")
LEVEL_ORDER = (schema.LEVEL_ERROR, schema.LEVEL_WARNING)


@dataclass(frozen=True)
class Marked:
    """One remembered mark."""

    sheet: str
    ref: str
    original: int
    style: int
    created: bool


def _issues_rows(pkg: Package):
    part = pkg.sheets[schema.ISSUES.name]
    xml = pkg.text(part)
    start, end = sheet_data_span(xml)
    return part, xml, start, end, parse_rows(xml[start:end])


def _memory_origin(rows, strings) -> tuple[int, int] | None:
    for row in rows:
        for cell in row.cells:
            if cell_value(cell, strings) == MEMORY_HEADERS[0]:
                return row.r, cell.col
    return None


def read_memory(pkg: Package) -> list[Marked]:
    """The marks the last marking run left (empty when there were none)."""
    *_, rows = _issues_rows(pkg)
    origin = _memory_origin(rows, pkg.strings)
    if origin is None:
        return []
    r0, c0 = origin
    found = []
    for row in rows:
        if row.r <= r0:
            continue
        values = {cell.col - c0: cell_value(cell, pkg.strings) for cell in row.cells if c0 <= cell.col < c0 + 5}
        try:
            found.append(Marked(str(values[0]), str(values[1]), int(values[2]), int(values[3]),
                                bool(values.get(4))))
        except (KeyError, TypeError, ValueError):
            continue  # a row someone typed over: nothing to restore
    return found


def unmark(pkg: Package, memory: list[Marked]) -> set[str]:
    """Restore remembered cells; returns the sheets changed."""
    touched = set()
    by_sheet: dict[str, list[Marked]] = defaultdict(list)
    for entry in memory:
        by_sheet[entry.sheet].append(entry)
    for sheet, entries in by_sheet.items():
        part = pkg.sheets.get(sheet)
        if part is None:
            continue
        edits, missed = {}, []
        for entry in entries:
            try:
                edits[split_ref(entry.ref)] = _restorer(entry, missed)
            except ValueError:
                continue
        xml = pkg.text(part)
        start, end = sheet_data_span(xml)
        data = edit_cells(xml[start:end], edits)
        if missed:  # staff sorted the rows: the marked cells moved (their format with them)
            data = edit_cells(data, _moved_marks(data, missed, set(edits), pkg))
        if data != xml[start:end]:
            pkg.set_text(part, xml[:start] + data + xml[end:])
            touched.add(sheet)
    return touched


def _restorer(entry: Marked, missed: list[Marked]):
    def restore(cell):
        if cell is None or cell.style != entry.style:
            missed.append(entry)
            return None  # gone, moved by a sort, or re-formatted by staff since: theirs now
        if entry.created and not _has_content(cell.body):
            return ""
        return set_style(cell.xml, entry.original)
    return restore


def _moved_marks(data: str, missed: list[Marked], remembered: set[tuple[int, int]], pkg: Package) -> dict:
    """Restorers for marked cells a sort moved to other rows (Excel sorts a cell's format with it).

    Found by their mark format in the column they were marked in, at rows no mark remembers; only
    when the format still has a mark's fill (a save by another program may have renumbered the
    formats), the column holds exactly as many such cells as marks went missing there and those
    marks agree on the original format — anything else (staff's own use of it) is left alone."""
    marking = {("FF" + rgb).upper() for level, rgb in FILLS.items() if level in LEVEL_ORDER}
    styles = pkg.styles
    groups: dict[tuple[int, int], list[Marked]] = defaultdict(list)
    for entry in missed:
        if entry.style != entry.original and styles.fill_rgb(styles.fill_of(entry.style)) in marking:
            groups[(split_ref(entry.ref)[1], entry.style)].append(entry)
    if not groups:
        return {}
    mark_styles = "|".join(sorted({str(style) for _, style in groups}))  # a regex alternation
    found: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for m in re.finditer(rf'<(?:\w+:)?c\b[^>]*?\sr="([A-Z]+\d+)"[^>]*?\ss="({mark_styles})"[^>]*?/?>|'
                         rf'<(?:\w+:)?c\b[^>]*?\ss="({mark_styles})"[^>]*?\sr="([A-Z]+\d+)"[^>]*?/?>', data):
        ref, style = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        r, c = split_ref(ref)
        if (r, c) not in remembered:
            found[(c, int(style))].append((r, c))
    edits = {}
    for key, entries in groups.items():
        cells = found.get(key, [])
        if len(cells) != len(entries) or len({(e.original, e.created) for e in entries}) != 1:
            continue
        for at in cells:
            edits[at] = _restorer(entries[0], [])
    return edits


def _has_content(body: str | None) -> bool:
    return bool(body) and bool(re.search(r"<(?:\w+:)?(?:v|f|is)\b", body))


def apply(pkg: Package, marks: list[Mark]) -> tuple[list[Marked], int, list[Mark], set[str]]:
    """Fill and annotate each mark's cell; replace our old notes on every input sheet.

    Returns (memory, cells marked, marks that could not be placed, sheets changed).
    """
    styles = pkg.styles
    memory: list[Marked] = []
    skipped: list[Mark] = []
    touched: set[str] = set()
    notes_by_sheet: dict[str, dict[tuple[int, int], str]] = {}
    by_sheet: dict[str, list[Mark]] = defaultdict(list)
    for mark in marks:
        by_sheet[mark.sheet].append(mark)
    for sheet_name, sheet_marks in by_sheet.items():
        contract = schema.SHEETS_BY_NAME.get(sheet_name)
        part = pkg.sheets.get(sheet_name)
        if contract is None or part is None or contract.role not in ("config", "ledger"):
            skipped += sheet_marks
            continue
        xml = pkg.text(part)
        start, end = sheet_data_span(xml)
        data = xml[start:end]
        starts = row_starts(data)  # only the header rows and the marked rows are parsed
        header_r, headers = header_layout(head_rows(data, HEADER_SEARCH_ROWS, starts), contract, pkg.strings)
        col_of = {text: c for c, text in headers.items()}
        targets: dict[tuple[int, int], list[Mark]] = defaultdict(list)
        for mark in sheet_marks:
            c = col_of.get(clean_header(mark.column)) if mark.column else None
            if c is None or not isinstance(mark.row, int) or header_r is None or mark.row <= header_r:
                skipped.append(mark)
                continue
            targets[(mark.row, c)].append(mark)
        if not targets:
            continue
        defaults = col_styles(xml)
        row_defaults = _row_styles(rows_at(data, {r for r, _ in targets}, starts).values())
        prefix = re.match(r"<((?:\w+:)?)sheetData", xml[start:end]).group(1)
        edits = {}
        for (r, c), found in targets.items():
            level = min((m.level for m in found), key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 9)
            edits[(r, c)] = _marker(sheet_name, r, c, level, styles, defaults, row_defaults, memory, prefix)
            notes_by_sheet.setdefault(sheet_name, {})[(r, c)] = _note_text(found)
        data = edit_cells(xml[start:end], edits)
        pkg.set_text(part, xml[:start] + data + xml[end:])
        touched.add(sheet_name)
    for sheet in schema.INPUT_SHEETS:
        part = pkg.sheets.get(sheet.name)
        if part is None:
            continue
        before = pkg.data(part)
        set_notes(pkg, part, notes_by_sheet.get(sheet.name, {}))
        if pkg.data(part) != before:
            touched.add(sheet.name)
    return memory, len(memory), skipped, touched


def _marker(sheet, r, c, level, styles, defaults, row_defaults, memory, prefix):
    def mark(cell):
        current = cell.style if cell is not None else row_defaults.get(r, defaults.get(c, 0))
        style = styles.derive(current, fill=FILLS.get(level, FILLS[schema.LEVEL_WARNING]))
        memory.append(Marked(sheet, ref_of(r, c), current, style, cell is None))
        if cell is None:
            return f'<{prefix}c r="{ref_of(r, c)}" s="{style}"/>'
        return set_style(cell.xml, style)
    return mark


def _row_styles(rows) -> dict[int, int]:
    return {row.r: style for row in rows if (style := row_style(row.attrs_text)) is not None}


def _note_text(found: list[Mark]) -> str:
    lines = []
    for mark in found:
        # Messages that already carry their level (validate's do) are not prefixed twice.
        line = mark.message if mark.message.startswith("【") else f"【{mark.level}】{mark.message}"
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def memory_cells(pkg: Package, memory: list[Marked]) -> tuple[dict[int, list[tuple[int, str]]], set[int]]:
    """The memory as cells for the 校验结果 sheet, and the columns an older memory used."""
    *_, rows = _issues_rows(pkg)
    header_r, _ = header_layout(rows, schema.ISSUES, pkg.strings)
    header_r = header_r or 1
    drop = set(range(MEMORY_COL, MEMORY_COL + len(MEMORY_HEADERS)))
    origin = _memory_origin(rows, pkg.strings)
    if origin:
        drop |= set(range(origin[1], origin[1] + len(MEMORY_HEADERS)))
    cells: dict[int, list[tuple[int, str]]] = defaultdict(list)
    if memory:
        for i, text in enumerate(MEMORY_HEADERS):
            cells[header_r].append((MEMORY_COL + i, cell_xml(ref_of(header_r, MEMORY_COL + i), text, 0)))
        for n, entry in enumerate(memory, start=header_r + 1):
            values = (entry.sheet, entry.ref, entry.original, entry.style, int(entry.created))
            for i, value in enumerate(values):
                cells[n].append((MEMORY_COL + i, cell_xml(ref_of(n, MEMORY_COL + i), value, 0)))
    return dict(cells), drop


def replace_memory(pkg: Package, cells: dict[int, list[tuple[int, str]]], drop: set[int]) -> None:
    """Swap the memory columns of 校验结果 without touching its other cells."""
    part, xml, start, end, rows = _issues_rows(pkg)
    new_rows: dict[int, list[tuple[int, str]]] = {}
    attrs: dict[int, str] = {}
    for row in rows:
        attrs[row.r] = row.attrs_text
        new_rows[row.r] = [(cell.col, cell.xml) for cell in row.cells if cell.col not in drop]
    for r, extra in cells.items():
        new_rows.setdefault(r, []).extend(extra)
    prefix = re.match(r"<((?:\w+:)?)sheetData", xml[start:end]).group(1)
    body = "".join(row_xml(r, new_rows[r], attrs.get(r)) for r in sorted(new_rows))
    ns = f' xmlns="{NS_MAIN}"' if prefix else ""
    data = f"<{prefix}sheetData{ns}>{body}</{prefix}sheetData>"
    pkg.set_text(part, xml[:start] + data + xml[end:])


def hide_memory(pkg: Package) -> None:
    """Hide the memory columns (a <col> added to 校验结果's <cols> when nothing else covers them)."""
    part = pkg.sheets[schema.ISSUES.name]
    xml = pkg.text(part)
    lo, hi = MEMORY_COL + 1, MEMORY_COL + len(MEMORY_HEADERS)
    element = f'<col min="{lo}" max="{hi}" width="0" hidden="1" customWidth="1"/>'
    if element in xml:
        return
    head = xml[: sheet_data_span(xml)[0]]
    for m in re.finditer(r"<(?:\w+:)?col\b[^>]*?/>", head):
        a = dict(re.findall(r'(\w+)="([^"]*)"', m.group(0)))
        if int(a.get("min", 0)) <= hi and int(a.get("max", 0)) >= lo:
            return  # someone formatted these columns: leave them visible rather than split theirs
    cols = re.search(r"<(?P<p>(?:\w+:)?)cols\b[^>]*>(?P<body>.*?)</(?P=p)cols>", head, re.S)
    if cols:
        prefix = cols.group("p")
        at = cols.end() - len(f"</{prefix}cols>")
        for m in re.finditer(r"<(?:\w+:)?col\b[^>]*?/>", head[: cols.end()]):
            if int(dict(re.findall(r'(\w+)="([^"]*)"', m.group(0))).get("min", 0)) > hi:
                at = m.start()  # <col> elements are kept in column order
                break
        element = element.replace("<col", f"<{prefix}col")
        xml = xml[:at] + element + xml[at:]
    else:
        start = sheet_data_span(xml)[0]
        prefix = re.match(r"<((?:\w+:)?)sheetData", xml[start:]).group(1)
        element = element.replace("<col", f"<{prefix}col")
        xml = xml[:start] + f"<{prefix}cols>{element}</{prefix}cols>" + xml[start:]
    pkg.set_text(part, xml)


def check_marks(pkg: Package) -> None:
    """Staff's notes and other shapes survived (raises ValueError)."""
    check_notes(pkg)

