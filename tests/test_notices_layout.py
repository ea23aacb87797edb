"""The printed notices as a person reads them: LibreOffice lays out the demo's report and poppler
reads the printed lines back. Titles and table cells break between words, never inside one
("……进展情 / 况的通报", "社区卫生服务中 / 心"); the bulletin's 【链接】 list stays on one page."""

from __future__ import annotations

import re

import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.render.titles import break_title, width

from .conftest import cli_json, convert_many_with_libreoffice
from .test_notices import layout_lines, layout_pages

AS_OF = demo.DEMO_AS_OF
LONG_MEETING = "上海市静安区石门二路街道2020年度健康街道试点建设工作第三次推进会暨年中总结表彰大会"
LONG_ARTICLE = "街道党工委中心组赴崇明竖河镇开展参观学习和结对帮扶活动"  # 27 characters; 24 fit a line
# Words a title line must never end or start inside of.
WHOLE = ["上海市首批健康街道试点", "石门二路街道", "静安区", "进展情况", "建设工作", "工作会议", "催办通知",
         "通知", "通报", "推进会", "表彰大会", "年度", "健康石二", "参观学习", "帮扶活动", "竖河镇"]


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """The demo report (plus a meeting with a very long name) printed to PDF: {kind or file: lines}."""
    folder = tmp_path_factory.mktemp("printed")
    rows = demo.demo_rows()
    rows[schema.MEETINGS.name].append({**rows[schema.MEETINGS.name][1], "meeting_id": "M09",
                                       "name": LONG_MEETING})
    rows[schema.ARTICLES.name][3]["title"] = LONG_ARTICLE
    rows[schema.MEETINGS.name][0]["date"] = rows[schema.MEETINGS.name][1]["date"]  # held meetings get no notice
    master = folder / "healthbook.xlsx"
    build_workbook(master, rows)
    out = folder / "通知"
    code, data = cli_json("report", str(master), "--out", str(out), "--as-of", AS_OF.isoformat())
    wanted = {n["docx"]: n for n in data["notices"]["notices"] if n["docx"]
              and (n["kind"] != "催办通知" or n["combined"])}
    pdfs = convert_many_with_libreoffice([out / name for name in wanted], "pdf", folder / "pdf")
    return {name: layout_lines(pdf) for name, pdf in zip(wanted, pdfs)}, dict(zip(wanted, pdfs))


def printed_lines_of(lines: list[str], title: str) -> list[str]:
    """The consecutive printed lines that together read ``title`` (spaces ignored)."""
    want = re.sub(r"\s+", "", title)
    cleaned = [re.sub(r"\s+", "", line) for line in lines]
    for i, line in enumerate(cleaned):
        if not line or not want.startswith(line):
            continue
        found, text = [], ""
        for nxt in cleaned[i:]:
            if not nxt:
                continue
            if not want.startswith(text + nxt):
                break
            found.append(nxt)
            text += nxt
            if text == want:
                return found
    raise AssertionError(f"“{title}” is not printed on consecutive lines")


def split_words(lines: list[str]) -> list[str]:
    """Words of WHOLE that a line break cuts in two."""
    text, breaks, at = "".join(lines), set(), 0
    for line in lines[:-1]:
        at += len(line)
        breaks.add(at)
    cut = []
    for word in WHOLE:
        for m in re.finditer(re.escape(word), text):
            if any(m.start() < b < m.end() for b in breaks):
                cut.append(word)
    return cut


def file_of(printed: tuple[dict, dict], has: str) -> list[str]:
    [lines] = [lines for name, lines in printed[0].items() if has in name]
    return lines


@pytest.mark.parametrize("has, title", [
    ("进度通报", f"关于{demo.SETTINGS['pilot_name']}建设工作进展情况的通报"),
    ("合并打印", f"关于加快推进{demo.SETTINGS['pilot_name']}建设工作的催办通知"),
    ("M01", f"关于召开{demo.MEETINGS[0]['name']}的通知"),
    ("M09", f"关于召开{LONG_MEETING}的通知"),
    ("工作简报", LONG_ARTICLE),
])
def test_long_titles_break_between_words(printed, has, title):
    lines = printed_lines_of(file_of(printed, has), title)
    assert len(lines) >= 2, lines  # each is longer than a line: the test is about where it breaks
    assert split_words(lines) == [], lines


def test_table_cells_break_between_words(printed):
    cells = [cell for line in file_of(printed, "进度通报") + file_of(printed, "合并打印")
             for cell in re.split(r"\s{2,}", line.strip()) if cell]
    lone = [c for c in cells if len(c) == 1 and "\u4e00" <= c <= "\u9fff"]
    assert lone == [], lone  # "心", "目": the end of 服务中心 or 项目 alone on a line
    assert not [c for c in cells if c.endswith(("服务中", "党建", "工程项"))], cells


def test_the_bulletins_link_list_prints_on_one_page(printed):
    [pdf] = [pdf for name, pdf in printed[1].items() if "工作简报" in name]
    pages = layout_pages(pdf)
    [page] = [p for p in pages if "【链接】" in p]
    last_units = demo.demo_rows()[schema.PROJECTS.name][-1]["units"]
    assert re.sub(r"\s+", "", last_units) in re.sub(r"\s+", "", page)
    assert pages[-1] == page  # its last lines had a page of their own


@pytest.mark.parametrize("title, per_line", [
    ("关于召开石门二路街道创建上海市首批健康街道试点工作会议的通知", 20),
    (f"关于召开{LONG_MEETING}的通知", 20),
    ("发展办、党建办、社区卫生服务中心", 7),
    ("Healthy Street 2020 年度 pilot 工作总结暨 A/B 两类项目验收会议", 20),
])
def test_break_title_keeps_every_character_and_fits_the_line(title, per_line):
    lines = break_title(title, per_line, ["石门二路街道", demo.SETTINGS["pilot_name"]])
    assert re.sub(r"\s", "", "".join(lines)) == re.sub(r"\s", "", title)
    assert all(width(line) <= per_line for line in lines), lines
    assert len(lines) >= 2 and split_words(lines) == []
