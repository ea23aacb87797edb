"""Locks, owner files, crashes and restore: the master is never left broken or half-written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.backup import list_backups
from macros.book.lock import WorkbookLock, owner_of, parse_excel_owner
from macros.book.read import read_workbook
from macros.book.write import FileBook, restore
from macros.book.write_types import Mark, SheetWrite
from macros.cli import main
from macros.errors import WorkbookBusy

ROOT = Path(__file__).resolve().parents[1]




def excel_owner_file(user: str) -> bytes:
    """An owner file laid out as Excel writes it: length + ANSI name padded to 54 bytes, then
    a 16-bit length and the name in UTF-16LE, padded."""
    ansi = user.encode("gbk")
    wide = user.encode("utf-16-le")
    data = bytes([len(ansi)]) + ansi.ljust(54, b" ") + struct.pack("<H", len(user)) + wide
    return data.ljust(165, b" ")


def issues_write(n: int = 3) -> list[SheetWrite]:
    return [SheetWrite(schema.ISSUES, [{"sheet": "台账", "row": i + 2, "message": f"问题{i}"} for i in range(n)])]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("user", ["张三", "Administrator", "李 小 明"])
def test_owner_file_names_the_user_and_refuses(master, user):
    owner = master.with_name("~$" + master.name)
    owner.write_bytes(excel_owner_file(user))
    before = digest(master)
    with pytest.raises(WorkbookBusy) as err:
        FileBook(master).write(issues_write())
    message = str(err.value)
    assert user in message and master.name in message and "可能是异常退出" in message
    assert err.value.exit_code == 3
    assert digest(master) == before and not list_backups(master)


def test_owner_file_variants_are_read():
    assert parse_excel_owner(bytes([5]) + b"alice".ljust(54, b" ")) == "alice"  # no UTF-16 part
    assert parse_excel_owner(bytes([4]) + "王五".encode("utf-16-le").ljust(54, b"\x00")) == "王五"
    assert parse_excel_owner(b"") is None


def test_libreoffice_lock_file_counts_as_open(master):
    master.with_name(f".~lock.{master.name}#").write_text(",王芳,host,27.11.2026 09:00,file:///x;", "utf-8")
    assert owner_of(master).user == "王芳"
    with pytest.raises(WorkbookBusy, match="王芳"):
        FileBook(master).write(issues_write())


def test_cli_exit_code_3_when_open(master, capsys):
    master.with_name("~$" + master.name).write_bytes(excel_owner_file("张三"))
    (master.parent / "backups").mkdir(exist_ok=True)
    shutil.copy2(master, master.parent / "backups" / f"{master.stem}-20200101-000000-000000{master.suffix}")
    assert main(["restore", str(master)]) == 3
    assert "张三" in capsys.readouterr().err


def test_a_second_run_waits_then_reports_busy(master):
    holder = WorkbookLock(master)
    holder.acquire()
    try:
        before = digest(master)
        start = time.monotonic()
        with pytest.raises(WorkbookBusy, match="另一个 healthbook 任务"):
            FileBook(master, wait=0.5).write(issues_write())
        assert time.monotonic() - start >= 0.5
        assert digest(master) == before
    finally:
        holder.release()
    FileBook(master, wait=0.5).write(issues_write())  # free again


def test_changed_since_read_is_refused(master):
    book = FileBook(master)
    book.read()
    os.utime(master, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # someone saved it
    with pytest.raises(WorkbookBusy, match="被修改"):
        book.write(issues_write())
    book.read()
    book.write(issues_write())


def test_lock_is_released_when_the_holder_is_killed(master):
    script = ("import sys, time; sys.path.insert(0, sys.argv[1]);"
              "from macros.book.lock import WorkbookLock; WorkbookLock(sys.argv[2]).acquire();"
              "print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(master)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"locked"
    with pytest.raises(WorkbookBusy):
        FileBook(master, wait=0.2).write(issues_write())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    FileBook(master, wait=2).write(issues_write())


WRITER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.test_write import the_write
from macros.book.write import FileBook
book = FileBook(sys.argv[2])
sheets, marks = the_write(book.path)
print("ready", flush=True)
book.write(sheets, marks)
print("done", flush=True)
"""


def _run_writer(path: Path) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    return proc, time.monotonic()


