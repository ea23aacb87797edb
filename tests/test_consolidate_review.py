"""Review of consolidation's receipts finished by the reader process while the master is written:
every receipt exists before any file moves; a staged run (master open in Excel) or a refused
write leaves the inbox as it was and no receipt behind."""

from __future__ import annotations

import hashlib
import shutil

import openpyxl
import pytest

import macros.consolidate as consolidation
import macros.readahead as readahead
from macros import schema
from macros.book import package
from macros.book.read import read_workbook
from macros.book.write import WriteRefused
from macros.cli import main as cli_main
from macros.consolidate import consolidate, folders, summary_text
from macros.render.env import TemplateProblem, templates_dir

from .test_consolidate_reader import NOW, copy_scene, scene, worker_started  # noqa: F401 (a fixture)
from .test_write_safety import digest, excel_owner_file


def snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with a digest of its bytes."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("queued", [readahead.WRITES_QUEUED, 2])
def test_every_receipt_exists_before_any_file_moves(scene, tmp_path, monkeypatch, queued):  # noqa: F811
    master = copy_scene(scene, tmp_path / "run")
    monkeypatch.setattr(readahead, "WRITES_QUEUED", queued)  # 2: most are written here
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


def office_receipt_template(master, text: str) -> None:
    """The office's own receipt.html (设置 模板文件夹), as staff edit it."""
    wb = openpyxl.load_workbook(master)  # a test copy: set up the office's setting
    ws = wb[schema.SETTINGS.name]
    item = schema.SETTINGS_BY_KEY["templates"].item
    next(r for r in ws.iter_rows() if r[0].value == item)[1].value = "我的模板"
    wb.save(master)
    (master.parent / "我的模板").mkdir(exist_ok=True)
    (master.parent / "我的模板" / "receipt.html").write_text(text, encoding="utf-8")


SHIPPED_RECEIPT = (templates_dir() / "receipt.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("broken, named", [
    ("<html>{% for r in rows %}{{ r.row }}</html>", "{% endfor %}"),  # a tag not closed
    (SHIPPED_RECEIPT.replace("{{ file }}", "{{ flie }}", 1), "flie"),  # a misspelt variable
    (SHIPPED_RECEIPT.replace("</body>", "{{ 1 // (rows_unchanged - 1) }}</body>"), "ZeroDivisionError"),
], ids=["tag_not_closed", "misspelt_variable", "error_on_every_receipt"])
def test_a_broken_receipt_template_stops_the_run_before_anything_is_written(scene, tmp_path, broken, named):  # noqa: F811
    master = copy_scene(scene, tmp_path / "broken")
    office_receipt_template(master, broken)
    where = folders(master, read_workbook(master).settings)
    inbox, before = snapshot(where.inbox), digest(master)
    with pytest.raises(TemplateProblem) as stopped:
        consolidate(master, now=NOW, refresh=False)
    assert "receipt.html" in str(stopped.value) and named in str(stopped.value)
    assert digest(master) == before and snapshot(where.inbox) == inbox
    assert not snapshot(where.receipts)
    code = cli_main(["consolidate", str(master)])  # the CLI says it in Chinese, no traceback
    assert code == TemplateProblem.exit_code and digest(master) == before


def test_a_receipt_template_failing_on_one_files_data_holds_back_only_that_file(scene, tmp_path):  # noqa: F811
    # Fine on the sample receipt; fails on a receipt with nothing added (an empty form's).
    master = copy_scene(scene, tmp_path / "data")
    office_receipt_template(master, SHIPPED_RECEIPT.replace("</body>", "每行 {{ 100 // rows_added }}</body>"))
    where = folders(master, read_workbook(master).settings)
    blank = next((master.parent / "blanks").glob("填报表-C01-*.xlsx"))
    shutil.copy2(blank, where.inbox / "空表.xlsx")
    run = consolidate(master, now=NOW, refresh=False)
    assert run.master_written and run.rows_added > 0 and run.exit_status == 2
    held = {f.file for f in run.files if f.receipt_error}
    assert "空表.xlsx" in held
    assert held == {f.file for f in run.files if f.rows_added == 0 and f.status != "skipped"}
    [empty] = [f for f in run.files if f.file == "空表.xlsx"]
    [issue] = [p for p in empty.issues if p.code == "receipt_not_written"]
    assert "ZeroDivisionError" in issue.message and "仍留在收件箱" in issue.message
    assert all((where.inbox / name).exists() for name in held)
    moved = [f for f in run.files if f.moved_to]
    assert moved and all(f.receipt and f.receipt.exists() for f in moved)
    assert "回执未能生成" in summary_text(run)
    assert "回执未能生成" in (master.parent / "consolidate.log").read_text(encoding="utf-8")

    # The template fixed: the next run writes the held receipts and adds nothing again.
    (master.parent / "我的模板" / "receipt.html").unlink()
    again = consolidate(master, now=NOW, refresh=False)
    assert again.rows_added == 0 and not any(f.receipt_error for f in again.files)
    assert {f.file for f in again.files if f.moved_to} == held
