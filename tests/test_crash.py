"""Crash safety: consolidate killed with SIGKILL at random moments loses and duplicates nothing.

The larger run is bench/crash_consolidate.py (N=100 by hand); here a modest N keeps CI short.
"""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("macros.consolidate", reason="consolidation not merged yet")

from .crash import Bench  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
KILLS = int(os.environ.get("HEALTHBOOK_KILLS", "8"))


def test_consolidate_killed_at_random_moments_leaves_old_or_new_and_loses_nothing(tmp_path):
    bench = Bench.build(tmp_path)
    outcomes = bench.run(KILLS, seed=20201115)
    failures = [(o.delay, o.state, o.problems) for o in outcomes if o.problems]
    assert not failures
    # The kills really interrupted runs (not all before start-up or after the end).
    assert sum(not o.finished for o in outcomes) >= KILLS // 2


def test_two_runs_started_together_process_every_file_once(tmp_path):
    import json
    import subprocess

    from .crash import changes_state, ledger_state, make_scene, start

    bench = Bench.build(tmp_path)
    for attempt in range(3):  # three races, each from a fresh scene
        scene = make_scene(tmp_path / f"race-{attempt}", bench.template, bench.originals)
        runs = [start(scene.master, stdout=subprocess.PIPE) for _ in range(2)]
        outputs = [p.communicate(timeout=600) for p in runs]
        codes = [p.returncode for p in runs]
        assert all(c in (0, 1, 3) for c in codes), [err.decode() for _, err in outputs]
        per_run: list[list[str]] = []
        for (out, err), code in zip(outputs, codes):
            if code == 3:  # refused: busy, said clearly in Chinese, nothing done
                # (on a loaded machine the first run can outlast the second's wait for the lock)
                assert "正由另一个 healthbook 任务写入" in err.decode() and "请稍后重试" in err.decode(), err.decode()
                per_run.append([])
                continue
            files = json.loads(out)["files"]
            per_run.append([f["file"] for f in files if f["status"] != "skipped"])
        # One run did everything; the other waited for the lock and found the inbox empty, or refused.
        assert sorted(map(sorted, per_run), key=len) == [[], sorted(scene.files)], per_run
        assert ledger_state(scene.master) == bench.new
        assert changes_state(scene.master) == bench.new_changes
        assert all(len(p) == 1 and p[0] != "inbox" for p in scene.places().values())
        assert len(list(scene.where.receipts.glob("*.html"))) == len(scene.files)
