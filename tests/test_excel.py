"""Every macro through a real xlwings JSON book built from the demo workbook (no Excel needed)."""

from __future__ import annotations

import copy
import importlib
import json
import re
import shutil
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import xlwings as xw

from macros import demo, excel, schema
from macros.book.build import build_workbook
from macros.book.live import NOTE_TAG, LiveBook
from macros.book.read import read_workbook
from macros.book.write_types import FILLS
from macros.marks import validation_writes
from macros.rollup import PROGRESS_SHEETS
from macros.validate import validate as core_validate

from .conftest import ROOT
from .xlwings_book import apply_actions, book_payload, json_book

AS_OF = demo.DEMO_AS_OF
# Three bad cells typed into the demo ledger: (row index in the demo rows, column key, value).
BAD = [(3, "date", "六月某日"), (5, "quantity", "abc"), (7, "project_id", "P99")]


@pytest.fixture(scope="module")
def bad_master(tmp_path_factory):
    rows = demo.demo_rows()
    for index, key, value in BAD:
        rows[schema.LEDGER.name][index][key] = value
    path = tmp_path_factory.mktemp("bad") / "healthbook.xlsx"
    build_workbook(path, rows)
    return path


def actions(book: xw.Book, func: str) -> list[dict]:
    return [a for a in book.json()["actions"] if a["func"] == func]


def sheet_values(payload: dict, book: xw.Book, name: str) -> list[list]:
    """The sheet's values after the book's actions, trailing blanks trimmed."""
    after = apply_actions(payload, book.json()["actions"])
    values = next(s["values"] for s in after["sheets"] if s["name"] == name)
    rows = [list(r) for r in values]
    while rows and all(v == "" for v in rows[-1]):
        rows.pop()
    return rows


def expected_problems(path) -> list:
    workbook = read_workbook(path)
    return core_validate(workbook.frames, workbook.settings, AS_OF).problems


def test_validate_macro_writes_issues_and_marks_exactly_the_bad_cells(bad_master):
    payload = book_payload(bad_master)
    book = xw.Book(json=copy.deepcopy(payload))
    validation = excel.validate(book, as_of=AS_OF)
    problems = expected_problems(bad_master)
    assert validation.problems == problems
    # 校验结果: the header, then one row per problem as the file path finds them.
    values = sheet_values(payload, book, schema.ISSUES.name)
    keys = schema.ISSUES.keys
    assert values[0][: len(keys)] == schema.ISSUES.headers
    written = [dict(zip(keys, row)) for row in values[1:]]
    assert [(w["sheet"], w["message"]) for w in written] == [(p.sheet, p.message) for p in problems]
    # 行号 shows the row number and links to the cell.
    first = next(i for i, p in enumerate(problems) if p.row)
    assert written[first]["row"] == problems[first].row
    position = [s["name"] for s in payload["sheets"]].index(schema.ISSUES.name)
    [write] = [a for a in actions(book, "setValues") if a["sheet_position"] == position]
    assert re.fullmatch(rf"=HYPERLINK\(\"#'{problems[first].sheet}'!\$?[A-Z]+\$?{problems[first].row}\",\d+\)",
                        write["values"][first + 1][keys.index("row")])
    # Marks: a fill and a note on each cell-level problem's cell, nothing else.
    ledger = schema.LEDGER
    bad_cells = {(index + 2, ledger.keys.index(key) + 1) for index, key, _ in BAD}
    cell_problems = {(p.row, ledger.headers.index(p.column) + 1): p for p in problems
                     if p.sheet == ledger.name and p.row and p.column}
    assert bad_cells <= set(cell_problems)
    pos = [s["name"] for s in payload["sheets"]].index(ledger.name)
    painted = {}
    for a in actions(book, "setRangeColors"):
        if a["sheet_position"] != pos:
            continue
        for i, row in enumerate(a["args"][0]):
            for j, colour in enumerate(row):
                if colour != "keep":
                    painted[(a["start_row"] + i + 1, a["start_column"] + j + 1)] = colour
    assert painted == {cell: f"#{FILLS[p.level]}".lower() for cell, p in cell_problems.items()}
    notes = {a["args"][0].replace("$", ""): a["args"][1] for a in actions(book, "addNote")
             if a["sheet_position"] == pos}
    assert len(notes) == len(cell_problems)
    for (r, c), p in cell_problems.items():
        address = f"{chr(ord('A') + c - 1)}{r}"
        assert notes[address].startswith(NOTE_TAG) and p.message in notes[address]
    # The person is told, in Chinese, without a traceback.
    [alert] = actions(book, "alert")
    assert f"错误 {validation.errors} 条" in alert["args"][0] and alert["args"][3] == "info"


