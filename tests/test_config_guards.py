"""Notices are not made from a workbook whose configuration would make every letter false (walk3
F10, F11, F12): a 年度 the date reported for is not in, an emptied 项目 sheet, an unreadable
发文序号; settings the notices print, left blank, are named by validate."""

from __future__ import annotations

from datetime import date

import openpyxl
import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.rollup import PROGRESS_SHEETS
from macros.validate import notice_blockers, validate

from .conftest import cli_json
from .test_recovery_adversary import set_setting

YEAR = schema.SETTINGS_BY_KEY["year"].item
NOTICES = schema.SETTINGS_BY_KEY["notices"].default


def problems_of(master, as_of: date):
    book = read_workbook(master)
    return validate(book.frames, book.settings, as_of)


@pytest.mark.parametrize("as_of, blocked", [
    (date(2019, 12, 31), True),   # before the year: nothing can have been done yet
    (date(2020, 11, 15), False),
    (date(2021, 3, 31), False),   # the year's final report, made in the next quarter
    (date(2021, 4, 1), True),     # a workbook a year out of date
    (date(2026, 11, 28), True),
])
def test_the_date_reported_for_must_lie_in_the_programme_year(master_copy, as_of, blocked):
    validation = problems_of(master_copy, as_of)
    found = {p.code: p for p in validation.problems if p.sheet == schema.SETTINGS.name}
    assert ("year_mismatch" in found) == blocked and bool(notice_blockers(validation)) == blocked
    if blocked:
        p = found["year_mismatch"]
        assert (p.column, p.key, p.level) == (schema.SETTINGS.column("value").header, YEAR, "错误")
        assert f"统计截止日期 {as_of.isoformat()} 不在试点年度 2020 年内" in p.message
        assert "--as-of 2020-12-31" in p.suggestion
    elif as_of.year == 2021:
        assert "已过试点年度 2020 年" in found["year_ended"].message


