"""The Excel buttons back the workbook's saved file up before their first write (``LiveBook.protect``).

Real xlwings JSON books built from real workbooks in tmp_path; the book's name is the file's full
path, as ``book.fullname`` is on the desktop (COM) for a saved workbook.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import xlwings as xw

from macros import demo, excel, schema
from macros.book.backup import BACKUP_DIR, list_backups
from macros.book.build import build_workbook
from macros.book.live import LiveBook
from macros.book.write_types import SheetWrite
from macros.cli import main as cli_main
from macros.marks import validation_writes
from macros.rollup import rollup, rollup_sheets
from macros.validate import validate

from .conftest import ROOT
from .xlwings_book import book_payload

AS_OF = demo.DEMO_AS_OF
# Calls that change the book (an alert is only a message box).
CHANGES = {"setValues", "rangeClear", "rangeClearContents", "setRangeColors", "addNote", "deleteNote",
           "rangeInsert", "resizeTable", "setNumberFormat"}


def rows_keeping(keep: int) -> dict[str, list[dict]]:
    rows = demo.demo_rows()
    for row in rows[schema.SETTINGS.name]:
        if row["item"] == schema.SETTINGS_BY_KEY["backups_kept"].item:
            row["value"] = str(keep)
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A master as ``healthbook init`` builds it, and one with 备份保留份数 2 (read-only: copy)."""
    folder = tmp_path_factory.mktemp("built")
    build_workbook(folder / "healthbook.xlsm", demo.demo_rows())
    build_workbook(folder / "keep2.xlsx", rows_keeping(2))
    return folder


@pytest.fixture
def master(built, tmp_path):
    target = tmp_path / "healthbook.xlsm"
    shutil.copy2(built / "healthbook.xlsm", target)
    return target


def saved_book(path) -> xw.Book:
    """The book a button hands over for the saved workbook at ``path`` (fullname: its path)."""
    return xw.Book(json=book_payload(path, name=str(path)))


def alerts(book: xw.Book) -> list[list]:
    return [a["args"] for a in book.json()["actions"] if a["func"] == "alert"]


def changes(book: xw.Book) -> list[dict]:
    return [a for a in book.json()["actions"] if a["func"] in CHANGES]


def test_a_button_backs_the_saved_file_up_before_writing(master):
    before = master.read_bytes()
    book = saved_book(master)
    assert excel.validate(book, as_of=AS_OF) is not None
    [backup] = list_backups(master)
    assert backup.parent == master.parent / BACKUP_DIR
    assert backup.read_bytes() == before and master.read_bytes() == before
    assert changes(book)  # the macro did write (into the open book)
    [[message, *_]] = alerts(book)
    assert backup.name in message
    # healthbook restore lists it, and brings it back.
    assert cli_main(["restore", str(master), "--list", "--json"]) == 0
    master.write_bytes(b"mangled and saved")
    assert cli_main(["restore", str(master), "--backup", backup.name]) == 0
    assert master.read_bytes() == before


def test_every_macro_is_covered(master, tmp_path):
    for run in (lambda b: excel.rollup(b, as_of=AS_OF),
                lambda b: excel.notices(b, as_of=AS_OF, base=tmp_path / "n"),
                lambda b: excel.report(b, as_of=AS_OF, base=tmp_path / "r")):
        shutil.rmtree(master.parent / BACKUP_DIR, ignore_errors=True)
        book = saved_book(master)
        assert run(book) is not None
        [backup] = list_backups(master)
        assert backup.read_bytes() == master.read_bytes()
        assert backup.name in alerts(book)[-1][0] and alerts(book)[-1][3] == "info"


def test_several_writes_of_one_run_make_one_backup(master):
    live = LiveBook(saved_book(master))
    workbook = live.read()
    validation = validate(workbook.frames, workbook.settings, AS_OF)
    issues, marks = validation_writes(validation)
    live.write(issues, marks)
    live.write(rollup_sheets(rollup(validation, workbook.settings, AS_OF)))
    assert live.counts["writes"] >= 4 and live.counts["backups"] == 1
    assert list_backups(master) == [live.backup] and live.backup_made


def test_pressing_again_before_saving_makes_no_new_backup(master, built):
    excel.validate(saved_book(master), as_of=AS_OF)
    first = list_backups(master)
    for _ in range(3):
        book = saved_book(master)
        excel.rollup(book, as_of=AS_OF)
        assert list_backups(master) == first
        message = alerts(book)[-1][0]
        assert first[0].name in message and "未再保存" in message
    # Staff save (the file's bytes change): the next press backs the new version up.
    shutil.copyfile(built / "keep2.xlsx", master)
    excel.validate(saved_book(master), as_of=AS_OF)
    newest, older = list_backups(master)
    assert older == first[0] and newest.read_bytes() == master.read_bytes()


