"""Consolidation attacked as committees and the office really use it: several runs, error cells,
duplicated keys, staff deleting rows between runs. Each case on real files into the demo master;
the master, 变更记录 and the receipt are checked after each run."""

from __future__ import annotations

import html
import os
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from macros import demo, schema
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders
from macros.forms import build_forms
from macros.normalise import code_text

from .conftest import convert_with_libreoffice
from .test_real_forms import inbox_of, ledger_of, type_rows  # type_rows("#N/A") types an error cell

LEDGER = schema.LEDGER.name
H = {c.key: c.header for c in schema.LEDGER.columns}
AS_OF = demo.DEMO_AS_OF


@pytest.fixture(scope="module")
def forms(demo_master, tmp_path_factory) -> dict[str, Path]:
    """C01's form prefilled with its records, and C01's blank form."""
    out = tmp_path_factory.mktemp("adversary-forms")
    [prefilled] = build_forms(demo_master, out / "prefilled", ["C01"], with_records=True).written
    [blank] = build_forms(demo_master, out / "blank", ["C01"]).written
    return {"prefilled": prefilled, "blank": blank}


def record(master: Path, key: str) -> dict:
    [found] = ledger_of(master).query("record_id == @key").to_dict("records")
    return found


def activity(text: str, **kw) -> dict:
    row = {"date": date(2020, 11, 12), "project_id": "P06", "activity": text, "participants": 40,
           "quantity": 40, "status": "进行中", "reporter": "陈佳", "in_bulletin": "否"}
    row.update(kw)
    return row


def receipt_text(result) -> str:
    return html.unescape(result.receipt.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- error values


def test_error_values_are_not_read_as_blanks_that_clear_the_master(master_copy, forms, tmp_path):
    """#N/A pasted as a value, and a formula whose result is #DIV/0! (saved by LibreOffice, as a
    clerk's office program would): calamine reads both blank. Merged, the first cleared the
    master's 参与人数 with no word to anyone, the second was called 未填写."""
    inbox = inbox_of(master_copy)
    before = {k: record(master_copy, k) for k in ("C01-0001", "C01-0002")}
    typed = type_rows(forms["prefilled"], tmp_path / "C01-错误值.xlsx", [], edits={
        "C01-0001": {"participants": "#N/A"},
        "C01-0002": {"quantity": "=1/0", "note": "改了备注"},
    })
    saved = convert_with_libreoffice(typed, "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo")
    shutil.copy2(saved, inbox / saved.name)

    run = consolidate(master_copy, as_of=AS_OF)
    [f] = run.files
    assert f.status == "partly"
    errors = {(p.row, p.column, p.code) for p in f.issues if p.is_error}
    assert errors == {(2, H["participants"], "error_value"), (3, H["quantity"], "error_value")}
    for key in before:  # neither row merged: the master holds what it held
        assert record(master_copy, key) == before[key]
    text = receipt_text(f)
    assert "#N/A" in text and "#DIV/0!" in text and "未填写" not in text


# ---------------------------------------------------------------- one key on two rows


def copy_record_row(form: Path, target: Path, key: str, above: bool, **changed) -> Path:
    """A clerk copies the row of ``key`` to fill a new record (Excel's "insert copied cells" puts
    the copy above the selected row) and edits the copy, leaving its 记录编号 in."""
    wb = openpyxl.load_workbook(form)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    at = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, col[H["record_id"]]).value == key)
    values = [c.value for c in ws[at]]
    copy = at if above else at + 1
    ws.insert_rows(copy)
    for c, value in enumerate(values, start=1):
        ws.cell(copy, c).value = value
    for k, v in changed.items():
        ws.cell(copy, col[H[k]]).value = v
    wb.save(target)
    return target


