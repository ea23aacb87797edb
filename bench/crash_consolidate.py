"""Kill ``healthbook consolidate`` with SIGKILL at N random moments; check nothing is lost.

    python bench/crash_consolidate.py [--n 100] [--seed 1] [--keep DIR]

Each kill starts a fresh copy of the demo master with five submissions in its inbox, kills the run
after a random delay within its uninterrupted duration, then checks: the master opens and its
ledger equals the old or the new one; each submission is in exactly one of inbox/archive/rejected;
a clean re-run ends with the ledger and 变更记录 of an uninterrupted run and every file filed once.
A failed kill's folder is kept for inspection. Exit status 1 if any kill failed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.crash import Bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="hb-crash-"))
    folder.mkdir(parents=True, exist_ok=True)
    bench = Bench.build(folder)
    print(f"uninterrupted run: {bench.duration:.1f} s; killing {args.n} times (seed {args.seed}) in {folder}")

    def report(n, outcome):
        mark = "ok " if not outcome.problems else "BAD"
        when = "after it ended" if outcome.finished else "killed"
        print(f"{mark} #{n:3d} at {outcome.delay:5.2f} s {when:15s} ledger={outcome.state} {'; '.join(outcome.problems)}")

    outcomes = bench.run(args.n, args.seed, report)
    states = Counter((o.state, "finished" if o.finished else "killed") for o in outcomes)
    bad = sum(bool(o.problems) for o in outcomes)
    print(f"\n{args.n - bad}/{args.n} kills survived; states: {dict(states)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
