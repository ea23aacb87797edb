"""The Excel buttons and a table's totals row (表设计 → 汇总行) staff put under an output sheet.

Real xlwings JSON books built from real masters (a report written, then 居委会进度 made a table
with a totals row, the way Excel stores one), the tables as Excel's client describes them
(``tests/xlwings_book.py``); what the buttons do is replayed as Excel would (values, clears, cells
inserted into a table) and compared with what the command line writes for the same master.
"""

from __future__ import annotations

import copy
import re
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
import xlwings as xw
from openpyxl.utils import get_column_letter
from python_calamine import CalamineWorkbook

from macros import excel, schema
from macros.book.live import LiveBook, TotalsRowBlocked
from macros.book.read import read_workbook
from macros.book.write_types import SheetWrite
from macros.cli import main

from .tabled import add_table
from .test_table_cases import excel_table
from .test_table_moves import progress_with_totals
from .xlwings_book import apply_actions, book_payload

AS_OF = date(2020, 11, 30)
PROGRESS = schema.COMMITTEE_PROGRESS
WIDTH = get_column_letter(len(PROGRESS.columns))
COUNT_COL = [c.header for c in PROGRESS.columns].index("台账条数") + 1


def position(payload: dict, name: str) -> int:
    return [s["name"] for s in payload["sheets"]].index(name)


def sheet_of(payload: dict, name: str) -> dict:
    return payload["sheets"][position(payload, name)]


def rows_touched(book: xw.Book, payload: dict, name: str, columns: int = len(PROGRESS.columns)) -> dict[str, set[int]]:
    """Excel rows each kind of action on sheet ``name`` covers in its first ``columns`` columns."""
    where = position(payload, name)
    touched: dict[str, set[int]] = {}
    for a in book.json()["actions"]:
        if a.get("sheet_position") == where and "start_row" in a and a["start_column"] < columns:
            rows = range(a["start_row"] + 1, a["start_row"] + a["row_count"] + 1)
            touched.setdefault(a["func"], set()).update(rows)
    return touched


def trimmed(values: list[list]) -> list[list]:
    rows = [list(r) for r in values]
    while rows and all(v in ("", None) for v in rows[-1]):
        rows.pop()
    return rows


def file_path_values(master: Path, tmp_path: Path) -> list[list]:
    """居委会进度 as ``healthbook report`` writes it for the same master (calamine's view)."""
    twin = tmp_path / "cli" / master.name
    twin.parent.mkdir()
    shutil.copy2(master, twin)
    assert main(["report", str(twin), "--out", str(tmp_path / "cli" / "通知"), "--as-of", AS_OF.isoformat()]) in (0, 1)
    values = CalamineWorkbook.from_path(str(twin)).get_sheet_by_name(PROGRESS.name).to_python(skip_empty_area=False)
    return trimmed([["" if v is None else v for v in row] for row in values])


def click(payload: dict, tmp_path: Path, macro=excel.report) -> tuple[xw.Book, dict]:
    """一键生成报告 on a copy of ``payload``: the book, and the payload as Excel then holds it."""
    book = xw.Book(json=copy.deepcopy(payload))
    macro(book, as_of=AS_OF, base=tmp_path / "通知") if macro is excel.report else macro(book, as_of=AS_OF)
    failed = [a["args"][0] for a in book.json()["actions"] if a["func"] == "alert" and a["args"][3] == "critical"]
    assert not failed
    return book, apply_actions(payload, book.json()["actions"])


def comparable(values: list[list]) -> list[list]:
    """Sheet values as calamine reads them (numbers as floats, dates as dates)."""
    def value(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}(T00:00:00(\.000)?Z?)?", v):
            return date.fromisoformat(v[:10])  # a date written, as the JSON action carries it
        return v

    return [[value(v) for v in row] for row in trimmed(values)]


