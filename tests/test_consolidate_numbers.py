"""Consolidation numbers the master's own 台账 rows typed with 记录编号 blank, as ``healthbook report``
does (same numbers, 来源 手工, a 变更记录 line each), in the write of a run that merges forms; before
the forms, so a form's row identical to one of them is that record. Real files throughout."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime

import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import consolidation_changed, main
from macros.consolidate import announced_numbers, consolidate, folders, read_sent, summary_text
from macros.forms import build_forms
from macros.recovery import restore_master, restore_text

from .test_consolidate import fill_form, new_row
from .test_report_numbers import KEY_HEADER, SOURCE_HEADER, TYPED_C05, build_typed_master, grid, report

LEDGER, CHANGES = schema.LEDGER.name, schema.CHANGES.name
NOW = datetime(2020, 11, 30, 9, 0)


@pytest.fixture
def typed_master(tmp_path):
    return build_typed_master(tmp_path)


def c01_form(master, tmp_path, rows):
    """A committee's filled form of ``master``, dropped in its inbox."""
    blank = tmp_path / "blank"
    build_forms(master, blank, ["C01"])
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    return fill_form(next(blank.iterdir()), inbox / "C01-11月.xlsx", rows)


def keys_and_sources(path):
    header, *rows = grid(path, LEDGER)
    key_at, source_at = header.index(KEY_HEADER), header.index(SOURCE_HEADER)
    return [(r[key_at], r[source_at]) for r in rows]


def test_a_merge_numbers_the_rows_staff_typed_without_a_key_as_the_report_would(typed_master, tmp_path):
    path, expected = typed_master
    twin = tmp_path / "twin" / path.name  # the same master, numbered by the report
    twin.parent.mkdir()
    shutil.copy2(path, twin)
    shutil.copy2(path.with_name(f".{path.name}.numbers.json"), twin.with_name(f".{twin.name}.numbers.json"))
    log_before = grid(path, CHANGES)
    c01_form(path, tmp_path, [new_row(activity="十一月体检")])

    run = consolidate(path, now=NOW, refresh=False)

    assert run.master_written and run.rows_added == 1
    assert run.numbered == [expected["C03"], expected["C05"]]
    report(twin)
    ours, theirs = keys_and_sources(path), keys_and_sources(twin)
    assert ours[:len(theirs)] == theirs  # the typed rows: the same numbers, 来源 手工 where blank
    assert ours[len(theirs) - 3:len(theirs) - 1] == [(expected["C03"], schema.MANUAL_SOURCE),
                                                     (expected["C05"], TYPED_C05["source"])]
    header, *log = grid(path, CHANGES)
    assert log[:len(log_before) - 1] == log_before[1:]  # the audit trail before stays as it was
    added = [dict(zip(header, line)) for line in log[len(log_before) - 1:]]
    key, source = schema.CHANGES.header_of("record_id"), schema.CHANGES.header_of("source")
    assert [(a[key], a[source]) for a in added[:2]] == [(expected["C03"], schema.MANUAL_SOURCE),
                                                        (expected["C05"], schema.MANUAL_SOURCE)]
    assert added[2][source] == "C01-11月.xlsx"
    assert announced_numbers(path)["C03"] == int(expected["C03"].split("-")[1])
    text = summary_text(run)
    assert "编号" in text and expected["C03"] in text and "已写入" in text, text

    # Nothing to number the next time: a second form adds its row, no typed row is numbered again.
    c01_form(path, tmp_path / "again", [new_row(activity="十二月体检")])
    again = consolidate(path, now=NOW, refresh=False)
    assert again.numbered == [] and again.rows_added == 1
    assert keys_and_sources(path)[:len(ours)] == ours


def test_a_form_row_identical_to_a_typed_row_is_that_record_not_a_new_one(typed_master, tmp_path):
    """Staff typed a committee's activity into the master by hand; the committee then sends the same
    row without a number: it is the record just numbered (remembered as sent under that number,
    not under a blank key), not a record added twice."""
    path, expected = typed_master
    typed = {k: v for k, v in TYPED_C05.items() if k not in ("record_id", "source", "note")}
    blank = tmp_path / "blank"
    build_forms(path, blank, ["C05"])
    inbox = folders(path, read_workbook(path).settings).inbox
    inbox.mkdir()
    fill_form(next(blank.iterdir()), inbox / "C05-补报.xlsx", [typed])
    rows_before = len(grid(path, LEDGER))

    run = consolidate(path, now=NOW, refresh=False)

    [result] = run.files
    assert result.rows_added == 0 and result.rows_unchanged == 1, result.issues
    assert len(grid(path, LEDGER)) == rows_before
    sent, _ = read_sent(path)
    assert sent.of(expected["C05"]) is not None and sent.of("None") is None


def test_an_empty_inbox_numbers_nothing_and_a_dry_run_numbers_in_memory_only(typed_master, tmp_path, capsys):
    """A dry run shows what the real run does: the typed rows' numbers (its --json too); nothing is
    written, and the summary says so."""
    path, expected = typed_master
    before = path.read_bytes()
    assert consolidate(path, now=NOW, refresh=False).numbered == []  # an empty inbox: no write for it
    c01_form(path, tmp_path, [new_row()])
    dry = consolidate(path, now=NOW, refresh=False, dry_run=True)
    assert dry.numbered == [expected["C03"], expected["C05"]] and not dry.master_written
    assert path.read_bytes() == before
    assert "未写入工作簿" in summary_text(dry)
    assert main(["consolidate", str(path), "--dry-run", "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["numbered"] == dry.numbered


def test_restore_after_numbering_asks_for_no_file_named_manual(typed_master, tmp_path):
    """Undoing a run that numbered typed rows: those rows are blank again and numbered next time;
    no committee is asked for a file called 手工."""
    path, expected = typed_master
    c01_form(path, tmp_path, [new_row(activity="十一月体检")])
    run = consolidate(path, now=NOW, refresh=False)
    assert run.numbered and consolidation_changed(run).endswith("为手工录入的 2 行编号")
    done = restore_master(path)
    text = restore_text(done)
    assert f"手工录入的 2 行编号（{expected['C03']}、{expected['C05']}）" in text and "重新编号" in text, text
    assert f"{schema.MANUAL_SOURCE}：" not in text and "下面 1 份填报表" in text, text


def test_unsent_receipts_of_a_killed_run_are_removed_a_day_later(typed_master, tmp_path):
    """A run killed while writing leaves its receipts folder of receipts never sent (they name
    numbers the master never got); the next run over a day later removes it, a younger one stays."""
    path, _ = typed_master
    receipts = folders(path, read_workbook(path).settings).receipts
    old, young = receipts / ".pending-20201128-070525-23899", receipts / ".pending-20201130-085900-4242"
    for folder in (old, young):
        folder.mkdir(parents=True)
        (folder / "回执-C01-C01-11月.html").write_text("<p>C01-0031</p>", encoding="utf-8")
    day_old = time.time() - 2 * 86400
    os.utime(old, (day_old, day_old))
    c01_form(path, tmp_path, [new_row()])
    consolidate(path, now=NOW, refresh=False)
    assert not old.exists() and young.exists()
