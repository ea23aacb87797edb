"""The one-click report over configuration typed the way 发展办 staff really type it.

A copy of the demo master gets the values found in real workbooks — targets as "30万" or 0 or
blank, 责任单位 joined by "/" or spaces, thresholds as "20%" or 15, a 开始时间 that Excel stored as
a time, a meeting without a date, a picture that is no picture or is named with Windows
backslashes — and the report must still give correct documents and name what to fix.
"""

from __future__ import annotations

import shutil
from datetime import datetime, time
from pathlib import Path

import openpyxl
import pytest
from docx import Document

from macros import demo, schema
from macros.book.read import read_workbook
from macros.render import context as ctx
from macros.render.notices import NoticeOptions, render_notices
from macros.report import analyse

from .conftest import cli_json, convert_with_libreoffice
from .test_notices import docx_text, layout_lines, layout_pages

AS_OF = demo.DEMO_AS_OF


def _settings_row(ws, item: str) -> int:
    return next(c.row for c in ws["A"] if c.value == item)


def edit_copy(demo_master: Path, folder: Path, edit) -> Path:
    """A copy of the demo master with its configuration sheets edited by ``edit(workbook)``
    (openpyxl is fine here: these are test inputs, not a master anyone keeps)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / demo_master.name
    shutil.copy2(demo_master, path)
    wb = openpyxl.load_workbook(path)
    edit(wb)
    wb.save(path)
    return path


def set_setting(wb, item: str, value) -> None:
    ws = wb[schema.SETTINGS.name]
    ws.cell(_settings_row(ws, item), 2).value = value


def messy(wb) -> None:
    projects = wb[schema.PROJECTS.name]
    projects["G2"] = "30万"                       # P01, a 人次 target typed the way it is said
    projects["G3"] = 800                          # P02 far ahead: 4,000+ done of 800
    projects["D3"] = "发展办/社区卫生服务中心"
    projects["G4"] = 0                            # P03
    projects["D4"] = "党政办 发展办"
    projects["G5"] = None                         # P04 has no target yet
    projects["H6"] = datetime(2019, 10, 31)       # P05: last year's date copied along
    set_setting(wb, "滞后阈值", "20%")
    set_setting(wb, "严重滞后阈值", "４０％")
    wb[schema.ARTICLES.name]["B2"] = "第6期"       # A01, the lead article
    meetings = wb[schema.MEETINGS.name]
    meetings["D3"] = 0.375                        # 9:00 as Excel stores a time typed into a text column
    meetings.append(["M03", "第三次推进会", datetime(2020, 12, 1), time(14, 30), "会议室", "主任",
                     "各居委会主任", "通报进度", "李敏", "021-62000000", None])
    meetings.append(["M04", "日期未定的会议", None, "9:30", "会议室", "主任", "各居委会主任", "待定",
                     "李敏", "021-62000000", None])
    meetings.append(["M05", "年终总结会", datetime(2020, 12, 20), "９：３０", None, "主任", "各居委会主任",
                     "1、通报全年进度\n2.部署验收；（3）交流经验", None, None, None])


@pytest.fixture(scope="module")
def messy_report(demo_master, tmp_path_factory):
    master = edit_copy(demo_master, tmp_path_factory.mktemp("messy"), messy)
    out = master.parent / "通知"
    code, data = cli_json("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    book = read_workbook(master)
    validation, rolled = analyse(book, AS_OF)
    return master, out, code, data, validation, rolled


def notice_file(data: dict, out: Path, kind: str, has: str, key: str = "docx") -> Path:
    [found] = [n[key] for n in data["notices"]["notices"] if n["kind"] == kind and has in n["title"]]
    return out / found


def test_meeting_times_stored_by_excel_read_as_clock_times(messy_report):
    master, out, code, data, validation, rolled = messy_report
    first = docx_text(notice_file(data, out, "会议通知", "健康街道试点建设推进会"))
    assert "2020年11月20日（星期五）9:00" in first and "0.375" not in first
    third = notice_file(data, out, "会议通知", "第三次推进会")
    assert "2020年12月1日（星期二）14:30\n" in docx_text(third) + "\n"
    assert "14:30:00" not in third.with_suffix(".html").read_text(encoding="utf-8")


def test_a_meeting_without_a_date_gets_a_message_not_a_notice(messy_report):
    master, out, code, data, validation, rolled = messy_report
    titles = [n["title"] for n in data["notices"]["notices"]]
    assert not any("日期未定" in t for t in titles)
    assert not list(out.glob("*M04*"))
    assert any("会议表第5行（M04）" in w and "未生成会议通知" in w for w in data["notices"]["warnings"])
    assert code == 1  # the blank 日期 is an error in 校验结果


def test_agenda_numbers_typed_by_staff_are_not_doubled_and_blanks_are_filled(messy_report):
    master, out, code, data, validation, rolled = messy_report
    text = docx_text(notice_file(data, out, "会议通知", "年终总结会"))
    assert "（一）通报全年进度\n（二）部署验收\n（三）交流经验" in text
    assert "2020年12月20日（星期日）9:30" in text  # typed with a Chinese IME
    assert "联系人：发展办 李敏，联系电话：021-62000000。" in text  # 设置's, not "联系人：，联系电话：。"
    assert any("会议表第6行（M05）的“地点”未填" in w for w in data["notices"]["warnings"])


def test_an_article_whose_issue_cannot_be_read_is_said_to_be_left_out(messy_report):
    master, out, code, data, validation, rolled = messy_report
    assert any(p.sheet == "简报稿件" and p.row == 2 and p.column == "期号" for p in validation.problems)
    assert "简报稿件表第2行（A01）的“期号”未填或无法识别，未编入简报。" in data["notices"]["warnings"]
    text = docx_text(notice_file(data, out, "工作简报", ""))
    assert "凝聚各方力量" not in text and "街道各居委会主任赴江宁路街道参观学习" in text


def test_next_steps_leave_out_a_project_without_a_target(messy_report):
    master, out, code, data, validation, rolled = messy_report
    text = docx_text(notice_file(data, out, "进度通报", ""))
    steps = text[text.index("五、下一步工作安排"):text.index("请各居委会、各责任单位对照目标任务")]
    assert "楼宇控烟项目" not in steps and "（）" not in steps and "目标幢" not in steps
    assert "楼宇白领健康干预项目：截止日期2020年12月15日，目标300,000人次" in steps


def test_thresholds_typed_as_percents_are_the_ones_used(messy_report):
    master, out, code, data, validation, rolled = messy_report
    assert (rolled.meta["lag_threshold"], rolled.meta["severe_lag_threshold"]) == (0.2, 0.4)
    assert not [p for p in validation.problems if p.sheet == schema.SETTINGS.name]


@pytest.mark.parametrize("lag, severe, read, codes", [
    (15, 30, (0.15, 0.30), ["normalised", "normalised"]),
    ("０．２", "0.35 ", (0.2, 0.35), []),
    (0.3, 0.2, (0.3, 0.2), ["threshold_order"]),
    ("12%", "100%", (0.12, 1.0), []),  # a percent sign says what it is: 100% is not 1 point
    (0.4, None, (0.4, 0.30), ["threshold_order"]),  # a blank threshold is its default, compared too
])
def test_thresholds_typed_as_points_or_out_of_order_are_named(demo_master, tmp_path, lag, severe, read, codes):
    def edit(wb):
        set_setting(wb, "滞后阈值", lag)
        set_setting(wb, "严重滞后阈值", severe)

    book = read_workbook(edit_copy(demo_master, tmp_path, edit))
    validation, rolled = analyse(book, AS_OF)
    assert (rolled.meta["lag_threshold"], rolled.meta["severe_lag_threshold"]) == pytest.approx(read)
    problems = [p for p in validation.problems if p.sheet == schema.SETTINGS.name]
    assert [p.code for p in problems] == codes
    assert all(p.column == "值" and p.row and p.level == "警告" for p in problems)
    if lag == 15:
        assert "按 15 个百分点（0.15）处理" in problems[0].message


def test_units_joined_by_slash_or_space_are_separate_units(messy_report):
    master, out, code, data, validation, rolled = messy_report
    units = dict(zip(rolled.units["unit"], rolled.units["project_ids"]))
    assert not [u for u in units if "/" in u or " " in u]
    assert "P02" in units["社区卫生服务中心"].split("、")
    assert "P03" in units["党政办"].split("、") and "P03" in units["发展办"].split("、")


def test_category_percent_caps_each_project_as_the_notice_does(messy_report):
    master, out, code, data, validation, rolled = messy_report
    percents = dict(zip(rolled.projects["project_id"], rolled.projects["percent"]))
    assert percents["P02"] > 5  # the over-achiever
    society = rolled.categories.set_index("category").loc["健康社会类"]
    assert society["average_percent"] == pytest.approx((percents["P01"] + 1.0) / 2)  # P03 has none
    notice = docx_text(notice_file(data, out, "进度通报", ""))
    shown = f"{society['average_percent'] * 100:.1f}%"
    assert society["average_percent"] < 0.6 and f"健康社会类\t3\t{shown}" in notice  # the sheet's figure


def test_a_zero_target_is_named(messy_report):
    master, out, code, data, validation, rolled = messy_report
    [zero] = [p for p in validation.problems if p.code == "zero_target"]
    assert (zero.sheet, zero.row, zero.column, zero.key, zero.level) == ("项目", 4, "目标值", "P03", "警告")


def test_a_deadline_outside_the_year_is_named(messy_report):
    master, out, code, data, validation, rolled = messy_report
    [late] = [p for p in validation.problems if p.sheet == "项目" and p.code == "outside_year"]
    assert (late.row, late.column, late.key, late.level) == (6, "截止日期", "P05", "警告")
    assert "2019-10-31 不在试点年度 2020 年内" in late.message


def test_a_six_digit_target_prints_on_one_line(messy_report, tmp_path):
    master, out, code, data, validation, rolled = messy_report
    pdf = convert_with_libreoffice(notice_file(data, out, "进度通报", ""), "pdf", tmp_path)
    row = next(line for line in layout_lines(pdf) if "2,169" in line or "2,1" in line)
    assert "300,000" in row, row


def test_pictures_that_are_no_image_or_named_the_windows_way(demo_master, tmp_path):
    from PIL import Image

    (tmp_path / "pics").mkdir()
    Image.new("RGB", (120, 80), (200, 30, 30)).save(tmp_path / "pics" / "会议现场.png")
    (tmp_path / "pics" / "坏图.jpg").write_text("这是一个改了扩展名的文档", encoding="utf-8")
    book = read_workbook(demo_master)
    data = ctx.NoticeInput(book.frames, book.settings, AS_OF, None, tmp_path)
    articles = data.frames[schema.ARTICLES.name]
    articles.loc[articles.index[0], "image"] = "pics\\会议现场.png"
    articles.loc[articles.index[1], "image"] = "pics/坏图.jpg"
    result = render_notices(data, tmp_path / "out", NoticeOptions(kinds=(ctx.BULLETIN,)))
    [notice] = result.notices
    assert len(Document(str(tmp_path / "out" / notice.docx)).inline_shapes) == 1
    assert (tmp_path / "out" / notice.html).read_text(encoding="utf-8").count("data:image/png;base64,") == 1
    [warning] = result.warnings
    assert "简报稿件表第3行（A02）" in warning and "坏图.jpg" in warning and "JPG 或 PNG" in warning


def test_a_street_of_many_committees_keeps_heading_chart_and_caption_on_one_page(demo_master, tmp_path):
    """45 committees: the chart (40 bars) used to be taller than the page, so it took a page of
    its own and left "四、各居委会进展" alone at the bottom of the page before."""
    def edit(wb):
        ws = wb[schema.COMMITTEES.name]
        for i in range(14, 46):
            ws.append([f"C{i}", f"新建 居委会{i}", "某某", "021-62000000", None, "否", None])

    book = read_workbook(edit_copy(demo_master, tmp_path, edit))
    validation, rolled = analyse(book, AS_OF)
    data = ctx.NoticeInput(validation.frames, book.settings, AS_OF, rolled, tmp_path)
    result = render_notices(data, tmp_path / "out", NoticeOptions(kinds=(ctx.PROGRESS,), formats=("docx",)))
    [notice] = result.notices
    docx = tmp_path / "out" / notice.docx
    [chart] = Document(str(docx)).inline_shapes
    assert chart.height.mm <= 185
    pdf = convert_with_libreoffice(docx, "pdf", tmp_path)
    [page] = [p for p in layout_pages(pdf) if "四、各居委会进展" in p]
    assert "图 1" in page or "图1" in page, page


def test_kind_given_twice_makes_both_kinds(demo_master, tmp_path):
    code, data = cli_json("notices", str(demo_master), "--out", str(tmp_path / "out"), "--as-of",
                          AS_OF.isoformat(), "--kind", "会议通知", "--kind", "工作简报")
    upcoming = sum(m["date"] >= AS_OF for m in demo.MEETINGS)  # a meeting already held gets none
    assert code == 0 and data["counts"] == {"会议通知": upcoming, "工作简报": 1}


def test_blank_settings_and_a_blank_committee_name(demo_master, tmp_path):
    """A committee without a name crashed the report (pandas NA has no truth value); settings
    left blank gave "关于建设工作进展情况的通报" and "联系人：，联系电话：。" without a word."""
    def edit(wb):
        for item in ("街道名称", "试点名称", "联系电话"):
            set_setting(wb, item, None)
        wb[schema.COMMITTEES.name]["B6"] = None  # C05

    master = edit_copy(demo_master, tmp_path, edit)
    out = tmp_path / "通知"
    code, data = cli_json("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    assert code == 1  # the blank 居委会名称 is an error in 校验结果
    assert "设置表中“街道名称”“试点名称”“联系电话”未填" in "\n".join(data["notices"]["warnings"])
    reminder = docx_text(notice_file(data, out, "催办通知", "C05"))
    assert "\nC05：\n" in reminder
    progress = docx_text(notice_file(data, out, "进度通报", ""))
    assert "、（完成率" not in progress and "C05（完成率" in progress


def test_a_committee_whose_every_row_is_wrong_is_not_told_it_never_filed(demo_master, tmp_path):
    def edit(wb):
        ledger = wb[schema.LEDGER.name]
        header = [c.value for c in ledger[1]]
        committee, project = header.index("居委会编号"), header.index("项目编号")
        for row in ledger.iter_rows(min_row=2):
            if row[committee].value == "C07":
                row[project].value = "P9"  # no such project: every C07 row is 待核实

    master = edit_copy(demo_master, tmp_path, edit)
    code, data = cli_json("report", str(master), "--out", str(tmp_path / "通知"), "--as-of", AS_OF.isoformat())
    for key in ("docx", "html"):
        path = notice_file(data, tmp_path / "通知", "催办通知", "张园", key)
        text = docx_text(path) if key == "docx" else path.read_text(encoding="utf-8")
        assert "尚未填报台账" not in text and "尚无填报记录" not in text
        assert "填报的27条台账有误，尚待核实" in text and "（另有27条有误，待核实）" in text


def test_committees_without_a_target_are_not_counted_as_on_track(demo_master, tmp_path):
    def edit(wb):
        for row in range(2, 9):
            wb[schema.PROJECTS.name].cell(row, 7).value = None  # no 目标值 anywhere yet
        wb.remove(wb[schema.TARGETS.name])

    master = edit_copy(demo_master, tmp_path, edit)
    code, data = cli_json("report", str(master), "--out", str(tmp_path / "通知"), "--as-of", AS_OF.isoformat())
    assert data["statuses"]["正常"] == 0
    text = docx_text(notice_file(data, tmp_path / "通知", "进度通报", ""))
    assert "0个居委会进度正常" in text and "13个居委会进度正常" not in text


def test_lagging_committees_are_numbered_one_when_none_is_severe(demo_master, tmp_path):
    master = edit_copy(demo_master, tmp_path, lambda wb: set_setting(wb, "严重滞后阈值", 0.9))
    code, data = cli_json("report", str(master), "--out", str(tmp_path / "通知"), "--as-of", AS_OF.isoformat())
    assert data["statuses"]["严重滞后"] == 0 and data["statuses"]["滞后"] > 0
    docx = notice_file(data, tmp_path / "通知", "进度通报", "")
    for text in (docx_text(docx), docx.with_suffix(".html").read_text(encoding="utf-8")):
        assert "（一）进度滞后的居委会" in text and "（二）" not in text
