"""The workbook is sacred: whatever staff did to 台账 and 变更记录 in Excel survives a consolidation.

A property test over real files. Staff decorate a copy of the demo master the way people do in
Excel (openpyxl stands in for Excel: this is the *input*): notes in columns without a header
(right of the headers, and in a gap column between headers), a column of their own with a
header, blank or space-padded cells in our columns, fills, number formats and fonts on cells and
whole rows, row heights, hidden rows, formatted blank rows below the data, a formula, a comment
and a hyperlink in their columns; on 变更记录, formatted blank rows and notes beside the log.
Then a committee's form updates some records, resubmits others unchanged and adds new ones, and
``consolidate`` merges it. Read back independently (openpyxl, calamine, the sheet XML), every
cell the merge had no reason to touch is as it was — value, formula, format, row height, hidden
flag, the ``<row>`` element byte for byte — and what the merge wrote is there, in staff's formats.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.styles.numbers import is_date_format
from openpyxl.utils.datetime import to_excel
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.ooxml import sheet_parts
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders

from .test_consolidate import blank_forms, fill_form, form_c01, inbox, ledger_of, new_row  # noqa: F401

LEDGER, LOG = schema.LEDGER.name, schema.CHANGES.name
KEYS = [c.key for c in schema.LEDGER.columns]
HEADER = {c.key: c.header for c in schema.LEDGER.columns}
FORM_KEYS = ("record_id", "date", "project_id", "activity", "participants", "quantity", "status", "reporter",
             "in_bulletin", "note")
BLANKABLE = ("participants", "reporter", "in_bulletin", "note")  # optional: a blank keeps the record valid
TEXT_KEYS = ("activity", "reporter", "note")
NUMBER_KEYS = ("participants", "quantity")
STAFF_HEADER = "核对人"  # a column of staff's own, with a header: read and written back as an extra
FORM_NAME = "C01-更正与新增.xlsx"

FILL_COLOURS = ("FFF2CC", "C6EFCE", "DDEBF7")
NUMBER_FORMATS = ("0.00", "#,##0", "@", "yyyy/m/d", '0"人"', "yyyy年m月d日")
ROW_ATTRS = ("ht", "customHeight", "hidden", "s", "customFormat", "outlineLevel")

# Row slots (resolved against the master): 0–7 C01's first records (what the form updates or
# resubmits), 8–9 two other committees' records, 10–13 blank rows below the data (where new
# records go), 14 the header row (formats only).
C01_SLOTS, DATA_SLOTS, ALL_SLOTS, HEADER_SLOT = 8, 10, 14, 14
# Staff columns: the gap between headers, a headed one, two without a header right of the headers.
STAFF_COLS = ("gap", "headed", "right", "far")

WORDS = "核对见纸质台账已电话回访补录 ab1"
TEXT = st.text(alphabet=WORDS, min_size=1, max_size=8).filter(lambda s: s.strip() == s and s)
PADDED = st.tuples(st.integers(0, 2), TEXT, st.integers(0, 2)).map(lambda t: " " * t[0] + t[1] + " " * t[2])
STAFF_VALUE = st.one_of(
    PADDED, st.integers(-5, 10**6), st.floats(0, 1e6, allow_nan=False).map(lambda x: round(x, 2)),
    st.dates(date(2019, 1, 1), date(2021, 12, 31)), st.just("=FORMULA"), st.just(" "), st.just("  "),
    st.booleans(), st.sampled_from(["0012", "#N/A", "RICH"]),
)
FILL = st.none() | st.sampled_from(FILL_COLOURS)
NUMBER_FORMAT = st.none() | st.sampled_from(NUMBER_FORMATS)

EDIT = st.one_of(
    st.tuples(st.just("value"), st.integers(0, ALL_SLOTS - 1), st.sampled_from(STAFF_COLS), STAFF_VALUE),
    st.tuples(st.just("comment"), st.integers(0, ALL_SLOTS - 1), st.sampled_from(STAFF_COLS), TEXT),
    st.tuples(st.just("link"), st.integers(0, ALL_SLOTS - 1), st.sampled_from(STAFF_COLS), TEXT),
    st.tuples(st.just("blank"), st.integers(0, DATA_SLOTS - 1), st.sampled_from(BLANKABLE),
              st.sampled_from([None, " ", "  "])),
    st.tuples(st.just("pad"), st.integers(0, DATA_SLOTS - 1), st.sampled_from(TEXT_KEYS),
              st.sampled_from([(1, 0), (0, 1), (2, 2)])),
    st.tuples(st.just("cell_style"), st.integers(0, HEADER_SLOT), st.sampled_from([*KEYS, *STAFF_COLS]),
              st.tuples(FILL, NUMBER_FORMAT, st.booleans())),
    st.tuples(st.just("row_style"), st.integers(0, HEADER_SLOT),
              st.tuples(FILL, st.none() | st.sampled_from([9, 24, 40]), st.booleans(), st.booleans(),
                        st.integers(0, 1))),
    st.tuples(st.just("merge"), st.integers(0, ALL_SLOTS - 1), st.sampled_from(STAFF_COLS)),
    st.tuples(st.just("column_style"), st.just(0), st.sampled_from([*KEYS, *STAFF_COLS]), FILL),
)
LOG_EDIT = st.one_of(
    st.tuples(st.just("row_style"), st.integers(1, 7),
              st.tuples(FILL, st.none() | st.sampled_from([24, 36]), st.booleans())),
    st.tuples(st.just("cell_style"), st.integers(1, 7), st.integers(1, 8), st.tuples(FILL, NUMBER_FORMAT)),
    st.tuples(st.just("note"), st.integers(1, 9), st.integers(9, 11), PADDED),
)
UPDATE = st.fixed_dictionaries({
    "quantity": st.none() | st.integers(1, 99),
    "participants": st.none() | st.integers(0, 500),
    "date": st.none() | st.dates(date(2020, 1, 1), date(2020, 11, 30)),
    "note": st.none() | TEXT,
    "activity": st.none() | TEXT,
}).filter(lambda u: any(v is not None for v in u.values()))
PLAN = st.lists(st.tuples(st.integers(0, C01_SLOTS - 1), st.none() | UPDATE), max_size=4,
                unique_by=lambda t: t[0])


@dataclass
class Layout:
    """Where things are in the master staff decorated (1-based columns, as openpyxl counts)."""

    col: dict[str, int]  # contract key → column
    staff: dict[str, int]  # staff slot → column
    rows: list[int]  # row slot → Excel row
    last: int  # last ledger row holding a value before the edits
    contract_cols: set[int] = field(default_factory=set)
    fill_down: range = range(0)  # rows of a formula staff filled down 完成数量
    table: object = None  # an Excel table staff made over 台账 (tests/test_write_staff_tables.py)


# ---------------------------------------------------------------- staff at work (the input file)


def decorate(base: Path, target: Path, gap: bool, headed: bool | str, edits: list, log_edits: list,
             table=None) -> Layout:
    """Staff's edits, made with openpyxl as Excel would make them, saved as ``target``.

    ``table``: made into an Excel table over 台账 after the edits (``table.add``), before the
    merges (Excel merges no cell inside a table)."""
    wb = openpyxl.load_workbook(base)
    ws = wb[LEDGER]
    first = [ws.cell(r, 3).value for r in range(1, ws.max_row + 1)]
    c01 = [r for r, v in enumerate(first, start=1) if v == "C01"][:C01_SLOTS]
    last = ws.max_row
    rows = [*c01, 2, 3, *range(last + 1, last + 5), 1]
    if gap or headed == "between":  # the last two columns one to the right: a column between headers
        ws.move_range(f"K1:L{last}", cols=1)
    col = {c.value and next(k for k, h in HEADER.items() if h == c.value): c.column for c in ws[1] if c.value}
    right = max(col.values())
    staff = {"gap": 11 if gap else right + 5, "headed": right + 1, "right": right + 3, "far": right + 6}
    if headed == "between":  # staff's own headed column inserted between ours
        staff["headed"] = 11
    if headed:
        ws.cell(1, staff["headed"]).value = STAFF_HEADER
    merges = []
    for edit in edits:
        kind, slot = edit[0], edit[1]
        r = rows[slot]
        if kind == "value":
            _, _, where, value = edit
            if value == "=FORMULA":
                value = f"=SUM({openpyxl.utils.get_column_letter(col['participants'])}{r},1)"
            elif value == "RICH":  # runs of their own formatting: a rich-text shared string
                value = CellRichText([TextBlock(InlineFont(b=True), "已核对"), "（电话）"])
            ws.cell(r, staff[where]).value = value
        elif kind == "comment":
            _, _, where, text = edit
            cell = ws.cell(r, staff[where])
            cell.value = cell.value if cell.value is not None else text
            cell.comment = Comment(f"批注：{text}", "周敏")
        elif kind == "link":
            _, _, where, text = edit
            cell = ws.cell(r, staff[where])
            cell.value = cell.value if cell.value is not None else f"照片{text}"
            cell.hyperlink = f"https://example.org/photos/{r}"
        elif kind == "blank":
            _, _, key, value = edit
            ws.cell(r, col[key]).value = value
        elif kind == "pad":
            _, _, key, (before, after) = edit
            cell = ws.cell(r, col[key])
            if isinstance(cell.value, str) and cell.value.strip():
                cell.value = " " * before + cell.value + " " * after
        elif kind == "cell_style":
            _, _, where, (fill, number_format, bold) = edit
            cell = ws.cell(r, col[where] if where in col else staff[where])
            if slot < DATA_SLOTS and where in NUMBER_KEYS and number_format and is_date_format(number_format):
                number_format = "0.00"  # a record's number shown as a date would read as one
            if slot < DATA_SLOTS and where == "date" and number_format and not is_date_format(number_format):
                number_format = "yyyy/m/d"
            if fill:
                cell.fill = PatternFill("solid", fgColor=fill)
            if number_format:
                cell.number_format = number_format
            if bold:
                cell.font = Font(bold=True, color="FF0000")
        elif kind == "row_style":
            _, _, (fill, height, hidden, bold, outline) = edit
            dim = ws.row_dimensions[r]
            if fill:
                dim.fill = PatternFill("solid", fgColor=fill)
            if bold:
                dim.font = Font(bold=True)
            if height:
                dim.height = height
            if hidden:
                dim.hidden = True
            if outline:
                dim.outline_level = outline
        elif kind == "merge":
            merges.append((r, staff[edit[2]]))
        elif kind == "column_style" and edit[3]:  # a whole column formatted: <col style>
            letter = openpyxl.utils.get_column_letter(col[edit[2]] if edit[2] in col else staff[edit[2]])
            ws.column_dimensions[letter].fill = PatternFill("solid", fgColor=edit[3])
    placed = table.add(ws, col, staff, last) if table is not None else None
    for r, c in merges:  # last: the cell a merge covers is no longer staff's to type in
        if placed is not None and placed.covers(r, c):
            continue
        if c + 1 not in col.values() and ws.cell(r, c + 1).value is None and not any(
                ws.cell(r, x).coordinate in m for m in ws.merged_cells.ranges for x in (c, c + 1)):
            ws.merge_cells(start_row=r, start_column=c, end_row=r, end_column=c + 1)
    log = wb[LOG]
    for edit in log_edits:
        kind, r = edit[0], edit[1]
        if kind == "row_style":
            fill, height, hidden = edit[2]
            if fill:
                log.row_dimensions[r].fill = PatternFill("solid", fgColor=fill)
            if height:
                log.row_dimensions[r].height = height
            if hidden:
                log.row_dimensions[r].hidden = True
        elif kind == "cell_style":
            c, (fill, number_format) = edit[2], edit[3]
            if fill:
                log.cell(r, c).fill = PatternFill("solid", fgColor=fill)
            if number_format:
                log.cell(r, c).number_format = number_format
        else:
            log.cell(r, edit[2]).value = edit[3]
    wb.save(target)
    return Layout(col, staff, rows, last, set(col.values()), table=placed)


# ---------------------------------------------------------------- independent readers


def sheet_xml(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read(sheet_parts({n: z.read(n) for n in z.namelist()})[name]).decode()


def row_elements(xml: str) -> dict[int, str]:
    """Excel row → its ``<row>`` element as the file holds it."""
    return {int(re.search(r'\br="(\d+)"', m.group(1)).group(1)): m.group(0)
            for m in re.finditer(r"<row\b([^>]*?)(?:/>|>.*?</row>)", xml, re.S)}


def row_attrs(element: str) -> dict[str, str]:
    attrs = dict(re.findall(r'([\w:]+)="([^"]*)"', re.match(r"<row\b([^>]*?)/?>", element).group(1)))
    return {k: attrs.get(k) for k in ROW_ATTRS}


def element(xml: str, tag: str) -> str:
    m = re.search(rf"<{tag}\b.*?(?:</{tag}>|/>)", xml, re.S)
    return m.group(0) if m else ""


def value_at(ws, r: int, c: int) -> object:
    """A cell's value without creating the cell (openpyxl's ``ws.cell`` adds one)."""
    cell = ws._cells.get((r, c))
    return None if cell is None else cell.value


def first_difference(a: str, b: str) -> tuple[str, str]:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return a[max(0, i - 60):i + 80], b[max(0, i - 60):i + 80]


def look(cell) -> tuple:
    """What a person sees of a cell's format: fill, font, number format."""
    fill = cell.fill.fgColor.rgb if cell.fill is not None and cell.fill.fill_type else None
    font = cell.font
    return fill, bool(font.b), bool(font.i), font.color.rgb if font.color is not None else None, cell.number_format


