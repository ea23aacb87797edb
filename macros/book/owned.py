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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

from .. import schema
from ..errors import MissingSheet
from .ooxml import (
    AFTER_HYPERLINKS,
    DIMENSION_RE,
    HYPERLINKS_RE,
    MAX_TEXT,
    NS_MAIN,
    Row,
    cell_value,
    cell_xml,
    col_name,
    find_top,
    insert_before_any,
    looks_like_formula,
    parse_rows,
    plain,
    ref_of,
    rels_name,
    row_xml,
    sheet_data_span,
)
from .package import Package
from .read import HEADER_SEARCH_ROWS, ROW, clean_header
from .write_types import FILLS, SheetWrite

_COL_RE = re.compile(r"<(?:\w+:)?col\b[^>]*?/>", re.S)


@dataclass
class Written:
    """What a sheet now holds, for the re-read check: (row, col) → value as written."""

    sheet: str
    expected: dict[tuple[int, int], object] = field(default_factory=dict)
    header_row: int = 1
    columns: dict[str, int] = field(default_factory=dict)  # column key → 0-based index


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


def rewrite_sheet(
    pkg: Package,
    write: SheetWrite,
    extra_cells: dict[int, list[tuple[int, str]]] | None = None,
    drop_cols: set[int] | None = None,
) -> Written:
    """Replace the cell data of ``write.sheet`` in ``pkg``; returns what the check should find.

    ``extra_cells`` (row → (column, cell xml)) are merged in, e.g. the mark memory; cells of
    ``drop_cols`` in the old data are not carried over.
    """
    sheet = write.sheet
    part = pkg.sheets.get(sheet.name)
    if part is None:
        raise MissingSheet(pkg.path, sheet.name)
    xml = pkg.text(part)
    start, end = sheet_data_span(xml)
    old_rows = parse_rows(xml[start:end])
    strings = pkg.strings if sheet.role == "ledger" else []
    styles = pkg.styles
    by_col_style = col_styles(xml)
    header_r, header_cells = header_layout(old_rows, sheet, strings if strings else pkg.strings)
    header_r = header_r or 1
    ledger = sheet.role == "ledger"
    out = Written(sheet.name, header_row=header_r)

    # Column layout.
    by_header = sheet.by_header()
    if ledger:
        for c, text in header_cells.items():
            out.columns[by_header[text].key if text in by_header else text] = c
        next_col = max(header_cells, default=-1) + 1
        for col in sheet.columns:
            if col.key not in out.columns:
                out.columns[col.key] = next_col
                next_col += 1
        for row in write.rows:
            for key in row:
                if not key.startswith("_") and key not in out.columns:
                    out.columns[key] = next_col
                    next_col += 1
    else:
        out.columns = {col.key: i for i, col in enumerate(sheet.columns)}
    layout_cols = set(out.columns.values())
    headers = {c: (by_header_key(sheet, key) or key) for key, c in out.columns.items()}

    old_by_r = {row.r: row for row in old_rows}
    header_old = old_by_r.get(header_r)
    header_style = 0
    if header_old and header_old.cells:
        header_style = header_old.cells[0].style

    new_rows: dict[int, list[tuple[int, str]]] = {}
    row_attrs: dict[int, str] = {}
    # Rows above the header stay as they were.
    for row in old_rows:
        if row.r < header_r:
            new_rows[row.r] = [(c.col, c.xml) for c in row.cells]
            row_attrs[row.r] = row.attrs_text

    # Header row: existing header cells kept; missing headers added; the banner replaced.
    header_cells_out: dict[int, str] = {}
    if header_old:
        row_attrs[header_r] = header_old.attrs_text
        for cell in header_old.cells:
            if ledger or cell.col in layout_cols:
                header_cells_out[cell.col] = cell.xml
    for c, text in headers.items():
        old_text = _header_text(header_old, c, pkg) if c in header_cells_out else None
        if old_text is None or clean_header(old_text) != clean_header(text):
            # A sheet from an older layout gets today's header.
            header_cells_out[c] = cell_xml(ref_of(header_r, c), text, header_style)
            out.expected[(header_r, c)] = text
        else:
            out.expected[(header_r, c)] = old_text
    banner_col = max(layout_cols) + 2 if layout_cols else 1
    if write.note:
        for c in [c for c in header_cells_out if c > max(layout_cols)]:
            if not ledger:
                del header_cells_out[c]
        header_cells_out[banner_col] = cell_xml(ref_of(header_r, banner_col), write.note, 0)
        out.expected[(header_r, banner_col)] = write.note
    elif header_old and not ledger:
        for cell in header_old.cells:  # keep the existing banner when no new note is given
            if cell.col not in layout_cols and cell.col not in (drop_cols or set()):
                header_cells_out[cell.col] = cell.xml
    new_rows[header_r] = list(header_cells_out.items())

    # Where each data row goes.
    placed: list[tuple[int, dict]] = []
    taken: set[int] = set()
    explicit = [row.get(ROW) for row in write.rows]
    last = max([header_r, *(r for r in explicit if isinstance(r, int))])
    if ledger:
        last = max([last, *(r.r for r in old_rows)])
    for row, want in zip(write.rows, explicit):
        if isinstance(want, int) and not isinstance(want, bool):
            if want <= header_r or want in taken:
                raise ValueError(f"{sheet.name}: row {want} is the header or used twice")
            r = want
        else:
            last += 1
            r = last
        taken.add(r)
        placed.append((r, row))

    old_cells = {(row.r, cell.col): cell for row in old_rows if row.r > header_r for cell in row.cells}
    link_rows: list[str] = []
    external: list[str] = []  # file links need relationships in the sheet's rels part
    for index, (r, row) in enumerate(placed):
        cells = []
        for key, c in out.columns.items():
            value = plain(row.get(key))
            if isinstance(value, str) and len(value) > MAX_TEXT:
                value = value[:MAX_TEXT]  # Excel's limit; longer text would make the file unreadable
            old = old_cells.get((r, c)) if ledger else None
            if old is not None and _same(cell_value(old, strings), value) and (index, key) not in write.fills \
                    and (index, key) not in write.links:
                cells.append((c, old.xml))
                out.expected[(r, c)] = cell_value(old, strings)
                continue
            base = old.style if old is not None else by_col_style.get(c, 0)
            style = _style_for(styles, base, sheet, key, value, write.fills.get((index, key)),
                               (index, key) in write.links)
            text = cell_xml(ref_of(r, c), value, style)
            if text:
                cells.append((c, text))
            out.expected[(r, c)] = value
            if (index, key) in write.links:
                target = write.links[(index, key)]
                display = str(value if value is not None else target)
                if is_location(target):
                    where = f"location={_attr(target)}"
                else:
                    external.append(target)
                    where = f'r:id="{EXTERNAL_LINK_ID}{len(external)}"'
                link_rows.append(f'<hyperlink ref="{ref_of(r, c)}" {where} display={_attr(display)}/>')
        new_rows.setdefault(r, []).extend(cells)
    if ledger:
        # Cells in columns without a header are not ours to drop.
        for (r, c), cell in old_cells.items():
            if c not in layout_cols and c not in (drop_cols or set()):
                new_rows.setdefault(r, []).append((c, cell.xml))
    for r, cells in (extra_cells or {}).items():
        new_rows.setdefault(r, []).extend(cells)

    body = "".join(row_xml(r, new_rows[r], row_attrs.get(r)) for r in sorted(new_rows))
    prefix = re.match(r"<((?:\w+:)?)sheetData", xml[start:end]).group(1)
    # Under a prefixed root, a default namespace on sheetData puts our unprefixed rows in place.
    ns = f' xmlns="{NS_MAIN}"' if prefix else ""
    data_xml = f"<{prefix}sheetData{ns}>{body}</{prefix}sheetData>"
    xml = xml[:start] + data_xml + xml[end:]
    xml = _set_dimension(xml, new_rows)
    if not ledger or write.links:
        xml = _set_hyperlinks(xml, link_rows)
        _set_link_relationships(pkg, part, external)
        root = re.search(r"<(?:\w+:)?worksheet\b[^>]*>", xml)
        if external and root and "xmlns:r=" not in root.group(0):
            xml = xml[: root.start()] + root.group(0)[:-1].rstrip("/") + f' xmlns:r="{NS_REL}">' + xml[root.end():]
    pkg.set_text(part, xml)
    return out