def test_a_wrong_year_sends_no_letter_and_says_why(master_copy, capsys):
    set_setting(master_copy, YEAR, 2021)  # one digit wrong while 2020 runs
    assert main(["report", str(master_copy), "--as-of", "2020-11-15"]) == 1
    out = capsys.readouterr().out
    assert "本次没有生成任何通知：统计截止日期 2020-11-15 不在试点年度 2021 年内" in out
    assert not (master_copy.parent / NOTICES).exists()
    # No folder named that was not made; the write said is the one made (no progress sheets).
    assert "输出文件夹" not in out and "通知：未生成" in out
    assert main(["notices", str(master_copy), "--as-of", "2020-11-15"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("通知未生成") and "已生成" not in out and "输出文件夹" not in out
    from python_calamine import CalamineWorkbook

    issues = CalamineWorkbook.from_path(str(master_copy)).get_sheet_by_name(schema.ISSUES.name).to_python()
    assert any("不在试点年度 2021 年内" in str(v) for row in issues for v in row)  # 校验结果 names it


PROGRESS = tuple(sheet.name for sheet in PROGRESS_SHEETS)


def progress_sheets(master) -> dict[str, list[list]]:
    """The progress sheets' cells as the file holds them (python-calamine: an independent reader)."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(master))
    return {name: book.get_sheet_by_name(name).to_python() for name in PROGRESS}


def issues_text(master) -> str:
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.ISSUES.name).to_python()
    return "\n".join(str(v) for row in rows for v in row)


@pytest.fixture
def reported_2020(master_copy):
    """The demo master after a report as of 2020-11-15 (its progress sheets hold 2020's standing);
    then 年度 is typed as 2018 (last year's master copied, the year not changed back, or a typo)."""
    assert main(["report", str(master_copy), "--as-of", "2020-11-15", "--out", str(master_copy.parent / "通知")]) == 0
    set_setting(master_copy, YEAR, 2018)
    sheets = progress_sheets(master_copy)
    assert all(len(rows) > 5 for rows in sheets.values())
    return master_copy, sheets


def test_a_wrong_year_leaves_the_progress_sheets_as_they_were_and_says_why(reported_2020, capsys):
    """As of 2020-11-15 with 年度 2018, ``report`` made no notice but rewrote the progress sheets with
    figures counted for 2018 (every committee 严重滞后, 0 rows counted), and said "汇总：…严重滞后 13"."""
    master, before = reported_2020
    capsys.readouterr()
    assert main(["report", str(master), "--as-of", "2020-11-15", "--out", str(master.parent / "通知")]) == 1
    out = capsys.readouterr().out
    assert progress_sheets(master) == before
    assert "进度表未更新：统计截止日期 2020-11-15 不在试点年度 2018 年内" in out
    assert "".join(f"“{name}”" for name in PROGRESS) + "保持上次的内容" in out
    assert "严重滞后" not in out and "汇总：" not in out
    assert "进度表因此不更新" in issues_text(master)  # 校验结果 is written, and says so
    code, data = cli_json("report", str(master), "--as-of", "2020-11-15", "--out", str(master.parent / "通知"))
    assert code == 1 and "不在试点年度 2018 年内" in data["rollup_blocked"] and data["notices"]["blocked"]
    assert data["statuses"] is None and data["rows_used"] is None  # no wrong-year figures given
    # ``rollup`` alone: nothing written either.
    assert main(["rollup", str(master), "--as-of", "2020-11-15"]) == 1
    assert "进度表未更新" in capsys.readouterr().out
    # The report's backup is labelled with what it wrote: 校验结果, not the progress sheets.
    code, listed = cli_json("restore", str(master), "--list")
    assert listed["backups"][0]["changed"].startswith("写入校验结果（") and "进度表" not in listed["backups"][0]["changed"]
    code, data = cli_json("rollup", str(master), "--as-of", "2020-11-15")
    assert code == 1 and data["blocked"] and data["committees"] is None and data["projects"] is None
    assert progress_sheets(master) == before
    # Back to 2020: the sheets are rewritten as before (openpyxl, saving 设置, kept 15 digits of a percent).
    set_setting(master, YEAR, 2020)
    assert main(["rollup", str(master), "--as-of", "2020-11-15"]) == 0
    assert rounded(progress_sheets(master)) == rounded(before)


def rounded(sheets: dict[str, list[list]]) -> dict[str, list[list]]:
    return {name: [[round(v, 9) if isinstance(v, float) else v for v in row] for row in rows]
            for name, rows in sheets.items()}


def test_consolidation_in_a_wrong_year_merges_and_leaves_the_progress_sheets(reported_2020):
    """The refresh after a merge is the report's: the ledger and 校验结果 are written, the progress
    sheets are not, and the summary says why."""
    from macros.consolidate import consolidate, summary_text
    from macros.forms import build_forms

    from .test_consolidate import fill_form, ledger_of, new_row
    from .test_real_forms import inbox_of

    master, before = reported_2020
    [blank] = build_forms(master, master.parent / "blank", ["C01"]).written
    fill_form(blank, inbox_of(master) / "C01-11月.xlsx", [new_row(activity="年度写错时交来的记录")])
    run = consolidate(master, as_of=date(2020, 11, 15))
    assert run.master_written and "年度写错时交来的记录" in set(ledger_of(master)["activity"])
    assert progress_sheets(master) == before
    assert "已刷新校验结果（与台账一次写入）。进度表未更新：统计截止日期 2020-11-15 不在试点年度 2018 年内" in run.refreshed
    assert "本次没有生成任何通知" in run.refreshed and run.refreshed in summary_text(run)
    assert "进度表因此不更新" in issues_text(master)


def test_an_emptied_project_sheet_sends_no_letter_blaming_the_committees(master_copy, capsys):
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.PROJECTS.name]
    ws.delete_rows(2, ws.max_row)  # 删除行 over the whole list
    wb.save(master_copy)
    assert main(["notices", str(master_copy), "--as-of", "2020-11-15"]) == 1  # refused, not "nothing to do"
    out = capsys.readouterr().out
    assert "本次没有生成任何通知：“项目”表中没有任何项目" in out
    assert not (master_copy.parent / NOTICES).exists()


@pytest.mark.parametrize("sheet", [schema.PROJECTS, schema.COMMITTEES])
def test_an_emptied_project_or_committee_sheet_returns_no_form_blaming_the_committee(master_copy, sheet, capsys):
    """Judged by an emptied 项目 (居委会), every row of every form names an unknown project (the file
    an unknown committee): consolidation would return them all with receipts telling each committee
    its rows are wrong. It reads none, leaves the inbox as it is, and says what to restore."""
    from macros.consolidate import LOG_NAME, folders
    from macros.forms import build_forms

    blank = master_copy.parent / "blank"
    build_forms(master_copy, blank, ["C01"])
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    form = where.inbox / "C01-11月.xlsx"
    form.write_bytes(next(blank.iterdir()).read_bytes())
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[sheet.name]
    ws.delete_rows(2, ws.max_row)  # 删除行 over the whole list
    wb.save(master_copy)
    before = master_copy.read_bytes()

    assert main(["consolidate", str(master_copy)]) == 2
    err = capsys.readouterr().err
    assert f"“{sheet.name}”表中没有任何{sheet.header_of(sheet.key[0])}" in err and "收件箱保持原样" in err, err
    assert "healthbook restore" in err
    assert [f.name for f in where.inbox.iterdir()] == [form.name]  # not read, not moved, no receipt
    assert not where.rejected.exists() and not where.receipts.exists()
    assert master_copy.read_bytes() == before
    log = (master_copy.parent / LOG_NAME).read_text(encoding="utf-8")
    assert f"！！错误：主工作簿 {master_copy.name} 的“{sheet.name}”表" in log


def test_an_unreadable_document_number_sends_no_letter_and_a_blank_one_is_named(master_copy, capsys):
    number = schema.SETTINGS_BY_KEY["doc_number"].item
    set_setting(master_copy, number, "第3号")
    validation = problems_of(master_copy, date(2020, 11, 15))
    [blocker] = notice_blockers(validation)
    assert number in blocker

    set_setting(master_copy, number, None)
    set_setting(master_copy, schema.SETTINGS_BY_KEY["issuer"].item, None)
    validation = problems_of(master_copy, date(2020, 11, 15))
    blank = {p.key: p for p in validation.problems if p.code == "blank_setting"}
    assert "从 1 号起编" in blank[number].message and "空的" in blank[schema.SETTINGS_BY_KEY["issuer"].item].message
    assert not notice_blockers(validation)  # said, not blocking: the office may mean to start at 1

    assert main(["validate", str(master_copy), "--as-of", "2020-11-15"]) == 0
    assert "设置“发文机关”未填写" in capsys.readouterr().out


def built(tmp_path, edit) -> object:
    from macros import demo
    from macros.book.build import build_workbook

    rows = demo.demo_rows()
    edit(rows)
    path = tmp_path / "edited.xlsx"
    build_workbook(path, rows)
    return path


def test_target_rows_adding_up_to_more_than_the_projects_target_are_named(tmp_path):
    """P06 lowered to 6000 while its 目标 rows still add up to 6500: the street was judged on one
    total, its committees on another, without a word (walk3 F14)."""
    def lower_p06(rows):
        p06 = next(i for i, p in enumerate(rows[schema.PROJECTS.name]) if p["project_id"] == "P06")
        rows[schema.PROJECTS.name][p06] = {**rows[schema.PROJECTS.name][p06], "target": 6000}

    validation = problems_of(built(tmp_path, lower_p06), date(2020, 11, 15))
    [p] = [p for p in validation.problems if p.code == "targets_exceed"]
    assert (p.sheet, p.key, p.column) == (schema.PROJECTS.name, "P06", schema.PROJECTS.header_of("target"))
    assert "目标合计 6500，大于目标值 6000" in p.message


def test_a_committee_added_where_the_targets_are_all_given_out_is_told_it_has_none(tmp_path):
    """A committee added to 居委会 got a target of 0 on P06 (its rows took all of 6500): its letter
    read "已完成12，完成率0.0%" and nothing said why (walk3 F1)."""
    def add_c14(rows):
        rows[schema.COMMITTEES.name].append({**rows[schema.COMMITTEES.name][0], "committee_id": "C14", "name": "新建居委会"})

    validation = problems_of(built(tmp_path, add_c14), date(2020, 11, 15))
    [p] = [p for p in validation.problems if p.code == "no_target_share"]
    assert (p.sheet, p.key) == (schema.COMMITTEES.name, "C14")
    assert p.message.startswith("在项目 P06 上没有目标") and "目标”表中为它各加一行" in p.suggestion
    assert not [p for p in problems_of(built(tmp_path / "demo", lambda rows: None), date(2020, 11, 15)).problems
                if p.code in ("no_target_share", "targets_exceed")]


def test_a_committee_without_a_share_is_told_a_zero_target_row_says_so(tmp_path):
    """A committee that really has no part in P06: the suggestion says a 目标 row with 目标值 0 is
    how to say so, and such a row does silence the warning."""
    committees, targets = schema.COMMITTEES.name, schema.TARGETS.name

    def add_c14(rows):
        rows[committees].append({**rows[committees][0], "committee_id": "C14", "name": "新建居委会"})

    [p] = [p for p in problems_of(built(tmp_path, add_c14), date(2020, 11, 15)).problems
           if p.code == "no_target_share"]
    assert f"如它确实不承担，也请各加一行，{schema.TARGETS.header_of('target')}填 0，本提醒即不再出现" in p.suggestion

    def add_c14_with_none(rows):
        add_c14(rows)
        rows[targets].append({"project_id": "P06", "committee_id": "C14", "target": 0})

    validation = problems_of(built(tmp_path / "zero", add_c14_with_none), date(2020, 11, 15))
    assert not [p for p in validation.problems if p.code in ("no_target_share", "targets_exceed")]


def test_a_templates_folder_that_is_not_there_is_said(master_copy, capsys):
    """The office's own red-head templates in a misspelt folder: the batch went out in the stock
    wording without a word (walk3 F17)."""
    set_setting(master_copy, schema.SETTINGS_BY_KEY["templates"].item, "本单位模版")
    assert main(["report", str(master_copy), "--as-of", "2020-11-15"]) == 0
    out = capsys.readouterr().out
    assert f"模板文件夹“{master_copy.parent / '本单位模版'}”不存在或无法访问" in out and "自带模板" in out
    assert list((master_copy.parent / NOTICES).glob("进度通报*.docx"))  # made all the same


def test_a_blank_programme_year_sends_no_letter(master_copy, capsys):
    """Without 年度 nothing says which year the letters count: the demo reported today counted
    "2232 天未填报" (review of this session)."""
    set_setting(master_copy, YEAR, None)
    assert main(["report", str(master_copy)]) in (0, 1)
    out = capsys.readouterr().out
    assert "本次没有生成任何通知：“年度”未填写" in out
    assert not (master_copy.parent / NOTICES).exists()


def test_blank_units_make_no_total(tmp_path):
    from macros.rollup import rollup

    def blank_units_no_targets(rows):
        for p in rows[schema.PROJECTS.name]:
            p["indicator_unit"] = None
        rows[schema.TARGETS.name] = []

    book = read_workbook(built(tmp_path, blank_units_no_targets))
    validation = validate(book.frames, book.settings, date(2020, 11, 15))
    committees = rollup(validation, book.settings, date(2020, 11, 15)).committees
    assert committees["target"].isna().all()  # 人次 + 场 left blank still do not add up

