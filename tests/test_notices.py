"""Notices: rendered from the demo and read back (python-docx, HTML), escaping, template errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import date
from pathlib import Path

import pytest
from docx import Document

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.render import context as ctx
from macros.render import fmt
from macros.render.env import TemplateProblem, templates_dir
from macros.render.notices import NoticeOptions, render_notices

from .conftest import ROOT, SEED, convert_with_libreoffice, libreoffice
from .conftest import cli_json as run_cli
from .test_bulletin import bulletin_projects

AS_OF = demo.DEMO_AS_OF
UPCOMING_MEETINGS = sum(m["date"] >= AS_OF for m in demo.MEETINGS)  # a meeting already held gets none


def docx_text(path: Path) -> str:
    """All paragraph and table text of a .docx, one paragraph a line (the line breaks that set
    titles and table cells between words are layout, not text: left out)."""
    doc = Document(str(path))
    lines = [p.text.replace("\n", "") for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            lines.append("\t".join(cell.text.replace("\n", "") for cell in row.cells))
    return "\n".join(lines)


def html_text(path: Path) -> str:
    """Visible text of an HTML notice (tags dropped, entities kept as written)."""
    return re.sub(r"<[^>]+>", "\n", path.read_text(encoding="utf-8"))


def config_input(book_path: Path, **changes) -> ctx.NoticeInput:
    """Notice input from the workbook as read (meetings and the bulletin need no roll-up)."""
    book = read_workbook(book_path)
    return ctx.NoticeInput(book.frames, book.settings, AS_OF, None, book_path.parent)


@pytest.fixture(scope="module")
def config_notices(demo_master, tmp_path_factory):
    out = tmp_path_factory.mktemp("notices")
    result = render_notices(config_input(demo_master), out,
                            NoticeOptions(kinds=(ctx.MEETING, ctx.BULLETIN)))
    return out, result


def test_meeting_notices_carry_the_meeting_rows(config_notices, demo_master, tmp_path):
    out, result = config_notices
    # The meeting already held (M01, 22 June) gets a notice only when asked for by its 编号.
    held = render_notices(config_input(demo_master), tmp_path, NoticeOptions(kinds=(ctx.MEETING,), meeting="M01"))
    meetings = [(tmp_path, n) for n in held.notices] + [(out, n) for n in result.notices if n.kind == ctx.MEETING]
    assert len(meetings) == len(demo.MEETINGS)
    for (folder, notice), meeting in zip(meetings, demo.MEETINGS):
        assert meeting["meeting_id"] in notice.docx and fmt.cn_date(meeting["date"]) != ""
        for text in (docx_text(folder / notice.docx), html_text(folder / notice.html)):
            assert f"关于召开{meeting['name']}的通知" in text
            assert fmt.cn_date(meeting["date"]) + "（" + fmt.cn_weekday(meeting["date"]) + "）" in text
            for key in ("place", "chair", "attendees", "contact", "phone"):
                assert meeting[key] in text
            for item in meeting["agenda"].split("；"):
                assert item in text
    doc = Document(str(out / meetings[1][1].docx))
    # 发文字号 with 六角括号, no 第, no zero padding; the 通报 takes 发文序号, the 催办通知 the next,
    # meetings still to come follow in turn (M02 is the first: M01 was held already).
    number = demo.SETTINGS["doc_number"] + 2
    assert doc.paragraphs[1].text == f"石二街道〔{AS_OF.year}〕{number}号"
    assert doc.paragraphs[0].text == demo.MEETINGS[1]["issuer"]
    headings = [p.text for p in doc.paragraphs if re.match(r"^[一二三四五六七]、", p.text)]
    assert headings == ["一、会议时间", "二、会议地点", "三、主持人", "四、参会人员", "五、会议议程", "六、有关要求"]


def test_a_meeting_row_with_blank_sections_leaves_them_out_and_says_so(demo_master, tmp_path):
    """A 会议 row with only its 编号, 名称 and 日期 printed 二、会议地点 / 三、主持人 / 四、参会人员 /
    五、会议议程 with nothing under any of them, and only the 地点 was named in a warning."""
    rows = demo.demo_rows()
    rows[schema.MEETINGS.name] = [{"meeting_id": "M03", "name": "居委会主任例会", "date": date(2020, 11, 25),
                                   "chair": "王主任"}]
    master = tmp_path / "m.xlsx"
    build_workbook(master, rows)
    done = render_notices(config_input(master), tmp_path / "out", NoticeOptions(kinds=(ctx.MEETING,)))
    [notice] = done.notices
    for text in (docx_text(tmp_path / "out" / notice.docx), html_text(tmp_path / "out" / notice.html)):
        headings = re.findall(r"^[一二三四五六七]、\S+", text, re.M)
        assert headings == ["一、会议时间", "二、主持人", "三、有关要求"], headings
        assert "王主任" in text and "会议地点" not in text
    [said] = [w for w in done.warnings if "M03" in w]
    assert "“地点”“参会人员”“议程”未填" in said and "略去" in said


def test_bulletin_articles_in_order_with_attribution(config_notices):
    out, result = config_notices
    [notice] = [n for n in result.notices if n.kind == ctx.BULLETIN]
    assert f"第{demo.ARTICLE_ISSUE}期" in notice.docx
    for text in (docx_text(out / notice.docx), html_text(out / notice.html)):
        positions = [text.index(a["title"]) for a in demo.ARTICLES]
        assert positions == sorted(positions)
        for article in demo.ARTICLES:
            assert f"（{article['source_unit']}）" in text
            first_paragraph = article["body"].split("\n")[0]
            assert first_paragraph in text
        # The demo ships no 图片说明 to leave out: a caption typed without its picture is the next
        # test; with pictures beside it, tests/test_notice_pictures.py (caption under its picture).
        assert demo.SETTINGS["bulletin_name"] in text


def test_a_caption_typed_without_a_picture_is_not_printed_and_validate_names_it(tmp_path):
    """The bulletin prints a 图片说明 only under its picture; typed in alone it is left out, and
    validate says so (else the caption vanished without a word)."""
    rows = demo.demo_rows()
    articles = rows[schema.ARTICLES.name]
    caption = demo.ARTICLES[0]["caption"]  # the seed's, typed in as someone adding the photo would
    assert caption and not articles[0]["caption"] and not articles[0]["image"]
    articles[0] = {**articles[0], "caption": caption}
    master = tmp_path / "m.xlsx"
    build_workbook(master, rows)
    done = render_notices(config_input(master), tmp_path / "out", NoticeOptions(kinds=(ctx.BULLETIN,)))
    [notice] = done.notices
    for text in (docx_text(tmp_path / "out" / notice.docx), html_text(tmp_path / "out" / notice.html)):
        assert articles[0]["title"] in text and caption not in text
    _code, out = run_cli("validate", str(master), "--as-of", AS_OF.isoformat())
    [issue] = [i for i in out["issues"] if i["code"] == "caption_without_picture"]
    assert (issue["key"], issue["column"]) == (articles[0]["article_id"], schema.ARTICLES.header_of("caption"))
    assert f"“{caption}”" in issue["message"]


def link_list(text: str) -> list[tuple[str, str, str]]:
    """The 【链接】 list of a rendered bulletin, parsed like the seed's."""
    text = text[text.index("【链接】"):]
    text = re.sub(r"^\s*■\s*", "# ■ ", text, flags=re.MULTILINE)
    return bulletin_projects(text + "\n（end）")


