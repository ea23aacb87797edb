"""Any text a submission or a person brings is written by the safe writer and read back exactly."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite

LINE_BREAKS = ["换行\r\n制表\t", "回车\r结尾\r", "\r\n开头", "Word 粘贴\r\n\r\n两段", "\n\r混合"]


@pytest.fixture(scope="module")
def small_master(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.xlsx"
    build_workbook(path, demo.demo_rows(with_ledger=False))
    return path


def written_back(master: Path, texts: list[str]) -> list[str]:
    rows = [{"sheet": "台账", "row": i + 2, "message": t} for i, t in enumerate(texts)]
    FileBook(master).write([SheetWrite(schema.ISSUES, rows)], keep_backups=1)
    grid = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.ISSUES.name).to_python()
    return [row[schema.ISSUES.keys.index("message")] for row in grid[1:len(texts) + 1]]


def test_carriage_returns_survive_the_write(small_master, tmp_path):
    # A cell pasted from Word holds \r\n; XML readers turn a raw \r into \n, so the writer refused
    # the whole write (and with it every consolidation run while such a file sat in the inbox).
    master = Path(shutil.copy2(small_master, tmp_path / "m.xlsx"))
    assert written_back(master, LINE_BREAKS) == LINE_BREAKS
    ledger = [{"date": "2020-11-18", "committee_id": "C01", "project_id": "P06", "activity": t,
               "quantity": 1, "status": "进行中"} for t in LINE_BREAKS]
    FileBook(master).write([SheetWrite(schema.LEDGER, ledger)], keep_backups=1)
    assert list(read_workbook(master, [schema.LEDGER])[schema.LEDGER.name]["activity"]) == [
        t.strip() for t in LINE_BREAKS]


@given(texts=st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40),
                      min_size=1, max_size=6))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_round_trips_through_the_writer(small_master, texts):
    with tempfile.TemporaryDirectory() as folder:
        master = Path(shutil.copy2(small_master, Path(folder) / "m.xlsx"))
        got = written_back(master, texts)
    assert [g if g != "" else None for g in got] == [t[:32767] or None for t in texts]
