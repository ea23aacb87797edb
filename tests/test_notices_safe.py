"""Generating notices again never destroys what staff did to the last ones.

Real files throughout: notices rendered from the demo master, edited with python-docx as staff
edit them in Word, a file Word holds open (stood in for by an immutable file, ``chattr +i``,
which refuses replacement even to root, and by a folder of the same name), a run killed while it
writes, and the one-click report over it all.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from docx import Document

from macros import demo, schema
from macros.render import context as ctx
from macros.render.notices import NoticeOptions, render_notices
from macros.render.outfiles import MANIFEST, NEW_MARK, beside_name

from .conftest import ROOT, cli_json
from .test_notices import config_input, docx_text

AS_OF = demo.DEMO_AS_OF
NEXT_DAY = AS_OF + timedelta(days=1)
MEETINGS = NoticeOptions(kinds=(ctx.MEETING,))
STAFF_LINE = "（会场改在三楼第二会议室——发展办李敏更正）"


def meetings(master: Path, out: Path, as_of=AS_OF, options: NoticeOptions = MEETINGS):
    data = config_input(master)
    data.as_of = as_of
    return render_notices(data, out, options)


def the_meeting(result) -> str:
    """The one meeting still to come in the demo (M02, 20 November): its .docx name."""
    [notice] = [n for n in result.notices if n.kind == ctx.MEETING]
    return notice.docx


def staff_edit(path: Path) -> None:
    """What a person does in Word: open the notice, add a line, save."""
    doc = Document(str(path))
    doc.add_paragraph(STAFF_LINE)
    doc.save(str(path))


def listed_notices(master: Path) -> list[dict]:
    """通知清单 as written: one dict a row by the contract's keys (read by position with openpyxl,
    a reader independent of healthbook's)."""
    import openpyxl

    ws = openpyxl.load_workbook(master, read_only=True)[schema.NOTICES.name]
    keys = schema.NOTICES.keys
    return [dict(zip(keys, row)) for row in ws.iter_rows(min_row=2, max_col=len(keys), values_only=True)
            if any(row)]


def folder_warnings(result) -> list[str]:
    """Warnings about the files in the folder (kept, or not written), not about the data."""
    return [w for w in result.warnings if "原样保留" in w or "未能写入" in w or NEW_MARK in w]


def visible(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("."))


def test_a_notice_staff_edited_is_kept_and_the_new_one_goes_beside_it(demo_master, tmp_path):
    out = tmp_path / "通知"
    name = the_meeting(meetings(demo_master, out))
    staff_edit(out / name)
    edited = (out / name).read_bytes()

    again = meetings(demo_master, out, NEXT_DAY)  # a day later: the notice is dated anew

    assert (out / name).read_bytes() == edited
    beside = beside_name(name)
    assert the_meeting(again) == beside
    assert STAFF_LINE not in docx_text(out / beside)
    assert "2020年11月16日" in docx_text(out / beside)
    [warning] = [w for w in again.warnings if name in w]
    assert beside in warning and "已原样保留" in warning
    # Once more the next day: the same two files, the beside one brought up to date, no third.
    third = meetings(demo_master, out, NEXT_DAY + timedelta(days=1))
    assert the_meeting(third) == beside and (out / name).read_bytes() == edited
    assert "2020年11月17日" in docx_text(out / beside)
    assert not list(out.glob(f"*{beside_name('', 2)}*"))


def test_an_unchanged_notice_is_replaced_without_a_word(demo_master, tmp_path):
    out = tmp_path / "通知"
    name = the_meeting(meetings(demo_master, out))
    assert "2020年11月15日" in docx_text(out / name)
    again = meetings(demo_master, out, NEXT_DAY)
    assert the_meeting(again) == name
    assert "2020年11月16日" in docx_text(out / name)
    assert not folder_warnings(again)
    assert not [n for n in visible(out) if "新生成" in n]


