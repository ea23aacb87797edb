"""进度状态 judged against each project's own 截止日期, on the demo workbook through the real
entry point: the statuses, the progress sheets as written, and the notices' words (Word, HTML and
the page LibreOffice prints). The demo's P03 and P05 end on 2020-10-31, the others later."""

from __future__ import annotations

import re
import shutil
from datetime import date

import openpyxl
import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.render import fmt
from macros.report import analyse
from macros.rollup import COMMITTEE_PERCENT_RULE

from .conftest import cli_json, convert_with_libreoffice
from .test_notices import docx_text, html_text, layout_pages
from .test_rollup import due_by, light

AFTER = demo.DEMO_AS_OF          # 2020-11-15: two weeks past P03's and P05's deadline
BEFORE = date(2020, 10, 15)      # no deadline has passed
BEHIND = ("滞后", "严重滞后")
PAST = {p[0] for p in demo.PROJECTS if p[7] < AFTER}


@pytest.fixture(scope="module", params=[AFTER, BEFORE], ids=["after", "before"])
def reported(request, demo_master, tmp_path_factory):
    """``healthbook report`` on a demo copy as of a date: (master, out folder, notices, roll-up)."""
    folder = tmp_path_factory.mktemp("deadline")
    master = folder / demo_master.name
    shutil.copy2(demo_master, master)
    out = folder / "通知"
    code, data = cli_json("report", str(master), "--out", str(out), "--as-of", request.param.isoformat())
    assert code in (0, 1) and data["written"], data
    _validation, rolled = analyse(read_workbook(master), request.param)
    return request.param, master, out, data["notices"]["notices"], rolled


def late_projects(rolled) -> list[dict]:
    """The roll-up's overdue projects as the notice should name them: earliest deadline first."""
    late = rolled.projects[rolled.projects["overdue"]].sort_values(["deadline", "project_id"])
    return late.to_dict("records")


def test_demo_statuses_follow_each_projects_deadline(reported):
    as_of, _master, _out, _notices, rolled = reported
    deadlines = {p[0]: p[7] for p in demo.PROJECTS}
    for p in rolled.projects.itertuples():
        assert p.expected == pytest.approx(due_by(as_of, deadlines[p.project_id])), p.project_id
        assert p.status == light(p.percent, p.expected, p.overdue), p.project_id
    assert set(rolled.projects.loc[rolled.projects["overdue"], "project_id"]) == (PAST if as_of == AFTER else set())
    # Nothing with overdue work is green: not a project, a committee, a unit or a category.
    for table in (rolled.projects, rolled.committees, rolled.units, rolled.categories):
        assert table.loc[table["overdue"].astype(int) > 0, "status"].isin(BEHIND).all()
    if as_of == AFTER:
        # The walkthrough's contradictions: P05 at 75.8 % two weeks late, C03 with 2 overdue items.
        projects = rolled.projects.set_index("project_id")
        assert projects.loc["P05", "percent"] == pytest.approx(197 / 260)
        assert projects.loc["P05", "expected"] == 1.0 and projects.loc["P05", "status"] == "滞后"
        assert projects.loc["P03", "status"] in BEHIND
        c03 = rolled.committees.set_index("committee_id").loc["C03"]
        assert c03["overdue"] == 2 and c03["status"] == "滞后"
        # The calendar year (87.4 % gone) would have called both 正常.
        assert light(projects.loc["P05", "percent"], rolled.meta["expected"], False) == "正常"


def test_after_the_year_everything_is_due(demo_master):
    _validation, rolled = analyse(read_workbook(demo_master), date(2021, 1, 5))
    assert (rolled.projects["expected"] == 1.0).all() and (rolled.committees["expected"] == 1.0).all()
    unfinished = rolled.projects["percent"] < 1
    assert rolled.projects.loc[unfinished, "overdue"].all()
    assert rolled.projects.loc[unfinished, "status"].isin(BEHIND).all()


def test_an_unreadable_deadline_runs_to_the_years_end(tmp_path):
    rows = demo.demo_rows()
    p05 = next(p for p in rows[schema.PROJECTS.name] if p["project_id"] == "P05")
    p05["deadline"] = "十月底"
    path = tmp_path / "master.xlsx"
    build_workbook(path, rows)
    validation, rolled = analyse(read_workbook(path), AFTER)
    assert any(p.sheet == schema.PROJECTS.name and p.column == "截止日期" for p in validation.problems)
    p05 = rolled.projects.set_index("project_id").loc["P05"]
    assert p05["expected"] == pytest.approx(rolled.meta["expected"]) and not p05["overdue"]


