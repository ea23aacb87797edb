"""Consolidation with the refresh on: one write of the master against two, as ratios in one run.

    python bench/bench_consolidate_refresh.py              # 300 forms × 200 rows
    python bench/bench_consolidate_refresh.py --forms 60   # a quick look

Each measurement runs in its own subprocess on fresh copies of the demo master and the forms
(built as ``bench_consolidate.make_forms`` does):
- one write: ``consolidate(refresh=True)`` — ledger, 变更记录, 校验结果, marks, progress sheets and
  通知清单 in one verified write (one backup);
- two writes: ``consolidate(refresh=False)`` then ``run_report`` on the same locked FileBook —
  what consolidation did before (the merge's write, then the report's own verified write);
- merge only: ``consolidate(refresh=False)`` — the floor.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench_consolidate as bc
from bench_consolidate import ROWS, make_forms, measure, warm_up

from macros import demo
from macros.book.build import build_workbook

RUN = """
        from macros.consolidate import consolidate
        from macros.book.write import FileBook
        from macros.report import run_report
        marks = []
        start = time.perf_counter()
        run = consolidate(MASTER, progress=lambda d, t, n: marks.append(time.perf_counter()), refresh={refresh})
        if {report}:
            book = FileBook(MASTER)
            with book.locked():
                run_report(book)
        end = time.perf_counter()
        backups = MASTER.parent / "backups"
        result = {{"seconds": end - start, "after_files": end - marks[-1], "rows_added": run.rows_added,
                   "backups": len(list(backups.iterdir())) if backups.is_dir() else 0}}
"""
bc.CHILD.update({
    "one write": RUN.format(refresh=True, report=False),
    "two writes": RUN.format(refresh=False, report=True),
    "merge only": RUN.format(refresh=False, report=False),
})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        tmp = Path(tmp)
        master = tmp / "healthbook.xlsx"
        build_workbook(master, demo.demo_rows())
        forms = tmp / "forms"
        make_forms(master, forms, args.forms)
        warm_up(tmp)
        print(f"{args.forms} forms × {ROWS} rows into the demo master, refresh on "
              "(one run; each measurement a fresh process)", flush=True)
        found = {}
        for kind in ("two writes", "one write", "merge only"):
            found[kind] = r = measure(kind, master, forms, tmp / "w", trace=False)
            print(f"  {kind:<10} {r['seconds']:7.2f} s  (after the files {r['after_files']:.2f} s; "
                  f"{r['backups']} backup(s); max RSS {r['max_rss_mb']:.0f} MB)", flush=True)
        one, two, floor = (found[k] for k in ("one write", "two writes", "merge only"))
        print(f"  one write / two writes: {one['seconds'] / two['seconds']:.2f}× "
              f"(after the files {one['after_files'] / two['after_files']:.2f}×); "
              f"one write / merge only: {one['seconds'] / floor['seconds']:.2f}×")


if __name__ == "__main__":
    main()
