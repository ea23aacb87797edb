"""Property tests for the reader: whatever cells a workbook holds, read_workbook never crashes and
gives back what was written (the normalisers have their own in test_normalise.py)."""

from __future__ import annotations

import math
import tempfile
from datetime import date, datetime, time
from pathlib import Path

import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macros import schema
from macros.book.read import ROW, read_workbook
from macros.errors import HealthbookError

LEDGER = schema.LEDGER
# Text as it arrives: CJK, full-width, emoji, whitespace of every kind, XML-hostile characters.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(list("健康街道居委会　 \t\n\r<>&\"'=+-@_x000D_😀\x01\x1f\ufeff")),
    ),
    max_size=60,
) | st.sampled_from(["_x000D_", "a_x0041_b", "=HYPERLINK(\"http://x\",\"y\")", " 前后空格 ", "\u3000全角空格\u3000"])
NUMBER = st.one_of(st.integers(-10**15, 10**15), st.floats(-1e300, 1e300))  # Excel's range
DAY = st.dates(date(1900, 3, 1), date(9999, 12, 31))
MOMENT = st.datetimes(datetime(1900, 3, 1), datetime(9999, 12, 31)).map(lambda d: d.replace(microsecond=0))
CELL = st.one_of(st.none(), TEXT, NUMBER, st.booleans(), DAY, MOMENT)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def write_sheet(path: Path, rows: list[list], sheet: str = LEDGER.name) -> None:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    ws = wb.add_worksheet(sheet)
    day, moment = wb.add_format({"num_format": "yyyy-mm-dd"}), wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime):
                ws.write_datetime(r, c, value, moment)
            elif isinstance(value, date):
                ws.write_datetime(r, c, datetime.combine(value, time()), day)
            elif isinstance(value, bool):
                ws.write_boolean(r, c, value)
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value)
            else:
                ws.write_string(r, c, value)
    wb.close()


def expected(value: object) -> object:
    """What the reader promises for a written cell (docs/architecture.md, Frames)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def same(got: object, want: object) -> bool:
    if isinstance(want, float) or (isinstance(want, int) and not isinstance(want, bool) and abs(want) > 2**53):
        # xlsxwriter writes 16 significant digits (%.16g), Excel keeps 15.
        return isinstance(got, (int, float)) and math.isclose(float(got), float(want), rel_tol=1e-15)
    if isinstance(want, datetime) or isinstance(want, date):
        moment = want if isinstance(want, datetime) else datetime.combine(want, time())
        got_moment = got if isinstance(got, datetime) else datetime.combine(got, time()) if isinstance(got, date) else got
        return got_moment == moment
    return got == want and type(got) is type(want)


@given(body=st.lists(st.lists(CELL, min_size=len(LEDGER.keys), max_size=len(LEDGER.keys) + 2), max_size=12),
       title_rows=st.integers(0, 3), order=st.permutations(range(len(LEDGER.keys))))
@SETTINGS
def test_any_ledger_cells_read_back_as_written(body, title_rows, order):
    headers = [LEDGER.columns[i].header for i in order]
    extras = ["附加列A", "附加列B"]
    rows = [["某某街道台账"] if t == 0 else [] for t in range(title_rows)]
    rows += [[*headers, *extras], *body]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "form.xlsx"
        write_sheet(path, rows)
        frame = read_workbook(path, [LEDGER])[LEDGER.name]
    kept = [(n, row) for n, row in enumerate(body) if any(expected(v) is not None for v in row)]
    assert list(frame[ROW]) == [title_rows + 2 + n for n, _ in kept]
    columns = [LEDGER.columns[i].key for i in order] + extras
    for (_, row), got in zip(kept, frame.to_dict("records")):
        for key, value in zip(columns, row):
            assert same(got[key], expected(value)), (key, value, got[key])


@given(grid=st.lists(st.lists(CELL, max_size=8), max_size=15))
@SETTINGS
def test_any_grid_is_read_or_refused_with_a_named_error(grid):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "anything.xlsx"
        write_sheet(path, grid)
        try:
            read_workbook(path, [LEDGER])
        except HealthbookError as exc:
            assert "anything.xlsx" in str(exc) and LEDGER.name in str(exc)


@given(headers=st.lists(st.sampled_from([*LEDGER.headers, "", " 日 期 ", "日期\u3000", "其他"]), max_size=16))
@SETTINGS
def test_any_header_row_is_read_or_refused_with_a_named_error(headers):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "headers.xlsx"
        write_sheet(path, [headers, ["x"] * len(headers)])
        try:
            frame = read_workbook(path, [LEDGER])[LEDGER.name]
        except HealthbookError as exc:
            assert "headers.xlsx" in str(exc)
        else:
            assert list(frame.columns[:len(LEDGER.keys)]) == list(LEDGER.keys)


def _small_form() -> bytes:
    import io

    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = wb.add_worksheet(LEDGER.name)
    ws.write_row(0, 0, list(LEDGER.headers))
    ws.write_row(1, 0, ["C01-0001", "2020-11-18", "C01", "P06", "体检", 42, 42, "进行中"])
    wb.close()
    return buffer.getvalue()


SMALL_FORM = _small_form()


@given(data=st.data())
@SETTINGS
def test_damaged_files_are_refused_with_a_named_error_never_a_crash(data):
    """Bytes flipped in the file, or the sheet's XML cut and garbled inside a sound zip."""
    import io
    import zipfile

    if data.draw(st.booleans()):
        raw = bytearray(SMALL_FORM)
        for _ in range(data.draw(st.integers(1, 20))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        damaged = bytes(raw)
    else:
        source = zipfile.ZipFile(io.BytesIO(SMALL_FORM))
        victim = data.draw(st.sampled_from([i.filename for i in source.infolist()]))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for info in source.infolist():
                body = source.read(info)
                if info.filename == victim:
                    cut = data.draw(st.integers(0, len(body)))
                    body = body[:cut] + data.draw(st.binary(max_size=30))
                z.writestr(info, body)
        damaged = out.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "damaged.xlsx"
        path.write_bytes(damaged)
        try:
            read_workbook(path, [LEDGER])
        except HealthbookError as exc:
            assert "damaged.xlsx" in str(exc)


def test_a_zip_from_the_future_is_a_named_error(tmp_path):
    # Found by fuzzing: Python's zipfile raises NotImplementedError for an unknown "version needed".
    from tests.hostile import future_zip_version

    path = tmp_path / "future.xlsx"
    future_zip_version(path)
    try:
        read_workbook(path, [LEDGER])
    except HealthbookError as exc:
        assert "future.xlsx" in str(exc) and "损坏" in str(exc)
    else:
        raise AssertionError("a damaged zip was read")
