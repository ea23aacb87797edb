"""Excel tables (Ctrl+T) over 台账 take in the rows consolidation appends; nothing else changes.

Real files: the project's master with a table part added the way Excel stores one
(``tests/tabled.py``), real forms, a real consolidation, LibreOffice recalculating a structured
reference on another sheet.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book import write as writer
from macros.book.ooxml import sheet_parts
from macros.book.read import read_workbook
from macros.book.tables import autofilter_ref, table_ref
from macros.book.verify import VerifyError, check_table_grew
from macros.book.write import FileBook, WriteRefused
from macros.book.write_types import SheetWrite
from macros.consolidate import consolidate, folders

from .conftest import convert_with_libreoffice
from .tabled import CALCULATED, CALCULATED_HEADER, COUNT_CELL, SUM_CELL, add_table, ledger_grid
from .test_consolidate import fill_form, new_row

AS_OF = date(2020, 11, 15)  # inside the demo's 年度: "today" (years on) makes no notice

LEDGER = schema.LEDGER.name
TABLE_PART = "xl/tables/table1.xml"
NEW = [new_row(activity=f"表格下方新增第{i}批", participants=100 + i) for i in range(3)]
OWNED = {s.name for s in schema.OWNED_SHEETS}
# LibreOffice keeps cached formula results of an .xlsx unless told to recalculate on load.
RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><item oor:path="/org.openoffice.Office.Calc/Formula/Load">
<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item></oor:items>"""


def tabled(plain: Path, tmp_path: Path, **table) -> Path:
    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    add_table(master, **table)
    return master


def drop(master: Path, form: Path, rows: list[dict], name: str = "C01-11月.xlsx") -> Path:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    return fill_form(form, inbox / name, rows)