@pytest.fixture
def below(plain, tmp_path) -> tuple[Path, int]:
    """After a first report, 居委会进度 made a table with its totals row (汇总, SUBTOTAL of
    台账条数) right below the committees' rows. Returns the master and the totals row."""
    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    assert main(["report", str(master), "--out", str(tmp_path / "通知0"), "--as-of", AS_OF.isoformat()]) in (0, 1)
    wb = openpyxl.load_workbook(master)
    ws = wb[PROGRESS.name]
    totals = ws.max_row + 1
    excel_table(ws, f"A1:{WIDTH}{totals}", "进度表", totals={1: "汇总", COUNT_COL: "sum"})
    wb.save(master)
    return master, totals


def test_the_button_keeps_a_totals_row_below_the_rows_where_it_is(below, tmp_path):
    master, totals = below
    payload = book_payload(master)
    [table] = sheet_of(payload, PROGRESS.name)["tables"]
    assert table["total_row_range_address"] == f"$A${totals}:${WIDTH}${totals}"
    before = sheet_of(payload, PROGRESS.name)["values"][totals - 1]
    assert before[0] == "汇总"

    book, after = click(payload, tmp_path)
    # Nothing clears, writes, formats or paints the totals row (the banner's cells beside it are
    # cleared as in any row); no row is inserted.
    touched = rows_touched(book, payload, PROGRESS.name)
    assert touched["setValues"] and touched["rangeClear"]
    assert not any(totals in rows for rows in touched.values())
    assert "rangeInsert" not in touched
    values = sheet_of(after, PROGRESS.name)["values"]
    assert values[totals - 1] == before
    assert sheet_of(after, PROGRESS.name)["tables"] == sheet_of(payload, PROGRESS.name)["tables"]
    # The sheet reads as the command line leaves it.
    assert comparable(values) == file_path_values(master, tmp_path)


def test_rows_reaching_the_totals_row_move_it_down_inside_its_table(plain, tmp_path):
    master, totals = progress_with_totals(plain, tmp_path)  # two committees more than fit above it
    payload = book_payload(master)
    [table] = sheet_of(payload, PROGRESS.name)["tables"]
    assert table["data_body_range_address"] == f"$A$2:${WIDTH}${totals - 1}"

    book, after = click(payload, tmp_path)
    committees = list(read_workbook(master)[schema.COMMITTEES.name]["committee_id"])
    last = len(committees) + 1
    assert last == totals + 1
    # One insert, of the two rows missing, inside the table's body and across its columns.
    [insert] = [a for a in book.json()["actions"] if a["func"] == "rangeInsert"]
    assert (insert["sheet_position"], insert["start_row"] + 1, insert["row_count"]) == \
        (position(payload, PROGRESS.name), totals - 1, 2)
    assert (insert["start_column"], insert["column_count"]) == (0, len(PROGRESS.columns))
    assert insert["args"][0] == "down"
    assert not any(last + 1 in rows for func, rows in rows_touched(book, payload, PROGRESS.name).items()
                   if func != "rangeInsert")
    values = sheet_of(after, PROGRESS.name)["values"]
    assert [values[r - 1][0] for r in range(2, last + 1)] == committees
    assert values[last][0] == "汇总"
    [grown] = sheet_of(after, PROGRESS.name)["tables"]
    assert (grown["range_address"], grown["total_row_range_address"]) == \
        (f"$A$1:${WIDTH}${last + 1}", f"$A${last + 1}:${WIDTH}${last + 1}")
    # As the command line moves it.
    assert comparable(values) == file_path_values(master, tmp_path)

    # The next click: the rows fit above it now; it stays, nothing is inserted.
    again_book, again = click(after, tmp_path)
    assert not [a for a in again_book.json()["actions"] if a["func"] == "rangeInsert"]
    assert sheet_of(again, PROGRESS.name)["values"][last] == values[last]
    assert sheet_of(again, PROGRESS.name)["tables"] == sheet_of(after, PROGRESS.name)["tables"]


def test_rollup_button_moves_it_too(plain, tmp_path):
    master, totals = progress_with_totals(plain, tmp_path)
    payload = book_payload(master)
    book, after = click(payload, tmp_path, excel.rollup)
    assert sheet_of(after, PROGRESS.name)["values"][totals + 1][0] == "汇总"


