"""Notices on paper: a phone number is never split at its hyphen, and the signature (落款) never
stands alone on a page (it keeps with the last paragraph of the text)."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import docx
import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.cli import main
from macros.render.env import templates_dir

from .conftest import convert_many_with_libreoffice

AS_OF = "2020-11-15"
SIGNED = "2020年11月15日"  # the signature's date: the notices are dated the day they are made
# Agendas of 12–20 one-line items: the page ends, in one of them, just before the signature.
AGENDA_ITEMS = range(12, 21)
PADDED = (5, 6)  # the contact's name lengthened so that the phone number reaches the line's end
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@pytest.fixture(scope="module")
def notices(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("print")
    rows = demo.demo_rows()
    base = dict(rows[schema.MEETINGS.name][1])
    meetings = [dict(base, meeting_id=f"M{k}", agenda="；".join(f"议程第{i + 1}项" for i in range(k)))
                for k in AGENDA_ITEMS]
    meetings += [dict(base, meeting_id=f"M9{n}", contact="办" * n + "发展办 李敏") for n in PADDED]
    rows[schema.MEETINGS.name] = meetings
    build_workbook(where / "master.xlsx", rows)
    assert main(["notices", str(where / "master.xlsx"), "--kind", "会议通知", "进度通报", "--out",
                 str(where / "out"), "--as-of", AS_OF]) == 0
    return where / "out"


def meeting(notices: Path, meeting_id: str) -> Path:
    [found] = notices.glob(f"会议通知_{meeting_id}_*.docx")
    return found


def paragraphs(path: Path) -> list:
    return docx.Document(str(path)).paragraphs


@pytest.mark.parametrize("name", ["meeting.docx", "progress.docx", "reminder.docx"])
def test_templates_keep_the_last_paragraph_with_the_signature(name):
    body = docx.Document(str(templates_dir() / name)).paragraphs
    at = next(i for i, p in enumerate(body) if p.style.name == "落款")
    last_text, signed = body[at - 1], body[at]
    assert last_text.paragraph_format.keep_with_next and "{%" not in last_text.text
    # Issuer and date: one paragraph of two lines, which no page break can part.
    assert re.fullmatch(r"\{\{ [\w.]*issuer \}\}\n\{\{ date\|cn_date \}\}", signed.text), signed.text
    assert signed.paragraph_format.keep_together
    assert not signed.paragraph_format.keep_with_next  # the date would pull in the next notice of a combined file
    assert all(p.style.name != "落款" for p in body[at + 1:])


def test_phone_numbers_get_non_breaking_hyphens_and_still_read_as_typed(notices):
    for path in (meeting(notices, "M95"), next(notices.glob("进度通报_*.docx"))):
        xml = zipfile.ZipFile(path).read("word/document.xml").decode("utf-8")
        assert "021-62000000" not in xml
        assert '021</w:t><w:noBreakHyphen/><w:t xml:space="preserve">62000000' in xml
        # A reader of the .docx (python-docx here; Word's copy) takes the hyphen as "-".
        assert any("联系电话：021-62000000" in p.text for p in paragraphs(path))
    # Only the phone number's hyphen changes (one in a meeting notice).
    dated = zipfile.ZipFile(meeting(notices, "M12")).read("word/document.xml").decode("utf-8")
    assert dated.count("<w:noBreakHyphen/>") == 1


def test_the_combined_reminders_never_print_a_date_without_its_issuer(tmp_path):
    """Eight 催办通知 of the demo in one file to print: each letter's issuer and date on one page,
    the date right below the issuer (LibreOffice once printed a date alone atop a page)."""
    build_workbook(tmp_path / "master.xlsx", demo.demo_rows())
    assert main(["notices", str(tmp_path / "master.xlsx"), "--kind", "催办通知", "--out", str(tmp_path / "out"),
                 "--as-of", AS_OF]) == 0
    [combined] = (tmp_path / "out").glob("催办通知_合并打印_*.docx")
    [pdf] = convert_many_with_libreoffice([combined], "pdf", tmp_path)
    pages = pdf_pages(pdf)
    signed = [page for page in pages if SIGNED in page]
    assert len(signed) >= 8 and sum(page.count(SIGNED) for page in signed) == 8
    for page in signed:
        at = page.index(SIGNED)
        assert at > 0 and page[at - 1] == "石门二路街道办事处", page


def pdf_pages(pdf: Path) -> list[list[str]]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return [[re.sub(r"\s+", "", line) for line in page.splitlines() if line.strip()]
            for page in text.split("\f") if page.strip()]


def test_on_paper_the_signature_has_text_above_it_and_phones_stay_whole(notices, tmp_path):
    docs = [meeting(notices, f"M{k}") for k in AGENDA_ITEMS] + [meeting(notices, f"M9{n}") for n in PADDED]
    pdfs = convert_many_with_libreoffice(docs, "pdf", tmp_path)
    moved = 0
    for pdf in pdfs[:len(AGENDA_ITEMS)]:
        pages = pdf_pages(pdf)
        [signed] = [page for page in pages if SIGNED in page]
        body = [line for line in signed if line not in (SIGNED, "石门二路街道办事处") and not re.fullmatch(r"—\d+—", line)]
        assert body, f"{pdf.name}: 落款单独在第 {pages.index(signed) + 1} 页"
        moved += signed is not pages[0] and signed[0].startswith("联系人")
    assert moved, "no agenda length put the page's end before the signature: adjust AGENDA_ITEMS"
    wrapped = 0
    for pdf in pdfs[len(AGENDA_ITEMS):]:
        lines = [line for page in pdf_pages(pdf) for line in page]
        assert not any(line.endswith("021-") for line in lines), pdf.name
        assert any("021-62000000" in line for line in lines)  # drawn and copied as a plain hyphen
        wrapped += any(line.startswith("021-62000000") for line in lines)
    assert wrapped, "no padding brought the phone number to the line's end: adjust PADDED"
