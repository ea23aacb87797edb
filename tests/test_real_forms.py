"""Forms as committees really send them back: filled and saved by LibreOffice (standing in for WPS),
typed by hand, sorted and filtered, renamed, in the wrong format — each consolidated into a real
master, the outcome checked in the master, the change log and the committee's receipt."""

from __future__ import annotations

import html
import shutil
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from macros import demo, schema
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders
from macros.forms import build_forms

from .conftest import convert_many_with_libreoffice, convert_with_libreoffice
from .hostile import encrypted_workbook

LEDGER = schema.LEDGER.name
H = {c.key: c.header for c in schema.LEDGER.columns}
AS_OF = demo.DEMO_AS_OF
XLSX = "xlsx:Calc MS Excel 2007 XML"


@pytest.fixture(scope="module")
def forms(demo_master, tmp_path_factory) -> dict[str, Path]:
    """C01's form prefilled with its records, and a blank one for C02 and C03."""
    out = tmp_path_factory.mktemp("real-forms")
    [prefilled] = build_forms(demo_master, out / "prefilled", ["C01"], with_records=True).written
    blank = build_forms(demo_master, out / "blank", ["C02", "C03"]).written
    return {"C01": prefilled, "C02": blank[0], "C03": blank[1]}


def inbox_of(master: Path) -> Path:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    return inbox


def ledger_of(master: Path):
    return read_workbook(master, [schema.LEDGER])[LEDGER]


def type_rows(form: Path, target: Path, rows: list[dict], edits: dict[str, dict] | None = None) -> Path:
    """Type ``rows`` below a form's last record and ``edits`` (by 记录编号) into its records, as a
    committee would (openpyxl stands in for the keyboard; LibreOffice saves it afterwards)."""
    wb = openpyxl.load_workbook(form)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    key_col = col[H["record_id"]]
    last = max((r for r in range(2, ws.max_row + 1) if ws.cell(r, key_col).value is not None), default=1)
    for key, values in (edits or {}).items():
        at = next(r for r in range(2, last + 1) if ws.cell(r, key_col).value == key)
        for k, v in values.items():
            ws.cell(at, col[H[k]]).value = v
    for r, values in enumerate(rows, start=last + 1):
        for k, v in values.items():
            ws.cell(r, col[H[k]]).value = v
    wb.save(target)
    return target


def activity(day: int, text: str, **kw) -> dict:
    row = {"date": date(2020, 11, day), "project_id": "P06", "activity": text, "participants": 40 + day,
           "quantity": 12.5, "status": "进行中", "reporter": "陈佳", "in_bulletin": "是"}
    row.update(kw)
    return row


def run_and_check_receipts(master: Path):
    run = consolidate(master, as_of=AS_OF)
    for f in run.files:
        assert f.receipt is not None and f.receipt.exists(), f.file
    return run


# ---------------------------------------------------------------- saved by LibreOffice


def test_forms_saved_by_libreoffice_merge_as_the_same_records_and_a_rerun_changes_nothing(
        master_copy, forms, tmp_path):
    ledger = ledger_of(master_copy).set_index("record_id")
    own = [k for k in ledger.index if k.startswith("C01-")]
    edited = own[1]
    typed = tmp_path / "typed"
    typed.mkdir()
    c01 = type_rows(forms["C01"], typed / "C01-十一月.xlsx", [activity(12, "LibreOffice 填的新活动", project_id="P02")],
                    edits={edited: {"note": "居委会补充说明", "participants": 77}})
    c02 = type_rows(forms["C02"], typed / "C02-十一月.xlsx",
                    [activity(3, "上门体检（一）"), activity(4, "上门体检（二）", quantity=800, status="已完成",
                                                          in_bulletin="否", date=datetime(2020, 11, 4))])
    saved = convert_many_with_libreoffice([c01, c02], XLSX, tmp_path / "lo")
    inbox = inbox_of(master_copy)
    for path in saved:
        shutil.copy2(path, inbox / path.name)

    run = run_and_check_receipts(master_copy)
    by_file = {f.file: f for f in run.files}
    first, second = by_file["C01-十一月.xlsx"], by_file["C02-十一月.xlsx"]
    # The prefilled records came back through LibreOffice unchanged: only the committee's edits count.
    assert (first.status, first.rows_added, first.rows_updated, first.rows_unchanged) == (
        "accepted", 1, 1, len(own) - 1), first.issues
    assert not [p for p in first.issues if p.level == schema.LEVEL_ERROR or p.code != "future_date"]
    assert (second.status, second.rows_added) == ("accepted", 2), second.issues
    after = ledger_of(master_copy)
    rows = after.set_index("record_id")
    assert (rows.loc[edited, "note"], rows.loc[edited, "participants"]) == ("居委会补充说明", 77)
    new = after[after["source"] == "C02-十一月.xlsx"].set_index("activity")
    # Dates, numbers and dropdown values as typed; the blank 居委会编号 from the hidden info sheet.
    assert list(new["date"]) == [date(2020, 11, 3), date(2020, 11, 4)]
    assert list(new["quantity"]) == [12.5, 800] and list(new["participants"]) == [43, 44]
    assert list(new["status"]) == ["进行中", "已完成"] and list(new["in_bulletin"]) == ["是", "否"]
    assert set(new["committee_id"]) == {"C02"} and all(k.startswith("C02-") for k in new["record_id"])
    changes = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    assert {(c, str(n)) for k, c, n in zip(changes["record_id"], changes["column"], changes["new"])
            if k == edited} == {(H["note"], "居委会补充说明"), (H["participants"], "77")}

    # The same files sent again: nothing changes, the master is not even written.
    written = master_copy.read_bytes()
    for path in saved:
        shutil.copy2(path, inbox / path.name)
    again = consolidate(master_copy, as_of=AS_OF)
    assert (again.rows_added, again.rows_updated, again.master_written) == (0, 0, False)
    assert [f.rows_unchanged for f in again.files] == [len(own) + 1, 2]
    assert master_copy.read_bytes() == written


