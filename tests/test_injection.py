"""Injection and names: whatever staff or committees type stays text.

Markup in every text field is escaped in the HTML notices and index.html and reads back exactly in
Word; names such as ``../../x``, ``CON`` or ``a:b*?`` give safe file names inside the output folder;
formula-looking values stay text in the master after every write.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest
from docx import Document

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from tests.conftest import cli_json as cli

AS_OF = demo.DEMO_AS_OF
MANIFEST = ".healthbook-通知.json"
MARKUP = """<script>alert(1)</script>&<>"'"""
ATTR = 'x" onmouseover="alert(1)'
FORMULAS = ("=1+1", '=HYPERLINK("http://evil.example","点我")', "+8613800000000", "-3+2", "@SUM(A1:A2)")
# Committees the demo reminds as of DEMO_AS_OF (so each name reaches a file name and a document).
HOSTILE_COMMITTEES = {"C02": "PRN", "C03": "../../x", "C05": "CON", "C06": "a:b*?", "C07": f"居委会{MARKUP}",
                      "C08": ATTR, "C10": FORMULAS[1], "C11": "nul.txt", "C13": "..\\..\\y"}
# Every free-text column of 会议 (M01) carries its own marker so a swapped field would show.
MEETING_TEXT = ("name", "place", "chair", "attendees", "agenda", "contact", "issuer")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                    *(f"LPT{i}" for i in range(1, 10))}


def hostile_rows() -> dict[str, list[dict]]:
    rows = demo.demo_rows()
    by_id = {c["committee_id"]: c for c in rows[schema.COMMITTEES.name]}
    for cid, name in HOSTILE_COMMITTEES.items():
        by_id[cid]["name"] = name
    projects = rows[schema.PROJECTS.name]
    projects[0]["name"] = f"楼宇白领{MARKUP}"
    projects[1]["name"] = FORMULAS[0]
    projects[0]["units"] = f"发展办、<b>党建办</b>&{ATTR}"
    m1, m2 = rows[schema.MEETINGS.name]
    for key in MEETING_TEXT:
        m1[key] = f"{key}{MARKUP}"
    m1["date"] = m2["date"]  # still to come: a meeting already held gets no new notice
    m2["name"] = "../../会议"
    for i, article in enumerate(rows[schema.ARTICLES.name]):
        article["title"] = f"标题{i}{MARKUP}"
        article["body"] = f"正文{i}{MARKUP}\n第二段{ATTR}"
        article["source_unit"] = f"供稿{i}&<i>"
    for row, value in zip(rows[schema.LEDGER.name], FORMULAS):
        row["activity"] = value
        row["note"] = value
    # Every hostile name gets a letter: C02 (PRN) is 13 points short, 滞后 at a 10-point threshold.
    rows[schema.SETTINGS.name] = demo.settings_rows({**demo.SETTINGS, "lag_threshold": 0.1})
    return rows