def test_bulletin_link_section_equals_the_seed_list(config_notices):
    if not SEED.exists():
        pytest.skip(f"seed bulletin not beside the checkout: {SEED}")
    expected = bulletin_projects(SEED.read_text(encoding="utf-8"))
    out, result = config_notices
    [notice] = [n for n in result.notices if n.kind == ctx.BULLETIN]
    assert link_list(docx_text(out / notice.docx)) == expected
    assert link_list(html_text(out / notice.html)) == expected
    seed_title = "街道创建上海市首批健康街道试点建设工作项目"
    assert seed_title in docx_text(out / notice.docx)


def test_index_links_every_notice(config_notices):
    out, result = config_notices
    index = (out / "index.html").read_text(encoding="utf-8")
    for notice in result.notices:
        for name in (notice.docx, notice.html):
            assert (out / name).is_file()
            assert re.search(re.escape(fmt.safe_name(Path(name).stem)[:10]), index)
    assert len(re.findall(r'href="', index)) == 2 * len(result.notices)


def test_markup_characters_are_escaped_in_word_and_html(demo_master, tmp_path):
    data = config_input(demo_master)
    nasty = 'A&B <会议> "健康"'
    meetings = data.frames[schema.MEETINGS.name]
    meetings.loc[meetings.index[0], "name"] = nasty
    meetings.loc[meetings.index[0], "place"] = "<script>alert(1)</script>"
    articles = data.frames[schema.ARTICLES.name]
    articles.loc[articles.index[0], "title"] = nasty
    result = render_notices(data, tmp_path, NoticeOptions(kinds=(ctx.MEETING, ctx.BULLETIN), meeting="M01"))
    meeting = result.notices[0]
    bulletin = next(n for n in result.notices if n.kind == ctx.BULLETIN)
    # Word: the document opens and the text is exactly what was typed (not truncated at '&').
    assert f"关于召开{nasty}的通知" in docx_text(tmp_path / meeting.docx)
    assert "<script>alert(1)</script>" in docx_text(tmp_path / meeting.docx)
    assert nasty in docx_text(tmp_path / bulletin.docx)
    page = (tmp_path / meeting.html).read_text(encoding="utf-8")
    assert "A&amp;B &lt;会议&gt; &#34;健康&#34;" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    # File names: no Windows-forbidden characters.
    assert not re.search(r'[\\/:*?"<>|]', meeting.docx)