def test_fixing_the_cells_and_clicking_again_removes_the_marks(bad_master):
    payload = book_payload(bad_master)
    first = xw.Book(json=copy.deepcopy(payload))
    excel.validate(first, as_of=AS_OF)
    after = apply_actions(payload, first.json()["actions"])
    ledger = schema.LEDGER
    position = [s["name"] for s in after["sheets"]].index(ledger.name)
    fixes = {"date": "2020-06-22T00:00:00.000Z", "quantity": 5, "project_id": "P01"}
    for index, key, _ in BAD:  # staff correct the three cells
        after["sheets"][position]["values"][index + 1][ledger.keys.index(key)] = fixes[key]
    second = xw.Book(json=copy.deepcopy(after))
    validation = excel.validate(second, as_of=AS_OF)
    bad_cells = {(index + 2, ledger.keys.index(key) + 1) for index, key, _ in BAD}
    assert not any(p.row and (p.row, ledger.headers.index(p.column) + 1) in bad_cells
                   for p in validation.problems if p.sheet == ledger.name and p.column)
    cleared = {}
    for a in actions(second, "setRangeColors"):
        if a["sheet_position"] != position:
            continue
        for i, row in enumerate(a["args"][0]):
            for j, colour in enumerate(row):
                if colour != "keep":
                    cleared[(a["start_row"] + i + 1, a["start_column"] + j + 1)] = colour
    assert all(cleared[cell] is None for cell in bad_cells)
    deleted = {a["args"][0].replace("$", "") for a in actions(second, "deleteNote")
               if a["sheet_position"] == position}
    assert {f"{chr(ord('A') + c - 1)}{r}" for r, c in bad_cells} <= deleted


def test_rollup_macro_writes_the_progress_sheets_as_the_core_computes_them(demo_master):
    rollup_module = pytest.importorskip("macros.rollup")
    payload = book_payload(demo_master)
    book = xw.Book(json=copy.deepcopy(payload))
    result = excel.rollup(book, as_of=AS_OF)
    assert result is not None
    workbook = read_workbook(demo_master)
    validation = core_validate(workbook.frames, workbook.settings, AS_OF)
    expected = rollup_module.rollup_sheets(rollup_module.rollup(validation, workbook.settings, AS_OF))
    for sheet_write in expected:
        values = sheet_values(payload, book, sheet_write.sheet.name)
        keys = sheet_write.sheet.keys
        assert values[0][: len(keys)] == sheet_write.sheet.headers
        assert values[0][len(keys) + 1] == sheet_write.note
        assert len(values) - 1 == len(sheet_write.rows), sheet_write.sheet.name
        for row, want in zip(values[1:], sheet_write.rows):
            for key, cell in zip(keys, row):
                assert _same(cell, want.get(key)), (sheet_write.sheet.name, key, cell, want.get(key))
    # One bulk value write per output sheet plus 校验结果.
    assert len(actions(book, "setValues")) == len(expected) + 1


def _same(cell: object, value: object) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return cell == ""
    if hasattr(value, "isoformat"):
        return str(cell).startswith(value.isoformat()[:10])
    if isinstance(value, (int, float)):
        return cell == pytest.approx(value)
    return cell == str(value)


def test_a_broken_workbook_gets_a_chinese_alert_not_a_traceback(demo_master):
    payload = book_payload(demo_master)
    ledger = next(s for s in payload["sheets"] if s["name"] == schema.LEDGER.name)
    ledger["values"][0] = ["备注" if v == "日期" else v for v in ledger["values"][0]]
    book = xw.Book(json=copy.deepcopy(payload))
    assert excel.validate(book, as_of=AS_OF) is None
    [alert] = actions(book, "alert")
    assert "台账" in alert["args"][0] and "日期" in alert["args"][0] and alert["args"][3] == "critical"
    assert actions(book, "setValues") == []


