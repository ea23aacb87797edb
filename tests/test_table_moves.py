"""Tables with a totals row over the sheets the writer rewrites: an output sheet that grows past
it (the totals row moves down, as when Excel inserts rows above it), and 变更记录.

Real files: the project's master, tables made by openpyxl as Excel stores them
(``tests/test_table_cases.excel_table``), real reports and consolidations, LibreOffice recalculating.
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter

from macros import schema
from macros.book.read import read_workbook
from macros.book.tables import autofilter_ref, table_ref
from macros.book.verify import check_table_grew
from macros.cli import main

from .test_table_cases import copy, excel_table, parts_of, table_part
from .test_tables import changed_parts, recalculated, writer_parts
from .test_write_staff_edits import row_elements, sheet_xml

PROGRESS = schema.COMMITTEE_PROGRESS
COUNT_HEADER = "台账条数"


def report(master: Path, out: Path) -> int:
    return main(["report", str(master), "--as-of", "2020-11-15", "--out", str(out)])


def progress_with_totals(plain: Path, tmp_path: Path, formula: str | None = None,
                         tab: str | None = None) -> tuple[Path, int]:
    """After a first report, 居委会进度 made a table with a totals row when it listed two committees
    fewer: the totals row (汇总, SUBTOTAL of 台账条数 — or ``formula``) sits where the
    committees' rows now reach. Returns the master and the totals row."""
    master = copy(plain, tmp_path)
    assert report(master, tmp_path / "通知0") in (0, 1)
    wb = openpyxl.load_workbook(master)
    ws = wb[PROGRESS.name]
    body = ws.max_row  # header + one row per committee
    width = len(PROGRESS.columns)
    count_col = [c.header for c in PROGRESS.columns].index(COUNT_HEADER) + 1
    totals = body - 1
    for r in (totals, body):
        for c in range(1, width + 1):
            ws.cell(r, c).value = None
    excel_table(ws, f"A1:{get_column_letter(width)}{totals}", "进度表", totals={1: "汇总", count_col: "sum"})
    if formula:
        ws.cell(totals, count_col).value = formula
    if tab:  # the tab as staff renamed it ("居委会进度 ", a stray space)
        ws.title = tab
    wb.save(master)
    return master, totals


def test_the_totals_row_moves_down_below_more_rows(plain, tmp_path):
    master, totals = progress_with_totals(plain, tmp_path)
    part = table_part(master, "进度表")
    before = parts_of(master)
    totals_before = row_elements(sheet_xml(master, PROGRESS.name))[totals]
    width = get_column_letter(len(PROGRESS.columns))

    assert report(master, tmp_path / "通知1") in (0, 1)
    committees = list(read_workbook(master)[schema.COMMITTEES.name]["committee_id"])
    last = len(committees) + 1
    assert last == totals + 1  # two more committees than rows above the totals row
    ws = openpyxl.load_workbook(master)[PROGRESS.name]
    assert [ws.cell(r, 1).value for r in range(2, last + 1)] == committees
    # The totals row, moved below them: the same bytes with its new row number.
    moved = row_elements(sheet_xml(master, PROGRESS.name))[last + 1]
    assert moved == re.sub(rf'(r="[A-Z]*){totals}"', rf'\g<1>{last + 1}"', totals_before)
    assert ws.cell(last + 1, 1).value == "汇总"
    # The table's end (and its filter's) moved down with it: its ref only.
    after = parts_of(master)
    table = after[part].decode()
    assert (table_ref(table), autofilter_ref(table)) == (f"A1:{width}{last + 1}", f"A1:{width}{last}")
    check_table_grew(part, before[part], after[part])
    notes = {n for n in before if re.search(r"comments?\d*\.xml$", n)}  # openpyxl names them comment1.xml
    assert changed_parts(before, after) - writer_parts(before) - notes == {part}

    # LibreOffice recalculating: the totals row adds up every committee's rows.
    book = recalculated(master, tmp_path / "lo")
    grid = book.get_sheet_by_name(PROGRESS.name).to_python()
    count = grid[0].index(COUNT_HEADER)
    assert grid[last][count] == sum(grid[r][count] for r in range(1, last)) == len(read_workbook(master)[schema.LEDGER.name])

    # Run again: the rows fit above it now; nothing moves.
    table_after = after[part]
    assert report(master, tmp_path / "通知2") in (0, 1)
    assert parts_of(master)[part] == table_after
    assert row_elements(sheet_xml(master, PROGRESS.name))[last + 1] == moved