def parts_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def changed_parts(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    assert set(before) <= set(after)
    return {name for name in before if after[name] != before[name]}


def writer_parts(parts: dict[str, bytes]) -> set[str]:
    """Parts a consolidation may change without any table: the owned sheets and the grow-only parts."""
    sheets = sheet_parts(parts)
    return ({sheets[s] for s in OWNED if s in sheets} | {"xl/styles.xml", "[Content_Types].xml", "xl/workbook.xml"}
            | {n for n in parts if n.endswith(".rels") or re.search(r"comments\d*\.xml$|\.vml$", n)})


def recalculated(master: Path, out: Path) -> CalamineWorkbook:
    """The master as LibreOffice shows it after recalculating every formula."""
    user = out / "lo-profile" / "user"
    user.mkdir(parents=True)
    (user / "registrymodifications.xcu").write_text(RECALC_ALWAYS, encoding="utf-8")
    return CalamineWorkbook.from_path(str(convert_with_libreoffice(master, "xlsx", out)))


def guide_cells(book: CalamineWorkbook) -> tuple[float, float]:
    first = book.get_sheet_by_name(schema.GUIDE.name).to_python()[0]
    return first[3], first[4]  # COUNT_CELL, SUM_CELL: D1, E1


def test_consolidated_rows_join_the_table_and_nothing_else_changes(plain, form, tmp_path):
    master = tabled(plain, tmp_path)
    last = len(ledger_grid(master))  # the table is A1:L<last>
    before = parts_of(master)
    assert table_ref(before[TABLE_PART].decode()) == f"A1:L{last}"
    first_count, first_sum = guide_cells(CalamineWorkbook.from_path(str(master)))
    assert (COUNT_CELL, SUM_CELL) == ("D1", "E1") and first_count == last - 1

    drop(master, form, NEW)
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 3

    after = parts_of(master)
    grid = ledger_grid(master)
    assert len(grid) == last + 3 and [row[4] for row in grid[last:]] == [r["activity"] for r in NEW]
    table = after[TABLE_PART].decode()
    assert table_ref(table) == autofilter_ref(table) == f"A1:L{last + 3}"
    # Only the two refs moved: style, columns, name — every other byte of the part as it was.
    assert after[TABLE_PART] == before[TABLE_PART].replace(f':L{last}"'.encode(), f':L{last + 3}"'.encode())
    assert before[TABLE_PART].count(f':L{last}"'.encode()) == 2
    changed = changed_parts(before, after)
    assert TABLE_PART in changed and changed - writer_parts(before) == {TABLE_PART}

    # LibreOffice opens it and its structured references count the new rows.
    count, total = guide_cells(recalculated(master, tmp_path / "lo"))
    assert count == first_count + 3
    assert total == first_sum + sum(r["participants"] for r in NEW)

    # The same file again: nothing changes, the table included.
    shutil.copy2(run.files[0].moved_to, folders(master, read_workbook(master).settings).inbox / "C01-11月.xlsx")
    written = master.read_bytes()
    again = consolidate(master, as_of=AS_OF)
    assert again.rows_added == 0 and not again.master_written
    assert master.read_bytes() == written


@pytest.mark.parametrize("where", [
    {"last_row": 300},  # rows 301.. already below it, outside it: the new ones would not touch it
    {"first_row": 2},  # its header is not our header row
])
def test_a_table_elsewhere_is_left_as_it_is(plain, form, tmp_path, where):
    master = tabled(plain, tmp_path, formulas=False, **where)
    before = parts_of(master)
    drop(master, form, NEW)
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 3
    after = parts_of(master)
    assert after[TABLE_PART] == before[TABLE_PART]
    assert changed_parts(before, after) <= writer_parts(before)


def test_a_table_with_a_totals_row_is_not_grown_and_nothing_is_damaged(plain, form, tmp_path):
    master = tabled(plain, tmp_path, totals=True)
    last = len(ledger_grid(master))  # the totals row (汇总) is the last row
    before = parts_of(master)
    ledger_part = sheet_parts(before)[LEDGER]
    totals_before = re.search(rf'<row r="{last}".*?</row>'.encode(), before[ledger_part]).group(0)
    assert b"SUBTOTAL" in totals_before
    first_count, first_sum = guide_cells(CalamineWorkbook.from_path(str(master)))

    drop(master, form, NEW)
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 3

    after = parts_of(master)
    assert after[TABLE_PART] == before[TABLE_PART]  # new rows would sit under its totals
    # The totals row keeps its values and its SUBTOTAL formula byte for byte: not a record, it is
    # neither validated (no fill, no note) nor rewritten (tests/test_table_totals.py).
    totals_row = re.search(rf'<row r="{last}".*?</row>'.encode(), after[ledger_part]).group(0)
    assert totals_row == totals_before
    grid = ledger_grid(master)
    assert grid[last - 1][0] == "汇总" and [row[4] for row in grid[last:]] == [r["activity"] for r in NEW]
    # LibreOffice opens it; the table (and what refers to it) is as before: the new rows are below it.
    count, total = guide_cells(recalculated(master, tmp_path / "lo"))
    assert (count, total) == (first_count, first_sum)


@pytest.mark.parametrize("formula", [CALCULATED, "F2*2"])
def test_a_calculated_column_is_filled_into_the_rows_the_table_grows_over(plain, form, tmp_path, formula,
                                                                          early_reads):
    # early_reads: also as a large ledger is written (re-read while the next sheet is built)
    master = tabled(plain, tmp_path, calculated=formula)
    last = len(ledger_grid(master))
    before = parts_of(master)
    ledger_part = sheet_parts(before)[LEDGER]
    drop(master, form, NEW)
    run = consolidate(master, as_of=AS_OF)
    assert run.rows_added == 3

    after = parts_of(master)
    assert table_ref(after[TABLE_PART].decode()) == f"A1:M{last + 3}"
    assert changed_parts(before, after) - writer_parts(before) == {TABLE_PART}
    sheet = after[ledger_part].decode()
    for r in range(last + 1, last + 4):
        # translated to its row as Excel fills it down (a structured reference needs none)
        want = formula.replace("F2", f"F{r}")
        assert re.search(rf'<c r="M{r}"[^>]*><f>{re.escape(want)}</f></c>', sheet), r
    # Old rows keep theirs; LibreOffice shows the new rows' results.
    book = recalculated(master, tmp_path / "lo")
    grid = book.get_sheet_by_name(LEDGER).to_python()
    column = grid[0].index(CALCULATED_HEADER)
    assert [row[column] for row in grid[last:last + 3]] == [2 * r["participants"] for r in NEW]
    assert grid[last - 1][column] == 2 * grid[last - 1][5]
    # The same file again: the formula cells (no cached value yet) are found as they were.
    shutil.copy2(run.files[0].moved_to, folders(master, read_workbook(master).settings).inbox / "C01-11月.xlsx")
    written = master.read_bytes()
    assert not consolidate(master, as_of=AS_OF).master_written
    assert master.read_bytes() == written


# --- the check --------------------------------------------------------------------------------


def _table_bytes(plain: Path, tmp_path: Path) -> tuple[bytes, int]:
    master = tabled(plain, tmp_path, formulas=False)
    return parts_of(master)[TABLE_PART], len(ledger_grid(master))


def test_the_check_accepts_a_table_grown_down_and_nothing_else(plain, tmp_path):
    old, last = _table_bytes(plain, tmp_path)
    grown = old.replace(f':L{last}"'.encode(), f':L{last + 5}"'.encode())
    check_table_grew(TABLE_PART, old, grown)
    refused = {
        "style": grown.replace(b"TableStyleMedium9", b"TableStyleLight1"),
        "column name": grown.replace("参与人数".encode(), "人数".encode()),
        "shrunk": old.replace(f':L{last}"'.encode(), f':L{last - 5}"'.encode()),
        "wider": old.replace(f':L{last}"'.encode(), f':M{last + 5}"'.encode()),
        "filter only": old.replace(f'<autoFilter ref="A1:L{last}"'.encode(), f'<autoFilter ref="A1:L{last + 5}"'.encode()),
        "filter elsewhere": grown.replace(f'<autoFilter ref="A1:L{last + 5}"'.encode(),
                                          f'<autoFilter ref="A1:L{last + 6}"'.encode()),
        "name": grown.replace('name="表1"'.encode(), 'name="表2"'.encode()),
    }
    for what, new in refused.items():
        assert new != old, what
        with pytest.raises(VerifyError):
            check_table_grew(TABLE_PART, old, new)


def _append_write(master: Path) -> list[SheetWrite]:
    rows = read_workbook(master)[LEDGER].to_dict("records")
    rows.append({**NEW[0], "record_id": "C01-9999", "committee_id": "C01", "source": "手工"})
    return [SheetWrite(schema.LEDGER, rows)]


def _tamper(monkeypatch, part: str) -> None:
    """The writer grows tables as usual, then (a bug) also changes ``part``'s table style."""
    real = writer.grow_tables

    def grow_and_more(pkg, *args, **kwargs):
        grown = real(pkg, *args, **kwargs)
        pkg.set_text(part, pkg.text(part).replace("TableStyleMedium9", "TableStyleDark1"))
        return grown

    monkeypatch.setattr(writer, "grow_tables", grow_and_more)


def test_a_write_that_changes_a_table_otherwise_is_refused(plain, tmp_path, monkeypatch):
    master = tabled(plain, tmp_path, formulas=False)
    FileBook(master).write(_append_write(master))  # grown: accepted
    grown = master.read_bytes()
    _tamper(monkeypatch, TABLE_PART)
    with pytest.raises(WriteRefused):
        FileBook(master).write(_append_write(master))
    assert master.read_bytes() == grown


def test_a_table_on_a_sheet_we_do_not_own_may_not_change_at_all(plain, tmp_path, monkeypatch):
    master = tabled(plain, tmp_path, formulas=False)
    add_table(master, sheet=schema.PROJECTS, number=2, formulas=False)
    before = master.read_bytes()
    _tamper(monkeypatch, "xl/tables/table2.xml")
    with pytest.raises(WriteRefused) as refused:
        FileBook(master).write(_append_write(master))
    assert "table2.xml" in refused.value.reason
    assert master.read_bytes() == before


def test_blank_rows_inside_the_table_are_filled_before_it_grows(plain, form, tmp_path):
    last = len(ledger_grid(plain))
    master = tabled(plain, tmp_path, last_row=last + 4, formulas=False)  # 4 empty table rows
    before = parts_of(master)
    drop(master, form, NEW)  # 3 rows: inside the table, which stays as it is
    consolidate(master, as_of=AS_OF)
    assert parts_of(master)[TABLE_PART] == before[TABLE_PART]
    more = [new_row(activity=f"表格内第{i}批") for i in range(3)]
    drop(master, form, more, "C01-12月.xlsx")  # 1 more fits, 2 below it: it grows over them
    consolidate(master, as_of=AS_OF)
    assert len(ledger_grid(master)) == last + 6
    assert table_ref(parts_of(master)[TABLE_PART].decode()) == f"A1:L{last + 6}"


def test_a_table_over_an_output_sheet_grows_with_the_report(plain, tmp_path):
    from macros.cli import main

    sheet = schema.COMMITTEE_PROGRESS
    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    add_table(master, sheet=sheet, last_row=2, formulas=False)  # the header and one (empty) row
    part = "xl/tables/table1.xml"
    before = parts_of(master)[part]
    assert main(["report", str(master), "--as-of", "2020-11-15", "--out", str(tmp_path / "通知")]) in (0, 1)
    rows = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(sheet.name).to_python()
    committees = len(read_workbook(master)[schema.COMMITTEES.name])
    assert len(rows) == committees + 1
    after = parts_of(master)[part]
    assert table_ref(after.decode()) == re.sub(r"\d+$", str(committees + 1), table_ref(before.decode()))
    check_table_grew(part, before, after)


def test_the_last_row_holding_a_value_is_where_the_writer_appends(plain, tmp_path):
    from macros.book.owned import next_free_row
    from macros.book.tables import last_value_row

    for i, table in enumerate(({}, {"totals": True}, {"calculated": "F2*2"})):
        (tmp_path / str(i)).mkdir()
        master = tabled(plain, tmp_path / str(i), **table)
        parts = parts_of(master)
        xml = parts[sheet_parts(parts)[LEDGER]].decode()
        assert last_value_row(xml) + 1 == next_free_row(master, schema.LEDGER, []) == len(ledger_grid(master)) + 1
