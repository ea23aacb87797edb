"""A committee re-sends its cumulative form, records it never edited included, after the office
corrected one of them in the master by hand (Excel: nothing records that edit). The old value sent
again must not undo the correction; a value the committee really changed still applies. Real files
through ``consolidate`` (and the CLI): plain workbooks typed by hand, forms from ``healthbook forms``,
the file beside the master deleted or damaged, a busy master, and ``healthbook restore``."""

from __future__ import annotations

import html
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import consolidate, sent_file, summary_text

from .conftest import cli_json
from .test_consolidate_adversary import edit_master
from .test_real_forms import inbox_of, ledger_of, type_rows

H = {c.key: c.header for c in schema.LEDGER.columns}
PLAIN_KEYS = ("record_id", "date", "committee_id", "project_id", "activity", "participants", "quantity", "status")
RECORD = "C01-0050"  # a number the committee typed itself (the demo's C01 records end at C01-0027)
T1, T2, T3, T4 = (datetime(2020, 11, d, 9, 0) for d in (16, 17, 18, 19))


def plain_workbook(path: Path, rows: list[dict]) -> Path:
    """A workbook a committee clerk typed by hand: a 台账 sheet with the contract's headers, no form."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = schema.LEDGER.name
    ws.append([H[k] for k in PLAIN_KEYS])
    for row in rows:
        ws.append([row.get(k) for k in PLAIN_KEYS])
    wb.save(path)
    return path


def haircut(**kw) -> dict:
    row = {"record_id": RECORD, "date": date(2020, 11, 3), "committee_id": "C01", "project_id": "P02",
           "activity": "为老年人上门理发", "participants": 30, "quantity": 3, "status": "进行中"}
    row.update(kw)
    return row


def value(master: Path, key: str, column: str):
    [found] = ledger_of(master).query("record_id == @key")[column].tolist()
    return found


def change_lines(master: Path, key: str) -> list[dict]:
    log = read_workbook(master, [schema.CHANGES])[schema.CHANGES.name]
    return [r for r in log.to_dict("records") if r["record_id"] == key]


@pytest.fixture
def first_sent(master_copy) -> Path:
    """C01's cumulative workbook consolidated once (C01-0050: 参与人数 30), then the office corrects
    C01-0050's 参与人数 to 300 in Excel."""
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut()])
    first = consolidate(master_copy, now=T1)
    assert first.rows_added == 1 and value(master_copy, RECORD, "participants") == 30
    edit_master(master_copy, RECORD, participants=300)
    return master_copy


def test_a_plain_workbook_sent_again_keeps_the_offices_correction_and_says_so(first_sent, capsys):
    master = first_sent
    resent = [haircut(), haircut(record_id=None, activity="为残疾人上门理发", participants=12)]
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", resent)

    assert main(["consolidate", str(master)]) == 0
    summary = capsys.readouterr().out
    assert value(master, RECORD, "participants") == 300
    assert not [r for r in change_lines(master, RECORD) if r["action"] == "修改"]  # nothing to audit
    # The Chinese summary and the committee's receipt name the value kept.
    assert "新增 1、更新 0、未变化 1" in summary
    assert f"{RECORD}（{H['participants']}）" in summary and "保留了主工作簿的值" in summary
    receipts = sorted((master.parent / "回执").glob("回执-C01-C01-累计-*.html"))
    assert len(receipts) == 2
    text = html.unescape(receipts[-1].read_text(encoding="utf-8"))
    assert f"记录 {RECORD}：“{H['participants']}”您这次填的仍是 30，主工作簿中现为 300" in text
    assert "以主工作簿为准" in text


def test_a_value_the_committee_really_changed_is_applied(first_sent):
    master = first_sent
    # 完成数量 changed by the committee; 参与人数 sent again as before.
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(quantity=5)])
    [f] = consolidate(master, now=T2).files
    assert value(master, RECORD, "quantity") == 5 and value(master, RECORD, "participants") == 300
    assert f.rows_updated == 1 and [p.column for p in f.issues if p.code == "resent_kept"] == [H["participants"]]
    # Now the committee corrects 参与人数 itself (differs from what it sent last): applied and audited.
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(quantity=5, participants=35)])
    [f] = consolidate(master, now=T3).files
    assert value(master, RECORD, "participants") == 35 and f.rows_updated == 1
    assert not [p for p in f.issues if p.code == "resent_kept"]
    audit = {(r["column"], str(r["old"]), str(r["new"])) for r in change_lines(master, RECORD) if r["action"] == "修改"}
    assert (H["participants"], "300", "35") in audit and (H["quantity"], "3", "5") in audit