@pytest.mark.parametrize("above", [True, False], ids=["copy-above", "copy-below"])
def test_a_copied_row_keeping_its_key_overwrites_no_record(master_copy, forms, above):
    """The copy above its original in a prefilled form was merged as an update of the record (its
    new activity written over the old one), the original row, as given, raised nothing, and the
    receipt said 已接受 and blamed the office for the change."""
    inbox = inbox_of(master_copy)
    before = record(master_copy, "C01-0001")
    copy_record_row(forms["prefilled"], inbox / "C01-复制行.xlsx", "C01-0001", above,
                    activity="复制后改写的另一次活动", date=date(2020, 11, 10))

    run = consolidate(master_copy, as_of=AS_OF)
    [f] = run.files
    assert record(master_copy, "C01-0001") == before
    assert f.status == "partly" and f.rows_updated == f.rows_added == 0
    errors = {(p.row, p.column, p.code) for p in f.issues if p.is_error}
    assert errors == {(2, H["record_id"], "repeated_record_id"), (3, H["record_id"], "repeated_record_id")}
    assert not any(p.code == "master_kept" for p in f.issues)
    assert "第 2、3 行" in receipt_text(f)


def test_one_new_key_on_two_different_rows_adds_neither_and_the_same_row_twice_adds_it_once(
        master_copy, forms):
    inbox = inbox_of(master_copy)
    type_rows(forms["blank"], inbox / "C01-重复编号.xlsx", [
        activity("社区健身指导第一次", record_id="C01-0901"),
        activity("社区健身指导第二次", record_id="C01-0901"),
        activity("社区健身指导第三次", record_id="C01-0902"),
        activity("社区健身指导第三次", record_id="C01-0902"),
    ])
    run = consolidate(master_copy, as_of=AS_OF)
    [f] = run.files
    keys = set(ledger_of(master_copy)["record_id"])
    assert "C01-0901" not in keys and "C01-0902" in keys and f.rows_added == 1
    errors = {(p.row, p.code) for p in f.issues if p.is_error}
    assert errors == {(2, "repeated_record_id"), (3, "repeated_record_id"), (5, "duplicate_key")}


# ---------------------------------------------------------------- a record staff deleted


def delete_record(master: Path, key: str) -> None:
    """Staff delete a record's row in Excel (openpyxl stands in for Excel: this is the input)."""
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    at = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, col[H["record_id"]]).value == key)
    ws.delete_rows(at)
    wb.save(master)


def test_a_number_given_to_a_record_staff_deleted_is_never_given_again(master_copy, forms, tmp_path):
    """Staff deleted the last record consolidation added (as the receipt of a probable re-send
    tells them to). Its number went to the next new row, so the form prefilled before the deletion,
    sent back with a correction of that record, changed an unrelated activity."""
    inbox = inbox_of(master_copy)
    type_rows(forms["blank"], inbox / "C01-第一批.xlsx", [activity("社区健康讲座第一次")])
    [first] = consolidate(master_copy, as_of=AS_OF).files[0].changes
    gone = first.record_id
    [prefilled] = build_forms(master_copy, tmp_path / "prefilled", ["C01"], with_records=True).written
    delete_record(master_copy, gone)

    type_rows(forms["blank"], inbox / "C01-第二批.xlsx", [activity("社区健身操比赛")])
    [added] = consolidate(master_copy, as_of=AS_OF).files[0].changes
    assert added.record_id != gone and added.record_id > gone
    type_rows(prefilled, inbox / "C01-改正.xlsx", [], edits={gone: {"participants": 55}})
    run = consolidate(master_copy, as_of=AS_OF)
    assert record(master_copy, added.record_id)["activity"] == "社区健身操比赛"
    assert record(master_copy, added.record_id)["participants"] == 40
    assert run.files[0].rows_updated == 0


# ---------------------------------------------------------------- a file renamed during the run