def same_text(a: object, b: object) -> bool:
    """Equal as the reader sees them: text trimmed, blank == None, 12 == 12.0, a date is its day."""
    def norm(v):
        if isinstance(v, str):
            return v.strip() or None
        if isinstance(v, datetime):
            return v.date() if (v.hour, v.minute, v.second) == (0, 0, 0) else v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v
    return norm(a) == norm(b)


# ---------------------------------------------------------------- the property


def merge_and_check(base: Path, forms: Path, gap: bool, headed: bool | str, edits: list, log_edits: list,
                    plan: list, added: int, fill_down: int | None = None, table=None) -> None:
    """``table``: a table staff made over 台账 (``table.add`` places it, ``table.check`` checks it)."""
    with tempfile.TemporaryDirectory() as tmp:
        master = Path(tmp) / "healthbook.xlsx"
        layout = decorate(base, master, gap, headed, edits, log_edits, table)
        if fill_down is not None:  # 完成数量 = 参与人数, filled down three rows in Excel
            layout.fill_down = range(layout.rows[fill_down], layout.rows[fill_down] + 3)
            letter = openpyxl.utils.get_column_letter
            fill_down_as_excel_saves_it(master, letter(layout.col["quantity"]), layout.fill_down,
                                        f"{letter(layout.col['participants'])}{layout.fill_down[0]}")
        before = master.read_bytes()
        shutil.copy2(master, Path(tmp) / "input.xlsx")
        given_in = Path(tmp) / "input.xlsx"
        wb_in = read_workbook(master)
        ledger = wb_in[LEDGER]
        by_id = {rec["record_id"]: rec for rec in ledger.to_dict("records")}
        ids = {row: rid for rid, row in zip(ledger["record_id"], ledger["_row"])}

        # The committee's form: updates, unchanged resubmissions, new rows.
        sent, updated = [], {}
        for slot, change in plan:
            rid = ids[layout.rows[slot]]
            row = {k: _plain(by_id[rid][k]) for k in FORM_KEYS}
            if change is not None:
                if change["quantity"] is not None:
                    row["quantity"] = (row["quantity"] or 0) + change["quantity"]
                for k in ("participants", "date"):
                    if change[k] is not None:
                        row[k] = change[k]
                for k in ("note", "activity"):
                    # A new date and a new activity under one number is refused as another record
                    # (test_consolidate_adversary): an update changes one of them.
                    if k == "activity" and change["date"] is not None:
                        continue
                    if change[k] is not None and change[k] != row[k]:
                        row[k] = change[k]
                if any(not same_text(row[k], by_id[rid][k]) for k in FORM_KEYS):
                    updated[rid] = row
            sent.append(row)
        new = [{"date": date(2020, 11, 18), "project_id": "P06", "activity": f"新增活动第{i}条", "participants": 40 + i,
                "quantity": 40 + i, "status": "进行中", "reporter": "周敏", "in_bulletin": "否"} for i in range(added)]
        sent += new
        if sent:
            inbox = folders(master, wb_in.settings).inbox
            inbox.mkdir()
            fill_form(form_c01(forms), inbox / FORM_NAME, sent)
        run = consolidate(master, refresh=False)
        assert run.rows_updated == len(updated) and run.rows_added == added, run.to_dict()
        if not updated and not added:
            assert master.read_bytes() == before  # nothing to merge: the file is left alone
            return
        assert run.master_written

        check_ledger(given_in, master, layout, updated, new, headed)
        check_log(given_in, master, len(run.changes), set(updated) | {c.record_id for c in run.changes})
        if layout.table is not None:
            layout.table.check(given_in, master, len(new))

        # The same form again (a move that failed, a file dropped twice): the master stays as it is.
        written = master.read_bytes()
        shutil.copy2(run.files[0].moved_to, inbox / FORM_NAME)
        again = consolidate(master, refresh=False)
        assert (again.rows_updated, again.rows_added, again.master_written) == (0, 0, False), again.to_dict()
        assert master.read_bytes() == written


