"""Any text a person or a submission can put in a cell comes back exactly as written."""

from __future__ import annotations

import re
import shutil

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite

# Text as it arrives: CJK, spaces at either end, line breaks, XML specials, formula look-alikes,
# OOXML escape look-alikes and control characters. Surrogates cannot be stored in a file at all.
ALPHABET = st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFFF)
SPECIAL = st.sampled_from(["=SUM(A1)", "+1", "-2", "@x", "_x000D_", "_x0041_", "<&>\"'", "\r\n", "\t",
                           "\x01", " 前后 ", "健康街道", "\u3000", "😀"])
TEXT = st.lists(st.one_of(SPECIAL, st.text(ALPHABET, max_size=8)), min_size=1, max_size=5).map("".join).filter(
    lambda t: t.strip() != "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_text_round_trips_through_calamine_and_openpyxl(demo_master, tmp_path_factory, texts):
    path = tmp_path_factory.mktemp("text") / demo_master.name
    shutil.copy2(demo_master, path)
    rows = [{"sheet": schema.LEDGER.name, "row": i + 2, "message": text} for i, text in enumerate(texts)]
    FileBook(path).write([SheetWrite(schema.ISSUES, rows)])
    column = schema.ISSUES.keys.index("message")
    grid = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.ISSUES.name).to_python()
    assert [row[column] for row in grid[1:len(texts) + 1]] == texts
    ws = openpyxl.load_workbook(path)[schema.ISSUES.name]
    cells = [ws.cell(i + 2, column + 1) for i in range(len(texts))]
    # openpyxl leaves OOXML's _xHHHH_ escapes in inline strings (calamine, LibreOffice and Excel
    # decode them), so undo them here before comparing.
    assert [ooxml_unescape(c.value) for c in cells] == texts
    assert all(c.data_type == "s" for c in cells)


def ooxml_unescape(text: str) -> str:
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)
