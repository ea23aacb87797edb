"""The office edits the master between two consolidations, and a committee sends its form again: a
record the office deleted is not added back (the row is exactly what the record was last sent as), and
a cell both the office and the committee changed takes the committee's value and tells both sides.
Real files: forms built by ``healthbook forms``, the office's edits made in the master (openpyxl
standing in for Excel), ``consolidate`` and ``restore`` run for real; the master, the receipt, the
summary, consolidate.log and ``--json`` are checked."""

from __future__ import annotations

import html
import shutil
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import LOG_NAME, consolidate, folders, summary_text
from macros.forms import build_forms

from .conftest import cli_json
from .test_consolidate import HEADERS, fill_form, ledger_of, new_row
from .test_consolidate_adversary import delete_record, edit_master
from .test_consolidate_resend import PLAIN_KEYS, haircut, plain_workbook
from .test_real_forms import inbox_of, type_rows

AS_OF = "2020-11-15"
T1, T2, T3, T4 = (datetime(2020, 11, 15, h, 0) for h in (9, 10, 11, 12))
CONTACT = "发展办 李敏（021-62000000）"  # 设置 联系人 and 联系电话 of the demo master


@pytest.fixture(scope="module")
def forms(demo_master, tmp_path_factory) -> dict[str, Path]:
    """C06's and C01's blank forms, C04's prefilled with its records (``forms --records``)."""
    out = tmp_path_factory.mktemp("office-edits-forms")
    blank = build_forms(demo_master, out / "blank", ["C01", "C06"]).written
    [prefilled] = build_forms(demo_master, out / "prefilled", ["C04"], with_records=True).written
    return {"C01": blank[0], "C06": blank[1], "C04": prefilled}


def row_a(**kw) -> dict:
    return new_row(**{"date": date(2020, 11, 10), "activity": "社区健康讲座", "participants": 40, "quantity": 40, **kw})


def row_b(**kw) -> dict:
    return new_row(**{"date": date(2020, 11, 12), "activity": "老年人健康体检进社区", "participants": 42,
                      "quantity": 42, **kw})


def records_of(master: Path, activity: str) -> list[str]:
    ledger = ledger_of(master)
    return ledger.loc[ledger["activity"] == activity, "record_id"].tolist()


def value(master: Path, key: str, column: str):
    [found] = ledger_of(master).query("record_id == @key")[column].tolist()
    return found


def receipt_text(master: Path, stem: str) -> str:
    receipts = folders(master, read_workbook(master).settings).receipts
    newest = max(receipts.glob(f"回执-*{stem}*.html"), key=lambda p: p.stat().st_mtime_ns)
    return html.unescape(newest.read_text(encoding="utf-8"))


def log_lines(master: Path, file: str) -> list[str]:
    return [line for line in (master.parent / LOG_NAME).read_text(encoding="utf-8").splitlines() if f"\t{file}\t" in line]


def change_lines(master: Path, key: str) -> list[dict]:
    log = read_workbook(master, [schema.CHANGES])[schema.CHANGES.name]
    return [r for r in log.to_dict("records") if r["record_id"] == key]


@pytest.fixture
def c06_sent(master_copy, forms) -> tuple[Path, str, str]:
    """C06 fills rows A and B (no 记录编号) on its blank form; consolidated, they become two records."""
    fill_form(forms["C06"], inbox_of(master_copy) / "C06-十一月.xlsx", [row_a(), row_b()])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T1).files
    assert f.rows_added == 2
    [a], [b] = records_of(master_copy, "社区健康讲座"), records_of(master_copy, "老年人健康体检进社区")
    return master_copy, a, b


# ---------------------------------------------------------------- A. a record the office deleted


