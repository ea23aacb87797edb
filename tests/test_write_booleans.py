"""The writer's unchanged-row check: a boolean is not a number (TRUE != 1), while 1 == 1.0 and a
blank is a blank — so a cell that must change is rewritten and an unchanged row keeps its bytes."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.ooxml import sheet_parts
from macros.book.read import records
from macros.book.verify import grid
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite

LEDGER = schema.LEDGER.name
QUANTITY = schema.LEDGER.header_of("quantity")


def ledger_rows_xml(path: Path) -> dict[int, str]:
    with zipfile.ZipFile(path) as z:
        xml = z.read(sheet_parts({n: z.read(n) for n in z.namelist()})[LEDGER]).decode()
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'(?s)<row r="(\d+)".*?</row>', xml)}


def test_true_and_1_are_different_cells_and_1_and_1_0_are_the_same(master_copy):
    wb = openpyxl.load_workbook(master_copy)  # staff typed TRUE / FALSE where numbers go
    ws = wb[LEDGER]
    q = next(c.column for c in ws[1] if c.value == QUANTITY)
    ws.cell(2, q, True)
    ws.cell(3, q, 1)
    ws.cell(4, q, False)
    wb.save(master_copy)
    before = ledger_rows_xml(master_copy)

    book = FileBook(master_copy)
    rows = records(book.read([schema.LEDGER]).frames[LEDGER])
    at = {row["_row"]: row for row in rows}
    assert [at[r]["quantity"] for r in (2, 3, 4)] == [True, 1, False]  # as read
    at[2]["quantity"], at[3]["quantity"], at[4]["quantity"] = 1, True, 0
    at[5]["quantity"] = float(at[5]["quantity"])  # 72 → 72.0: the same number
    at[6]["note"] = ""  # None → "": the same blank
    book.write([SheetWrite(schema.LEDGER, rows)])

    cells = grid(CalamineWorkbook.from_path(str(master_copy)), LEDGER)
    got = [cells[r - 1][q - 1] for r in (2, 3, 4)]
    assert [(type(v), v) for v in got] == [(float, 1.0), (bool, True), (float, 0.0)]
    after = ledger_rows_xml(master_copy)
    assert {r for r in before if after.get(r) != before[r]} == {2, 3, 4}  # every other row byte for byte


def test_the_re_read_check_refuses_a_boolean_written_as_a_number(master_copy, monkeypatch):
    # Fault injection: a writer bug that puts TRUE down as the number 1 must not pass the check
    # (Python's True == 1 would let it).
    import macros.book.owned as owned
    from macros.book.ooxml import cell_xml
    from macros.book.write import WriteRefused

    monkeypatch.setattr(owned, "cell_xml", lambda ref, value, style, *more: cell_xml(
        ref, int(value) if isinstance(value, bool) else value, style, *more))
    before = master_copy.read_bytes()
    book = FileBook(master_copy)
    rows = records(book.read([schema.LEDGER]).frames[LEDGER])
    rows[0]["quantity"] = True
    try:
        book.write([SheetWrite(schema.LEDGER, rows)])
    except WriteRefused as refused:
        assert "wrote True, read 1" in str(refused)
    else:
        raise AssertionError("a boolean written as a number passed the check")
    assert master_copy.read_bytes() == before