def test_killed_writes_leave_the_old_or_the_new_file(master, tmp_path):
    # The reference: the same write, uninterrupted, on a copy (timed from "ready" to "done").
    reference = tmp_path / "reference" / master.name
    reference.parent.mkdir()
    shutil.copy2(master, reference)
    proc, start = _run_writer(reference)
    assert proc.stdout.readline().strip() == b"done", proc.stderr.read().decode()[-2000:]
    seconds = time.monotonic() - start
    proc.wait()
    new, old = digest(reference), digest(master)
    assert new != old
    outcomes = set()
    for fraction in (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 1.2, 3.0):
        work = tmp_path / f"kill-{fraction}" / master.name
        work.parent.mkdir()
        shutil.copy2(master, work)
        proc, _ = _run_writer(work)
        time.sleep(fraction * seconds)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = digest(work)
        assert got in (old, new), f"killed at {fraction:.0%} of a write: the master is neither old nor new"
        outcomes.add("new" if got == new else "old")
        assert zipfile.ZipFile(work).testzip() is None
        CalamineWorkbook.from_path(str(work)).get_sheet_by_name(schema.LEDGER.name).to_python()
        # The next run is not blocked (the OS released the lock) and clears the leftover temp file.
        FileBook(work, wait=2).write(issues_write())
        assert not list(work.parent.glob(".hb-*.tmp"))
    assert outcomes == {"old", "new"}  # kills landed both before and after the replace


def test_restore_round_trip(master, capsys):
    original = digest(master)
    book = FileBook(master)
    book.write(issues_write(), [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "x")])
    written = digest(master)
    assert written != original
    [backup] = list_backups(master)
    assert digest(backup) == original

    assert main(["restore", str(master), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["backups"]
    assert [b["name"] for b in listed] == [backup.name]
    # Listed for people: each backup, then how to bring one back (the command, with this path).
    assert main(["restore", str(master), "--list"]) == 0
    out = capsys.readouterr().out
    assert backup.name in out and f'healthbook restore "{master}" --backup ' in out

    assert main(["restore", str(master), "--backup", backup.name]) == 0
    assert digest(master) == original
    # The file it replaced was backed up first, so the restore itself can be undone.
    newest = list_backups(master)[0]
    assert digest(newest) == written
    result = restore(master, newest.name)
    assert digest(master) == written and result.restored == newest


def test_restore_of_an_unknown_backup_is_a_clear_error(master, capsys):
    assert main(["restore", str(master), "--backup", "nope.xlsm"]) == 2
    assert "找不到" in capsys.readouterr().err


def test_write_or_stage_stages_when_open(master):
    master.with_name("~$" + master.name).write_bytes(excel_owner_file("张三"))
    before = digest(master)
    result = FileBook(master).write_or_stage(issues_write(2))
    assert digest(master) == before
    assert result.staged and result.staged.exists() and "张三" in result.busy
    grid = CalamineWorkbook.from_path(str(result.staged)).get_sheet_by_name(schema.ISSUES.name).to_python()
    assert [row[6] for row in grid[1:]] == ["问题0", "问题1"]


def test_a_write_that_fails_its_check_is_refused_and_staged(master, monkeypatch):
    # Simulate a writer bug: a part outside the owned sheets changes. The check must catch it.
    from macros.book import package

    original_save = package.Package.save

    def tampering_save(self, target):
        self.changed["xl/vbaProject.bin"] = b"not the macros any more"
        return original_save(self, target)

    monkeypatch.setattr(package.Package, "save", tampering_save)
    before = digest(master)
    from macros.book.write import WriteRefused

    with pytest.raises(WriteRefused) as err:
        FileBook(master).write(issues_write())
    assert digest(master) == before and not list_backups(master)
    assert err.value.staged.exists() and "vbaProject.bin" in str(err.value)
    assert err.value.exit_code == 2


def test_a_wrong_value_in_rows_written_in_bulk_is_refused(master, monkeypatch):
    # Simulate an encoder bug in one cell of the added rows (checked column by column): the
    # re-read must name that cell, and the master stays as it was.
    from macros.book import package
    from macros.book.write import WriteRefused

    book = FileBook(master)
    rows = book.read()[schema.LEDGER.name].to_dict("records")
    added = [{**rows[0], "record_id": f"C01-{9000 + i}", "activity": f"批量新增{i}", "_row": None}
             for i in range(50)]
    original_save = package.Package.save

    def tampering_save(self, target):
        part = self.sheets[schema.LEDGER.name]
        self.set_text(part, self.text(part).replace("批量新增37<", "批量新增结果被改<", 1))
        return original_save(self, target)

    monkeypatch.setattr(package.Package, "save", tampering_save)
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        book.write([SheetWrite(schema.LEDGER, rows + added)])
    assert digest(master) == before
    assert "批量新增37" in str(err.value) and "批量新增结果被改" in str(err.value)
    assert f"台账!E{len(rows) + 1 + 38}" in str(err.value)


def test_large_sheets_compressed_in_the_background_read_back(master, monkeypatch):
    # Parts over LARGE_PART are deflated by a thread while the next sheet is built; the zip
    # entry must carry the right CRC and sizes for every reader.
    from macros.book import package

    monkeypatch.setattr(package, "LARGE_PART", 1000)
    book = FileBook(master)
    rows = book.read()[schema.LEDGER.name].to_dict("records")
    added = [{**rows[0], "record_id": f"C01-{9000 + i}", "activity": f"后台压缩{i}", "_row": None}
             for i in range(300)]
    book.write([SheetWrite(schema.LEDGER, rows + added), *issues_write(200)])
    with zipfile.ZipFile(master) as zf:
        assert zf.testzip() is None  # every entry's CRC and size
        sheets = [i for i in zf.infolist() if i.filename.startswith("xl/worksheets/sheet")]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in sheets)
    ledger = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.LEDGER.name).to_python()
    assert [r[4] for r in ledger[-300:]] == [f"后台压缩{i}" for i in range(300)]
    issues = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.ISSUES.name).to_python()
    assert [r[6] for r in issues[1:]] == [f"问题{i}" for i in range(200)]


