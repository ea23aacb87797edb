"""A *decorated* master: everything staff add that a careless writer would destroy.

Built with xlsxwriter over the contract (``macros.book.build``), plus: a VBA project and a button,
a chart, an image, a text box, staff comments, a data bar (x14), a formula with a cached result,
an extra staff column, and cross-sheet dropdowns stored as x14 data validations (added to the
sheet XML after building, as Excel itself writes them; xlsxwriter does not).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import xlsxwriter

from macros import demo, schema
from macros.book.build import SheetBuilder, xlwings_vba_project

X14_URI = "{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}"
X14_NS = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
XM_NS = "http://schemas.microsoft.com/office/excel/2006/main"
STAFF = "张三"
STAFF_NOTE_PROJECTS = ("B3", "类别请与街道确认")  # on 项目, a sheet that also gets marks
STAFF_NOTE_LEDGER = ("E3", "活动照片在共享盘")  # on 台账, owned and marked
EXTRA_HEADER = "核对人"
FORMULA_HEADER = "人均数量"
KEEP_BACKUPS = 4


def png(width: int = 8, height: int = 8) -> bytes:
    """A tiny valid PNG (a green square)."""
    raw = b"".join(b"\x00" + b"\x2e\x7d\x32" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def demo_rows_with_settings(ledger_rows: int | None = None) -> dict[str, list[dict]]:
    rows = demo.demo_rows()
    for row in rows[schema.SETTINGS.name]:
        if row["item"] == schema.SETTINGS_BY_KEY["backups_kept"].item:
            row["value"] = str(KEEP_BACKUPS)
    if ledger_rows is not None:
        base = rows[schema.LEDGER.name]
        grown = []
        for i in range(ledger_rows):
            row = dict(base[i % len(base)])
            row["record_id"] = f"{row['committee_id']}-{i + 1:06d}"
            grown.append(row)
        rows[schema.LEDGER.name] = grown
    return rows


def build_decorated(path: Path, ledger_rows: int | None = None) -> Path:
    """Write the decorated master at ``path`` (.xlsm)."""
    rows = demo_rows_with_settings(ledger_rows)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    wb.add_vba_project(io.BytesIO(xlwings_vba_project()), is_stream=True)
    wb.set_vba_name("ThisWorkbook")
    SheetBuilder(wb).build(rows)
    guide = wb.get_worksheet_by_name(schema.GUIDE.name)
    guide.insert_button("D2", {"macro": "main", "caption": "一键生成报告", "width": 120, "height": 30})
    guide.insert_textbox("D6", "请先填写台账，再点上面的按钮。", {"width": 240, "height": 60})
    guide.insert_image("D12", "logo.png", {"image_data": io.BytesIO(png())})

    projects = wb.get_worksheet_by_name(schema.PROJECTS.name)
    projects.write_comment(STAFF_NOTE_PROJECTS[0], STAFF_NOTE_PROJECTS[1], {"author": STAFF})
    chart = wb.add_chart({"type": "column"})
    n = len(rows[schema.PROJECTS.name])
    chart.add_series({"categories": [schema.PROJECTS.name, 1, 0, n, 0],
                      "values": [schema.PROJECTS.name, 1, 6, n, 6], "name": "目标值"})
    projects.insert_chart("K2", chart)

    ledger = wb.get_worksheet_by_name(schema.LEDGER.name)
    ledger.write_comment(STAFF_NOTE_LEDGER[0], STAFF_NOTE_LEDGER[1], {"author": STAFF})
    width = len(schema.LEDGER.columns)
    n_ledger = len(rows[schema.LEDGER.name])
    ledger.write_string(0, width, EXTRA_HEADER)
    ledger.write_string(0, width + 1, FORMULA_HEADER)
    participants = schema.LEDGER.keys.index("participants")
    quantity = schema.LEDGER.keys.index("quantity")
    for r, row in enumerate(rows[schema.LEDGER.name][:20], start=1):
        ledger.write_string(r, width, "王五")
        p, q = row.get("participants"), row.get("quantity")
        cached = (q / p) if p and q is not None else 0
        ledger.write_formula(r, width + 1, f"=IFERROR({_a1(r, quantity)}/{_a1(r, participants)},0)", None, cached)
    ledger.conditional_format(1, quantity, max(n_ledger, 2), quantity,
                              {"type": "data_bar", "bar_color": "#63C384", "data_bar_2010": True})
    wb.get_worksheet_by_name(schema.PROJECT_PROGRESS.name).conditional_format(
        1, 6, 200, 6, {"type": "data_bar", "data_bar_2010": True})
    wb.close()
    # Cross-sheet dropdowns as Excel 2010+ writes them: x14 data validations in the sheet's extLst.
    _add_x14_validation(path, schema.PROJECTS.name, "'居委会'!$A$2:$A$200", "I2:I200")
    _add_x14_validation(path, schema.LEDGER.name, "'项目'!$A$2:$A$200", f"{_col(width + 2)}2:{_col(width + 2)}5000")
    return path


def _col(index: int) -> str:
    from macros.book.ooxml import col_name

    return col_name(index)


def _a1(r: int, c: int) -> str:
    return f"{_col(c)}{r + 1}"


def _add_x14_validation(path: Path, sheet_name: str, source: str, sqref: str) -> None:
    from macros.book.ooxml import sheet_parts

    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        parts = {i.filename: zf.read(i) for i in infos}
    part = sheet_parts(parts)[sheet_name]
    xml = parts[part].decode("utf-8")
    ext = (f'<ext uri="{X14_URI}" xmlns:x14="{X14_NS}"><x14:dataValidations count="1" xmlns:xm="{XM_NS}">'
           '<x14:dataValidation type="list" allowBlank="1" showInputMessage="1" showErrorMessage="1">'
           f"<x14:formula1><xm:f>{source}</xm:f></x14:formula1><xm:sqref>{sqref}</xm:sqref>"
           "</x14:dataValidation></x14:dataValidations></ext>")
    if "<extLst>" in xml:
        xml = xml.replace("</extLst></worksheet>", ext + "</extLst></worksheet>")
    else:
        xml = xml.replace("</worksheet>", f"<extLst>{ext}</extLst></worksheet>")
    parts[part] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in infos:
            zf.writestr(info, parts[info.filename])
