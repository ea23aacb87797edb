"""Consolidation reads many files ahead in a worker process: same run as reading in-process,
no stray process after a kill, and a caller's unguarded script is never run a second time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

import macros.consolidate as consolidation
import macros.readahead as readahead
from macros import schema
from macros.book.lock import WorkbookLock
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders
from macros.forms import build_forms

from .test_consolidate import fill_form, new_row

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2020, 11, 20, 9, 30)
FILES = readahead.READ_AHEAD_MIN_FILES + 4


@pytest.fixture(scope="module")
def scene(demo_master, tmp_path_factory) -> Path:
    """A master and an inbox of more files than are read in-process: good forms, bad rows,
    formula-looking text, a wrong committee, a hand-made workbook, and files that are no workbook."""
    folder = tmp_path_factory.mktemp("reader-scene")
    blanks = folder / "blanks"
    build_forms(demo_master, blanks, ["C01", "C02"])
    c01, c02 = (next(blanks.glob(f"填报表-{c}-*.xlsx")) for c in ("C01", "C02"))
    master = folder / "healthbook.xlsx"
    shutil.copy2(demo_master, master)
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    files = []
    for i in range(FILES - 4):
        blank = c01 if i % 2 else c02
        rows = [new_row(activity=f"第{i}份健康讲座第{r}场", quantity=r + 1) for r in range(5)]
        if i == 3:
            rows[1]["quantity"] = "很多"  # an unreadable number: that row is left out
        if i == 4:
            rows[2]["note"] = "+86 21 6200 0000"  # openpyxl would store "=…" as a formula
        if i == 5:
            rows[0]["committee_id"] = "C02"  # another committee's row: rejected whole
        files.append(fill_form(blank, inbox / f"填报表-{i:02d}.xlsx", rows))
    (inbox / "说明.csv").write_text("a,b\n", encoding="utf-8")
    (inbox / "坏文件.xlsx").write_bytes(b"not a workbook")
    (inbox / "重复提交.xlsx").write_bytes(files[0].read_bytes())
    (inbox / "~$填报表-00.xlsx").write_bytes(b"\x04zhou")
    stamp = time.time() - 3600
    for n, path in enumerate(sorted(inbox.iterdir())):  # a fixed order (oldest first)
        os.utime(path, (stamp + n, stamp + n))
    return folder


def copy_scene(scene: Path, to: Path) -> Path:
    shutil.copytree(scene, to)
    return to / "healthbook.xlsx"


def outcome(master: Path, run) -> dict:
    where = folders(master, read_workbook(master).settings)
    book = read_workbook(master, [schema.LEDGER, schema.CHANGES])
    return {
        "run": run.to_dict(),
        "ledger": book[schema.LEDGER.name].drop(columns="_row").to_dict("records"),
        "changes": book[schema.CHANGES.name].drop(columns="_row").to_dict("records"),
        "receipts": {p.name: p.read_text(encoding="utf-8") for p in sorted(where.receipts.glob("*.html"))},
        "archive": sorted(p.name for p in where.archive.iterdir()),
        "rejected": sorted(p.name for p in where.rejected.iterdir()),
    }


def worker_started(monkeypatch) -> list[bool]:
    """Whether each reader process the run asked for started (True) or not (None came back)."""
    started = []
    real_start = readahead.start_worker

    def start():
        pool = real_start()
        started.append(pool is not None)
        return pool

    monkeypatch.setattr(readahead, "start_worker", start)
    return started


def test_reading_ahead_in_a_worker_gives_the_same_run_as_reading_here(scene, tmp_path, monkeypatch):
    started = worker_started(monkeypatch)
    ahead = copy_scene(scene, tmp_path / "ahead")
    ticks = []
    run = consolidate(ahead, now=NOW, refresh=False, progress=lambda d, t, n: ticks.append((d, t, n)))
    assert started == [True]  # the worker really read the files

    monkeypatch.setattr(readahead, "READ_AHEAD_MIN_FILES", 10**9)
    here = copy_scene(scene, tmp_path / "here")
    ticks_here = []
    run_here = consolidate(here, now=NOW, refresh=False, progress=lambda d, t, n: ticks_here.append((d, t, n)))
    assert started == [True]  # the second run read in-process

    got, expected = outcome(ahead, run), outcome(here, run_here)
    assert got == expected
    statuses = {f["file"]: f["status"] for f in got["run"]["files"]}
    assert statuses["填报表-03.xlsx"] == "partly" and statuses["填报表-05.xlsx"] == "rejected"
    assert statuses["坏文件.xlsx"] == statuses["说明.csv"] == "rejected"
    assert statuses["~$填报表-00.xlsx"] == "skipped" and statuses["重复提交.xlsx"] == "accepted"
    assert any(i["code"] == "formula_text" for f in got["run"]["files"] for i in f["issues"])
    # progress: once per file, as when reading here
    assert ticks == ticks_here and [d for d, _, _ in ticks] == list(range(1, len(statuses) + 1))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_killed_run_leaves_no_reader_process_and_no_lock(scene, tmp_path):
    master = copy_scene(scene, tmp_path / "killed")
    # The run stops at its third file, with the worker started and waiting for more work.
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import macros.consolidate as c
        real, seen = c.load_file, []
        def slow(*args, **kw):
            seen.append(1)
            if len(seen) == 3:
                time.sleep(120)
            return real(*args, **kw)
        c.load_file = slow
        c.consolidate({str(master)!r}, refresh=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        workers = []
        while not workers and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert workers, "the run never started its reader process"
        time.sleep(0.5)  # the worker has read ahead and waits for work
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 20
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers)), "the reader process outlived the killed run"
    with WorkbookLock(master, wait=0):  # nobody holds the master's lock
        pass
    run = consolidate(master, refresh=False)  # and the next run does the job
    assert run.master_written


def test_an_unguarded_calling_script_runs_once(scene, tmp_path):
    master = copy_scene(scene, tmp_path / "script")
    marker = tmp_path / "ran.txt"
    script = tmp_path / "nightly_without_guard.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        with open({str(marker)!r}, "a") as f:
            f.write("ran\\n")
        from macros.consolidate import consolidate
        run = consolidate(Path({str(master)!r}), refresh=False)
        print(json.dumps(run.rows_added))
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) > 0
    assert marker.read_text().splitlines() == ["ran"]


@pytest.mark.parametrize("kill_at", [1, 4])  # before it read anything; after it read ahead
# Python 3.11's pool thread fails on futures this process took back (fixed in 3.12); the run must not care.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_reader_process_that_dies_mid_run_changes_nothing_but_speed(scene, tmp_path, monkeypatch, kill_at):
    pools = []
    real_start = readahead.start_worker

    def start():
        pools.append(real_start())
        return pools[-1]

    real_load, seen = consolidation.load_file, []

    def load_and_kill_the_worker(*args, **kw):
        seen.append(1)
        if len(seen) == kill_at:
            for process in list(pools[0].pool._processes.values()):
                process.kill()
                process.join()
        return real_load(*args, **kw)

    monkeypatch.setattr(readahead, "start_worker", start)
    monkeypatch.setattr(consolidation, "load_file", load_and_kill_the_worker)
    died = copy_scene(scene, tmp_path / "died")
    run = consolidate(died, now=NOW, refresh=False)
    assert pools and pools[0] is not None and len(seen) > kill_at

    monkeypatch.setattr(consolidation, "load_file", real_load)
    monkeypatch.setattr(readahead, "READ_AHEAD_MIN_FILES", 10**9)
    here = copy_scene(scene, tmp_path / "here")
    assert outcome(died, run) == outcome(here, consolidate(here, now=NOW, refresh=False))


def test_waiting_on_a_dead_reader_process_ends():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    worker = readahead.start_worker()
    assert worker is not None and worker.pid.result(timeout=60) > 0 and worker.alive()
    never = Future()  # what Python 3.11 can leave behind when a pool breaks
    for process in list(worker.pool._processes.values()):
        process.kill()
        process.join()
    began = time.monotonic()
    with pytest.raises(BrokenProcessPool):
        worker.result(never)
    assert time.monotonic() - began < 30
    worker.shutdown(wait=True)