def test_a_rerun_on_the_same_files_changes_nothing(first_sent):
    master = first_sent
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(), haircut(record_id=None, activity="义剪")])
    run = consolidate(master, now=T2)
    assert run.master_written and value(master, RECORD, "participants") == 300
    written, remembered = master.read_bytes(), sent_file(master).read_bytes()
    shutil.copy2(run.files[0].moved_to, inbox_of(master) / "C01-累计.xlsx")
    again = consolidate(master, now=T3)
    assert (again.rows_added, again.rows_updated, again.master_written) == (0, 0, False)
    assert master.read_bytes() == written and sent_file(master).read_bytes() == remembered
    assert [p.key for p in again.files[0].issues if p.code == "resent_kept"] == [RECORD]


def test_a_prefilled_form_sent_again_after_a_later_correction(master_copy, tmp_path):
    """The form from ``healthbook forms --records`` holds the values it was given (25); the committee
    edits C01-0005 to 30 and sends it; the office corrects to 300; the same file arrives again."""
    assert main(["forms", str(master_copy), "--out", str(tmp_path / "forms"), "--committee", "C01", "--records"]) == 0
    [form] = (tmp_path / "forms").glob("填报表-C01-*.xlsx")
    key = "C01-0005"
    given = value(master_copy, key, "participants")
    filled = type_rows(form, tmp_path / "C01-改正.xlsx", [], edits={key: {"participants": given + 5}})
    shutil.copy2(filled, inbox_of(master_copy) / filled.name)
    [f] = consolidate(master_copy, now=T1).files
    assert f.rows_updated == 1 and value(master_copy, key, "participants") == given + 5

    edit_master(master_copy, key, participants=300)
    shutil.copy2(filled, inbox_of(master_copy) / filled.name)
    code, out = cli_json("consolidate", str(master_copy))
    assert code == 0 and value(master_copy, key, "participants") == 300
    [f] = out["files"]
    assert (f["rows_updated"], f["rows_unchanged"]) == (0, len(ledger_of(master_copy).query("committee_id == 'C01'")))
    [kept] = [p for p in f["issues"] if p["code"] == "resent_kept"]
    assert (kept["key"], kept["column"]) == (key, H["participants"])
    assert f"仍是 {given + 5}，主工作簿中现为 300" in kept["message"]


def test_a_form_prefilled_after_the_correction_and_edited_back_is_an_edit(master_copy, tmp_path):
    """The office corrects a value and issues a new prefilled form showing it; the clerk changes it
    back to what she sent before, on purpose. That is her edit, not an old value sent again: it
    applies (review: it was kept out, and the receipt said she had not changed it)."""
    key = "C01-0005"
    given = value(master_copy, key, "participants")
    forms = tmp_path / "forms"
    assert main(["forms", str(master_copy), "--out", str(forms), "--committee", "C01", "--records"]) == 0
    [form] = forms.glob("填报表-C01-*.xlsx")
    sent = type_rows(form, tmp_path / "C01-一.xlsx", [], edits={key: {"participants": given + 5}})
    shutil.copy2(sent, inbox_of(master_copy) / sent.name)
    consolidate(master_copy, now=T1)
    edit_master(master_copy, key, participants=given + 6)
    assert main(["forms", str(master_copy), "--out", str(forms), "--committee", "C01", "--records", "--force"]) == 0
    back = type_rows(form, tmp_path / "C01-二.xlsx", [], edits={key: {"participants": given + 5}})
    shutil.copy2(back, inbox_of(master_copy) / back.name)
    [f] = consolidate(master_copy, now=T2).files
    assert value(master_copy, key, "participants") == given + 5 and f.rows_updated == 1
    assert not [p for p in f.issues if p.code == "resent_kept"]


