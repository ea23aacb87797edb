"""Prove a written package keeps its promises before it replaces the master.

Independent of the code that wrote it: parts are compared as bytes, grow-only parts are parsed
with ElementTree and each old element must still be there unchanged, and values are re-read
with python-calamine.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

from numpy import bool_ as np_bool  # a pandas frame's booleans
from python_calamine import CalamineWorkbook

from .ooxml import col_name, to_serial, top_level
from .read import actual_sheet_name, calamine_failure, clean_header

# Worksheet children a rewrite may replace (owned sheets) or add (a marked sheet's notes).
OWNED_CHILDREN = {"sheetData", "dimension", "hyperlinks"}


class VerifyError(Exception):
    """The written file does not keep a promise (the write is refused)."""


def is_bool(value: object) -> bool:
    """A cell's TRUE/FALSE: never equal to a number here (Python's ``True == 1`` is not Excel's)."""
    return isinstance(value, bool | np_bool)


def _canon(value: object) -> object:
    if is_bool(value):
        return bool(value)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (date, datetime, time)):
        return to_serial(value)
    if isinstance(value, timedelta):
        return value.total_seconds() / 86400
    return str(value)


def same_value(a: object, b: object) -> bool:
    date_read_as_number = isinstance(a, date) != isinstance(b, date)  # a number in a date-formatted cell
    a, b = _canon(a), _canon(b)
    if is_bool(a) != is_bool(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        if date_read_as_number:  # Excel's 29 February 1900 (serial 60) reads as the 28th (59)
            a, b = (a - 1 if 60 <= a < 61 else a), (b - 1 if 60 <= b < 61 else b)
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-6)
    return a == b


def has_bool(values: list) -> bool:
    """Whether a list holds a boolean: where it does, ``==`` on whole lists cannot tell TRUE from 1."""
    kinds = set(map(type, values))  # one pass in C: most columns hold no boolean
    return bool in kinds or np_bool in kinds


def _differ(have: object, value: object) -> bool:
    return (have != value or type(have) is not type(value)) and not same_value(have, value)


def grid(book: CalamineWorkbook, sheet: str) -> list[list]:
    return book.get_sheet_by_name(actual_sheet_name(book, sheet) or sheet).to_python(skip_empty_area=False)


def _cell(rows: list[list], r: int, c: int) -> object:
    if r - 1 < len(rows) and c < len(rows[r - 1]):
        return rows[r - 1][c]
    return None


_HYPERLINK_REL = re.compile(rb'<Relationship\b[^>]*\bType="[^"]*/relationships/hyperlink"[^>]*/>')


_CALC_CHAIN_REL = re.compile(rb'<Relationship\b[^>]*\bType="[^"]*/relationships/calcChain"[^>]*/>')


def check_parts(old: dict[str, bytes], new_path: Path, allowed: set[str], grow_only: set[str],
                links_replaced: frozenset[str] = frozenset(), chain: str | None = None) -> dict[str, bytes]:
    """Every old part unchanged except ``allowed``; ``grow_only`` parts keep every old element
    (in ``links_replaced`` — owned sheets' rels — except their hyperlink relationships, all ours).
    ``chain``: Excel's calcChain.xml, which may be gone with its relationship and content type
    (Excel rebuilds it). Returns the new file's parts."""
    with zipfile.ZipFile(new_path) as zf:
        try:  # reading a member checks its CRC
            new = {name: zf.read(name) for name in zf.namelist()}
        except zipfile.BadZipFile as exc:
            raise VerifyError(str(exc)) from exc
    dropped = {chain} if chain and chain not in new else set()
    missing = set(old) - set(new) - dropped
    if missing:
        raise VerifyError(f"parts lost: {sorted(missing)}")
    if dropped and any(_CALC_CHAIN_REL.search(data) or f'PartName="/{chain}"'.encode() in data
                       for name, data in new.items() if name == "[Content_Types].xml" or name.endswith(".rels")):
        raise VerifyError(f"{chain} is gone but still listed")  # Excel would repair the file
    for name, data in old.items():
        if name in dropped or new[name] == data:
            continue
        if name not in allowed and name not in grow_only:
            raise VerifyError(f"part changed: {name}")
        if name in grow_only:
            if name in links_replaced:
                data = _HYPERLINK_REL.sub(b"", data)
            if dropped:  # the chain's own entries went with it
                data = _CALC_CHAIN_REL.sub(b"", data)
                data = re.sub(rb'<Override\b[^>]*\bPartName="/' + re.escape(chain.encode()) + rb'"[^>]*/>', b"", data)
            check_grows(name, data, new[name])
    return new