class Parsed(HTMLParser):
    """Tags, attributes and text as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Parsed:
    parsed = Parsed()
    parsed.feed(path.read_text(encoding="utf-8"))
    parsed.text = ["".join(parsed.text)]
    return parsed


def docx_text(path: Path) -> str:
    doc = Document(str(path))
    lines = [p.text for p in doc.paragraphs]
    lines += ["\t".join(c.text for c in row.cells) for t in doc.tables for row in t.rows]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    master = folder / "healthbook.xlsx"
    build_workbook(master, hostile_rows())
    formula_cells = {}
    after = {}
    for step in (("validate", "--mark"), ("rollup",), ("report", "--out", str(folder / "out"))):
        code, data = cli(step[0], str(master), *step[1:], "--as-of", AS_OF.isoformat())
        assert code in (0, 1), data
        after[step[0]] = text_cells(master)
        formula_cells[step[0]] = [c for c in after[step[0]] if c[3] == "f"]
    return master, folder / "out", data, after, formula_cells


def text_cells(master: Path) -> list[tuple[str, str, str, str]]:
    """(sheet, cell, value, data_type) of every formula-looking cell of the owned sheets."""
    wb = openpyxl.load_workbook(master)
    found = []
    for sheet in schema.OWNED_SHEETS:
        for row in wb[sheet.name].iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith(("=", "+", "-", "@")):
                    found.append((sheet.name, cell.coordinate, cell.value, cell.data_type))
    return found


def test_formula_looking_values_stay_text_after_every_write(reported):
    master, out, data, after, formula_cells = reported
    for step, cells in after.items():
        assert not formula_cells[step], f"after {step}: {formula_cells[step][:3]}"
        values = {v for _, _, v, _ in cells}
        assert set(FORMULAS) <= values, step  # the ledger's own cells, kept verbatim
    # The roll-up copied names into its sheets: they are text there too.
    progress = {v for s, _, v, _ in after["report"] if s == schema.COMMITTEE_PROGRESS.name}
    assert FORMULAS[1] in progress
    assert {v for s, _, v, _ in after["report"] if s == schema.PROJECT_PROGRESS.name} >= {FORMULAS[0]}
    # And our reader gives back exactly what was typed.
    ledger = read_workbook(master, [schema.LEDGER])[schema.LEDGER.name]
    assert list(ledger["activity"][:len(FORMULAS)]) == list(FORMULAS)


def test_every_html_file_escapes_every_field(reported):
    master, out, data, after, _ = reported
    pages = sorted(out.glob("*.html"))
    assert (out / "index.html") in pages and len(pages) > 10
    for page in pages:
        parsed = parse(page)
        assert not parsed.tags & {"script", "b", "i"}, page.name
        assert "onmouseover" not in parsed.attrs, page.name
        assert "<script>" not in page.read_text(encoding="utf-8"), page.name
    text = {p.name: parse(p).text[0] for p in pages}
    meeting = next(n for n in data["notices"]["notices"] if n["kind"] == "会议通知" and "name" in n["title"])
    for key in MEETING_TEXT:
        assert f"{key}{MARKUP}" in text[meeting["html"]], key
    bulletin = next(n for n in data["notices"]["notices"] if n["kind"] == "工作简报")
    for piece in (f"标题0{MARKUP}", f"正文0{MARKUP}", f"第二段{ATTR}", "供稿0&<i>"):
        assert piece in text[bulletin["html"]], piece
    for n in data["notices"]["notices"]:
        if n["kind"] == "催办通知" and not n["combined"]:
            name = n["title"].removeprefix("催办通知：")
            assert name in HOSTILE_COMMITTEES.values()
            assert f"{name}：" in text[n["html"]]
            assert n["title"] in text["index.html"]


def test_every_word_document_holds_exactly_what_was_typed(reported):
    master, out, data, after, _ = reported
    notices = data["notices"]["notices"]
    reminders = [n for n in notices if n["kind"] == "催办通知" and not n["combined"]]
    assert sorted(n["title"].removeprefix("催办通知：") for n in reminders) == sorted(HOSTILE_COMMITTEES.values())
    for n in reminders:
        name = n["title"].removeprefix("催办通知：")
        assert f"\n{name}：\n" in docx_text(out / n["docx"])
    meeting = next(n for n in notices if n["kind"] == "会议通知" and "name" in n["title"])
    words = docx_text(out / meeting["docx"])
    for key in MEETING_TEXT:
        assert f"{key}{MARKUP}" in words, key
    bulletin = next(n for n in notices if n["kind"] == "工作简报")
    words = docx_text(out / bulletin["docx"])
    assert f"标题0{MARKUP}" in words and f"正文0{MARKUP}" in words and f"第二段{ATTR}" in words
    progress = next(n for n in notices if n["kind"] == "进度通报")
    assert f"楼宇白领{MARKUP}" in docx_text(out / progress["docx"])


def test_hostile_names_make_safe_file_names_inside_the_output_folder(reported):
    master, out, data, after, _ = reported
    files = [p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST]  # healthbook's own record
    assert all(p.parent == out for p in files), [str(p) for p in files if p.parent != out]
    # Nothing escaped upward: the master's folder holds only what it held plus our own folders.
    assert not list(master.parent.parent.glob("x*")) and not list(master.parent.glob("*会议*"))
    for p in files:
        assert not re.search(r'[\\/:*?"<>|\x00-\x1f]', p.name), p.name
        assert not p.name.startswith((".", " ")) and not p.stem.endswith((".", " ")), p.name
        assert p.name.split(".")[0].upper() not in WINDOWS_RESERVED, p.name
    names = [n[k] for n in data["notices"]["notices"] for k in ("docx", "html")]
    assert len(names) == len(set(names)), "two notices would overwrite each other"
    assert all((out / name).is_file() for name in names)
