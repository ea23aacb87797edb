"""healthbook consolidate on real files: forms and hand-made workbooks into a real master."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from datetime import date
from pathlib import Path

import openpyxl
import pytest

import macros.consolidate as consolidation
from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import TextProgress, main
from macros.consolidate import consolidate, folders, summary_text
from macros.forms import build_forms

from .conftest import cli_json, convert_with_libreoffice

LEDGER = schema.LEDGER.name
HEADERS = {c.key: c.header for c in schema.LEDGER.columns}


@pytest.fixture(scope="module")
def blank_forms(demo_master, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blank-forms")
    build_forms(demo_master, out, ["C01", "C02"])
    return out


@pytest.fixture
def inbox(master_copy) -> Path:
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    return where.inbox


def fill_form(blank: Path, target: Path, rows: list[dict]) -> Path:
    """Type ``rows`` into a copy of a generated form, as a committee would (Excel: openpyxl here)."""
    wb = openpyxl.load_workbook(blank)
    ws = wb[LEDGER]
    position = {cell.value: cell.column for cell in ws[1]}
    for r, values in enumerate(rows, start=2):
        for key, value in values.items():
            ws.cell(r, position[HEADERS[key]], value)
    wb.save(target)
    return target


def new_row(**kw) -> dict:
    row = {"date": date(2020, 11, 18), "project_id": "P06", "activity": "老年人健康体检进社区",
           "participants": 42, "quantity": 42, "status": "进行中", "reporter": "周敏", "in_bulletin": "否"}
    row.update(kw)
    return row


def ledger_of(master: Path):
    return read_workbook(master)[LEDGER]


def form_c01(blank_forms: Path) -> Path:
    return blank_forms / "填报表-C01-新福康里居委会.xlsx"


def test_new_rows_are_added_numbered_and_a_rerun_changes_nothing(master_copy, inbox, blank_forms):
    before = ledger_of(master_copy)
    last = max(int(r.split("-")[1]) for r in before["record_id"] if r.startswith("C01-"))
    rows = [new_row(activity=f"老年人健康体检第{i}批", quantity=10 + i) for i in range(3)]
    fill_form(form_c01(blank_forms), inbox / "C01-11月.xlsx", rows)

    stages = []
    # As of a day in 设置 年度 (2020): later, the progress sheets are not refreshed (the wrong year's figures).
    run = consolidate(master_copy, as_of=date(2020, 11, 20), stage=stages.append)
    assert run.master_written and run.rows_added == 3
    # each longer step after the files is announced, so that a finished bar is not taken for a hang
    assert stages == [consolidation.READING, consolidation.REFRESHING, consolidation.WRITING,
                      consolidation.FINISHING]
    # roll-ups refreshed after the merge, as `healthbook report` does
    progress = read_workbook(master_copy, [schema.COMMITTEE_PROGRESS])[schema.COMMITTEE_PROGRESS.name]
    assert "已刷新" in run.refreshed and len(progress) > 0
    [result] = run.files
    assert result.status == "accepted" and result.rows_added == 3
    after = ledger_of(master_copy)
    added = after[~after["record_id"].isin(before["record_id"])]
    assert added["record_id"].tolist() == [f"C01-{last + i:04d}" for i in (1, 2, 3)]
    assert set(added["source"]) == {"C01-11月.xlsx"} and set(added["committee_id"]) == {"C01"}
    assert added["quantity"].tolist() == [10, 11, 12]
    assert not any(inbox.iterdir())
    assert result.moved_to.parent.name == schema.SETTINGS_BY_KEY["archive"].default
    receipt = result.receipt.read_text(encoding="utf-8")
    assert f"C01-{last + 1:04d}" in receipt and "新增" in receipt
    assert "C01-11月.xlsx" in run.log.read_text(encoding="utf-8")

    # The same file again (say the move failed, or it was dropped twice): nothing changes.
    shutil.copy2(result.moved_to, inbox / "C01-11月.xlsx")
    written = master_copy.read_bytes()
    stages.clear()
    again = consolidate(master_copy, stage=stages.append)
    assert again.rows_added == 0 and again.rows_updated == 0 and not again.master_written
    assert stages == [consolidation.READING, consolidation.FINISHING]  # nothing to write
    assert again.files[0].rows_unchanged == 3
    assert master_copy.read_bytes() == written


def test_an_update_is_audited_in_the_change_log(master_copy, inbox, blank_forms):
    before = ledger_of(master_copy).set_index("record_id")
    old = before.loc["C01-0002"]
    changed = {k: old[k] for k in HEADERS if k not in ("record_id", "committee_id", "source")}
    changed.update(record_id="C01-0002", quantity=int(old["quantity"]) + 5, note="补充体检人数")
    fill_form(form_c01(blank_forms), inbox / "C01-更正.xlsx", [changed])

    run = consolidate(master_copy)
    assert run.rows_updated == 1 and run.rows_added == 0
    after = ledger_of(master_copy).set_index("record_id")
    assert after.loc["C01-0002", "quantity"] == old["quantity"] + 5
    assert after.loc["C01-0002", "source"] == "C01-更正.xlsx"
    assert len(after) == len(before)
    changes = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    audit = {(r["record_id"], r["column"], str(r["old"]), str(r["new"]), r["source"])
             for r in changes.to_dict("records")}
    assert ("C01-0002", HEADERS["quantity"], str(old["quantity"]), str(old["quantity"] + 5),
            "C01-更正.xlsx") in audit
    assert ("C01-0002", HEADERS["note"], "None", "补充体检人数", "C01-更正.xlsx") in audit
    assert all(r["time"] is not None for r in changes.to_dict("records"))


def test_a_correction_sent_again_without_its_key_is_added_with_a_warning_in_the_receipt(
        master_copy, inbox, blank_forms, capsys):
    first = new_row(activity="社区健康讲座（第一场）", participants=50)
    fill_form(form_c01(blank_forms), inbox / "C01-第一次.xlsx", [first])
    consolidate(master_copy)
    key = ledger_of(master_copy).set_index("activity").loc["社区健康讲座（第一场）", "record_id"]
    # The committee fixes the head count, says so, and sends the row again, its 记录编号 left blank
    # (two columns changed: the look-alike is told by its date, project and activity).
    fill_form(form_c01(blank_forms), inbox / "C01-更正.xlsx", [{**first, "participants": 55, "note": "人数更正"}])
    assert main(["consolidate", str(master_copy)]) == 0  # a warning: the run itself is fine
    printed = capsys.readouterr().out
    ledger = ledger_of(master_copy)
    again = ledger[ledger["activity"] == "社区健康讲座（第一场）"]
    assert sorted(again["participants"]) == [50, 55]  # added (it may be another session), not lost
    new_key = next(k for k in again["record_id"] if k != key)
    assert f"可能是修改后重复提交：{new_key}（与 {key} 相近）" in printed
    receipt = next(folders(master_copy, read_workbook(master_copy).settings).receipts.glob("回执-C01-C01-更正-*.html"))
    text = receipt.read_text(encoding="utf-8")
    assert f"与已汇总的记录 {key} 的" in text and f"已作为新记录 {new_key} 加入" in text
    assert f"<td>2</td><td>{HEADERS['activity']}</td>" in text  # its row and column


def test_bad_rows_are_left_out_and_named_in_the_receipt(master_copy, inbox, blank_forms):
    rows = [new_row(activity="好的一行"), new_row(project_id="<b>P99</b>", activity="项目编号不存在"),
            new_row(activity="数量不是数字", quantity="很多")]
    fill_form(form_c01(blank_forms), inbox / "C01-有错.xlsx", rows)
    run = consolidate(master_copy)
    [result] = run.files
    assert result.status == "partly" and result.rows_added == 1
    bad = {(p.row, p.column) for p in result.issues if p.is_error}
    assert (3, HEADERS["project_id"]) in bad and (4, HEADERS["quantity"]) in bad
    activities = set(ledger_of(master_copy)["activity"])
    assert "好的一行" in activities and not {"项目编号不存在", "数量不是数字"} & activities
    receipt = result.receipt.read_text(encoding="utf-8")
    for row, column in bad:
        assert f"<td>{row}</td><td>{column}</td>" in receipt
    assert "<b>P99" not in receipt and "&lt;b&gt;P99" in receipt  # escaped
    assert result.moved_to.parent.name == schema.SETTINGS_BY_KEY["archive"].default
    assert main(["consolidate", str(master_copy)]) == 0  # an empty inbox is fine


def test_a_file_with_another_committees_rows_is_rejected_whole(master_copy, inbox, blank_forms):
    rows = [new_row(), new_row(activity="别的居委会的活动", committee_id="C02")]
    fill_form(form_c01(blank_forms), inbox / "C01-混报.xlsx", rows)
    original = master_copy.read_bytes()
    assert main(["consolidate", str(master_copy)]) == 1
    assert master_copy.read_bytes() == original
    rejected = folders(master_copy, {}).rejected
    [moved] = rejected.iterdir()
    assert moved.name.startswith("C01-混报-")
    [receipt] = folders(master_copy, {}).receipts.iterdir()
    text = receipt.read_text(encoding="utf-8")
    assert "C02" in text and "整份退回" in text
    # The receipt's 行号 and 列 point at the other committee's cell, the row the message names.
    named = re.search(r"但第 (\d+) 行", text).group(1)
    assert f"<td>{named}</td><td>{schema.LEDGER.header_of('committee_id')}</td>" in text

    # The summary names that row once, and with two such rows, names both once.
    fill_form(form_c01(blank_forms), inbox / "C01-混报.xlsx", [*rows, new_row(activity="又一行", committee_id="C03")])
    said = summary_text(consolidate(master_copy))
    assert re.search(r"C01-混报.xlsx：这是 C01 的填报表，但第 \d+、\d+ 行", said), said


def test_a_file_returned_whole_still_names_every_mistake_in_its_rows(master_copy, inbox, blank_forms):
    """Returned for one row of another committee, the receipt named only that row: the clerk fixed
    it, and the next night's receipt returned the form again for the mistakes it had not named."""
    rows = [new_row(activity="好的一行"), new_row(activity="别的居委会的活动", committee_id="C02"),
            new_row(project_id="P99", activity="项目编号不存在"), new_row(activity="数量不是数字", quantity="很多")]
    fill_form(form_c01(blank_forms), inbox / "C01-混报.xlsx", rows)
    original = master_copy.read_bytes()
    [result] = consolidate(master_copy).files
    assert result.status == "rejected" and result.rows_added == 0
    assert master_copy.read_bytes() == original
    errors = {(p.row, p.code) for p in result.issues if p.is_error}
    assert {(3, "wrong_committee"), (4, "unknown_project"), (5, "bad_number")} <= errors, errors
    text = result.receipt.read_text(encoding="utf-8")
    assert "整份退回" in text and "P99" in text and "很多" in text and "改正本回执列出的其他问题" in text