def test_a_deleted_record_sent_again_without_its_key_is_not_added_back(c06_sent, forms, capsys):
    """The office deletes B's record; another committee's form is merged meanwhile (the master and
    the file beside it are written again); C06 sends the same file again with a small change in row
    A. B, exactly as consolidated before, was added again as a new record, and nobody was told."""
    master, a, b = c06_sent
    delete_record(master, b)
    fill_form(forms["C01"], inbox_of(master) / "C01-十一月.xlsx", [row_a(committee_id="C01")])
    assert consolidate(master, as_of=date(2020, 11, 15), now=T2).master_written
    before = len(ledger_of(master))

    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_a(participants=45), row_b()])
    code, out = cli_json("consolidate", str(master), "--as-of", AS_OF)
    assert code == 0
    [f] = out["files"]
    # Row A changed: a new record (digests catch exact resends only), with the look-alike warning.
    assert (f["rows_added"], f["rows_unchanged"]) == (1, 1)
    assert len(ledger_of(master)) == before + 1
    assert records_of(master, "老年人健康体检进社区") == [] and b not in set(ledger_of(master)["record_id"])
    assert f["gone"] == [{"row": 3, "record_id": b}]
    [said] = [p for p in f["issues"] if p["code"] == "record_removed"]
    assert (said["sheet"], said["row"], said["column"], said["key"]) == ("台账", 3, HEADERS["record_id"], b)
    assert f"曾汇总为记录 {b}" in said["message"] and "已被街道从主工作簿中删除，本次未重新加入" in said["message"]
    assert CONTACT in said["suggestion"]
    # The committee's receipt, consolidate.log and the office's summary name the record.
    text = receipt_text(master, "C06-十一月")
    assert f"曾汇总为记录 {b}" in text and CONTACT in text
    assert f"{b}</td>\n    <td>未变化（该记录已被街道删除，未加回）" in text  # its line among the rows merged
    [logged] = log_lines(master, "C06-十一月.xlsx")[-1:]
    assert f"未加回 1 条：{b}（第 3 行）" in logged

    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_a(participants=45), row_b()])
    assert main(["consolidate", str(master), "--as-of", AS_OF]) == 0
    summary = capsys.readouterr().out
    assert f"C06-十一月.xlsx 又交来了街道已从“台账”删除的记录 {b}（第 3 行），内容与删除前相同" in summary and "未重新加入" in summary
    assert records_of(master, "老年人健康体检进社区") == []


def test_a_committees_second_identical_activity_is_still_added(c06_sent, forms):
    """Two identical rows without 记录编号 in one file are two activities (the k-th identical row
    matches the k-th such record): after the office deleted B's record, a file holding B twice
    brings back neither as B, and adds the second as a new record."""
    master, a, b = c06_sent
    delete_record(master, b)
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_a(), row_b(), row_b()])
    [f] = consolidate(master, as_of=date(2020, 11, 15), now=T2).files
    assert (f.rows_added, f.rows_unchanged) == (1, 2) and f.gone == [(3, b)]
    [again] = records_of(master, "老年人健康体检进社区")
    assert again != b
    # Sent again: A and the new record are in the master (fingerprints), B stays deleted.
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_a(), row_b(), row_b()])
    [f] = consolidate(master, as_of=date(2020, 11, 15), now=T3).files
    assert (f.rows_added, f.rows_unchanged) == (0, 3) and f.gone == [(4, b)]
    assert records_of(master, "老年人健康体检进社区") == [again]


def test_a_deleted_records_row_that_the_committee_changed_is_a_new_record(c06_sent, forms):
    """Only exact resends are known: a changed row for the deleted record is news (a new record)."""
    master, a, b = c06_sent
    delete_record(master, b)
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_a(), row_b(participants=50)])
    [f] = consolidate(master, as_of=date(2020, 11, 15), now=T2).files
    assert (f.rows_added, f.gone) == (1, [])
    [again] = records_of(master, "老年人健康体检进社区")
    assert again != b and value(master, again, "participants") == 50


def test_records_a_restore_took_out_of_the_master_are_not_taken_for_deleted_ones(c06_sent, capsys):
    """``restore`` brings back the master from before the run that added A and B, and says to move
    that run's file back into the inbox: merged again, both are added (the restore forgot what that
    run's committee sent), not refused as records the office deleted."""
    master, a, b = c06_sent
    assert main(["restore", str(master)]) == 0
    capsys.readouterr()
    assert records_of(master, "老年人健康体检进社区") == []
    [archived] = folders(master, read_workbook(master).settings).archive.glob("C06-十一月-*.xlsx")
    shutil.move(archived, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=date(2020, 11, 15), now=T2).files
    assert (f.rows_added, f.gone) == (2, [])
    assert not [p for p in f.issues if p.code == "record_removed"]
    assert len(records_of(master, "老年人健康体检进社区")) == 1