def test_a_backup_of_the_same_size_but_other_bytes_is_not_taken_for_the_file(master):
    payload = book_payload(master, name=str(master))
    excel.validate(xw.Book(json=copy.deepcopy(payload)), as_of=AS_OF)
    [first] = list_backups(master)
    data = bytearray(master.read_bytes())
    data[len(data) // 2] ^= 0xFF  # saved again: the same size, one byte differs
    master.write_bytes(bytes(data))
    excel.validate(xw.Book(json=copy.deepcopy(payload)), as_of=AS_OF)
    newest, older = list_backups(master)
    assert older == first and newest.read_bytes() == bytes(data)


def test_the_setting_for_backups_kept_is_respected(built, tmp_path):
    master = tmp_path / "keep2.xlsx"
    shutil.copy2(built / "keep2.xlsx", master)
    folder = master.parent / BACKUP_DIR
    folder.mkdir()
    old = [folder / f"keep2-2020010{i}-090000-000000.xlsx" for i in range(1, 4)]
    for i, path in enumerate(old):
        path.write_bytes(f"older copy {i}".encode())
    excel.validate(saved_book(master), as_of=AS_OF)
    kept = list_backups(master)
    assert len(kept) == 2 and kept[1] == old[-1]
    assert kept[0].read_bytes() == master.read_bytes()


def test_a_write_before_any_read_keeps_as_many_as_the_file_says(built, tmp_path):
    master = tmp_path / "keep2.xlsx"
    shutil.copy2(built / "keep2.xlsx", master)
    folder = master.parent / BACKUP_DIR
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"keep2-2020010{i}-090000-000000.xlsx").write_bytes(f"older copy {i}".encode())
    live = LiveBook(saved_book(master))
    live.write([SheetWrite(schema.ISSUES, [], note="无问题")])
    assert len(list_backups(master)) == 2 and list_backups(master)[0] == live.backup


def test_a_book_with_no_file_here_is_written_without_backup_and_says_so(master, tmp_path, monkeypatch):
    # The xlwings Server's JSON book carries the name only: a file of that name in the current
    # folder is some other copy, not the workbook, and is not backed up.
    monkeypatch.chdir(tmp_path)
    for name in (master.name, "工作簿1", "https://example.sharepoint.com/sites/jd/healthbook.xlsm",
                 str(tmp_path / "moved-away.xlsm")):
        book = xw.Book(json=book_payload(master, name=name))
        assert excel.validate(book, as_of=AS_OF) is not None
        assert changes(book)
        [[message, _, _, mode, *_]] = alerts(book)
        assert "没有备份" in message and mode == "info"
    assert not (tmp_path / BACKUP_DIR).exists() and not list_backups(master)


def test_a_backup_that_cannot_be_made_refuses_the_run(master):
    (master.parent / BACKUP_DIR).write_text("a file where the folder should be")
    payload = book_payload(master, name=str(master))
    for run in (excel.validate, excel.rollup, excel.report):
        book = xw.Book(json=copy.deepcopy(payload))
        assert run(book, as_of=AS_OF) is None
        assert changes(book) == []  # nothing written into the book
        [[message, _, _, mode, *_]] = alerts(book)
        assert mode == "critical" and str(master.parent / BACKUP_DIR) in message
        assert ("没有改动工作簿" in message or "未改动" in message) and "不是文件夹" in message
        if run is excel.report:  # its notices are made before the write: the box says where they are
            folder = master.parent / schema.SETTINGS_BY_KEY["notices"].default
            assert "通知已生成" in message and str(folder) in message and any(folder.glob("*.docx"))


def test_the_notices_button_says_its_notices_are_made_when_the_list_cannot_be_backed_up(master):
    """生成通知 writes only 通知清单: a backup that cannot be made leaves the list as it was,
    and the box still says where the notices are (they were made), not only that it failed."""
    (master.parent / BACKUP_DIR).write_text("a file where the folder should be")
    book = xw.Book(json=book_payload(master, name=str(master)))
    assert excel.notices(book, as_of=AS_OF, base=master.parent) is not None
    assert changes(book) == []
    [[message, _, _, mode, *_]] = alerts(book)
    assert mode == "info" and "已生成" in message and "表未更新" in message and "不是文件夹" in message


DISK_FULL = """
import json, resource, signal, sys
import xlwings as xw
from macros import excel
from tests.xlwings_book import book_payload
from macros.demo import DEMO_AS_OF
path = sys.argv[1]
book = xw.Book(json=book_payload(path, name=path))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past the limit fails (EFBIG), as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
excel.validate(book, as_of=DEMO_AS_OF)
print(json.dumps(book.json()["actions"], ensure_ascii=False))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE: POSIX")
def test_a_copy_cut_short_leaves_no_partial_backup_and_writes_nothing(master):
    env = dict(os.environ, XLWINGS_LICENSE_KEY="noncommercial", PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-c", DISK_FULL, str(master), str(master.stat().st_size // 2)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    actions = json.loads(done.stdout.splitlines()[-1])
    assert [a for a in actions if a["func"] in CHANGES] == []
    [alert] = [a["args"] for a in actions if a["func"] == "alert"]
    assert alert[3] == "critical" and str(master.parent / BACKUP_DIR) in alert[0]
    assert list(os.scandir(master.parent / BACKUP_DIR)) == []  # no half copy left behind


def test_a_run_failing_after_the_backup_names_it(master, monkeypatch):
    def excel_gone(self, marks):  # Excel dropping the connection after the sheets were written
        raise OSError("RPC server unavailable")

    monkeypatch.setattr(LiveBook, "replace_marks", excel_gone)
    book = saved_book(master)
    assert excel.validate(book, as_of=AS_OF) is None
    [backup] = list_backups(master)
    [[message, _, _, mode, *_]] = alerts(book)
    assert mode == "critical" and "出错" in message and backup.name in message
