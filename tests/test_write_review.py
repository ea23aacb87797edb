"""Review of the writer's speed changes: old rows copied back as runs, unchanged rows found a
column at a time and checked as blocks, 变更记录's last line found from the end, large parts
deflated in the background, sheets re-read in threads, xml:space only at edge whitespace.

Every test writes a real file and checks it with an independent reader (calamine, openpyxl) or
by comparing the rows' bytes before and after.
"""

from __future__ import annotations

import gc
import re
import shutil
import zipfile
from datetime import date, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book import owned, package, verify
from macros.book.ooxml import sheet_parts
from macros.book.read import read_workbook
from macros.book.write import FileBook, WriteRefused
from macros.book.write_types import SheetWrite
from macros.collect import collect_seldom
from macros.errors import DuplicateColumns
from macros.merge import record_number

from .conftest import convert_with_libreoffice
from .test_write import _prefixed, ledger_rows, parts_of, sheet_xml
from .test_write_safety import digest

LEDGER = schema.LEDGER.name
_ROW = re.compile(r'<(?:x:)?row\b[^>]*?\br="(\d+)"[^>]*?(?:/>|>.*?</(?:x:)?row>)', re.S)


def rows_by_number(xml: str) -> dict[int, str]:
    """Each row's XML as written, by Excel row number."""
    return {int(m.group(1)): m.group(0) for m in _ROW.finditer(xml)}


def rewrite_part(src: Path, target: Path, sheet: str, edit, compress: int = zipfile.ZIP_DEFLATED) -> Path:
    """A copy of ``src`` whose ``sheet`` part is ``edit(xml)`` (as another program saved it)."""
    parts = parts_of(src)
    name = sheet_parts(parts)[sheet]
    parts[name] = edit(parts[name].decode()).encode()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, parts[info.filename],
                          compress_type=compress if info.filename == name else info.compress_type)
    return target