def test_a_file_renamed_while_the_run_reads_the_inbox_is_left_for_the_next_run(master_copy, forms, monkeypatch):
    """A clerk renames "新建 Microsoft Excel 工作表.xlsx" after dropping it in the shared folder, while
    a run is reading the inbox. The run answered the vanished name with a 已退回 receipt for an
    unknown committee, told the office it was rejected and that the 已退回 folder was missing."""
    import macros.readahead as readahead

    inbox = inbox_of(master_copy)
    first = type_rows(forms["blank"], inbox / "C01-甲.xlsx", [activity("楼道健康宣传栏更新")])
    dropped = type_rows(forms["blank"], inbox / "新建 Microsoft Excel 工作表.xlsx", [activity("社区健身指导活动")])
    os.utime(first, (1_600_000_000, 1_600_000_000))  # read first
    read = readahead.read_for_consolidation

    def renamed_meanwhile(path: Path):
        if path == dropped:
            path.rename(inbox / "C01-乙.xlsx")
        return read(path)

    monkeypatch.setattr(readahead, "read_for_consolidation", renamed_meanwhile)  # fewer than 8 files: read here
    run = consolidate(master_copy, as_of=AS_OF)
    status = {f.file: f.status for f in run.files}
    assert status == {"C01-甲.xlsx": "accepted", dropped.name: "skipped"}
    assert run.exit_status == 0
    receipts = folders(master_copy, read_workbook(master_copy).settings).receipts
    assert [p.name for p in receipts.iterdir() if "新建" in p.name] == []

    monkeypatch.setattr(readahead, "read_for_consolidation", read)
    [again] = consolidate(master_copy, as_of=AS_OF).files
    assert (again.file, again.status, again.rows_added) == ("C01-乙.xlsx", "accepted", 1)


# ---------------------------------------------------------------- keys staff typed loosely


def add_record_by_hand(master: Path, values: dict) -> None:
    """Staff type a record below the ledger's last row in Excel (openpyxl stands in for Excel)."""
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    at = ws.max_row + 1
    for k, v in values.items():
        ws.cell(at, col[H[k]]).value = v
    wb.save(master)


@pytest.mark.parametrize("typed", ["c01-0028", "Ｃ０１－００２８", " C01-0028 "], ids=["lower", "full-width", "spaces"])
def test_a_key_staff_typed_loosely_in_the_master_is_the_record_a_form_names(master_copy, forms, typed):
    """The validator reads "c01-0028" in the master as C01-0028 and says it may stay; consolidation
    did not: the next number it gave a new row was a twin "C01-0028", and a committee's update of
    C01-0028 then landed on that new row instead of the record staff typed."""
    add_record_by_hand(master_copy, {
        "record_id": typed, "date": date(2020, 11, 2), "committee_id": "C01", "project_id": "P06",
        "activity": "手工补录的健康讲座", "quantity": 3, "status": "进行中", "source": "手工"})
    inbox = inbox_of(master_copy)
    new = type_rows(forms["blank"], inbox / "C01-新增.xlsx", [activity("社区健康跑活动")])
    update = type_rows(forms["blank"], inbox / "C01-改正.xlsx", [activity(
        "手工补录的健康讲座", record_id="C01-0028", date=date(2020, 11, 2), quantity=3, participants=30)])
    os.utime(new, (1_600_000_000, 1_600_000_000))
    os.utime(update, (1_600_000_001, 1_600_000_001))

    run = consolidate(master_copy, as_of=AS_OF)
    ledger = ledger_of(master_copy)
    [added] = run.files[0].changes
    assert added.record_id == "C01-0029"
    assert run.files[1].rows_updated == 1 and run.files[1].rows_added == 0
    by_key = ledger.assign(key=ledger["record_id"].map(lambda k: code_text(k))).set_index("key")
    assert not by_key.index.duplicated().any()
    assert by_key.loc["C01-0028", "participants"] == 30
    assert by_key.loc["C01-0028", "record_id"] == typed.strip()  # the key stays as staff typed it
    assert by_key.loc["C01-0029", "activity"] == "社区健康跑活动"


# ---------------------------------------------------------------- two forms, one record, one run


def change_log(master: Path) -> list[dict]:
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.CHANGES.name).to_python()
    headers = [c.header for c in schema.CHANGES.columns]
    return [dict(zip(headers, r)) for r in rows[1:] if r[0] != ""]


