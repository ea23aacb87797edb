"""Excel tables on owned sheets, in the cases a property test does not reach.

Real files: the project's master (``tests/tabled.py``; openpyxl standing in for Excel where the
table is one openpyxl writes as Excel does), real forms, real consolidations and reports.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from macros import schema
from macros.book.owned import next_free_row
from macros.book.read import read_workbook
from macros.book.tables import autofilter_ref, table_ref
from macros.book.verify import check_table_grew
from macros.consolidate import consolidate, folders

from .tabled import add_table, ledger_grid
from .test_consolidate import fill_form, new_row
from .test_write_staff_edits import row_elements, sheet_xml

LEDGER, LOG = schema.LEDGER.name, schema.CHANGES.name
NEW = [new_row(activity=f"表格用例新增第{i}批", participants=30 + i) for i in range(3)]


def copy(plain: Path, tmp_path: Path) -> Path:
    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    return master


def parts_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rewrite_parts(path: Path, change) -> None:
    """Edit the zip's parts as bytes (``change(parts)``), keeping the member order."""
    parts = parts_of(path)
    names = list(parts)
    change(parts)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names + [n for n in parts if n not in names]:
            zf.writestr(name, parts[name])


def drop(master: Path, form: Path, rows: list[dict], name: str = "C01-11月.xlsx") -> None:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    fill_form(form, inbox / name, rows)


def excel_table(ws, ref: str, name: str, *, totals: dict[int, str] | None = None, autofilter: bool = True) -> None:
    """Make ``ref`` a table the way Excel stores one (header names from its first row);
    ``totals``: column (1-based) → SUBTOTAL function name or label, in a totals row that is the
    last row of ``ref``."""
    first_col, first_row, last_col, last_row = openpyxl.utils.range_boundaries(ref)
    columns = [TableColumn(id=i, name=str(ws.cell(first_row, c).value))
               for i, c in enumerate(range(first_col, last_col + 1), start=1)]
    table = Table(displayName=name, name=name, ref=ref, tableColumns=columns,
                  tableStyleInfo=TableStyleInfo(name="TableStyleMedium2", showRowStripes=True))
    body_end = last_row
    if totals:
        table.totalsRowCount, body_end = 1, last_row - 1
        for c, what in totals.items():
            column = columns[c - first_col]
            header = column.name
            if what == "sum":
                column.totalsRowFunction = "sum"
                ws.cell(last_row, c).value = f"=SUBTOTAL(109,{name}[{header}])"
            else:
                column.totalsRowLabel = what
                ws.cell(last_row, c).value = what
    if autofilter:
        table.autoFilter = AutoFilter(ref=f"{get_column_letter(first_col)}{first_row}:{get_column_letter(last_col)}{body_end}")
    ws.add_table(table)


def table_part(path: Path, name: str) -> str:
    """The part holding the table ``name`` (openpyxl numbers them in the order it writes)."""
    parts = parts_of(path)
    [part] = [n for n in parts if n.startswith("xl/tables/") and f'name="{name}"'.encode() in parts[n]]
    return part


# --- a totals row staff emptied ------------------------------------------------------------------


def test_records_go_below_a_totals_row_staff_emptied(plain, form, tmp_path):
    """Staff cleared 汇总 and its SUBTOTAL, but 汇总行 is still ticked (totalsRowCount="1"): the
    row is the table's totals row, which no reader reads as a record. A record written there
    would be invisible — and added again by the next run. It goes below the totals row."""
    master = copy(plain, tmp_path)
    add_table(master, totals=True, formulas=False)
    totals = len(ledger_grid(master))  # 汇总 is the last row

    def empty_totals(parts: dict[str, bytes]) -> None:
        ledger = [n for n in parts if parts[n].count(b"SUBTOTAL(109")][0]
        parts[ledger] = re.sub(rf'<row r="{totals}"([^>]*)>.*?</row>'.encode(),
                               rf'<row r="{totals}"\1><c r="A{totals}" s="0"/></row>'.encode(), parts[ledger])

    rewrite_parts(master, empty_totals)
    assert len(ledger_grid(master)) == totals - 1  # nothing left in it
    assert next_free_row(master, schema.LEDGER, []) == totals + 1
    row_before = row_elements(sheet_xml(master, LEDGER))[totals]
    table_before = parts_of(master)["xl/tables/table1.xml"]

    drop(master, form, NEW)
    run = consolidate(master, refresh=False)
    assert run.master_written and run.rows_added == 3

    ledger = read_workbook(master)[LEDGER]
    assert [int(r) for r in ledger["_row"][-3:]] == [totals + 1, totals + 2, totals + 3]
    assert list(ledger["activity"][-3:]) == [r["activity"] for r in NEW]
    assert row_elements(sheet_xml(master, LEDGER))[totals] == row_before
    assert parts_of(master)["xl/tables/table1.xml"] == table_before
    # The same form again: every record is found, nothing is added.
    drop(master, form, NEW, "C01-11月-重发.xlsx")
    again = consolidate(master, refresh=False)
    assert (again.rows_added, again.master_written) == (0, False)