def without_row(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_row"} for r in rows]


def assert_unchanged_rows(before: str, after: str, rows: set[int]) -> None:
    old, new = rows_by_number(before), rows_by_number(after)
    for r in rows - {1}:  # the header row is written again (its cells kept, its attributes reordered)
        assert new.get(r) == old[r], f"row {r} changed"


# 1. rewrite_sheet: old rows as offsets, copied back in runs; unchanged rows found by column.

def test_every_old_row_changed_is_written(master):
    # No old row stays as it was: the block of unchanged rows is empty (this crashed with a TypeError).
    rows = ledger_rows(master)
    rows = [{**r, "activity": f"全部改过{i}"} for i, r in enumerate(rows)]
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(master) == rows


def test_a_one_row_ledger_whose_row_changed(master):
    rows = ledger_rows(master)[:1]
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    FileBook(master).write([SheetWrite(schema.LEDGER, [{**rows[0], "quantity": 99}])])
    assert ledger_rows(master) == [{**rows[0], "quantity": 99}]


def test_rows_changed_in_the_middle_leave_the_others_byte_for_byte(master):
    before = sheet_xml(master, LEDGER)
    rows = ledger_rows(master)
    middle = {7, 8, 20}
    for i in middle:
        rows[i] = {**rows[i], "status": "已完成", "participants": 4321}
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(master) == rows
    after = sheet_xml(master, LEDGER)
    changed = {rows[i]["_row"] for i in middle}
    assert_unchanged_rows(before, after, set(rows_by_number(before)) - changed)
    for r in changed:
        assert rows_by_number(after)[r] != rows_by_number(before)[r]
    cells = openpyxl.load_workbook(master)[LEDGER]
    assert [cells[f"F{r}"].value for r in sorted(changed)] == [4321] * 3


def test_moved_rows_land_at_their_new_rows_and_leave_nothing_behind(master):
    rows = ledger_rows(master)
    last = rows[-1]["_row"]
    a, b = rows[3]["_row"], rows[4]["_row"]
    rows[3]["_row"], rows[4]["_row"] = b, a  # two rows swap places
    moved_from = rows[10]["_row"]
    rows[10]["_row"] = last + 5  # one goes below the data, leaving a gap
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    after = ledger_rows(master)
    assert sorted(without_row(after), key=str) == sorted(without_row(rows), key=str)
    at = {r["_row"]: r["record_id"] for r in after}
    assert at[a] == rows[4]["record_id"] and at[b] == rows[3]["record_id"]
    assert at[last + 5] == rows[10]["record_id"] and moved_from not in at
    grid = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(LEDGER).to_python(skip_empty_area=False)
    width = len(schema.LEDGER.columns)
    assert grid[moved_from - 1][:width] == [""] * width
    assert all(v == "" for r in range(last, last + 4) for v in grid[r][:width])


def _staff_cells(xml: str, cells: dict[int, str], col: str = "Z") -> str:
    """Cells staff typed in a column without a header, on the given rows."""
    for r, text in cells.items():
        cell = f'<c r="{col}{r}" t="inlineStr"><is><t>{text}</t></is></c>'
        xml = re.sub(rf'(<row r="{r}"[^>]*>.*?)(</row>)', rf"\g<1>{cell}\g<2>", xml, count=1, flags=re.S)
    return xml


def test_a_dropped_row_keeps_cells_in_columns_without_a_header(master, tmp_path):
    path = rewrite_part(master, tmp_path / "staff.xlsm", LEDGER, lambda x: _staff_cells(x, {5: "留着", 6: "也留着"}))
    before = sheet_xml(path, LEDGER)
    rows = ledger_rows(path)
    kept = [r for r in rows if r["_row"] != 5]
    kept[0]["activity"] = "改一行"  # one real change, so the sheet is rewritten
    FileBook(path).write([SheetWrite(schema.LEDGER, kept)])
    assert ledger_rows(path) == kept
    ws = openpyxl.load_workbook(path)[LEDGER]
    assert ws["Z5"].value == "留着" and ws["Z6"].value == "也留着"
    assert all(ws.cell(5, c).value is None for c in range(1, len(schema.LEDGER.columns) + 1))
    after = sheet_xml(path, LEDGER)
    # Row 6 was not changed: its text (with the staff cell) is kept as it was.
    assert_unchanged_rows(before, after, set(rows_by_number(before)) - {kept[0]["_row"], 5})


def test_formatted_blank_rows_below_the_data_stay_as_they_were(master, tmp_path):
    last = max(r["_row"] for r in ledger_rows(master))
    blank = "".join(f'<row r="{r}" ht="20" customHeight="1"><c r="A{r}" s="7"/></row>'
                    for r in range(last + 1, last + 4))
    path = rewrite_part(master, tmp_path / "blank.xlsm", LEDGER, lambda x: x.replace("</sheetData>", blank + "</sheetData>"))
    rows = ledger_rows(path)
    rows[5]["note"] = "中间改了"
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    after = sheet_xml(path, LEDGER)
    assert blank in after
    assert ledger_rows(path) == rows


def _shuffled(xml: str) -> str:
    """Rows 4 and 5 written in the other order, row 9 missing, whitespace between rows."""
    rows = rows_by_number(xml)
    r4, r5, r9 = rows[4], rows[5], rows[9]
    xml = xml.replace(r4 + r5, r5 + r4).replace(r9, "")
    return re.sub(r"(</row>)(<row )", r"\1\n    \2", xml)


@pytest.mark.parametrize("edit", [_shuffled, lambda x: re.sub(r"(</row>)(<row )", r"\1\r\n\t\2", x)],
                         ids=["out-of-order-with-gap", "whitespace-between-rows"])
def test_rows_written_out_of_order_or_spaced_out(master, tmp_path, edit):
    path = rewrite_part(master, tmp_path / "odd.xlsm", LEDGER, edit)
    before = sheet_xml(path, LEDGER)
    rows = ledger_rows(path)
    for i in (2, 3, 12):  # changed rows around the odd ones
        rows[i] = {**rows[i], "activity": f"改过{i}"}
    rows.append({"record_id": "C01-9990", "date": date(2020, 11, 21), "committee_id": "C01", "project_id": "P01",
                 "activity": "新增", "quantity": 2, "status": "进行中"})
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    got = ledger_rows(path)
    assert got[:-1] == rows[:-1]
    assert {k: v for k, v in got[-1].items() if k in rows[-1]} == rows[-1]
    after = sheet_xml(path, LEDGER)
    changed = {rows[i]["_row"] for i in (2, 3, 12)}
    old = rows_by_number(before)
    assert_unchanged_rows(before, after, set(old) - changed)
    ws = openpyxl.load_workbook(path)[LEDGER]  # a well-formed sheet for another reader
    assert [ws.cell(r["_row"], 5).value for r in rows[:-1]] == [r["activity"] for r in rows[:-1]]


def test_a_prefixed_worksheet_keeps_its_unchanged_rows(demo_master, tmp_path):
    path = rewrite_part(demo_master, tmp_path / "prefixed.xlsx", LEDGER, _prefixed)
    before = sheet_xml(path, LEDGER)
    rows = ledger_rows(path)
    for i in (1, 30, 31):
        rows[i] = {**rows[i], "reporter": f"新人{i}"}
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(path) == rows
    after = sheet_xml(path, LEDGER)
    assert_unchanged_rows(before, after, set(rows_by_number(before)) - {rows[i]["_row"] for i in (1, 30, 31)})
    ws = openpyxl.load_workbook(path)[LEDGER]
    assert [ws.cell(rows[i]["_row"], 9).value for i in (1, 30, 31)] == ["新人1", "新人30", "新人31"]


def test_a_prefixed_worksheet_with_implicit_row_numbers(demo_master, tmp_path):
    # Rows without r= (allowed by the format): the ROW_RE path numbers them one after another.
    def edit(xml: str) -> str:
        return re.sub(r'(<x:row)( r="\d+")', r"\1", _prefixed(xml))

    path = rewrite_part(demo_master, tmp_path / "implicit.xlsx", LEDGER, edit)
    rows = ledger_rows(path)
    rows[4] = {**rows[4], "activity": "隐式行号"}
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(path) == rows


def test_staff_columns_beyond_the_contract_keep_their_values(master):
    before = sheet_xml(master, LEDGER)
    rows = ledger_rows(master)
    extra = [k for k in rows[0] if k not in schema.LEDGER.keys and k != "_row"]
    assert extra  # the decorated master has staff columns (核对人, a formula column)
    rows[6] = {**rows[6], "quantity": 777}
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(master) == rows
    assert_unchanged_rows(before, sheet_xml(master, LEDGER), set(rows_by_number(before)) - {rows[6]["_row"]})


def test_numpy_and_na_values_in_old_rows(master):
    before = sheet_xml(master, LEDGER)
    rows = ledger_rows(master)
    same = rows[2]
    rows[2] = {**same, "participants": np.int64(same["participants"]) if same["participants"] is not None else None,
               "quantity": np.float64(same["quantity"]) if same["quantity"] is not None else None}
    rows[3] = {**rows[3], "note": pd.NA, "reporter": np.nan}
    rows[4] = {**rows[4], "participants": np.int64(31), "date": pd.Timestamp("2020-07-08")}
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    after = ledger_rows(master)
    assert after[2] == same
    assert_unchanged_rows(before, sheet_xml(master, LEDGER), {same["_row"]})
    assert after[3]["note"] is None and after[3]["reporter"] is None
    assert (after[4]["participants"], after[4]["date"]) == (31, date(2020, 7, 8))


def test_links_on_a_ledger_write_go_after_the_rows(master):
    before = sheet_xml(master, LEDGER)
    rows = ledger_rows(master)
    rows[3] = {**rows[3], "activity": "看项目表"}
    FileBook(master).write([SheetWrite(schema.LEDGER, rows, links={(3, "activity"): "'项目'!A1"})])
    after = sheet_xml(master, LEDGER)
    assert after.index("</sheetData>") < after.index("<hyperlinks>")
    ET_root = openpyxl.load_workbook(master)[LEDGER]
    cell = ET_root.cell(rows[3]["_row"], 5)
    assert cell.value == "看项目表" and cell.hyperlink.location == "'项目'!A1"
    assert_unchanged_rows(before, after, set(rows_by_number(before)) - {rows[3]["_row"]})


# 2. 变更记录: appended below the last line holding a value.

def _change(i: int) -> dict:
    return {"time": datetime(2020, 11, 20, 9, 30), "source": f"填报表-{i}.xlsx", "record_id": f"C01-{i:04d}",
            "action": "新增", "column": "", "old": "", "new": f"第{i}行"}


def _log(path: Path) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.CHANGES.name).to_python(
        skip_empty_area=False)