def _plain(value: object) -> object:
    if value is None or value != value:  # NaN/NaT
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def check_ledger(given_in: Path, out: Path, layout: Layout, updated: dict[str, dict], new: list[dict],
                 headed: bool | str) -> None:
    ws_in = openpyxl.load_workbook(given_in)[LEDGER]
    ws_out = openpyxl.load_workbook(out)[LEDGER]
    xml_in, xml_out = sheet_xml(given_in, LEDGER), sheet_xml(out, LEDGER)
    rows_in, rows_out = row_elements(xml_in), row_elements(xml_out)
    id_col = layout.col["record_id"]
    row_of = {value.strip(): r for r in range(2, ws_in.max_row + 1)
              if isinstance(value := value_at(ws_in, r, id_col), str)}

    # New records go right below the last row holding anything, staff's notes included.
    last_valued = max(r for (r, _), c in ws_in._cells.items() if c.value is not None)
    if layout.table is not None:  # or below a table's totals row, even one staff emptied
        last_valued = layout.table.last_taken(ws_in)
    added_at = list(range(last_valued + 1, last_valued + 1 + len(new)))
    expected: dict[int, dict] = {row_of[rid]: {**row, "committee_id": "C01", "source": FORM_NAME}
                                 for rid, row in updated.items()}
    for r, row in zip(added_at, new):
        expected[r] = {**row, "committee_id": "C01", "source": FORM_NAME}
    for r, row in expected.items():
        for key, value in row.items():
            got = value_at(ws_out, r, layout.col[key])
            if isinstance(got, datetime) and isinstance(value, (int, float)):  # staff's date format
                got = to_excel(got)
            if isinstance(got, str) and got.startswith("=") and got == value_at(ws_in, r, layout.col[key]):
                continue  # staff's formula, which the merge had no reason to write over
            if key == "record_id" and r in added_at:
                assert isinstance(got, str) and got.startswith("C01-"), (r, got)
                continue
            assert same_text(got, value), (f"row {r} {HEADER[key]}", got, value)

    # Every cell: as it was, unless the merge wrote it (a contract column of a row it touched).
    cells = set(ws_in._cells) | set(ws_out._cells)
    filled = layout.table.filled_col if layout.table is not None else None
    for r, c in sorted(cells):
        if c == filled and r in added_at:
            continue  # a table's calculated column, filled into the rows it grew over: table.check
        a, b = ws_in._cells.get((r, c)), ws_out._cells.get((r, c))
        va, vb = (a.value if a else None), (b.value if b else None)
        where = f"{LEDGER}!{openpyxl.utils.get_column_letter(c)}{r}"
        written = r in expected and c in layout.contract_cols
        if not written:
            assert va == vb, (where, va, vb)
            if a is not None or b is not None:
                assert look(a or ws_in.cell(r, c)) == look(b or ws_out.cell(r, c)), where
            continue
        if same_text(va, vb):
            assert va == vb or va is None or vb is None, (where, "kept as typed", va, vb)
        if a is not None:  # the format of a cell the merge wrote stays (staff's, or none)
            fa, fb = look(a), look(b)
            assert fa[:4] == fb[:4], (where, fa, fb)
            date_needed = isinstance(vb, datetime) and not is_date_format(fa[4])
            # a number takes its column's format over General, or over a date format (it would read as a date)
            number_needed = isinstance(vb, (int, float)) and (fa[4] == "General" or is_date_format(fa[4]))
            if not (date_needed or number_needed):
                assert fa[4] == fb[4], (where, fa, fb)
        elif a is None and vb is not None and row_attrs(rows_in.get(r, "<row>"))["customFormat"] in ("1", "true"):
            row_fill = ws_in.row_dimensions[r].fill
            if row_fill is not None and row_fill.fill_type:
                assert look(b)[0] == row_fill.fgColor.rgb, (where, "takes its row's format")
        elif a is None and vb is not None:
            letter = openpyxl.utils.get_column_letter(c)
            col_fill = ws_in.column_dimensions[letter].fill if letter in ws_in.column_dimensions else None
            if col_fill is not None and col_fill.fill_type:
                assert look(b)[0] == col_fill.fgColor.rgb, (where, "takes its column's format")

    # Rows: height, hidden flag and style stay everywhere; rows the merge did not touch, byte for byte.
    for r, text in rows_in.items():
        assert r in rows_out, (LEDGER, r, "row lost")
        assert row_attrs(rows_out[r]) == row_attrs(text), (LEDGER, r)
        # A formula filled down from a cell the merge wrote over is unshared (each cell its own).
        master = layout.fill_down[0] if layout.fill_down else None
        unshared = master in expected and not str(ws_out.cell(master, layout.col["quantity"]).value).startswith("=")
        if r not in expected and not (unshared and r in layout.fill_down):
            assert rows_out[r] == text, (LEDGER, r, *first_difference(text, rows_out[r]))
    assert set(rows_out) - set(rows_in) <= set(expected), sorted(set(rows_out) - set(rows_in))
    for tag in ("hyperlinks", "legacyDrawing", "mergeCells", "dataValidations", "cols"):
        assert element(xml_in, tag) == element(xml_out, tag), tag

    # calamine, a second reader: the same grid outside what the merge wrote.
    grid_in = CalamineWorkbook.from_path(str(given_in)).get_sheet_by_name(LEDGER).to_python(skip_empty_area=False)
    grid_out = CalamineWorkbook.from_path(str(out)).get_sheet_by_name(LEDGER).to_python(skip_empty_area=False)
    for i, line in enumerate(grid_in):
        if i + 1 in expected:
            continue
        assert grid_out[i][:len(line)] == line, (LEDGER, i + 1)
    if headed:
        assert ws_out.cell(1, layout.staff["headed"]).value == STAFF_HEADER
    assert_dimension_covers(ws_out, xml_out)


