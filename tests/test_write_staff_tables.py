"""Staff's edits and an Excel table over 台账: the table grows with the new rows, or stays as it was.

The property of ``tests/test_write_staff_edits.py`` (staff decorate the ledger in Excel, a
committee's form updates, resubmits and adds records, ``consolidate`` merges it, every staff cell
and untouched ``<row>`` survives), with one more thing staff do: 插入 → 表格 (Ctrl+T) over 台账,
made with openpyxl as Excel stores it (``xl/tables/table1.xml``, reached from the sheet by an
absolute target ``/xl/tables/table1.xml``). The table is drawn: plain, with a totals row (汇总,
SUBTOTAL), with a calculated column (A1 or structured reference); ending at the last record,
above it or two blank rows below it; starting at our header row or below it (no header row);
with or without its filter button; over staff's own column right of the headers or not.

After the merge: the table part is as it was, or — when the new rows follow it (it starts at our
header row, has no totals row and ends at or below the old last row holding a value) — differs
only in its two refs, grown to the new last row holding a value; its calculated column holds its
formula in those rows; its totals row is byte for byte as it was and is no record. Rows the table reaches below the data, holding only its calculated
column's formula, take the new records first (the formula stays). A few examples also open the
result in LibreOffice.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.table import Table, TableColumn, TableFormula, TableStyleInfo
from python_calamine import CalamineWorkbook

from macros.book.read import read_workbook
from macros.book.verify import check_table_grew

from .conftest import convert_with_libreoffice
from .test_consolidate import blank_forms  # noqa: F401
from .test_write_staff_edits import (
    DATA_SLOTS,
    EDIT,
    LEDGER,
    LOG_EDIT,
    PLAN,
    first_difference,
    merge_and_check,
    row_elements,
    sheet_xml,
)

NAME = "表1"
TOTALS_LABEL = "汇总"
CALCULATED_HEADER = "两倍人数"


@dataclass
class StaffTable:
    """A table staff made over 台账 (``add``), and what a merge must leave of it (``check``)."""

    kind: str  # "plain", "totals" (a totals row below it), "emptied" (staff cleared that row),
    # "calculated" (a calculated column)
    end: str  # "at" the last record, "above" it (records below it), "below" it (two blank rows in it)
    start: str  # "header": at our header row; "below": from the first record, no header row
    autofilter: bool
    wide: bool  # over staff's column right of our headers too
    structured: bool  # the calculated column's formula with a structured reference, else A1
    libreoffice: bool = False  # also open the result in LibreOffice (slow: a few examples)
    # Where add() put it (Excel rows, 1-based columns).
    first_row: int = 0
    data_end: int = 0  # the last row of its body
    last_row: int = 0  # data_end, or its totals row
    last_col: int = 0
    totals_row: int | None = None
    filled_col: int | None = None  # the calculated column
    participants: str = ""  # its column letter
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind in ("totals", "emptied") and self.end == "above":
            self.end = "at"  # a totals row in the middle of the records: Excel would not make one
        if self.start == "below":
            self.autofilter = False  # Excel has no filter buttons without a header row

    @property
    def ref(self) -> str:
        return f"A{self.first_row}:{get_column_letter(self.last_col)}{self.last_row}"

    def covers(self, r: int, c: int) -> bool:
        """Whether a merge of (r, c) with (r, c + 1) would reach into the table."""
        return self.first_row <= r <= self.last_row and c + 1 >= 1 and c <= self.last_col

    def add(self, ws, col: dict[str, int], staff: dict[str, int], last: int) -> StaffTable:
        right = max(col.values())
        self.participants = get_column_letter(col["participants"])
        self.first_row = 1 if self.start == "header" else 2
        self.data_end = {"at": last, "above": last - 3, "below": last + 2}[self.end]
        self.last_col = right + 1 if self.wide or self.kind == "calculated" else right
        if self.kind == "calculated":
            self.filled_col = self.last_col = right + 2
            ws.cell(1, self.filled_col).value = CALCULATED_HEADER
            first_body = self.first_row + (1 if self.start == "header" else 0)
            for r in range(first_body, self.data_end + 1):
                ws.cell(r, self.filled_col).value = "=" + self.formula_at(r)
        if self.start == "header":
            for c in range(1, self.last_col + 1):  # Excel names a blank header cell 列N
                if ws.cell(1, c).value is None:
                    ws.cell(1, c).value = f"列{c}"
            self.names = [str(ws.cell(1, c).value) for c in range(1, self.last_col + 1)]
        else:
            self.names = [f"列{c}" for c in range(1, self.last_col + 1)]
        self.last_row = self.data_end
        columns = []
        for c, name in enumerate(self.names, start=1):
            column = TableColumn(id=c, name=name)
            if self.kind == "calculated" and c == self.filled_col:
                column.calculatedColumnFormula = TableFormula(attr_text=self.formula_at(None))
            if self.kind in ("totals", "emptied") and c == col["record_id"]:
                column.totalsRowLabel = TOTALS_LABEL
            if self.kind in ("totals", "emptied") and c == col["participants"]:
                column.totalsRowFunction = "sum"
            columns.append(column)
        table = Table(displayName=NAME, name=NAME, ref=self.ref, headerRowCount=1 if self.start == "header" else 0,
                      tableColumns=columns, tableStyleInfo=TableStyleInfo(name="TableStyleMedium9", showRowStripes=True))
        if self.kind in ("totals", "emptied"):
            self.totals_row = self.last_row = self.data_end + 1
            table.ref, table.totalsRowCount = self.ref, 1
            if self.kind == "totals":  # else cleared by staff, 汇总行 still ticked
                ws.cell(self.totals_row, col["record_id"]).value = TOTALS_LABEL
                ws.cell(self.totals_row, col["participants"]).value = f"=SUBTOTAL(109,{NAME}[参与人数])"
        if self.autofilter:
            table.autoFilter = openpyxl.worksheet.filters.AutoFilter(
                ref=f"A{self.first_row}:{get_column_letter(self.last_col)}{self.data_end}")
        ws.add_table(table)
        return self

    def formula_at(self, r: int | None) -> str:
        """The calculated column's formula in row ``r`` (None: as the table part stores it, for
        its first body row), without ``=``."""
        if self.structured:
            return f"{NAME}[[#This Row],[参与人数]]*2"
        first_body = self.first_row + (1 if self.start == "header" else 0)
        return f"{self.participants}{r or first_body}*2"

    # ------------------------------------------------------------ after the merge

    def check(self, given_in: Path, out: Path, added: int) -> None:
        [part] = [n for n in zipfile.ZipFile(given_in).namelist() if n.startswith("xl/tables/")]
        old, new = zipfile.ZipFile(given_in).read(part), zipfile.ZipFile(out).read(part)
        ws_in = openpyxl.load_workbook(given_in)[LEDGER]
        old_last = self.last_taken(ws_in)
        new_last = old_last + added  # the new records follow the last row holding anything
        grows = (self.totals_row is None and self.start == "header" and added > 0
                 and old_last <= self.data_end < new_last)

        event(f"table {self.kind}, ends {self.end}, starts {self.start}: {'grows' if grows else 'stays'}")
        if grows:
            assert new == self.grown(old, new_last), first_difference(old.decode(), new.decode())
            check_table_grew(part, old, new)
        else:
            assert new == old, (self, old_last, new_last, *first_difference(old.decode(), new.decode()))
        wb_out = openpyxl.load_workbook(out)
        ws_out = wb_out[LEDGER]
        want = self.ref if not grows else re.sub(r"\d+$", str(new_last), self.ref)
        assert ws_out.tables[NAME].ref == want

        added_rows = range(old_last + 1, new_last + 1)
        assert_in_order(sheet_xml(out, LEDGER))
        if self.filled_col is not None:
            first_body = self.first_row + (1 if self.start == "header" else 0)
            for r in added_rows:
                # kept in the table's rows below the data (filled in advance), filled where it grew
                kept = first_body <= r <= self.data_end
                got = ws_out.cell(r, self.filled_col).value
                assert got == ("=" + self.formula_at(r) if grows or kept else None), (r, got)

        if self.totals_row is not None:
            r = self.totals_row
            assert row_elements(sheet_xml(out, LEDGER)).get(r) == row_elements(sheet_xml(given_in, LEDGER)).get(r)
            ledger = read_workbook(out)[LEDGER]
            assert r not in set(ledger["_row"]) and TOTALS_LABEL not in set(ledger["record_id"])
            assert ws_out.cell(r, 1).value == (TOTALS_LABEL if self.kind == "totals" else None)

        if self.libreoffice:
            self.check_libreoffice(out, grows, new_last)

    def last_taken(self, ws) -> int:
        """The last row holding anything, or the table's totals row (a record there would be none);
        a row of the table's body holding only its calculated column's formula (Excel filled it
        into the rows the table reaches below the data) is free: new records go into it."""
        first_body = self.first_row + (1 if self.start == "header" else 0)
        held: dict[int, set[int]] = {}
        for (r, c), cell in ws._cells.items():
            if cell.value is not None:
                held.setdefault(r, set()).add(c)
        last = max(r for r, cols in held.items()
                   if not (cols == {self.filled_col} and first_body <= r <= self.data_end
                           and str(ws.cell(r, self.filled_col).value).startswith("=")))
        return max(last, self.totals_row or 0)

    def grown(self, old: bytes, new_last: int) -> bytes:
        """``old`` with the table's ref, and its filter's when it ended with it, down to ``new_last``."""
        text = old.decode()
        table = re.search(r"<table\b[^>]*>", text)
        tag = re.sub(r'(\sref="[A-Z]+\d+:[A-Z]+)\d+"', rf'\g<1>{new_last}"', table.group(0), count=1)
        text = text[:table.start()] + tag + text[table.end():]
        if self.autofilter:
            text = re.sub(rf'(<autoFilter ref="[A-Z]+\d+:[A-Z]+){self.data_end}"', rf'\g<1>{new_last}"', text, count=1)
        return text.encode()

    def check_libreoffice(self, out: Path, grows: bool, new_last: int) -> None:
        """LibreOffice opens the result and sees the same records (and the table, where it was)."""
        lo = out.parent / "lo"
        lo.mkdir()
        converted = convert_with_libreoffice(out, "xlsx", lo)
        ours, theirs = read_workbook(out)[LEDGER], read_workbook(converted)[LEDGER]
        assert list(theirs["record_id"]) == list(ours["record_id"])
        assert list(theirs["activity"]) == list(ours["activity"])
        grid = CalamineWorkbook.from_path(str(converted)).get_sheet_by_name(LEDGER).to_python()
        if self.kind == "totals":
            assert grid[self.totals_row - 1][0] == TOTALS_LABEL
        tables = [n for n in zipfile.ZipFile(converted).namelist() if n.startswith("xl/tables/")]
        assert tables, "LibreOffice kept the table"
        ref = re.search(rb'<table\b[^>]*\sref="([^"]+)"', zipfile.ZipFile(converted).read(tables[0])).group(1)
        assert ref.decode().endswith(str(new_last if grows else self.last_row)), ref


def assert_in_order(xml: str) -> None:
    """Rows ascending, each row's cells by column, as Excel requires (else it repairs the file,
    dropping what it cannot place): the calculated column's cells go in among staff's."""
    rows = [int(r) for r in re.findall(r'<row\b[^>]*?\sr="(\d+)"', xml)]
    assert rows == sorted(set(rows)), "rows out of order"
    for row in re.finditer(r'<row\b[^>]*?\sr="(\d+)"[^>]*?(?<!/)>(.*?)</row>', xml, re.S):
        cols = [column_index_from_string(c) for c in re.findall(r'<c\b[^>]*?\sr="([A-Z]+)\d+"', row.group(2))]
        assert cols == sorted(set(cols)), (row.group(1), cols)


TABLE = st.builds(StaffTable, kind=st.sampled_from(["plain", "totals", "emptied", "calculated"]),
                  end=st.sampled_from(["at", "at", "above", "below"]), start=st.sampled_from(["header"] * 3 + ["below"]),
                  autofilter=st.booleans(), wide=st.booleans(), structured=st.booleans())

# A few examples, always run, that LibreOffice also opens: a table grown (with a calculated
# column, new rows in staff's formatted blank rows), a totals row with records below it; and
# a totals row staff emptied (records once went into it, where no reader saw them).
GROWN = dict(gap=False, headed=True, edits=[("row_style", 10, ("FFF2CC", 24, False, False, 0)),
                                            ("value", 3, "headed", "已核对")],
             log_edits=[], plan=[(0, {"quantity": 3, "participants": None, "date": None, "note": None,
                                      "activity": None}), (1, None)], added=2, fill_down=None)


# TF_EXAMPLES=200 for a longer hunt (the suite keeps a few: each example is a real consolidation).
@settings(max_examples=int(os.environ.get("TF_EXAMPLES", 15)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(gap=st.booleans(), headed=st.sampled_from([False, True, "between"]), edits=st.lists(EDIT, max_size=10),
       log_edits=st.lists(LOG_EDIT, max_size=3), plan=PLAN, added=st.integers(0, 3),
       fill_down=st.none() | st.integers(0, DATA_SLOTS - 1), table=TABLE)
@example(**GROWN, table=StaffTable("calculated", "at", "header", True, True, True, libreoffice=True))
@example(**{**GROWN, "added": 3, "gap": True},
         table=StaffTable("totals", "below", "header", True, False, False, libreoffice=True))
@example(**GROWN, table=StaffTable("emptied", "at", "header", False, True, False))
# Two rows of the table below the data, Excel's calculated formula in them: three records fill
# them and one more row the table grows over.
@example(gap=False, headed=False, edits=[], log_edits=[], plan=[], added=3, fill_down=None,
         table=StaffTable("calculated", "below", "header", False, False, False))
def test_staff_tables_survive_a_consolidation(demo_master, blank_forms, gap, headed, edits, log_edits,  # noqa: F811
                                             plan, added, fill_down, table):
    merge_and_check(demo_master, blank_forms, gap, headed, edits, log_edits, plan, added, fill_down, table)