def test_the_change_log_appends_below_its_last_line_over_styled_blank_rows(master, tmp_path):
    FileBook(master).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3)], append=True)])
    log = _log(master)
    last = max(i + 1 for i, line in enumerate(log) if any(v != "" for v in line))
    styled = "".join(f'<row r="{r}" ht="18" customHeight="1"><c r="A{r}" s="3"/><c r="B{r}" s="3"/></row>'
                     for r in range(last + 1, last + 6))
    path = rewrite_part(master, tmp_path / "styled.xlsm", schema.CHANGES.name,
                        lambda x: x.replace("</sheetData>", styled + "</sheetData>"))
    before = sheet_xml(path, schema.CHANGES.name)
    FileBook(path).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3, 5)], append=True)])
    log = _log(path)
    assert [line[2] for line in log[1:last + 2]] == [f"C01-{i:04d}" for i in range(5)]
    after = sheet_xml(path, schema.CHANGES.name)
    old = rows_by_number(before)
    assert_unchanged_rows(before, after, {r for r in old if r <= last or r > last + 2})


def test_a_change_log_whose_header_moved_is_rewritten_whole(master, tmp_path):
    FileBook(master).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3)], append=True)])

    def header_down(xml: str) -> str:  # staff inserted a title row above the header
        rows = rows_by_number(xml)
        shifted = "".join(re.sub(r'(r="[A-Z]*)(\d+)"', lambda m: f'{m.group(1)}{int(m.group(2)) + 1}"', rows[r])
                          for r in sorted(rows))
        title = '<row r="1"><c r="A1" t="inlineStr"><is><t>变更记录（勿删）</t></is></c></row>'
        body = "".join(rows[r] for r in sorted(rows))
        assert body in xml
        return xml.replace(body, title + shifted)

    path = rewrite_part(master, tmp_path / "moved.xlsm", schema.CHANGES.name, header_down)
    FileBook(path).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3, 5)], append=True)])
    got = read_workbook(path, [schema.CHANGES])[schema.CHANGES.name]
    assert list(got["record_id"]) == [f"C01-{i:04d}" for i in range(5)]