def test_likely_typos_merged_with_a_warning_are_named_to_the_office(master_copy, inbox, blank_forms):
    """完成数量 100000 for 10 was merged with a warning only the receipt carried: the office's summary
    counts errors alone, and that night's 通报 showed the project done and the committee 正常."""
    rows = [new_row(activity="好的一行"), new_row(activity="多按了几个零", quantity=100000),
            new_row(activity="人数多输了几位", participants=250000),
            new_row(activity="状态填错的一行不汇总", status="完成", quantity=100000)]  # refused: not named
    fill_form(form_c01(blank_forms), inbox / "C01-十一月.xlsx", rows)
    run = consolidate(master_copy, refresh=False)
    [result] = run.files
    assert result.rows_added == 3 and result.status == "partly"
    said = summary_text(run)
    assert "请核实 2 处" in said, said
    lines = [line for line in said.splitlines() if line.startswith("  C01-十一月.xlsx 第")]
    assert len(lines) == 2 and "100000" in lines[0].replace(",", "") and "第 4 行" in lines[1]
    log = (master_copy.parent / "consolidate.log").read_text(encoding="utf-8")
    assert "请核实 2 处很可能填错的数值" in log


def test_a_committee_code_typed_loosely_in_the_master_still_takes_its_forms(tmp_path):
    """居委会编号 "c 01" in the 居委会 sheet (the validator reads C01): every form of that committee
    was returned whole, "这是 c 01 的填报表，但第 2 行的“居委会编号”为 C01" (review)."""
    rows = demo.demo_rows()
    rows[schema.COMMITTEES.name][0] = {**rows[schema.COMMITTEES.name][0], "committee_id": "c 01"}
    master = tmp_path / "m.xlsx"
    build_workbook(master, rows)
    [blank] = build_forms(master, tmp_path / "forms", ["C01"]).written
    inbox = folders(master, {}).inbox
    inbox.mkdir()
    fill_form(blank, inbox / "C01.xlsx", [new_row()])
    [result] = consolidate(master, refresh=False).files
    assert result.status == "accepted" and result.rows_added == 1, [p.message for p in result.issues]


