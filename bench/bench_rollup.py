"""Roll-up speed as ratios measured in one run.

    python -m bench.bench_rollup [ROWS]

Builds a normalised ledger of ROWS rows (default 20,000) over 20 committees × 7 projects, then
times (a) the vectorised ``rollup`` against (b) the plain-Python reference the tests check it
against, and (c) ``rollup`` on ten times the rows, and prints the ratios (machine-independent).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, timedelta

from macros import demo, schema
from macros.problems import Validation
from macros.rollup import rollup
from tests.test_rollup import reference, typed_frame

AS_OF = demo.DEMO_AS_OF


def synthetic(rows: int) -> tuple[list, list, list, list]:
    rng = random.Random(7)
    projects = [dict(zip(("project_id", "category", "name", "units", "indicator", "indicator_unit",
                          "target", "deadline"), p)) for p in demo.PROJECTS]
    committees = [{"committee_id": f"C{i:02d}", "name": f"居委会{i}"} for i in range(1, 21)]
    ledger = [
        {"date": date(2020, 1, 1) + timedelta(days=rng.randrange(330)),
         "committee_id": rng.choice(committees)["committee_id"],
         "project_id": rng.choice(projects)["project_id"], "activity": "活动",
         "quantity": float(rng.randint(1, 20)), "status": rng.choice(schema.STATUSES)}
        for _ in range(rows)
    ]
    return projects, committees, [], ledger


def validation(projects, committees, targets, ledger) -> Validation:
    return Validation({
        schema.PROJECTS.name: typed_frame(schema.PROJECTS, projects),
        schema.COMMITTEES.name: typed_frame(schema.COMMITTEES, committees),
        schema.TARGETS.name: typed_frame(schema.TARGETS, targets),
        schema.LEDGER.name: typed_frame(schema.LEDGER, ledger),
    })


def seconds(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main(rows: int = 20_000) -> None:
    settings = {"year": 2020}
    small = synthetic(rows)
    large = synthetic(rows * 10)
    small_v, large_v = validation(*small), validation(*large)
    vectorised = min(seconds(lambda: rollup(small_v, settings, AS_OF)) for _ in range(3))
    plain = seconds(lambda: reference(*small, set(), AS_OF))
    tenfold = min(seconds(lambda: rollup(large_v, settings, AS_OF)) for _ in range(3))
    print(f"rows={rows}: rollup {vectorised * 1000:.0f} ms; plain Python {plain * 1000:.0f} ms "
          f"→ plain Python takes {plain / vectorised:.1f}× as long")
    print(f"rows={rows * 10}: rollup {tenfold * 1000:.0f} ms → {tenfold / vectorised:.1f}× the time for 10× the rows")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
