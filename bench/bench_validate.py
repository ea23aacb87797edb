"""Benchmark: read a 100,000-row ledger (calamine) vs normalise + validate it, in one run.

    python bench/bench_validate.py [--rows 100000] [--repeat 3] [--keep PATH]

The workbook is the demo master with a generated ledger: typed cells for most rows, plus a
realistic share of text dates ("2020年6月22日", "6月22日", "2020.6.22", 二〇二〇年…), text numbers
("1,200", "约200人", "三十"), probable duplicates and a few wrong codes. Prints both timings
(best of ``--repeat``), their ratio (goal ≤ 0.5) and the problem counts.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from macros import demo, schema  # noqa: E402
from macros.book.build import build_workbook  # noqa: E402
from macros.book.read import read_workbook  # noqa: E402
from macros.validate import validate  # noqa: E402

CN_DIGITS = "〇一二三四五六七八九"


def _hanzi_date(day: date) -> str:
    def small(n: int) -> str:
        tens, ones = divmod(n, 10)
        return (("" if tens == 1 else CN_DIGITS[tens]) + "十" if tens else "") + (CN_DIGITS[ones] if ones else "")
    return "".join(CN_DIGITS[int(c)] for c in str(day.year)) + f"年{small(day.month)}月{small(day.day)}日"


def messy_date(day: date, rng: random.Random) -> object:
    """Mostly a real date cell; sometimes text the way people type it."""
    r = rng.random()
    if r < 0.97:
        return day
    return rng.choice([
        f"{day.year}年{day.month}月{day.day}日", f"{day.month}月{day.day}日", f"{day.year}.{day.month}.{day.day}",
        f"{day.year}/{day.month}/{day.day}", _hanzi_date(day), f"{day.year}-{day.month}-{day.day}",
    ])


def messy_number(value: int, rng: random.Random) -> object:
    r = rng.random()
    if r < 0.985:
        return value
    return rng.choice([f"{value:,}", f"约{value}人", f"{value}余次", f"{value}多人", "三十", "１２０"])


def ledger(rows: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    committees = [c[0] for c in demo.COMMITTEES]
    reporters = {c[0]: c[2] for c in demo.COMMITTEES}
    projects = [p[0] for p in demo.PROJECTS]
    # A row records a slice of the work: a small share of the project's street-wide target.
    largest = {p[0]: max(1, p[6] // 150) for p in demo.PROJECTS}
    counters = dict.fromkeys(committees, 0)
    out = []
    for _ in range(rows):
        cid = rng.choice(committees)
        pid = rng.choice(projects)
        counters[cid] += 1
        day = date(demo.YEAR, 1, 2) + timedelta(days=rng.randrange(300))
        quantity = rng.randint(1, largest[pid])
        row = {
            "record_id": f"{cid}-{counters[cid]:04d}",
            "date": messy_date(day, rng),
            "committee_id": cid if rng.random() > 0.001 else cid.lower(),
            "project_id": pid if rng.random() > 0.001 else "P99",
            "activity": rng.choice(demo.ACTIVITIES[pid]) + f"（第{rng.randint(1, 40)}场）",
            "participants": messy_number(rng.randint(5, 200), rng),
            "quantity": messy_number(quantity, rng),
            "status": rng.choice(("进行中", "进行中", "已完成")),
            "reporter": reporters[cid],
            "in_bulletin": "否",
            "note": None,
            "source": schema.MANUAL_SOURCE,
        }
        out.append(row)
    return out


def build(path: Path, rows: int) -> None:
    data = demo.demo_rows(with_ledger=False)
    data[schema.LEDGER.name] = ledger(rows)
    build_workbook(path, data, force=True)


def best_of(repeat: int, func):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the workbook here (reused if it exists)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench-ledger.xlsx"
        if not path.exists():
            start = time.perf_counter()
            build(path, args.rows)
            print(f"built {path.name}: {args.rows} ledger rows in {time.perf_counter() - start:.1f}s")
        read_s, book = best_of(args.repeat, lambda: read_workbook(path))
        check_s, result = best_of(
            args.repeat, lambda: validate(book.frames, book.settings, date(demo.YEAR, 12, 31)))
    rows = len(book[schema.LEDGER.name])
    print(f"ledger rows:             {rows}")
    print(f"read (calamine):         {read_s:.3f}s")
    print(f"normalise + validate:    {check_s:.3f}s")
    print(f"ratio validate/read:     {check_s / read_s:.2f}  (goal <= 0.50)")
    print(f"problems: {result.errors} errors, {result.warnings} warnings")


if __name__ == "__main__":
    main()