def test_a_committee_filling_in_another_committees_form_is_told_to_use_its_own(master_copy, inbox, blank_forms):
    """C02's clerk reused C01's form and typed C02 on every row: told to change the rows to C01, she
    would have filed C02's work under C01; and C02, looking for 回执-C02-*, found nothing."""
    rows = [new_row(activity="别的居委会的活动", committee_id="C02"), new_row(activity="又一行", committee_id="C02")]
    fill_form(form_c01(blank_forms), inbox / "C02 11月.xlsx", rows)
    [result] = consolidate(master_copy).files
    assert result.status == "rejected" and result.rows_added == 0
    [problem] = [p for p in result.issues if p.code == "wrong_form"]
    assert "可能用错了填报表" in problem.message and "改为 C01" not in problem.suggestion
    assert "填报表-C02-" in problem.suggestion
    assert result.receipt.name.startswith("回执-C02-")
    # One row of C01's own among them: the rows are the ones to fix, as before.
    fill_form(form_c01(blank_forms), inbox / "C01 11月.xlsx", [new_row(), *rows])
    [result] = consolidate(master_copy).files
    assert [p.code for p in result.issues if p.code.startswith("wrong_")] == ["wrong_committee"]
    assert result.receipt.name.startswith("回执-C01-")


@pytest.mark.parametrize("name, committee", [("填报表-C03-蒋家巷居委会.xls", "C03"), ("蒋家巷居委会 11月.csv", "C03"),
                                             ("c03 台账.xlsx", "C03"), ("说明.txt", None), ("C1-C03.xls", "C03")])