def test_an_unexpected_error_is_logged_beside_the_workbook(demo_master, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a JSON book has no folder: the current one stands in
    payload = book_payload(demo_master)
    payload["sheets"] = [s for s in payload["sheets"] if s["name"] != schema.ISSUES.name] + [
        {**next(s for s in payload["sheets"] if s["name"] == schema.ISSUES.name), "values": None}]
    book = xw.Book(json=copy.deepcopy(payload))
    excel.validate(book, as_of=AS_OF)
    [alert] = actions(book, "alert")
    assert "出错" in alert["args"][0] and excel.LOG_NAME in alert["args"][0]
    assert "Traceback" in (tmp_path / excel.LOG_NAME).read_text(encoding="utf-8")


def test_bas_module_calls_functions_that_exist():
    bas = (ROOT / "workbook" / "healthbook.bas").read_text(encoding="gbk")
    steps = re.findall(r'RunStep "(\w+)"', bas)
    sys.path.insert(0, str(ROOT / "workbook"))
    try:
        module = importlib.import_module("healthbook")
    finally:
        sys.path.remove(str(ROOT / "workbook"))
    assert steps == ["main", "validate", "rollup", "notices"]
    assert all(callable(getattr(module, step)) for step in steps)
    assert b"\r\n" in (ROOT / "workbook" / "healthbook.bas").read_bytes()  # VBA imports want CRLF


@pytest.fixture
def healthbook_module():
    sys.path.insert(0, str(ROOT / "workbook"))
    try:
        yield importlib.import_module("healthbook")
    finally:
        sys.path.remove(str(ROOT / "workbook"))
        if hasattr(xw.Book, "_mock_caller"):
            del xw.Book._mock_caller


def test_main_runs_through_book_caller(bad_master, healthbook_module):
    # main() takes no arguments: xw.Book.caller() inside it finds the mock caller, as Excel's
    # RunPython would find the workbook whose button was clicked.
    book = json_book(bad_master)
    book.set_mock_caller()
    healthbook_module.validate()
    assert actions(book, "setValues") and actions(book, "addNote")
    [alert] = actions(book, "alert")
    assert alert["args"][0].startswith("校验完成")


def this_years(master: Path, tmp_path: Path) -> Path:
    """``master`` with 年度 this year: the button reports as of today (the demo's 2020, six years
    on, makes no notice; ``test_the_button_on_a_workbook_years_out_of_date_makes_no_letters``)."""
    import shutil

    from .test_recovery_adversary import set_setting

    tmp_path.mkdir(exist_ok=True)
    path = shutil.copy2(master, tmp_path / master.name)
    set_setting(path, schema.SETTINGS_BY_KEY["year"].item, date.today().year)
    return path


def test_main_is_the_one_click_report(bad_master, healthbook_module, tmp_path, monkeypatch):
    pytest.importorskip("macros.report")
    monkeypatch.chdir(tmp_path)  # a JSON book has no folder: notices go beside "it", here
    book = json_book(this_years(bad_master, tmp_path / "copy"))
    book.set_mock_caller()
    healthbook_module.main()
    [alert] = actions(book, "alert")
    assert alert["args"][0].startswith("报告已生成"), alert["args"][0]
    # Who is behind, in the box: the clerk should not have to open three sheets to learn it (walk3 F13).
    assert re.search(r"居委会滞后 \d+ 个、严重滞后 \d+ 个：", alert["args"][0]) and "逾期项目：" in alert["args"][0]
    written = {book.json()["actions"][0]["sheet_position"]} | {
        a["sheet_position"] for a in actions(book, "setValues")}
    names = [s.name for s in book.sheets]
    assert {schema.ISSUES.name, schema.COMMITTEE_PROGRESS.name, schema.PROJECT_PROGRESS.name,
            schema.UNIT_PROGRESS.name} <= {names[i] for i in written}
    assert len(actions(book, "addNote")) >= len(BAD)
    folder = tmp_path / schema.SETTINGS_BY_KEY["notices"].default
    assert folder.is_dir() and any(folder.iterdir())
    # 通知清单 lists every notice, its file names linking to files that exist beside the workbook.
    position = names.index(schema.NOTICES.name)
    [listing] = [a for a in actions(book, "setValues") if a["sheet_position"] == position]
    keys = schema.NOTICES.keys
    rows = [dict(zip(keys, row)) for row in listing["values"][1:]]
    assert rows and all(r["title"] for r in rows)
    for row in rows:
        target, shown = re.fullmatch(r'=HYPERLINK\("([^"]+)","([^"]+)"\)', row["docx"]).groups()
        assert (tmp_path / target).is_file() and target.endswith(shown)


def test_notices_macro_writes_only_the_list(bad_master, tmp_path):
    pytest.importorskip("macros.report")
    book = json_book(bad_master)
    rendered = excel.notices(book, as_of=AS_OF, base=tmp_path)
    assert rendered is not None and rendered.notices
    names = [s.name for s in book.sheets]
    assert {names[a["sheet_position"]] for a in actions(book, "setValues")} == {schema.NOTICES.name}
    assert actions(book, "addNote") == [] and actions(book, "setRangeColors") == []
    [alert] = actions(book, "alert")
    assert str(tmp_path) in alert["args"][0] and alert["args"][3] == "info"


def test_a_workbook_on_sharepoint_is_told_where_to_put_it(demo_master):
    pytest.importorskip("macros.report")
    book = json_book(demo_master, name="https://example.sharepoint.com/sites/jd/healthbook.xlsm")
    assert excel.report(book, as_of=AS_OF) is None
    [alert] = actions(book, "alert")
    said = alert["args"][0]
    # Opened from a folder (the office's shared one too), beside its same-named .py: not "healthbook.py"
    assert "共享文件夹" in said and "同名的 .py" in said and "healthbook.py" not in said
    assert alert["args"][3] == "critical"


def test_serve_runs_a_macro_for_a_token_holder_only(bad_master, monkeypatch):
    from macros.serve import make_server

    monkeypatch.setenv("XLWINGS_LICENSE_KEY", "noncommercial")
    server = make_server("127.0.0.1", 0, "s3cret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/macros/"
    body = json.dumps(book_payload(bad_master)).encode()

    def post(path: str, token: str) -> tuple[int, dict]:
        request = urllib.request.Request(url + path, data=body, headers={"Authorization": token})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    try:
        status, answer = post("validate", "s3cret")
        assert status == 200
        funcs = Counter(a["func"] for a in answer["actions"])
        assert funcs["setValues"] == 1 and funcs["addNote"] >= len(BAD) and funcs["alert"] == 1
        status, answer = post("validate", "wrong")
        assert status == 403 and "令牌" in answer["detail"]
        status, answer = post("format_disk", "s3cret")
        assert status == 404
    finally:
        server.shutdown()
        server.server_close()


def _display(value: object) -> object:
    """A cell as a person sees it: HYPERLINK formulas show their text; numbers compare as floats."""
    if isinstance(value, str):
        link = re.fullmatch(r'=HYPERLINK\("[^"]*",(?:"(.*)"|([^")]*))\)', value)
        if link:
            value = link.group(1) if link.group(1) is not None else link.group(2)
            value = float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value or "") else value
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", value):
            return value[:10]
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value), 9)
    return value