def test_a_deleted_record_sent_again_with_the_key_the_committee_typed_is_not_added_back(master_copy):
    """A hand-typed cumulative workbook carrying its own 记录编号 (C01-0050): deleted by the office,
    sent again exactly as before, it stays deleted; a record of that workbook the office kept is as before."""
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx",
                   [haircut(), haircut(record_id="C01-0051", activity="义剪", participants=8)])
    consolidate(master_copy, as_of=date(2020, 11, 15), now=T1)
    delete_record(master_copy, "C01-0050")
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx",
                   [haircut(), haircut(record_id="C01-0051", activity="义剪", participants=8)])
    run = consolidate(master_copy, as_of=date(2020, 11, 15), now=T2)
    [f] = run.files
    assert (f.rows_added, f.rows_unchanged, f.gone) == (0, 2, [(2, "C01-0050")])
    assert "C01-0050" not in set(ledger_of(master_copy)["record_id"])
    [said] = [p for p in f.issues if p.code == "record_removed"]
    assert said.message.startswith("记录 C01-0050 已被街道从主工作簿中删除；这一行与您上次提交的完全相同")
    assert "C01-0050（第 2 行）" in summary_text(run)


# ---------------------------------------------------------------- B. the office and the committee changed one cell


@pytest.fixture
def c04_prefilled(master_copy, forms) -> Path:
    """The office corrects C04-0001's 完成数量 (145 → 999) and C04-0002's 参与人数 (9 → 19) after C04's
    prefilled form was made."""
    assert value(master_copy, "C04-0001", "quantity") == 145
    edit_master(master_copy, "C04-0001", quantity=999)
    edit_master(master_copy, "C04-0002", participants=19)
    return master_copy


def test_a_cell_both_sides_changed_takes_the_committees_value_and_both_are_told(c04_prefilled, forms, tmp_path):
    """On its prefilled form C04 changes C04-0001's 完成数量 145 → 150 (the office made it 999) and
    C04-0003's 完成数量 79 → 80 (the office left it). 150 applied silently over the office's 999."""
    master = c04_prefilled
    type_rows(forms["C04"], inbox_of(master) / "C04-改正.xlsx", [],
              edits={"C04-0001": {"quantity": 150}, "C04-0003": {"quantity": 80}})
    code, out = cli_json("consolidate", str(master), "--as-of", AS_OF)
    assert code == 0
    assert value(master, "C04-0001", "quantity") == 150 and value(master, "C04-0003", "quantity") == 80
    assert value(master, "C04-0002", "participants") == 19  # untouched by the committee: the office's stays
    [f] = out["files"]
    assert f["rows_updated"] == 2
    [conflict] = f["conflicts"]
    row = conflict["row"]
    assert conflict == {"row": row, "record_id": "C04-0001", "column": HEADERS["quantity"], "office": 999, "committee": 150}
    [said] = [p for p in f["issues"] if p["code"] == "conflict"]
    assert (said["sheet"], said["row"], said["column"], said["key"]) == ("台账", row, HEADERS["quantity"], "C04-0001")
    assert "街道已在主工作簿中改为 999，贵居委会这次改为 150" in said["message"]
    assert "已按贵居委会的填报更新为 150" in said["message"] and CONTACT in said["suggestion"]
    assert {(r["column"], str(r["old"]), str(r["new"])) for r in change_lines(master, "C04-0001")
            if r["action"] == "修改"} == {(HEADERS["quantity"], "999", "150")}
    text = receipt_text(master, "C04-改正")
    assert "街道已在主工作簿中改为 999，贵居委会这次改为 150" in text
    assert f"C04-0001 第 {row} 行“{HEADERS['quantity']}”：街道 999，居委会 150" in log_lines(master, "C04-改正.xlsx")[-1]


