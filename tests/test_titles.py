"""Title and cell line-breaking (``break_title`` / the ``cn_wrap`` filter) on what clerks really type:
a paragraph pasted as a title, a long project name in a narrow cell, Alt+Enter inside a name, a long
責任单位 list; and titles whose runs Word split after staff edited the template."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path

import pytest
from docx import Document

from macros import demo, schema
from macros.book.build import build_workbook
from macros.normalise import split_units
from macros.render import context as ctx
from macros.render import titles
from macros.render.env import TemplateProblem, docx_environment, templates_dir
from macros.render.notices import NoticeOptions, render_notices
from macros.render.titles import break_title, width

from .conftest import ROOT
from .test_notices import config_input

PARAGRAPH = ("6月22日，石门二路街道召开创建上海市首批健康街道试点工作会议，街道党工委书记、办事处主任出席会议"
             "并讲话，各居委会书记主任、各职能办负责人及社区卫生服务中心代表参加了会议")
WHOLE = ["石门二路街道", "上海市", "健康街道", "工作会议", "党工委", "居委会", "服务中心"]


@contextmanager
def finishes_within(seconds: int):
    """Fail (not hang the suite) when the body runs past ``seconds``: a generous bound, not a timing."""
    def stop(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def cut_words(lines: list[str], words: list[str]) -> list[str]:
    """The words a line break cuts in two."""
    text, breaks, at = "".join(lines), set(), 0
    for line in lines[:-1]:
        at += len(line)
        breaks.add(at)
    return [w for w in words for m in re.finditer(re.escape(w), text)
            if any(m.start() < b < m.end() for b in breaks)]


def same_text(lines: list[str], text: str) -> bool:
    return re.sub(r"\s", "", "".join(lines)) == re.sub(r"\s", "", text)


# ---- 1. long text must not freeze notices/report ---------------------------------------------------

def test_a_paragraph_pasted_as_a_title_is_broken_between_words_without_hanging():
    title = (PARAGRAPH * 2)[:200]
    with finishes_within(60):  # the search over every combination of breaks took minutes
        lines = break_title(title, 20, ["石门二路街道"])
    assert same_text(lines, title)
    assert 2 <= len(lines) <= titles.MAX_LINES
    assert all(width(line) <= 20 for line in lines), lines
    assert cut_words(lines, WHOLE) == [], lines


def test_text_longer_than_any_title_is_left_as_typed_for_word_to_wrap():
    title = PARAGRAPH * 4  # ~ 340 characters: more lines than a title may have
    with finishes_within(60):
        assert break_title(title, 20) == [title]


def test_long_project_names_in_a_narrow_cell_finish():
    name = (PARAGRAPH * 2)[:100]
    with finishes_within(60):  # 5 s per cell for 60 characters, minutes for 100
        assert break_title(name, 7) == [name]  # 15 lines of 7: Word wraps it as typed
        lines = break_title(name[:60], 7)
    assert same_text(lines, name[:60]) and all(width(line) <= 7 for line in lines), lines


def brute_force(text: str, points: list[int], costs: dict[int, float], lines: int, per_line: float):
    """The cost model spelled out: every combination of cuts (the earliest of equally good ones)."""
    best = None
    for chosen in combinations(points[1:-1], lines - 1):
        bounds = [0, *chosen, len(text)]
        widths = [width(text[a:b].strip()) for a, b in zip(bounds, bounds[1:])]
        if max(widths) > per_line:
            continue
        shape = (max(widths) - min(widths)) / 2
        shape += sum(1.5 for upper, lower in zip(widths, widths[1:]) if lower > upper + 0.5)
        cost = sum(costs[c] for c in chosen) + shape
        if best is None or cost < best[0]:
            best = (cost, list(chosen))
    return best


def test_the_fast_search_finds_what_trying_every_combination_finds():
    source = (PARAGRAPH + "Healthy Street 2020年度 pilot 工作总结暨A/B两类项目验收会议（静安）发展办、党建办、"
              "社区卫生服务中心")
    rng = random.Random(7)
    checked = 0
    for _ in range(150):
        start, length = rng.randrange(len(source)), rng.randrange(6, 30)
        text = " ".join((source[start:] + source)[:length].split())
        per_line = rng.choice([4, 5, 7, 10, 12, 20])
        costs = titles._costs(text, rng.choice([[], ["石门二路街道", "社区卫生服务中心"]]))
        points = [0, *sorted(costs), len(text)]
        for lines in range(2, 5):
            assert titles._best_split(text, points, costs, lines, per_line) == \
                brute_force(text, points, costs, lines, per_line), (text, per_line, lines)
            checked += 1
    assert checked == 450


# ---- 3. Alt+Enter in a cell ------------------------------------------------------------------------

@pytest.mark.parametrize("typed, printed", [
    ("健康街道试点\n建设推进会", ["健康街道试点建设推进会"]),  # the cell's line break, not the title's
    ("健康街道试点 \r\n 建设推进会", ["健康街道试点建设推进会"]),
    ("Healthy\nStreet 推进会", ["Healthy Street 推进会"]),  # Latin words stay apart
    ("2020\n年度推进会", ["2020 年度推进会"]),
    ("凝聚各方力量 共同推进", ["凝聚各方力量 共同推进"]),  # a typed space between a headline's phrases stays
])
def test_a_line_break_typed_in_a_cell_is_not_a_space_between_chinese_characters(typed, printed):
    assert break_title(typed, 20) == printed


def test_a_typed_line_break_in_a_long_name_leaves_the_breaking_to_the_title():
    typed = "上海市静安区石门二路街道2020年度健康街道试点\n建设工作第三次推进会暨年中总结表彰大会"
    lines = break_title(f"关于召开{typed}的通知", 20, ["石门二路街道"])
    assert same_text(lines, f"关于召开{typed}的通知") and not any(" " in line for line in lines), lines


# ---- 4. jieba's English warning --------------------------------------------------------------------

def test_no_english_pkg_resources_warning_reaches_the_clerk(tmp_path):
    # setuptools 67–80 warn on `import pkg_resources` (jieba imports it): the same module, as small as it gets.
    (tmp_path / "pkg_resources.py").write_text(
        "import importlib, os, warnings\n"
        "warnings.warn('pkg_resources is deprecated as an API. See https://setuptools.pypa.io/', "
        "UserWarning, stacklevel=2)\n"
        "def resource_stream(package, name):\n"
        "    folder = os.path.dirname(importlib.import_module(package).__file__)\n"
        "    return open(os.path.join(folder, name), 'rb')\n", encoding="utf-8")
    code = ("from macros.render.titles import break_title\n"
            "print('|'.join(break_title('关于召开健康街道试点建设推进会暨健康石二创建动员大会的通知', 20)))\n")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().count("|") == 1  # broken in two, so jieba was used
    assert "pkg_resources" not in done.stderr and "Warning" not in done.stderr, done.stderr


# ---- 5. 责任单位 lists in a narrow cell ------------------------------------------------------------

UNITS = "发展办、党建办、服务办、平安办、管理办、自治办、社区卫生服务中心、"


def test_a_long_units_list_breaks_between_units():
    lines = break_title(UNITS, 7, split_units(UNITS))
    assert same_text(lines, UNITS) and all(width(line) <= 7 for line in lines), lines
    # Every unit whole, except the one longer than the cell (at a word: 社区卫生 / 服务中心).
    assert cut_words(lines, split_units(UNITS)) == ["社区卫生服务中心"], lines
    assert cut_words(lines, ["社区卫生", "服务中心"]) == [], lines


def test_the_units_cell_of_the_progress_template_keeps_units_whole():
    template = docx_environment().from_string("{{ p.units|cn_wrap(7, keep=p.units) }}")
    assert template.render(p={"units": UNITS}).split("\n")[4:6] == ["管理办、", "自治办、"]
    with zipfile.ZipFile(templates_dir() / "progress.docx") as z:
        assert "{{ p.units|cn_wrap(7, keep=p.units) }}" in z.read("word/document.xml").decode("utf-8")


# ---- 2. a title whose runs Word split ----------------------------------------------------------------

SPLIT = {  # the title as Word saves it after staff bold the name (runs split, proofing marks)
    "meeting.docx": ("<w:r><w:t>{% filter cn_wrap(20) %}关于召开{{ meeting.name }}的通知{% endfilter %}</w:t></w:r>",
                     '<w:r><w:t>{% filter cn_wrap(20) %}关于召开</w:t></w:r><w:proofErr w:type="spellStart"/>'
                     '<w:r w:rsidR="00A1"><w:rPr><w:b/><w:bCs/></w:rPr><w:t xml:space="preserve">{{ meeting.</w:t></w:r>'
                     '<w:r><w:rPr><w:b/></w:rPr><w:t>name }}</w:t></w:r><w:proofErr w:type="spellEnd"/>'
                     '<w:bookmarkStart w:id="0" w:name="_GoBack"/><w:bookmarkEnd w:id="0"/>'
                     '<w:r><w:t>的通知{% endfilter %}</w:t></w:r>'),
    "bulletin.docx": ("<w:r><w:t>{% filter cn_wrap(24) %}{{ a.title }}{% endfilter %}</w:t></w:r>",
                      "<w:r><w:t>{% filter cn_wrap(24) %}</w:t></w:r><w:r><w:rPr><w:i/></w:rPr>"
                      "<w:t>{{ a.title }}</w:t></w:r><w:r><w:t>{% endfilter %}</w:t></w:r>"),
}


def edited_template(folder: Path, name: str, old: str, new: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(templates_dir() / name) as src, zipfile.ZipFile(folder / name, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                xml = data.decode("utf-8")
                assert old in xml
                data = xml.replace(old, new).encode("utf-8")
            out.writestr(info, data)
    return folder


@pytest.fixture(scope="module")
def long_titles_master(tmp_path_factory) -> Path:
    rows = demo.demo_rows()
    rows[schema.ARTICLES.name][0]["title"] = "街道党工委中心组赴崇明竖河镇开展参观学习和结对帮扶活动"
    path = tmp_path_factory.mktemp("titles") / "healthbook.xlsx"
    build_workbook(path, rows)
    return path


@pytest.mark.parametrize("name, kind, expected", [
    ("meeting.docx", ctx.MEETING, f"关于召开{demo.MEETINGS[0]['name']}的通知"),
    ("bulletin.docx", ctx.BULLETIN, "街道党工委中心组赴崇明竖河镇开展参观学习和结对帮扶活动"),
])
def test_a_title_split_into_runs_by_word_still_prints_as_text(long_titles_master, tmp_path, name, kind, expected):
    folder = edited_template(tmp_path / "mine", name, *SPLIT[name])
    result = render_notices(config_input(long_titles_master), tmp_path / "out",
                            NoticeOptions(kinds=(kind,), formats=("docx",), templates=folder,
                                          meeting="M01" if kind == ctx.MEETING else None))  # held: asked for
    doc = Document(str(tmp_path / "out" / result.notices[0].docx))
    texts = [p.text for p in doc.paragraphs]
    assert not [t for t in texts if "<w:" in t or "w:t>" in t]  # no XML printed as text
    [title] = [t for t in texts if t.replace("\n", "") == expected]
    assert "\n" in title  # still broken between words by cn_wrap (too long for one line)


@pytest.mark.parametrize("inside, reason", [
    ('<w:r><w:br/></w:r>', "换行"),
    ('<w:r><w:drawing><wp:inline/></w:drawing></w:r>', "图片"),
    ('</w:p><w:p>', "回车"),
])
def test_a_title_holding_more_than_text_is_refused_in_chinese(long_titles_master, tmp_path, inside, reason):
    old = SPLIT["meeting.docx"][0]
    new = old.replace("关于召开", "关于召开</w:t></w:r>" + inside + "<w:r><w:t>")
    folder = edited_template(tmp_path / "mine", "meeting.docx", old, new)
    with pytest.raises(TemplateProblem) as err:
        render_notices(config_input(long_titles_master), tmp_path / "out",
                       NoticeOptions(kinds=(ctx.MEETING,), formats=("docx",), templates=folder))
    message = str(err.value)
    assert "模板“meeting.docx”有误" in message and "cn_wrap" in message and reason in message, message
