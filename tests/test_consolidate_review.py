"""Review of consolidation's receipts finished by the reader process while the master is written:
every receipt exists before any file moves; a staged run (master open in Excel) or a refused
write leaves the inbox as it was and no receipt behind."""

from __future__ import annotations

import hashlib

import pytest

import macros.consolidate as consolidation
from macros.book import package
from macros.book.read import read_workbook
from macros.book.write import WriteRefused
from macros.consolidate import consolidate, folders

from .test_consolidate_reader import NOW, copy_scene, scene, worker_started  # noqa: F401 (a fixture)
from .test_write_safety import digest, excel_owner_file


def snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with a digest of its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("queued", [consolidation.WRITES_QUEUED, 2])
def test_every_receipt_exists_before_any_file_moves(scene, tmp_path, monkeypatch, queued):  # noqa: F811
    master = copy_scene(scene, tmp_path / "run")
    monkeypatch.setattr(consolidation, "WRITES_QUEUED", queued)  # 2: most are written here
    started = worker_started(monkeypatch)
    seen = []
    real_finish = consolidation.finish_file

    def finish(result, where, now, master_path):
        if not seen:  # the first move: every merged file's receipt is already on disk, complete
            pending = [r for r in run_results if r.pending_receipt is not None]
            assert pending and all(r.pending_receipt.exists() for r in pending)
            assert all("</html>" in r.pending_receipt.read_text(encoding="utf-8") for r in pending)
        seen.append(result.file)
        return real_finish(result, where, now, master_path)

    run_results = []
    real_process = consolidation._process_files

    def process(*args, **kw):
        results = real_process(*args, **kw)
        run_results.extend(results)
        return results

    monkeypatch.setattr(consolidation, "finish_file", finish)
    monkeypatch.setattr(consolidation, "_process_files", process)
    run = consolidate(master, now=NOW, refresh=False)
    assert started == [True] and run.master_written
    where = folders(master, read_workbook(master).settings)
    receipts = sorted(p.name for p in where.receipts.glob("*.html"))
    moved = [f for f in run.files if f.status != "skipped"]
    assert len(receipts) == len(moved) == len(seen)
    assert sorted(f.receipt.name for f in moved) == receipts
    assert not list(where.receipts.glob(".pending-*"))


def test_a_staged_run_leaves_the_inbox_and_writes_no_receipts(scene, tmp_path, monkeypatch):  # noqa: F811
    master = copy_scene(scene, tmp_path / "staged")
    where = folders(master, read_workbook(master).settings)
    master.with_name("~$" + master.name).write_bytes(excel_owner_file("张三"))
    started = worker_started(monkeypatch)
    inbox, receipts, before = snapshot(where.inbox), snapshot(where.receipts), digest(master)
    run = consolidate(master, now=NOW, refresh=False)
    assert started == [True]
    assert run.staged and run.staged.exists() and "张三" in run.busy and not run.master_written
    assert digest(master) == before
    assert snapshot(where.inbox) == inbox
    assert snapshot(where.receipts) == receipts  # nothing written, no pending folder left
    assert not where.archive.exists() or not any(where.archive.iterdir())
    assert not where.rejected.exists() or not any(where.rejected.iterdir())


def test_a_refused_write_leaves_the_inbox_and_writes_no_receipts(scene, tmp_path, monkeypatch):  # noqa: F811
    master = copy_scene(scene, tmp_path / "refused")
    where = folders(master, read_workbook(master).settings)
    original = package.Package.save

    def tampering_save(self, target):  # a writer bug: a part it does not own changes
        self.changed["docProps/app.xml"] = b"<changed/>"
        return original(self, target)

    monkeypatch.setattr(package.Package, "save", tampering_save)
    inbox, receipts, before = snapshot(where.inbox), snapshot(where.receipts), digest(master)
    with pytest.raises(WriteRefused):
        consolidate(master, now=NOW, refresh=False)
    assert digest(master) == before
    assert snapshot(where.inbox) == inbox
    assert snapshot(where.receipts) == receipts


def test_a_broken_receipt_template_stops_the_run_before_the_master_is_written(scene, tmp_path,  # noqa: F811
                                                                              monkeypatch):
    # The worker's receipts are only waited for after the write, so the first one is rendered in
    # this process: a template the office broke must still stop the run with the master as it was.
    from jinja2.exceptions import UndefinedError

    master = copy_scene(scene, tmp_path / "broken")
    where = folders(master, read_workbook(master).settings)
    started = worker_started(monkeypatch)

    def broken_template(path, templates, context):
        raise UndefinedError("'回执模板' is undefined")

    monkeypatch.setattr(consolidation, "render_receipt", broken_template)
    inbox, before = snapshot(where.inbox), digest(master)
    with pytest.raises(UndefinedError):
        consolidate(master, now=NOW, refresh=False)
    assert started == [True] and digest(master) == before and snapshot(where.inbox) == inbox