def test_live_and_file_adapters_write_identical_sheets(bad_master, tmp_path):
    from python_calamine import CalamineWorkbook

    from macros.book.write import FileBook

    try:
        import macros.rollup as rollup_module
    except ImportError:  # before the roll-up core lands: 校验结果 only
        rollup_module = None
    # The file path: FileBook read → the same cores → FileBook write, marks included.
    path = tmp_path / bad_master.name
    path.write_bytes(bad_master.read_bytes())
    filebook = FileBook(path)
    workbook = filebook.read()
    validation = core_validate(workbook.frames, workbook.settings, AS_OF)
    issues, marks = validation_writes(validation)
    sheets = list(issues)
    if rollup_module:
        sheets += rollup_module.rollup_sheets(rollup_module.rollup(validation, workbook.settings, AS_OF))
    filebook.write(sheets, marks)
    written = CalamineWorkbook.from_path(str(path))

    # The live path on the same workbook, through the macro.
    payload = book_payload(bad_master)
    book = xw.Book(json=copy.deepcopy(payload))
    macro = excel.rollup if rollup_module else excel.validate
    assert macro.__wrapped__(book, as_of=AS_OF) is not None  # unwrapped: errors would raise
    live = LiveBook(xw.Book(json=copy.deepcopy(payload))).read()
    assert core_validate(live.frames, live.settings, AS_OF).problems == validation.problems
    # The same cells marked, with the same level.
    painted = {}
    for a in actions(book, "setRangeColors"):
        name = payload["sheets"][a["sheet_position"]]["name"]
        for i, row in enumerate(a["args"][0]):
            for j, colour in enumerate(row):
                if colour != "keep" and name not in {s.sheet.name for s in sheets}:
                    painted[(name, a["start_row"] + i + 1, a["start_column"] + j + 1)] = colour
    assert painted == {(m.sheet, m.row, schema.sheet(m.sheet).headers.index(m.column) + 1):
                       f"#{FILLS[m.level]}".lower() for m in marks}

    for sheet_write in sheets:
        name = sheet_write.sheet.name
        by_live = [[_display(v) for v in row] for row in sheet_values(payload, book, name)]
        by_file = [[_display(v) for v in row] for row in written.get_sheet_by_name(name).to_python()]
        if name == schema.ISSUES.name:  # the banner carries the minute it was written
            keys = len(sheet_write.sheet.keys)
            by_live[0], by_file[0] = by_live[0][:keys], by_file[0][:keys]
            # FileBook keeps its mark memory in hidden columns far right: not part of the table.
            by_file = [r[:keys] for r in by_file]
            by_live = [r[:keys] for r in by_live]
        width = max(len(r) for r in by_live + by_file)
        assert [r + [""] * (width - len(r)) for r in by_live] == \
               [r + [""] * (width - len(r)) for r in by_file], name


