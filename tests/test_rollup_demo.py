"""Roll-up of the demo master (read → validate → roll up) against a plain-Python computation over
the demo's source rows, and ``healthbook rollup`` through the real entry point."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import main
from macros.rollup import rollup, rollup_sheets
from macros.validate import validate

from .test_rollup import check_against_reference, reference


def demo_rollup(path, as_of=demo.DEMO_AS_OF):
    book = read_workbook(path)
    validation = validate(book.frames, book.settings, as_of=as_of)
    return validation, rollup(validation, book.settings, as_of)


def source_quantity(value) -> float:
    # The demo types one quantity as the bulletin does ("800余次"); the normaliser reads 800.
    return float(re.match(r"\d+", value).group()) if isinstance(value, str) else float(value)


def demo_reference(rows: dict[str, list[dict]], error_rows: set[int], as_of: date) -> dict:
    ledger = [{**r, "quantity": source_quantity(r["quantity"])} for r in rows[schema.LEDGER.name]]
    return reference(rows[schema.PROJECTS.name], rows[schema.COMMITTEES.name], rows[schema.TARGETS.name],
                     ledger, error_rows, as_of)


def test_demo_totals_equal_the_plain_computation(demo_master):
    validation, result = demo_rollup(demo_master)
    assert validation.errors == 0
    check_against_reference(result, demo_reference(demo.demo_rows(), set(), demo.DEMO_AS_OF))
    assert result.meta["rows_used"] == len(demo.demo_rows()[schema.LEDGER.name])


def test_demo_shows_who_is_behind(demo_master):
    _validation, result = demo_rollup(demo_master)
    statuses = set(result.committees["status"])
    assert {"正常", "滞后", "严重滞后"} <= statuses
    assert result.committees["overdue"].sum() > 0
    assert result.projects["overdue"].any() and not result.projects["overdue"].all()
    # Before any deadline has passed nothing is overdue, and fewer rows count.
    _v, early = demo_rollup(demo_master, date(2020, 10, 15))
    assert early.committees["overdue"].sum() == 0
    assert early.meta["rows_used"] < result.meta["rows_used"]


def test_demo_rows_with_errors_are_left_out_and_counted(tmp_path):
    rows = demo.demo_rows()
    ledger = rows[schema.LEDGER.name]
    broken = {5: ("quantity", "很多"), 40: ("committee_id", "C99"), 41: ("date", "某天")}
    for index, (key, value) in broken.items():
        ledger[index] = {**ledger[index], key: value}
    path = tmp_path / "broken.xlsx"
    build_workbook(path, rows)
    validation, result = demo_rollup(path)
    error_rows = {index + 2 for index in broken}
    assert error_rows <= validation.error_rows(schema.LEDGER.name)
    assert result.meta["rows_unverified"] == len(validation.error_rows(schema.LEDGER.name))
    for index in broken:  # the reference drops them by row number, whatever their values
        ledger[index] = {**ledger[index], "quantity": 0, "date": date(2020, 1, 1)}
    check_against_reference(result, demo_reference(rows, validation.error_rows(schema.LEDGER.name),
                                                   demo.DEMO_AS_OF))
    note = rollup_sheets(result)[0].note
    assert f"待核实 {result.meta['rows_unverified']} 条" in note


def test_rows_of_another_year_do_not_count_toward_this_years_targets(tmp_path):
    """Switching 年度 to 2021 (what staff do in January) counted all of 2020's rows toward 2021's
    targets: on 1 March every committee looked nearly done and nobody got a 催办通知."""
    rows = demo.demo_rows()
    rows[schema.SETTINGS.name] = demo.settings_rows({**demo.SETTINGS, "year": 2021})
    path = tmp_path / "year2.xlsx"
    build_workbook(path, rows)
    _validation, result = demo_rollup(path, date(2021, 3, 1))
    ledger = len(rows[schema.LEDGER.name])
    assert result.meta["rows_used"] == 0 and result.meta["rows_other_year"] == ledger
    assert (result.committee_projects["achieved"] == 0).all()
    assert f"{ledger} 条不在 2021 年度内未计入" in rollup_sheets(result)[0].note
    # One 2019 typo in a 2020 workbook: left out, the rest counted as before.
    rows = demo.demo_rows()
    rows[schema.LEDGER.name][3] = {**rows[schema.LEDGER.name][3], "date": date(2019, 6, 1)}
    path = tmp_path / "typo.xlsx"
    build_workbook(path, rows)
    _validation, typo = demo_rollup(path)
    assert typo.meta["rows_other_year"] == 1 and typo.meta["rows_used"] == ledger - 1


def test_cli_rollup_writes_the_output_sheets(master_copy, capsys):
    status = main(["rollup", str(master_copy), "--as-of", "2020-11-15", "--json"])
    assert status == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["meta"]["as_of"] == "2020-11-15"
    book = read_workbook(master_copy, [schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS,
                                       schema.UNIT_PROGRESS])
    committees = book[schema.COMMITTEE_PROGRESS.name]
    assert committees["committee_id"].tolist() == [c[0] for c in demo.COMMITTEES]
    assert committees["status"].tolist() == [r["status"] for r in printed["committees"]]
    assert committees["percent"].astype(float).tolist() == pytest.approx(
        [r["percent"] for r in printed["committees"]])
    units = book[schema.UNIT_PROGRESS.name]
    assert set(schema.CATEGORIES) <= set(units["unit"].dropna())
    # Input sheets are untouched: the ledger reads back as before.
    assert len(read_workbook(master_copy)[schema.LEDGER.name]) == len(demo.demo_rows()[schema.LEDGER.name])


def test_cli_rejects_a_bad_as_of_date(master_copy, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["rollup", str(master_copy), "--as-of", "某天"])
    assert exit_info.value.code == 2
    assert "无法识别日期" in capsys.readouterr().err


def test_cli_rollup_stages_when_the_master_is_open(master_copy, capsys):
    from .test_write_safety import excel_owner_file

    master_copy.with_name("~$" + master_copy.name).write_bytes(excel_owner_file("李敏"))
    before = master_copy.read_bytes()
    assert main(["rollup", str(master_copy), "--as-of", "2020-11-15"]) == 3
    out = capsys.readouterr().out
    assert "李敏" in out and "已另存为" in out
    assert master_copy.read_bytes() == before
    staged = list(master_copy.parent.glob(f"{master_copy.stem}-待合并-*{master_copy.suffix}"))
    assert len(staged) == 1
    committees = read_workbook(staged[0], [schema.COMMITTEE_PROGRESS])[schema.COMMITTEE_PROGRESS.name]
    assert len(committees) == len(demo.COMMITTEES)


def test_output_sheet_from_an_older_layout_gets_todays_header(master_copy):
    import openpyxl

    from macros.book.read import clean_header

    # An output sheet written by an earlier version: a column that no longer exists, an old banner.
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.PROJECT_PROGRESS.name]
    ws.delete_cols(1, ws.max_column)
    old = [*schema.PROJECT_PROGRESS.headers[:3], "旧的列", *schema.PROJECT_PROGRESS.headers[3:8]]
    for c, text in enumerate([*old, None, "旧的说明"], start=1):
        ws.cell(1, c, text)
    wb.save(master_copy)

    assert main(["rollup", str(master_copy), "--as-of", "2020-11-15"]) == 0
    header = [clean_header(c.value) for c in openpyxl.load_workbook(master_copy)[ws.title][1]]
    assert header[: len(schema.PROJECT_PROGRESS.headers)] == schema.PROJECT_PROGRESS.headers
    assert "旧的列" not in header and "旧的说明" not in header


def test_shared_targets_are_whole_units_that_add_up(demo_master):
    _validation, result = demo_rollup(demo_master)
    pairs = result.committee_projects
    projects = {p[0]: p[6] for p in demo.PROJECTS}
    for pid, group in pairs.groupby("project_id"):
        assert group["target"].sum() == pytest.approx(projects[pid]), pid
        shared = group.loc[group["target_source"] == "分摊", "target"]
        assert (shared == shared.round()).all(), f"{pid}: {shared.tolist()}"
        if len(shared):
            assert shared.max() - shared.min() <= 1, pid