@pytest.mark.parametrize("formula, tab", [("=SUM(C2:C6)", None), (f"=SUM('{PROGRESS.name}'!C2:C6)", None),
                                          (f"=SUM('{PROGRESS.name} '!C2:C6)", f"{PROGRESS.name} ")])
def test_a_totals_row_adding_up_cells_is_not_moved_but_refused(plain, tmp_path, capsys, formula, tab):
    """=SUM(C2:C6) typed into the totals row: moved down it would add up the wrong rows (Excel
    would stretch it). The report is refused with a message saying what to do; nothing written."""
    master, totals = progress_with_totals(plain, tmp_path, formula=formula, tab=tab)
    before = master.read_bytes()
    assert report(master, tmp_path / "通知1") == 2
    err = capsys.readouterr().err
    assert f"第 {totals} 行是表格的汇总行" in err and "C2:C6)" in err and PROGRESS.name in err
    assert master.read_bytes() == before


# Another sheet's cells do not move with the row: =COUNTA(居委会!A2:A20) stays right.
@pytest.mark.parametrize("formula", ["=SUBTOTAL(109,进度表[台账条数])*1", "=COUNTA(居委会!A:A)-1",
                                     "=COUNTA(居委会!A2:A20)", "=SUM('居委会'!A2:A20)/2"])
def test_formulas_without_cell_references_move(plain, tmp_path, formula):
    master, totals = progress_with_totals(plain, tmp_path, formula=formula)
    assert report(master, tmp_path / "通知1") in (0, 1)
    ws = openpyxl.load_workbook(master)[PROGRESS.name]
    assert ws.cell(totals + 2, [c.header for c in PROGRESS.columns].index(COUNT_HEADER) + 1).value == formula


# --- 变更记录: a table with a totals row, its header changed by staff ------------------------------


LOG = schema.CHANGES


@pytest.mark.parametrize("totals", [True, False])
def test_a_change_log_table_whose_columns_staff_moved(plain, form, tmp_path, totals):
    """Staff inserted a column of their own (核对人) into 变更记录 and made it a table (with a
    totals row: 合计, a count). Its header is not the contract's layout any more: the log used to
    be read and rewritten whole, the totals row read as a log line and the header put back in
    contract order under the table (whose column names are the header's cells). Now the old
    lines, the header and the totals row stay byte for byte; the new line goes under the columns
    where staff put them — below the totals row, or into the table it grows."""
    from .test_table_cases import _log_with_lines, _update

    master, last = _log_with_lines(plain, form, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LOG.name]
    ws.insert_cols(3)
    ws["C1"] = "核对人"
    ws["C2"] = "周敏"
    width = len(LOG.columns) + 1
    end = last + (1 if totals else 0)
    excel_table(ws, f"A1:{get_column_letter(width)}{end}", "变更表",
                totals={1: "合计", width: "count"} if totals else None)
    if totals:
        ws.cell(end, width).value = "=SUBTOTAL(103,变更表[新值])"
    wb.save(master)
    part = table_part(master, "变更表")
    before = parts_of(master)
    rows_before = row_elements(sheet_xml(master, LOG.name))
    headers = [c.value for c in openpyxl.load_workbook(master)[LOG.name][1]]

    assert _update(master, form, "C01-再改一次.xlsx", 92) == 1
    after = parts_of(master)
    rows_after = row_elements(sheet_xml(master, LOG.name))
    new = end + 1
    # Every old line and the totals row byte for byte; the header's cells as staff left them.
    assert {r: rows_after[r] for r in rows_before if r > 1} == {r: rows_before[r] for r in rows_before if r > 1}
    ws = openpyxl.load_workbook(master)[LOG.name]
    assert [c.value for c in ws[1]] == headers
    assert max(rows_after) == new
    line = {headers[c]: ws.cell(new, c + 1).value for c in range(width)}
    assert line["核对人"] is None and line["记录编号"] == "C01-0001" and line["新值"] in (92, "92")
    assert line["原值"] in (91, "91") and line["列名"] == "完成数量"
    if totals:
        assert after[part] == before[part]  # the new line is below its totals row
        assert (ws.cell(end, 1).value, ws.cell(end, width).value) == ("合计", "=SUBTOTAL(103,变更表[新值])")
    else:
        assert table_ref(after[part].decode()) == f"A1:{get_column_letter(width)}{new}"
        check_table_grew(part, before[part], after[part])
    notes = {n for n in before if re.search(r"comments?\d*\.xml$", n)}
    assert changed_parts(before, after) - writer_parts(before) - notes <= {part}
