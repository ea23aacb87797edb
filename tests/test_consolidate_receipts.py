"""A receipt that cannot be written (the receipts folder is a file, the disk fails while the master
is written) does not stop the run: the master is written, the log has the run, the files without a
receipt stay in the inbox (the next run retries and writes it), the others move as usual, and the
summary, --json and the exit status say which receipts failed, where and why."""

from __future__ import annotations

import contextlib
import io
import json

from macros import schema
from macros.book.read import read_workbook
from macros.book.write import FileBook
from macros.cli import main
from macros.consolidate import consolidate, folders

from .test_consolidate import blank_forms, fill_form, form_c01, inbox, ledger_of, new_row  # noqa: F401
from .test_consolidate_reader import NOW, copy_scene, scene, worker_started  # noqa: F401


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_a_receipts_path_that_is_a_file_keeps_the_merge_and_the_files_in_the_inbox(
        master_copy, inbox, blank_forms):  # noqa: F811
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.receipts.write_text("不是文件夹", encoding="utf-8")  # someone saved a file by that name
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row(activity="回执写不出的一行")])
    (inbox / "说明.csv").write_text("a,b\n", encoding="utf-8")  # rejected: its receipt fails too
    before = len(ledger_of(master_copy))

    code, printed = run_cli("consolidate", str(master_copy), "--json")
    out = json.loads(printed)
    assert code == 2  # a folder to fix, as for a file error
    assert out["master_written"] is True and out["rows_added"] == 1
    assert len(ledger_of(master_copy)) == before + 1
    failed = {f["file"]: [i for i in f["issues"] if i["code"] == "receipt_not_written"] for f in out["files"]}
    assert set(failed) == {"C01.xlsx", "说明.csv"} and all(len(v) == 1 for v in failed.values())
    message = failed["C01.xlsx"][0]["message"]
    assert str(where.receipts) in message and "不是文件夹" in message
    assert sorted(p.name for p in inbox.iterdir()) == ["C01.xlsx", "说明.csv"]
    assert not where.archive.exists() and not where.rejected.exists()
    log = (master_copy.parent / "consolidate.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 3 and all("回执未能写入文件夹" in line for line in log[:2]) and "2 份回执未写入" in log[2]
    assert "C01.xlsx" in log[0] and "主工作簿已写入" in log[2]

    # The Chinese summary names the folder, the reason and the files.
    code, text = run_cli("consolidate", str(master_copy), "--dry-run")
    assert "回执未能写入" not in text  # a dry run writes no receipt
    where.receipts.unlink()
    where.receipts.write_text("", encoding="utf-8")
    code, text = run_cli("consolidate", str(master_copy))
    assert code == 2 and f"回执未能写入文件夹“{where.receipts}”" in text
    assert "C01.xlsx、说明.csv" in text and "仍留在收件箱" in text

    # Fixed: the next run writes the receipts, moves the files and adds nothing again.
    where.receipts.unlink()
    code, printed = run_cli("consolidate", str(master_copy), "--json")
    again = json.loads(printed)
    assert code == 1  # the .csv is rejected
    assert again["rows_added"] == 0 and len(ledger_of(master_copy)) == before + 1
    assert not any(inbox.iterdir())
    assert len(list(where.receipts.glob("回执-*.html"))) == 2
    # The receipt sent late names the number the row was given by the run whose receipt failed:
    # the committee's form has no number, and no other receipt told it.
    given = ledger_of(master_copy)["record_id"].iloc[-1]
    [late] = where.receipts.glob("回执-C01-*.html")
    text = late.read_text(encoding="utf-8")
    assert given in text and "已汇总过，表中还没填这个编号" in text and "不逐一列出" not in text, text
    assert "新增和修改的行" not in text  # the rows listed are unchanged ones


def test_receipts_failing_after_the_master_is_written_leave_only_their_files(
        scene, tmp_path, monkeypatch):  # noqa: F811
    master = copy_scene(scene, tmp_path / "disk")
    where = folders(master, read_workbook(master).settings)
    started = worker_started(monkeypatch)
    real_write = FileBook.write_or_stage

    def write_then_the_receipts_disk_fails(self, *args, **kw):
        written = real_write(self, *args, **kw)
        # The master is written; now the receipts rendered so far are gone and nothing more can
        # be written where they go (the worker is still writing receipts meanwhile).
        for pending in where.receipts.glob(".pending-*"):
            pending.rename(pending.with_name("lost" + pending.name))
            pending.write_bytes(b"")
        return written

    monkeypatch.setattr(FileBook, "write_or_stage", write_then_the_receipts_disk_fails)
    inbox_before = {p.name for p in where.inbox.iterdir()}
    run = consolidate(master, now=NOW, refresh=False)
    assert started == [True] and run.master_written and run.exit_status == 2
    # Files whose rows were checked (merged, or returned whole for another committee's row, their
    # every mistake named) have their receipt rendered with the merge: every one was lost.
    merged = {f.file for f in run.files if f.rows_added or f.rows_unchanged or f.returned_whole}
    unsent = {f.file for f in run.files if f.receipt_error}
    assert "填报表-05.xlsx" in merged and unsent == merged
    # Files rejected unread get their receipt after the write, straight into the folder: they move.
    rejected = {f.file for f in run.files if f.status == "rejected" and not f.receipt_error}
    assert {"坏文件.xlsx", "说明.csv"} <= rejected
    assert {p.name.split("-2020")[0] for p in where.rejected.iterdir()} == {p.rsplit(".", 1)[0] for p in rejected}
    assert not where.archive.exists() or not any(where.archive.iterdir())
    assert {p.name for p in where.inbox.iterdir()} == inbox_before - rejected
    assert len(list(where.receipts.glob("回执-*.html"))) == len(rejected)
    log = (master.parent / "consolidate.log").read_text(encoding="utf-8")
    assert f"{len(unsent)} 份回执未写入" in log
    assert all(any(name in line and "回执未能写入文件夹" in line for line in log.splitlines()) for name in unsent)
    ledger = read_workbook(master, [schema.LEDGER])[schema.LEDGER.name]
    assert run.rows_added > 0 and len(ledger) >= run.rows_added
