"""居委会进度 and the 催办通知 never add 人次 + 场 + 幢 into one "total", and say what 完成率 is.

Through the real entry point (``healthbook report``), read back from the files it wrote.
"""

from __future__ import annotations

from datetime import date

import pytest
import python_calamine
from docx import Document

from macros import demo, schema
from macros.book.build import build_workbook
from macros.cli import main
from macros.rollup import COMMITTEE_PERCENT_RULE, COMMITTEE_TOTALS_RULE

AS_OF = date(2020, 11, 15)  # some committees are behind and get a 催办通知


def committee_sheet(path) -> tuple[list[dict], str]:
    """居委会进度 as staff see it: rows keyed by header, and the banner beside the header."""
    grid = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        schema.COMMITTEE_PROGRESS.name).to_python()
    headers = schema.COMMITTEE_PROGRESS.headers
    rows = [dict(zip(headers, r)) for r in grid[1:] if r[0] != ""]
    return rows, str(grid[0][len(headers) + 1])


def report(tmp_path, rows) -> tuple[list[dict], str, list[str]]:
    path = tmp_path / "master.xlsx"
    build_workbook(path, rows)
    assert main(["report", str(path), "--as-of", AS_OF.isoformat(), "--out", str(tmp_path / "out")]) in (0, 1)
    sheet, note = committee_sheet(path)
    letters = [p for p in (tmp_path / "out").glob("催办通知_C*.docx")]
    assert letters
    texts = ["\n".join(par.text for par in Document(str(p)).paragraphs) for p in letters]
    # The 进度通报 lists committees' 完成率 too, and says what they are.
    [progress] = (tmp_path / "out").glob("进度通报_*.docx")
    assert f"居委会的完成率{COMMITTEE_PERCENT_RULE}。" in [par.text for par in Document(str(progress)).paragraphs]
    return sheet, note, texts


def test_projects_in_different_units_are_not_added_up(tmp_path):
    rows = demo.demo_rows()
    assert len({p["indicator_unit"] for p in rows[schema.PROJECTS.name]}) > 1  # 人次, 场, 幢
    sheet, note, letters = report(tmp_path, rows)
    target, achieved = (schema.COMMITTEE_PROGRESS.header_of(k) for k in ("target", "achieved"))
    assert [(r[target], r[achieved]) for r in sheet] == [("", "")] * len(sheet)  # blank, not 1,234
    assert all(r[schema.COMMITTEE_PROGRESS.header_of("percent")] != "" for r in sheet)
    # The banner says what the 完成率 is and why the totals are blank.
    assert COMMITTEE_PERCENT_RULE in note and COMMITTEE_TOTALS_RULE in note
    for text in letters:
        assert "目标合计" not in text
        assert f"（{COMMITTEE_PERCENT_RULE}）" in text


def test_projects_in_one_unit_show_their_sum_with_the_unit(tmp_path):
    rows = demo.demo_rows()
    rows[schema.PROJECTS.name] = [{**p, "indicator_unit": "人次"} for p in rows[schema.PROJECTS.name]]
    sheet, note, letters = report(tmp_path, rows)
    target, achieved = (schema.COMMITTEE_PROGRESS.header_of(k) for k in ("target", "achieved"))
    assert all(isinstance(r[target], float) and r[target] > 0 for r in sheet)
    # The street-wide targets are shared out among the committees: their sums add up to the street's.
    street = sum(p["target"] for p in rows[schema.PROJECTS.name])
    assert sum(r[target] for r in sheet) == pytest.approx(street)
    assert any("各项目目标合计" in t and "人次，已完成" in t for t in letters)
    assert all(f"（{COMMITTEE_PERCENT_RULE}）" in t for t in letters)
