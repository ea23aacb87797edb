"""The writer and the rows staff formatted: a row it writes cells into keeps its height and style."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.styles import PatternFill

from macros import schema
from macros.book.ooxml import sheet_parts
from macros.book.read import read_workbook
from macros.consolidate import consolidate

from .conftest import convert_with_libreoffice
from .test_consolidate import blank_forms, fill_form, form_c01, inbox, ledger_of, new_row  # noqa: F401

LOG_ROWS = range(2, 7)  # styled blank rows of 变更记录 (the audit lines go into them)


def row_tags(path: Path, sheet: schema.Sheet) -> dict[int, dict[str, str]]:
    """Row number → the attributes of its ``<row>`` element, as the file holds them."""
    with zipfile.ZipFile(path) as z:
        xml = z.read(sheet_parts({n: z.read(n) for n in z.namelist()})[sheet.name]).decode()
    rows = {}
    for m in re.finditer(r"<row\b([^>]*?)/?>", xml):
        attrs = dict(re.findall(r'([\w:]+)="([^"]*)"', m.group(1)))
        rows[int(attrs["r"])] = attrs
    return rows


def test_rows_staff_formatted_keep_their_height_and_style_when_filled_or_updated(
        master_copy, inbox, blank_forms, tmp_path):  # noqa: F811
    ledger = ledger_of(master_copy)
    updated_at = int(ledger.set_index("record_id").loc["C01-0002", "_row"])
    blank_at = int(ledger["_row"].max()) + 1  # a formatted blank row below the data
    # Staff format rows in Excel (openpyxl stands in here): a taller row with a fill.
    wb = openpyxl.load_workbook(master_copy)
    fill = PatternFill("solid", fgColor="FFF2CC")
    for name, rows, height in [(schema.CHANGES.name, LOG_ROWS, 30), (schema.LEDGER.name, [updated_at], 40),
                               (schema.LEDGER.name, [blank_at], 25)]:
        for r in rows:
            wb[name].row_dimensions[r].height = height
            wb[name].row_dimensions[r].fill = fill
    wb.save(master_copy)
    log_before, ledger_before = row_tags(master_copy, schema.CHANGES), row_tags(master_copy, schema.LEDGER)
    assert all(log_before[r].get("customFormat") == "1" and log_before[r]["ht"] == "30" for r in LOG_ROWS)

    old = ledger.set_index("record_id").loc["C01-0002"]
    keep = {k: old[k] for k in ("date", "project_id", "activity", "participants", "status", "reporter",
                                "in_bulletin")}
    rows = [{**keep, "record_id": "C01-0002", "quantity": int(old["quantity"]) + 5, "note": "补充体检人数"},
            new_row(activity="填进带格式空行的一行")]
    fill_form(form_c01(blank_forms), inbox / "C01-更正.xlsx", rows)
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_updated == 1 and run.rows_added == 1

    log = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    assert list(log["_row"]) == [2, 3, 4]  # the audit lines went into the formatted rows
    log_after, ledger_after = row_tags(master_copy, schema.CHANGES), row_tags(master_copy, schema.LEDGER)
    wanted = ("ht", "customHeight", "s", "customFormat")
    for r in LOG_ROWS:  # filled (2–4) or still blank (5, 6): the same height and style
        assert {k: log_after[r].get(k) for k in wanted} == {k: log_before[r].get(k) for k in wanted}, r
    for r in (updated_at, blank_at):
        assert {k: ledger_after[r].get(k) for k in wanted} == {k: ledger_before[r].get(k) for k in wanted}, r
    after = ledger_of(master_copy).set_index("_row")
    assert after.loc[blank_at, "activity"] == "填进带格式空行的一行"
    assert after.loc[updated_at, "note"] == "补充体检人数"

    # LibreOffice opens the file and reads the heights back.
    saved = convert_with_libreoffice(master_copy, "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo")
    reopened = openpyxl.load_workbook(saved)
    assert [round(reopened[schema.CHANGES.name].row_dimensions[r].height) for r in LOG_ROWS] == [30] * 5
    assert reopened[schema.CHANGES.name].cell(3, 3).value == "C01-0002"
    assert round(reopened[schema.LEDGER.name].row_dimensions[updated_at].height) == 40
    assert round(reopened[schema.LEDGER.name].row_dimensions[blank_at].height) == 25


ROW_FILL, CELL_FILL = "FFF2CC", "C6EFCE"


def test_rows_and_cells_staff_formatted_lend_their_format_to_what_fills_them(
        master_copy, inbox, blank_forms):  # noqa: F811
    """Excel gives a value typed into a formatted row the row's format, and into a formatted cell
    the cell's: so does the writer, in the ledger and in the change log."""
    blank_at = int(ledger_of(master_copy)["_row"].max()) + 1
    wb = openpyxl.load_workbook(master_copy)
    targets = [(schema.CHANGES.name, 2), (schema.LEDGER.name, blank_at)]
    for name, r in targets:
        ws = wb[name]
        ws.row_dimensions[r].fill = PatternFill("solid", fgColor=ROW_FILL)  # the row only: no cells
        for c in range(1, len(schema.LEDGER.columns) + 1):  # the next row's cells, still blank
            ws.cell(r + 1, c).fill = PatternFill("solid", fgColor=CELL_FILL)
    wb.save(master_copy)

    rows = [new_row(activity="填进带格式的行"), new_row(activity="填进带格式的单元格")]
    fill_form(form_c01(blank_forms), inbox / "C01-新增.xlsx", rows)
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_added == 2

    after = openpyxl.load_workbook(master_copy)
    for name, r in targets:
        ws = after[name]
        for at, colour in ((r, ROW_FILL), (r + 1, CELL_FILL)):
            filled = [c for c in range(1, 8) if ws.cell(at, c).value is not None]
            assert len(filled) >= 5, (name, at)  # the row was written into
            assert {ws.cell(at, c).fill.fgColor.rgb[-6:] for c in filled} == {colour}, (name, at)
    ledger = after[schema.LEDGER.name]
    date_col = 1 + [c.value for c in ledger[1]].index(schema.LEDGER.header_of("date"))
    assert ledger.cell(blank_at, date_col).number_format == "yyyy-mm-dd"  # the fill did not cost the date format
    assert ledger.cell(blank_at, date_col + 3).value == "填进带格式的行"
    assert after[schema.CHANGES.name].cell(2, 1).is_date


