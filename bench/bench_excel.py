"""Excel operations and wall time of one report through the live adapter (xlwings JSON book).

    XLWINGS_LICENSE_KEY=noncommercial python bench/bench_excel.py [--repeat 3]

Counts what a button click costs in Excel round trips on the demo (with three bad ledger cells):
range reads made by LiveBook (goal: at most one per input sheet), value writes (goal: one per
output sheet), fill calls (batched), notes (one per marked cell), and the actions in the JSON the
macro returns. Then the wall time of the report macro on the JSON book against the CLI ``report``
on the same file, as a ratio measured in this run. Without Excel, the JSON book measures our side
only: on Windows each count above is one COM round trip (about 0.1–1 ms each on a local Excel).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import xlwings as xw  # noqa: E402

from macros import demo, excel, schema  # noqa: E402
from macros.book.build import build_workbook  # noqa: E402
from macros.book.live import LiveBook  # noqa: E402
from tests.xlwings_book import apply_actions, book_payload  # noqa: E402

BAD = [(3, "date", "六月某日"), (5, "quantity", "abc"), (7, "project_id", "P99")]


def demo_file(folder: Path) -> Path:
    rows = demo.demo_rows()
    for index, key, value in BAD:
        rows[schema.LEDGER.name][index][key] = value
    path = folder / "healthbook.xlsx"
    build_workbook(path, rows)
    return path


def macro_name() -> str:
    try:
        import macros.report  # noqa: F401
        return "report"
    except ImportError:  # before the notices core lands: validate + roll up only
        return "rollup"


def run_macro(payload: dict, name: str, folder: Path) -> tuple[float, xw.Book, Counter]:
    counts: Counter = Counter()
    original = LiveBook.__init__

    def counting_init(self, book):
        original(self, book)
        self.counts = counts  # every LiveBook of this run adds to one counter

    LiveBook.__init__ = counting_init
    try:
        book = xw.Book(json=copy.deepcopy(payload))  # the JSON engine updates its payload in place
        start = time.perf_counter()
        kwargs = {"base": folder} if name == "report" else {}
        getattr(excel, name)(book, as_of=demo.DEMO_AS_OF, **kwargs)
        elapsed = time.perf_counter() - start
    finally:
        LiveBook.__init__ = original
    return elapsed, book, counts


def run_cli(path: Path, name: str) -> float | None:
    from macros.cli import main

    start = time.perf_counter()
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = main([name, str(path), "--as-of", demo.DEMO_AS_OF.isoformat()])
    except SystemExit:  # the command is not on this branch yet
        return None
    if status not in (0, 1):
        print(f"CLI {name} failed ({status}): {err.getvalue().strip()[:200]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name = macro_name()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = demo_file(folder)
        payload = book_payload(path)
        macro_times, cli_times = [], []
        for _ in range(args.repeat):
            elapsed, book, counts = run_macro(payload, name, folder)
            macro_times.append(elapsed)
            copy = folder / f"cli-{len(cli_times)}.xlsx"
            shutil.copy2(path, copy)
            cli_times.append(run_cli(copy, name))
        # A second click on the book as the first left it: old rows cleared, old marks undone.
        after = apply_actions(payload, book.json()["actions"])
        _, again, again_counts = run_macro(after, name, folder)
        again_actions = Counter(a["func"] for a in again.json()["actions"])
        actions = Counter(a["func"] for a in book.json()["actions"])
        output_sheets = {a["sheet_position"] for a in book.json()["actions"] if a["func"] == "setValues"}
        print(f"macro: {name} on the demo ({sum(len(s['values']) for s in payload['sheets'])} rows "
              f"in {len(payload['sheets'])} sheets, 3 bad ledger cells)")
        print(f"range reads: {counts['reads']} for {len(schema.INPUT_SHEETS)} input sheets "
              f"(+{counts['reads'] - len(schema.INPUT_SHEETS)} for 校验结果's old marks); "
              f"cells read: {counts['cells_read']}")
        print(f"value writes: {counts['writes']} over {len(output_sheets)} sheets; "
              f"cells written: {counts['cells_written']}")
        print(f"fill calls: {counts['fill_calls']} for {counts['cells_filled']} cells; "
              f"notes added: {counts['notes_added']}, deleted: {counts['notes_deleted']}; "
              f"number-format calls: {counts['formats']}; clears: {counts['clears']}")
        print(f"actions returned: {sum(actions.values())} — " +
              ", ".join(f"{k} {v}" for k, v in actions.most_common()))
        print(f"second click: reads {again_counts['reads']}, value writes {again_counts['writes']}, "
              f"clears {again_counts['clears']}, fill calls {again_counts['fill_calls']} for "
              f"{again_counts['cells_filled']} cells, notes deleted {again_counts['notes_deleted']} / "
              f"added {again_counts['notes_added']}; actions {sum(again_actions.values())}")
        best_macro = min(macro_times)
        line = f"wall time (best of {args.repeat}): macro on JSON book {best_macro * 1000:.0f} ms"
        if all(t is not None for t in cli_times):
            best_cli = min(cli_times)
            line += f", CLI {name} {best_cli * 1000:.0f} ms, ratio macro/CLI {best_macro / best_cli:.2f}"
        else:
            line += f" (CLI {name} not available on this branch)"
        print(line)


if __name__ == "__main__":
    main()