def test_a_change_log_with_columns_staff_moved_and_added_keeps_them_and_what_they_hold(master_copy):
    """Staff put a 核对人 column of their own into 变更记录 and moved 来源文件 to the end (no Excel
    table over it): the audit trail keeps their column, what they typed in it and its old lines as
    they are; new lines go under the headers where staff put them."""
    FileBook(master_copy).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3)], append=True)])
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.CHANGES.name]
    source = schema.CHANGES.header_of("source")
    at = [c.value for c in ws[1]].index(source) + 1
    ws.move_range(f"{openpyxl.utils.get_column_letter(at)}1:{openpyxl.utils.get_column_letter(at)}{ws.max_row}",
                  cols=ws.max_column + 1 - at)
    ws.delete_cols(at)
    ws.insert_cols(2)
    ws.cell(1, 2, "核对人")
    for r in range(2, ws.max_row + 1):
        ws.cell(r, 2, "张三")
    wb.save(master_copy)
    before = sheet_xml(master_copy, schema.CHANGES.name)
    header = _log(master_copy)[0]

    FileBook(master_copy).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(3, 5)], append=True)])

    log = _log(master_copy)
    assert log[0] == header and header[1] == "核对人" and header[-1] == source
    assert [line[1] for line in log[1:]] == ["张三"] * 3 + ["", ""]  # staff's checks kept, none made up
    got = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    assert list(got["record_id"]) == [f"C01-{i:04d}" for i in range(5)]
    assert list(got["source"]) == [f"填报表-{i}.xlsx" for i in range(5)]
    after = sheet_xml(master_copy, schema.CHANGES.name)
    assert_unchanged_rows(before, after, set(rows_by_number(before)))


def test_a_header_only_change_log_keeps_the_column_staff_added(master_copy):
    """A new master's 变更记录 holds only its header: a column staff put into it stays at the first lines."""
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.CHANGES.name]
    ws.delete_rows(2, ws.max_row)
    ws.insert_cols(2)
    ws.cell(1, 2, "核对人")
    wb.save(master_copy)
    header = _log(master_copy)[0]

    FileBook(master_copy).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(2)], append=True)])

    log = _log(master_copy)
    assert log[0] == header and header[1] == "核对人"
    got = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    assert list(got["record_id"]) == ["C01-0000", "C01-0001"] and [line[1] for line in log[1:]] == ["", ""]


def test_a_change_log_with_one_of_our_headers_twice_is_refused_unchanged(master_copy):
    """Staff moved the columns and typed a second 记录编号 header: which column holds the numbers is
    unknown (the reader refuses it too); nothing is written, the message names the column."""
    FileBook(master_copy).write([SheetWrite(schema.CHANGES, [_change(i) for i in range(2)], append=True)])
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.CHANGES.name]
    ws.insert_cols(1)
    ws.cell(1, 1, "核对人")
    ws.cell(1, ws.max_column + 1, schema.CHANGES.header_of("record_id"))
    wb.save(master_copy)
    before = master_copy.read_bytes()
    with pytest.raises(DuplicateColumns) as refused:
        FileBook(master_copy).write([SheetWrite(schema.CHANGES, [_change(5)], append=True)])
    assert schema.CHANGES.header_of("record_id") in str(refused.value)
    assert master_copy.read_bytes() == before


# 3. package.py: large parts deflated in the background, written raw.

def test_a_stored_part_stays_stored_when_large(master, tmp_path, monkeypatch):
    monkeypatch.setattr(package, "LARGE_PART", 1000)
    path = rewrite_part(master, tmp_path / "stored.xlsm", LEDGER, lambda x: x, compress=zipfile.ZIP_STORED)
    rows = ledger_rows(path)
    rows[1]["activity"] = "存储不压缩"
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        info = zf.getinfo(sheet_parts(parts_of(path))[LEDGER])
        assert info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size
    assert ledger_rows(path) == rows