def test_locked_holds_the_lock_across_read_and_write(master):
    book = FileBook(master)
    with book.locked():
        frames = book.read()
        with pytest.raises(WorkbookBusy):  # another run must wait for us
            FileBook(master, wait=0.2).write(issues_write())
        rows = frames[schema.LEDGER.name].to_dict("records")
        rows[0]["note"] = "锁内修改"
        book.write([SheetWrite(schema.LEDGER, rows)])  # re-entrant for the holder
    FileBook(master, wait=0.2).write(issues_write())  # released
    assert CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.LEDGER.name).to_python()[1][10] == "锁内修改"


@pytest.mark.parametrize("where", ["lock", "temp"])
def test_a_folder_that_takes_no_files_is_a_clear_error(master, monkeypatch, where):
    from macros.book import lock, write
    from macros.errors import FolderNotWritable

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    if where == "lock":
        monkeypatch.setattr(lock.os, "open", refuse)
    else:
        monkeypatch.setattr(write.tempfile, "mkstemp", refuse)
    before = digest(master)
    with pytest.raises(FolderNotWritable, match="写入权限") as err:
        FileBook(master).write(issues_write())
    assert err.value.exit_code == 2 and str(master.parent) in str(err.value)
    assert digest(master) == before


def ledger_with_added(book: FileBook, n: int, text: str) -> list[dict]:
    rows = book.read()[schema.LEDGER.name].to_dict("records")
    return rows + [{**rows[0], "record_id": f"C01-{9000 + i}", "activity": f"{text}{i}", "_row": None}
                   for i in range(n)]


def test_a_large_sheet_is_re_read_while_the_others_are_built(master, monkeypatch):
    # The early reading (from a snapshot of the package) stands in for reading the written file
    # only for the very bytes written; here it is used, and the file reads back right.
    from macros.book import package, verify

    monkeypatch.setattr(package, "LARGE_PART", 1000)
    early = []
    original = verify.GridReads.early
    monkeypatch.setattr(verify.GridReads, "early", lambda self, sheet, *a: (early.append(sheet), original(self, sheet, *a)))
    book = FileBook(master)
    book.write([SheetWrite(schema.LEDGER, ledger_with_added(book, 100, "提前核对")), *issues_write(50)])
    assert schema.LEDGER.name in early
    ledger = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.LEDGER.name).to_python()
    assert [r[4] for r in ledger[-100:]] == [f"提前核对{i}" for i in range(100)]


def test_an_early_reading_is_not_trusted_for_other_bytes(master, monkeypatch):
    # Simulate a fault between the check and the file: the ledger part that reaches the disk is
    # not the one read early. Its CRC is right, so only comparing the bytes can tell.
    from macros.book import package
    from macros.book.write import WriteRefused

    monkeypatch.setattr(package, "LARGE_PART", 1000)
    original = package.Package._write_part

    def other_bytes(self, zf, fh, info, data):
        if info.filename == self.sheets[schema.LEDGER.name]:
            data = data.replace("晚到的核对7<".encode(), "被换掉的值7<".encode())
        return original(self, zf, fh, info, data)

    monkeypatch.setattr(package.Package, "_write_part", other_bytes)
    book = FileBook(master)
    before = digest(master)
    with pytest.raises(WriteRefused) as err:
        book.write([SheetWrite(schema.LEDGER, ledger_with_added(book, 20, "晚到的核对"))])
    assert digest(master) == before and "does not hold the sheet that was checked" in str(err.value)


