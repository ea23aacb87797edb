"""Walkthrough findings on the inbox: sub-folders, a missing inbox, staged copies taken for the
master, a 合计 row in column A, records deleted from a prefilled form (walk F-16, 17, 18, 19, 7)."""

from __future__ import annotations

import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import folders
from macros.forms import build_forms

from .conftest import cli_json
from .test_recovery_adversary import set_setting
from .test_consolidate import HEADERS, fill_form, new_row


@pytest.fixture
def inbox(master_copy):
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    return where.inbox


@pytest.mark.parametrize("label", ["合计", " 合　计 ", "合计：", "总计"])
def test_a_totals_row_typed_in_the_record_id_column_is_not_a_record(master_copy, inbox, tmp_path, label):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"])
    fill_form(blank, inbox / "斯文里.xlsx", [new_row(participants=12, quantity=12), new_row(participants=8, quantity=8),
                                           {"record_id": label, "participants": 20, "quantity": 20}])
    code, out = cli_json("consolidate", str(master_copy), "--dry-run", "--as-of", "2020-11-15")
    [f] = out["files"]
    assert f["status"] == "accepted" and f["rows_added"] == 2, f["issues"]
    assert not [p for p in f["issues"] if p["level"] == schema.LEVEL_ERROR]
    assert [p["row"] for p in f["issues"] if "合计行" in p["message"]] == [4]
    assert code == 0


def test_a_record_id_that_merely_contains_a_total_word_is_still_a_record(master_copy, inbox, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C06"])
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

    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"])
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
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C08"])
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