def test_a_part_set_twice_is_saved_as_last_set(master, tmp_path, monkeypatch):
    monkeypatch.setattr(package, "LARGE_PART", 1000)
    pkg = package.Package(master)
    part = pkg.sheets[LEDGER]
    xml = pkg.text(part)
    first = xml.replace("</sheetData>", '<row r="5000"><c r="A5000" t="inlineStr"><is><t>第一次</t></is></c></row></sheetData>')
    second = xml.replace("</sheetData>", '<row r="5000"><c r="A5000" t="inlineStr"><is><t>第二次</t></is></c></row></sheetData>')
    for texts, expected in (([first, second], "第二次"), ([first, xml[:10] + xml[10:]], None),
                            ([first, "<x/>"], "<x/>")):
        pkg = package.Package(master)
        for text in texts:
            pkg.set_text(part, text)
        target = tmp_path / f"twice-{len(texts[-1])}.xlsm"
        pkg.save(target)
        with zipfile.ZipFile(target) as zf:
            assert zf.testzip() is None
            data = zf.read(part).decode()
        if expected is None:
            assert data == xml
        elif expected == "<x/>":
            assert data == "<x/>"
        else:
            assert expected in data and "第一次" not in data


def test_a_new_large_part_reads_back_everywhere(demo_master, tmp_path, monkeypatch):
    monkeypatch.setattr(package, "LARGE_PART", 1000)
    path = tmp_path / "noissues.xlsx"
    wb = openpyxl.load_workbook(demo_master)
    del wb[schema.ISSUES.name]
    wb.save(path)
    issues = [{"sheet": LEDGER, "row": i + 2, "column": "活动内容", "message": f"问题{i}"} for i in range(300)]
    FileBook(path).write([SheetWrite(schema.ISSUES, issues)])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.ISSUES.name).to_python()
    assert [line[6] for line in grid[1:]] == [f"问题{i}" for i in range(300)]
    ws = openpyxl.load_workbook(path)[schema.ISSUES.name]
    assert ws.cell(301, 7).value == "问题299"


def test_libreoffice_reads_background_deflated_parts(master, tmp_path, monkeypatch):
    monkeypatch.setattr(package, "LARGE_PART", 1000)
    rows = ledger_rows(master)
    rows[0]["activity"] = "后台压缩给办公软件读"
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    converted = convert_with_libreoffice(master, "xlsx", tmp_path / "lo")
    ws = openpyxl.load_workbook(converted)[LEDGER]
    assert ws["E2"].value == "后台压缩给办公软件读"
    assert ws.cell(rows[-1]["_row"], 1).value == rows[-1]["record_id"]


# 4. verify.py: sheets re-read in threads; blocks checked column by column.

def _tamper(monkeypatch, edit) -> None:
    original = package.Package.save

    def save(self, target):
        part = self.sheets[LEDGER]
        self.set_text(part, edit(self.text(part)))
        return original(self, target)

    monkeypatch.setattr(package.Package, "save", save)


def test_a_wrong_value_in_an_unchanged_row_is_refused_and_named(master, monkeypatch):
    rows = ledger_rows(master)
    rows[0]["activity"] = "改第一行"  # the others are kept as they were, checked as a block
    target = rows[40]
    assert isinstance(target["participants"], int)

    def edit(xml: str) -> str:
        r = target["_row"]
        return re.sub(rf'(<c r="F{r}"[^>]*><v>)[^<]*(</v>)', r"\g<1>999999\g<2>", xml, count=1)

    _tamper(monkeypatch, edit)
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert digest(master) == before
    assert f"台账!F{target['_row']}" in str(err.value)


def test_rows_missing_from_the_written_sheet_are_refused(master, monkeypatch):
    # The last rows vanish after encoding: calamine's grid ends above them.
    rows = ledger_rows(master)
    rows[0]["activity"] = "改第一行"
    last = rows[-1]["_row"]
    _tamper(monkeypatch, lambda xml: re.sub(rf'<row r="{last}"[^>]*>.*?</row>', "", xml, flags=re.S))
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert digest(master) == before and f"{last}" in str(err.value)


def test_new_rows_missing_from_the_written_sheet_are_refused(master, monkeypatch):
    rows = ledger_rows(master)
    added = [{**rows[0], "record_id": f"C01-{9000 + i}", "activity": f"新增{i}", "_row": None} for i in range(5)]
    last = rows[-1]["_row"] + 5
    _tamper(monkeypatch, lambda xml: re.sub(rf'<row r="{last}"[^>]*>.*?</row>', "", xml, flags=re.S))
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        FileBook(master).write([SheetWrite(schema.LEDGER, rows + added)])
    assert digest(master) == before and f"台账!A{last}" in str(err.value)


