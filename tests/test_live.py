"""LiveBook over a real xlwings JSON book built from the demo workbook (no Excel needed)."""

from __future__ import annotations

import copy
from datetime import date

import pandas as pd
import pandas.testing as pdt
import pytest
import xlwings as xw

from macros import schema
from macros.book.live import NOTE_TAG, LiveBook, chunk_addresses
from macros.book.read import frame_from_rows, read_workbook
from macros.book.write_types import FILLS, Mark, SheetWrite
from macros.errors import MissingSheet

from .xlwings_book import apply_actions, book_payload


@pytest.fixture(scope="module")
def payload(demo_master) -> dict:
    return book_payload(demo_master)


def actions(book: xw.Book, func: str | None = None) -> list[dict]:
    return [a for a in book.json()["actions"] if func is None or a["func"] == func]


def sheet_position(payload: dict, name: str) -> int:
    return [s["name"] for s in payload["sheets"]].index(name)


def test_live_read_gives_the_file_readers_frames(demo_master, payload):
    live = LiveBook(xw.Book(json=copy.deepcopy(payload)))
    frames = live.read().frames
    expected = read_workbook(demo_master).frames
    assert frames.keys() == expected.keys()
    for name, frame in expected.items():
        pdt.assert_frame_equal(frames[name], frame, obj=name)
    # One bulk read per input sheet, and no writes.
    assert live.counts["reads"] == len(schema.INPUT_SHEETS)
    assert live.book.json()["actions"] == []


def test_live_read_accounts_for_a_used_range_not_starting_at_a1(demo_master, payload):
    moved = copy.deepcopy(payload)
    sheet = moved["sheets"][sheet_position(moved, schema.PROJECTS.name)]
    # The table now starts at B3: two blank rows above, one blank column to the left.
    width = len(sheet["values"][0]) + 1
    sheet["values"] = [[""] * width, [""] * width] + [[""] + row for row in sheet["values"]]
    rows, cols = len(sheet["values"]), width
    sheet["used_range_address"] = f"B3:{chr(ord('A') + cols - 1)}{rows}"
    frame = LiveBook(xw.Book(json=copy.deepcopy(moved))).read().frames[schema.PROJECTS.name]
    expected = read_workbook(demo_master).frames[schema.PROJECTS.name]
    assert list(frame["_row"]) == [r + 2 for r in expected["_row"]]
    pdt.assert_frame_equal(frame.drop(columns="_row"), expected.drop(columns="_row"))


def test_missing_sheet_is_a_named_error(payload):
    broken = copy.deepcopy(payload)
    broken["sheets"] = [s for s in broken["sheets"] if s["name"] != schema.LEDGER.name]
    with pytest.raises(MissingSheet, match="台账"):
        LiveBook(xw.Book(json=broken)).read()


def progress_write() -> SheetWrite:
    rows = [
        {"project_id": "P01", "name": "=楼宇白领", "target": 3000, "achieved": 1500.0, "percent": 0.5,
         "deadline": date(2020, 12, 15)},
        {"project_id": "P02", "name": "康健工程项目", "target": 5000, "achieved": float("nan"),
         "percent": 1.25, "deadline": pd.Timestamp("2020-11-30")},
    ]
    return SheetWrite(schema.PROJECT_PROGRESS, rows, note="截至 2020-11-15，依据 307 条台账",
                      fills={(0, "percent"): "严重滞后", (1, "percent"): "正常"})