def test_xls_and_ods_saved_by_libreoffice_are_rejected_with_what_to_do_and_each_gets_its_receipt(
        master_copy, forms, tmp_path):
    filled = type_rows(forms["C03"], tmp_path / "C03-报送.xlsx", [activity(5, "控烟宣传")])
    inbox = inbox_of(master_copy)
    for fmt, name in (("xls:MS Excel 97", "xls"), ("ods", "ods")):
        converted = convert_with_libreoffice(filled, fmt, tmp_path / name)
        shutil.copy2(converted, inbox / converted.name)
    shutil.copy2(filled, inbox / "C03-报送.et")  # WPS's own format (its bytes do not matter: refused by name)
    before = master_copy.read_bytes()

    run = run_and_check_receipts(master_copy)
    assert {f.file: f.status for f in run.files} == {
        "C03-报送.xls": "rejected", "C03-报送.ods": "rejected", "C03-报送.et": "rejected"}
    advice = {Path(f.file).suffix: f.issues[0] for f in run.files}
    assert "97-2003" in advice[".xls"].message and "另存为" in advice[".xls"].suggestion
    assert "LibreOffice" in advice[".ods"].message and "Excel 2007-365 (.xlsx)" in advice[".ods"].suggestion
    assert "WPS" in advice[".et"].message and "*.xlsx" in advice[".et"].suggestion
    assert master_copy.read_bytes() == before
    # Three files with one name: three receipts (they used to overwrite each other), each saying what to do.
    receipts = sorted(folders(master_copy, {}).receipts.glob("*.html"))
    assert len(receipts) == 3
    for f in run.files:
        page = html.unescape(f.receipt.read_text(encoding="utf-8"))
        assert f.file in page and f.issues[0].suggestion in page


def test_a_form_saved_as_xlsm_sorted_and_filtered_merges_the_same_records(master_copy, forms, tmp_path):
    # The committee sorted its prefilled form by 活动内容, left the filter on and hid two rows.
    wb = openpyxl.load_workbook(forms["C01"])
    ws = wb[LEDGER]
    width = len(schema.FORM_LEDGER_COLUMNS)
    records = [[c.value for c in row] for row in ws.iter_rows(min_row=2, max_col=width)]
    records = sorted((r for r in records if any(v is not None for v in r)), key=lambda r: str(r[4]))
    for r, values in enumerate(records, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c).value = value
    ws.auto_filter.ref = f"A1:{openpyxl.utils.get_column_letter(width)}{len(records) + 1}"
    for r in (3, 5):
        ws.row_dimensions[r].hidden = True
    sorted_form = tmp_path / "C01-排序.xlsx"
    wb.save(sorted_form)
    saved = convert_with_libreoffice(sorted_form, "xlsm:Calc MS Excel 2007 VBA XML", tmp_path / "lo")
    assert saved.suffix == ".xlsm"
    shutil.copy2(saved, inbox_of(master_copy) / saved.name)
    before = master_copy.read_bytes()
    [result] = run_and_check_receipts(master_copy).files
    assert (result.status, result.rows_added, result.rows_updated, result.rows_unchanged) == (
        "accepted", 0, 0, len(records)), result.issues
    assert master_copy.read_bytes() == before