def _table(name: str, first_col: str, last_col: str, top: int, totals: int) -> dict:
    return {"name": name, "range_address": f"${first_col}${top}:${last_col}${totals}",
            "header_row_range_address": f"${first_col}${top}:${last_col}${top}",
            "data_body_range_address": f"${first_col}${top + 1}:${last_col}${totals - 1}",
            "total_row_range_address": f"${first_col}${totals}:${last_col}${totals}",
            "show_headers": True, "show_totals": True, "table_style": "TableStyleMedium9",
            "show_autofilter": True}


@pytest.mark.parametrize("second", ["totals reached too", "cut by the insert"])
def test_a_totals_row_that_cannot_move_refuses_the_run_before_anything_is_written(plain, tmp_path, second):
    master, totals = progress_with_totals(plain, tmp_path)
    payload = book_payload(master)
    sheet = sheet_of(payload, PROGRESS.name)
    [table] = sheet["tables"]
    split = get_column_letter(COUNT_COL)
    before = get_column_letter(COUNT_COL - 1)
    if second == "totals reached too":  # two tables side by side, both with a totals row in the way
        table.update(_table("进度表", "A", before, 1, totals))
        sheet["tables"].append(_table("条数表", split, WIDTH, 1, totals))
    else:  # a table further down across part of its columns: inserting rows would cut it
        sheet["tables"].append(_table("备注表", "A", "B", totals + 3, totals + 6))
    book = xw.Book(json=copy.deepcopy(payload))
    assert excel.report(book, as_of=AS_OF, base=tmp_path / "通知") is None
    funcs = {a["func"] for a in book.json()["actions"]}
    assert funcs == {"alert"}  # not one sheet written, no mark set: the workbook as it was
    [alert] = book.json()["actions"]
    message = alert["args"][0]
    assert alert["args"][3] == "critical"
    assert f"工作表“{PROGRESS.name}”第 {totals} 行是表格的汇总行" in message
    assert "在上方插入表行" in message and "没有写入任何内容" in message
    assert ("备注表" in message) == (second == "cut by the insert")


def test_a_totals_row_beside_the_rows_is_neither_cleared_nor_written(below, tmp_path):
    """Staff's own table right of the progress columns, its totals row among the rows written:
    kept; our cells in that row (left of it) are cleared and rewritten as in any other row."""
    master, totals = below
    payload = book_payload(master)
    sheet = sheet_of(payload, PROGRESS.name)
    right = len(PROGRESS.columns) + 4  # past the banner's two columns
    first, last = get_column_letter(right), get_column_letter(right + 1)
    for r, row in enumerate(sheet["values"]):
        row.extend([""] * (right + 1 - len(row)))
        if r < 3:
            row[right - 1:right + 1] = [["核对人", "次数"], ["周敏", 2], ["合计", 2]][r]
    sheet["tables"].append(_table("核对表", first, last, 1, 3))
    sheet["used_range_address"] = f"A1:{last}{len(sheet['values'])}"
    book, after = click(payload, tmp_path)
    cleared = [a for a in book.json()["actions"] if a["func"] == "rangeClear"
               and a["sheet_position"] == position(payload, PROGRESS.name)]
    for a in cleared:  # no clear reaches into 核对表's totals row
        if a["start_row"] <= 2 < a["start_row"] + a["row_count"]:
            assert a["start_column"] + a["column_count"] < right
    values = sheet_of(after, PROGRESS.name)["values"]
    assert values[2][right - 1:right + 1] == ["合计", 2]
    assert values[totals - 1][0] == "汇总"


