"""Consolidation benchmark: N forms × 200 rows into the demo master, as ratios measured in one run.

    python bench/bench_consolidate.py                 # 300 forms, and 3,000 for the memory check
    python bench/bench_consolidate.py --forms 60 --scale 2   # a quick look

Each measurement runs in its own subprocess on a fresh copy of the master and inbox:
- consolidate: ``macros.consolidate.consolidate`` (read, validate, merge, one master write,
  moves and receipts); "files" is the time until the last file was merged, the rest is the write;
- (a) naive: ``pandas.read_excel(engine="openpyxl")`` per file, concat, openpyxl load/append/save;
- (b) floor: python-calamine reading each file's 台账 sheet, nothing else.
Peak memory: the process's max RSS, and its growth over the RSS after the imports (what the run
itself added); ``--trace`` also runs tracemalloc (slow: several minutes under the writer).
Then a night's run once the master has grown: 5 forms × 20 rows into the master that first run
wrote (60k rows more in 台账 and in 变更记录), and the naive way on the same.
The memory check runs ``--scale`` × more forms: the same forms submitted again under new names (a
committee re-sending its cumulative form), so the master holds the same rows and only the number
of files grows — streaming means flat memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from macros import demo, schema  # noqa: E402
from macros.book.build import build_workbook  # noqa: E402
from macros.book.read import read_workbook  # noqa: E402
from macros.forms import build_form  # noqa: E402

ROWS = 200

CHILD = {
    "consolidate": """
        from macros.consolidate import consolidate
        marks = []
        start = time.perf_counter()
        run = consolidate(MASTER, progress=lambda d, t, n: marks.append(time.perf_counter()), refresh=False)
        end = time.perf_counter()
        result = {"seconds": end - start, "files_seconds": marks[-1] - start,
                  "rows_added": run.rows_added, "written": run.master_written,
                  "statuses": sorted({f.status for f in run.files})}
    """,
    "naive": """
        import openpyxl
        import pandas as pd
        start = time.perf_counter()
        frames = [pd.read_excel(p, sheet_name="台账", engine="openpyxl") for p in sorted(INBOX.iterdir())]
        data = pd.concat(frames, ignore_index=True)
        data = data[data["活动内容"].notna()]
        wb = openpyxl.load_workbook(MASTER)
        ws = wb["台账"]
        for values in data.itertuples(index=False):
            ws.append([None if pd.isna(v) else v for v in values])
        wb.save(MASTER)
        result = {"seconds": time.perf_counter() - start, "rows": len(data)}
    """,
    "floor": """
        from python_calamine import CalamineWorkbook
        start = time.perf_counter()
        rows = 0
        for p in sorted(INBOX.iterdir()):
            rows += len(CalamineWorkbook.from_path(str(p)).get_sheet_by_name("台账").to_python())
        result = {"seconds": time.perf_counter() - start, "rows": rows}
    """,
}

PRELUDE = """
import json, resource, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, {root!r})
MASTER, INBOX = Path({master!r}), Path({inbox!r})
import macros.consolidate, pandas, python_calamine, openpyxl  # noqa: the imports are the baseline
BASE_MB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if {trace}:
    tracemalloc.start()