def test_two_forms_changing_one_record_in_one_run_the_later_stands_audited_and_its_receipt_says_so(
        master_copy, forms):
    """Two clerks of C01 each return the prefilled form with a different 参与人数 for C01-0001.
    The later file stood and both changes were in 变更记录, but neither receipt said that the
    other file had changed the same value: the first clerk's receipt reads as if 7 were kept."""
    inbox = inbox_of(master_copy)
    first = type_rows(forms["prefilled"], inbox / "C01-张.xlsx", [], edits={"C01-0001": {"participants": 7}})
    later = type_rows(forms["prefilled"], inbox / "C01-李.xlsx", [], edits={"C01-0001": {"participants": 9}})
    os.utime(first, (1_600_000_000, 1_600_000_000))
    os.utime(later, (1_600_000_001, 1_600_000_001))

    run = consolidate(master_copy, as_of=AS_OF)
    assert record(master_copy, "C01-0001")["participants"] == 9
    log = [(c["来源文件"], c["原值"], c["新值"]) for c in change_log(master_copy) if c["记录编号"] == "C01-0001"]
    assert log == [("C01-张.xlsx", 5, 7), ("C01-李.xlsx", 7, 9)]
    by_file = {f.file: f for f in run.files}
    assert not [p for p in by_file["C01-张.xlsx"].issues if p.code == "overrode"]
    [told] = [p for p in by_file["C01-李.xlsx"].issues if p.code == "overrode"]
    assert (told.row, told.column, told.key) == (2, H["participants"], "C01-0001")
    assert "C01-张.xlsx" in told.message and "7" in told.message
    assert "C01-张.xlsx" in receipt_text(by_file["C01-李.xlsx"])

    rerun = consolidate(master_copy, as_of=AS_OF)  # nothing left in the inbox: nothing changes
    assert not rerun.master_written and record(master_copy, "C01-0001")["participants"] == 9


# ---------------------------------------------------------------- a new activity under an old number


@pytest.mark.parametrize("form", ["blank", "prefilled"])
def test_a_new_activity_typed_under_an_existing_number_replaces_no_record(master_copy, forms, form):
    """A clerk numbers the new rows of a blank form C01-0001, C01-0002 (or types November's
    activities over the prefilled rows): each was merged as an update and replaced a February
    record whole, with 已接受 on the receipt. A real correction of the same record still merges."""
    inbox = inbox_of(master_copy)
    before = record(master_copy, "C01-0002")
    # The first under the record's own project: most committees work on a few projects.
    new = [activity("十一月社区健康跑", record_id="C01-0001", project_id=record(master_copy, "C01-0001")["project_id"]),
           activity("十一月控烟宣传", record_id="C01-0002", project_id="P04")]
    if form == "blank":
        rows, edits = [*new, activity("楼宇白领健康咨询义诊", record_id="C01-0003", date=date(2020, 3, 16),
                                       project_id="P03", participants=23, quantity=1)], None
    else:
        edits = {r.pop("record_id"): r for r in new} | {"C01-0003": {"participants": 23}}
        rows = []
    type_rows(forms[form], inbox / f"C01-{form}.xlsx", rows, edits)

    run = consolidate(master_copy, as_of=AS_OF)
    [f] = run.files
    errors = {(p.row, p.column, p.code) for p in f.issues if p.is_error}
    assert errors == {(2, H["record_id"], "another_record"), (3, H["record_id"], "another_record")}
    assert record(master_copy, "C01-0002") == before
    assert record(master_copy, "C01-0001")["activity"] == "楼宇白领健康咨询义诊"
    assert record(master_copy, "C01-0003")["participants"] == 23 and f.rows_updated == 1
    assert "养老护理员健康技能培训" in receipt_text(f)  # names the record the number belongs to


def test_a_record_corrected_in_date_and_wording_is_still_updated(master_copy, forms):
    """A real correction: the date fixed and the activity reworded (one contains the other, or
    most of its characters stay) is the same record, not another activity."""
    held = record(master_copy, "C01-0003")
    edits = {"C01-0003": {"date": date(2020, 3, 17), "activity": f"{held['activity']}（更正）"}}
    type_rows(forms["prefilled"], inbox_of(master_copy) / "C01-更正.xlsx", [], edits)
    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert not [p for p in f.issues if p.is_error] and f.rows_updated == 1
    assert record(master_copy, "C01-0003")["activity"] == f"{held['activity']}（更正）"