def check_grows(name: str, old: bytes, new: bytes) -> None:
    """Each child list of the old root (fonts, fills, cellXfs…, or Relationship/Override entries)
    is a prefix of the new one, element for element; the root's other attributes are unchanged."""
    a, b = ET.fromstring(old), ET.fromstring(new)
    if a.tag != b.tag:
        raise VerifyError(f"{name}: root changed")
    if name.endswith("styles.xml"):
        new_children = {child.tag: child for child in b}
        for child in a:
            grown = new_children.get(child.tag)
            if grown is None:
                raise VerifyError(f"{name}: {child.tag} lost")
            _prefix(name, list(child), list(grown))
            if {k: v for k, v in child.attrib.items() if k != "count"} != \
                    {k: v for k, v in grown.attrib.items() if k != "count"}:
                raise VerifyError(f"{name}: {child.tag} attributes changed")
        if [c.tag for c in a] != [c.tag for c in b if c.tag in {x.tag for x in a}]:
            raise VerifyError(f"{name}: order of style lists changed")
    else:
        new_set = {ET.tostring(el) for el in b}
        for el in a:
            if ET.tostring(el) not in new_set:
                raise VerifyError(f"{name}: entry lost or changed: {el.attrib}")


def _prefix(name: str, old: list, new: list) -> None:
    if len(new) < len(old):
        raise VerifyError(f"{name}: entries removed")
    for x, y in zip(old, new):
        if ET.tostring(x) != ET.tostring(y):
            raise VerifyError(f"{name}: entry changed: {ET.tostring(x)[:80]!r}")


def check_workbook_grew(old: str, new: str, added: list[str]) -> None:
    """workbook.xml may only gain ``fullCalcOnLoad="1"`` on calcPr (or a calcPr saying just that)
    and a ``<sheet>`` entry for each sheet in ``added`` (owned sheets we created)."""
    def without(xml: str, names: list[str]) -> str:
        xml = re.sub(r'\sfullCalcOnLoad="[^"]*"', "", xml)
        xml = re.sub(r"<(?:\w+:)?calcPr\s*/>", "", xml)
        for name in names:
            xml = re.sub(rf'<(?:\w+:)?sheet name="{re.escape(name)}"[^>]*/>(?=</(?:\w+:)?sheets>)', "", xml)
        return xml

    if without(old, []) != without(new, list(reversed(added))):
        raise VerifyError("workbook.xml changed beyond the recalculation flag and added sheets")


_TABLE_START = re.compile(r"<(?:\w+:)?table\b[^>]*>")
_FILTER_START = re.compile(r"<(?:\w+:)?autoFilter\b[^>]*>")
_REF = re.compile(r'\sref="([^"]*)"')
_AREA = re.compile(r"^(\$?[A-Z]+\$?\d+:\$?[A-Z]+\$?)(\d+)$")