"""
EPILOGUE = """
if {trace}:
    result["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
result["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result["growth_mb"] = result["max_rss_mb"] - BASE_MB
print(json.dumps(result))
"""


def make_forms(master: Path, out: Path, count: int, rows_per_form: int | None = None) -> None:
    """``count`` filled forms of ``ROWS`` new rows each, spread over the demo committees."""
    per_form = rows_per_form or ROWS
    book = read_workbook(master)
    committees = list(zip(book[schema.COMMITTEES.name]["committee_id"], book[schema.COMMITTEES.name]["name"]))
    projects = [p[0] for p in demo.PROJECTS]
    rng = random.Random(7)
    now = datetime(2020, 11, 20, 9, 0)
    out.mkdir(parents=True)
    for i in range(count):
        cid, name = committees[i % len(committees)]
        rows = [{
            "date": date(2020, 3, 1) + timedelta(days=rng.randrange(250)),
            "project_id": rng.choice(projects),
            "activity": f"{rng.choice(demo.ACTIVITIES['P02'])}（第{i}份第{r}行）",
            "participants": rng.randint(5, 80), "quantity": rng.randint(1, 40),
            "status": rng.choice(("进行中", "已完成")), "reporter": "填报人", "in_bulletin": "否",
        } for r in range(per_form)]
        build_form(book, cid, name, out / f"填报表-{cid}-{i:04d}.xlsx", now, rows)


def measure(kind: str, master: Path, forms: Path, work: Path, trace: bool, copies: int = 1) -> dict:
    """Run one measurement in a fresh subprocess on fresh copies of the master and the forms."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    target = work / master.name
    shutil.copy2(master, target)
    inbox = work / schema.SETTINGS_BY_KEY["inbox"].default
    inbox.mkdir()
    for n in range(copies):
        for form in forms.iterdir():
            shutil.copy2(form, inbox / f"{form.stem}-{n:02d}{form.suffix}")
    code = (PRELUDE.format(root=str(ROOT), master=str(target), inbox=str(inbox), trace=trace)
            + textwrap.dedent(CHILD[kind]) + EPILOGUE.format(trace=trace))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=child_env(work.parent))
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_env(tmp: Path) -> dict[str, str]:
    """The measured processes' environment: compiled bytecode kept (in ``tmp``), as an installed
    package has it. Where PYTHONDONTWRITEBYTECODE is set (this sandbox), every process — the
    consolidation's reader process too — would compile our modules from source again."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    return env


def warm_up(tmp: Path) -> None:
    """Compile what the measured processes import (once, as installing a package does)."""
    modules = "macros.consolidate, macros.submission, macros.report, macros.render.env, pandas, openpyxl, jinja2"
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import {modules}"],
                   check=True, env=child_env(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=300)
    parser.add_argument("--scale", type=int, default=10, help="memory check: this many times the forms")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--trace", action="store_true", help="also measure tracemalloc peaks (slow)")
    args = parser.parse_args()
    n = args.forms

    def say(text: str) -> None:
        print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-consolidate-") as tmp:
        tmp = Path(tmp)
        master = tmp / "healthbook.xlsx"
        build_workbook(master, demo.demo_rows())
        forms = tmp / "forms"
        make_forms(master, forms, n)
        warm_up(tmp)
        say(f"{n} forms × {ROWS} rows into the demo master (one run; each measurement a fresh process)")
        ours = measure("consolidate", master, forms, tmp / "w", trace=False)
        write = ours["seconds"] - ours["files_seconds"]
        say(f"  consolidate      {ours['seconds']:7.2f} s  = files {ours['files_seconds']:.2f} s (read, validate, "
            f"merge, receipts) + write/moves {write:.2f} s; {ours['rows_added']} rows added; "
            f"max RSS {ours['max_rss_mb']:.0f} MB (+{ours['growth_mb']:.0f} over imports)")
        grown = tmp / "grown" / master.name  # the master after that run: 60k rows more
        grown.parent.mkdir()
        shutil.copy2(tmp / "w" / master.name, grown)
        floor = measure("floor", master, forms, tmp / "w", trace=False)
        say(f"  (b) calamine     {floor['seconds']:7.2f} s   ({floor['rows']} rows read)")
        say(f"      files part / (b): {ours['files_seconds'] / floor['seconds']:.2f}×  (goal ≤ 1.5×, plus one write)")
        if not args.skip_naive:
            naive = measure("naive", master, forms, tmp / "w", trace=False)
            say(f"  (a) naive pandas {naive['seconds']:7.2f} s   max RSS {naive['max_rss_mb']:.0f} MB")
            say(f"      (a) / consolidate: {naive['seconds'] / ours['seconds']:.1f}×  (goal ≥ 8×); "
                f"(a) / files part: {naive['seconds'] / ours['files_seconds']:.1f}×")
        # A night's run once the master has grown: 5 forms × 20 rows into the master above.
        few = tmp / "few"
        make_forms(grown, few, 5, rows_per_form=20)
        nightly = measure("consolidate", grown, few, tmp / "w", trace=False)
        say(f"  5 forms × 20 rows into that grown master ({ours['rows_added']:,} rows more): {nightly['seconds']:.2f} s "
            f"(files {nightly['files_seconds']:.2f} s + write/moves {nightly['seconds'] - nightly['files_seconds']:.2f} s)")
        if not args.skip_naive:
            naive_nightly = measure("naive", grown, few, tmp / "w", trace=False)
            say(f"      naive on the same: {naive_nightly['seconds']:.2f} s → "
                f"{naive_nightly['seconds'] / nightly['seconds']:.1f}×")
        large = measure("consolidate", master, forms, tmp / "w", trace=False, copies=args.scale)
        say(f"  {n * args.scale} forms ({args.scale}× resubmitted): {large['seconds']:.2f} s, max RSS "
            f"{large['max_rss_mb']:.0f} MB (+{large['growth_mb']:.0f}) vs {ours['max_rss_mb']:.0f} MB "
            f"(+{ours['growth_mb']:.0f}) → {large['max_rss_mb'] / ours['max_rss_mb']:.2f}× "
            f"(growth {large['growth_mb'] / ours['growth_mb']:.2f}×)  (goal ≤ 1.2×)")
        if args.trace:
            small_t = measure("consolidate", master, forms, tmp / "w", trace=True)
            large_t = measure("consolidate", master, forms, tmp / "w", trace=True, copies=args.scale)
            say(f"  tracemalloc peak: {small_t['traced_peak_mb']:.0f} MB vs {large_t['traced_peak_mb']:.0f} MB → "
                f"{large_t['traced_peak_mb'] / small_t['traced_peak_mb']:.2f}×")


if __name__ == "__main__":
    main()
