"""The Excel button numbers 台账 rows typed with 记录编号 blank exactly as ``healthbook report`` does:
the same numbers, 来源 手工 where blank, one 变更记录 line a row added below the lines already
there (never rewritten: the audit trail), the numbers kept in the numbers file beside the saved
workbook. Real xlwings JSON books built from real workbooks; the CLI run for real on a copy."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
import xlwings as xw
from python_calamine import CalamineWorkbook

from macros import demo, excel, schema
from macros.book.build import build_workbook
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite
from macros.consolidate import announced_numbers, numbers_file
from macros.merge import ADDED, UPDATED, Change

from .conftest import cli_json
from .test_report_numbers import TYPED_C03, TYPED_C05, UNKNOWN, highest
from .xlwings_book import _used_range, apply_actions, book_payload

LEDGER, CHANGES = schema.LEDGER, schema.CHANGES
AS_OF = date(2020, 11, 30)
STAFF_COLUMN = "核对人"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """The demo master with three rows typed at the end of 台账 (记录编号 blank, one of an unknown
    committee), two lines already in 变更记录 (C05's number +2 given to a record since deleted), and
    C03's number +3 in the numbers file. Read-only: tests copy it."""
    folder = tmp_path_factory.mktemp("built")
    rows = demo.demo_rows()
    ledger = rows[LEDGER.name]
    h3, h5 = highest(ledger, "C03"), highest(ledger, "C05")
    rows[LEDGER.name] = [*ledger, dict(TYPED_C03), dict(TYPED_C05), dict(UNKNOWN)]
    path = folder / "healthbook.xlsx"
    build_workbook(path, rows)
    lines = [Change(datetime(2020, 10, 1, 9, 30), "C05_填报表.xlsx", f"C05-{h5 + 2:04d}", ADDED, new="已删除的活动"),
             Change(datetime(2020, 10, 2, 14, 5), "C01_填报表.xlsx", "C01-0001", UPDATED, "参与人数", 30, 35)]
    FileBook(path).write([SheetWrite(CHANGES, [c.row() for c in lines], append=True)])
    numbers_file(path).write_text(json.dumps({"numbers": {"C03": h3 + 3}}), encoding="utf-8")
    return path, {"C03": f"C03-{h3 + 4:04d}", "C05": f"C05-{h5 + 3:04d}", "h5": h5}


def copy_of(built, folder: Path) -> Path:
    path, _ = built
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.copy2(path, target)
    shutil.copy2(numbers_file(path), numbers_file(target))
    return target


def sheet(payload: dict, name: str) -> dict:
    return next(s for s in payload["sheets"] if s["name"] == name)


def edit(payload: dict, name: str, values: list[list]) -> list[list]:
    """Put ``values`` in sheet ``name`` of ``payload`` as the client would send them (rows of one
    width, the used range's address); returns them as they now are there."""
    width = max(len(row) for row in values)
    rows = [[*row, *[""] * (width - len(row))] for row in values]
    sheet(payload, name).update(values=rows, used_range_address=_used_range(rows))
    return copy.deepcopy(rows)


def position(payload: dict, name: str) -> int:
    return [s["name"] for s in payload["sheets"]].index(name)


def click(payload: dict, folder: Path, replay: bool = True):
    """The button pressed on a book holding ``payload`` (a copy): (book, result, payload after)."""
    book = xw.Book(json=copy.deepcopy(payload))
    result = excel.report(book, as_of=AS_OF, base=folder)
    assert result is not None, [a["args"] for a in book.json()["actions"] if a["func"] == "alert"]
    return book, result, apply_actions(payload, book.json()["actions"]) if replay else None


def writes_to(book: xw.Book, payload: dict, name: str) -> list[dict]:
    at = position(payload, name)
    return [a for a in book.json()["actions"]
            if a["func"] in ("setValues", "rangeClear", "rangeClearContents") and a["sheet_position"] == at]


def alert(book: xw.Book) -> str:
    [message] = [a["args"][0] for a in book.json()["actions"] if a["func"] == "alert"]
    return message


def grid(path: Path, name: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(name).to_python(skip_empty_area=False)


def column(rows: list[list], header: str) -> list:
    at = rows[0].index(header)
    return [row[at] if at < len(row) else "" for row in rows[1:]]


def lines_by_header(rows: list[list], skip: tuple[str, ...] = ()) -> list[dict]:
    """变更记录's lines as header → value, leaving out ``skip`` columns (the time of a run)."""
    header = rows[0]
    return [{h: v for h, v in zip(header, row) if h and h not in skip} for row in rows[1:]]


def saved_payload(path: Path) -> dict:
    """What the button hands over for the saved workbook at ``path`` (fullname: its path)."""
    return book_payload(path, name=str(path))


TIME = CHANGES.header_of("time")


def test_the_button_numbers_blank_keys_exactly_as_healthbook_report(built, tmp_path):
    cli_path, button_path = copy_of(built, tmp_path / "cli"), copy_of(built, tmp_path / "button")
    _, expected = built
    code, out = cli_json("report", str(cli_path), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "cli" / "通知"))
    assert out["written"] and out["numbered"] == [expected["C03"], expected["C05"]], out

    payload = saved_payload(button_path)
    log_before = copy.deepcopy(sheet(payload, CHANGES.name)["values"])
    book, result, after = click(payload, tmp_path / "button")

    assert result.numbered == out["numbered"] and result.unnumbered == 0
    # 台账: the same keys and 来源, every row (the unknown committee's left blank by both).
    ledger_cli, ledger_button = grid(cli_path, LEDGER.name), sheet(after, LEDGER.name)["values"]
    for header in (LEDGER.header_of("record_id"), LEDGER.header_of("source")):
        assert column(ledger_button, header) == column(ledger_cli, header), header
    assert column(ledger_button, LEDGER.header_of("record_id"))[-3:] == [expected["C03"], expected["C05"], ""]
    # Only those three cells of 台账 were written.
    assert sum(a["row_count"] * a["column_count"] for a in writes_to(book, payload, LEDGER.name)) == 3
    # 变更记录: the lines there before untouched, the same new lines as the CLI's (but their time).
    log = sheet(after, CHANGES.name)["values"]
    assert log[:len(log_before)] == log_before
    assert lines_by_header(log, (TIME,)) == lines_by_header(grid(cli_path, CHANGES.name), (TIME,))
    new = log[len(log_before):]
    assert [line[2] for line in new] == [expected["C03"], expected["C05"]]
    assert all(line[0] for line in new)  # a time is given
    formats = [a for a in book.json()["actions"] if a["func"] == "setNumberFormat"
               and a["sheet_position"] == position(payload, CHANGES.name)]
    assert [(f["start_row"] + 1, f["row_count"], f["start_column"], f["args"]) for f in formats] == \
        [(len(log_before) + 1, 2, 0, [CHANGES.columns[0].number_format])]
    # The log's lines go in before 台账's numbers: a run stopped between leaves no number unlogged.
    acts = book.json()["actions"]
    assert acts.index(writes_to(book, payload, CHANGES.name)[0]) < acts.index(writes_to(book, payload, LEDGER.name)[0])
    # The numbers kept beside the saved workbook, as the CLI keeps them.
    assert announced_numbers(button_path) == announced_numbers(cli_path)
    assert announced_numbers(button_path)["C05"] == expected["h5"] + 3
    # The alert says what was numbered, as the CLI's summary does.
    assert expected["C03"] in alert(book) and "已写入“台账”，并记入“变更记录”" in alert(book)
    assert "未自动编号" not in alert(book)


def test_a_number_in_the_books_unsaved_log_is_never_given_again(built, tmp_path):
    """A 变更记录 line the open book holds but its file does not (not saved since): its number is taken."""
    path = copy_of(built, tmp_path)
    _, expected = built
    payload = saved_payload(path)
    taken = f"C05-{expected['h5'] + 7:04d}"
    log = sheet(payload, CHANGES.name)["values"]
    edit(payload, CHANGES.name, [*log, ["2020-11-29T10:00:00.000Z", "C05_填报表.xlsx", taken, ADDED, "", "", "未保存的一行"]])
    book, result, after = click(payload, tmp_path)
    assert result.numbered == [expected["C03"], f"C05-{expected['h5'] + 8:04d}"]
    assert announced_numbers(path)["C05"] == expected["h5"] + 8


def test_new_lines_go_under_the_columns_where_staff_put_them(built, tmp_path):
    """Staff moved 变更记录's columns and added one of their own in the middle: the old lines and
    staff's column stay as they are; the new lines go under the right headers."""
    path = copy_of(built, tmp_path)
    _, expected = built
    payload = saved_payload(path)
    values = sheet(payload, CHANGES.name)["values"]
    header = values[0]
    order = [header.index(h) for h in reversed(CHANGES.headers)]  # every column moved
    moved = [[row[i] for i in order] for row in values]
    for i, row in enumerate(moved):  # staff's column, third from the left
        row.insert(2, STAFF_COLUMN if i == 0 else f"张三{i}")
    before = edit(payload, CHANGES.name, moved)

    book, result, after = click(payload, tmp_path)

    log = sheet(after, CHANGES.name)["values"]
    assert log[:len(before)] == before
    added = lines_by_header(log)[len(before) - 1:]
    assert [line[CHANGES.header_of("record_id")] for line in added] == [expected["C03"], expected["C05"]]
    assert {line[CHANGES.header_of("action")] for line in added} == {ADDED}
    assert {line[CHANGES.header_of("source")] for line in added} == {schema.MANUAL_SOURCE}
    assert "健康讲座（手工补录）" in added[0][CHANGES.header_of("new")]
    assert [line[STAFF_COLUMN] for line in added] == ["", ""]
    # Staff's column is never written, not even with blanks; the time's format goes to its column.
    writes = writes_to(book, payload, CHANGES.name)
    assert writes and all(not a["start_column"] <= 2 < a["start_column"] + a["column_count"] for a in writes)
    [time_format] = [a for a in book.json()["actions"] if a["func"] == "setNumberFormat"
                     and a["sheet_position"] == position(payload, CHANGES.name)]
    assert log[0][time_format["start_column"]] == TIME


def test_a_second_click_numbers_nothing_and_adds_no_line(built, tmp_path):
    path = copy_of(built, tmp_path)
    payload = saved_payload(path)
    _, _, after = click(payload, tmp_path)
    kept = numbers_file(path).read_bytes()
    book, result, again = click(after, tmp_path)
    assert result.numbered == [] and result.unnumbered == 0
    assert not writes_to(book, after, CHANGES.name) and not writes_to(book, after, LEDGER.name)
    assert sheet(again, CHANGES.name)["values"] == sheet(after, CHANGES.name)["values"]
    assert numbers_file(path).read_bytes() == kept
    assert "编号" not in alert(book)


def test_a_log_whose_header_cannot_be_matched_is_left_alone_and_nothing_is_numbered(built, tmp_path):
    """变更记录's 时间 header renamed: where new lines' times would go is unknown, so the button
    numbers nothing, writes neither 台账's keys nor the log, and says why."""
    path = copy_of(built, tmp_path)
    payload = saved_payload(path)
    values = sheet(payload, CHANGES.name)["values"]
    values[0][values[0].index(TIME)] = "日期时间"
    before = edit(payload, CHANGES.name, values)
    kept = numbers_file(path).read_bytes()
    book, result, after = click(payload, tmp_path)
    assert result.numbered == [] and result.unnumbered == 2
    assert not writes_to(book, payload, CHANGES.name) and not writes_to(book, payload, LEDGER.name)
    assert sheet(after, CHANGES.name)["values"] == before
    assert numbers_file(path).read_bytes() == kept
    message = alert(book)
    assert "2 行" in message and "未自动编号" in message and f"缺少“{TIME}”" in message, message


def test_a_missing_log_sheet_is_added_with_its_header(built, tmp_path):
    """As the file writer does: 变更记录 deleted by staff comes back, header and new lines."""
    path = copy_of(built, tmp_path)
    _, expected = built
    payload = saved_payload(path)
    payload["sheets"] = [s for s in payload["sheets"] if s["name"] != CHANGES.name]
    book, result, _ = click(payload, tmp_path, replay=False)  # the replay knows no added sheet
    assert result.numbered == [expected["C03"], expected["C05"]]
    acts = book.json()["actions"]
    [added] = [a for a in acts if a["func"] == "addSheet"]
    at = added["args"][0]
    assert added["args"][1] == CHANGES.name
    [write] = [a for a in acts if a["func"] == "setValues" and a["sheet_position"] == at]
    assert write["start_row"] == 0 and write["values"][0] == list(CHANGES.headers)
    assert [row[2] for row in write["values"][1:]] == [expected["C03"], expected["C05"]]


def table(name: str, first: int, last: int, totals: bool) -> dict:
    """An Excel table over 变更记录's seven columns, rows ``first``..``last`` (the last its totals row)."""
    def address(top: int, bottom: int) -> str:
        return f"$A${top}:$G${bottom}"

    return {"name": name, "range_address": address(first, last), "header_row_range_address": address(first, first),
            "data_body_range_address": address(first + 1, last - int(totals)),
            "total_row_range_address": address(last, last) if totals else None,
            "show_headers": True, "show_totals": totals, "table_style": "TableStyleMedium9", "show_autofilter": True}


@pytest.mark.parametrize("totals", [["汇总", "", "", "", "", "", 2], [""] * 7], ids=["totals", "emptied"])
def test_new_lines_go_below_a_tables_totals_row(built, tmp_path, totals):
    """Even one staff emptied (汇总行 still ticked): a line written there is one no reader sees."""
    path = copy_of(built, tmp_path)
    payload = saved_payload(path)
    log = sheet(payload, CHANGES.name)
    before = edit(payload, CHANGES.name, [*log["values"], totals])
    totals_row = len(before)
    log["tables"] = [table("日志", 1, totals_row, totals=True)]
    book, result, after = click(payload, tmp_path)
    values = sheet(after, CHANGES.name)["values"]
    assert values[:totals_row] == before
    assert [row[2] for row in values[totals_row:]] == result.numbered and len(result.numbered) == 2
    assert not [a for a in book.json()["actions"] if a["func"] == "resizeTable"]


def test_a_table_over_the_log_grows_over_the_new_lines(built, tmp_path):
    path = copy_of(built, tmp_path)
    payload = saved_payload(path)
    log = sheet(payload, CHANGES.name)
    rows = len(log["values"])
    log["tables"] = [table("日志", 1, rows, totals=False)]
    book, result, after = click(payload, tmp_path)
    [resize] = [a for a in book.json()["actions"] if a["func"] == "resizeTable"]
    assert resize["args"] == [0, f"$A$1:$G${rows + 2}"]