# --- two tables on 台账 ---------------------------------------------------------------------------


def test_two_tables_on_the_ledger_only_ours_grows(plain, form, tmp_path):
    """Staff's own small table right of the ledger (its header in our header row, a totals row
    on row 5, beside a record) beside the table over the ledger: the ledger's grows, staff's
    stays as it was, and the record on row 5 is still a record."""
    master = copy(plain, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    last = ws.max_row
    ws["O1"], ws["P1"] = "核对人", "核对次数"
    for r in (2, 3, 4):
        ws[f"O{r}"], ws[f"P{r}"] = "周敏", r
    excel_table(ws, f"A1:L{last}", "台账表")
    excel_table(ws, "O1:P5", "核对表", totals={15: "合计", 16: "sum"})
    wb.save(master)
    ours, theirs = table_part(master, "台账表"), table_part(master, "核对表")
    before = parts_of(master)
    records = read_workbook(master)[LEDGER]
    assert 5 in set(records["_row"])

    drop(master, form, NEW)
    run = consolidate(master, refresh=False)
    assert run.master_written and run.rows_added == 3

    after = parts_of(master)
    assert table_ref(after[ours].decode()) == autofilter_ref(after[ours].decode()) == f"A1:L{last + 3}"
    check_table_grew(ours, before[ours], after[ours])
    assert after[theirs] == before[theirs]
    assert len(read_workbook(master)[LEDGER]) == len(records) + 3
    ws = openpyxl.load_workbook(master)[LEDGER]
    assert (ws["O5"].value, ws["P5"].value) == ("合计", "=SUBTOTAL(109,核对表[核对次数])")


def test_a_table_over_staffs_own_headed_column_grows_and_keeps_it(plain, form, tmp_path):
    """The table's header row holds a column of staff's own (核对人, between 备注 and nothing of
    ours): the table covers our columns, so it grows; staff's cells stay in their rows."""
    master = copy(plain, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    last = ws.max_row
    ws["M1"] = "核对人"
    ws["M3"] = "周敏"
    excel_table(ws, f"A1:M{last}", "台账表")
    wb.save(master)
    part = table_part(master, "台账表")
    before = parts_of(master)[part]

    drop(master, form, NEW)
    assert consolidate(master, refresh=False).rows_added == 3

    after = parts_of(master)[part]
    assert table_ref(after.decode()) == f"A1:M{last + 3}"
    check_table_grew(part, before, after)
    ws = openpyxl.load_workbook(master)[LEDGER]
    assert ws["M3"].value == "周敏" and ws.tables["台账表"].ref == f"A1:M{last + 3}"


# --- blank formatted rows inside the table, at its bottom ----------------------------------------


def test_formatted_blank_rows_inside_the_table_take_the_new_records(plain, form, tmp_path):
    """Staff dragged the table's corner five rows down and gave those rows a fill: the records
    go into them (in their format), the table stays as it is until they are used up."""
    master = copy(plain, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    last = ws.max_row
    fill = openpyxl.styles.PatternFill("solid", fgColor="FFF2CC")
    for r in range(last + 1, last + 6):
        ws.row_dimensions[r].fill = fill
        ws.row_dimensions[r].height = 20
        for c in range(1, 13):
            ws.cell(r, c).fill = fill
    excel_table(ws, f"A1:L{last + 5}", "台账表")
    wb.save(master)
    part = table_part(master, "台账表")
    before = parts_of(master)[part]
    rows_before = row_elements(sheet_xml(master, LEDGER))

    drop(master, form, NEW)
    assert consolidate(master, refresh=False).rows_added == 3
    assert parts_of(master)[part] == before
    ws = openpyxl.load_workbook(master)[LEDGER]
    assert [ws.cell(r, 5).value for r in range(last + 1, last + 4)] == [r["activity"] for r in NEW]
    assert all(ws.cell(r, 5).fill.fgColor.rgb.endswith("FFF2CC") for r in range(last + 1, last + 4))
    rows_after = row_elements(sheet_xml(master, LEDGER))
    for r in (last + 4, last + 5):
        assert rows_after[r] == rows_before[r]

    more = [new_row(activity=f"表格用例再增第{i}批") for i in range(4)]
    drop(master, form, more, "C01-12月.xlsx")  # two fit, two go below: it grows over them
    assert consolidate(master, refresh=False).rows_added == 4
    after = parts_of(master)[part]
    assert table_ref(after.decode()) == f"A1:L{last + 7}"
    check_table_grew(part, before, after)


# --- a table over 变更记录 (the append path) -----------------------------------------------------


def _update(master: Path, form: Path, name: str, quantity: int) -> int:
    """C01's first record sent back with a new 完成数量: one change-log line."""
    ledger = read_workbook(master)[LEDGER].set_index("record_id")
    old = ledger.loc["C01-0001"]
    keys = ("date", "project_id", "activity", "participants", "status", "reporter", "in_bulletin", "note")
    row = {k: (None if old[k] != old[k] else old[k]) for k in keys}
    drop(master, form, [{**row, "record_id": "C01-0001", "quantity": quantity}], name)
    run = consolidate(master, refresh=False)
    assert run.rows_updated == 1
    return len(run.changes)


def _log_with_lines(plain: Path, form: Path, tmp_path: Path) -> tuple[Path, int]:
    master = copy(plain, tmp_path)
    _update(master, form, "C01-先改一次.xlsx", 91)
    ws = openpyxl.load_workbook(master)[LOG]
    return master, ws.max_row


@pytest.mark.parametrize("totals", ["none", "kept", "emptied"])
def test_a_table_over_the_change_log(plain, form, tmp_path, totals):
    """The change log made a table: appended lines join it (no totals row), or go below its
    totals row — even one staff emptied — which stays as it was."""
    master, last = _log_with_lines(plain, form, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LOG]
    width = len(schema.CHANGES.columns)
    end = last + (1 if totals != "none" else 0)
    excel_table(ws, f"A1:{get_column_letter(width)}{end}", "变更表",
                totals={1: "合计", width: "计数"} if totals != "none" else None)
    if totals == "emptied":  # staff cleared the row; 汇总行 is still ticked
        ws.cell(end, 1).value = ws.cell(end, width).value = None
    wb.save(master)
    part = table_part(master, "变更表")
    before = parts_of(master)[part]
    totals_row = row_elements(sheet_xml(master, LOG)).get(end) if totals != "none" else None

    lines = _update(master, form, "C01-再改一次.xlsx", 92)
    assert lines == 1
    ws = openpyxl.load_workbook(master)[LOG]
    after = parts_of(master)[part]
    if totals == "none":
        assert ws.max_row == last + 1 and table_ref(after.decode()) == f"A1:{get_column_letter(width)}{last + 1}"
        check_table_grew(part, before, after)
    else:
        assert ws.max_row == end + 1 and after == before  # below the totals row
        assert row_elements(sheet_xml(master, LOG)).get(end) == totals_row
    assert ws.cell(ws.max_row, 7).value in (92, "92")


# --- a table part reached by an absolute target ---------------------------------------------------


@pytest.mark.parametrize("totals", [False, True])
def test_a_table_reached_by_an_absolute_target(plain, form, tmp_path, totals):
    """The sheet's relationship names the table part by its absolute name (/xl/tables/table1.xml,
    as openpyxl and some other tools write it): it is found, grown (or its totals row left out)."""
    master = copy(plain, tmp_path)
    add_table(master, totals=totals, formulas=False)
    last = len(ledger_grid(master))

    def absolute(parts: dict[str, bytes]) -> None:
        [rels] = [n for n in parts if n.endswith(".rels") and b"../tables/table1.xml" in parts[n]]
        parts[rels] = parts[rels].replace(b'Target="../tables/table1.xml"', b'Target="/xl/tables/table1.xml"')

    rewrite_parts(master, absolute)
    before = parts_of(master)["xl/tables/table1.xml"]
    if totals:
        assert last not in set(read_workbook(master)[LEDGER]["_row"])
    drop(master, form, NEW)
    run = consolidate(master, refresh=False)
    assert run.master_written and run.rows_added == 3
    after = parts_of(master)["xl/tables/table1.xml"]
    if totals:
        assert after == before
    else:
        assert table_ref(after.decode()) == f"A1:L{last + 3}"
        check_table_grew("xl/tables/table1.xml", before, after)


def test_the_ledgers_table_does_not_jump_a_totals_row_staff_emptied_beside_it(plain, form, tmp_path):
    """Staff's table beside the ledger reaches two rows further down and its totals row there is
    emptied: the records go below that row, two rows under the ledger's table — which is not
    theirs to join (Excel grows a table only over a row typed right below it)."""
    master = copy(plain, tmp_path)
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    last = ws.max_row
    ws["O1"], ws["P1"] = "核对人", "核对次数"
    ws["O2"], ws["P2"] = "周敏", 1
    excel_table(ws, f"A1:L{last}", "台账表")
    excel_table(ws, f"O1:P{last + 2}", "核对表", totals={15: "合计", 16: "sum"})
    ws[f"O{last + 2}"] = ws[f"P{last + 2}"] = None  # cleared; 汇总行 still ticked
    wb.save(master)
    ours = table_part(master, "台账表")
    before = parts_of(master)[ours]

    drop(master, form, NEW)
    assert consolidate(master, refresh=False).rows_added == 3
    assert list(read_workbook(master)[LEDGER]["_row"][-3:]) == [last + 3, last + 4, last + 5]
    assert parts_of(master)[ours] == before


# --- a totals row under an output sheet -----------------------------------------------------------


def test_a_report_keeps_the_totals_row_staff_put_under_the_progress_sheet(plain, tmp_path):
    """After a first report, staff made 居委会进度 a table with a totals row (汇总, SUBTOTAL of
    台账条数). The next report rewrites the committees' rows above it; the totals row stays."""
    from macros.cli import main

    master = copy(plain, tmp_path)
    assert main(["report", str(master), "--out", str(tmp_path / "通知0"), "--as-of", "2020-11-15"]) in (0, 1)
    sheet = schema.COMMITTEE_PROGRESS.name
    wb = openpyxl.load_workbook(master)
    ws = wb[sheet]
    body = ws.max_row
    width = len(schema.COMMITTEE_PROGRESS.columns)
    excel_table(ws, f"A1:{get_column_letter(width)}{body + 1}", "进度表", totals={1: "汇总", 3: "sum"})
    wb.save(master)
    part = table_part(master, "进度表")
    table_before = parts_of(master)[part]
    totals_before = row_elements(sheet_xml(master, sheet))[body + 1]

    assert main(["report", str(master), "--out", str(tmp_path / "通知1"), "--as-of", "2020-11-15"]) in (0, 1)
    assert row_elements(sheet_xml(master, sheet))[body + 1] == totals_before
    assert parts_of(master)[part] == table_before
    ws = openpyxl.load_workbook(master)[sheet]
    committees = list(read_workbook(master)[schema.COMMITTEES.name]["committee_id"])
    assert [ws.cell(r, 1).value for r in range(2, body + 1)] == committees
    assert ws.cell(body + 1, 3).value == "=SUBTOTAL(109,进度表[台账条数])"