def by_header_key(sheet: schema.Sheet, key: str) -> str | None:
    try:
        return sheet.header_of(key)
    except KeyError:
        return None


def _header_text(row: Row | None, c: int, pkg: Package) -> str:
    if row is None:
        return ""
    for cell in row.cells:
        if cell.col == c:
            value = cell_value(cell, pkg.strings)
            return "" if value is None else str(value)
    return ""


def _same(old: object, new: object) -> bool:
    if new is None:
        return old is None or old == ""
    if old is None or isinstance(new, bool) != isinstance(old, bool):
        return False
    if isinstance(new, str):
        return isinstance(old, str) and old.strip() == new
    if isinstance(new, (int, float, date, time)):
        if not isinstance(old, float):
            return False
        from .ooxml import to_serial

        number = to_serial(new) if isinstance(new, (date, time)) else float(new)
        return abs(number - old) < 1e-9
    return False


def _style_for(styles, base: int, sheet: schema.Sheet, key: str, value: object, fill: str | None,
               link: bool) -> int:
    try:
        column = sheet.column(key)
    except KeyError:
        column = None
    style = base
    if isinstance(value, (date, datetime, time)):
        if not styles.is_date(style):
            style = styles.derive(style, num_format=_date_format(column, value))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if column is not None and column.number_format and styles.is_general(style):
            style = styles.derive(style, num_format=column.number_format)
    elif isinstance(value, str) and looks_like_formula(value):
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