def test_a_file_returned_before_it_was_read_gets_the_receipt_its_name_names(master_copy, inbox, name, committee):
    """A .xls or .csv was answered in 回执-未知居委会-…: C03, looking for 回执-C03-*, never learned
    its form had bounced. The committee code or name in the file's name now names the receipt."""
    path = inbox / name
    path.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100 if name.endswith(".xls") else "日期,活动内容\n".encode())
    [result] = consolidate(master_copy).files
    assert result.status == "rejected"
    assert result.committee_id == committee
    assert result.receipt.name.startswith(f"回执-{committee or '未知居委会'}-"), result.receipt.name


def test_formula_looking_text_is_stored_as_text(master_copy, inbox, blank_forms):
    texts = ['=HYPERLINK("http://evil.example","点我")', "+86 21 6200 0000", "@SUM(A1:A9)", "-1+2 次"]
    rows = [new_row(activity=f"宣传活动{i}", note=t) for i, t in enumerate(texts)]
    rows[0]["activity"] = "=1+1"
    fill_form(form_c01(blank_forms), inbox / "C01-公式.xlsx", rows)
    # openpyxl would store "=..." typed into a cell as a formula: make them text, as Excel does for '=.
    wb = openpyxl.load_workbook(inbox / "C01-公式.xlsx")
    for row in wb[LEDGER].iter_rows(min_row=2, max_row=5):
        for cell in row:
            if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                cell.data_type = "s"
    wb.save(inbox / "C01-公式.xlsx")

    run = consolidate(master_copy)
    assert run.rows_added == 4
    assert sum(p.code == "formula_text" for p in run.files[0].issues) == 5
    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    header = [c.value for c in ws[1]]
    note, activity = header.index(HEADERS["note"]), header.index(HEADERS["activity"])
    cells = {row[note].value: row[note] for row in ws.iter_rows(min_row=2) if row[note].value in texts}
    assert set(cells) == set(texts)
    assert all(c.data_type == "s" for c in cells.values())
    formula = next(row[activity] for row in ws.iter_rows(min_row=2) if row[activity].value == "=1+1")
    assert formula.data_type == "s"


# Also on a copied sheet read for want of a 台账 ("台账 (2)": its formulas are looked up under its name).
@pytest.mark.parametrize("sheet_name", [LEDGER, f"{LEDGER} (2)"])
def test_real_formulas_keep_their_last_values_with_a_warning(master_copy, inbox, sheet_name):
    import xlsxwriter

    keys = ("date", "committee_id", "project_id", "activity", "participants", "quantity", "status")
    # Saved by a spreadsheet program: the formula comes with the value it last showed.
    book = xlsxwriter.Workbook(inbox / "C01-公式单元格.xlsx")
    sheet = book.add_worksheet(sheet_name)
    sheet.write_row(0, 0, [HEADERS[k] for k in keys])
    sheet.write_row(1, 0, ["2020-11-18", "C01", "P02", "公式讲座"])
    sheet.write_formula(1, 4, "=10*3", None, 30)
    sheet.write_row(1, 5, [1, "进行中"])
    book.close()
    # Written by a program that computes nothing (openpyxl): no value to keep.
    wb = openpyxl.Workbook()
    wb.active.title = sheet_name
    wb.active.append([HEADERS[k] for k in keys])
    wb.active.append(["2020-11-19", "C01", "P02", "公式义诊", "=5*5", 1, "进行中"])
    wb.save(inbox / "C01-无结果.xlsx")

    # The same, updating a record: read blank, it would clear the master's 参与人数.
    record = read_workbook(master_copy)[LEDGER].iloc[0]
    wb = openpyxl.Workbook()
    wb.active.title = sheet_name
    wb.active.append([HEADERS[k] for k in ("record_id", *keys)])
    wb.active.append([record["record_id"], record["date"], record["committee_id"], record["project_id"],
                      record["activity"], "=5*5", record["quantity"], record["status"]])
    wb.save(inbox / f"{record['committee_id']}-无结果-修改.xlsx")

    run = consolidate(master_copy)
    assert run.rows_added == 1 and run.rows_updated == 0
    found = {f.file: [p for p in f.issues if p.code == "formula_cell"] for f in run.files}
    [kept] = found["C01-公式单元格.xlsx"]
    assert (kept.row, kept.column, kept.level) == (2, HEADERS["participants"], "警告")
    assert "计算结果“30”" in kept.message and "不要用公式" in kept.suggestion
    for name in ("C01-无结果.xlsx", f"{record['committee_id']}-无结果-修改.xlsx"):
        [lost] = found[name]
        assert (lost.row, lost.column, lost.level) == (2, HEADERS["participants"], "错误")
        assert "没有它的计算结果" in lost.message and "未汇总" in lost.message
        assert not any(p.code == "required" for f in run.files if f.file == name for p in f.issues)
    ledger = read_workbook(master_copy)[LEDGER]
    values = dict(zip(ledger["activity"], ledger["participants"]))
    assert values["公式讲座"] == 30 and "公式义诊" not in values
    assert ledger.set_index("record_id").loc[record["record_id"], "participants"] == record["participants"]
    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    assert not any(c.data_type == "f" for row in ws.iter_rows() for c in row)  # values, never formulas


