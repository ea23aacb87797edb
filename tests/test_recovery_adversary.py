"""What happens around a write over days of real use: restore, backups, staged results, the lock
file, the nightly script — and the record numbers receipts have already announced."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from macros import schema
from macros.book.backup import list_backups
from macros.book.write import FileBook, WriteRefused, restore, staged_files
from macros.book.write_types import SheetWrite
from macros.cli import main
from macros.consolidate import consolidate, summary_text
from macros.errors import HealthbookError
from macros.forms import build_forms

from .conftest import ROOT
from .test_consolidate import fill_form, new_row
from .test_real_forms import inbox_of, ledger_of

RECORD = re.compile(r"C\d\d-\d{4}")


@pytest.fixture(scope="module")
def c01_form(demo_master, tmp_path_factory) -> Path:
    [blank] = build_forms(demo_master, tmp_path_factory.mktemp("recovery-forms"), ["C01"]).written
    return blank


def numbers_in(receipt: Path) -> set[str]:
    return set(RECORD.findall(receipt.read_text(encoding="utf-8")))


def added_by(run, master: Path) -> str:
    """The one record number ``run()`` added to ``master``'s ledger."""
    before = set(ledger_of(master)["record_id"])
    run()
    [given] = set(ledger_of(master)["record_id"]) - before
    return given


def issues_write(text: str) -> list[SheetWrite]:
    return [SheetWrite(schema.ISSUES, [{"sheet": "台账", "row": 2, "message": text}])]


def set_setting(master: Path, item: str, value) -> None:
    """Staff type a value into 设置 (openpyxl stands in for Excel: this master has no decorations)."""
    wb = openpyxl.load_workbook(master)
    ws = wb[schema.SETTINGS.name]
    row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == item)
    row[1].value = value
    wb.save(master)


def run_cli(*argv: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "macros", *argv], cwd=ROOT, capture_output=True,
                          text=True, encoding="utf-8", timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, proc.stdout, proc.stderr


# ---------------------------------------------------------------- numbers announced, then a restore


def test_numbers_a_receipt_announced_are_not_given_again_after_a_restore(master_copy, c01_form):
    inbox = inbox_of(master_copy)
    before = set(ledger_of(master_copy)["record_id"])
    fill_form(c01_form, inbox / "C01-甲.xlsx", [new_row(activity="第一批体检"), new_row(activity="第二批体检")])
    first = consolidate(master_copy)
    announced = numbers_in(first.files[0].receipt)
    added = set(ledger_of(master_copy)["record_id"]) - before
    assert len(added) == 2 and added <= announced
    announced = added

    # The clerk restores the backup taken just before that consolidation.
    assert main(["restore", str(master_copy)]) == 0
    assert not announced & set(ledger_of(master_copy)["record_id"])

    fill_form(c01_form, inbox / "C01-乙.xlsx", [new_row(activity="第三批体检")])
    given = added_by(lambda: consolidate(master_copy), master_copy)
    # The committee was told C01-00xx meant 第一批体检: the number is not handed to another record.
    assert given not in announced
    assert int(given.split("-")[1]) > max(int(n.split("-")[1]) for n in announced)


def test_numbers_from_runs_before_the_number_file_existed_survive_a_restore(master_copy, c01_form):
    # An office upgrading: consolidations ran before the number file was kept. restore carries the
    # numbers of the master it replaces over into it.
    inbox = inbox_of(master_copy)
    fill_form(c01_form, inbox / "C01-甲.xlsx", [new_row(activity="第一批体检")])
    announced = added_by(lambda: consolidate(master_copy), master_copy)
    for kept in master_copy.parent.glob(f".{master_copy.name}.*.json"):
        kept.unlink()
    assert main(["restore", str(master_copy)]) == 0
    fill_form(c01_form, inbox / "C01-乙.xlsx", [new_row(activity="第二批体检")])
    given = added_by(lambda: consolidate(master_copy), master_copy)
    assert given != announced


