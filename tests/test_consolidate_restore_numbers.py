"""After ``healthbook restore`` undid a consolidation, the rows without 记录编号 of its file, moved back
into the inbox and merged again, take back the numbers the first receipt named: the committee then
typing those numbers into its form updates those records instead of adding duplicates. Real files:
the demo master, C06's blank form from ``healthbook forms`` filled as a committee would, the office's
deletion made in the master (openpyxl standing in for Excel), ``consolidate`` and ``restore`` run for real."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from macros import recovery
from macros.book.backup import list_backups
from macros.book.read import read_workbook
from macros.cli import main
from macros.consolidate import consolidate, folders, sent_file, summary_text
from macros.forms import build_forms

from .test_consolidate import fill_form, ledger_of
from .test_consolidate_adversary import delete_record
from .test_consolidate_office_edits import forms, log_lines, receipt_text, records_of, row_a, row_b, value  # noqa: F401
from .test_real_forms import inbox_of

AS_OF = date(2020, 11, 15)
T1, T2, T3, T4, T5 = (datetime(2020, 11, 15, h, 0) for h in (9, 10, 11, 12, 13))


def row_c(**kw) -> dict:
    return row_a(**{"date": date(2020, 11, 5), "activity": "家庭医生签约宣传", "participants": 25, "quantity": 25, **kw})


def archived(master: Path, stem: str) -> Path:
    found = sorted(folders(master, read_workbook(master).settings).archive.glob(f"{stem}-*.xlsx"))
    return found[-1]


@pytest.fixture
def restored(master_copy, forms, capsys) -> tuple[Path, str, str, str, Path, str]:  # noqa: F811
    """C06 sends row C (no 记录编号): record c; the office deletes c. The nightly run merges C06's
    cumulative form (C, A, B without 记录编号): C is not added back, A and B get a and b, which the
    receipt names. The clerk restores the backup from before that run (without a and b) and moves
    its file from the archive back into the inbox, as ``restore`` says."""
    master = master_copy
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_c()])
    consolidate(master, as_of=AS_OF, now=T1)
    [c] = records_of(master, "家庭医生签约宣传")
    delete_record(master, c)

    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_c(), row_a(), row_b()])
    [f] = consolidate(master, as_of=AS_OF, now=T2).files
    assert (f.rows_added, f.gone) == (2, [(2, c)])
    [a], [b] = records_of(master, "社区健康讲座"), records_of(master, "老年人健康体检进社区")
    first = receipt_text(master, "C06-十一月")
    assert f"{a}（新编号）" in first and f"{b}（新编号）" in first

    capsys.readouterr()
    assert main(["restore", str(master)]) == 0
    assert not {a, b} & set(ledger_of(master)["record_id"])
    return master, a, b, c, archived(master, "C06-十一月"), capsys.readouterr().out


def test_rows_merged_again_after_a_restore_take_back_the_numbers_their_receipt_named(restored, forms):  # noqa: F811
    master, a, b, c, moved, said = restored
    assert f"新增 2 行（{a}、{b}）" in said and "沿用原来的编号" in said
    assert "重新并入的新增行会得到新的编号" not in said
    count = len(ledger_of(master))

    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    run = consolidate(master, as_of=AS_OF, now=T3)
    [f] = run.files
    # The office's summary and consolidate.log name them too.
    assert f"沿用了原回执中告知居委会的编号：{a}（第 3 行）、{b}（第 4 行）" in summary_text(run)
    assert f"沿用原编号 2 条：{a}（第 3 行）、{b}（第 4 行）" in log_lines(master, "C06-十一月.xlsx")[-1]
    # A and B are a and b again (not C06-0003 and C06-0004); C, deleted by the office, stays out.
    assert records_of(master, "社区健康讲座") == [a] and records_of(master, "老年人健康体检进社区") == [b]
    assert (f.rows_added, f.gone) == (2, [(2, c)]) and c not in set(ledger_of(master)["record_id"])
    assert len(ledger_of(master)) == count + 2
    text = receipt_text(master, "C06-十一月")
    assert f"{a}（原编号）" in text and f"{b}（原编号）" in text and "新编号）" not in text
    assert "沿用此前回执中告知您的编号" in text
    # Back among what C06 last sent: the file beside the master holds no undone entry any more.
    kept = json.loads(sent_file(master).read_text(encoding="utf-8"))
    assert {a, b} <= set(kept["sent"]) and not kept.get("undone")

    # The committee types the numbers of its first receipt into its form and corrects A.
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx",
              [row_c(), row_a(record_id=a, participants=45), row_b(record_id=b)])
    [f] = consolidate(master, as_of=AS_OF, now=T4).files
    assert (f.rows_added, f.rows_updated, f.gone) == (0, 1, [(2, c)])
    assert records_of(master, "社区健康讲座") == [a] and value(master, a, "participants") == 45
    assert records_of(master, "老年人健康体检进社区") == [b] and len(ledger_of(master)) == count + 2

    # The same file again changes nothing.
    written, remembered = master.read_bytes(), sent_file(master).read_bytes()
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx",
              [row_c(), row_a(record_id=a, participants=45), row_b(record_id=b)])
    run = consolidate(master, as_of=AS_OF, now=T5)
    assert (run.rows_added, run.rows_updated, run.master_written) == (0, 0, False)
    assert master.read_bytes() == written and sent_file(master).read_bytes() == remembered


def test_a_rerun_of_the_file_merged_again_adds_nothing(restored):
    master, a, b, c, moved, _ = restored
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    run = consolidate(master, as_of=AS_OF, now=T3)
    written = master.read_bytes()
    shutil.copy2(run.files[0].moved_to, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=AS_OF, now=T4).files
    assert (f.rows_added, f.rows_updated, f.gone) == (0, 0, [(2, c)])
    assert records_of(master, "社区健康讲座") == [a] and records_of(master, "老年人健康体检进社区") == [b]
    assert master.read_bytes() == written


def test_the_committees_form_with_the_numbers_typed_before_the_file_is_moved_back(restored, forms):  # noqa: F811
    """The committee sends its form with a and b typed in before the clerk moves the undone file
    back: added under those numbers (not taken for records the office deleted); the undone file,
    merged after, adds nothing more."""
    master, a, b, c, moved, _ = restored
    count = len(ledger_of(master))
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月-改.xlsx",
              [row_c(), row_a(record_id=a), row_b(record_id=b)])
    [f] = consolidate(master, as_of=AS_OF, now=T3).files
    assert (f.rows_added, f.gone) == (2, [(2, c)])
    assert records_of(master, "社区健康讲座") == [a] and records_of(master, "老年人健康体检进社区") == [b]
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=AS_OF, now=T4).files
    assert (f.rows_added, f.gone) == (0, [(2, c)])
    assert len(ledger_of(master)) == count + 2
    assert records_of(master, "社区健康讲座") == [a] and records_of(master, "老年人健康体检进社区") == [b]


def test_a_restored_record_deleted_by_the_office_later_does_not_come_back(restored, forms):  # noqa: F811
    """Merged again (a and b back), then the office deletes b: C06 sending B unchanged, without its
    key, is a record the office deleted, as any other."""
    master, a, b, c, moved, _ = restored
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    consolidate(master, as_of=AS_OF, now=T3)
    delete_record(master, b)
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_c(), row_a(), row_b()])
    [f] = consolidate(master, as_of=AS_OF, now=T4).files
    assert (f.rows_added, sorted(f.gone)) == (0, [(2, c), (4, b)])
    assert records_of(master, "老年人健康体检进社区") == []


def test_a_restore_undone_by_a_later_restore_leaves_a_deleted_record_deleted(restored, forms):  # noqa: F811
    """The clerk restores again, back to the master holding a and b (the backup the first restore
    took); another committee's run follows; the office then deletes b. C06 sending B unchanged,
    without its key, is a record the office deleted: not added back under b."""
    master, a, b, c, moved, _ = restored
    newest = list_backups(master)[0]
    assert main(["restore", str(master), "--backup", newest.name]) == 0
    assert {a, b} <= set(ledger_of(master)["record_id"])
    fill_form(forms["C01"], inbox_of(master) / "C01-十一月.xlsx", [row_a(committee_id="C01")])
    assert consolidate(master, as_of=AS_OF, now=T3).master_written
    delete_record(master, b)
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_c(), row_a(), row_b()])
    [f] = consolidate(master, as_of=AS_OF, now=T4).files
    assert (f.rows_added, sorted(f.gone)) == (0, [(2, c), (4, b)])
    assert records_of(master, "老年人健康体检进社区") == []


def test_a_form_prefilled_before_the_restore_sent_unchanged_brings_its_records_back(restored, tmp_path):
    """The office made C06's prefilled form (``forms --records``) while the master held a and b, then
    restored: C06 sending that form unchanged was told a and b "were deleted by the office, not
    added back" — the restore, not the office, took them out. They come back under their numbers."""
    master, a, b, c, moved, _ = restored
    holding = tmp_path / "before-restore" / master.name
    holding.parent.mkdir()
    shutil.copy2(list_backups(master)[0], holding)  # the master as the first restore found it (a and b)
    [prefilled] = build_forms(holding, tmp_path / "prefilled", ["C06"], with_records=True).written
    count = len(ledger_of(master))
    shutil.copy2(prefilled, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=AS_OF, now=T3).files
    assert (f.rows_added, f.gone) == (2, [])
    assert records_of(master, "社区健康讲座") == [a] and records_of(master, "老年人健康体检进社区") == [b]
    assert len(ledger_of(master)) == count + 2
    assert "已被街道删除" not in receipt_text(master, "C06-十一月")


