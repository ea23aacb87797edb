"""A master whose 台账 staff turned into an Excel table (插入 → 表格, Ctrl+T).

Built from the project's own builder, then the table part is added the way Excel stores one: a
``xl/tables/tableN.xml`` part, a relationship from the sheet, a ``<tableParts>`` element in the
sheet, a content type — and, on 说明 (not owned), formulas with structured references to it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from python_calamine import CalamineWorkbook

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.ooxml import col_name, rels_name, sheet_parts

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_TABLE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/table"
CT_TABLE = "application/vnd.openxmlformats-officedocument.spreadsheetml.table+xml"
TABLE = "表1"
CALCULATED_HEADER = "两倍人数"
CALCULATED = f"{TABLE}[[#This Row],[参与人数]]*2"
# On 说明 (a sheet we never write): what staff compute from the table.
COUNT_CELL, SUM_CELL = "D1", "E1"
COUNT_FORMULA, SUM_FORMULA = f"COUNTA({TABLE}[记录编号])", f"SUM({TABLE}[参与人数])"


def build_master(path: Path) -> Path:
    build_workbook(path, demo.demo_rows())
    return path


def ledger_grid(path: Path) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.LEDGER.name).to_python()


def add_table(path: Path, *, last_row: int | None = None, first_row: int = 1, totals: bool = False,
              calculated: str | None = None, autofilter: bool = True, formulas: bool = True,
              sheet: schema.Sheet = schema.LEDGER, number: int = 1) -> str:
    """Make 台账 A<first_row>:<last col><last_row> a table (default: header row to the last data
    row); returns the table part's name. ``totals``: a totals row (汇总, SUM of 参与人数) below
    it, inside the table; ``calculated``: one more column with this calculated column formula
    (as Excel stores it: for the first data row), each row holding it (cached: 参与人数 × 2)."""
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet.name).to_python()
    last_row = last_row or len(rows)
    headers = [str(h) for h in rows[first_row - 1]]
    participants = headers.index("参与人数") if "参与人数" in headers else None
    name = f"表{number}"
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        parts = {i.filename: zf.read(i) for i in infos}
    sheets = sheet_parts(parts)
    part = sheets[sheet.name]
    xml = parts[part].decode("utf-8")
    width = len(headers)
    end_row = last_row + (1 if totals else 0)
    if calculated:
        c = width
        headers.append(CALCULATED_HEADER)
        width += 1
        cells = {first_row: f'<c r="{col_name(c)}{first_row}" t="inlineStr"><is><t>{CALCULATED_HEADER}</t></is></c>'}
        for r in range(first_row + 1, last_row + 1):
            value = rows[r - 1][participants] if r <= len(rows) else ""  # empty table rows: 0
            cached = f"<v>{int(value) * 2}</v>" if value != "" else "<v>0</v>"
            here = calculated.replace(f"F{first_row + 1}", f"F{r}")  # A1 style (F2*2) filled down
            cells[r] = f'<c r="{col_name(c)}{r}"><f>{escape(here)}</f>{cached}</c>'
        xml = _append_cells(xml, cells)
    if totals:
        total = sum(int(rows[r - 1][participants] or 0) for r in range(first_row + 1, last_row + 1))
        xml = _append_cells(xml, {end_row: (
            f'<c r="A{end_row}" t="inlineStr"><is><t>汇总</t></is></c>'
            f'<c r="{col_name(participants)}{end_row}"><f>SUBTOTAL(109,{TABLE}[参与人数])</f><v>{total}</v></c>')})
    ref = f"A{first_row}:{col_name(width - 1)}{end_row}"
    columns = []
    for i, header in enumerate(headers, start=1):
        attrs = f"id=\"{i}\" name={quoteattr(header)}"
        if totals and i == 1:
            attrs += ' totalsRowLabel="汇总"'
        if totals and i - 1 == participants:
            attrs += ' totalsRowFunction="sum"'
        if calculated and header == CALCULATED_HEADER:
            columns.append(f"<tableColumn {attrs}><calculatedColumnFormula>{escape(calculated)}"
                           "</calculatedColumnFormula></tableColumn>")
        else:
            columns.append(f"<tableColumn {attrs}/>")
    filter_ref = f"A{first_row}:{col_name(width - 1)}{last_row}"
    totals_attrs = ' totalsRowCount="1"' if totals else ' totalsRowShown="0"'
    table = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
             f'<table xmlns="{NS_MAIN}" id="{number}" name="{name}" displayName="{name}" ref="{ref}"{totals_attrs}>'
             + (f'<autoFilter ref="{filter_ref}"/>' if autofilter else "")
             + f'<tableColumns count="{width}">{"".join(columns)}</tableColumns>'
             '<tableStyleInfo name="TableStyleMedium9" showFirstColumn="0" showLastColumn="0" '
             'showRowStripes="1" showColumnStripes="0"/></table>')
    table_part = f"xl/tables/table{number}.xml"
    parts[table_part] = table.encode("utf-8")
    rels = rels_name(part)
    rel = f'<Relationship Id="rIdT{number}" Type="{REL_TABLE}" Target="../tables/table{number}.xml"/>'
    if rels in parts:
        text = parts[rels].decode("utf-8")
        parts[rels] = text.replace("</Relationships>", rel + "</Relationships>").encode("utf-8")
    else:
        parts[rels] = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
                       f'"http://schemas.openxmlformats.org/package/2006/relationships">{rel}</Relationships>'
                       ).encode()
    tail = f'<tableParts count="1"><tablePart r:id="rIdT{number}"/></tableParts>'
    xml = xml.replace("<extLst>", tail + "<extLst>", 1) if "<extLst>" in xml else \
        xml.replace("</worksheet>", tail + "</worksheet>")
    if calculated:
        xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{col_name(width - 1)}{end_row}"/>', xml)
    parts[part] = xml.encode("utf-8")
    types = parts["[Content_Types].xml"].decode("utf-8")
    parts["[Content_Types].xml"] = types.replace(
        "</Types>", f'<Override PartName="/{table_part}" ContentType="{CT_TABLE}"/></Types>').encode("utf-8")
    if formulas:
        guide = sheets[schema.GUIDE.name]
        filled = min(last_row, len(rows))  # empty table rows below the data count for nothing
        total = sum(int(rows[r - 1][participants] or 0) for r in range(first_row + 1, filled + 1))
        parts[guide] = _append_cells(parts[guide].decode("utf-8"), {1: (
            f'<c r="{COUNT_CELL}"><f>{COUNT_FORMULA}</f><v>{filled - first_row}</v></c>'
            f'<c r="{SUM_CELL}"><f>{SUM_FORMULA}</f><v>{total}</v></c>')}).encode("utf-8")
    names = [i.filename for i in infos]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names + [n for n in parts if n not in names]:
            zf.writestr(name, parts[name])
    return table_part


def _append_cells(xml: str, cells: dict[int, str]) -> str:
    """Append cells at the end of rows (a new row where there is none), keeping sheetData sorted."""
    for r, cell in sorted(cells.items()):
        m = re.search(rf'<row r="{r}"[^>]*?(/?)>', xml)
        if m and m.group(1):
            xml = xml[:m.start()] + m.group(0)[:-2] + ">" + cell + "</row>" + xml[m.end():]
        elif m:
            close = xml.index("</row>", m.end())
            xml = xml[:close] + cell + xml[close:]
        else:
            later = [int(x) for x in re.findall(r'<row r="(\d+)"', xml) if int(x) > r]
            new = f'<row r="{r}">{cell}</row>'
            if later:
                at = xml.index(f'<row r="{min(later)}"')
                xml = xml[:at] + new + xml[at:]
            else:
                xml = xml.replace("</sheetData>", new + "</sheetData>")
    return xml
