"""A table staff extended below the data in advance, with a calculated column: Excel filled the
column's formula into the empty rows too (cached 0). Those rows are no records; new records go
into them, the formulas stay, the table keeps its range while they fit.

Real files: the project's master with a table part added the way Excel stores one
(``tests/tabled.py``), real forms and consolidations, LibreOffice recalculating.
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
from macros.book.ooxml import sheet_parts
from macros.book.owned import next_free_row
from macros.book.read import read_workbook
from macros.book.tables import table_ref
from macros.book.verify import check_table_grew
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite
from macros.consolidate import consolidate, folders
from macros.submission import read_submission

from .conftest import cli_json
from .tabled import CALCULATED, CALCULATED_HEADER, add_table, ledger_grid
from .test_consolidate import HEADERS, fill_form, new_row
from .test_tables import changed_parts, guide_cells, parts_of, recalculated, writer_parts

LEDGER = schema.LEDGER.name
TABLE_PART = "xl/tables/table1.xml"
AS_OF = date(2020, 11, 30)
EMPTY = 4  # table rows staff added below the data
NEW = [new_row(activity=f"预留行新增第{i}批", participants=40 + i) for i in range(3)]


SHARED = "shared"  # F2*2, stored as Excel stores a formula filled down: once, shared by the others


def prefilled(plain: Path, where: Path, formula: str = CALCULATED, empty: int = EMPTY) -> tuple[Path, int]:
    """The master with 台账 a table reaching ``empty`` rows below the last record, its calculated
    column (两倍人数) filled into them as Excel does (cached 0); returns it and the last record's row."""
    where.mkdir(exist_ok=True)
    master = where / plain.name
    shutil.copy2(plain, master)
    last = len(ledger_grid(master))
    add_table(master, last_row=last + empty, calculated="F2*2" if formula == SHARED else formula)
    if formula == SHARED:
        with zipfile.ZipFile(master) as zf:
            parts = {n: zf.read(n) for n in zf.namelist()}
            names = zf.namelist()
        part = sheet_parts(parts)[LEDGER]
        xml = parts[part].decode()
        xml = xml.replace("<f>F2*2</f>", f'<f t="shared" ref="M2:M{last + empty}" si="0">F2*2</f>', 1)
        xml = re.sub(r"<f>F\d+\*2</f>", '<f t="shared" si="0"/>', xml)
        parts[part] = xml.encode()
        with zipfile.ZipFile(master, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                zf.writestr(name, parts[name])
    return master, last


def ledger_rows(path: Path) -> dict[int, str]:
    """The ledger's <row> elements by number, as bytes in the file."""
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    xml = parts[sheet_parts(parts)[LEDGER]].decode()
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<row r="(\d+)"[^>]*?(?:/>|>.*?</row>)', xml)}


def drop(master: Path, form: Path, rows: list[dict], name: str = "C01-11月.xlsx") -> Path:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    return fill_form(form, inbox / name, rows)


# --- the reader ---------------------------------------------------------------------------------


def test_rows_of_calculated_formulas_only_are_no_records(plain, tmp_path):
    master, last = prefilled(plain, tmp_path / "m")
    rows = ledger_rows(master)
    assert all(re.search(r"<f>[^<]*</f><v>0</v>", rows[r]) for r in range(last + 1, last + EMPTY + 1))
    marked = cli_json("validate", str(master), "--as-of", AS_OF.isoformat(), "--mark")[0]
    assert marked in (0, 1)  # marking rewrites no row of theirs
    after = ledger_rows(master)
    assert all(after[r] == rows[r] for r in range(last + 1, last + EMPTY + 1))
    ledger = read_workbook(master)[LEDGER]
    assert max(ledger["_row"]) == last
    keys = list(schema.LEDGER.keys)
    assert ledger[keys + ["_row"]].equals(read_workbook(plain)[LEDGER][keys + ["_row"]])
    # validate says nothing about them (it said "required" for each before)
    code, found = cli_json("validate", str(master), "--as-of", AS_OF.isoformat())
    _, without = cli_json("validate", str(plain), "--as-of", AS_OF.isoformat())
    assert not [i for i in found["issues"] if i["row"] > last]
    assert found["issues"] == without["issues"]
    assert next_free_row(master, schema.LEDGER, []) == last + 1


def test_a_cleared_record_keeps_its_formula_and_is_no_record_nor_dropped(plain, tmp_path):
    """Staff selected a record and pressed Delete: its values are gone, the calculated column's
    formula stays (Excel keeps it). The row is no record; a write keeps it byte for byte."""
    master, last = prefilled(plain, tmp_path / "m", empty=0)
    r = 10
    with zipfile.ZipFile(master) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
        names = zf.namelist()
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode()
    row = re.search(rf'<row r="{r}"[^>]*>.*?</row>', xml).group(0)
    formula_cell = re.search(rf'<c r="M{r}">.*?</c>', row).group(0)
    cleared = re.sub(r"<c r=.*", formula_cell + "</row>", row, count=1, flags=re.S)
    parts[part] = xml.replace(row, cleared).encode()
    with zipfile.ZipFile(master, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.writestr(name, parts[name])
    ledger = read_workbook(master)[LEDGER]
    assert r not in set(ledger["_row"]) and len(ledger) == last - 2

    book = FileBook(master)
    records = book.read()[LEDGER].to_dict("records")
    records.append({**NEW[0], "record_id": "C01-9999", "committee_id": "C01", "source": "手工"})
    book.write([SheetWrite(schema.LEDGER, records)])
    after = ledger_rows(master)
    assert after[r] == cleared
    assert int(read_workbook(master)[LEDGER]["_row"].iloc[-1]) == last + 1


def test_a_hand_made_form_with_prefilled_table_rows(plain, tmp_path):
    """A committee's own workbook: 台账 a table xlsxwriter writes as Excel does, ten rows long
    for two records, 完成数量 a calculated column (= [@参与人数], cached 0 in the empty rows)."""
    import xlsxwriter

    master = tmp_path / plain.name
    shutil.copy2(plain, master)
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    keys = ("date", "committee_id", "project_id", "activity", "participants", "quantity", "status")
    data = [["2020-11-03", "C02", "P02", "为老年人上门理发", 15, None, "进行中"],
            ["2020-11-05", "C02", "P05", "护理员急救技能实操培训", 8, None, "已完成"]]
    path = inbox / "恒德里手工表.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet(LEDGER)
    columns = [{"header": HEADERS[k]} for k in keys]
    columns[5]["formula"] = f"=[@{HEADERS['participants']}]"
    sheet.add_table(0, 0, 10, len(keys) - 1, {"data": data, "columns": columns})
    book.close()
    with zipfile.ZipFile(path) as zf:
        xml = zf.read("xl/worksheets/sheet1.xml").decode()
    assert re.search(r'<row r="11"[^>]*><c r="F11"[^>]*><f>', xml)  # the empty rows hold it

    submission = read_submission(path)
    assert submission.row_numbers == [2, 3]
    run = consolidate(master, as_of=AS_OF, refresh=False)
    [result] = run.files
    assert result.status == "accepted" and result.rows_added == 2, result.issues


# --- the writer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("formula", [CALCULATED, "F2*2", SHARED])
def test_new_records_fill_the_prefilled_rows(plain, form, tmp_path, formula):
    master, last = prefilled(plain, tmp_path / "m", formula)
    before, rows_before = parts_of(master), ledger_rows(master)
    first_count, first_sum = guide_cells(CalamineWorkbook.from_path(str(master)))
    drop(master, form, NEW)
    run = consolidate(master, as_of=AS_OF, refresh=False)  # no marks: only the merge's rows change
    assert run.master_written and run.rows_added == 3

    after, rows_after = parts_of(master), ledger_rows(master)
    assert after[TABLE_PART] == before[TABLE_PART]  # they fit: the table is as it was
    assert changed_parts(before, after) <= writer_parts(before)
    ledger = read_workbook(master)[LEDGER]
    assert list(ledger["_row"][-3:]) == [last + 1, last + 2, last + 3]
    assert list(ledger["activity"][-3:]) == [r["activity"] for r in NEW]
    # Every other row byte for byte: the records above, the prefilled row still empty (the header
    # row is written anew by every write: its spans hint goes).
    changed = {r for r in rows_before.keys() | rows_after.keys() if rows_before.get(r) != rows_after.get(r)}
    assert changed == {1, last + 1, last + 2, last + 3}
    assert rows_after[1] == re.sub(r' spans="[^"]*"', "", rows_before[1])
    for r in range(last + 1, last + 4):
        # The formula kept as Excel keeps it, its stale cached 0 gone (Excel computes it on open).
        old_cell = re.search(rf'<c r="M{r}"[^>]*>(<f>.*?</f>|<f [^>]*/>)<v>0</v></c>', rows_before[r])
        assert old_cell and f'<c r="M{r}">{old_cell.group(1)}</c>' in rows_after[r]

    # LibreOffice recalculating: the structured references count the new rows, the column computes.
    book = recalculated(master, tmp_path / "lo")
    count, total = guide_cells(book)
    assert count == first_count + 3 and total == first_sum + sum(r["participants"] for r in NEW)
    grid = book.get_sheet_by_name(LEDGER).to_python()
    column = grid[0].index(CALCULATED_HEADER)
    assert [row[column] for row in grid[last:last + 3]] == [2 * r["participants"] for r in NEW]

    # The same file again: nothing changes.
    shutil.copy2(run.files[0].moved_to, folders(master, read_workbook(master).settings).inbox / "C01-11月.xlsx")
    written = master.read_bytes()
    assert not consolidate(master, as_of=AS_OF).master_written
    assert master.read_bytes() == written


def test_more_records_than_prefilled_rows_grow_the_table(plain, form, tmp_path):
    master, last = prefilled(plain, tmp_path / "m", "F2*2", empty=2)
    before = parts_of(master)
    more = [new_row(activity=f"预留行之外第{i}批", participants=20 + i) for i in range(5)]
    drop(master, form, more)
    assert consolidate(master, as_of=AS_OF).rows_added == 5
    after = parts_of(master)
    assert table_ref(after[TABLE_PART].decode()) == f"A1:M{last + 5}"
    check_table_grew(TABLE_PART, before[TABLE_PART], after[TABLE_PART])
    ledger = read_workbook(master)[LEDGER]
    assert list(ledger["_row"][-5:]) == list(range(last + 1, last + 6))
    rows = ledger_rows(master)
    for r in range(last + 1, last + 6):
        assert re.search(rf'<c r="M{r}"[^>]*><f>F{r}\*2</f></c>', rows[r]), r