def test_a_sent_file_from_before_the_undone_map_is_read_as_before(restored):
    """A file beside the master written by an earlier version (no undone map) still reads."""
    master, a, b, c, moved, _ = restored
    kept = json.loads(sent_file(master).read_text(encoding="utf-8"))
    kept.pop("undone", None)
    sent_file(master).write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    run = consolidate(master, as_of=AS_OF, now=T3)
    [f] = run.files
    assert not run.sent_problem and f.rows_added == 2  # new numbers then, as before this change
    assert not {a, b} & set(ledger_of(master)["record_id"])


def test_json_names_the_rows_given_back_their_number(restored, capsys):
    """``consolidate --json`` lists per file the rows that took back their number (as the summary and the log do)."""
    master, a, b, c, moved, _ = restored
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    capsys.readouterr()
    assert main(["consolidate", str(master), "--as-of", "2020-11-15", "--json"]) == 0
    [f] = json.loads(capsys.readouterr().out)["files"]
    assert f["given_back"] == [{"row": 3, "record_id": a}, {"row": 4, "record_id": b}]
    assert f["gone"] == [{"row": 2, "record_id": c}]


def test_a_row_edited_since_its_receipt_takes_back_its_number(restored, forms):  # noqa: F811
    """After the restore the committee corrects A (45 participants, not 40) and sends its form again
    without 记录编号: A is the record a (the one undone record of C06 with A's date, project and
    activity), given back under a with the new value; the receipt says 原编号. It got a new number."""
    master, a, b, c, moved, _ = restored
    count = len(ledger_of(master))
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx", [row_c(), row_a(participants=45), row_b()])
    run = consolidate(master, as_of=AS_OF, now=T3)
    [f] = run.files
    assert (f.rows_added, f.given_back, f.gone) == (2, [(3, a), (4, b)], [(2, c)])
    assert records_of(master, "社区健康讲座") == [a] and value(master, a, "participants") == 45
    assert records_of(master, "老年人健康体检进社区") == [b] and len(ledger_of(master)) == count + 2
    text = receipt_text(master, "C06-十一月")
    assert f"{a}（原编号）" in text and "新编号）" not in text
    assert not json.loads(sent_file(master).read_text(encoding="utf-8")).get("undone")