def test_a_calamine_failure_in_a_reading_thread_refuses_the_write(master, monkeypatch):
    real = verify.grid

    def failing(book, sheet):
        if sheet == schema.ISSUES.name:
            raise ValueError("simulated parse failure")
        return real(book, sheet)

    monkeypatch.setattr(verify, "grid", failing)
    before = digest(master)
    rows = ledger_rows(master)
    rows[0]["activity"] = "改第一行"
    issues = [{"sheet": LEDGER, "row": 2, "column": "活动内容", "message": "问题"}]
    with pytest.raises(WriteRefused) as err:
        FileBook(master).write([SheetWrite(schema.LEDGER, rows), SheetWrite(schema.ISSUES, issues)])
    assert digest(master) == before and schema.ISSUES.name in str(err.value)


# 5. xml:space="preserve" only where text has whitespace at an end: both paths agree.

EDGE_TEXTS = [" 前", "后 ", "\t制表", "换行\n", "\u3000全角空格", "不换行空格\xa0", "中 间", "a\nb", "  ", "无"]


def test_edge_whitespace_is_marked_alike_by_both_paths(demo_master, tmp_path, monkeypatch):
    old = ledger_rows(demo_master)
    rows = [{"record_id": f"C01-9{i:03d}", "date": date(2020, 6, 22), "committee_id": "C01", "project_id": "P01",
             "activity": text, "note": text, "reporter": "空格" + text if i % 2 else text.strip() or "x",
             "quantity": 1, "status": "进行中"}
            for i, text in enumerate(EDGE_TEXTS)]
    first = old[-1]["_row"] + 1
    numbers = range(first, first + len(rows))
    written = {}
    for bulk in (True, False):
        path = tmp_path / f"bulk-{bulk}.xlsx"
        shutil.copy2(demo_master, path)
        monkeypatch.setattr(owned, "BULK", bulk)
        FileBook(path).write([SheetWrite(schema.LEDGER, old + rows)])
        xml = sheet_xml(path, LEDGER)
        new = rows_by_number(xml)
        # The text elements (blank cells differ: the general path writes a styled empty cell).
        written[bulk] = [re.findall(r"<c r=\"[A-Z]+\d+\"[^>]*><is><t[^>]*>[^<]*</t>", new[r]) for r in numbers]
        grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(LEDGER).to_python(skip_empty_area=False)
        assert [grid[r - 1][4] for r in numbers] == [grid[r - 1][10] for r in numbers] == EDGE_TEXTS
        ws = openpyxl.load_workbook(path)[LEDGER]
        assert [ws.cell(r, 5).value for r in numbers] == EDGE_TEXTS
        marked = [(m.group(2), bool(m.group(1))) for r in numbers
                  for m in re.finditer(r"<t( xml:space=\"preserve\")?>([^<]*)</t>", new[r])]
        assert marked and all(flag == (text[:1].isspace() or text[-1:].isspace()) for text, flag in marked)
    assert written[True] == written[False]


# 6 is in tests/test_consolidate_review.py.

# 7. record_number without a regex; collect_seldom nested.

@given(committee=st.sampled_from(["C01", "C1", "C01-", "", "c01", "C.1"]),
       rest=st.text(alphabet="0123456789０１٣-C ab\n", max_size=6))
def test_record_number_equals_the_key_pattern(committee, rest):
    text = committee + rest
    match = re.fullmatch(rf"{re.escape(committee)}-(\d+)", text.strip())
    assert record_number(text, committee) == (int(match.group(1)) if match else None)


def test_collect_seldom_restores_the_collector_when_nested_and_on_error():
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert frozen == 0
    with pytest.raises(RuntimeError):
        with collect_seldom():
            outer = gc.get_threshold()
            assert outer[0] >= 10_000 and gc.get_freeze_count() > 0
            with collect_seldom():
                assert gc.get_threshold() == outer
            assert gc.get_threshold() == outer and gc.get_freeze_count() > 0  # the inner left it to us
            raise RuntimeError
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