def test_a_formula_whose_result_is_blank_text_is_merged_with_a_warning(master_copy, inbox, tmp_path):
    """=IF(…,"",…) saved by a spreadsheet program holds its result, blank text (t="str", <v></v>):
    the row is merged as the clerk saw it, not refused as "never computed" (LibreOffice computes
    and saves the form, as WPS or Excel would)."""
    keys = ("date", "committee_id", "project_id", "activity", "participants", "quantity", "status", "note")
    wb = openpyxl.Workbook()
    wb.active.title = LEDGER
    wb.active.append([HEADERS[k] for k in keys])
    wb.active.append(["2020-11-18", "C01", "P02", "空白结果讲座", 30, 1, "进行中", '=IF(E2>100,"人数偏多","")'])
    wb.save(tmp_path / "C01-空白结果.xlsx")
    saved = convert_with_libreoffice(tmp_path / "C01-空白结果.xlsx", "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo")
    shutil.copy2(saved, inbox / saved.name)

    [f] = consolidate(master_copy).files
    assert (f.status, f.rows_added) == ("accepted", 1)
    [note] = [p for p in f.issues if p.code == "formula_cell"]
    assert (note.level, note.column) == ("警告", HEADERS["note"]) and "空白" in note.message


def test_a_hand_made_workbook_is_accepted(master_copy, inbox):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = LEDGER
    ws.append(["恒德里居委会 11 月台账"])
    ws.append(["自己的序号", " 日期", "项目编号 ", "活 动内容", "完成数量", "状态", "居委会编号", "参与人数"])
    ws.append([1, date(2020, 11, 3), "P02", "为老年人上门理发", 15, "进行中", "C02", 15])
    ws.append([2, "11月5日", "P05", "护理员急救技能实操培训", 8, "已完成", "C02", 8])
    wb.create_sheet("草稿").append(["随便写写"])
    wb.save(inbox / "恒德里手工表.xlsx")

    run = consolidate(master_copy)
    [result] = run.files
    assert result.status == "accepted" and result.rows_added == 2, result.issues
    added = ledger_of(master_copy).query("source == '恒德里手工表.xlsx'")
    assert added["activity"].tolist() == ["为老年人上门理发", "护理员急救技能实操培训"]
    assert added["date"].tolist()[1] == date(2020, 11, 5)  # merged as the validator read it (receipt: 按 2020-11-05)
    assert "自己的序号" not in ledger_of(master_copy).columns


def test_what_is_not_a_submission(master_copy, inbox, blank_forms):
    (inbox / "旧表.xls").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    (inbox / "导出.csv").write_text("日期,活动内容\n", encoding="utf-8")
    (inbox / "改了扩展名.xlsx").write_text("这不是工作簿", encoding="utf-8")
    (inbox / "~$C01.xlsx").write_bytes(b"\x05zhou  ")
    (inbox / ".隐藏.xlsx").write_bytes(b"")
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.save(inbox / "没有台账.xlsx")
    run = consolidate(master_copy)
    status = {f.file: f.status for f in run.files}
    assert status == {"旧表.xls": "rejected", "导出.csv": "rejected", "改了扩展名.xlsx": "rejected",
                      "没有台账.xlsx": "rejected", "~$C01.xlsx": "skipped", ".隐藏.xlsx": "skipped"}
    reasons = {f.file: f"{f.issues[0].message} {f.issues[0].suggestion}" for f in run.files}
    assert "另存为" in reasons["旧表.xls"] and LEDGER in reasons["没有台账.xlsx"]
    assert sorted(p.name for p in inbox.iterdir()) == [".隐藏.xlsx", "~$C01.xlsx"]
    assert not run.master_written