def check_table_grew(name: str, old: bytes, new: bytes) -> None:
    """A table part of an owned sheet may differ in one way only: the last row of ``ref`` on
    ``<table>`` (and on its ``<autoFilter>``, which ends above a totals row) moved down, by as
    many rows in both. Put the old refs back and the bytes must be the old ones."""
    def refs(xml: str) -> list[tuple[int, int, str]]:
        found = []
        table = _TABLE_START.search(xml)
        if not table:
            raise VerifyError(f"{name}: not a table")
        for tag in (table, _FILTER_START.search(xml, table.end())):
            if tag is None:
                continue
            ref = _REF.search(tag.group(0))
            if ref:
                found.append((tag.start() + ref.start(1), tag.start() + ref.end(1), ref.group(1)))
        return found

    a, b = old.decode("utf-8"), new.decode("utf-8")
    before, after = refs(a), refs(b)
    if len(before) != len(after):
        raise VerifyError(f"{name}: table changed beyond its range")
    if before and before[0][2] == after[0][2] and before != after:
        raise VerifyError(f"{name}: filter range changed without the table's")
    restored, grown_to = b, set()
    for (_, _, was), (start, end, now) in reversed(list(zip(before, after))):
        if was == now:
            continue
        x, y = _AREA.match(was), _AREA.match(now)
        if not x or not y or x.group(1) != y.group(1) or int(y.group(2)) <= int(x.group(2)):
            raise VerifyError(f"{name}: table range changed other than growing down: {was} → {now}")
        grown_to.add(int(y.group(2)) - int(x.group(2)))
        restored = restored[:start] + was + restored[end:]
    if len(grown_to) > 1:
        raise VerifyError(f"{name}: table and its filter grown to different rows")
    if restored.encode("utf-8") != old:
        raise VerifyError(f"{name}: table changed beyond its range")


def check_sheet_frame(name: str, old: bytes, new: bytes, may_change: set[str]) -> None:
    """Outside the children in ``may_change`` (always sheetData), a worksheet's XML is unchanged
    (``legacyDrawing`` and a grown ``cols`` are checked by their callers)."""
    def rest(xml: str) -> list[str]:
        return [xml[s:e] for local, s, e in top_level(xml) if local not in may_change]

    if rest(_without_rows(old)) != rest(_without_rows(new)):
        raise VerifyError(f"{name}: worksheet settings changed")


_SHEETDATA_START = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")


def _without_rows(data: bytes) -> str:
    """A worksheet's XML with the inside of its sheetData left out: cut as bytes, so the rows of
    a large sheet (tens of MB after a consolidation) are never decoded just to be stepped over."""
    m = _SHEETDATA_START.search(data)
    if m and not m.group(2):
        end = data.rfind(b"</" + m.group(1) + b"sheetData>")
        if end >= m.end():
            data = data[:m.end()] + data[end:]
    return data.decode("utf-8")