def test_a_ledger_row_goes_below_a_totals_row_staff_emptied(plain, tmp_path):
    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    add_table(master, totals=True)
    payload = book_payload(master)
    ledger = sheet_of(payload, schema.LEDGER.name)
    [table] = ledger["tables"]
    totals = int(table["total_row_range_address"].rpartition("$")[2])
    assert totals == len(ledger["values"])
    ledger["values"][totals - 1] = [""] * len(ledger["values"][0])  # emptied; 汇总行 still ticked
    ledger["used_range_address"] = ledger["used_range_address"].replace(str(totals), str(totals - 1))
    book = xw.Book(json=copy.deepcopy(payload))
    live = LiveBook(book)
    new = {c.key: None for c in schema.LEDGER.columns} | {"activity": "汇总行下方新增", "participants": 30}
    live.write([SheetWrite(schema.LEDGER, [new])])
    rows = {a["start_row"] + 1 for a in book.json()["actions"] if a["func"] == "setValues"}
    assert rows == {totals + 1}
    after = apply_actions(payload, book.json()["actions"])
    assert sheet_of(after, schema.LEDGER.name)["values"][totals - 1] == [""] * len(ledger["values"][0])


def test_room_is_read_only_and_refuses_with_a_named_error(plain, tmp_path):
    master, totals = progress_with_totals(plain, tmp_path)
    payload = book_payload(master)
    sheet_of(payload, PROGRESS.name)["tables"].append(_table("备注表", "A", "B", totals + 3, totals + 6))
    book = xw.Book(json=payload)
    rows = [{}] * (totals + 5)
    with pytest.raises(TotalsRowBlocked, match=PROGRESS.name):
        LiveBook(book).room(SheetWrite(PROGRESS, rows))
    assert book.json()["actions"] == []


def test_a_table_without_totals_over_the_sheet_grows_over_the_rows_as_on_the_file_path(plain, tmp_path):
    """Staff made 居委会进度's header (and one empty row) a table: the command line grows it over
    the committees' rows (tests/test_tables.py); the button does too, with one resize."""
    from macros.book.tables import table_ref

    from .test_table_cases import parts_of

    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    add_table(master, sheet=PROGRESS, last_row=2, formulas=False)
    payload = book_payload(master)
    [table] = sheet_of(payload, PROGRESS.name)["tables"]
    book, after = click(payload, tmp_path)
    committees = len(read_workbook(master)[schema.COMMITTEES.name])
    [resize] = [a for a in book.json()["actions"] if a["func"] == "resizeTable"]
    end = table["range_address"].split(":")[1].rsplit("$", 1)[0]
    assert resize["args"] == [0, f"$A$1:{end}${committees + 1}"]
    [grown] = sheet_of(after, PROGRESS.name)["tables"]
    file_path_values(master, tmp_path)  # the command line, on a copy
    cli = parts_of(tmp_path / "cli" / master.name)["xl/tables/table1.xml"].decode()
    assert grown["range_address"].replace("$", "") == table_ref(cli)


def test_an_append_only_log_is_never_cleared_by_the_live_adapter(demo_master):
    """变更记录 is appended to (the file writer keeps its rows): the live adapter adds the new line
    below the lines there, one value write, and never clears or rewrites them (the audit trail)."""
    payload = book_payload(demo_master)
    log = next(s for s in payload["sheets"] if s["name"] == schema.CHANGES.name)
    lines = [list(schema.CHANGES.headers), ["2020-10-01T09:30:00.000Z", "C01_填报表.xlsx", "C01-0001", "修改",
                                            "参与人数", 30, 35]]
    log.update(values=lines, used_range_address="A1:G2")
    book = xw.Book(json=payload)
    LiveBook(book).write([SheetWrite(schema.CHANGES, [{"record_id": "C01-0002", "action": "新增"}], append=True)])
    acts = [a for a in book.json()["actions"] if a["func"] not in ("setNumberFormat",)]
    assert [(a["func"], a["start_row"], a["row_count"]) for a in acts] == [("setValues", 2, 1)]
    after = next(s for s in apply_actions(payload, book.json()["actions"])["sheets"] if s["name"] == schema.CHANGES.name)
    assert after["values"][:2] == lines and after["values"][2][2:4] == ["C01-0002", "新增"]