def test_without_the_file_beside_the_master_it_works_as_before_and_says_so(first_sent):
    master = first_sent
    sent_file(master).unlink()
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut()])
    run = consolidate(master, now=T2)
    assert value(master, RECORD, "participants") == 30 and run.rows_updated == 1  # as before this file existed
    assert sent_file(master).name in run.sent_problem
    assert sent_file(master).name in summary_text(run)
    assert sent_file(master).exists()  # written again: the next resend is protected
    edit_master(master, RECORD, participants=300)
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut()])
    again = consolidate(master, now=T3)
    assert value(master, RECORD, "participants") == 300 and not again.sent_problem


@pytest.mark.parametrize("damage", ["{不是 json", '{"sent": []}', '[1, 2]', "", '{"columns": ["x"], "sent": {}}',
                                    '{"columns": null, "sent": {"C01-0050": 7}}'])
def test_a_damaged_file_beside_the_master_is_a_warning_not_a_traceback(first_sent, damage, capsys):
    master = first_sent
    sent_file(master).write_text(damage, encoding="utf-8")
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut()])
    assert main(["consolidate", str(master)]) == 0
    out = capsys.readouterr().out
    assert sent_file(master).name in out and "覆盖" in out
    assert value(master, RECORD, "participants") == 30  # today's behaviour


def test_an_entry_damaged_inside_the_file_applies_the_value_as_before(first_sent):
    master = first_sent
    data = json.loads(sent_file(master).read_text(encoding="utf-8"))
    data["sent"][RECORD] = "not base64!"
    sent_file(master).write_text(json.dumps(data), encoding="utf-8")
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut()])
    run = consolidate(master, now=T2)
    assert value(master, RECORD, "participants") == 30 and run.rows_updated == 1


def test_an_entry_of_another_type_is_a_warning_not_a_traceback(first_sent, capsys):
    """A list where a record's digests belong (a hand edit, a merge tool) raised TypeError in the
    middle of the run (review): the file is told unusable, and the value applies as before."""
    master = first_sent
    data = json.loads(sent_file(master).read_text(encoding="utf-8"))
    data["sent"][RECORD] = ["不是", "文本"]
    sent_file(master).write_text(json.dumps(data), encoding="utf-8")
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(record_id=None, activity="义剪")])
    assert main(["consolidate", str(master)]) == 0
    assert sent_file(master).name in capsys.readouterr().out


def test_a_busy_master_remembers_nothing_so_the_retry_still_applies_the_change(first_sent):
    master = first_sent
    remembered = sent_file(master).read_bytes()
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(participants=35)])
    owner = master.with_name("~$" + master.name)
    owner.write_bytes(bytes([4]) + b"zhou".ljust(53) + "周敏".encode("utf-16-le"))
    busy = consolidate(master, now=T2)
    assert busy.staged is not None and sent_file(master).read_bytes() == remembered
    owner.unlink()
    consolidate(master, now=T3)
    assert value(master, RECORD, "participants") == 35


def test_a_restore_forgets_what_the_undone_runs_sent(first_sent, capsys):
    """Run 2 changes C01-0050 to 35 (C01-0051 sent again as before, kept at the office's 300); the
    clerk restores the backup from before run 2 and moves run 2's file back into the inbox, as
    ``restore`` says: 35 applies again (what run 2 sent is forgotten), C01-0051 stays 300."""
    master = first_sent
    other = haircut(record_id="C01-0051", activity="为残疾人上门理发", participants=12)
    plain_workbook(inbox_of(master) / "C01-第二批.xlsx", [other])
    consolidate(master, now=T2)
    edit_master(master, "C01-0051", participants=300)
    plain_workbook(inbox_of(master) / "C01-累计.xlsx", [haircut(participants=35), other])
    run2 = consolidate(master, now=T3)
    assert value(master, RECORD, "participants") == 35 and value(master, "C01-0051", "participants") == 300

    assert main(["restore", str(master)]) == 0
    assert run2.files[0].moved_to.name in capsys.readouterr().out
    assert value(master, RECORD, "participants") == 300  # the backup from before run 2
    shutil.move(run2.files[0].moved_to, inbox_of(master) / "C01-累计.xlsx")
    [f] = consolidate(master, now=T4).files
    assert value(master, RECORD, "participants") == 35 and f.rows_updated == 1
    assert value(master, "C01-0051", "participants") == 300
    assert [p.key for p in f.issues if p.code == "resent_kept"] == ["C01-0051"]