# ---------------------------------------------------------------- records on a copy of 台账


def copied_ledger(form: Path, target: Path, rows: list[dict], copies: int) -> Path:
    """A clerk copies the 台账 sheet (Excel names the copy "台账 (2)"), types the records on the
    copy and leaves the original empty."""
    filled = type_rows(form, target, rows)
    wb = openpyxl.load_workbook(filled)
    ledger = wb[LEDGER]
    for n in range(copies):
        wb.copy_worksheet(ledger).title = f"{LEDGER} ({n + 2})"
    for r in range(2, ledger.max_row + 1):
        for c in range(1, ledger.max_column + 1):
            ledger.cell(r, c).value = None
    wb.save(target)
    return target


def test_records_typed_on_a_copy_beside_an_empty_ledger_sheet_are_not_archived_unread(master_copy, forms):
    """The file was accepted as empty and archived, its two records never merged."""
    inbox = inbox_of(master_copy)
    copied_ledger(forms["blank"], inbox / "C01-副本.xlsx", [activity("副本里的健康讲座"), activity("副本里的义诊")], 1)
    copied_ledger(forms["blank"], inbox / "C01-两个副本.xlsx", [activity("两个副本里的讲座")], 2)

    run = consolidate(master_copy, as_of=AS_OF)
    by_file = {f.file: f for f in run.files}
    one, two = by_file["C01-副本.xlsx"], by_file["C01-两个副本.xlsx"]
    assert (one.status, one.rows_added) == ("accepted", 2)
    assert {"副本里的健康讲座", "副本里的义诊"} <= set(ledger_of(master_copy)["activity"])
    [note] = [p for p in one.issues if p.code == "sheet_read_as"]
    assert "“台账”是空的" in note.message and "台账 (2)" in note.message
    assert two.status == "rejected" and "“台账 (2)”、“台账 (3)”" in two.issues[0].message
    assert "两个副本里的讲座" not in set(ledger_of(master_copy)["activity"])


# ---------------------------------------------------------------- a hand-made form's own columns