@pytest.mark.parametrize("parts, expected", [
    (("会议通知", "M01", 'a/b\\c:d*e?f"g<h>i|j', "2020-06-22"), "会议通知_M01_a_b_c_d_e_f_g_h_i_j_2020-06-22"),
    (("..隐藏", "CON"), "隐藏_CON"),
    (("CON",), "_CON"),
    (("  ", None, float("nan")), "未命名"),
    (("Ｍ０２", "健康 \t 推进会"), "M02_健康 推进会"),
])
def test_safe_names(parts, expected):
    assert fmt.safe_name(*parts) == expected
    assert fmt.safe_name(*parts) == fmt.safe_name(*parts)


def test_chinese_formats():
    assert fmt.cn_date(date(2020, 6, 22)) == "2020年6月22日"
    assert fmt.doc_number("石二街道", 2020, 3) == "石二街道〔2020〕3号"
    assert [fmt.cn_numeral(n) for n in (1, 10, 12, 20, 23)] == ["一", "十", "十二", "二十", "二十三"]
    assert fmt.pct(1.25) == "125.0%" and fmt.num(5000.0) == "5,000" and fmt.num(float("nan")) == ""


# ---- broken templates: Chinese errors naming the template and the tag ----------------------------

def broken_word_template(folder: Path, name: str, text: str) -> Path:
    """A copy of a shipped Word template with one more paragraph holding ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = Document(str(templates_dir() / name))
    doc.add_paragraph(text)
    doc.save(str(folder / name))
    return folder


@pytest.mark.parametrize("text, reason", [
    ("{{ meeting.nmae }}", "meeting.nmae"),
    ("{{ no_such_thing }}", "no_such_thing"),
    ("{% for x in meeting.agenda_items %}{{ x }}", "没有配对"),
    ("｛｛ meeting.name ｝｝", "全角"),
])
def test_broken_word_template_gives_a_chinese_error(demo_master, tmp_path, text, reason):
    folder = broken_word_template(tmp_path / "mine", "meeting.docx", text)
    out = tmp_path / "out"
    with pytest.raises(TemplateProblem) as err:
        render_notices(config_input(demo_master), out,
                       NoticeOptions(kinds=(ctx.MEETING,), templates=folder))
    message = str(err.value)
    assert "模板“meeting.docx”有误" in message and reason in message
    assert not list(out.glob("*.docx")), "no broken document is left behind"


@pytest.mark.parametrize("text, reason", [
    ("{{ meeting.nmae }}", "meeting.nmae"),
    ("{{ unknown_var }}", "unknown_var"),
    ("{% if meeting.name %}", "没有配对"),
    ("{％ endif ％}", "全角"),
])
def test_broken_html_template_gives_a_chinese_error(demo_master, tmp_path, text, reason):
    folder = tmp_path / "mine"
    folder.mkdir()
    source = (templates_dir() / "meeting.html").read_text(encoding="utf-8")
    (folder / "meeting.html").write_text(source.replace("{% endblock %}", text + "{% endblock %}"),
                                         encoding="utf-8")
    with pytest.raises(TemplateProblem) as err:
        render_notices(config_input(demo_master), tmp_path / "out",
                       NoticeOptions(kinds=(ctx.MEETING,), formats=("html",), templates=folder))
    assert "模板“meeting.html”有误" in str(err.value) and reason in str(err.value)


def test_override_folder_is_searched_first(demo_master, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    source = (templates_dir() / "meeting.html").read_text(encoding="utf-8")
    (folder / "meeting.html").write_text(source.replace("有关要求", "本单位改过的要求"), encoding="utf-8")
    result = render_notices(config_input(demo_master), tmp_path / "out",
                            NoticeOptions(kinds=(ctx.MEETING,), formats=("html",), templates=folder))
    assert "本单位改过的要求" in (tmp_path / "out" / result.notices[0].html).read_text(encoding="utf-8")


# ---- documentation and packaging that cannot drift ----------------------------------------------

def test_templates_readme_lists_every_variable():
    readme = (templates_dir() / "README.md").read_text(encoding="utf-8")
    for kind, names in ctx.VARIABLES.items():
        assert f"`{kind}`" in readme
        for name in names:
            assert f"`{name}`" in readme, f"templates/README.md 未列出 {kind} 的变量 {name}"


def test_word_templates_are_reproducible(tmp_path):
    """The committed .docx templates are what scripts/build_templates.py makes (same document XML)."""
    import runpy
    import zipfile

    build = runpy.run_path(str(ROOT / "scripts" / "build_templates.py"))["build"]
    for path in build(tmp_path):
        with zipfile.ZipFile(path) as new, zipfile.ZipFile(templates_dir() / path.name) as old:
            for part in ("word/document.xml", "word/styles.xml"):
                assert new.read(part) == old.read(part), f"{path.name} {part}: 请运行 scripts/build_templates.py"


def test_build_templates_help_is_chinese_and_writes_nothing(tmp_path):
    """``--help`` once made a folder called --help; a stray second argument is refused, not ignored."""
    script = [sys.executable, str(ROOT / "scripts" / "build_templates.py")]
    done = subprocess.run([*script, "--help"], cwd=tmp_path, capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 0 and "输出文件夹" in done.stdout and "templates/" in done.stdout, done.stderr
    done = subprocess.run([*script, "a", "b"], cwd=tmp_path, capture_output=True, text=True, encoding="utf-8")
    assert done.returncode == 2 and "错误" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_package_ships_with_the_templates():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "macros").rglob("__init__.py")}
    assert found <= packages, f"pyproject.toml 未列出包：{found - packages}"
    assert config["package-dir"]["macros.templates"] == "templates"


def test_word_layout_follows_gbt_9704():
    doc = Document(str(templates_dir() / "progress.docx"))
    section = doc.sections[0]
    mm = 36000  # EMU per mm
    assert round(section.page_width / mm) == 210 and round(section.page_height / mm) == 297
    assert round(section.top_margin / mm) == 37 and round(section.left_margin / mm) == 28
    assert round((section.page_width - section.left_margin - section.right_margin) / mm) == 156
    assert round((section.page_height - section.top_margin - section.bottom_margin) / mm) == 225
    xml = section._sectPr.xml
    assert 'w:linePitch="579"' in xml  # 22 lines in 225 mm
    styles = doc.styles.element.xml
    assert 'w:eastAsia="仿宋"' in styles and 'w:eastAsia="黑体"' in styles and 'w:eastAsia="楷体"' in styles
    assert doc.styles["发文机关标志"].font.color.rgb == (0xFF, 0, 0)
    assert doc.styles["公文标题"].font.size.pt == 22 and doc.styles["公文正文"].font.size.pt == 16
    assert doc.settings.odd_and_even_pages_header_footer
    assert "PAGE" in section.footer._element.xml and "PAGE" in section.even_page_footer._element.xml
    assert section.footer.paragraphs[0].text.startswith("— ")


def test_libreoffice_converts_every_word_notice(config_notices, tmp_path):
    out, result = config_notices
    for notice in result.notices:
        pdf = convert_with_libreoffice(out / notice.docx, "pdf", tmp_path)
        assert pdf.stat().st_size > 5000
    shutil.rmtree(tmp_path / "lo-profile", ignore_errors=True)


# ---- the one-click report over the demo: 进度通报 and 催办通知 from the roll-up ----------------------

@pytest.fixture(scope="module")
def demo_report(demo_master, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    master = folder / demo_master.name
    shutil.copy2(demo_master, master)
    out = folder / "通知"
    code, data = run_cli("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    from macros.report import analyse

    book = read_workbook(master)
    validation, rolled = analyse(book, AS_OF)
    return master, out, code, data, rolled


def reminded(rolled, silence: int = 30) -> dict[str, list[str]]:
    """committee name → names of its overdue projects, for every committee the rules pick
    (behind, overdue, or silent longer than 设置 未填报提醒天数 — the demo keeps the default 30)."""
    assert int(schema.SETTINGS_BY_KEY["silence_days"].default) == silence
    pairs = rolled.committee_projects
    names = dict(zip(rolled.projects["project_id"], rolled.projects["name"]))
    picked = {}
    for c in rolled.committees.itertuples():
        overdue = [names[p] for p in pairs.loc[(pairs["committee_id"] == c.committee_id) & pairs["overdue"],
                                              "project_id"]]
        silent = c.days_since_report != c.days_since_report or c.days_since_report > silence
        if c.status in ("滞后", "严重滞后") or overdue or silent:
            picked[c.committee_name] = overdue
    return picked


def test_report_writes_the_sheets_and_every_notice(demo_report):
    master, out, code, data, rolled = demo_report
    assert code in (0, 1) and data["written"], data
    counts = data["notices"]["counts"]
    expected = reminded(rolled)
    assert expected, "the demo has committees behind schedule"
    assert counts == {"进度通报": 1, "催办通知": len(expected), "会议通知": UPCOMING_MEETINGS, "工作简报": 1}
    written = read_workbook(master, [schema.COMMITTEE_PROGRESS])[schema.COMMITTEE_PROGRESS.name]
    assert sorted(written["committee_name"]) == sorted(rolled.committees["committee_name"])
    assert (out / "index.html").is_file()


def test_report_lists_every_notice_in_the_workbook_with_links(demo_report):
    import openpyxl

    master, out, _code, data, _rolled = demo_report
    ws = openpyxl.load_workbook(master)[schema.NOTICES.name]
    docx_col = schema.NOTICES.keys.index("docx") + 1
    listed = [ws.cell(r, docx_col).value for r in range(2, ws.max_row + 1)]
    files = sorted(p.name for p in out.glob("*.docx"))
    assert sorted(v for v in listed if v) == files
    for r in range(2, ws.max_row + 1):
        link = ws.cell(r, docx_col).hyperlink
        assert link is not None and (master.parent / link.target).resolve() == (out / listed[r - 2]).resolve()


def test_each_reminder_is_addressed_and_lists_exactly_its_overdue_items(demo_report):
    master, out, code, data, rolled = demo_report
    expected = reminded(rolled)
    notices = [n for n in data["notices"]["notices"] if n["kind"] == "催办通知" and not n["combined"]]
    assert sorted(n["title"].removeprefix("催办通知：") for n in notices) == sorted(expected)
    all_projects = set(rolled.projects["name"])
    for n in notices:
        name = n["title"].removeprefix("催办通知：")
        doc = Document(str(out / n["docx"]))
        assert doc.paragraphs[3].text == f"{name}："
        listed = [row.cells[0].text for t in doc.tables for row in t.rows[1:]]
        assert listed == expected[name] or (not expected[name] and not listed)
        assert set(listed) <= all_projects
        page = (out / n["html"]).read_text(encoding="utf-8")
        assert f"{name}：" in page
        for project in expected[name]:
            assert project in page


def test_combined_reminders_restart_page_numbers(demo_report):
    master, out, code, data, rolled = demo_report
    [combined] = [n for n in data["notices"]["notices"] if n["combined"]]
    doc = Document(str(out / combined["docx"]))
    assert len(doc.sections) == len(reminded(rolled))
    for section in doc.sections:
        assert 'w:start="1"' in section._sectPr.xml
    text = docx_text(out / combined["docx"])
    for name in reminded(rolled):
        assert f"\n{name}：\n" in text


def test_progress_bulletin_names_numbers_and_chart(demo_report):
    master, out, code, data, rolled = demo_report
    [notice] = [n for n in data["notices"]["notices"] if n["kind"] == "进度通报"]
    doc = Document(str(out / notice["docx"]))
    text = docx_text(out / notice["docx"])
    assert doc.paragraphs[0].text == demo.SETTINGS["issuer"]
    assert doc.paragraphs[1].text == f"石二街道〔{AS_OF.year}〕{demo.SETTINGS['doc_number']}号"
    assert len(doc.inline_shapes) == 1  # the per-committee chart
    for c in rolled.committees.itertuples():
        if c.status in ("滞后", "严重滞后"):
            assert f"{c.committee_name}（完成率{fmt.pct(c.percent)}）" in text
    for p in rolled.projects.itertuples():
        assert f"{p.name}\t" in text and fmt.pct(p.percent) in text
    page = (out / notice["html"]).read_text(encoding="utf-8")
    assert "<svg" in page and "石二街道〔" in page


def test_the_run_says_which_doc_numbers_it_printed_and_what_comes_next(demo_report):
    """发文序号 is never written back (设置 is the office's): every run printed 〔2020〕3号 again and
    nothing said so. The summary names the numbers printed and the 序号 the next batch needs."""
    master, out, code, data, rolled = demo_report
    base = int(demo.SETTINGS["doc_number"])
    printed = [n["doc_number"] for n in data["notices"]["notices"] if n["doc_number"]]
    meetings = UPCOMING_MEETINGS  # numbered in turn: a meeting already held takes no 文号
    assert sorted(set(printed), key=lambda d: (len(d), d)) == [f"石二街道〔{AS_OF.year}〕{base + i}号" for i in range(2 + meetings)]
    for n in data["notices"]["notices"]:
        if n["docx"] and n["doc_number"]:
            assert n["doc_number"] in docx_text(out / n["docx"]), n["title"]
    [said] = [w for w in data["notices"]["warnings"] if "发文字号" in w]
    assert f"{printed[0]}至石二街道〔{AS_OF.year}〕{base + 1 + meetings}号" in said
    assert f"改为 {base + 2 + meetings}" in said


# A table row as ``pdftotext -layout`` prints its first line: …numbers, then the 截止日期 cell.
# A number may carry its 指标单位 (the 催办通知's 尚差 2场).
NUMBERS_THEN_DATE = re.compile(r"[\d,]+(?: ?[^\s\d]+)?\s{2,}[\d,.]+%?(?: ?[^\s\d]+)?\s+(\d{4}\s*年.*)$")  # 完成率 is narrow: one space


def test_libreoffice_prints_the_rollup_notices_tables_whole(demo_report, tmp_path):
    """Each 截止日期 fits its cell, and no row is split across two pages (a split row printed
    "…项目" and "日" alone under the next page's repeated header)."""
    master, out, code, data, rolled = demo_report
    for n in data["notices"]["notices"]:
        if n["kind"] in ("进度通报",) or "合并打印" in n["docx"]:
            pdf = convert_with_libreoffice(out / n["docx"], "pdf", tmp_path)
            assert pdf.stat().st_size > 10000
            rows = [row for table in Document(str(out / n["docx"])).tables for row in table.rows[1:]
                    if table.rows[0].cells[-1].text == "截止日期"]
            dates = ["".join(m.group(1).split()) for line in layout_lines(pdf)
                     if (m := NUMBERS_THEN_DATE.search(line.rstrip()))]
            assert len(dates) == len(rows) > 0, n["docx"]
            assert all(re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", d) for d in dates), (n["docx"], dates)
    for template in templates_dir().glob("*.docx"):
        for table in Document(str(template)).tables:
            assert all(row._tr.find(f"{W}trPr/{W}cantSplit") is not None for row in table.rows), template.name


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def layout_text(pdf: Path) -> str:
    """The PDF's text as poppler lays it out (pages end in a form feed)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("CI 环境应已安装 poppler-utils（见 .ci/run）")
        pytest.skip("pdftotext 未安装")
    return subprocess.run([tool, "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def layout_lines(pdf: Path) -> list[str]:
    """The PDF's text, one printed line each (page boundaries are lost: ``splitlines`` takes the
    form feed for a line end; use ``layout_pages`` where the page matters)."""
    return layout_text(pdf).splitlines()


def layout_pages(pdf: Path) -> list[str]:
    """The PDF's text, one string per printed page."""
    return [page for page in layout_text(pdf).split("\f") if page.strip()]


def test_notices_command_makes_one_meeting_notice_with_pdf(demo_master, tmp_path):
    libreoffice()
    code, data = run_cli("notices", str(demo_master), "--out", str(tmp_path), "--kind", "会议通知",
                         "--meeting", "M02", "--as-of", AS_OF.isoformat(), "--pdf")
    assert code == 0, data
    [notice] = data["notices"]
    assert notice["title"] == f"会议通知：{demo.MEETINGS[1]['name']}"
    for name in (notice["docx"], notice["html"], notice["pdf"]):
        assert (tmp_path / name).is_file()
    assert (tmp_path / notice["pdf"]).read_bytes().startswith(b"%PDF")


def test_unknown_kind_is_a_usage_error(demo_master, tmp_path, capsys):
    from macros.cli import main

    assert main(["notices", str(demo_master), "--out", str(tmp_path), "--kind", "通告"]) == 2
    assert "不认识的通知种类“通告”" in capsys.readouterr().err


def test_report_on_an_open_workbook_still_renders_and_stages(master_copy, tmp_path):
    from .test_write_safety import excel_owner_file

    master_copy.with_name("~$" + master_copy.name).write_bytes(excel_owner_file("李敏"))
    before = master_copy.read_bytes()
    code, data = run_cli("report", str(master_copy), "--out", str(tmp_path / "通知"),
                         "--as-of", AS_OF.isoformat())
    assert code == 3 and not data["written"] and "李敏" in data["busy"]
    assert master_copy.read_bytes() == before
    assert Path(data["staged"]).is_file()
    assert data["notices"]["counts"]["进度通报"] == 1
    assert (tmp_path / "通知" / "index.html").is_file()


def test_bulletin_pictures_beside_the_workbook(demo_master, tmp_path):
    from PIL import Image

    Image.new("RGB", (120, 80), (200, 30, 30)).save(tmp_path / "会议现场.png")
    data = config_input(demo_master)
    data.base_dir = tmp_path
    articles = data.frames[schema.ARTICLES.name]
    articles.loc[articles.index[0], "image"] = "会议现场.png"
    articles.loc[articles.index[1], "image"] = "没有这张.png"
    result = render_notices(data, tmp_path / "out", NoticeOptions(kinds=(ctx.BULLETIN,)))
    [notice] = result.notices
    assert len(Document(str(tmp_path / "out" / notice.docx)).inline_shapes) == 1
    page = (tmp_path / "out" / notice.html).read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 1
    assert any("没有这张.png" in w for w in result.warnings)


def test_notices_command_names_its_index_in_full_from_a_relative_out(demo_master, tmp_path, monkeypatch, capsys):
    from macros.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["notices", str(demo_master), "--out", "通知2", "--kind", "会议通知", "--meeting", "M02",
                 "--as-of", AS_OF.isoformat()]) == 0
    said = capsys.readouterr().out
    assert f"目录：{tmp_path / '通知2' / 'index.html'}" in said  # openable from anywhere, as report says it