def test_the_office_summary_lists_the_conflict(c04_prefilled, forms):
    master = c04_prefilled
    type_rows(forms["C04"], inbox_of(master) / "C04-改正.xlsx", [], edits={"C04-0001": {"quantity": 150}})
    run = consolidate(master, as_of=date(2020, 11, 15), now=T1)
    [f] = run.files
    [(row, key, column, office, committee)] = f.conflicts
    summary = summary_text(run)
    assert "C04-改正.xlsx 与街道在主工作簿中的修改冲突 1 处" in summary
    assert f"C04-0001 第 {row} 行“{HEADERS['quantity']}”：街道 999，居委会 150" in summary


def test_the_committees_own_earlier_edit_is_no_conflict(master_copy, forms):
    """Two copies of one prefilled form: the first sets 145 → 150, the second (sent later) 145 → 160.
    The master differs from what the second was given, but by the committee's own edit: no conflict."""
    type_rows(forms["C04"], inbox_of(master_copy) / "C04-一.xlsx", [], edits={"C04-0001": {"quantity": 150}})
    consolidate(master_copy, as_of=date(2020, 11, 15), now=T1)
    type_rows(forms["C04"], inbox_of(master_copy) / "C04-二.xlsx", [], edits={"C04-0001": {"quantity": 160}})
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T2).files
    assert value(master_copy, "C04-0001", "quantity") == 160 and f.rows_updated == 1
    assert f.conflicts == [] and not [p for p in f.issues if p.code == "conflict"]


def test_a_cumulative_workbook_changing_a_value_the_office_corrected_is_a_conflict(master_copy):
    """No prefilled form: what the committee last sent stands for what the form was given. Sent 30,
    the office made it 300, the committee now sends 35: a conflict (35 applies); 完成数量 sent again as
    before stays the office's correction, as it did."""
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut()])
    consolidate(master_copy, as_of=date(2020, 11, 15), now=T1)
    edit_master(master_copy, "C01-0050", participants=300, quantity=4)
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut(participants=35)])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T2).files
    assert value(master_copy, "C01-0050", "participants") == 35 and value(master_copy, "C01-0050", "quantity") == 4
    assert f.conflicts == [(2, "C01-0050", HEADERS["participants"], 300, 35)]
    [said] = [p for p in f.issues if p.code == "conflict"]
    assert said.message.startswith(f"记录 C01-0050 的“{HEADERS['participants']}”：您上次提交这条记录后，街道已在主工作簿中改为 300")
    # Sent once more unchanged: 35 is what it last sent and what the master holds: nothing to say.
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut(participants=35)])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T3).files
    assert f.conflicts == [] and f.rows_updated == 0


# ---------------------------------------------------------------- C. the committee cleared a cell the office changed


def test_a_cell_the_committee_cleared_keeps_the_offices_correction(c04_prefilled, forms):
    """On its prefilled form C04's clerk clears C04-0002's 参与人数 (the office had made it 19: the
    clerk deleted the cell while copying) and C04-0003's (the office left it), and 完成数量 of
    C04-0001 (the office made it 999). The blank replaced the office's 19 with nothing, as a conflict
    won by the committee. A blank never erases what the office changed: 19 stays and the receipt says
    why; the committee clearing its own value (C04-0003) applies; a blank in a required column is
    refused by the validator, as before (999 stays)."""
    master = c04_prefilled
    type_rows(forms["C04"], inbox_of(master) / "C04-清空.xlsx", [],
              edits={"C04-0002": {"participants": None}, "C04-0003": {"participants": None},
                     "C04-0001": {"quantity": None}})
    code, out = cli_json("consolidate", str(master), "--as-of", AS_OF)
    assert code == 1  # C04-0001's row has an error (完成数量 未填写)
    assert value(master, "C04-0002", "participants") == 19
    assert pd.isna(value(master, "C04-0003", "participants"))
    assert value(master, "C04-0001", "quantity") == 999
    [f] = out["files"]
    assert f["conflicts"] == [] and f["rows_updated"] == 1
    [required] = [p for p in f["issues"] if p["code"] == "required"]
    assert (required["key"], required["column"]) == ("C04-0001", HEADERS["quantity"])
    [said] = [p for p in f["issues"] if p["code"] == "cleared_kept"]
    assert (said["sheet"], said["column"], said["key"], said["level"]) == ("台账", HEADERS["participants"], "C04-0002", "警告")
    assert "您这次把这一格清空了" in said["message"] and "填报表生成后，街道已在主工作簿中改为 19" in said["message"]
    assert "保留了主工作簿的 19" in said["message"] and CONTACT in said["suggestion"]
    assert not [p for p in f["issues"] if p["code"] in ("master_kept", "conflict")]
    # Nothing logged for C04-0002 (its value did not change); C04-0003's clearing is.
    assert [r["column"] for r in change_lines(master, "C04-0002") if r["action"] == "修改"] == []
    assert [(r["column"], str(r["old"])) for r in change_lines(master, "C04-0003") if r["action"] == "修改"] == [
        (HEADERS["participants"], "79")]
    text = receipt_text(master, "C04-清空")
    assert "您这次把这一格清空了" in text and "保留了主工作簿的 19" in text