def test_the_sheets_as_written_agree(reported):
    as_of, master, _out, _notices, rolled = reported
    sheets = read_workbook(master, [schema.PROJECT_PROGRESS, schema.COMMITTEE_PROGRESS])
    projects = sheets[schema.PROJECT_PROGRESS.name].set_index("project_id")
    late = projects[projects["overdue"] == "是"]
    assert set(late.index) == (PAST if as_of == AFTER else set())
    assert late["status"].isin(BEHIND).all()
    assert projects["status"].tolist() == rolled.projects["status"].tolist()
    committees = sheets[schema.COMMITTEE_PROGRESS.name]
    assert committees["status"].tolist() == rolled.committees["status"].tolist()
    assert committees.loc[committees["overdue"].astype(int) > 0, "status"].isin(BEHIND).all()
    # The banner says how 进度状态 is judged, with the year's share for projects without a deadline.
    ws = openpyxl.load_workbook(master, read_only=True)[schema.PROJECT_PROGRESS.name]
    banner = next(v for v in next(ws.iter_rows(max_row=1, values_only=True)) if v and "截止日期计算" in str(v))
    assert f"本年度已过 {rolled.meta['expected']:.1%}" in banner and "至少为滞后" in banner


def progress_texts(out, notices) -> list[str]:
    [notice] = [n for n in notices if n["kind"] == "进度通报"]
    return [docx_text(out / notice["docx"]), html_text(out / notice["html"])]


def test_the_progress_notice_names_the_overdue_projects(reported):
    as_of, _master, out, notices, rolled = reported
    late = late_projects(rolled)
    assert len(late) == (2 if as_of == AFTER else 0)
    for text in progress_texts(out, notices):
        named = "、".join(f"{p['name']}（由{p['units']}负责）" for p in late)
        if late:  # 一、总体进展: the count, then which and who leads them
            assert f"{len(late)}个项目已过截止日期仍未完成：{named}；" in text
        else:
            assert "0个项目已过截止日期仍未完成；" in text
        # 三、分项目进展: exactly the overdue rows are marked.
        marked = {p["name"] for p in rolled.projects.to_dict("records")
                  if re.search(re.escape(fmt.cn_date(p["deadline"].date())) + r"\s*已逾期", text)}
        assert marked == {p["name"] for p in late}
        assert text.count("已逾期") == len(late)
        # 五、下一步工作安排: the overdue ones first, with what is missing and how many committees.
        plan = text[text.index("五、下一步工作安排"):]
        for i, p in enumerate(late, 1):
            assert (f"{i}. {p['name']}（{p['units']}）：截止日期{fmt.cn_date(p['deadline'].date())}已过，"
                    f"目标{fmt.num(p['target'])}{p['indicator_unit']}，已完成{fmt.num(p['achieved'])}"
                    f"{p['indicator_unit']}（{fmt.pct(p['percent'])}）") in plan
            assert f"{p['overdue_committees']}个居委会尚未完成" in plan
        assert f"{len(late) + 1}. " in plan  # the projects still ahead follow on


def test_reminders_state_the_status_and_what_was_expected(reported):
    as_of, _master, out, notices, rolled = reported
    committees = rolled.committees.set_index("committee_name")
    reminders = [n for n in notices if n["kind"] == "催办通知" and not n["combined"]]
    assert reminders
    for n in reminders:
        c = committees.loc[n["title"].removeprefix("催办通知：")]
        for text in (docx_text(out / n["docx"]), html_text(out / n["html"])):
            assert (f"完成率{fmt.pct(c['percent'])}（{COMMITTEE_PERCENT_RULE}），按各项目截止日期，"
                    f"截至{fmt.cn_date(as_of)}应完成{fmt.pct(c['expected'])}，进度状态：{c['status']}。") in text
            if c["overdue"]:
                assert f"有{c['overdue']}项工作已过截止日期仍未完成" in text and "进度状态：正常" not in text
            if c["status"] in BEHIND:
                assert f"进度{c['status']}（完成率{fmt.pct(c['percent'])}，应完成{fmt.pct(c['expected'])}）" in text


@pytest.mark.parametrize("reported", [AFTER], indirect=True, ids=["after"])
def test_the_printed_notice_names_them_where_the_count_is(reported, tmp_path):
    _as_of, _master, out, notices, rolled = reported
    [notice] = [n for n in notices if n["kind"] == "进度通报"]
    pdf = convert_with_libreoffice(out / notice["docx"], "pdf", tmp_path)
    pages = ["".join(page.split()) for page in layout_pages(pdf)]
    late = late_projects(rolled)
    [overview] = [page for page in pages if "一、总体进展" in page]
    section = overview[overview.index("一、总体进展"):]
    for p in late:
        assert f"{p['name']}（由{p['units']}负责）" in section
    # Each overdue row's 截止日期 cell prints the mark under its date; no other row has one.
    assert sum(page.count("已逾期") for page in pages) == len(late)
    [plan] = [page for page in pages if "五、下一步工作安排" in page]
    plan = plan[plan.index("五、下一步工作安排"):]
    assert [plan.index(f"{i}.{p['name']}") for i, p in enumerate(late, 1)] == sorted(
        plan.index(f"{i}.{p['name']}") for i, p in enumerate(late, 1))