def test_the_button_on_a_workbook_years_out_of_date_makes_no_letters(healthbook_module, tmp_path, monkeypatch):
    """The shipped demo (年度 2020) clicked today sent 13 letters dated today over 2020's work:
    "已2232天未填报台账" (walk3 F10). The box says why none was made and what to change."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "healthbook.xlsx"
    build_workbook(path, demo.demo_rows())
    payload = book_payload(path)
    book = xw.Book(json=copy.deepcopy(payload))
    book.set_mock_caller()
    healthbook_module.main()
    [alert] = actions(book, "alert")
    text = alert["args"][0]
    assert "本次没有生成任何通知" in text and "不在试点年度 2020 年内" in text
    assert not (tmp_path / schema.SETTINGS_BY_KEY["notices"].default).exists()
    marked = sheet_values(payload, book, schema.ISSUES.name)
    assert any("年度" in str(cell) for row in marked for cell in row)  # 校验结果 names the setting

    # The 生成通知 button alone: "已生成 没有需要生成的通知，保存在文件夹 …" named a folder never made.
    book = xw.Book(json=copy.deepcopy(payload))
    book.set_mock_caller()
    healthbook_module.notices()
    [alert] = actions(book, "alert")
    text = alert["args"][0]
    assert text.startswith("通知未生成") and "已生成" not in text and "文件夹" not in text.split("注意")[0]
    assert "不在试点年度 2020 年内" in text


PROGRESS = tuple(sheet.name for sheet in PROGRESS_SHEETS)


def touched(book: xw.Book) -> set[str]:
    """The sheets any action of the book wrote to (values, fills, notes, clearing)."""
    names = [s.name for s in book.sheets]
    return {names[a["sheet_position"]] for a in book.json()["actions"] if a.get("sheet_position") is not None}


@pytest.mark.parametrize("button", ["main", "rollup"])
def test_the_button_on_a_workbook_years_out_of_date_leaves_the_progress_sheets(
        healthbook_module, demo_master, tmp_path, monkeypatch, button):
    """The progress sheets hold 2020's standing (made in 2020); clicked today with 年度 still 2020,
    the buttons rewrote them with figures counted for 2020 as of today (every committee 严重滞后,
    2020's work all overdue). They are left as they were; the box says why; 校验结果 is written."""
    monkeypatch.chdir(tmp_path)
    path = Path(shutil.copy2(demo_master, tmp_path / "healthbook.xlsx"))
    assert excel_cli(path) == 0  # the sheets as made in 2020
    payload = book_payload(path)
    book = xw.Book(json=copy.deepcopy(payload))
    book.set_mock_caller()
    getattr(healthbook_module, button)()
    [alert] = actions(book, "alert")
    text = alert["args"][0]
    assert f"进度表未更新：统计截止日期 {date.today().isoformat()} 不在试点年度 2020 年内" in text
    assert "".join(f"“{name}”" for name in PROGRESS) + "保持上次的内容" in text
    assert "严重滞后" not in text and "进度汇总完成" not in text and "报告已生成" not in text
    assert touched(book).isdisjoint(PROGRESS) and schema.ISSUES.name in touched(book)
    assert sheet_values(payload, book, schema.COMMITTEE_PROGRESS.name)[1][:2] == ["C01", "新福康里居委会"]


def excel_cli(path: Path) -> int:
    from macros.cli import main

    return main(["rollup", str(path), "--as-of", AS_OF.isoformat()])