def test_an_edit_stands_when_the_data_behind_the_notice_did_not_change(demo_master, tmp_path):
    out = tmp_path / "通知"
    name = the_meeting(meetings(demo_master, out))
    staff_edit(out / name)
    again = meetings(demo_master, out)  # same day, same rows: the new notice is the one staff edited
    assert the_meeting(again) == name and STAFF_LINE in docx_text(out / name)
    assert not folder_warnings(again)
    assert not [n for n in visible(out) if "新生成" in n]


def test_a_file_healthbook_did_not_write_is_kept(demo_master, tmp_path):
    out = tmp_path / "通知"
    name = the_meeting(meetings(demo_master, tmp_path / "first"))
    out.mkdir()
    (out / name).write_bytes(b"a file someone else put here")
    result = meetings(demo_master, out)
    assert (out / name).read_bytes() == b"a file someone else put here"
    assert the_meeting(result) == beside_name(name) and any(name in w for w in result.warnings)


def test_a_folder_from_before_the_manifest_is_adopted_where_files_are_what_would_be_written(demo_master, tmp_path):
    # Notices made by an older healthbook (no manifest): identical ones are recognised, not doubled.
    out = tmp_path / "通知"
    every = NoticeOptions()
    meetings(demo_master, out, options=every)
    (out / MANIFEST).unlink()
    before = visible(out)
    result = meetings(demo_master, out, options=every)
    assert visible(out) == before and not [w for w in result.warnings if "保留" in w]
    # Files that differ (an older version's index.html, a meeting notice dated otherwise) were
    # kept as staff's on every run after the upgrade, with a （新生成） copy and a warning each time:
    # now the old one is moved aside once, and the names stay healthbook's.
    from macros.render.outfiles import RETIRED

    (out / MANIFEST).unlink()
    (out / "index.html").write_text("<html>旧版本生成的目录</html>", encoding="utf-8")
    for _ in range(2):
        result = meetings(demo_master, out, options=every)
        assert [n for n in visible(out) if n != RETIRED] == before
        assert not [w for w in result.warnings if "保留" in w]
    assert "旧版本" in (out / RETIRED / "index.html").read_text(encoding="utf-8")


def _chattr(path: Path, flag: str) -> bool:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True) if shutil.which("chattr") else None
    return bool(done) and done.returncode == 0


@pytest.fixture(params=["immutable file", "folder of that name"])
def held_open(request):
    """Make a notice unreplaceable the way Word on Windows holds it: readable, not replaceable.
    ``chattr +i`` does this even for root (chmod does not: root ignores file modes, and a rename
    over a read-only file succeeds on Linux anyway); a folder of that name is the stand-in that
    works everywhere (neither readable as a file nor replaceable)."""
    made: list[Path] = []

    def hold(path: Path) -> None:
        if request.param == "immutable file":
            if not _chattr(path, "+i"):
                pytest.skip("chattr +i 不可用（需要 root 和支持它的文件系统）")
        else:
            path.unlink()
            path.mkdir()
            (path / "占位").write_text("x", encoding="utf-8")
        made.append(path)

    yield hold
    for path in made:
        _chattr(path, "-i")


