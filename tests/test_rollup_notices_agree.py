"""The figures a reader sees in the progress sheets and in the notices are the same figures.

Real workbooks (the demo, and demo copies with a project far over its target, a category
without targets, no target at all, 责任单位 typed with "/" and spaces) are rolled up; the sheets
the writer gets (居委会进度, 项目进度, 单位进度 with its 类别 block) are compared, as Excel would
show them, with the HTML notices rendered from the same roll-up.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.render import fmt
from macros.render.context import reminder_contexts
from macros.render.notices import NoticeOptions, render_notices
from macros.report import analyse, notice_input
from macros.rollup import rollup_sheets, rollup_text
from macros.validate import validate

from .conftest import convert_with_libreoffice
from .test_notices import layout_lines

AS_OF = demo.DEMO_AS_OF
SERVICE = "健康服务类"


def over_and_untargeted(data: dict) -> None:
    """P02 far over its target (4,347 of 800); 健康服务类 (P06, P07) without any 目标值."""
    for p in data[schema.PROJECTS.name]:
        if p["project_id"] == "P02":
            p["target"] = 800
        if p["category"] == SERVICE:
            p["target"] = None


def no_targets(data: dict) -> None:
    """A new workbook: no project has a 目标值 yet and the 目标 sheet is empty."""
    for p in data[schema.PROJECTS.name]:
        p["target"] = None
    data[schema.TARGETS.name] = []


EDITS = {"demo": lambda data: None, "over 100% and a category without targets": over_and_untargeted,
         "no target at all": no_targets}


@pytest.fixture(scope="module", params=list(EDITS))
def case(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("agree")
    data = demo.demo_rows()
    EDITS[request.param](data)
    path = folder / "master.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    validation, rolled = analyse(book, AS_OF)
    out = folder / "通知"
    render_notices(notice_input(book, validation, rolled, AS_OF), out,
                   NoticeOptions(kinds=("progress", "reminder"), formats=("html",)))
    return request.param, rolled, out


def shown_in_sheet(value) -> str:
    """A 完成率 cell as Excel shows it with ``schema.PERCENT_CAPPED_FORMAT`` (blank when None)."""
    assert schema.PERCENT_CAPPED_FORMAT == '[>1]"100.0%";0.0%'
    if value is None:
        return ""
    return "100.0%" if value > 1 else f"{value * 100:.1f}%"


def sheet_rows(rolled, sheet: schema.Sheet) -> list[dict]:
    [write] = [w for w in rollup_sheets(rolled) if w.sheet is sheet]
    return write.rows


def category_block(rolled) -> list[dict]:
    rows = sheet_rows(rolled, schema.UNIT_PROGRESS)
    header = rows.index(dict(zip(schema.UNIT_PROGRESS.keys, schema.CATEGORY_BLOCK.headers)))
    return rows[header + 1:]


def progress_html(out: Path) -> str:
    """The progress notice's text and tables (without the chart: its bars are notices.py's)."""
    [page] = out.glob("进度通报*.html")
    return re.sub(r"<svg.*?</svg>", "", html.unescape(page.read_text(encoding="utf-8")), flags=re.S)


def cell_text(page: str) -> str:
    return re.sub(r"\s+", "", page)


def test_category_figures_of_the_sheet_are_the_notices(case):
    name, rolled, out = case
    page = cell_text(progress_html(out))
    block = category_block(rolled)
    assert [r["unit"] for r in block] == [c for c in schema.CATEGORIES]
    for row in block:
        percent = row["average_percent"]
        notice = fmt.pct(percent) if percent is not None else fmt.NO_TARGET
        assert shown_in_sheet(percent) in ("", notice)
        cells = f"<td>{row['unit']}</td><td>{row['projects']}</td><td>{notice}</td><td>{row['overdue']}</td>"
        assert cells in page, (name, cells)
    if name == "over 100% and a category without targets":
        service = next(r for r in block if r["unit"] == SERVICE)
        assert service["average_percent"] is None and service["status"] is None
        society = next(r for r in block if r["unit"] == "健康社会类")
        assert society["average_percent"] < 1  # P02 at 543 % counts as 100 %


def test_project_figures_of_the_sheet_are_the_notices(case):
    name, rolled, out = case
    page = cell_text(progress_html(out))
    for row in sheet_rows(rolled, schema.PROJECT_PROGRESS):
        shown = shown_in_sheet(row["percent"]) or fmt.NO_TARGET
        assert f"<td>{row['name']}</td><td>{row['units']}</td>" in page
        assert re.search(rf"<td>{row['name']}</td>(<td>[^<]*</td>){{3}}<td>{re.escape(shown)}</td>", page), (name, row)
    if name == "over 100% and a category without targets":
        p02 = rolled.projects.set_index("project_id").loc["P02", "percent"]
        assert p02 > 5 and f"{p02 * 100:.1f}%" not in page  # the sheet shows 100.0%, so does the notice


def test_the_overall_percent_is_the_rollups_and_not_zero_without_targets(case):
    name, rolled, out = case
    page = progress_html(out)
    overall = rolled.meta["average_percent"]
    percents = rolled.projects["percent"].dropna().clip(upper=1.0)
    if name == "no target at all":
        assert overall is None and rolled.projects["percent"].isna().all()
        assert "个试点项目尚未设定年度目标，" in page and "平均完成年度目标" not in page
        assert "0.0%" not in page
        assert "<svg" not in (out / next(out.glob("进度通报*.html")).name).read_text(encoding="utf-8")  # no empty chart
        assert "项目平均完成率 暂无目标" in rollup_text(rolled)
    else:
        assert overall == pytest.approx(percents.mean())
        assert f"平均完成年度目标的{fmt.pct(overall)}" in page


@pytest.mark.parametrize("case", ["no target at all"], indirect=True)
def test_without_targets_every_sheet_leaves_percent_and_status_blank(case):
    name, rolled, out = case
    for sheet, percent in ((schema.COMMITTEE_PROGRESS, "percent"), (schema.PROJECT_PROGRESS, "percent"),
                           (schema.UNIT_PROGRESS, "average_percent")):
        block_header = set(schema.CATEGORY_BLOCK.headers)
        rows = [r for r in sheet_rows(rolled, sheet) if r and set(r.values()) != block_header]
        assert rows and all(r[percent] is None and r["status"] is None for r in rows), sheet.name
    # Every committee is reminded (nothing reported is overdue, or silent): none reads "0.0%".
    reminders = list(out.glob("催办通知*.html"))
    assert reminders
    for page in reminders:
        text = html.unescape(page.read_text(encoding="utf-8"))
        assert "各项目尚未设定目标。" in text and "目标合计" not in text and "0.0%" not in text
        # An overdue project without a target: nothing "剩余" to name, and no "尚差 0" (= done).
        assert "剩余的" not in text and "<td>0</td><td>2020" not in cell_text(text)


@pytest.mark.parametrize("case", ["no target at all"], indirect=True)
def test_without_targets_no_committee_is_said_to_be_on_track(case, tmp_path):
    """"0个居委会进度正常" and then "各居委会进度均正常" contradicted each other; a committee
    without targets has no status, and the Word notice says the same as the web page."""
    name, rolled, out = case
    committees = len(rolled.committees)
    page = cell_text(progress_html(out))
    assert f"0个严重滞后，{committees}个尚未设定目标；" in page
    assert "各居委会尚未设定目标，暂无进度状态。" in page and "均正常" not in page
    book_dir = out.parent
    book = read_workbook(book_dir / "master.xlsx")
    validation, again = analyse(book, AS_OF)
    render_notices(notice_input(book, validation, again, AS_OF), tmp_path,
                   NoticeOptions(kinds=("progress", "bulletin"), formats=("docx",)))
    from docx import Document

    words = {f.name: "".join(p.text for p in Document(str(f)).paragraphs) for f in tmp_path.glob("*.docx")}
    [progress] = [t for n, t in words.items() if n.startswith("进度通报")]
    [bulletin] = [t for n, t in words.items() if n.startswith("工作简报")]
    assert "各居委会尚未设定目标，暂无进度状态。" in progress and "均正常" not in progress
    assert f"{committees}个尚未设定目标" in progress and f"{committees}个尚未设定目标。" in bulletin
    # Printed, each project's 完成率 cell holds 暂无目标 on one line (it wrapped as "暂无目/标").
    [docx] = tmp_path.glob("进度通报*.docx")
    lines = layout_lines(convert_with_libreoffice(docx, "pdf", tmp_path / "pdf"))
    dated = [line for line in lines if re.search(r"20\d\d 年 \d+ 月 \d+ 日\s*$", line) and len(line.split()) > 6]
    assert len(dated) == len(rolled.projects) and all(fmt.NO_TARGET in line for line in dated), dated


def test_units_are_split_alike_by_the_validator_the_sheet_and_the_notices(tmp_path):
    data = demo.demo_rows()
    typed = {"P01": "发展办 / 社区卫生服务中心", "P02": "社区卫生服务中心  党建办", "P03": "Health Centre、发展办",
             "P04": "发展办、、服务办"}
    for p in data[schema.PROJECTS.name]:
        p["units"] = typed.get(p["project_id"], p["units"])
    path = tmp_path / "units.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    validation = validate(book.frames, book.settings, AS_OF)
    _, rolled = analyse(book, AS_OF)
    read = {"P01": ["发展办", "社区卫生服务中心"], "P02": ["社区卫生服务中心", "党建办"],
            "P03": ["Health Centre", "发展办"], "P04": ["发展办", "服务办"]}
    # 单位进度: each unit lists the projects whose 责任单位 name it.
    by_unit = dict(zip(rolled.units["unit"], rolled.units["project_ids"].str.split("、")))
    for project, units in read.items():
        assert all(project in by_unit[u] for u in units), project
    assert not [u for u in by_unit if " " in u and u != "Health Centre"]
    # 项目进度 and the notice show the units read, joined by 、.
    shown = dict(zip(rolled.projects["project_id"], rolled.projects["units"]))
    assert {p: shown[p] for p in read} == {p: "、".join(u) for p, u in read.items()}
    # The validator names the same units, on the rows typed otherwise; 、、 stays an error.
    problems = {(p.row, p.code): p for p in validation.problems
                if p.sheet == schema.PROJECTS.name and p.column == "责任单位"}
    row = {p["project_id"]: i + 2 for i, p in enumerate(data[schema.PROJECTS.name])}
    assert "“发展办、社区卫生服务中心”" in problems[(row["P01"], "normalised")].message
    assert "2 个单位“社区卫生服务中心、党建办”" in problems[(row["P02"], "normalised")].message
    assert (row["P03"], "normalised") not in problems  # already 、-separated; the space is in a name
    assert set(problems) == {(row["P01"], "normalised"), (row["P02"], "normalised"), (row["P04"], "empty_unit")}
    data_in = notice_input(book, validation, rolled, AS_OF)
    render_notices(data_in, tmp_path / "通知", NoticeOptions(kinds=("progress",), formats=("html",)))
    page = cell_text(progress_html(tmp_path / "通知"))
    for units in read.values():
        assert f"<td>{'、'.join(units).replace(' ', '')}</td>" in page


def test_a_reminder_asks_only_for_what_the_rollup_counts_as_not_done(tmp_path):
    """A pair whose latest entry says 已完成 is done for the roll-up (never overdue) though short of
    its target; the 催办通知 must not list it among the work still to finish."""
    data = demo.demo_rows()
    path = tmp_path / "before.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    validation, rolled = analyse(book, AS_OF)
    reminded = [c["committee"]["committee_id"]
                for c in reminder_contexts(notice_input(book, validation, rolled, AS_OF))]
    pairs = rolled.committee_projects
    ahead = pairs[pairs["committee_id"].isin(reminded) & ~pairs["done"] & ~pairs["overdue"]
                  & (pairs["deadline"] > str(AS_OF))]
    committee, project = ahead.iloc[0][["committee_id", "project_id"]]
    number = max(int(r["record_id"][-4:]) for r in data[schema.LEDGER.name] if r["committee_id"] == committee)
    data[schema.LEDGER.name].append({
        "record_id": f"{committee}-{number + 1:04d}", "date": AS_OF, "committee_id": committee,
        "project_id": project, "activity": "本项目工作已全部完成", "quantity": 1, "status": "已完成",
    })
    path = tmp_path / "after.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    validation, rolled = analyse(book, AS_OF)
    pair = rolled.committee_projects.set_index(["committee_id", "project_id"]).loc[(committee, project)]
    assert pair["done"] and pair["achieved"] < pair["target"]
    [notice] = [c for c in reminder_contexts(notice_input(book, validation, rolled, AS_OF))
                if c["committee"]["committee_id"] == committee]
    assert project not in [i["project_id"] for i in notice["upcoming_items"]]
    assert project not in [i["project_id"] for i in notice["overdue_items"]]


def test_a_committee_without_targets_gets_no_bar_but_a_label(tmp_path):
    """Next to committees with a percent, one without targets is drawn without a bar (a "0.0%"
    bar would read as nothing done) and labelled 暂无目标."""
    from macros.render.charts import progress_chart

    chart = progress_chart(["一居", "二居"], [0.5, None], ["正常", "None"], formats=("svg",))
    assert ">50.0%<" in chart.svg.replace(" ", "") or "50.0%" in chart.svg
    assert fmt.NO_TARGET in chart.svg and "0.0%" not in chart.svg.replace("50.0%", "")


@pytest.mark.parametrize("typed, units", [
    ("社区卫生服务中心 (CHC)", ["社区卫生服务中心 (CHC)"]),
    ("社区卫生服务中心 ( 静安 )", ["社区卫生服务中心 ( 静安 )"]),
    ("社区卫生服务中心（CHC） 党建办", ["社区卫生服务中心（CHC）", "党建办"]),
    ("卫生服务中心 【分中心】 党建办", ["卫生服务中心 【分中心】", "党建办"]),
    ("Health Centre 党建办", ["Health Centre", "党建办"]),
    ("社区卫生服务中心  党建办 / 发展办", ["社区卫生服务中心", "党建办", "发展办"]),
])
def test_a_bracket_typed_after_a_space_stays_with_its_unit(typed, units):
    """Spaces separate units, but "(CHC)" or "(" alone is not a unit of its own."""
    from macros.normalise import split_units

    assert split_units(typed) == units
