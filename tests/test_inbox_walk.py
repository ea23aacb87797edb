"""Walkthrough findings on the inbox: sub-folders, a missing inbox, staged copies taken for the
master, a 合计 row in column A, records deleted from a prefilled form (walk F-16, 17, 18, 19, 7)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import folders
from macros.forms import build_forms

from .conftest import ROOT, cli_json
from .test_consolidate import HEADERS, fill_form, new_row
from .test_recovery_adversary import set_setting


@pytest.fixture
def inbox(master_copy):
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    return where.inbox


@pytest.mark.parametrize("label", ["合计", " 合　计 ", "合计：", "总计"])
def test_a_totals_row_typed_in_the_record_id_column_is_not_a_record(master_copy, inbox, tmp_path, label):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"]).written
    fill_form(blank, inbox / "斯文里.xlsx", [new_row(participants=12, quantity=12), new_row(participants=8, quantity=8),
                                           {"record_id": label, "participants": 20, "quantity": 20}])
    code, out = cli_json("consolidate", str(master_copy), "--dry-run", "--as-of", "2020-11-15")
    [f] = out["files"]
    assert f["status"] == "accepted" and f["rows_added"] == 2, f["issues"]
    assert not [p for p in f["issues"] if p["level"] == schema.LEVEL_ERROR]
    assert [p["row"] for p in f["issues"] if "合计行" in p["message"]] == [4]
    assert code == 0


def test_a_record_id_that_merely_contains_a_total_word_is_still_a_record(master_copy, inbox, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"]).written
    fill_form(blank, inbox / "斯文里.xlsx", [{"record_id": "合计1", "participants": 20, "quantity": 20}])
    code, out = cli_json("consolidate", str(master_copy), "--dry-run", "--as-of", "2020-11-15")
    [f] = out["files"]
    assert f["status"] == "rejected" and any(p["column"] == HEADERS["record_id"] for p in f["issues"])
    assert code == 1


def test_a_staged_result_is_refused_by_every_command_and_the_excel_button(master_copy, inbox, tmp_path, capsys):
    import copy

    import xlwings as xw

    from macros import excel

    from .test_excel import actions
    from .xlwings_book import book_payload

    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"]).written
    fill_form(blank, inbox / "C01.xlsx", [new_row()])
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(b"\x04zhou")
    assert main(["consolidate", str(master_copy), "--as-of", "2020-11-15"]) == 3
    [staged] = master_copy.parent.glob(f"{master_copy.stem}-待合并-*.xlsx")
    capsys.readouterr()
    before = staged.read_bytes()
    notices = master_copy.parent / "通知"
    listed = sorted(p.name for p in notices.rglob("*")) if notices.exists() else []
    for argv in (["report", str(staged), "--as-of", "2020-11-15"], ["validate", str(staged), "--mark"],
                 ["rollup", str(staged)], ["consolidate", str(staged)], ["notices", str(staged)],
                 ["forms", str(staged), "--out", str(tmp_path / "f2")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "暂存" in err and "不是主工作簿" in err and f"关闭主工作簿 {master_copy.name}" in err, (argv, err)
    assert staged.read_bytes() == before  # not written, no backup of it, no notices from it
    assert not list((master_copy.parent / "backups").glob(f"{staged.stem}*"))
    assert (sorted(p.name for p in notices.rglob("*")) if notices.exists() else []) == listed
    assert not (tmp_path / "f2").exists()
    # The button inside the staged copy says so instead of working there.
    book = xw.Book(json=copy.deepcopy(book_payload(staged)))
    assert excel.report(book) is None
    [alert] = actions(book, "alert")
    assert "不是主工作簿" in alert["args"][0] and alert["args"][3] == "critical"
    assert actions(book, "setValues") == []
    # The master itself still works once it is closed.
    owner.unlink()
    assert main(["consolidate", str(master_copy), "--as-of", "2020-11-15"]) == 0


def test_a_folder_in_the_inbox_holding_forms_is_named_in_summary_log_and_json(master_copy, inbox, tmp_path, capsys):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C08"]).written
    (inbox / "11月").mkdir()
    fill_form(blank, inbox / "11月" / "填报表-C08-华顺居委会.xlsx", [new_row()])
    (inbox / "11月" / "~$填报表-C08-华顺居委会.xlsx").write_bytes(b"\x04zhou")  # not a form
    (inbox / "空的").mkdir()
    # The archive set inside the inbox is the program's own folder: never taken, never flagged.
    set_setting(master_copy, schema.SETTINGS_BY_KEY["archive"].item, f"{inbox.name}/已归档")
    where = folders(master_copy, read_workbook(master_copy).settings)
    assert where.archive.parent == inbox
    where.archive.mkdir()
    fill_form(blank, where.archive / "旧.xlsx", [new_row()])

    code, out = cli_json("consolidate", str(master_copy), "--inbox", str(inbox), "--dry-run")
    status = {f["file"]: (f["status"], f["issues"][0]["code"]) for f in out["files"]}
    assert status == {"11月": ("skipped", "subfolder"), "空的": ("skipped", "skipped"), "已归档": ("skipped", "skipped")}
    message = next(f["issues"][0]["message"] for f in out["files"] if f["file"] == "11月")
    assert "1 份工作簿" in message and "填报表-C08-华顺居委会.xlsx" in message and "直接移到收件箱" in message
    assert code == 1  # forms wait unread: not a quiet night

    assert main(["consolidate", str(master_copy)]) == 1
    text = capsys.readouterr().out
    assert "文件夹“11月”未处理" in text and "1 份工作簿" in text and "临时或隐藏" not in text
    log = (master_copy.parent / "consolidate.log").read_text(encoding="utf-8")
    assert "！！收件箱里的文件夹“11月”未处理" in log
    # Nothing was taken from the folders; moved up, the form is merged.
    assert (inbox / "11月" / "填报表-C08-华顺居委会.xlsx").exists() and (where.archive / "旧.xlsx").exists()
    (inbox / "11月" / "填报表-C08-华顺居委会.xlsx").rename(inbox / "填报表-C08-华顺居委会.xlsx")
    (inbox / "11月" / "~$填报表-C08-华顺居委会.xlsx").unlink()
    code, out = cli_json("consolidate", str(master_copy))
    assert code == 0 and out["rows_added"] == 1


NIGHTLY = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py")]


def nightly(master: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*NIGHTLY, str(master), "--min-age", "0"], capture_output=True, text=True,
                          encoding="utf-8", timeout=300)


def log_of(master: Path) -> str:
    return (master.parent / "consolidate.log").read_text(encoding="utf-8")


def test_a_fresh_masters_inbox_is_created_and_a_missing_one_later_is_an_error(master_copy, capsys):
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    # First run of a freshly set-up master: the inbox nobody made is made, and said so.
    first = nightly(master_copy)
    assert first.returncode == 0, first.stderr
    assert inbox.is_dir() and "已新建收件箱文件夹" in first.stdout and "已新建收件箱文件夹" in log_of(master_copy)
    # Later the folder is renamed (or the share drops): every run says so, loudly, and fails.
    inbox.rename(inbox.with_name("收件箱-旧"))
    later = nightly(master_copy)
    assert later.returncode == 2 and not inbox.exists()
    item = schema.SETTINGS_BY_KEY["inbox"].item
    assert str(inbox) in later.stderr and "没有汇总任何填报表" in later.stderr and f"“{item}”" in later.stderr
    last = log_of(master_copy).splitlines()[-1]
    assert "！！错误" in last and str(inbox) in last
    # A dry run says it too, and writes nothing.
    assert main(["consolidate", str(master_copy), "--dry-run"]) == 2
    assert str(inbox) in capsys.readouterr().err and log_of(master_copy).splitlines()[-1] == last


def test_a_mistyped_inbox_option_is_an_error_that_does_not_send_staff_to_the_settings(master_copy, capsys):
    typo = master_copy.parent / "不存在的文件夹"
    assert main(["consolidate", str(master_copy), "--inbox", str(typo)]) == 2
    err = capsys.readouterr().err
    assert str(typo) in err and "--inbox" in err and "设置" not in err
    assert not typo.exists() and "！！错误" in log_of(master_copy)


def test_an_inbox_on_a_share_is_never_created(master_copy, tmp_path, capsys):
    share = tmp_path / "未连接的共享" / "收件箱"
    set_setting(master_copy, schema.SETTINGS_BY_KEY["inbox"].item, str(share))
    assert main(["consolidate", str(master_copy)]) == 2
    assert str(share) in capsys.readouterr().err and not share.parent.exists()


def test_a_day_old_owner_file_makes_the_nightly_run_fail_loudly(master_copy, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"]).written
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(blank, inbox / "C01.xlsx", [new_row()])
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(b"\x04zhou")
    assert nightly(master_copy).returncode == 3  # just opened: the next run retries, quietly
    friday = time.time() - 2.5 * 86400
    os.utime(owner, (friday, friday))
    stale = nightly(master_copy)
    assert stale.returncode == 2, stale.stderr
    assert "！！主工作簿自" in stale.stdout and "60 小时" in stale.stdout and owner.name in stale.stderr
    assert "！！主工作簿自" in log_of(master_copy).splitlines()[-1]
    assert [p.name for p in inbox.iterdir()] == ["C01.xlsx"]  # still staged only: nothing lost


def prefilled_c03(master: Path, tmp_path: Path):
    """C03's form prefilled with its records (``forms --records``), open in openpyxl as a clerk
    edits it: (workbook, its 台账, 记录编号 column, 完成数量 column)."""
    import openpyxl

    assert main(["forms", str(master), "--out", str(tmp_path / "预填"), "--committee", "C03", "--records"]) == 0
    [form] = (tmp_path / "预填").glob("填报表-C03-*.xlsx")
    wb = openpyxl.load_workbook(form)
    ws = wb[schema.LEDGER.name]
    header = [c.value for c in ws[1]]
    return wb, ws, header.index(HEADERS["record_id"]) + 1, header.index(HEADERS["quantity"]) + 1


def test_records_deleted_from_a_prefilled_form_are_named_in_receipt_and_summary(master_copy, inbox, tmp_path, capsys):
    settings = read_workbook(master_copy).settings
    wb, ws, key_col, quantity_col = prefilled_c03(master_copy, tmp_path)
    keys = [ws.cell(r, key_col).value for r in range(2, ws.max_row + 1)]
    prefilled = [k for k in keys if k]
    assert len(prefilled) >= 3
    kept, deleted = prefilled[0], prefilled[1:3]
    ws.cell(keys.index(kept) + 2, quantity_col, 999)
    for key in sorted(deleted, key=keys.index, reverse=True):  # bottom first: rows shift up
        ws.delete_rows(keys.index(key) + 2)
    wb.save(inbox / "C03.xlsx")

    assert main(["consolidate", str(master_copy), "--as-of", "2020-11-15"]) == 0
    out = capsys.readouterr().out
    assert f"C03.xlsx 删去了预填的记录 {'、'.join(deleted)}" in out and "不删除记录" in out
    [receipt] = (master_copy.parent / settings["receipts"]).glob("回执-C03-*.html")
    html = receipt.read_text(encoding="utf-8")
    for key in deleted:
        assert f"<td>{key}</td><td>填报表上预填的记录 {key} 已从表中删去" in html
    assert f"请联系{settings['contact']}" in html and "汇总不会删除记录" in html
    # Nothing was deleted, the edit was merged, and the records kept are not called deleted.
    ledger = read_workbook(master_copy)[schema.LEDGER.name]
    assert set(deleted) <= set(ledger["record_id"]) and html.count("已从表中删去") == len(deleted)
    assert ledger.set_index("record_id").loc[kept, "quantity"] == 999


def test_a_prefilled_forms_receipt_lists_what_changed_and_counts_the_rest(master_copy, inbox, tmp_path):
    """Thirty rows of 未变化 hid the one that changed (walk: receipts); a committee reading it on a
    phone got desktop-sized text and an internal file name, and no one to ask."""
    settings = read_workbook(master_copy).settings
    wb, ws, key_col, quantity_col = prefilled_c03(master_copy, tmp_path)
    keys = [k for r in range(2, ws.max_row + 1) if (k := ws.cell(r, key_col).value)]
    ws.cell(2, quantity_col, 999)
    wb.save(inbox / "C03.xlsx")

    assert main(["consolidate", str(master_copy), "--as-of", "2020-11-15"]) == 0
    [receipt] = (master_copy.parent / settings["receipts"]).glob("回执-C03-*.html")
    html = receipt.read_text(encoding="utf-8")
    assert f"<td>{keys[0]}</td>" in html and "修改：完成数量" in html
    assert not any(f"<td>{key}</td>" in html for key in keys[1:])  # the unchanged are counted, not listed
    assert f"共 {len(keys) - 1} 行未变化" not in html and f"另有 {len(keys) - 1} 行未变化，不逐一列出" in html
    assert f"请联系{settings['contact']}（{settings['phone']}）" in html
    assert 'name="viewport"' in html and master_copy.name not in html


def test_a_form_of_another_master_in_the_same_folder_is_left_for_it(master_copy, inbox, tmp_path, capsys):
    """Two masters beside each other share the inbox 设置 names (a copy staff made, say): each
    must leave the other's forms, or their rows land in the wrong master and the file is archived."""
    import shutil

    other = master_copy.with_name("健康街道-副本.xlsx")
    shutil.copy2(master_copy, other)
    [ours] = build_forms(master_copy, tmp_path / "ours", ["C01"]).written
    [theirs] = build_forms(other, tmp_path / "theirs", ["C02"]).written
    fill_form(ours, inbox / "C01.xlsx", [new_row(activity="本主工作簿的活动")])
    fill_form(theirs, inbox / "C02.xlsx", [new_row(committee_id="C02", activity="副本的活动")])

    assert main(["consolidate", str(master_copy), "--as-of", "2020-11-15"]) == 1  # needs someone
    out = capsys.readouterr().out
    assert f"未处理　C02.xlsx 是用同一文件夹中的另一个主工作簿“{other.name}”生成的填报表" in out
    assert "把“收件箱文件夹”改成另一个文件夹" in out
    assert [p.name for p in inbox.iterdir()] == ["C02.xlsx"]  # left for the other master
    activities = set(read_workbook(master_copy)[schema.LEDGER.name]["activity"])
    assert "本主工作簿的活动" in activities and "副本的活动" not in activities

    assert main(["consolidate", str(other), "--as-of", "2020-11-15"]) == 0
    assert "副本的活动" in set(read_workbook(other)[schema.LEDGER.name]["activity"])
    assert not list(inbox.iterdir())