def test_a_cell_staff_typed_beside_the_ledger_survives_an_update_of_its_row(
        master_copy, inbox, blank_forms):  # noqa: F811
    """A note in a column without a header, on a row that also has a blank cell, is not ours to drop."""
    ledger = ledger_of(master_copy).set_index("record_id")
    r = int(ledger.loc["C01-0002", "_row"])
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.LEDGER.name]
    note_col = 1 + [c.value for c in ws[1]].index(schema.LEDGER.header_of("note"))
    ws.cell(r, note_col).value = None  # a blank cell: the row holds no more cells than headers
    aside = ws.max_column + 10
    ws.cell(r, aside).value = "核对过，见纸质台账"
    wb.save(master_copy)

    old = ledger.loc["C01-0002"]
    keep = {k: old[k] for k in ("date", "project_id", "activity", "participants", "status", "reporter",
                                "in_bulletin")}
    fill_form(form_c01(blank_forms), inbox / "C01-更正.xlsx",
              [{**keep, "record_id": "C01-0002", "quantity": int(old["quantity"]) + 5}])
    run = consolidate(master_copy, refresh=False)
    assert run.rows_updated == 1 and run.master_written

    ws = openpyxl.load_workbook(master_copy)[schema.LEDGER.name]
    assert ws.cell(r, aside).value == "核对过，见纸质台账"
    quantity_col = 1 + [c.value for c in ws[1]].index(schema.LEDGER.header_of("quantity"))
    assert ws.cell(r, quantity_col).value == int(old["quantity"]) + 5