def test_a_form_whose_hidden_info_sheet_was_deleted(master_copy, forms, tmp_path):
    inbox = inbox_of(master_copy)
    for name, committee in (("C03-写了编号.xlsx", "C03"), ("C03-没写编号.xlsx", None)):
        wb = openpyxl.load_workbook(type_rows(forms["C03"], tmp_path / name, [
            activity(6, f"健康讲座{name}", committee_id=committee)]))
        del wb[schema.FORM_INFO.name]
        wb.save(inbox / name)
    run = run_and_check_receipts(master_copy)
    by_file = {f.file: f for f in run.files}
    assert (by_file["C03-写了编号.xlsx"].status, by_file["C03-写了编号.xlsx"].rows_added) == ("accepted", 1)
    lost = by_file["C03-没写编号.xlsx"]
    assert lost.status == "rejected" and "无法确定" in lost.issues[0].message
    assert H["committee_id"] in lost.issues[0].suggestion


# ---------------------------------------------------------------- typed by hand


def hand_made(path: Path, committee: str = "C02") -> Path:
    """A ledger a clerk typed in a plain workbook: a title, a note, her own header row (another order,
    stray and full-width spaces, a unit in brackets, columns of her own), blank rows, dates and
    numbers typed as text, codes typed in full width or lower case, a merged cell and a 合计 row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = LEDGER
    ws.append(["恒德里居委会 2020年6月 健康街道工作台账"])
    ws.merge_cells("A1:J1")
    ws.append(["填报人：陈佳"])
    ws.append(["序号", "活\u3000动内容 ", " 日期", "项目编号", "完成数量", "状态 ", "参与人数（人）",
               "居委会编号", "填报人", "备注", "联系电话"])
    wide = committee.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)}).lower()  # ｃ０２
    rows = [
        [1, "为老年人上门理发", "6.22", "P02", "800余次", "进行中", "４２", committee, "陈佳", None, "62000000"],
        [2, "护理员急救技能实操培训", "6月22日", "P05", "30万", "已完成", 8, committee, "陈佳"],
        [],
        [3, "控烟宣传进楼宇", "2020/6/22", "p04", "１２", "已完成", 30, wide, "陈佳", "编号是全角"],
        [4, "健康讲座进社区", "2020年6月22日", "P06", 5, "进行中", 12, committee, "陈佳"],
        [5, None, datetime(2020, 6, 23), "P06", 6, "进行中", 12, committee, "陈佳", "活动内容与上一行合并"],
        [], [],
        [None, "合计", None, None, "=SUM(E4:E10)", None, "=SUM(G4:G10)"],
    ]
    for values in rows:
        ws.append(values)
    ws.merge_cells("B8:B9")
    wb.create_sheet("草稿").append(["随便记的"])
    wb.save(path)
    return path


@pytest.fixture(scope="module")
def hand_files(tmp_path_factory) -> tuple[Path, Path]:
    """The hand-made workbook as openpyxl wrote it and as LibreOffice saved it."""
    folder = tmp_path_factory.mktemp("hand")
    typed = hand_made(folder / "恒德里手工表.xlsx")
    return typed, convert_with_libreoffice(typed, XLSX, folder / "lo")


@pytest.mark.parametrize("which", ["typed", "saved by LibreOffice"])
def test_a_hand_typed_workbook_is_read_as_its_clerk_meant_it(master_copy, hand_files, which):
    source = hand_files[0] if which == "typed" else hand_files[1]
    inbox = inbox_of(master_copy)
    shutil.copy2(source, inbox / "恒德里手工表.xlsx")
    [result] = run_and_check_receipts(master_copy).files
    issues = {(p.row, p.code): p for p in result.issues}
    # Accepted row by row: the merged cell's second row is the one error, named with its merge.
    assert (result.status, result.committee_id, result.rows_added) == ("partly", "C02", 4), result.issues
    [error] = [p for p in result.issues if p.is_error]
    assert (error.row, error.column, error.code) == (9, H["activity"], "required")
    assert "合并单元格 B8:B9" in error.message and "取消" in error.suggestion
    # The 合计 row is no record and no error: one warning says it was left out.
    assert not [p for p in result.issues if p.row == 12 and p.code != "totals_row"]
    assert "合计行" in issues[(12, "totals_row")].message
    # "参与人数（人）" is the 参与人数 column (it used to be dropped as a column of the clerk's own).
    assert issues[(3, "header_read_as")].column == H["participants"]
    added = ledger_of(master_copy).query("source == '恒德里手工表.xlsx'").set_index("activity")
    assert list(added["participants"]) == ["４２", 8, 30, 12]  # as typed; the validator reads ４２ as 42
    assert list(added["date"]) == ["6.22", "6月22日", "2020/6/22", "2020年6月22日"]
    assert list(added["quantity"]) == ["800余次", "30万", "１２", 5]
    # The full-width ｃ０２ row is C02's: numbered C02-…, never "ｃ０２-0001".
    assert set(added["committee_id"]) == {"C02"} and all(k.startswith("C02-") for k in added["record_id"])
    assert "合计" not in added.index and "随便记的" not in added.index
    receipt = html.unescape(result.receipt.read_text(encoding="utf-8"))
    assert "合并单元格 B8:B9" in receipt and "合计行" in receipt and "新编号" in receipt
    assert "“记录编号”列填上上面的编号" in receipt  # how to correct a record the form has no key for

    # A value read differently from how it was typed: the receipt does not invite an edit that,
    # sent again without a 记录编号, would add the row twice; it says how to correct it instead.
    read_as = issues[(4, "normalised")]
    key = added.loc["为老年人上门理发", "record_id"]
    assert read_as.column == H["date"] and "不必修改" in read_as.suggestion
    assert read_as.key == key  # the receipt's 记录编号 column names the record the row became
    assert f"加一列“{H['record_id']}”，在这一行填上 {key}" in read_as.suggestion

    # Sent again unchanged: nothing is added, the merged cell is still the one error.
    written = master_copy.read_bytes()
    shutil.copy2(source, inbox / "恒德里手工表.xlsx")
    [again] = consolidate(master_copy, as_of=AS_OF).files
    assert (again.rows_added, again.rows_updated, again.rows_unchanged) == (0, 0, 4)
    assert master_copy.read_bytes() == written

    # Corrected as the receipt says (the key in a new column, the date retyped): an update, no twin.
    wb = openpyxl.load_workbook(source)
    ws = wb[LEDGER]
    ws.cell(3, 12).value = H["record_id"]
    ws.cell(4, 12).value = key
    ws.cell(4, 3).value = datetime(2020, 6, 22)
    wb.save(inbox / "恒德里手工表.xlsx")
    [fixed] = consolidate(master_copy, as_of=AS_OF).files
    assert (fixed.rows_added, fixed.rows_updated, fixed.rows_unchanged) == (0, 1, 3), fixed.issues
    assert ledger_of(master_copy).set_index("record_id").loc[key, "date"] == date(2020, 6, 22)


def test_codes_typed_in_full_width_or_lower_case_name_the_same_committee_and_record(master_copy, forms, tmp_path):
    ledger = ledger_of(master_copy).set_index("record_id")
    key = next(k for k in ledger.index if k.startswith("C01-"))
    number = key.split("-")[1]
    typed_key = f"c01-{number}"  # lower case, as typed without caps
    inbox = inbox_of(master_copy)
    # A correction of an existing record typed with a lower-case key, and a new row whose
    # committee is typed in full width: one update, one addition, no twin of the record.
    type_rows(forms["C01"], inbox / "C01-改正.xlsx", [activity(9, "全角编号的新行", committee_id="Ｃ０１")],
              edits={key: {"record_id": typed_key, "note": "小写编号改的"}})
    [result] = run_and_check_receipts(master_copy).files
    assert (result.status, result.rows_added, result.rows_updated) == ("accepted", 1, 1), result.issues
    after = ledger_of(master_copy)
    assert len(after) == len(ledger) + 1
    assert after.set_index("record_id").loc[key, "note"] == "小写编号改的"
    new = after[after["activity"] == "全角编号的新行"].iloc[0]
    assert new["committee_id"] == "C01" and new["record_id"].startswith("C01-")


# A notes sheet named like the ledger ("台账填写说明", a contract header in one of its cells) is
# not taken for it: neither beside the copy, nor when the records are on Sheet1.
@pytest.mark.parametrize("with_notes", [False, True])
def test_a_copied_ledger_sheet_is_read_and_a_missing_one_says_which_sheets_there_are(
        master_copy, forms, tmp_path, with_notes):
    inbox = inbox_of(master_copy)
    wb = openpyxl.load_workbook(type_rows(forms["C03"], tmp_path / "C03.xlsx", [activity(7, "复制出来的台账")]))
    wb[LEDGER].title = f"{LEDGER} (2)"  # Excel's name for a copy: the original was deleted
    if with_notes:
        notes = wb.create_sheet(f"{LEDGER}填写说明")
        notes.append(["各列怎么填："])
        notes.append([H["date"], "填活动当天"])
    wb.save(inbox / "C03-副本.xlsx")
    wb[f"{LEDGER} (2)"].title = "Sheet1"
    wb.save(inbox / "C03-没有台账.xlsx")
    run = run_and_check_receipts(master_copy)
    by_file = {f.file: f for f in run.files}
    copied = by_file["C03-副本.xlsx"]
    assert (copied.status, copied.rows_added) == ("accepted", 1), copied.issues
    assert [p.code for p in copied.issues] == ["sheet_read_as"] and f"{LEDGER} (2)" in copied.issues[0].message
    missing = by_file["C03-没有台账.xlsx"]
    # "no 台账, these are the sheets", not the notes sheet's missing columns under the name 台账
    assert missing.status == "rejected" and "Sheet1" in missing.issues[0].message
    assert "缺少必填列" not in missing.issues[0].message
    assert "改名" in missing.issues[0].suggestion and "healthbook" not in missing.issues[0].suggestion


# ---------------------------------------------------------------- unreadable files


def test_encrypted_empty_and_truncated_files_are_rejected_with_what_to_do_and_the_run_goes_on(
        master_copy, forms, tmp_path):
    inbox = inbox_of(master_copy)
    good = type_rows(forms["C02"], inbox / "C02-正常.xlsx", [activity(8, "照常汇总的一行")])
    (inbox / "C02-加密.xlsx").write_bytes(encrypted_workbook())
    (inbox / "C02-空.xlsx").write_bytes(b"")
    data = good.read_bytes()
    (inbox / "C02-截断.xlsx").write_bytes(data[: len(data) // 3])
    run = run_and_check_receipts(master_copy)
    by_file = {f.file: f for f in run.files}
    assert by_file["C02-正常.xlsx"].rows_added == 1 and run.master_written
    expected = {"C02-加密.xlsx": ("密码", "去掉打开密码"), "C02-空.xlsx": ("0 字节", "重新保存"),
                "C02-截断.xlsx": ("不完整", "另存为")}
    for name, (why, fix) in expected.items():
        [problem] = by_file[name].issues
        assert by_file[name].status == "rejected" and problem.row is None
        assert why in problem.message and fix in problem.suggestion, problem
        assert by_file[name].moved_to.parent.name == folders(master_copy, {}).rejected.name


def test_only_the_header_row_is_read_loosely(tmp_path):
    from macros.submission import read_submission

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = LEDGER
    ws.append([H["date"], H["committee_id"], H["project_id"], H["activity"], "完成数量（人次）", H["status"], H["note"]])
    ws.append([date(2020, 6, 22), "C02", "P06", "上门体检", 12, "进行中", "完成数量（见附件）"])
    wb.save(tmp_path / "C02.xlsx")
    sub = read_submission(tmp_path / "C02.xlsx")
    assert sub.aliased == [(1, "完成数量（人次）", H["quantity"])]
    [row] = sub.rows
    values = dict(zip(schema.LEDGER.keys, row))
    assert values["quantity"] == 12 and values["note"] == "完成数量（见附件）"  # a record's text is never renamed


def test_files_whose_receipt_names_meet_each_get_their_own_receipt(master_copy, forms, tmp_path):
    inbox = inbox_of(master_copy)
    type_rows(forms["C03"], inbox / "填报表-xls.xlsx", [activity(7, "名字像旧格式的表")])
    (inbox / "填报表.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)  # an old .xls
    type_rows(forms["C03"], inbox / "填报表ＡＢ.xlsx", [activity(8, "全角文件名")])
    type_rows(forms["C03"], inbox / "填报表AB.xlsx", [activity(9, "半角文件名")])
    run = run_and_check_receipts(master_copy)
    receipts = [f.receipt for f in run.files]
    assert len(set(receipts)) == 4 and all(r.exists() for r in receipts)
    for f in run.files:  # each receipt is about its own file
        assert f"文件：{f.file}" in f.receipt.read_text(encoding="utf-8")
