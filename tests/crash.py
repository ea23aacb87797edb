"""Kill ``healthbook consolidate`` with SIGKILL at random moments and check what is left.

Used by tests/test_crash.py (a few kills in CI) and bench/crash_consolidate.py (N by hand). After
each kill: the master opens and its ledger equals the old or the new one; every submission is in
exactly one of inbox / archive / rejected; a clean re-run ends with the ledger of a run that was
never interrupted, and every file archived or rejected once.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import ROW, read_workbook
from macros.consolidate import consolidate, folders

from .hostile import HEADERS, row, xlsx

ROOT = Path(__file__).resolve().parents[1]
LEDGER = schema.LEDGER.name


def submissions(folder: Path) -> list[Path]:
    """Five files: three good committees, one with a bad row, one that is rejected whole."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for committee in ("C01", "C02", "C03"):
        rows = [row(committee_id=committee, date=date(2020, 11, 2 + i), activity=f"{committee} 健康讲座 {i}")
                for i in range(4)]
        made.append(folder / f"{committee}-十一月.xlsx")
        xlsx(made[-1], [HEADERS, *rows])
    made.append(folder / "C04-有错行.xlsx")
    xlsx(made[-1], [HEADERS, row(committee_id="C04", activity="C04 义诊"), row(committee_id="C04", project_id="P99")])
    made.append(folder / "没有台账.xlsx")
    xlsx(made[-1], [HEADERS, row()], sheet="Sheet1")
    for i, path in enumerate(made):  # a fixed order: the inbox is taken oldest first
        os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
    return made


def ledger_state(master: Path) -> list[tuple]:
    """The ledger as data (every column but the Excel row), in record order."""
    frame = read_workbook(master, [schema.LEDGER])[LEDGER].drop(columns=ROW)
    rows = [tuple(str(v) for v in r) for r in frame.itertuples(index=False)]
    return sorted(rows)


def changes_state(master: Path) -> list[tuple]:
    frame = read_workbook(master, [schema.CHANGES])[schema.CHANGES.name]
    keep = [c for c in frame.columns if c not in (ROW, "time")]
    return sorted(tuple(str(v) for v in r) for r in frame[keep].itertuples(index=False))


@dataclass
class Scene:
    """A master and its inbox in a folder, ready to run."""

    folder: Path
    master: Path
    files: list[str]

    @property
    def where(self):
        return folders(self.master, {})

    def places(self) -> dict[str, list[str]]:
        """Where each submission is now: inbox / archive / rejected (a moved file carries a stamp)."""
        found: dict[str, list[str]] = {name: [] for name in self.files}
        for place, folder in (("inbox", self.where.inbox), ("archive", self.where.archive),
                              ("rejected", self.where.rejected)):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                owner = next((n for n in self.files if p.name == n or p.name.startswith(f"{Path(n).stem}-")), None)
                assert owner is not None, f"unexpected file {p}"
                found[owner].append(place)
        return found


def make_scene(folder: Path, template: Path, originals: list[Path]) -> Scene:
    folder.mkdir(parents=True)
    master = folder / template.name
    shutil.copy2(template, master)
    inbox = folders(master, {}).inbox
    inbox.mkdir()
    for p in originals:
        shutil.copy2(p, inbox / p.name)
    return Scene(folder, master, [p.name for p in originals])


def start(master: Path, stdout: int = subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "macros", "consolidate", str(master), "--json"],
                            cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE)


@dataclass
class Outcome:
    delay: float
    finished: bool  # the run ended before the kill
    state: str  # "old" / "new"
    problems: list[str] = field(default_factory=list)


@dataclass
class Bench:
    """Everything the kills are compared with, built once."""

    folder: Path
    template: Path
    originals: list[Path]
    old: list[tuple]
    new: list[tuple]
    new_changes: list[tuple]
    duration: float

    @classmethod
    def build(cls, folder: Path) -> Bench:
        template = folder / "template" / "healthbook.xlsx"
        template.parent.mkdir(parents=True)
        build_workbook(template, demo.demo_rows())
        originals = submissions(folder / "originals")
        reference = make_scene(folder / "reference", template, originals)
        began = time.monotonic()
        proc = start(reference.master)
        _, err = proc.communicate(timeout=600)
        duration = time.monotonic() - began
        assert proc.returncode in (0, 1), err.decode()
        new = ledger_state(reference.master)
        old = ledger_state(template)
        assert new != old
        return cls(folder, template, originals, old, new, changes_state(reference.master), duration)

    def kill_once(self, n: int, delay: float) -> Outcome:
        scene = make_scene(self.folder / f"kill-{n:03d}", self.template, self.originals)
        proc = start(scene.master)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        problems = []
        try:
            state = ledger_state(scene.master)
        except Exception as exc:  # the whole point: report, do not stop
            return Outcome(delay, finished, "unreadable", [f"master unreadable: {exc}"])
        label = "old" if state == self.old else "new" if state == self.new else "neither"
        if label == "neither":
            problems.append("ledger is neither the old nor the new one")
        for name, places in scene.places().items():
            if len(places) != 1:
                problems.append(f"{name}: in {places or 'no folder'}")
        # A clean re-run finishes the job: the ledger of an uninterrupted run, each file once.
        try:
            consolidate(scene.master, refresh=False)
        except Exception as exc:
            problems.append(f"re-run failed: {exc}")
        else:
            if ledger_state(scene.master) != self.new:
                problems.append("after the re-run the ledger differs from an uninterrupted run")
            if changes_state(scene.master) != self.new_changes:
                problems.append("after the re-run 变更记录 differs from an uninterrupted run")
            places = scene.places()
            if any(len(p) != 1 or p[0] == "inbox" for p in places.values()):
                problems.append(f"after the re-run: {places}")
        if not problems:
            shutil.rmtree(scene.folder, ignore_errors=True)
        return Outcome(delay, finished, label, problems)

    def run(self, count: int, seed: int = 0, report=None) -> list[Outcome]:
        rng = random.Random(seed)
        outcomes = []
        for n in range(count):
            # Spread over the whole run, start-up included; a few past its end.
            outcome = self.kill_once(n, rng.uniform(0.0, self.duration * 1.05))
            outcomes.append(outcome)
            if report:
                report(n, outcome)
        return outcomes