def _attr(text: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(text)


def _set_dimension(xml: str, rows: dict[int, list[tuple[int, str]]]) -> str:
    used = [(r, c) for r, cells in rows.items() for c, x in cells if x]
    if used:
        ref = f"A1:{col_name(max(c for _, c in used))}{max(r for r, _ in used)}"
        if min(c for _, c in used) > 0 or min(r for r, _ in used) > 1:
            ref = f"{col_name(min(c for _, c in used))}{min(r for r, _ in used)}:{ref.split(':')[1]}"
    else:
        ref = "A1"
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
        _add_rels_content_type(pkg)
    xml = pkg.text(rels_part)
    kept = _LINK_REL_RE.sub("", xml)
    if xml.rstrip().endswith("/>") and "</Relationships>" not in kept:
        kept = kept.rstrip()[:-2] + "></Relationships>"
    added = "".join(
        f'<Relationship Id="{EXTERNAL_LINK_ID}{i}" Type="{REL_HYPERLINK}" '
        f'Target={_attr(target.replace(chr(92), "/"))} TargetMode="External"/>'
        for i, target in enumerate(targets, start=1)
    )
    if added or kept != xml:
        close = kept.rindex("</")
        pkg.set_text(rels_part, kept[:close] + added + kept[close:])


def _add_rels_content_type(pkg: Package) -> None:
    types = pkg.text("[Content_Types].xml")
    if 'Extension="rels"' not in types:
        close = types.rindex("</")
        pkg.set_text("[Content_Types].xml", types[:close] + '<Default Extension="rels" ContentType='
                     '"application/vnd.openxmlformats-package.relationships+xml"/>' + types[close:])


def _set_hyperlinks(xml: str, links: list[str]) -> str:
    m = HYPERLINKS_RE.search(xml)
    element = f"<hyperlinks>{''.join(links)}</hyperlinks>" if links else ""
    if m and find_top(xml, "hyperlinks"):
        return xml[:m.start()] + element + xml[m.end():]
    if element:
        return insert_before_any(xml, element, AFTER_HYPERLINKS)
    return xml