class GridReads:
    """Written sheets re-read by calamine in threads: calamine lets go of the GIL while it parses,
    so sheets are read side by side, and beside the part checks and the building of other sheets.

    ``early`` reads a large sheet from a package holding it (``Package.snapshot``) as soon as the
    sheet is built; ``read`` reads the others from the written file. An early reading counts only
    if the written file holds the very bytes it read (the caller compares them); one that failed
    in any way is done again from the written file, where a failure refuses the write."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="healthbook-verify")
        self.reads: dict[str, Future] = {}
        self.early_data: dict[str, bytes] = {}
        self.path: Path | None = None
        self.opens: Future | None = None

    def early(self, sheet: str, data: bytes, build: Callable[[], bytes]) -> None:
        def read() -> list[list] | None:
            try:
                return grid(CalamineWorkbook.from_object(io.BytesIO(build())), sheet)
            except BaseException:  # noqa: BLE001 — calamine panics are BaseException; read the file instead
                return None

        self.early_data[sheet] = data
        self.reads[sheet] = self.pool.submit(read)

    def read(self, path: Path, sheets: list[str], current: Callable[[str], bytes | None]) -> dict[str, bytes]:
        """Read ``sheets`` from the written file at ``path``, except those read early from the
        bytes the package still holds (``current(sheet)``); returns those sheets and bytes, which
        the caller must find in the written file."""
        self.path = path
        kept = {}
        for sheet in sheets:
            if sheet in self.early_data and self.early_data[sheet] is current(sheet):
                kept[sheet] = self.early_data[sheet]
                continue
            if sheet in self.reads:
                self.reads[sheet].cancel()  # built again since (marks): read what was written
            self.early_data.pop(sheet, None)
            self.reads[sheet] = self.pool.submit(self._read, path, sheet)
        # calamine opens the written file itself, whatever was read early
        self.opens = self.pool.submit(lambda: CalamineWorkbook.from_path(str(path)).sheet_names)
        return kept

    @staticmethod
    def _read(path: Path, sheet: str) -> list[list]:
        return grid(CalamineWorkbook.from_path(str(path)), sheet)  # a book per thread: none shared

    def get(self, sheet: str) -> list[list]:
        try:
            rows = self.reads[sheet].result()
            if rows is None:  # an early reading that failed: the written file decides
                rows = self._read(self.path, sheet)
            return rows
        except BaseException as exc:
            if not calamine_failure(exc):
                raise
            raise VerifyError(f"{sheet}: unreadable after the write ({str(exc)[:80]})") from exc

    def check_opens(self, sheets: list[str]) -> None:
        """The written file opens in calamine and names every sheet in ``sheets``."""
        try:
            names = self.opens.result()
        except BaseException as exc:
            if not calamine_failure(exc):
                raise
            raise VerifyError(f"unreadable after the write ({str(exc)[:80]})") from exc
        found = set(names) | {clean_header(n) for n in names}
        missing = [s for s in sheets if s not in found]
        if missing:
            raise VerifyError(f"sheets missing after the write: {missing}")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> GridReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_values(reads: GridReads, written: dict[str, object], unchanged: dict[str, list[list]]) -> None:
    """Re-read with calamine: written cells hold what was written; other sheets hold what they held.

    ``written`` maps sheet name to ``owned.Written`` (``cells``, ``rows``, ``order``); ``reads``
    reads those sheets and the ``unchanged`` ones from the written file.
    """
    for sheet, w in written.items():
        rows = reads.get(sheet)
        for (r, c), value in w.cells.items():
            _check(sheet, r, c, _cell(rows, r, c), value)
        for numbers, columns in w.blocks:
            for c, values in zip(w.order, columns):
                try:  # calamine's grid is rectangular: a column is read in one pass
                    got = [rows[r - 1][c] for r in numbers]
                except IndexError:  # rows or columns beyond what it read hold nothing
                    got = [_cell(rows, r, c) for r in numbers]
                if got != values or has_bool(got) or has_bool(values):
                    for r, have, value in zip(numbers, got, values):
                        if _differ(have, value):
                            _check(sheet, r, c, have, value)
        order = w.order
        contiguous = order == list(range(order[0], order[0] + len(order))) if order else False
        for r, values in w.rows.items():
            got = rows[r - 1] if r - 1 < len(rows) else []
            if (contiguous and len(got) >= order[-1] + 1 and got[order[0]:order[-1] + 1] == values
                    and not has_bool(values) and not has_bool(got)):
                continue  # the whole row reads back as written
            for c, value in zip(order, values):
                have = got[c] if c < len(got) else None
                if _differ(have, value):
                    _check(sheet, r, c, have, value)
    for sheet, before in unchanged.items():
        after = reads.get(sheet)
        if after != before and _trim(after) != _trim(before):  # the plain comparison is C-fast
            raise VerifyError(f"{sheet}: values changed by marking")


def _check(sheet: str, r: int, c: int, got: object, value: object) -> None:
    if not same_value(got, value):
        raise VerifyError(f"{sheet}!{col_name(c)}{r}: wrote {_short(value)}, read {_short(got)}")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _trim(rows: list[list]) -> list[list]:
    out = [[_canon(v) for v in row] for row in rows]
    for row in out:
        while row and row[-1] is None:
            row.pop()
    while out and not out[-1]:
        out.pop()
    return out