def test_an_edited_row_alike_two_rows_of_its_file_gets_a_new_number(restored, forms):  # noqa: F811
    """Two rows of the file with A's date, project and activity, both edited: which one is a cannot
    be told, so both get new numbers (a stays given, unused) — as before."""
    master, a, b, c, moved, _ = restored
    fill_form(forms["C06"], inbox_of(master) / "C06-十一月.xlsx",
              [row_c(), row_a(participants=45), row_a(participants=50), row_b()])
    [f] = consolidate(master, as_of=AS_OF, now=T3).files
    assert (f.rows_added, f.given_back) == (3, [(5, b)])
    assert a not in records_of(master, "社区健康讲座") and len(records_of(master, "社区健康讲座")) == 2


def test_a_file_put_back_from_the_archive_is_archived_and_receipted_under_its_own_name(restored, capsys):
    """The clerk moves the archived file back as ``restore`` asks, name and all: archived again as
    C06-十一月-<this run>.xlsx (was C06-十一月-<first run>-<this run>.xlsx); the first receipt, of the
    undone run, is renamed …-已撤销 by the restore (it no longer tells what the master holds) and the
    new one sits beside it. Restoring the backup the restore took brings that run back: the mark goes."""
    master, a, b, c, moved, said = restored
    where = folders(master, read_workbook(master).settings)
    first = f"回执-C06-C06-十一月-{T2:%Y%m%d-%H%M%S}"
    assert not (where.receipts / f"{first}.html").exists() and (where.receipts / f"{first}-已撤销.html").is_file()
    assert f"原回执已改名为 {first}-已撤销.html" in said
    assert "移回收件箱" in said and "（不必改名）" in said

    shutil.move(moved, inbox_of(master) / moved.name)
    [f] = consolidate(master, as_of=AS_OF, now=T3).files
    assert f.given_back == [(3, a), (4, b)]
    assert f.moved_to.name == f"C06-十一月-{T3:%Y%m%d-%H%M%S}.xlsx"
    assert f.receipt.name == f"回执-C06-C06-十一月-{T3:%Y%m%d-%H%M%S}.html"
    assert sorted(p.name for p in where.receipts.glob("回执-C06-C06-十一月-*.html")) == [
        f"回执-C06-C06-十一月-{T1:%Y%m%d-%H%M%S}.html", f"{first}-已撤销.html", f.receipt.name]

    # Undone in turn: the restore finds the file merged again under its archived name.
    capsys.readouterr()
    assert main(["restore", str(master), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["lost"]
    assert (run["source"], run["archived"]) == (moved.name, str(f.moved_to))
    assert run["receipts"] == [str(where.receipts / f"{f.receipt.stem}-已撤销.html")]
    # The restore undone: the run at T3 is back, its receipt unmarked; the one at T2 stays undone.
    assert main(["restore", str(master), "--backup", list_backups(master)[0].name]) == 0
    assert f.receipt.is_file() and (where.receipts / f"{first}-已撤销.html").is_file()


def test_undone_records_not_merged_again_within_90_days_are_dropped(restored):
    """The undone map is kept 90 days from the restore: a file put back after that takes new
    numbers (a and b stay given), and the file beside the master no longer holds the map."""
    master, a, b, c, moved, _ = restored
    kept = json.loads(sent_file(master).read_text(encoding="utf-8"))
    assert kept["undone_on"] == {a: date.today().isoformat(), b: date.today().isoformat()}
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=AS_OF, now=datetime.now() + timedelta(days=91)).files
    assert (f.rows_added, f.given_back) == (2, [])
    assert not {a, b} & set(ledger_of(master)["record_id"])
    kept = json.loads(sent_file(master).read_text(encoding="utf-8"))
    assert "undone" not in kept and "undone_on" not in kept


def test_undone_records_written_without_their_day_are_kept_from_now(restored):
    """A file beside the master from before the day was kept (undone, no undone_on): its records are
    dated the first time they are read, not dropped at once."""
    master, a, b, c, moved, _ = restored
    kept = json.loads(sent_file(master).read_text(encoding="utf-8"))
    del kept["undone_on"]
    sent_file(master).write_text(json.dumps(kept, ensure_ascii=False), encoding="utf-8")
    shutil.move(moved, inbox_of(master) / "C06-十一月.xlsx")
    [f] = consolidate(master, as_of=AS_OF, now=datetime.now() + timedelta(days=91)).files
    assert f.given_back == [(3, a), (4, b)]


def test_restore_on_a_terminal_says_each_longer_step(master_copy, forms, capsys, monkeypatch):  # noqa: F811
    """``restore`` of a large master works for seconds: on a terminal it names each step as it
    starts (on stderr, as ``consolidate`` does); piped or with --json, stdout is only the result."""
    fill_form(forms["C06"], inbox_of(master_copy) / "C06-十一月.xlsx", [row_a()])
    consolidate(master_copy, as_of=AS_OF, now=T1)
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["restore", str(master_copy), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [recovery.KEEPING, recovery.REPLACING, recovery.COMPARING]
    assert json.loads(out)["lost"][0]["source"] == "C06-十一月.xlsx"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert main(["restore", str(master_copy)]) == 0
    assert capsys.readouterr().err == ""


def test_two_archived_copies_of_a_form_put_back_together_keep_names_of_their_own(master_copy, forms, capsys):  # noqa: F811
    """Both runs of one form undone, both archived copies moved back as asked: archived again as
    X-<run>.xlsx and X-<run>-2.xlsx, a later restore named the -2 copy for both runs: the clerk moved
    one file back and the other run's rows stayed out of the master."""
    form = forms["C06"]
    fill_form(form, inbox_of(master_copy) / "C06-十一月.xlsx", [row_a()])
    consolidate(master_copy, as_of=AS_OF, now=T1)
    fill_form(form, inbox_of(master_copy) / "C06-十一月.xlsx", [row_a(), row_b()])
    consolidate(master_copy, as_of=AS_OF, now=T2)
    assert main(["restore", str(master_copy), "--backup", list_backups(master_copy)[-1].name]) == 0
    archive = folders(master_copy, read_workbook(master_copy).settings).archive
    for copy in sorted(archive.iterdir()):
        shutil.move(copy, inbox_of(master_copy) / copy.name)
    run = consolidate(master_copy, as_of=AS_OF, now=T3)
    names = sorted(f.moved_to.name for f in run.files)
    assert len(set(names)) == 2 and not any(name.endswith("-2.xlsx") for name in names), names
    capsys.readouterr()
    assert main(["restore", str(master_copy), "--json"]) == 0
    lost = json.loads(capsys.readouterr().out)["lost"]
    # Each undone run names its own archived file, the one it was merged from.
    assert sorted(Path(r["archived"]).name for r in lost) == names
    assert {r["source"]: Path(r["archived"]).name for r in lost} == {f.file: f.moved_to.name for f in run.files}
    # … and its own receipt alone (they were 回执-…-<run>.html and …-<run>-2.html, both listed for both).
    receipts = {r["source"]: [Path(p).name for p in r["receipts"]] for r in lost}
    assert receipts == {f.file: [f"{f.receipt.stem}-已撤销.html"] for f in run.files}