def test_a_hand_made_forms_own_columns_are_named_in_the_receipt_as_not_merged(master_copy):
    """A clerk's workbook with columns of her own (活动地点, 联系电话) besides the contract's: the rows
    merged, what she typed in those columns (and beside the table) was dropped and the receipt said
    已接受, nothing more.
    A running number (序号) holds nothing to lose and is not mentioned."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = LEDGER
    keys = ["date", "committee_id", "project_id", "activity", "participants", "quantity", "status"]
    ws.append(["序号", *[H[k] for k in keys[:4]], "活动地点", *[H[k] for k in keys[4:]], "联系电话"])
    ws.append([1, date(2020, 11, 18), "C01", "P06", "社区健康义诊活动", "石门二路广场", 30, 30, "进行中", "13800000000"])
    ws.append([2, date(2020, 11, 19), "C01", "P06", "社区健康讲座活动", None, 20, 20, "进行中", None])
    ws.append([3, date(2020, 11, 20), "C01", "P06", "社区健身操活动", "张园", 25, 25, "进行中", None])
    ws["L3"] = "场地由物业提供"  # beside the table, under no header
    ws["M4"] = "  "
    wb.save(inbox_of(master_copy) / "C01-自制表.xlsx")

    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert (f.status, f.rows_added) == ("accepted", 3)
    notes = {p.column: p for p in f.issues if p.code == "column_not_merged"}
    assert set(notes) == {"活动地点", "联系电话", "L 列（无表头）"}
    assert notes["L 列（无表头）"].row == 3
    assert notes["活动地点"].row == 2 and "第 2、4 行" in notes["活动地点"].message
    assert notes["联系电话"].level == "警告" and "备注" in notes["联系电话"].suggestion
    assert "活动地点" in receipt_text(f)


def test_a_generated_forms_own_columns_are_not_warned_of_but_values_under_no_header_are(master_copy, forms,
                                                                                           tmp_path):
    """The form's guide says columns added on the right are the committee's own and not read: a
    warning on every submission would teach clerks to skip warnings. A value typed under no
    header is still named (it is most likely meant for the ledger)."""
    form = type_rows(forms["blank"], tmp_path / "C01-自己的列.xlsx", [activity("社区健康义诊（自己的列）")])
    wb = openpyxl.load_workbook(form)
    ws = wb[LEDGER]
    own = ws.max_column + 1
    ws.cell(1, own).value = "活动地点"
    ws.cell(2, own).value = "石门二路广场"
    ws.cell(2, own + 2).value = "场地由物业提供"
    wb.save(inbox_of(master_copy) / form.name)

    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert (f.status, f.rows_added) == ("accepted", 1)
    notes = [p.column for p in f.issues if p.code == "column_not_merged"]
    assert notes == [f"{openpyxl.utils.get_column_letter(own + 2)} 列（无表头）"]


# ---------------------------------------------------------------- a prefilled form's keys cleared


def edit_master(master: Path, key: str, **values) -> None:
    """Staff change a record in Excel (openpyxl stands in for Excel)."""
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    at = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, col[H["record_id"]]).value == key)
    for k, v in values.items():
        ws.cell(at, col[H[k]]).value = v
    wb.save(master)


def test_prefilled_records_whose_keys_the_clerk_cleared_are_not_added_again(master_copy, forms):
    """A clerk selects the 记录编号 column of the prefilled form and deletes it. Rows still equal to
    the master merged as unchanged, but C01-0002, whose activity staff had corrected since, was
    added again as a new record, silently (no look-alike: its activity differs), and C01-0003,
    whose 完成数量 the clerk corrected, was added as a new record instead of updating it."""
    edit_master(master_copy, "C01-0002", activity="养老护理员健康技能培训（更正）")
    before = len(ledger_of(master_copy))
    wb = openpyxl.load_workbook(forms["prefilled"])
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, col[H["record_id"]]).value == "C01-0003":
            ws.cell(r, col[H["quantity"]]).value = 3
        ws.cell(r, col[H["record_id"]]).value = None
    wb.save(inbox_of(master_copy) / "C01-清空编号.xlsx")

    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert len(ledger_of(master_copy)) == before and f.rows_added == 0
    assert record(master_copy, "C01-0002")["activity"] == "养老护理员健康技能培训（更正）"
    assert record(master_copy, "C01-0003")["quantity"] == 3 and f.rows_updated == 1
    cleared = {p.key for p in f.issues if p.code == "key_cleared"}
    assert cleared == {"C01-0002", "C01-0003"}


def test_a_record_whose_own_row_was_refused_is_not_taken_for_one_whose_key_was_cleared(master_copy, forms):
    """A prefilled record's row has an error (not merged), and a new row below, without a key, has
    its date, project and activity (a second session that day): the new row is not the record
    "with its key cleared" — it must not update the record the refused row still names."""
    held = record(master_copy, "C01-0001")
    second = {k: held[k] for k in ("date", "project_id", "activity")} | {
        "participants": held["participants"] + 17, "quantity": 1, "status": "进行中"}
    type_rows(forms["prefilled"], inbox_of(master_copy) / "C01-同日两场.xlsx", [second],
              {"C01-0001": {"participants": "很多"}})
    before = len(ledger_of(master_copy))

    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert record(master_copy, "C01-0001") == held
    assert f.rows_added == 1 and len(ledger_of(master_copy)) == before + 1
    assert not [p for p in f.issues if p.code == "key_cleared"]


# ---------------------------------------------------------------- damaged zips (right already)


def xlsx_then(path: Path, change) -> Path:
    """A two-record form written by xlsxwriter (shared strings, as Excel writes them), its zip
    parts then passed through ``change(name, data)`` (None drops the part)."""
    import zipfile

    import xlsxwriter

    plain = path.with_suffix(".plain.xlsx")
    wb = xlsxwriter.Workbook(str(plain))
    ws = wb.add_worksheet(LEDGER)
    keys = ["date", "committee_id", "project_id", "activity", "quantity", "status"]
    ws.write_row(0, 0, [H[k] for k in keys])
    ws.write_row(1, 0, ["2020-11-18", "C01", "P06", "损坏文件里的活动一", 10, "进行中"])
    ws.write_row(2, 0, ["2020-11-19", "C01", "P06", "损坏文件里的活动二", 12, "进行中"])
    wb.close()
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = change(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    plain.unlink()
    return path


def _huge_dimension(name: str, data: bytes) -> bytes:
    import re

    return re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:XFD1048576"/>', data) if "worksheets/" in name else data


@pytest.mark.parametrize(("change", "status", "added", "said"), [
    (lambda name, data: None if name == "xl/sharedStrings.xml" else data, "rejected", 0, "无法读取"),
    (_huge_dimension, "accepted", 2, ""),
], ids=["no-shared-strings", "dimension-A1:XFD1048576"])
def test_a_damaged_zip_is_returned_with_what_to_do_or_read_as_it_is(master_copy, change, status, added, said):
    inbox = inbox_of(master_copy)
    xlsx_then(inbox / "C01-损坏.xlsx", change)
    before = master_copy.read_bytes()
    [f] = consolidate(master_copy, as_of=AS_OF).files
    assert (f.status, f.rows_added) == (status, added)
    if said:
        assert said in f.issues[0].message and "重新保存" in f.issues[0].suggestion
        assert master_copy.read_bytes() == before and f.moved_to.parent.name == "已退回"
    else:
        assert {"损坏文件里的活动一", "损坏文件里的活动二"} <= set(ledger_of(master_copy)["activity"])


def test_a_form_of_another_street_is_returned_whole_not_filed_under_our_committee_of_its_code(
        master_copy, tmp_path):
    """Every street numbers its committees C01…: a form another street's master made for its C09
    (南阳居委会) dropped in our inbox would be merged under our C09. Its hidden info names the
    committee it was made for: a name that is not ours returns it whole, saying both names."""
    rows = demo.demo_rows()
    theirs = tmp_path / "南京西路" / "healthbook.xlsx"
    theirs.parent.mkdir()
    rows[schema.COMMITTEES.name] = [dict(c, name="南阳居委会") if c["committee_id"] == "C09" else c
                                    for c in rows[schema.COMMITTEES.name]]
    from macros.book.build import build_workbook

    build_workbook(theirs, rows)
    build_forms(theirs, tmp_path / "their-forms", ["C09"])
    ours = dict(zip(*(read_workbook(master_copy)[schema.COMMITTEES.name][k] for k in ("committee_id", "name"))))
    inbox = inbox_of(master_copy)
    [form] = (tmp_path / "their-forms").iterdir()
    type_rows(form, inbox / form.name, [new_row("南阳社区体检")])
    before = len(ledger_of(master_copy))

    run = consolidate(master_copy)

    [result] = run.files
    assert result.status == "rejected" and result.rows_added == 0 and len(ledger_of(master_copy)) == before
    [problem] = result.issues
    assert problem.code == "committee_name"
    assert "南阳居委会" in problem.message and ours["C09"] in problem.message, problem.message
    receipt = html.unescape(result.receipt.read_text(encoding="utf-8"))
    assert "南阳居委会" in receipt and "其他街道" in receipt

    # Our own C09 form is still ours.
    build_forms(master_copy, tmp_path / "our-forms", ["C09"])
    [own] = (tmp_path / "our-forms").iterdir()
    type_rows(own, inbox / own.name, [new_row("育明社区体检")])
    assert consolidate(master_copy).files[0].rows_added == 1


def new_row(activity: str) -> dict:
    return {"date": date(2020, 11, 18), "project_id": "P06", "activity": activity, "participants": 30,
            "quantity": 30, "status": "进行中", "reporter": "王敏", "in_bulletin": "否"}