def test_a_ledger_under_a_title_row(demo_master, tmp_path):
    # Staff inserted a title row: the header is on row 2, every row one lower.
    def title_above(xml: str) -> str:
        rows = rows_by_number(xml)
        body = "".join(rows[r] for r in sorted(rows))
        assert body in xml
        shifted = "".join(re.sub(r'(\br="[A-Z]*)(\d+)"', lambda m: f'{m.group(1)}{int(m.group(2)) + 1}"', rows[r])
                          for r in sorted(rows))
        title = '<row r="1"><c r="A1" t="inlineStr"><is><t>2020年健康街道台账</t></is></c></row>'
        return xml.replace(body, title + shifted)

    path = rewrite_part(demo_master, tmp_path / "title.xlsx", LEDGER, title_above)
    before = sheet_xml(path, LEDGER)
    rows = ledger_rows(path)
    assert rows[0]["_row"] == 3
    rows[10] = {**rows[10], "activity": "标题行之下"}
    rows.append({**rows[0], "record_id": "C01-9991", "_row": None})
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    got = ledger_rows(path)
    assert got[:-1] == rows[:-1] and got[-1]["_row"] == rows[-2]["_row"] + 1
    after = sheet_xml(path, LEDGER)
    assert rows_by_number(after)[1] == rows_by_number(before)[1]
    assert_unchanged_rows(before, after, set(rows_by_number(before)) - {2, rows[10]["_row"]})


def test_a_ledger_over_the_background_threshold_rewritten_twice(demo_master, tmp_path):
    # A grown ledger (over LARGE_PART as it is): added in bulk, then a few rows changed in the
    # middle; the unchanged rows go back as long runs, byte for byte, in a sound zip.
    path = tmp_path / "grown.xlsx"
    shutil.copy2(demo_master, path)
    rows = ledger_rows(path)
    added = [{**rows[i % len(rows)], "record_id": f"C01-{10000 + i}", "activity": f"增长{i}", "_row": None}
             for i in range(6000)]
    FileBook(path).write([SheetWrite(schema.LEDGER, rows + added)])
    assert len(sheet_xml(path, LEDGER).encode()) > package.LARGE_PART
    before = sheet_xml(path, LEDGER)
    rows = ledger_rows(path)
    changed = [5, 400, 401, 3000, len(rows) - 1]
    for i in changed:
        rows[i] = {**rows[i], "quantity": 10_000 + i}
    touched = {rows[i]["_row"] for i in changed} | {rows[2000]["_row"]}
    dropped = rows.pop(2000)["_row"]
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
    assert ledger_rows(path) == rows
    after = sheet_xml(path, LEDGER)
    old = rows_by_number(before)
    assert_unchanged_rows(before, after, set(old) - touched)
    assert dropped not in rows_by_number(after)


def test_cells_cleared_in_a_prefixed_worksheet_are_cleared(master, tmp_path):
    # A master saved by the Open XML SDK (x:-prefixed cells): clearing a date, a number and a
    # shared-string cell must write blanks (the old cells were read as blank and kept: refused).
    path = rewrite_part(master, tmp_path / "prefixed.xlsm", LEDGER, _prefixed)
    rows = ledger_rows(path)
    rows[3] = {**rows[3], "date": None, "participants": None, "status": None}
    rows[4] = {**rows[4], "quantity": 4.5, "reporter": "换人"}
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    assert ledger_rows(path) == rows
    ws = openpyxl.load_workbook(path)[LEDGER]
    r = rows[3]["_row"]
    assert [ws[f"{c}{r}"].value for c in "BFH"] == [None, None, None]


def test_libreoffice_reads_edge_whitespace_as_written(demo_master, tmp_path):
    # Text marked xml:space="preserve" only at edge whitespace: another office suite reads
    # every text back exactly (leading/trailing spaces, tabs, newlines, U+3000, NBSP).
    old = ledger_rows(demo_master)
    rows = [{**old[0], "record_id": f"C01-9{i:03d}", "activity": text, "_row": None} for i, text in enumerate(EDGE_TEXTS)]
    path = tmp_path / "edges.xlsx"
    shutil.copy2(demo_master, path)
    FileBook(path).write([SheetWrite(schema.LEDGER, old + rows)])
    converted = convert_with_libreoffice(path, "xlsx", tmp_path / "lo")
    ws = openpyxl.load_workbook(converted)[LEDGER]
    first = old[-1]["_row"] + 1
    assert [ws.cell(r, 5).value for r in range(first, first + len(rows))] == EDGE_TEXTS