def test_a_form_of_a_master_since_renamed_is_taken_by_the_renamed_master(master_copy, inbox, tmp_path):
    [form] = build_forms(master_copy, tmp_path / "forms", ["C01"]).written
    fill_form(form, inbox / "C01.xlsx", [new_row(activity="改名前生成的填报表")])
    renamed = master_copy.rename(master_copy.with_name("健康街道2020.xlsx"))
    assert main(["consolidate", str(renamed), "--as-of", "2020-11-15"]) == 0
    assert "改名前生成的填报表" in set(read_workbook(renamed)[schema.LEDGER.name]["activity"])


def test_a_notices_folder_that_cannot_be_made_stops_no_merge_and_speaks_chinese(master_copy, inbox, tmp_path, capsys):
    """设置 通知输出文件夹 naming a drive not mapped (here: a file of that name) gave a Python
    traceback in report, and the nightly consolidation merged nothing, night after night (walk3 F16)."""
    settings = read_workbook(master_copy).settings
    blocker = master_copy.parent / "通知盘"
    blocker.write_text("不是文件夹", encoding="utf-8")
    set_setting(master_copy, schema.SETTINGS_BY_KEY["notices"].item, "通知盘/通知")

    assert main(["report", str(master_copy), "--as-of", "2020-11-15"]) == 2
    err = capsys.readouterr().err
    assert "无法建立通知输出文件夹" in err and "通知输出文件夹" in err and "Traceback" not in err

    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"]).written
    fill_form(blank, inbox / "C01.xlsx", [new_row(activity="通知文件夹坏了也要并入")])
    code = main(["consolidate", str(master_copy), "--as-of", "2020-11-15"])
    out = capsys.readouterr().out
    assert "通知盘" in out and "台账已合并，但进度汇总和通知未刷新：无法建立通知输出文件夹" in out
    assert code in (0, 1)  # merged; the refresh's failure is said
    assert "通知文件夹坏了也要并入" in set(read_workbook(master_copy)[schema.LEDGER.name]["activity"])
    assert not list(inbox.iterdir()) and list((master_copy.parent / settings["receipts"]).glob("回执-C01-*.html"))