def test_restore_names_the_consolidations_it_undoes_and_what_to_do(master_copy, c01_form, capsys):
    inbox = inbox_of(master_copy)
    fill_form(c01_form, inbox / "C01-甲.xlsx", [new_row(activity="第一批体检"), new_row(activity="第二批体检")])
    first = consolidate(master_copy)
    archived = first.files[0].moved_to
    announced = sorted(numbers_in(first.files[0].receipt) - set(ledger_of(archived)["record_id"].dropna()))
    capsys.readouterr()

    assert main(["restore", str(master_copy)]) == 0
    out = capsys.readouterr().out
    assert "C01-甲.xlsx" in out and archived.name in out  # which file, and where it is now
    assert "新增 2 行" in out and all(n in out for n in announced)
    assert str(inbox.absolute()) in out and "移回" in out  # what to do
    assert "不会再分给" in out  # and that the announced numbers stay theirs

    # --json says the same for scripts.
    assert main(["restore", str(master_copy), "--backup", list_backups(master_copy)[0].name, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lost"] == []  # that restore undid the restore: it undoes no consolidation

    # Moving the archived file back, as told, brings its rows back; numbers already announced stay unused.
    assert main(["restore", str(master_copy), "--backup", list_backups(master_copy)[1].name, "--json"]) == 0
    [lost] = json.loads(capsys.readouterr().out)["lost"]
    assert lost["source"] == "C01-甲.xlsx" and lost["archived"] == str(archived)
    assert sorted(lost["added"]) == announced
    shutil.move(archived, inbox / "C01-甲.xlsx")
    again = consolidate(master_copy)
    assert again.rows_added == 2
    assert set(ledger_of(master_copy)["activity"]) >= {"第一批体检", "第二批体检"}


def test_a_restore_that_undoes_nothing_says_nothing_about_consolidations(master, capsys):
    FileBook(master).write(issues_write("一"))
    assert main(["restore", str(master)]) == 0
    out = capsys.readouterr().out
    assert "汇总" not in out and "已用备份" in out


# ---------------------------------------------------------------- backups of two workbooks in one folder


def test_backups_of_a_workbook_whose_name_extends_the_masters_are_left_alone(master):
    other = master.with_name(f"{master.stem}-2021{master.suffix}")
    shutil.copy2(master, other)
    for text in ("一", "二", "三"):
        FileBook(other).write(issues_write(text), keep_backups=5)
    theirs = list_backups(other)
    assert len(theirs) == 3
    assert list_backups(master) == []  # not this master's backups
    FileBook(master).write(issues_write("四"), keep_backups=1)
    FileBook(master).write(issues_write("五"), keep_backups=1)
    assert list_backups(other) == theirs and all(p.exists() for p in theirs)  # pruning spared them
    assert len(list_backups(master)) == 1


def test_a_sibling_workbooks_temporary_file_is_not_cleaned_away(master):
    # Another master whose name extends this one's is being written right now (its own lock).
    other = master.with_name(f"{master.stem}-2021{master.suffix}")
    theirs = master.with_name(f".hb-{other.stem}-k3j_9x2a.tmp")
    theirs.write_bytes(b"another run's file being written")
    FileBook(master).write(issues_write("一"))
    assert theirs.exists()
    ours = master.with_name(f".hb-{master.stem}-ab12cd34.tmp")  # one of ours, left by a killed run
    ours.write_bytes(b"left over")
    FileBook(master).write(issues_write("二"))
    assert not ours.exists()


def test_restore_list_of_a_renamed_master_points_at_the_old_names_backups(master, capsys):
    FileBook(master).write(issues_write("一"))
    renamed = master.with_name(f"新{master.name}")
    master.rename(renamed)
    assert main(["restore", str(renamed), "--list"]) == 0
    out = capsys.readouterr().out
    old = list_backups(master)[0].name
    assert "还没有备份" in out and old in out and "--backup" in out
    # ... and that backup can be named to restore the renamed master.
    assert main(["restore", str(renamed), "--backup", str(master.parent / "backups" / old)]) == 0
    out = capsys.readouterr().out  # restored, with a word that it was made under another name
    assert "不是以" in out and renamed.name in out


# ---------------------------------------------------------------- choosing the backup


def test_backup_named_with_or_without_suffix_or_as_a_path(master):
    FileBook(master).write(issues_write("一"))
    original = list_backups(master)[0].read_bytes()
    FileBook(master).write(issues_write("二"))
    oldest = list_backups(master)[-1]
    for name in (oldest.name, oldest.stem, str(oldest), str(oldest.relative_to(master.parent))):
        cwd = os.getcwd()
        os.chdir(master.parent)
        try:
            restore(master, name)
        finally:
            os.chdir(cwd)
        assert master.read_bytes() == original, name


def test_a_file_that_is_not_a_master_is_not_restored_over_it(master, c01_form, capsys):
    before = master.read_bytes()
    assert main(["restore", str(master), "--backup", str(c01_form)]) == 2
    err = capsys.readouterr().err
    assert c01_form.name in err and schema.PROJECTS.name in err  # what it lacks
    assert master.read_bytes() == before and list_backups(master) == []


def test_trying_backups_one_after_another_loses_none_of_them(master):
    for text in ("一", "二", "三"):
        FileBook(master).write(issues_write(text), keep_backups=3)
    backups = list_backups(master)
    contents = {p: p.read_bytes() for p in backups}
    # The clerk looks for the right day: the oldest, then the next, then the newest.
    for chosen in reversed(backups):
        restore(master, chosen.name, keep=3)
        assert master.read_bytes() == contents[chosen]
        assert all(p.exists() and p.read_bytes() == contents[p] for p in backups)
    # The file as it was before the first restore is kept too (a restore can be undone).
    assert len(list_backups(master)) == 4


def test_a_backups_folder_that_is_a_file_is_a_clear_error_and_the_master_is_untouched(master):
    (master.parent / "backups").write_text("not a folder")
    before = master.read_bytes()
    with pytest.raises(HealthbookError) as err:
        FileBook(master).write(issues_write("一"))
    assert "backups" in str(err.value) and "文件夹" in str(err.value)
    assert err.value.exit_code == 2
    assert master.read_bytes() == before
    assert not list(master.parent.glob(".hb-*.tmp"))


def test_report_says_where_its_notices_are_when_the_master_cannot_be_backed_up(master, tmp_path, capsys):
    """The notices are rendered before the one write: refused for want of a backup, the command
    still says they were made, and where (before, only the refusal: "本次不写入")."""
    (master.parent / "backups").write_text("not a folder")
    before = master.read_bytes()
    out = tmp_path / "通知"
    assert main(["report", str(master), "--out", str(out), "--as-of", "2020-11-15"]) == 2
    said = capsys.readouterr().err
    assert "backups" in said and "通知已生成" in said and str(out) in said and "未更新" in said
    assert any(out.glob("进度通报*.docx")) and master.read_bytes() == before


@pytest.mark.parametrize("typed, kept", [("二十", 20), ("20份", 20), (-3, 10), (2.5, 10), (None, 10), (0, 1)])
def test_backups_kept_is_read_as_the_validator_reads_it(master_copy, typed, kept):
    # Never fewer backups than the default because of a value the validator calls wrong.
    from macros.book.write import backups_kept

    set_setting(master_copy, "备份保留份数", typed)
    assert backups_kept(master_copy) == kept


# ---------------------------------------------------------------- the lock file


def test_a_lock_file_this_user_cannot_write_does_not_stop_every_later_run(master):
    # The nightly task runs as another account and left its lock file behind; this user can read
    # it but not write it (chattr +i: even root cannot write it).
    from macros.book.lock import lock_path

    lock = lock_path(master)
    lock.write_text("pid 1 @ server")
    try:
        subprocess.run(["chattr", "+i", str(lock)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not available on this file system")
    try:
        FileBook(master).write(issues_write("一"))
    finally:
        subprocess.run(["chattr", "-i", str(lock)], check=True, capture_output=True)
    assert list_backups(master)


# ---------------------------------------------------------------- staged results, night after night


def excel_open(master: Path, user: bytes = b"zhou") -> Path:
    owner = master.with_name("~$" + master.name)
    owner.write_bytes(bytes([len(user)]) + user.ljust(53))
    return owner


def test_staged_results_do_not_pile_up_while_excel_stays_open(master_copy, c01_form):
    inbox = inbox_of(master_copy)
    owner = excel_open(master_copy)
    staged = []
    for night in range(3):  # Excel left open for three nights; a form arrives each day
        fill_form(c01_form, inbox / f"C01-第{night}天.xlsx", [new_row(activity=f"第{night}天的体检")])
        run = consolidate(master_copy, now=datetime(2026, 11, 20 + night, 2, 0))
        assert run.staged and run.exit_status == 3
        staged.append(run.staged)
        # The newest holds everything the older ones held (the inbox is untouched): one is enough.
        assert staged_files(master_copy) == [run.staged]
    assert len(list(inbox.iterdir())) == 3

    owner.unlink()
    done = consolidate(master_copy, now=datetime(2026, 11, 23, 2, 0))
    assert done.master_written and done.rows_added == 3
    assert staged_files(master_copy) == []  # out of date once the master is written: removed
    text = summary_text(done)
    assert staged[-1].name in text and "已删除" in text


def test_a_staged_result_someone_opened_or_saved_is_never_deleted(master_copy, c01_form):
    inbox = inbox_of(master_copy)
    owner = excel_open(master_copy)
    fill_form(c01_form, inbox / "C01-甲.xlsx", [new_row(activity="甲")])
    first = consolidate(master_copy, now=datetime(2026, 11, 20, 2, 0)).staged
    later = first.stat().st_mtime + 7 * 3600  # the clerk saved work into it that morning
    os.utime(first, (later, later))
    fill_form(c01_form, inbox / "C01-乙.xlsx", [new_row(activity="乙")])
    second = consolidate(master_copy, now=datetime(2026, 11, 21, 2, 0)).staged
    excel_open(second, b"wang")  # and has the newer one open now
    owner.unlink()
    done = consolidate(master_copy, now=datetime(2026, 11, 22, 2, 0))
    assert done.master_written
    assert first.exists() and second.exists()
    text = summary_text(done)
    assert first.name in text and "未自动删除" in text


def test_a_result_refused_by_the_check_is_kept_and_named_apart(master_copy, c01_form, monkeypatch):
    from macros.book import package

    inbox = inbox_of(master_copy)
    original_save = package.Package.save

    def tampering_save(self, target):  # a writer bug: a part outside the owned sheets changes
        self.changed["docProps/app.xml"] = b"<x/>"
        return original_save(self, target)

    fill_form(c01_form, inbox / "C01-甲.xlsx", [new_row(activity="甲")])
    monkeypatch.setattr(package.Package, "save", tampering_save)
    with pytest.raises(WriteRefused) as err:
        consolidate(master_copy, refresh=False, now=datetime(2026, 11, 20, 2, 0))
    monkeypatch.undo()
    refused = err.value.staged
    assert "核对未通过" in refused.name and refused in staged_files(master_copy)
    done = consolidate(master_copy, now=datetime(2026, 11, 21, 2, 0))
    assert done.master_written and refused.exists()  # evidence for the technical contact
    text = summary_text(done)
    assert refused.name in text and "技术联系人" in text and "可以删除" not in text


# ---------------------------------------------------------------- a broken master, a missing master


def test_restoring_a_broken_master_twice_never_brings_the_broken_copy_back(master, capsys):
    FileBook(master).write(issues_write("一"))
    good = master.read_bytes()
    FileBook(master).write(issues_write("二"))
    master.write_bytes(master.read_bytes()[:5000])  # cut short by a sync tool
    assert main(["restore", str(master)]) == 0
    broken_copy = list_backups(master)[0]  # the broken file was kept too (nothing is thrown away)
    assert broken_copy.stat().st_size == 5000
    capsys.readouterr()
    master.unlink()  # and later someone deletes the master: restore brings back the newest good one
    assert main(["restore", str(master)]) == 0
    out = capsys.readouterr().out
    assert master.read_bytes() == good
    assert broken_copy.name in out and "跳过" in out
    # Naming the broken copy: the message names it (not a temporary file) and what to do.
    assert main(["restore", str(master), "--backup", broken_copy.name]) == 2
    err = capsys.readouterr().err
    assert broken_copy.name in err and ".tmp" not in err and "--list" in err


# ---------------------------------------------------------------- the scheduled script


def test_two_nightly_runs_at_once_merge_each_form_once(master_copy, c01_form):
    # Task Scheduler started the task again while the last one ran (or cron and a clerk at once).
    inbox = inbox_of(master_copy)
    before = len(ledger_of(master_copy))
    for name in ("甲", "乙", "丙"):
        fill_form(c01_form, inbox / f"C01-{name}.xlsx", [new_row(activity=f"{name}的体检")])
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py"), str(master_copy), "--min-age", "0"]
    runs = [subprocess.Popen(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
            for _ in range(2)]
    outcomes = [(p.communicate(timeout=600)[1], p.returncode) for p in runs]
    # Each waits for the other or says, in Chinese, that another run is writing (exit 3).
    for err, code in outcomes:
        assert code in (0, 3), err
        if code == 3:
            assert "另一个 healthbook 任务" in err and "Traceback" not in err
    assert len(ledger_of(master_copy)) == before + 3  # each row once
    archived = sorted(p.name for p in folders_of(master_copy).archive.iterdir())
    assert len(archived) == 3 and not any(inbox.iterdir())
    assert staged_files(master_copy) == []


def folders_of(master: Path):
    from macros.book.read import read_workbook
    from macros.consolidate import folders

    return folders(master, read_workbook(master, [schema.SETTINGS]).settings)


def test_half_copies_a_killed_backup_left_are_cleared_by_the_next_write(master):
    FileBook(master).write(issues_write("一"))
    folder = master.parent / "backups"
    ours = folder / f".{master.stem}-20261120-020000-123456{master.suffix}.partial"
    theirs = folder / f".{master.stem}-2021-20261120-020000-123456{master.suffix}.partial"
    for half in (ours, theirs):
        half.write_bytes(master.read_bytes()[:1000])
    FileBook(master).write(issues_write("二"))
    assert not ours.exists() and theirs.exists()  # another workbook's run may be copying that one


def test_the_log_two_masters_in_one_folder_share_names_each_runs_master(master_copy, c01_form):
    other = master_copy.with_name(f"{master_copy.stem}-旧{master_copy.suffix}")
    shutil.copy2(master_copy, other)
    for master in (master_copy, other):
        consolidate(master, inbox=master.parent / f"收件箱-{master.stem}")
    runs = [line for line in (master_copy.parent / "consolidate.log").read_text(encoding="utf-8").splitlines()
            if "本次运行" in line]
    assert [master_copy.name in runs[0], other.name in runs[1]] == [True, True]


def test_a_result_another_run_staged_during_this_write_is_kept(master):
    from datetime import timedelta

    from macros.book.write import stage

    yesterday = datetime.now() - timedelta(days=1)
    old = stage(master, issues_write("昨晚"), now=yesterday)
    os.utime(old, (yesterday.timestamp(), yesterday.timestamp()))  # staged last night, untouched since
    soon = datetime.now() + timedelta(minutes=1)
    theirs = stage(master, issues_write("另一个任务"), now=soon)
    os.utime(theirs, (soon.timestamp(), soon.timestamp()))  # as if staged while this write ran
    result = FileBook(master).write(issues_write("本次"))
    assert result.dropped == [old] and not old.exists()
    assert theirs.exists()  # its run just told someone where it is


def test_a_master_named_like_an_email_attachment_has_its_backups_found_and_rotated(master):
    # Outlook saves an attachment opened twice as "健康台账[1].xlsx": [1] is not a glob class here.
    bracketed = master.with_name(f"{master.stem}[1]{master.suffix}")
    master.rename(bracketed)
    for text in ("一", "二", "三"):
        FileBook(bracketed).write(issues_write(text), keep_backups=2)
    assert len(list_backups(bracketed)) == 2
    assert main(["restore", str(bracketed)]) == 0