def test_busy_master_is_staged_and_the_inbox_kept(master_copy, inbox, blank_forms, capsys):
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row()])
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(bytes([4]) + b"zhou".ljust(53) + "周敏".encode("utf-16-le"))
    original = master_copy.read_bytes()
    assert main(["consolidate", str(master_copy), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["master_written"] is False and out["rows_added"] == 1
    assert master_copy.read_bytes() == original
    assert [p.name for p in inbox.iterdir()] == ["C01.xlsx"]
    [staged] = master_copy.parent.glob(f"{master_copy.stem}-待合并-*.xlsx")
    # --json tells a busy master from a dry run (both: master_written false)
    assert out["staged"] == str(staged) and "zhou" in out["busy"] and out["dry_run"] is False
    log = (master_copy.parent / "consolidate.log").read_text(encoding="utf-8")
    assert "zhou" in log or "周敏" in log  # who has it open
    owner.unlink()
    assert main(["consolidate", str(master_copy)]) == 0
    assert not any(inbox.iterdir())


def test_json_output_and_dry_run(master_copy, inbox, blank_forms, capsys):
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row(), new_row(project_id="P99")])
    original = master_copy.read_bytes()
    assert main(["consolidate", str(master_copy), "--dry-run", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"files", "rows_added", "rows_updated", "master_written", "numbered", "dry_run", "busy", "staged"}
    assert out["dry_run"] is True and out["busy"] is None and out["staged"] is None
    [entry] = out["files"]
    assert set(entry) == {"file", "status", "rows_added", "rows_updated", "rows_unchanged", "issues", "gone", "given_back",
                          "conflicts"}
    assert entry["status"] == "partly" and entry["rows_added"] == 1 and out["master_written"] is False
    assert {"sheet", "row", "column", "key", "level", "code", "message", "suggestion"} <= set(entry["issues"][0])
    assert master_copy.read_bytes() == original and (inbox / "C01.xlsx").exists()


def test_a_form_saved_by_libreoffice_round_trips(master_copy, inbox, blank_forms, tmp_path):
    filled = fill_form(blank_forms / "填报表-C02-恒德里居委会.xlsx", tmp_path / "C02-LO.xlsx",
                       [new_row(activity="LibreOffice 填写的一行", reporter="陈佳")])
    saved = convert_with_libreoffice(filled, "xlsx:Calc MS Excel 2007 XML", tmp_path / "lo")
    shutil.copy2(saved, inbox / "C02-LO.xlsx")
    run = consolidate(master_copy)
    [result] = run.files
    assert result.status == "accepted" and result.rows_added == 1, result.issues
    row = ledger_of(master_copy).query("activity == 'LibreOffice 填写的一行'").iloc[0]
    assert row["committee_id"] == "C02" and row["record_id"].startswith("C02-")


def test_several_files_in_one_run_keep_their_own_rows_and_order(master_copy, inbox, blank_forms):
    import os

    ledger = ledger_of(master_copy).set_index("record_id")
    existing = {k: ledger.loc["C01-0003", k] for k in HEADERS if k not in ("record_id", "source")}
    first = fill_form(form_c01(blank_forms), inbox / "C01-第一次.xlsx",
                      [{**existing, "record_id": "C01-0003", "quantity": 70}])
    second = fill_form(form_c01(blank_forms), inbox / "C01-第二次.xlsx",
                       [{**existing, "record_id": "C01-0003", "quantity": 80}])
    c02 = blank_forms / "填报表-C02-恒德里居委会.xlsx"
    twice = fill_form(c02, inbox / "C02.xlsx", [new_row(record_id="C02-0900"), new_row(activity="另一行"),
                                                new_row(record_id="C02-0900")])  # the same row twice
    for n, path in enumerate((first, twice, second)):
        os.utime(path, (1_600_000_000 + n, 1_600_000_000 + n))

    run = consolidate(master_copy)
    by_file = {f.file: f for f in run.files}
    assert ledger_of(master_copy).set_index("record_id").loc["C01-0003", "quantity"] == 80
    assert by_file["C01-第一次.xlsx"].rows_updated == 1 and by_file["C01-第二次.xlsx"].rows_updated == 1
    dup = [p for p in by_file["C02.xlsx"].issues if p.is_error]
    assert {p.row for p in dup} == {4}, dup  # Excel rows of that file, not of the batch
    assert "第 2 行" in dup[0].message
    assert by_file["C02.xlsx"].status == "partly" and by_file["C02.xlsx"].rows_added == 2


def test_an_inbox_in_the_masters_own_folder_never_takes_the_master(master_copy, blank_forms):
    fill_form(form_c01(blank_forms), master_copy.parent / "C01.xlsx", [new_row()])
    editing = fill_form(form_c01(blank_forms), master_copy.parent / "C01-还在改.xlsx", [new_row()])
    editing.with_name("~$" + editing.name).write_bytes(b"\x04zhou")
    run = consolidate(master_copy, inbox=master_copy.parent)
    status = {f.file: f.status for f in run.files}
    assert status[master_copy.name] == "skipped" and status["C01-还在改.xlsx"] == "skipped"
    assert status["C01.xlsx"] == "accepted" and run.master_written
    assert master_copy.exists() and editing.exists()
    again = consolidate(master_copy, inbox=master_copy.parent)  # its log and backups folder too
    assert {f.status for f in again.files} == {"skipped"} and master_copy.exists()


def test_templates_readme_lists_every_receipt_variable():
    from datetime import datetime

    from macros.consolidate import FileResult, receipt_context
    from macros.render.env import templates_dir
    from macros.submission import RECEIPT_VARIABLES

    readme = (templates_dir() / "README.md").read_text(encoding="utf-8")
    context = receipt_context(FileResult("f.xlsx", "accepted"), datetime(2020, 11, 20), Path("m.xlsx"))
    for name in context:
        assert f"`{name}`" in readme, f"templates/README.md 未列出回执变量 {name}"
    assert set(context) == set(RECEIPT_VARIABLES)  # what an office template is checked against


def test_a_committee_resending_its_form_adds_nothing_and_gets_no_duplicate_warnings(
        master_copy, inbox, blank_forms):
    rows = [new_row(activity="第一次报的活动"), new_row(activity="第二条活动", quantity=3)]
    fill_form(form_c01(blank_forms), inbox / "C01-10月.xlsx", rows)
    fill_form(form_c01(blank_forms), inbox / "C01-10月(1).xlsx", rows + [new_row(activity="新加的一条")])
    run = consolidate(master_copy)
    by_file = {f.file: f for f in run.files}
    assert by_file["C01-10月.xlsx"].rows_added == 2
    resent = by_file["C01-10月(1).xlsx"]
    assert (resent.rows_added, resent.rows_unchanged) == (1, 2)
    assert not [p for p in resent.issues if p.code.lower() == "probable_duplicate"], resent.issues


def test_the_change_log_is_appended_to_and_its_old_lines_stay_byte_for_byte(master_copy, inbox, blank_forms):
    import re
    import zipfile

    from macros.book.ooxml import sheet_parts

    def log_part(path: Path) -> str:
        with zipfile.ZipFile(path) as z:
            return sheet_parts({n: z.read(n) for n in z.namelist()})[schema.CHANGES.name]

    def log_rows(path: Path) -> dict[int, str]:
        with zipfile.ZipFile(path) as z:
            xml = z.read(log_part(path)).decode()
        return {int(m.group(1)): m.group(0) for m in re.finditer(r'(?s)<row r="(\d+)".*?</row>', xml)}

    fill_form(form_c01(blank_forms), inbox / "C01-第一批.xlsx", [new_row(activity="第一批")])
    consolidate(master_copy, refresh=False)
    # Staff annotate the logged line in a column of their own (as Excel would save it).
    part = log_part(master_copy)
    with zipfile.ZipFile(master_copy) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    note = '<c r="K2" t="inlineStr"><is><t>已电话核对</t></is></c>'
    parts[part] = re.sub(r'(<row r="2".*?)</row>', lambda m: m.group(1) + note + "</row>",
                         parts[part].decode(), count=1, flags=re.S).encode()
    with zipfile.ZipFile(master_copy, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    first = log_rows(master_copy)
    assert sorted(first) == [1, 2] and note in first[2]

    fill_form(form_c01(blank_forms), inbox / "C01-第二批.xlsx",
              [new_row(activity="第二批甲"), new_row(activity="第二批乙")])
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_added == 2
    second = log_rows(master_copy)
    assert sorted(second) == [1, 2, 3, 4]
    assert {r: second[r] for r in first} == first  # old lines byte for byte, staff's note too
    log = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    assert list(log["source"]) == ["C01-第一批.xlsx", "C01-第二批.xlsx", "C01-第二批.xlsx"]
    assert all(log["action"] == "新增")


@pytest.mark.parametrize("change", ["column inserted at A", "header row deleted"])
def test_a_change_log_whose_header_staff_changed_loses_no_line(master_copy, inbox, blank_forms, change):
    import re
    import zipfile

    from macros.book.ooxml import sheet_parts
    from macros.errors import HealthbookError

    fill_form(form_c01(blank_forms), inbox / "C01-第一批.xlsx", [new_row(activity="第一批")])
    consolidate(master_copy, refresh=False)
    with zipfile.ZipFile(master_copy) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    part = sheet_parts(parts)[schema.CHANGES.name]
    if change == "column inserted at A":  # as Excel's 插入列 leaves it: every cell one column right
        wb = openpyxl.load_workbook(master_copy)
        wb[schema.CHANGES.name].insert_cols(1)
        wb[schema.CHANGES.name]["A1"] = "序号"
        shifted = Path(str(master_copy) + ".tmp.xlsx")
        wb.save(shifted)
        with zipfile.ZipFile(shifted) as z:
            parts[part] = z.read(sheet_parts({n: z.read(n) for n in z.namelist()})[schema.CHANGES.name])
    else:
        parts[part] = re.sub(r'(?s)<row r="1".*?</row>', "", parts[part].decode(), count=1).encode()
    with zipfile.ZipFile(master_copy, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    before = master_copy.read_bytes()

    fill_form(form_c01(blank_forms), inbox / "C01-第二批.xlsx", [new_row(activity="第二批")])
    if change == "header row deleted":
        with pytest.raises(HealthbookError, match="变更记录"):  # refused, named: nothing lost
            consolidate(master_copy, refresh=False)
        assert master_copy.read_bytes() == before
        return
    consolidate(master_copy, refresh=False)
    log = read_workbook(master_copy, [schema.CHANGES])[schema.CHANGES.name]
    # Both lines under the right headers: the old one moved back under them, the new one below.
    assert list(log["source"]) == ["C01-第一批.xlsx", "C01-第二批.xlsx"]
    assert all(log["action"] == "新增") and log["time"].notna().all()


def test_as_of_on_the_command_line_is_the_date_submissions_are_judged_by(master_copy, inbox, blank_forms):
    fill_form(form_c01(blank_forms), inbox / "C01-11月.xlsx", [new_row(date=date(2020, 11, 18))])
    code, out = cli_json("consolidate", str(master_copy), "--as-of", "2020-11-15")
    [result] = out["files"]
    assert code == 0 and result["status"] == "accepted"  # a warning: merged, and said
    assert result["rows_added"] == 1
    assert any("晚于统计截止日期（2020-11-15）" in p["message"] for p in result["issues"])


def test_the_terminal_bar_ends_its_line_before_each_step_after_it(capsys):
    bar = TextProgress(width=4)
    bar.stage(consolidation.READING)
    bar(1, 2, "C01.xlsx")
    bar(2, 2, "C02.xlsx")
    bar.stage(consolidation.WRITING)
    bar.close()
    err = capsys.readouterr().err
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    assert lines == [consolidation.READING, "汇总 [████] 2/2 C02.xlsx" + " " * 32, consolidation.WRITING, ""]


def test_the_summary_names_an_empty_or_missing_inbox_and_a_rejected_files_row(
        master_copy, blank_forms, capsys):
    where = folders(master_copy, read_workbook(master_copy).settings)
    # A first run before anyone made the inbox: the summary says where it looked, and that it is missing.
    assert main(["consolidate", str(master_copy), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert str(where.inbox) in out and "还不存在" in out
    where.inbox.mkdir()
    assert main(["consolidate", str(master_copy)]) == 0
    out = capsys.readouterr().out
    assert str(where.inbox) in out and "还不存在" not in out
    # A file rejected for its only row: the summary line names the row, as the receipt does.
    fill_form(form_c01(blank_forms), where.inbox / "C01-没写内容.xlsx", [new_row(activity=None)])
    assert main(["consolidate", str(master_copy)]) == 1
    out = capsys.readouterr().out
    assert f"C01-没写内容.xlsx：第 2 行：{HEADERS['activity']}" in out and str(where.inbox) not in out


def test_the_summary_counts_files_left_for_next_time_apart_from_temporary_ones(master_copy, inbox, blank_forms):
    """A form still being copied (too new) and one open in WPS are read next run: they are not
    "temporary or hidden files" to the clerk reading the summary."""
    fill_form(form_c01(blank_forms), inbox / "C01-新.xlsx", [new_row()])
    fill_form(form_c01(blank_forms), inbox / "C01-在改.xlsx", [new_row(activity="另一行")])
    (inbox / ".~lock.C01-在改.xlsx#").write_text("x")  # LibreOffice's/WPS's lock: the file is open
    (inbox / "~$别的.xlsx").write_bytes(b"x")  # Excel's owner file
    old = time.time() - 3600
    os.utime(inbox / "C01-在改.xlsx", (old, old))
    said = summary_text(consolidate(master_copy, min_age=600, refresh=False))
    first = said.splitlines()[0]
    assert "处理填报表 0 份" in first and "跳过 2 个临时、隐藏文件或空文件夹" in first, said
    assert "2 个文件刚修改、正被打开或已移走，下次再处理" in first, said
