"""New rows are encoded a column at a time; the result must equal the general, cell-by-cell path.

Both paths write the same rows into copies of the demo master; openpyxl (an independent reader)
must see the same value, type, number format and quote prefix in every cell, and the safe
writer's own re-read check must pass for both, or refuse both alike.
"""

from __future__ import annotations

import math
import shutil
from datetime import date, datetime

import numpy as np
import openpyxl
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macros import schema
from macros.book import owned
from macros.book.write import FileBook, WriteRefused
from macros.book.write_types import SheetWrite

# Excel's serials start at 1900-03-01 (before it, its 1900 leap-year bug shifts them by a day).
DATES = st.dates(date(1900, 3, 1), date(2100, 1, 1))
VALUE = st.one_of(
    st.none(), st.just(""), st.text(max_size=6), st.sampled_from(["=1+1", "+86", "-", "@x", "a&b<c>", "_x0041_",
                                                                 "\x01", "健康街道", " 前后 ", "x" * 40_000]),
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True, width=32),
    DATES, st.datetimes(datetime(1900, 3, 1), datetime(2100, 1, 1)),
    st.times(), st.booleans(), st.integers(0, 500).map(np.int64), DATES.map(pd.Timestamp),
)
KEYS = [k for k in schema.LEDGER.keys if k != "record_id"]
# Columns whose every value has one kind take the column fast paths; mixed ones the per-cell path.
COLUMN = st.one_of(
    st.lists(VALUE, min_size=4, max_size=4),
    st.sampled_from([st.text(min_size=1, max_size=5), st.integers(0, 99), DATES, st.floats(0, 1e6),
                     st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1))]).flatmap(
        lambda s: st.lists(s, min_size=4, max_size=4)),
)


def cells(path, n: int) -> list[tuple]:
    ws = openpyxl.load_workbook(path)[schema.LEDGER.name]
    out = []
    for row in ws.iter_rows(min_row=ws.max_row - n + 1, max_row=ws.max_row):
        for c in row:
            value = c.value
            if isinstance(value, float) and math.isnan(value):
                value = "nan"
            out.append((c.coordinate, value, c.data_type, c.number_format if value is not None else None,
                        bool(c.quotePrefix) if value is not None else None))
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(COLUMN, min_size=len(KEYS), max_size=len(KEYS)))
def test_bulk_rows_equal_the_general_path(demo_master, tmp_path_factory, monkeypatch, columns):
    rows = [{"record_id": f"C01-9{i:03d}", **{k: col[i] for k, col in zip(KEYS, columns)}} for i in range(4)]
    written = {}
    for bulk in (True, False):
        path = tmp_path_factory.mktemp("bulk") / demo_master.name
        shutil.copy2(demo_master, path)
        with monkeypatch.context() as m:
            m.setattr(owned, "BULK", bulk)
            try:
                FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
            except WriteRefused as refused:
                # The re-read check refuses what Excel would misread (a small number in a date
                # column reads back as a 1900 date): both paths must refuse it alike.
                written[bulk] = refused.reason
                continue
        written[bulk] = cells(path, len(rows))
    assert written[True] == written[False]


def write_both_ways(demo_master, tmp_path, monkeypatch, rows: list[dict]):
    """(bulk?, path) for the rows written into a copy of the master by each path."""
    for bulk in (True, False):
        path = tmp_path / f"{bulk}" / demo_master.name
        path.parent.mkdir()
        shutil.copy2(demo_master, path)
        monkeypatch.setattr(owned, "BULK", bulk)
        FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
        yield bulk, path


def test_typical_rows_take_both_paths_alike(demo_master, tmp_path, monkeypatch):
    """Rows as consolidation adds them (and the awkward values it meets) write the same either way."""
    rows = [{"record_id": f"C01-9{i:03d}", "date": date(2020, 6, 22 - i % 3), "committee_id": "C01",
             "project_id": "P02", "activity": ["康健驿站", "=HYPERLINK(1)", "A&B <会>", "x" * 33_000][i % 4],
             "participants": [12, 12.5, None, 800][i % 4], "quantity": np.int64(i),
             "status": "进行中", "reporter": " 王 ", "in_bulletin": "否", "note": ["", None, "\x07", "_x0041_"][i % 4],
             "source": datetime(2020, 11, 20, 9, i)} for i in range(8)]
    written = {bulk: cells(path, len(rows)) for bulk, path in write_both_ways(demo_master, tmp_path, monkeypatch, rows)}
    assert written[True] == written[False]
    # formula-looking text stays text, with the quote prefix Excel shows it by
    assert any(c[1] == "=HYPERLINK(1)" and c[2] == "s" and c[4] for c in written[True])


def test_spaces_at_either_end_are_marked_to_keep(demo_master, tmp_path, monkeypatch):
    """Excel drops whitespace at the ends of a <t> unless it says xml:space="preserve"; the mark is
    written where text needs it (both paths), and only there (it is a fifth of a big ledger)."""
    import re
    import zipfile

    texts = [" 前空格", "后空格 ", "\u3000全角缩进", "中间 空格", "无空格"]
    rows = [{"record_id": f"C01-9{i:03d}", "activity": t, "committee_id": "C01"} for i, t in enumerate(texts)]
    for _bulk, path in write_both_ways(demo_master, tmp_path, monkeypatch, rows):
        with zipfile.ZipFile(path) as zf:
            xml = next(zf.read(n).decode() for n in zf.namelist()
                       if n.startswith("xl/worksheets/sheet") and "中间 空格" in zf.read(n).decode())
        tags = {m.group(2): m.group(1) for m in re.finditer(r"(<t[^>]*>)([^<]*)</t>", xml) if m.group(2) in texts}
        assert tags == {" 前空格": '<t xml:space="preserve">', "后空格 ": '<t xml:space="preserve">',
                        "\u3000全角缩进": '<t xml:space="preserve">', "中间 空格": "<t>", "无空格": "<t>"}
        assert [c[1] for c in cells(path, len(rows)) if c[0].startswith("E")] == texts