def test_rows_typed_without_a_key_and_sent_again_are_their_records_not_new_ones(master_copy):
    """Most hand-typed workbooks have no 记录编号: each row got its number from the first run. The
    office corrects one; the committee sends the same rows again (plus one). The corrected record's
    row matched nothing in the master any more and was added a second time, 300 and 30 side by side."""
    rows = [haircut(record_id=None), haircut(record_id=None, activity="为残疾人上门理发", participants=12)]
    plain_workbook(inbox_of(master_copy) / "C01-手工.xlsx", rows)
    consolidate(master_copy, now=T1)
    ledger = ledger_of(master_copy).query("source == 'C01-手工.xlsx'")
    [given] = ledger.query("activity == '为老年人上门理发'")["record_id"].tolist()
    edit_master(master_copy, given, participants=300)
    count = len(ledger_of(master_copy))

    plain_workbook(inbox_of(master_copy) / "C01-手工.xlsx", [*rows, haircut(record_id=None, activity="义剪", participants=8)])
    [f] = consolidate(master_copy, now=T2).files
    assert (f.rows_added, f.rows_updated, f.rows_unchanged) == (1, 0, 2)
    assert len(ledger_of(master_copy)) == count + 1 and value(master_copy, given, "participants") == 300
    [kept] = [p for p in f.issues if p.code == "resent_kept"]
    assert (kept.key, kept.row, kept.column) == (given, 2, H["participants"])
    assert not [p for p in f.issues if p.code == "probable_resend"]


def test_a_renamed_master_is_told_its_records_kept_the_old_name(master_copy, tmp_path):
    """Staff renamed the master: what committees sent and the numbers announced are in files named
    after the old name; the first run under the new name says which files to rename, and to what."""
    from macros.consolidate import consolidate, folders, numbers_file, sent_file, summary_text
    from macros.forms import build_forms

    from .test_consolidate import fill_form, new_row

    build_forms(master_copy, tmp_path / "blank", ["C01"])
    [blank] = (tmp_path / "blank").iterdir()
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(blank, inbox / "C01-10月.xlsx", [new_row(activity="十月体检")])
    assert consolidate(master_copy).master_written and sent_file(master_copy).exists()
    renamed = master_copy.with_name("石门二路台账.xlsx")
    master_copy.rename(renamed)
    fill_form(blank, inbox / "C01-11月.xlsx", [new_row(activity="十一月体检")])

    text = summary_text(consolidate(renamed))

    assert f"{sent_file(master_copy).name} 等记录文件，但没有它们所属的 {master_copy.name}" in text, text
    assert f"改名为 {sent_file(renamed).name} 和 {numbers_file(renamed).name}" in text
    # The nightly run's readers read consolidate.log: the hint is there too, marked.
    from macros.consolidate import LOG_NAME

    last = (renamed.parent / LOG_NAME).read_text(encoding="utf-8").splitlines()[-1]
    assert f"！！主工作簿旁有 {sent_file(master_copy).name}" in last and sent_file(renamed).name in last


def test_a_staged_run_logs_the_warning_about_what_was_sent_before(master_copy, tmp_path):
    """The master open in Excel: the run stages its result and logs it; the log's line for the run
    carries the ！！ warning about the missing record as a written run's does."""
    from macros.consolidate import LOG_NAME, consolidate, folders, sent_file
    from macros.forms import build_forms

    from .test_consolidate import fill_form, new_row

    [blank] = build_forms(master_copy, tmp_path / "blank", ["C01"]).written
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(blank, inbox / "C01-10月.xlsx", [new_row(activity="十月体检")])
    assert consolidate(master_copy).master_written
    sent_file(master_copy).unlink()  # deleted by someone tidying the folder
    fill_form(blank, inbox / "C01-11月.xlsx", [new_row(activity="十一月体检")])
    master_copy.with_name("~$" + master_copy.name).write_bytes(b"\x04zhou")
    assert consolidate(master_copy).staged
    last = (master_copy.parent / LOG_NAME).read_text(encoding="utf-8").splitlines()[-1]
    assert "暂存为" in last and f"！！主工作簿旁还没有记录居委会上次提交内容的文件 {sent_file(master_copy).name}" in last
