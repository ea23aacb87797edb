"""The scheduled entry runs from a checkout; while the master is open it stages, keeps the inbox, exits 3."""

from __future__ import annotations

import subprocess
import sys

import macros.consolidate as consolidation
from macros.forms import build_forms

from .conftest import ROOT
from .test_consolidate import fill_form, new_row


def test_nightly_script_waits_for_an_open_master_then_merges(master_copy, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"])
    inbox = master_copy.parent / "收件箱"
    inbox.mkdir()
    fill_form(blank, inbox / "C01.xlsx", [new_row()])
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(b"\x04zhou")
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py"), str(master_copy), "--min-age", "0"]

    busy = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert busy.returncode == 3, busy.stderr
    assert "收件箱保持原样" in busy.stdout and [p.name for p in inbox.iterdir()] == ["C01.xlsx"]

    owner.unlink()
    done = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "共新增 1 行" in done.stdout and not any(inbox.iterdir())
    # the scheduler's log shows each step with its time (a night that hangs shows where)
    steps = [line.split("] ", 1)[1] for line in done.stdout.splitlines() if line.startswith("[") and "] 正在" in line]
    assert steps == [consolidation.READING, consolidation.REFRESHING, consolidation.WRITING, consolidation.FINISHING]