def test_a_notice_held_open_is_named_and_everything_else_is_written(demo_master, tmp_path, held_open):
    master = tmp_path / demo_master.name
    shutil.copy2(demo_master, master)
    out = tmp_path / "通知"
    code, first = cli_json("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    name = next(n["docx"] for n in first["notices"]["notices"] if n["kind"] == "会议通知")
    html = (out / name).with_suffix(".html")
    held_open(out / name)

    code2, data = cli_json("report", str(master), "--out", str(out), "--as-of", NEXT_DAY.isoformat())

    assert code2 == code and data["written"] is True
    [warning] = [w for w in data["notices"]["warnings"] if name in w]
    assert "关闭 Word" in warning and "重新生成" in warning
    assert "2020年11月16日" in html.read_text(encoding="utf-8")  # its web page, and the rest, written
    listed = listed_notices(master)
    [row] = [r for r in listed if r["html"] == html.name]
    assert not row["docx"]  # blank: nothing was written there
    assert (out / "index.html").is_file()
    others = [n["docx"] for n in data["notices"]["notices"] if n["docx"]]
    assert others and all(zipfile.ZipFile(out / n).testzip() is None for n in others)
    assert {r["docx"] for r in listed if r["docx"]} == set(others)


def test_the_report_lists_the_file_really_written(demo_master, tmp_path):
    master = tmp_path / demo_master.name
    shutil.copy2(demo_master, master)
    out = tmp_path / "通知"
    cli_json("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    [meeting] = [r["docx"] for r in listed_notices(master) if r["kind"] == "会议通知"]
    staff_edit(out / meeting)
    cli_json("report", str(master), "--out", str(out), "--as-of", NEXT_DAY.isoformat())
    assert [r["docx"] for r in listed_notices(master) if r["kind"] == "会议通知"] == [beside_name(meeting)]
    assert STAFF_LINE in docx_text(out / meeting)


def test_a_meeting_already_held_gets_no_new_notice_unless_asked_for(demo_master, tmp_path):
    held = demo.MEETINGS[0]
    assert held["date"] < AS_OF < demo.MEETINGS[1]["date"]
    result = meetings(demo_master, tmp_path / "a")
    assert [n.title for n in result.notices if n.kind == ctx.MEETING] == [f"会议通知：{demo.MEETINGS[1]['name']}"]
    assert not list((tmp_path / "a").glob(f"*{held['meeting_id']}*"))
    asked = meetings(demo_master, tmp_path / "b", options=NoticeOptions(kinds=(ctx.MEETING,), meeting="M01"))
    [notice] = asked.notices
    assert f"关于召开{held['name']}的通知" in docx_text(tmp_path / "b" / notice.docx)
    # A meeting held today still gets its notice.
    on_the_day = meetings(demo_master, tmp_path / "c", demo.MEETINGS[1]["date"])
    assert len([n for n in on_the_day.notices if n.kind == ctx.MEETING]) == 1


# A run killed in the middle of writing a notice: every file opened for writing in the notices
# folder counts; the KILL_AT-th writes half its bytes, reaches the disk, and the process dies.
KILLED_RUN = r"""
import builtins, io, os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
master, out, kill_at, as_of = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
real_open, opened = io.open, [0]

class Dying:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        self.f.write(data[: len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def __getattr__(self, name):
        return getattr(self.f, name)

def dying_open(file, mode="r", *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    if "b" in mode and ("w" in mode or "x" in mode) and Path(os.fspath(file)).parent == out:
        opened[0] += 1
        if opened[0] == kill_at:
            return Dying(f)
    return f

io.open = builtins.open = dying_open
from datetime import date
from macros.book.read import read_workbook
from macros.render import context as ctx
from macros.render.notices import NoticeOptions, render_notices
book = read_workbook(master)
data = ctx.NoticeInput(book.frames, book.settings, date.fromisoformat(as_of), None, master.parent)
render_notices(data, out, NoticeOptions(kinds=(ctx.MEETING,)))
print("not killed")
"""


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_a_run_killed_while_writing_leaves_every_old_notice_whole(demo_master, tmp_path, kill_at):
    out = tmp_path / "通知"
    first = meetings(demo_master, out)
    old = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert len(old) == 3  # the meeting's .docx and .html, index.html

    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(ROOT), str(demo_master), str(out),
                           str(kill_at), NEXT_DAY.isoformat()], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr

    for name, data in old.items():
        now = (out / name).read_bytes()
        if now != data:  # replaced before the kill: then whole, and the next day's
            text = docx_text(out / name) if name.endswith(".docx") else now.decode("utf-8")
            assert "2020年11月16日" in text, name
    with zipfile.ZipFile(out / the_meeting(first)) as z:
        assert z.testzip() is None
    assert kill_at > 1 or (out / the_meeting(first)).read_bytes() == old[the_meeting(first)]
    # The next run takes over: the notices are replaced as healthbook's own, not kept as "edited".
    again = meetings(demo_master, out, NEXT_DAY)
    assert not folder_warnings(again) and the_meeting(again) == the_meeting(first)
    assert "2020年11月16日" in docx_text(out / the_meeting(again))
    assert not [n for n in visible(out) if "新生成" in n]


def test_the_manifest_is_hidden_and_names_what_was_written(demo_master, tmp_path):
    out = tmp_path / "通知"
    result = meetings(demo_master, out)
    lines = [json.loads(line) for line in (out / MANIFEST).read_text(encoding="utf-8").splitlines()]
    # One line holds the folder's listing (what index.html lists), the others a file each.
    [listing] = [e["listing"] for e in lines if "listing" in e]
    assert [n["docx"] for n in listing] == [the_meeting(result)]
    entries = [e for e in lines if "listing" not in e]
    assert {e["name"] for e in entries} == {the_meeting(result), Path(the_meeting(result)).with_suffix(".html").name,
                                            "index.html"}
    assert all(e["size"] == os.path.getsize(out / e["name"]) for e in entries)


def test_the_notices_button_says_which_edited_notice_it_kept(demo_master, tmp_path):
    """生成通知 in Excel (the xlwings JSON book): the box names the file kept and the new one."""
    import xlwings as xw

    from macros import excel

    from .xlwings_book import book_payload

    master = tmp_path / demo_master.name
    shutil.copy2(demo_master, master)
    excel.notices(xw.Book(json=book_payload(master, name=str(master))), as_of=AS_OF, base=tmp_path)
    folder = excel.notices_folder(None, {}, tmp_path)
    [name] = [p.name for p in folder.glob("会议通知*.docx")]
    staff_edit(folder / name)
    book = xw.Book(json=book_payload(master, name=str(master)))
    excel.notices(book, as_of=NEXT_DAY, base=tmp_path)
    [message] = [a["args"][0] for a in book.json()["actions"] if a["func"] == "alert"]
    assert f"注意：“{name}”在上次生成后被修改过" in message and beside_name(name) in message
    assert STAFF_LINE in docx_text(folder / name)


def test_reminders_a_later_run_of_the_day_no_longer_makes_are_moved_aside(demo_master, tmp_path):
    """The morning's 催办通知 to a committee that caught up by noon stayed in the folder under
    today's date beside the fresh ones: sent from the folder, it was untrue."""
    from macros.book.build import build_workbook
    from macros.book.read import read_workbook
    from macros.render.outfiles import RETIRED
    from macros.report import analyse

    def reminders(master: Path, out: Path):
        book = read_workbook(master)
        validation, rolled = analyse(book, AS_OF)
        data = ctx.NoticeInput(validation.frames, book.settings, AS_OF, rolled, master.parent)
        return render_notices(data, out, NoticeOptions(kinds=(ctx.REMINDER,)))

    out = tmp_path / "通知"
    morning = reminders(demo_master, out)
    before = {n.docx for n in morning.notices if not n.combined}
    # By noon fewer committees are behind (here: the thresholds were eased), one of them edited by staff.
    rows = demo.demo_rows()
    rows[schema.SETTINGS.name] = demo.settings_rows({**demo.SETTINGS, "lag_threshold": 0.5, "severe_lag_threshold": 0.6})
    noon_master = tmp_path / "noon.xlsx"
    build_workbook(noon_master, rows)
    preview = reminders(noon_master, tmp_path / "预览")
    after = {n.docx for n in preview.notices if not n.combined}
    caught_up = sorted(before - after)
    assert caught_up and after, (before, after)
    noon = reminders(noon_master, out)
    for name in caught_up:
        for moved in (name, name.replace(".docx", ".html")):
            assert not (out / moved).exists() and (out / RETIRED / moved).exists(), moved
    assert all((out / name).exists() for name in after)
    [said] = [w for w in noon.warnings if RETIRED in w]
    assert f"{len(caught_up)} 份催办通知" in said and caught_up[0].removesuffix(".docx") in said
    # One staff edited after the morning run stays where it is (theirs to send or not).
    shutil.rmtree(out / RETIRED)
    reminders(demo_master, out)
    edited = out / caught_up[0]
    staff_edit(edited)
    noon = reminders(noon_master, out)
    assert edited.exists() and STAFF_LINE in docx_text(edited)
    assert any(edited.name in w and "请勿再发出" in w for w in noon.warnings)  # not moved, not silent
    assert not (out / caught_up[0].replace(".docx", ".html")).exists()