def test_the_office_summary_lists_the_cleared_cell_kept(c04_prefilled, forms):
    master = c04_prefilled
    type_rows(forms["C04"], inbox_of(master) / "C04-清空.xlsx", [], edits={"C04-0002": {"participants": None}})
    run = consolidate(master, as_of=date(2020, 11, 15), now=T1)
    [f] = run.files
    assert (f.rows_updated, f.rows_unchanged, f.conflicts) == (0, 25, [])
    assert value(master, "C04-0002", "participants") == 19
    [said] = [p for p in f.issues if p.code == "cleared_kept"]
    listed = f"C04-0002 第 {said.row} 行（{HEADERS['participants']}）"
    assert f"1 处居委会清空了街道修改过的单元格（多半是复制时误删），未采用空白，保留了主工作簿的值：{listed}" in summary_text(run)
    assert f"居委会清空了街道修改过的单元格、保留街道的值 1 处：{listed}" in log_lines(master, "C04-清空.xlsx")[-1]


def test_a_cumulative_workbook_clearing_a_value_the_office_corrected_keeps_it(master_copy):
    """No prefilled form: sent 30, the office made it 300, the committee sends the row with 参与人数
    blank. 300 stays (was: erased); sent blank once more, it is the value sent before: still kept."""
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut()])
    consolidate(master_copy, as_of=date(2020, 11, 15), now=T1)
    edit_master(master_copy, "C01-0050", participants=300)
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut(participants=None)])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T2).files
    assert value(master_copy, "C01-0050", "participants") == 300
    assert (f.rows_updated, f.conflicts) == (0, [])
    [said] = [p for p in f.issues if p.code == "cleared_kept"]
    assert "您上次提交这条记录后，街道已在主工作簿中改为 300" in said.message
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut(participants=None)])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T3).files
    assert value(master_copy, "C01-0050", "participants") == 300 and f.rows_updated == 0
    # The clerk mends the slip by copying its own data again (30): the value it sent before the blank,
    # old news still — not a change that undoes the office's 300.
    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut()])
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T4).files
    assert value(master_copy, "C01-0050", "participants") == 300 and f.rows_updated == 0 and f.conflicts == []


def test_a_column_first_sent_blank_keeps_the_note_the_office_typed(master_copy):
    """The committee's hand-made workbook gained 填报人 and 备注 columns, left blank on its old rows:
    the 备注 the office had typed on that record was erased, unannounced."""
    import openpyxl

    plain_workbook(inbox_of(master_copy) / "C01-累计.xlsx", [haircut()])
    consolidate(master_copy, as_of=date(2020, 11, 15), now=T1)
    edit_master(master_copy, "C01-0050", note="街道已电话核实")
    wb = openpyxl.Workbook()
    wb.active.title = schema.LEDGER.name
    keys = (*PLAIN_KEYS, "reporter", "note")
    wb.active.append([schema.LEDGER.header_of(k) for k in keys])
    wb.active.append([haircut().get(k) for k in keys])
    wb.save(inbox_of(master_copy) / "C01-累计.xlsx")
    [f] = consolidate(master_copy, as_of=date(2020, 11, 15), now=T2).files
    assert value(master_copy, "C01-0050", "note") == "街道已电话核实" and f.rows_updated == 0
    [said] = [p for p in f.issues if p.code == "cleared_kept"]
    assert said.column == schema.LEDGER.header_of("note") and "没有这一列" in said.message
