"""Build a real ``xw.Book`` from an .xlsx file with the xlwings JSON book (no Excel needed).

The payload is what the xlwings Office.js client sends (xlwings/pro/_xlremote.py reads it): per
sheet the values anchored at A1 (dates as ISO strings, blanks as ""), the used range's address,
the cells that carry notes; the book's defined names. Every change made through the book becomes
an action in ``book.json()["actions"]``; ``apply_actions`` replays the value writes on a payload
so a test can read back what Excel would show (a HYPERLINK formula shows its text).
"""

from __future__ import annotations

import os
import re
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from xml.etree import ElementTree

import xlwings as xw
from python_calamine import CalamineWorkbook
from xlsxwriter.utility import xl_rowcol_to_cell

os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def book_payload(path: Path | str, name: str | None = None) -> dict:
    """The JSON an Office.js client would send for the workbook at ``path``."""
    path = Path(path)
    wb = CalamineWorkbook.from_path(str(path))
    notes = _note_cells(path)
    tables = _tables(path)
    sheets = []
    for sheet_name in wb.sheet_names:
        rows = wb.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
        values = [[_json_value(v) for v in row] for row in rows] or [[""]]
        width = max(len(r) for r in values)
        values = [r + [""] * (width - len(r)) for r in values]
        sheets.append({
            "name": sheet_name,
            "values": values,
            "used_range_address": _used_range(values),
            "pictures": [],
            "tables": tables.get(sheet_name, []),
            "notes": [{"address": a} for a in notes.get(sheet_name, [])],
            "notes_supported": True,
        })
    return {
        "client": "Office.js",
        "version": xw.__version__,
        "book": {"name": name or path.name, "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": sheets,
    }


def _tables(path: Path) -> dict[str, list[dict]]:
    """Sheet name → its Excel tables as Excel's client describes them (addresses as VBA's
    ``Range.Address`` gives them: absolute, without the sheet)."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if not any(n.startswith("xl/tables/") for n in names):
            return {}
        parts = {n: zf.read(n) for n in names}
    workbook = ElementTree.fromstring(parts["xl/workbook.xml"])
    rels = ElementTree.fromstring(parts["xl/_rels/workbook.xml.rels"])
    targets = {r.get("Id"): r.get("Target").lstrip("/").removeprefix("xl/") for r in rels}
    found: dict[str, list[dict]] = {}
    for sheet in workbook.iter(f"{{{_NS['m']}}}sheet"):
        rid = sheet.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
        target = targets[rid]
        sheet_rels = f"xl/{target.rpartition('/')[0]}/_rels/{target.rpartition('/')[2]}.rels"
        if sheet_rels not in parts:
            continue
        for rel in ElementTree.fromstring(parts[sheet_rels]):
            if not rel.get("Type").endswith("/table"):
                continue
            target = rel.get("Target")  # relative, or absolute as openpyxl writes it
            table = ElementTree.fromstring(parts[target.lstrip("/") if target.startswith("/")
                                                 else "xl/" + target.replace("../", "")])
            (c1, r1, c2, r2) = re.match(r"([A-Z]+)(\d+):([A-Z]+)(\d+)", table.get("ref")).groups()
            r1, r2 = int(r1), int(r2)
            heads, totals = int(table.get("headerRowCount", "1")), int(table.get("totalsRowCount", "0"))

            def address(top: int, bottom: int, c1: str = c1, c2: str = c2) -> str | None:
                return f"${c1}${top}:${c2}${bottom}" if top <= bottom else None

            found.setdefault(sheet.get("name"), []).append({
                "name": table.get("name"), "range_address": address(r1, r2),
                "header_row_range_address": address(r1, r1) if heads else None,
                "data_body_range_address": address(r1 + heads, r2 - totals),
                "total_row_range_address": address(r2 - totals + 1, r2) if totals else None,
                "show_headers": bool(heads), "show_totals": bool(totals),
                "table_style": "TableStyleMedium9", "show_autofilter": True,
            })
    return found


def json_book(path: Path | str, name: str | None = None) -> xw.Book:
    """A real xlwings Book (remote engine) holding the workbook at ``path``.

    The engine keeps the payload as its state and updates it (e.g. notes added): give every book
    its own payload (``copy.deepcopy``) when reusing one.
    """
    return xw.Book(json=book_payload(path, name))


def apply_actions(payload: dict, actions: list[dict]) -> dict:
    """Replay values, clears, notes and cells inserted (shifted down) on ``payload`` (a copy):
    the book as Excel would then hold it, its tables' addresses included."""
    sheets = [dict(s, values=[list(r) for r in s["values"]], notes=list(s.get("notes", [])),
                   tables=[dict(t) for t in s.get("tables", [])])
              for s in payload["sheets"]]
    for action in actions:
        if action["func"] == "rangeInsert":
            _insert_down(sheets[action["sheet_position"]], action)
            continue
        if action["func"] == "resizeTable":  # its header stays; its body ends where the range does
            index, address = action["args"]
            table = sheets[action["sheet_position"]]["tables"][index]
            end = address.split(":")[1]
            table["range_address"] = f"{table['range_address'].split(':')[0]}:{end}"
            if table.get("data_body_range_address"):
                table["data_body_range_address"] = f"{table['data_body_range_address'].split(':')[0]}:{end}"
            continue
        if action["func"] in ("addNote", "deleteNote"):
            notes = sheets[action["sheet_position"]]["notes"]
            address = action["args"][0].replace("$", "")
            notes[:] = [n for n in notes if n["address"].replace("$", "") != address]
            if action["func"] == "addNote":
                notes.append({"address": address})
            continue
        if action["func"] not in ("setValues", "rangeClear", "rangeClearContents"):
            continue
        values = sheets[action["sheet_position"]]["values"]
        top, left = action["start_row"], action["start_column"]
        nrows, ncols = action["row_count"], action["column_count"]
        need_rows, need_cols = top + nrows, left + ncols
        width = max(max(len(r) for r in values), need_cols)
        for r in values:
            r.extend([""] * (width - len(r)))
        while len(values) < need_rows:
            values.append([""] * width)
        for i in range(nrows):
            for j in range(ncols):
                new = action["values"][i][j] if action["func"] == "setValues" else ""
                if isinstance(new, str) and new.startswith("'"):
                    new = new[1:]  # Excel's text prefix: not part of the value
                elif isinstance(new, str) and new.startswith("=HYPERLINK("):
                    new = _hyperlink_value(new)  # a formula's value is what Excel then reports
                values[top + i][left + j] = "" if new is None else new
    for sheet in sheets:
        sheet["used_range_address"] = _used_range(sheet["values"])
    return dict(payload, sheets=sheets)


class TableShiftRefused(Exception):
    """What Excel answers to an insert that would shift part of a table ("This operation is not
    allowed. The operation is attempting to shift cells in a table on your worksheet.")."""


_ADDRESS_KEYS = ("range_address", "header_row_range_address", "data_body_range_address",
                 "total_row_range_address")


def _insert_down(sheet: dict, action: dict) -> None:
    """Cells inserted, shifting down, as Excel does it: the cells below in those columns move
    down (values, notes); a table the insert falls inside (below its header, across exactly its
    columns) grows by the rows inserted, its totals row moving down; a table below moves down.
    An insert shifting part of a table's columns is refused, as Excel refuses it."""
    if action["args"][0] != "down":
        raise NotImplementedError(action["args"])
    top, left = action["start_row"] + 1, action["start_column"] + 1  # Excel rows and columns
    count, right = action["row_count"], action["start_column"] + action["column_count"]
    for table in sheet["tables"]:
        (c1, r1), (c2, r2) = (_cell(a) for a in table["range_address"].replace("$", "").split(":"))
        if r2 < top or c2 < left or c1 > right:
            continue  # above the insert, or beside it: stays
        inside = r1 + (1 if table["show_headers"] else 0) <= top <= r2
        if (c1, c2) != (left, right) or not (inside or r1 >= top):
            raise TableShiftRefused(f"{table['name']}: {table['range_address']}")
        for key in _ADDRESS_KEYS:
            address = table.get(key)
            if not address:
                continue
            first, last = address.split(":")
            if r1 >= top:  # below the insert: moves down whole
                table[key] = f"{_shifted(first, count)}:{_shifted(last, count)}"
            elif key == "total_row_range_address":  # grown: its totals row moves down
                table[key] = f"{_shifted(first, count)}:{_shifted(last, count)}"
            elif key != "header_row_range_address":  # grown: its end moves down
                table[key] = f"{first}:{_shifted(last, count)}"
    values = sheet["values"]
    width = max(max(len(r) for r in values), right)
    for r in values:
        r.extend([""] * (width - len(r)))
    values.extend([[""] * width for _ in range(count)])
    for r in range(len(values) - 1, top - 2, -1):  # 0-based rows, from the bottom
        for c in range(left - 1, right):
            values[r][c] = values[r - count][c] if r - count >= top - 1 else ""
    for note in sheet["notes"]:
        col, row = _cell(note["address"].replace("$", ""))
        if left <= col <= right and row >= top:
            note["address"] = xl_rowcol_to_cell(row + count - 1, col - 1)
    sheet["used_range_address"] = _used_range(values)


def _cell(address: str) -> tuple[int, int]:
    """"C7" → (3, 7): 1-based column and row."""
    letters, digits = re.fullmatch(r"([A-Z]+)(\d+)", address).groups()
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return col, int(digits)


def _shifted(address: str, count: int) -> str:
    """An absolute address ("$C$7") moved down ``count`` rows."""
    col, row = _cell(address.replace("$", ""))
    return xl_rowcol_to_cell(row + count - 1, col - 1, True, True)


def _hyperlink_value(formula: str) -> object:
    """What Excel shows for ``=HYPERLINK("target",shown)``: the text, or the number."""
    shown = re.fullmatch(r'=HYPERLINK\("(?:[^"]|"")*",(.*)\)', formula, re.S).group(1)
    if shown.startswith('"'):
        return shown[1:-1].replace('""', '"')
    return float(shown) if shown else ""


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return datetime.combine(value, time()).isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, time):
        return value.isoformat()
    return value