def test_an_early_reading_that_fails_is_done_from_the_written_file(master, monkeypatch):
    from macros.book import package

    monkeypatch.setattr(package, "LARGE_PART", 1000)

    def broken_snapshot(self, part):
        def build():
            raise OSError("snapshot failed")
        return self.data(part), build

    monkeypatch.setattr(package.Package, "snapshot", broken_snapshot)
    book = FileBook(master)
    book.write([SheetWrite(schema.LEDGER, ledger_with_added(book, 30, "回退核对"))])
    ledger = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.LEDGER.name).to_python()
    assert [r[4] for r in ledger[-30:]] == [f"回退核对{i}" for i in range(30)]


# --- a master held for a moment (Windows: an antivirus scan, a backup tool) ----------------------


@pytest.fixture
def held(master):
    """``hold(True/False)``: the master cannot be replaced while held — the immutable attribute
    makes rename over it fail with PermissionError, as a sharing violation does on Windows."""
    def hold(on: bool) -> None:
        subprocess.run(["chattr", "+i" if on else "-i", str(master)], check=True, capture_output=True)

    try:
        hold(True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not available on this file system")
    yield hold
    hold(False)


def test_a_master_held_for_a_moment_is_written_once_it_is_let_go(master, held):
    import threading

    threading.Timer(0.3, held, (False,)).start()
    result = FileBook(master).write(issues_write())
    assert result.backup is not None  # written, not busy
    issues = read_workbook(master, [schema.ISSUES])[schema.ISSUES.name]
    assert list(issues["message"]) == ["问题0", "问题1", "问题2"]
    assert not list(master.parent.glob("*.tmp"))


def test_a_master_held_for_good_is_busy_and_stays_as_it_was(master, held, monkeypatch):
    from macros.book import write

    monkeypatch.setattr(write, "REPLACE_WAITS", (0.05, 0.05))
    held(False)
    FileBook(master).write(issues_write(1), keep_backups=2)
    FileBook(master).write(issues_write(2), keep_backups=2)
    backups = list_backups(master)
    held(True)
    before = digest(master)
    for _ in range(3):  # a master held for good, night after night
        with pytest.raises(WorkbookBusy, match="正被其他程序占用") as err:
            FileBook(master).write(issues_write(), keep_backups=2)
        assert err.value.exit_code == 3 and master.name in str(err.value)
    assert digest(master) == before
    assert list_backups(master) == backups  # the real backups are not pushed out by copies of it
    assert not list(master.parent.glob("*.tmp"))  # the would-be result is not left behind


def test_a_held_master_that_excel_opens_meanwhile_is_busy_at_once_naming_who(master, held):
    import threading

    owner = master.with_name("~$" + master.name)
    threading.Timer(0.05, owner.write_bytes, (excel_owner_file("周敏"),)).start()
    before = digest(master)
    with pytest.raises(WorkbookBusy, match="周敏"):  # not the waiting out of a scan
        FileBook(master).write(issues_write())
    assert digest(master) == before


def test_the_written_master_and_a_staged_result_keep_the_master_s_access(master_copy):
    """On a shared folder staff's access may come from the master's mode, owner or group. Replaced
    by a file the scheduled job made, the master would belong to the job's account; a staged result
    made as a temporary file would be readable by that account alone (0600)."""
    rows = read_workbook(master_copy)[schema.LEDGER.name].to_dict("records")
    rows[0]["activity"] = "改一处，写入一次"
    master_copy.chmod(0o664)
    staff = (1000, 1000) if os.geteuid() == 0 else None  # only root may give a file away
    if staff:
        os.chown(master_copy, *staff)
    FileBook(master_copy).write([SheetWrite(schema.LEDGER, rows)])
    st = master_copy.stat()
    assert st.st_mode & 0o777 == 0o664
    if staff:
        assert (st.st_uid, st.st_gid) == staff
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(b"\x04zhou")
    rows[0]["activity"] = "主工作簿开着时再改一处"
    staged = FileBook(master_copy).write_or_stage([SheetWrite(schema.LEDGER, rows)]).staged
    assert staged is not None and staged.stat().st_mode & 0o777 == 0o664
    if staff:
        assert (staged.stat().st_uid, staged.stat().st_gid) == staff
