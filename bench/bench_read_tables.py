"""Benchmark: what finding tables' totals rows adds to ``read_workbook``, in one run.

    python bench/bench_read_tables.py [--repeat 30]

Builds the demo master three times — as is (no table part: the zip's names say so, nothing is
read), with 台账 as an Excel table with a totals row (the workbook, its rels, the sheets' rels and
the table part are read), and as a table reaching 20 rows below the data with a calculated column
filled into them (those rows are looked at in the sheet's XML: ``SheetTables.not_records``) — and
prints, for each, the best ``read_workbook`` time and the share of it spent in the table lookup
(``read.sheet_tables``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from python_calamine import CalamineWorkbook  # noqa: E402

from macros import schema  # noqa: E402
from macros.book.read import check_zip_sizes, read_workbook, sheet_tables  # noqa: E402
from tests.tabled import add_table, build_master  # noqa: E402


def measure(path: Path, repeat: int) -> tuple[float, float]:
    names = check_zip_sizes(path)
    sheets = [s.name for s in schema.INPUT_SHEETS]
    read = min(timeit.repeat(lambda: read_workbook(path), number=1, repeat=repeat))
    lookup = min(timeit.repeat(lambda: sheet_tables(path, names, sheets), number=10, repeat=repeat)) / 10
    return read, lookup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_master(Path(tmp) / "plain.xlsx")
        tabled = build_master(Path(tmp) / "tabled.xlsx")
        add_table(tabled, totals=True)
        prefilled = build_master(Path(tmp) / "prefilled.xlsx")
        rows = len(CalamineWorkbook.from_path(str(prefilled)).get_sheet_by_name(schema.LEDGER.name).to_python())
        add_table(prefilled, last_row=rows + 20, calculated="F2*2")
        for label, path in (("无表格", plain), ("台账为带汇总行的表格", tabled),
                            ("台账为预留 20 行、带计算列的表格", prefilled)):
            read, lookup = measure(path, args.repeat)
            print(f"{label}: read_workbook {read * 1000:.2f} ms，其中查找汇总行 {lookup * 1000:.3f} ms"
                  f"（{lookup / read:.1%}）")


if __name__ == "__main__":
    main()