def _used_range(values: list[list]) -> str | None:
    cells = [(r, c) for r, row in enumerate(values) for c, v in enumerate(row) if v != ""]
    if not cells:
        return None
    top, left = min(r for r, _ in cells), min(c for _, c in cells)
    bottom, right = max(r for r, _ in cells), max(c for _, c in cells)
    return f"{xl_rowcol_to_cell(top, left)}:{xl_rowcol_to_cell(bottom, right)}"


def _note_cells(path: Path) -> dict[str, list[str]]:
    """Sheet name → addresses of cells with a note (legacy comment) in the file."""
    found: dict[str, list[str]] = {}
    with zipfile.ZipFile(path) as zf:
        book = ElementTree.fromstring(zf.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        rid = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
        for sheet in book.find("m:sheets", _NS):
            part = "xl/" + targets[sheet.get(rid)].lstrip("/").removeprefix("xl/")
            rels_part = part.replace("worksheets/", "worksheets/_rels/") + ".rels"
            if rels_part not in zf.namelist():
                continue
            for rel in ElementTree.fromstring(zf.read(rels_part)):
                if rel.get("Type", "").endswith("/comments"):
                    target = rel.get("Target")  # relative, or absolute as openpyxl writes it
                    comments = target.lstrip("/") if target.startswith("/") else "xl/" + target.replace("../", "")
                    tree = ElementTree.fromstring(zf.read(comments))
                    found[sheet.get("name")] = [c.get("ref") for c in tree.iter(f"{{{_NS['m']}}}comment")]
    return found