def assert_dimension_covers(ws, xml: str) -> None:
    """The sheet's <dimension> reaches every cell holding a value (readers that trust it, such as
    openpyxl's read-only mode, see nothing beyond it)."""
    last = re.search(r'<dimension ref="(?:[A-Z]+\d+:)?([A-Z]+)(\d+)"', xml)
    cells = [rc for rc, cell in ws._cells.items() if cell.value is not None]
    assert max(r for r, _ in cells) <= int(last.group(2)), last.group(0)
    assert max(c for _, c in cells) <= openpyxl.utils.column_index_from_string(last.group(1)), last.group(0)


def check_log(given_in: Path, out: Path, n_changes: int, record_ids: set[str]) -> None:
    ws_in = openpyxl.load_workbook(given_in)[LOG]
    ws_out = openpyxl.load_workbook(out)[LOG]
    rows_in, rows_out = row_elements(sheet_xml(given_in, LOG)), row_elements(sheet_xml(out, LOG))
    assert_dimension_covers(ws_out, sheet_xml(out, LOG))
    last_valued = max(r for (r, _), c in ws_in._cells.items() if c.value is not None)
    lines = range(last_valued + 1, last_valued + 1 + n_changes)
    assert all(value_at(ws_out, r, 3) in record_ids for r in lines), "audit lines below the last one"
    assert all(isinstance(value_at(ws_out, r, 1), datetime) for r in lines)
    assert value_at(ws_out, lines.stop, 1) is None
    for r, c in sorted(set(ws_in._cells) | set(ws_out._cells)):
        a, b = ws_in._cells.get((r, c)), ws_out._cells.get((r, c))
        where = f"{LOG}!{openpyxl.utils.get_column_letter(c)}{r}"
        if r in lines and c <= len(schema.CHANGES.columns):
            if a is not None and a.has_style:
                fa, fb = look(a), look(b)
                assert fa[:4] == fb[:4], (where, fa, fb)
            continue
        assert (a.value if a else None) == (b.value if b else None), where
        if a is not None or b is not None:
            assert look(a or ws_in.cell(r, c)) == look(b or ws_out.cell(r, c)), where
    for r, text in rows_in.items():
        assert row_attrs(rows_out[r]) == row_attrs(text), (LOG, r)
        if r not in lines:
            assert rows_out[r] == text, (LOG, r, *first_difference(text, rows_out[r]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gap=st.booleans(), headed=st.sampled_from([False, True, "between"]), edits=st.lists(EDIT, max_size=14),
       log_edits=st.lists(LOG_EDIT, max_size=5), plan=PLAN, added=st.integers(0, 3),
       fill_down=st.none() | st.integers(0, DATA_SLOTS - 1))
def test_staff_edits_survive_a_consolidation(demo_master, blank_forms, gap, headed, edits, log_edits,  # noqa: F811
                                             plan, added, fill_down):
    merge_and_check(demo_master, blank_forms, gap, headed, edits, log_edits, plan, added, fill_down)


# ---------------------------------------------------------------- what the property found


def update_c01_0002(folder: Path, forms: Path, master: Path, **changes) -> None:
    """C01's form sends C01-0002 back with ``changes``, and consolidation merges it."""
    old = ledger_of(master).set_index("record_id").loc["C01-0002"]
    row = {k: _plain(old[k]) for k in FORM_KEYS if k != "record_id"}
    fill_form(form_c01(forms), folder / FORM_NAME, [{**row, "record_id": "C01-0002", **changes}])
    run = consolidate(master, refresh=False)
    assert run.master_written and run.rows_updated == 1


def column_of(ws, key: str) -> int:
    return 1 + [c.value for c in ws[1]].index(HEADER[key])


def test_a_cell_holding_only_spaces_keeps_them_in_rows_the_merge_updates_or_leaves(
        master_copy, inbox, blank_forms):  # noqa: F811
    """Staff "clear" a cell by typing a space; the reader sees a blank, and a blank is what the
    merge gives back: the space stays, and the row the merge did not touch stays byte for byte."""
    ledger = ledger_of(master_copy).set_index("record_id")
    updated, left = int(ledger.loc["C01-0002", "_row"]), int(ledger.loc["C01-0001", "_row"])
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[LEDGER]
    ws.cell(updated, column_of(ws, "participants")).value = " "
    ws.cell(left, column_of(ws, "note")).value = "  "
    ws.cell(left, column_of(ws, "activity")).value = f" {ws.cell(left, column_of(ws, 'activity')).value}"
    wb.save(master_copy)
    rows_before = row_elements(sheet_xml(master_copy, LEDGER))

    update_c01_0002(inbox, blank_forms, master_copy, quantity=9)

    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    assert ws.cell(updated, column_of(ws, "quantity")).value == 9
    assert ws.cell(updated, column_of(ws, "participants")).value == " "
    assert ws.cell(left, column_of(ws, "note")).value == "  "
    assert row_elements(sheet_xml(master_copy, LEDGER))[left] == rows_before[left]


def test_staff_formulas_and_notes_on_rows_the_reader_sees_as_blank_stay_with_their_row_format(
        master_copy, inbox, blank_forms):  # noqa: F811
    """Below the data, staff filled a formula down their own headed column (it shows "" until a
    record is typed beside it) and left a note in a column without a header on a taller, hidden
    row. The reader sees those rows as blank; the merge adds a record below them: they stay."""
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[LEDGER]
    last = ws.max_row
    own = ws.max_column + 1
    ws.cell(1, own).value = STAFF_HEADER
    participants = openpyxl.utils.get_column_letter(column_of(ws, "participants"))
    for r in (last + 1, last + 2):
        ws.cell(r, own).value = f'=IF({participants}{r}>100,"大型活动","")'
    ws.cell(last + 3, own + 3).value = "以下为12月补录"
    ws.row_dimensions[last + 3].height = 30
    ws.row_dimensions[last + 3].hidden = True
    wb.save(master_copy)
    rows_before = row_elements(sheet_xml(master_copy, LEDGER))

    fill_form(form_c01(blank_forms), inbox / FORM_NAME, [new_row(activity="12月体检")])
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_added == 1

    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    assert ws.cell(last + 1, own).value == f'=IF({participants}{last + 1}>100,"大型活动","")'
    assert ws.cell(last + 2, own).value == f'=IF({participants}{last + 2}>100,"大型活动","")'
    assert ws.cell(last + 3, own + 3).value == "以下为12月补录"
    assert ws.cell(last + 4, column_of(ws, "activity")).value == "12月体检"
    rows_after = row_elements(sheet_xml(master_copy, LEDGER))
    for r in (last + 1, last + 2, last + 3):
        assert rows_after[r] == rows_before[r], r
    assert row_attrs(rows_after[last + 3])["hidden"] == "1"


def test_numbers_written_into_cells_staff_formatted_as_dates_pass_the_check(
        master_copy, inbox, blank_forms):  # noqa: F811
    """Staff pre-formatted the change log's 原值/新值 cells as dates. A quantity of 4 → 9 lands
    there: Excel shows serials under 61 as days of January–February 1900 (counting a 29 February
    that never was) and calamine reads them so; the re-read check must not refuse the write."""
    wb = openpyxl.load_workbook(master_copy)
    log = wb[LOG]
    for r in range(2, 8):
        for c in (6, 7):
            log.cell(r, c).number_format = "yyyy-mm-dd"
    wb.save(master_copy)

    update_c01_0002(inbox, blank_forms, master_copy, quantity=9)  # was 4

    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    r = int(ledger_of(master_copy).set_index("record_id").loc["C01-0002", "_row"])
    assert ws.cell(r, column_of(ws, "quantity")).value == 9
    audit = [row for row in openpyxl.load_workbook(master_copy)[LOG].iter_rows(min_row=2, values_only=True)
             if row[4] == HEADER["quantity"]]
    assert len(audit) == 1
    # the staff's format stays: the numbers are there, shown as Excel shows them
    assert [cell.date() for cell in audit[0][5:7]] == [date(1900, 1, 4), date(1900, 1, 9)]


def test_a_blank_in_a_row_the_merge_updates_adds_no_cell_to_staff_columns(
        master_copy, inbox, blank_forms):  # noqa: F811
    """A row staff formatted whole, updated by the merge: where a cell was blank and stays blank
    (staff's own headed column, an empty 备注), no cell is added — the row's format shows there as before."""
    r = int(ledger_of(master_copy).set_index("record_id").loc["C01-0002", "_row"])
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[LEDGER]
    own = ws.max_column + 1
    ws.cell(1, own).value = STAFF_HEADER
    ws.row_dimensions[r].fill = PatternFill("solid", fgColor="FFF2CC")
    wb.save(master_copy)
    before = row_elements(sheet_xml(master_copy, LEDGER))[r]

    update_c01_0002(inbox, blank_forms, master_copy, quantity=9)

    after = row_elements(sheet_xml(master_copy, LEDGER))[r]
    columns = lambda row: re.findall(r'<c r="([A-Z]+)\d+"', row)  # noqa: E731
    assert columns(after) == columns(before)
    assert openpyxl.load_workbook(master_copy)[LEDGER].cell(r, column_of(ws, "quantity")).value == 9


def fill_down_as_excel_saves_it(path: Path, column: str, rows: range, first_formula: str) -> None:
    """Staff filled ``first_formula`` down ``column`` over ``rows`` in Excel: Excel stores it once,
    in the first cell (t="shared", ref, si), and the others as <f t="shared" si="0"/>. Each cell
    keeps the value it showed (the formula's result, as Excel caches it)."""
    with zipfile.ZipFile(path) as z:
        names, parts = z.namelist(), {n: z.read(n) for n in z.namelist()}
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode()
    for r in rows:
        f = (f'<f t="shared" ref="{column}{rows[0]}:{column}{rows[-1]}" si="0">{first_formula}</f>'
             if r == rows[0] else '<f t="shared" si="0"/>')
        cell = re.compile(rf'<c r="{column}{r}"( s="\d+")?( t="\w+")?(?:/>|>(.*?)</c>)', re.S)
        m = cell.search(xml)
        shown = re.search(r"<v>(.*?)</v>", m.group(3) or "")
        xml = xml[:m.start()] + f'<c r="{column}{r}"{m.group(1) or ""}>{f}<v>{shown.group(1)}</v></c>' + xml[m.end():]
    parts[part] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in names:
            z.writestr(name, parts[name])


def test_a_formula_staff_filled_down_an_owned_column_survives_an_update_of_its_first_cell(
        master_copy, inbox, blank_forms):  # noqa: F811
    """完成数量 = 参与人数 filled down from C01-0001's row: the merge writes a new 完成数量 there.
    The rows below, which the merge did not touch, keep their formulas (=F11, =F12), not a
    reference to a first cell that is gone (Excel would repair the file and drop them)."""
    ledger = ledger_of(master_copy).set_index("record_id")
    r = int(ledger.loc["C01-0001", "_row"])
    wb = openpyxl.load_workbook(master_copy)
    quantity = openpyxl.utils.get_column_letter(column_of(wb[LEDGER], "quantity"))
    participants = openpyxl.utils.get_column_letter(column_of(wb[LEDGER], "participants"))
    fill_down_as_excel_saves_it(master_copy, quantity, range(r, r + 3), f"{participants}{r}")
    rows_before = row_elements(sheet_xml(master_copy, LEDGER))
    shown = [ledger_of(master_copy).set_index("_row").loc[x, "quantity"] for x in range(r, r + 3)]

    fill_form(form_c01(blank_forms), inbox / FORM_NAME, [
        {**{k: _plain(ledger.loc["C01-0001", k]) for k in FORM_KEYS if k != "record_id"},
         "record_id": "C01-0001", "quantity": 77}])
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_updated == 1

    ws = openpyxl.load_workbook(master_copy)[LEDGER]
    assert ws[f"{quantity}{r}"].value == 77
    assert [ws[f"{quantity}{x}"].value for x in (r + 1, r + 2)] == [f"={participants}{r + 1}", f"={participants}{r + 2}"]
    after = ledger_of(master_copy).set_index("_row")
    assert [after.loc[x, "quantity"] for x in (r + 1, r + 2)] == shown[1:]  # the values they showed
    rows_after = row_elements(sheet_xml(master_copy, LEDGER))
    assert 't="shared"' not in rows_after[r + 1] + rows_after[r + 2]
    assert rows_after[r + 3] == rows_before[r + 3]


def test_the_ledgers_dimension_still_reaches_staffs_notes_far_right(master_copy, inbox, blank_forms):  # noqa: F811
    """A note far right of the ledger, on a row the merge keeps whole: the sheet's <dimension>
    still reaches it, so a reader that trusts it (openpyxl read-only, used by many tools) sees it."""
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[LEDGER]
    ws["Z5"] = "核对：见纸质台账"
    wb.save(master_copy)

    fill_form(form_c01(blank_forms), inbox / FORM_NAME, [new_row(activity="12月体检")])
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_added == 1

    ws = openpyxl.load_workbook(master_copy, read_only=True)[LEDGER]
    assert [row[25].value for row in ws.iter_rows(min_row=5, max_row=5)] == ["核对：见纸质台账"]
    assert "A1:Z" in re.search(r"<dimension[^>]*>", sheet_xml(master_copy, LEDGER)).group(0)


def test_a_number_written_into_a_blank_row_staff_formatted_as_dates_reads_back_as_a_number(
        master_copy, inbox, blank_forms):  # noqa: F811
    """Staff formatted the blank rows below the data, 参与人数 as 2020年1月1日 among them. A new
    record lands there: its 参与人数 takes the column's number format (a day would be read back,
    and the same form sent again would add the record a second time)."""
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[LEDGER]
    last = ws.max_row
    participants = column_of(ws, "participants")
    for r in range(last + 1, last + 4):
        ws.cell(r, participants).number_format = "yyyy年m月d日"
        ws.cell(r, participants).fill = PatternFill("solid", fgColor="FFF2CC")
    wb.save(master_copy)

    fill_form(form_c01(blank_forms), inbox / FORM_NAME, [new_row(activity="12月体检", participants=40)])
    run = consolidate(master_copy, refresh=False)
    assert run.master_written and run.rows_added == 1
    cell = openpyxl.load_workbook(master_copy)[LEDGER].cell(last + 1, participants)
    assert cell.value == 40 and not is_date_format(cell.number_format)
    assert look(cell)[0].endswith("FFF2CC")  # staff's fill stays
    shutil.copy2(run.files[0].moved_to, inbox / FORM_NAME)
    again = consolidate(master_copy, refresh=False)
    assert (again.rows_added, again.master_written) == (0, False)
