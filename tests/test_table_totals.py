"""A table's totals row (表设计 → 汇总行) over 台账 is staff's: not a record, and kept as it is.

Real files: the project's master with a table part added the way Excel stores one
(``tests/tabled.py``: 汇总 in 记录编号, ``SUBTOTAL(109,表1[参与人数])`` under 参与人数), real
forms, real commands; a hand-made submission whose table xlsxwriter writes with its totals row.
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
from macros.book.read import parse_grid, read_workbook
from macros.book.tables import Area, totals_area
from macros.book.write import FileBook
from macros.book.write_types import SheetWrite
from macros.consolidate import consolidate, folders
from macros.rollup import rollup
from macros.submission import read_submission
from macros.validate import validate

from .conftest import cli_json
from .tabled import add_table, ledger_grid
from .test_consolidate import HEADERS, fill_form, new_row

LEDGER = schema.LEDGER.name
TABLE_PART = "xl/tables/table1.xml"
AS_OF = date(2020, 11, 30)
NEW = [new_row(activity=f"汇总行下方新增第{i}批", participants=50 + i) for i in range(3)]
ROLLUP_SHEETS = [schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS, schema.UNIT_PROGRESS]


def copy_of(plain: Path, where: Path, totals: bool) -> Path:
    """The master, with (``totals``) or without a totals-row table over 台账."""
    where.mkdir()
    master = where / plain.name
    shutil.copy2(plain, master)
    if totals:
        add_table(master, totals=True)
    return master


@pytest.fixture
def tabled(plain, tmp_path) -> Path:
    return copy_of(plain, tmp_path / "tabled", totals=True)


def ledger_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    return parts[sheet_parts(parts)[LEDGER]].decode()


def row_bytes(path: Path, r: int) -> str:
    return re.search(rf'<row r="{r}"[ >].*?</row>', ledger_xml(path)).group(0)


def totals_row(path: Path) -> int:
    """The Excel row holding 汇总 (the table's last row)."""
    [r] = [i for i, line in enumerate(ledger_grid(path), start=1) if line[0] == "汇总"]
    return r


def table_bytes(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(TABLE_PART)


def comment_refs(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as zf:
        return {ref for n in zf.namelist() if re.search(r"comments\d*\.xml$", n)
                for ref in re.findall(r'<comment ref="([A-Z]+\d+)"', zf.read(n).decode())}


# --- the reader ---------------------------------------------------------------------------------


def test_the_totals_row_is_not_a_record(plain, tabled):
    r = totals_row(tabled)
    ledger = read_workbook(tabled)[LEDGER]
    assert r not in set(ledger["_row"]) and "汇总" not in set(ledger["record_id"])
    # Every other row is read as before: the same records as the master without a table.
    assert ledger.equals(read_workbook(plain)[LEDGER])


def test_validate_says_nothing_about_the_totals_row(plain, tabled):
    r = totals_row(tabled)
    code, found = cli_json("validate", str(tabled), "--as-of", AS_OF.isoformat())
    assert not [i for i in found["issues"] if i["row"] == r]
    _, without = cli_json("validate", str(plain), "--as-of", AS_OF.isoformat())
    assert (code, found) == (0 if not without["errors"] else 1, without)


@pytest.mark.parametrize("command", [["validate", "--mark"], ["report"]])
def test_marking_runs_leave_the_totals_row_as_it_is(tabled, tmp_path, command):
    r = totals_row(tabled)
    before = row_bytes(tabled, r)
    args = [*command, str(tabled), "--as-of", AS_OF.isoformat()]
    if command == ["report"]:
        args += ["--out", str(tmp_path / "通知")]
    cli_json(*args)
    # No fill, no note: the row's bytes are as staff left them, and no comment points into it.
    assert row_bytes(tabled, r) == before
    assert not {ref for ref in comment_refs(tabled) if int(re.sub(r"[A-Z]+", "", ref)) == r}
    assert table_bytes(tabled).count(b'totalsRowCount="1"') == 1


def test_the_excel_buttons_leave_the_totals_row_alone_too(plain, tabled):
    # The button path reads through xlwings: the table's totals row as Excel's client reports it.
    import xlwings as xw

    from macros import excel

    from .xlwings_book import book_payload

    payload = book_payload(tabled)
    r = totals_row(tabled)
    [table] = next(s for s in payload["sheets"] if s["name"] == LEDGER)["tables"]
    assert table["total_row_range_address"] == f"$A${r}:$L${r}"
    book = xw.Book(json=payload)
    validation = excel.validate(book, as_of=AS_OF)
    assert not [p for p in validation.problems if p.row == r]
    assert validation.problems == excel.validate(xw.Book(json=book_payload(plain)), as_of=AS_OF).problems
    position = [s["name"] for s in payload["sheets"]].index(LEDGER)
    actions = [a for a in book.json()["actions"] if a["sheet_position"] == position]
    painted = {a["start_row"] + i + 1 for a in actions if a["func"] == "setRangeColors"
               for i, row in enumerate(a["args"][0]) if any(colour != "keep" for colour in row)}
    noted = {int(re.sub(r"[$A-Z]+", "", a["args"][0])) for a in actions if a["func"] == "addNote"}
    assert r not in painted | noted


# --- consolidation: rows below it, the row and the table as they were, the same roll-up -----------


def drop(master: Path, form: Path) -> None:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    fill_form(form, inbox / "C01-11月.xlsx", NEW)


def rolled_up(master: Path) -> dict:
    book = read_workbook(master)
    return rollup(validate(book.frames, book.settings, AS_OF), book.settings, AS_OF).to_dict()


def written_rollup(master: Path) -> list[list[list]]:
    book = CalamineWorkbook.from_path(str(master))
    return [book.get_sheet_by_name(s.name).to_python() for s in ROLLUP_SHEETS]


def test_a_consolidation_adds_rows_below_it_and_rolls_up_as_without_the_table(plain, form, tmp_path):
    tabled = copy_of(plain, tmp_path / "tabled", totals=True)
    bare = copy_of(plain, tmp_path / "bare", totals=False)
    r = totals_row(tabled)
    row, table = row_bytes(tabled, r), table_bytes(tabled)
    for master in (tabled, bare):
        drop(master, form)
        run = consolidate(master, as_of=AS_OF)
        assert run.master_written and run.rows_added == 3
        [result] = run.files
        assert result.status == "accepted", result.issues

    assert row_bytes(tabled, r) == row and table_bytes(tabled) == table
    grid = ledger_grid(tabled)
    assert len(grid) == r + 3 and [line[4] for line in grid[r:]] == [n["activity"] for n in NEW]
    # The roll-up is the one of the same master without the table, computed and as written.
    assert rolled_up(tabled) == rolled_up(bare)
    assert rolled_up(tabled)["meta"]["rows_total"] == len(read_workbook(bare)[LEDGER])
    assert written_rollup(tabled) == written_rollup(bare)


def test_the_writer_keeps_the_totals_row_no_caller_holds(tabled):
    r = totals_row(tabled)
    before = row_bytes(tabled, r)
    master = FileBook(tabled)
    rows = master.read()[LEDGER].to_dict("records")
    assert r not in {row["_row"] for row in rows}
    rows.append({**NEW[0], "record_id": "C01-9999", "committee_id": "C01", "source": "手工"})
    written = master.write([SheetWrite(schema.LEDGER, rows)])
    assert written.parts_changed and not written.tables_grown
    assert row_bytes(tabled, r) == before  # 汇总 and its SUBTOTAL formula, byte for byte
    grid = ledger_grid(tabled)
    assert grid[r - 1][0] == "汇总" and grid[r][0] == "C01-9999"


# --- what counts as a totals row -----------------------------------------------------------------


def test_totals_rows_are_found_from_the_table_part():
    head = '<table xmlns="x" id="1" name="表1" displayName="表1" ref="A1:L315"'
    assert totals_area(head + ' totalsRowCount="1">') == Area(0, 315, 11, 315)
    assert totals_area(head + ' totalsRowCount="2">') == Area(0, 314, 11, 315)
    assert totals_area(head + ' totalsRowShown="0">') is None  # ticked off: no totals row now
    assert totals_area(head + ">") is None


def test_a_totals_row_beside_the_ledger_hides_no_record():
    header = [c.header for c in schema.LEDGER.columns]
    record = ["C01-0001", "2020-06-22", "C01", "P01", "体检", 10, 10, "已完成", "周敏", "否", "", ""]
    rows = [header, record, [*record[:1], "2020-06-23", *record[2:]]]
    # A table over the ledger's columns: its totals row (Excel row 3) is left out.
    _, body, numbers, _ = parse_grid(rows, schema.LEDGER, "x.xlsx", [Area(0, 3, 11, 3)])
    assert numbers == [2] and len(body) == 1
    # A table of staff's own far right of the ledger, under no header: row 3 is still a record.
    _, body, numbers, _ = parse_grid(rows, schema.LEDGER, "x.xlsx", [Area(20, 2, 22, 3)])
    assert numbers == [2, 3]


# --- a hand-made submission with a table ----------------------------------------------------------


# Also on a copied sheet read for want of a 台账 ("台账 (2)": the tables are looked up under its name).
@pytest.mark.parametrize("sheet_name", [LEDGER, f"{LEDGER} (2)"])
def test_a_hand_made_form_with_a_totals_row_is_read_without_it(plain, tmp_path, sheet_name):
    import xlsxwriter

    master = copy_of(plain, tmp_path / "master", totals=False)
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    keys = ("date", "committee_id", "project_id", "activity", "participants", "quantity", "status")
    data = [["2020-11-03", "C02", "P02", "为老年人上门理发", 15, 15, "进行中"],
            ["2020-11-05", "C02", "P05", "护理员急救技能实操培训", 8, 8, "已完成"]]
    path = inbox / "恒德里手工表.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet(sheet_name)
    # Excel's Ctrl+T with 汇总行 ticked: the label under 日期, SUBTOTAL(109, …) under the numbers.
    columns = [{"header": HEADERS[k]} for k in keys]
    columns[0]["total_string"] = "汇总"
    columns[4]["total_function"] = "sum"
    columns[5]["total_function"] = "sum"
    sheet.add_table(0, 0, len(data) + 1, len(keys) - 1, {"data": data, "columns": columns, "total_row": True})
    book.close()
    assert totals_area(zipfile.ZipFile(path).read("xl/tables/table1.xml")) == Area(0, 4, 6, 4)

    submission = read_submission(path)
    assert submission.row_numbers == [2, 3]
    run = consolidate(master, as_of=AS_OF)
    [result] = run.files
    assert result.status == "accepted" and result.rows_added == 2, result.issues