EDIT_VALUES = st.sampled_from(["改过", "新的 活动", 7, 12.5, None, 0, date(2020, 5, 6), "=1+1", "+86"])
EDIT_KEYS = st.sampled_from(["activity", "participants", "quantity", "note", "reporter", "status", "date"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), layout=st.sampled_from(["plain", "prefixed", "spaced", "implicit-rows"]))
def test_random_edits_read_back_and_leave_the_other_rows_alone(decorated, tmp_path_factory, data, layout):
    """Changed, dropped, moved and added rows read back as written; every other row keeps its bytes."""
    edits = {"plain": lambda x: x, "prefixed": _prefixed,
             "spaced": lambda x: re.sub(r"(</row>)(<row )", r"\1\n  \2", x),
             "implicit-rows": lambda x: re.sub(r'<row r="\d+"', "<row", x)}
    path = rewrite_part(decorated, tmp_path_factory.mktemp("random") / "m.xlsm", LEDGER, edits[layout])
    before = sheet_xml(path, LEDGER)
    original = ledger_rows(path)
    rows = [dict(r) for r in original]
    n = len(rows)
    for i, key, value in data.draw(st.lists(st.tuples(st.integers(0, n - 1), EDIT_KEYS, EDIT_VALUES), max_size=12)):
        if key == "date" and not isinstance(value, date | None):
            value = None  # a number in a date column is refused by design
        rows[i][key] = value
    dropped = set(data.draw(st.lists(st.integers(0, n - 1), max_size=4, unique=True)))
    moved = {}
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, n - 1).filter(lambda i: i not in dropped))
        moved[i] = rows[i]["_row"]
        rows[i]["_row"] = original[-1]["_row"] + data.draw(st.integers(1, 5))
    added = [{**original[0], "record_id": f"C01-9{k:03d}", "activity": f"加{k}", "_row": None}
             for k in range(data.draw(st.integers(0, 3)))]
    write = [r for i, r in enumerate(rows) if i not in dropped] + added
    FileBook(path).write([SheetWrite(schema.LEDGER, write)])
    got = ledger_rows(path)

    assert len(got) == len(write)
    by_row = {r["_row"]: r for r in got}
    for r in write[:len(write) - len(added)]:
        assert by_row[r["_row"]] == r
    if added:
        assert [r["activity"] for r in got[-len(added):]] == [a["activity"] for a in added]
    touched = {original[i]["_row"] for i in range(n) if rows[i] != original[i] or i in dropped} | set(moved.values())
    assert_unchanged_rows(before, sheet_xml(path, LEDGER), set(rows_by_number(before)) - touched)


@given(st.lists(st.sampled_from([b"<f>", b"</f>", b"<f ", b"<f/>", b"<f\n", b"<formula>", b"<fill>", b"<x:f>",
                                 b"<x:formula>", b"<c r=\"A1\">", b"<v>1</v>", b"f", b"<", b":f", b"x"]), max_size=8))
def test_has_formula_equals_the_formula_pattern(pieces):
    from macros.book.ooxml import FORMULA_ELEMENT as _FORMULA
    from macros.book.ooxml import has_formula as _has_formula

    data = b"".join(pieces)
    assert _has_formula(data) == (_FORMULA.search(data) is not None)


def test_collect_seldom_overlapping_in_two_threads_restores_the_collector():
    # A server may run two jobs at once: the first in sets the threshold, the last out restores it
    # (else the one leaving second would put back the raised threshold for good).
    import threading

    threshold = gc.get_threshold()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen_inside = []

    def first():
        with collect_seldom():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second():
        first_in.wait(5)
        with collect_seldom():
            second_in.set()
            first_out.wait(5)
            seen_inside.append(gc.get_threshold()[0])  # still raised while this one runs

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen_inside and seen_inside[0] >= 10_000
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


@pytest.mark.parametrize("prefixed", [False, True])
def test_a_changed_setting_of_an_owned_sheet_is_refused(master, monkeypatch, prefixed):
    # Outside its rows an owned sheet keeps what staff set (here the frozen pane): the check cuts
    # the rows out as bytes, around Chinese text in them, with or without an "x:" prefix.
    if prefixed:
        parts = parts_of(master)
        part = sheet_parts(parts)[LEDGER]
        parts[part] = _prefixed(parts[part].decode()).encode()
        with zipfile.ZipFile(master) as src:
            infos = src.infolist()
        with zipfile.ZipFile(master, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in infos:
                dst.writestr(info, parts[info.filename])
    rows = ledger_rows(master)
    rows[0]["activity"] = "改第一行：健康讲座"
    _tamper(monkeypatch, lambda xml: xml.replace('state="frozen"', 'state="split"', 1))
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert digest(master) == before and "worksheet settings changed" in str(err.value)

    monkeypatch.undo()  # the same write, untampered, lands and keeps the pane
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert 'state="frozen"' in parts_of(master)[sheet_parts(parts_of(master))[LEDGER]].decode()
    assert read_workbook(master).frames[LEDGER]["activity"].iloc[0] == "改第一行：健康讲座"