def test_one_bulk_value_write_per_output_sheet(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    live = LiveBook(book)
    live.write([progress_write()])
    writes = actions(book, "setValues")
    assert len(writes) == 1 and live.counts["writes"] == 1
    pos = sheet_position(payload, schema.PROJECT_PROGRESS.name)
    after = apply_actions(payload, book.json()["actions"])["sheets"][pos]["values"]
    headers = schema.PROJECT_PROGRESS.headers
    assert after[0][: len(headers)] == headers
    assert after[0][len(headers) + 1] == "截至 2020-11-15，依据 307 条台账"
    keys = schema.PROJECT_PROGRESS.keys
    row1 = dict(zip(keys, after[1]))
    # Text that looks like a formula stays text; NaN becomes a blank; dates go as dates.
    assert row1["name"] == "=楼宇白领"
    assert writes[0]["values"][1][keys.index("name")] == "'=楼宇白领"
    assert row1["target"] == 3000 and row1["percent"] == 0.5 and row1["deadline"] == "2020-12-15"
    row2 = dict(zip(keys, after[2]))
    assert row2["achieved"] == "" and row2["deadline"] == "2020-11-30"
    # Number formats over the data rows only.
    formats = {}
    for a in actions(book, "setNumberFormat"):
        assert (a["start_row"], a["row_count"]) == (1, 2)
        for j in range(a["column_count"]):
            formats[a["start_column"] + j] = a["args"][0]
    expected = {keys.index(c.key): c.number_format
                for c in schema.PROJECT_PROGRESS.columns if c.number_format}
    assert formats == expected
    # Adjacent columns sharing a format (目标值, 完成数量) take one call.
    assert len(actions(book, "setNumberFormat")) < len(expected)
    # Fills in one set_colors call: exactly the two percent cells.
    [colors] = actions(book, "setRangeColors")
    assert colors["start_row"] == 1 and colors["start_column"] == keys.index("percent")
    assert colors["args"][0] == [[f"#{FILLS['严重滞后']}".lower()], [f"#{FILLS['正常']}".lower()]]


def test_rewrite_clears_the_old_rows_first(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    LiveBook(book).write([progress_write()])
    pos = sheet_position(payload, schema.PROJECT_PROGRESS.name)
    first = apply_actions(payload, book.json()["actions"])
    # Second run with fewer rows, on the book as the first run left it.
    first["sheets"][pos]["used_range_address"] = "A1:M3"
    again = xw.Book(json=copy.deepcopy(first))
    short = progress_write()
    short.rows = short.rows[:1]
    short.fills = {}
    LiveBook(again).write([short])
    clears = actions(again, "rangeClear")
    assert [(c["sheet_position"], c["start_row"], c["row_count"]) for c in clears] == [(pos, 1, 2)]
    values = apply_actions(first, again.json()["actions"])["sheets"][pos]["values"]
    assert values[1][0] == "P01" and all(v == "" for v in values[2])


def test_links_are_hyperlink_formulas_inside_the_bulk_write(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    rows = [{"sheet": "台账", "row": 5, "column": "日期", "level": "错误", "message": "日期无法识别"}]
    LiveBook(book).write([SheetWrite(schema.ISSUES, rows, links={(0, "row"): "'台账'!B5"})])
    [write] = actions(book, "setValues")
    assert write["values"][1][schema.ISSUES.keys.index("row")] == "=HYPERLINK(\"#'台账'!B5\",5)"
    assert actions(book, "addHyperlink") == []


def marks() -> list[Mark]:
    return [
        Mark("台账", 5, "日期", schema.LEVEL_ERROR, "日期“6.22”无法识别"),
        Mark("台账", 9, "完成数量", schema.LEVEL_WARNING, "按 30 处理"),
        Mark("项目", 3, "目标值", schema.LEVEL_ERROR, "目标值应为数字"),
    ]


def painted(book: xw.Book, payload: dict) -> dict[tuple[str, int, int], str | None]:
    """(sheet, row, column) → the fill the set_colors actions give it (None: fill removed)."""
    cells = {}
    for action in actions(book, "setRangeColors"):
        name = payload["sheets"][action["sheet_position"]]["name"]
        for i, row in enumerate(action["args"][0]):
            for j, colour in enumerate(row):
                if colour != "keep":
                    cells[(name, action["start_row"] + i + 1, action["start_column"] + j + 1)] = colour
    return cells


def test_marks_fill_and_annotate_exactly_the_bad_cells(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    live = LiveBook(book)
    live.read()
    live.write([], marks())
    ledger, projects = schema.LEDGER, schema.PROJECTS
    col = {h: i + 1 for i, h in enumerate(ledger.headers)}
    expected = {
        ("台账", 5, col["日期"]): f"#{FILLS['错误']}".lower(),
        ("台账", 9, col["完成数量"]): f"#{FILLS['警告']}".lower(),
        ("项目", 3, projects.headers.index("目标值") + 1): f"#{FILLS['错误']}".lower(),
    }
    assert painted(book, payload) == expected
    # One colour call per sheet, one note per marked cell.
    assert len(actions(book, "setRangeColors")) == 2
    notes = {(a["args"][0], a["args"][1]) for a in actions(book, "addNote")}
    assert ("$B$5", f"{NOTE_TAG}\n【错误】日期“6.22”无法识别") in notes and len(notes) == 3


def test_old_marks_listed_in_the_issues_sheet_are_cleared(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    live = LiveBook(book)
    live.read()
    live.write([SheetWrite(schema.ISSUES, [
        {"sheet": m.sheet, "row": m.row, "column": m.column, "key": None, "level": m.level,
         "message": m.message} for m in marks()])], marks())
    after = apply_actions(payload, book.json()["actions"])
    for sheet in after["sheets"]:  # the notes the first run added
        sheet["notes"] = [{"address": a["args"][0]} for a in actions(book, "addNote")
                          if payload["sheets"][a["sheet_position"]]["name"] == sheet["name"]]
    issues = after["sheets"][sheet_position(after, schema.ISSUES.name)]
    issues["used_range_address"] = f"A1:J{len(marks()) + 1}"
    second = xw.Book(json=copy.deepcopy(after))
    live2 = LiveBook(second)
    live2.read()
    live2.write([], marks()[:1])  # only the first problem remains
    ledger_pos, projects_pos = sheet_position(after, "台账"), sheet_position(after, "项目")
    assert painted(second, after) == {("台账", 9, 7): None, ("项目", 3, 7): None,
                                      ("台账", 5, 2): f"#{FILLS['错误']}".lower()}
    deleted = {(a["sheet_position"], a["args"][0]) for a in actions(second, "deleteNote")}
    # The two fixed cells lose their notes; the remaining mark's note is replaced.
    assert (ledger_pos, "$G$9") in deleted and (projects_pos, "$G$3") in deleted
    assert [a["args"][0] for a in actions(second, "addNote")] == ["$B$5"]


def test_chunked_addresses_stay_under_coms_limit():
    addresses = [f"AB{r}" for r in range(1000, 1200)]
    chunks = chunk_addresses(addresses)
    assert all(len(c) <= 255 for c in chunks)
    assert ",".join(chunks).split(",") == addresses


def test_frame_from_rows_is_what_live_and_file_share(demo_master):
    # Guard: the live reader depends on frame_from_rows accepting a grid from A1.
    grid = [["项目编号", "类别", "项目名称", "责任单位", "目标值", "截止日期"],
            ["P01", "健康社会类", "x", "发展办", 1.0, date(2020, 1, 1)]]
    frame = frame_from_rows(grid, schema.PROJECTS, demo_master)
    assert frame.loc[0, "target"] == 1 and frame.loc[0, "_row"] == 2


def test_ledger_write_touches_only_changed_cells_where_staff_put_them(payload):
    book = xw.Book(json=copy.deepcopy(payload))
    live = LiveBook(book)
    ledger = live.read().frames[schema.LEDGER.name]
    rows = ledger.to_dict("records")
    rows[3]["record_id"] = "C99-0001"  # a changed id on Excel row 5
    new = {k: None for k in schema.LEDGER.keys}
    new.update(record_id="C01-9999", date=date(2020, 11, 20), committee_id="C01", project_id="P01",
               activity="=SUM(A1)", quantity=3, status="进行中")
    live.write([SheetWrite(schema.LEDGER, [*rows, new])])
    writes = actions(book, "setValues")
    pos = sheet_position(payload, schema.LEDGER.name)
    cells = {}
    for a in writes:
        assert a["sheet_position"] == pos and a["column_count"] == 1
        for i, (v,) in enumerate(a["values"]):
            cells[(a["start_row"] + i + 1, a["start_column"] + 1)] = v
    col = {k: schema.LEDGER.keys.index(k) + 1 for k in schema.LEDGER.keys}
    last = int(ledger["_row"].max())
    assert cells[(5, col["record_id"])] == "C99-0001"
    assert cells[(last + 1, col["activity"])] == "'=SUM(A1)"  # stays text
    assert cells[(last + 1, col["date"])] == "2020-11-20"
    assert {r for r, _ in cells} == {5, last + 1}
    # No clear on the ledger: nothing but the changed cells is touched.
    assert actions(book, "rangeClear") == [] and actions(book, "rangeClearContents") == []


def test_writing_a_missing_output_sheet_is_a_named_error(payload):
    broken = copy.deepcopy(payload)
    broken["sheets"] = [s for s in broken["sheets"] if s["name"] != schema.PROJECT_PROGRESS.name]
    book = xw.Book(json=broken)
    with pytest.raises(MissingSheet, match="项目进度"):
        LiveBook(book).write([progress_write()])
    assert actions(book, "setValues") == []


def test_an_old_mark_whose_row_has_moved_is_left_alone(payload):
    # 校验结果 from an earlier run: row 5 held C01-0003 then; rows were inserted since.
    book_payload_ = copy.deepcopy(payload)
    issues = book_payload_["sheets"][sheet_position(payload, schema.ISSUES.name)]
    ledger = book_payload_["sheets"][sheet_position(payload, schema.LEDGER.name)]
    key_now = ledger["values"][4][0]
    stale = "C99-0001"
    assert key_now != stale
    row = {k: "" for k in schema.ISSUES.keys}
    fresh = dict(row, sheet="台账", row=6, column="日期", key=ledger["values"][5][0], level="错误")
    moved = dict(row, sheet="台账", row=5, column="日期", key=stale, level="错误")
    issues["values"] = [schema.ISSUES.headers] + [[r[k] for k in schema.ISSUES.keys] for r in (fresh, moved)]
    issues["used_range_address"] = "A1:H3"
    book = xw.Book(json=book_payload_)
    live = LiveBook(book)
    live.read()
    live.write([], [])
    assert painted(book, book_payload_) == {("台账", 6, 2): None}


def test_clients_without_notes_still_get_the_fills(payload):
    gas = copy.deepcopy(payload)
    gas["client"] = "Google Apps Script"
    for sheet in gas["sheets"]:
        sheet.pop("notes"), sheet.pop("notes_supported")
    book = xw.Book(json=gas)
    live = LiveBook(book)
    live.read()
    live.write([], marks())
    assert len(painted(book, gas)) == len(marks())
    assert actions(book, "addNote") == [] and live.counts["notes_unsupported"] == len(marks())


def test_sheet_names_with_stray_spaces_are_found_as_the_file_reader_finds_them(demo_master, payload):
    spaced = copy.deepcopy(payload)
    for name in (schema.LEDGER.name, schema.COMMITTEE_PROGRESS.name):
        spaced["sheets"][sheet_position(spaced, name)]["name"] = f" {name} "
    book = xw.Book(json=spaced)
    live = LiveBook(book)
    frames = live.read().frames
    pdt.assert_frame_equal(frames[schema.LEDGER.name], read_workbook(demo_master).frames[schema.LEDGER.name])
    live.write([SheetWrite(schema.COMMITTEE_PROGRESS, [{"committee_id": "C01"}])], marks())
    # The write and the marks went to the spaced sheets (there are no others of those names).
    assert {a["sheet_position"] for a in actions(book, "setRangeColors")} >= {
        sheet_position(spaced, f" {schema.LEDGER.name} ")}
    written = [a for a in actions(book, "setValues") if a["sheet_position"] == sheet_position(
        spaced, f" {schema.COMMITTEE_PROGRESS.name} ")]
    assert written and written[0]["values"][1][0] == "C01"


def test_a_ledger_cell_holding_only_spaces_is_left_alone_when_the_ledger_is_written_back(payload):
    """The reader gives a blank for a cell staff filled with spaces; writing that blank back is no change."""
    data = copy.deepcopy(payload)
    ledger = data["sheets"][sheet_position(payload, schema.LEDGER.name)]
    note = schema.LEDGER.keys.index("note")
    ledger["values"][4][note] = "  "  # Excel row 5
    book = xw.Book(json=data)
    live = LiveBook(book)
    rows = live.read().frames[schema.LEDGER.name].to_dict("records")
    assert rows[3]["_row"] == 5 and rows[3]["note"] is None
    live.write([SheetWrite(schema.LEDGER, rows)])
    assert actions(book, "setValues") == []
