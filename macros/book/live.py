"""The live adapter: the same ``read()`` / ``write()`` as the file adapter, over an ``xlwings.Book``.

The book is the one the Excel button hands over (``xw.Book.caller()`` on Windows, COM), a hidden
Excel instance, or the xlwings Server JSON book (``xw.Book(json=...)``: every change becomes an
action in ``book.json()``). Excel round trips are what make a macro slow, so:

- one bulk value read per contract sheet (``used_range``), turned into frames by the file reader's
  ``frame_from_rows`` so both adapters give identical frames;
- one bulk value write per output sheet (header, banner and rows as one block), links as
  ``HYPERLINK`` formulas inside that block, one number-format call per formatted column;
- fills batched: on the desktop engines one multi-area range per colour (COM's ``Range("A1,B3")``,
  addresses chunked below its 255-character limit); on the JSON engine one ``set_colors`` matrix
  per block of rows (``...`` keeps the cells in between);
- notes one per marked cell (no engine batches them).

Before a run's first write, the workbook's file as last saved (``book.fullname``) is copied to
``backups/`` as the file writer does (``protect``): a macro's writes also clear Excel's undo stack,
so without it a run that went wrong could not be taken back once staff save.

``counts`` records what was done, for the bench.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell

from .. import schema
from ..errors import HealthbookError, MissingSheet
from .backup import backup_if_changed, backups_to_keep
from .notes import AUTHOR as NOTE_AUTHOR
from .ooxml import sheet_location
from .read import (
    ROW,
    Workbook,
    best_header_row,
    clean_header,
    empty_frame,
    find_header_row,
    frame_from_rows,
    not_contract,
)
from .tables import Area
from .write_types import FILLS, Mark, SheetWrite

# COM's Range("...") takes at most 255 characters of addresses.
COM_ADDRESS_LIMIT = 255
# xlwings' set_colors takes at most 10,000 cells per call.
COLORS_PER_CALL = 10_000
# Leading characters that would turn a text value into a formula when written.
FORMULA_STARTS = ("=", "+", "-", "@")
# Text Excel would turn into a number, date or boolean when written as a value ("001", "6月22日").
COERCIBLE_TEXT = re.compile(r"^[\s\d.,:/%+\-()eE年月日¥$]*\d[\s\d.,:/%+\-()eE年月日¥$]*$|^(?i:true|false)$")
# Notes the adapter writes start with this, so it never deletes a note a person wrote.
NOTE_TAG = "【healthbook】"


@dataclass(frozen=True)
class LiveTable:
    """An Excel table on a sheet as the live book reports it (areas: 0-based columns, Excel rows)."""

    name: str
    range: Area
    body: Area | None
    totals: Area | None
    headed: bool = True
    handle: object = field(default=None, compare=False, repr=False)  # the xlwings Table


@dataclass(frozen=True)
class Room:
    """How an output sheet's rows fit around its tables: the totals rows to keep (where they
    will be once ``grow`` is done), the table to grow by inserting rows into it, by how many
    rows, and the tables without a totals row to extend down to the last row written."""

    kept: list[Area]
    grow: tuple[LiveTable, int] | None = None
    extend: list[LiveTable] = field(default_factory=list)
    last: int = 1
    inserted: int = 0  # rows ``grow`` asked for, once inserted (``LiveBook.make_room``)


class TotalsRowBlocked(HealthbookError):
    """An output sheet's rows reach a table's totals row, which cannot be moved down below them."""

    def __init__(self, sheet: str, row: int, rows: int, why: str, written: str = "本次没有写入任何内容"):
        super().__init__(f"工作表“{sheet}”第 {row} 行是表格的汇总行（表设计 → 汇总行），本次要写入的数据有 {rows} 行，"
                         f"会写到它所在的位置；{why}。{written}。请在汇总行上方插入足够的空行"
                         f"（选中汇总行上一行，右键 → 插入 → 在上方插入表行），使汇总行位于第 {rows + 2} 行或更下方，"
                         "然后重新运行。")


class LogHeaderUnusable(HealthbookError):
    """A log sheet (变更记录) whose header does not say where each new line's cells go: its lines
    are the audit trail, so nothing is guessed, moved or rewritten."""

    def __init__(self, sheet: schema.Sheet, why: str):
        super().__init__(f"工作表“{sheet.name}”{why}，无法确定新的记录行应写在哪一列；为免弄乱已有的记录，"
                         f"本次没有写入该表。请把它的表头改回（顺序不限，可另加自己的列）："
                         f"{'、'.join(sheet.headers)}，然后重新运行。")


class NoFileHere(HealthbookError):
    """A book with no file on this machine (the xlwings Server's JSON book, a cloud or unsaved
    workbook): the numbers already announced (``.numbers.json`` beside the master, which outlives a
    restore) cannot be read, so no 记录编号 is given: one a receipt announced could be given again."""

    def __init__(self) -> None:
        super().__init__("这个工作簿不是本机磁盘上的文件（如网页版 Excel、尚未保存的工作簿），"
                         "无法核对已经发出的记录编号（记在主工作簿旁的文件里），为免重号，本次不自动编号；"
                         "请在存放主工作簿的电脑上用 Excel 打开它再点按钮，或运行 healthbook report")


@dataclass(frozen=True)
class Tail:
    """Where lines appended to a log sheet go (``LiveBook.tail``)."""

    header_row: int  # Excel row of its header
    columns: dict[str, int]  # column key → 1-based column, where staff put it
    first: int  # Excel row of the first new line
    old_last: int  # the last row holding a value before (the header's when none)
    header: bool = False  # the header is written too (the sheet is new or empty)
    add: bool = False  # the sheet is added first


def saved_file(fullname: str) -> Path | None:
    """The workbook's file on this machine, or None: a book never saved ("工作簿1"), the xlwings
    Server's JSON book (it sends the name only: a file of that name here is another one), a
    OneDrive/SharePoint URL."""
    if not fullname or "://" in fullname:
        return None
    path = Path(fullname)
    return path if path.is_absolute() and path.is_file() else None


class LiveBook:
    """Read and write the contract sheets of an open workbook through xlwings."""

    def __init__(self, book):
        self.book = book
        self.counts: Counter[str] = Counter()
        self.remote = book.app.engine.type == "remote"
        # Grid of each input sheet as read (rows from Excel row 1), used to check old marks.
        self._grids: dict[str, list[list]] = {}
        # A LiveBook serves one macro run: the book is read once, however many steps ask for it.
        self._workbook: Workbook | None = None
        self._names: dict[str, str] | None = None
        self._sheets: dict[str, object] = {}
        # The backup taken before this run's first write (``protect``): the copy made, or the
        # newest one already holding the same bytes (``backup_made`` False); ``no_backup`` says
        # why there is none when the book has no file on this machine.
        self.backup: Path | None = None
        self.backup_made = False
        self.no_backup = ""
        self._protected = False

    @property
    def path(self) -> Path:
        return Path(self.book.fullname)

    @property
    def saved(self) -> Path | None:
        """The workbook's file on this machine (``saved_file``): where its numbers file is kept."""
        return saved_file(str(self.book.fullname))

    # ----------------------------------------------------------------------------- reading
    def read(self, sheets: list[schema.Sheet] | None = None) -> Workbook:
        """The contract's input sheets as frames, one bulk read each (same frames as read_workbook)."""
        if self._workbook is not None and sheets is None:
            return self._workbook
        self._names = None  # asked again: staff may have added or renamed a sheet since
        names = list(self._sheet_names())
        frames = {}
        for sheet in sheets or schema.INPUT_SHEETS:
            if sheet.name not in names:
                if sheet.optional:
                    frames[sheet.name] = empty_frame(sheet)
                    continue
                raise MissingSheet(self.path, sheet.name, not_contract(names))
            grid = self.read_grid(sheet.name)
            self._grids[sheet.name] = grid
            frames[sheet.name] = frame_from_rows(grid, sheet, self.path, self.table_totals(sheet.name))
        workbook = Workbook(self.path, frames, names)
        if sheets is None:
            self._workbook = workbook
        return workbook

    def read_grid(self, sheet_name: str) -> list[list]:
        """A sheet's values from cell A1 to the end of its used range, in one read."""
        used = self._sheet(sheet_name).used_range
        values = used.options(ndim=2).value
        self.counts["reads"] += 1
        self.counts["cells_read"] += used.shape[0] * used.shape[1]
        # frame_from_rows expects the grid to start at A1: pad for a used range that starts lower.
        lead = [None] * (used.column - 1)
        rows = [[None] * (used.column - 1 + used.shape[1]) for _ in range(used.row - 1)]
        rows += [lead + [_read_value(v) for v in row] for row in values]
        return rows

    def table_totals(self, sheet_name: str) -> list[Area]:
        """The totals rows of the Excel tables on a sheet (表设计 → 汇总行): not records, as the
        file reader leaves them out. One look per table, and none without tables.

        Rows of a table holding only its calculated columns' formulas (empty rows staff added,
        which the file reader leaves out) are read as records here: the adapter reads values, and
        the JSON engine cannot read formulas (``Range.formula`` is refused), so a formula's 0 or
        1900 cannot be told from a value typed there."""
        return [t.totals for t in self.tables(sheet_name, bodies=False) if t.totals is not None]

    def tables(self, sheet_name: str, bodies: bool = True) -> list[LiveTable]:
        """The Excel tables on a sheet: their ranges and totals rows (and, with ``bodies``, their
        data bodies). A few calls per table on COM; none without tables."""
        try:
            tables = list(self._sheet(sheet_name).tables)
        except (AttributeError, NotImplementedError, KeyError):  # an engine or client without tables
            return []
        found = []
        for table in tables:
            totals = _area(table.totals_row_range) if table.show_totals else None
            body = _area(table.data_body_range) if bodies else None
            found.append(LiveTable(table.name, _area(table.range), body, totals, bool(table.show_headers), table))
        return found

    # ----------------------------------------------------------------------------- writing
    def write(self, sheets: list[SheetWrite], marks: list[Mark] | None = None) -> None:
        """Rewrite the output sheets; with ``marks``, replace the marks of the previous run."""
        app = self.book.app
        if not self.remote:
            app.screen_updating = False  # desktop Excel repaints after every call otherwise
        try:
            # Where each output sheet's rows go around its tables' totals rows, before anything is
            # written: a totals row that cannot be moved refuses the whole run, not half of it.
            rooms = [self.tail(sw.sheet) if sw.append else None if sw.sheet.role == "ledger" else self.room(sw)
                     for sw in sheets]
            if sheets or marks is not None:
                self.protect()  # before the first change (the inserts below are one)
            # Then the rows to insert (the one step Excel may still refuse), before any value.
            rooms = [self.make_room(sw, room) if isinstance(room, Room) else room for sw, room in zip(sheets, rooms)]
            # A log's lines first: a run stopped midway (COM) leaves no 台账 number without its line.
            for sheet_write, room in sorted(zip(sheets, rooms), key=lambda pair: not pair[0].append):
                self.write_sheet(sheet_write, room)
            if marks is not None:
                self.replace_marks(marks)
        finally:
            if not self.remote:
                app.screen_updating = True

    def protect(self) -> None:
        """Back up the workbook's file as last saved (``book.fullname``) into ``backups/`` beside
        it, keeping 设置 备份保留份数, unless the newest backup already holds the same bytes (a
        button pressed again before saving). Once per LiveBook: a run's several writes share one
        backup. A book with no file here gets none (``no_backup``); a copy that fails refuses
        the run (``BackupFolderUnusable``) before anything is written."""
        if self._protected:
            return
        file = saved_file(str(self.book.fullname))
        if file is None:
            self.no_backup = "工作簿不是本机磁盘上的文件（尚未保存，或在网络、云端）"
        else:
            self.backup, self.backup_made = backup_if_changed(file, self._backups_kept(file))
            self.counts["backups"] += int(self.backup_made)
        self._protected = True

    def _backups_kept(self, file: Path) -> int:
        """设置 备份保留份数 as this run read it (what staff see), else as the file holds it."""
        if self._workbook is not None:
            return backups_to_keep(self._workbook.settings.get("backups_kept"))
        from .write import backups_kept  # the file writer's reading; imported here: a button's start-up

        return backups_kept(file)

    def room(self, sw: SheetWrite) -> Room:
        """Where an output sheet's rows go around the totals rows staff gave its tables (表设计 →
        汇总行, SUBTOTAL formulas), as the file writer places them: a totals row below the rows
        stays where it is; one the rows reach moves down right below them, the way Excel moves
        it when rows are inserted into its table. Reads only; refuses (``TotalsRowBlocked``)
        when it cannot be moved."""
        last = len(sw.rows) + 1  # the header, then one row per record
        width = _width(sw)
        tables = self.tables(sw.sheet.name)
        reached = [t for t in tables if t.totals and t.totals.first_row <= last and t.totals.first_col < width]
        kept = [t.totals for t in tables if t.totals and t not in reached]
        extend = self._extended(sw, tables, last)
        if not reached:
            return Room(kept, None, extend, last)
        table = reached[0]
        row, name = table.totals.first_row, sw.sheet.name
        if len(reached) > 1:
            raise TotalsRowBlocked(name, row, len(sw.rows), "工作表上有多个表格的汇总行需要下移，无法自动处理")
        if table.body is None or table.body.last_row < 2:
            raise TotalsRowBlocked(name, row, len(sw.rows), "这个表格没有可以插入行的数据区域")
        at, shift = table.body.last_row, last + 1 - row
        # The rows go into the table's body, across its columns: a table below, in those columns,
        # moves down as whole; one across part of them would be cut (Excel refuses: say so first).
        for other in tables:
            if other is table or other.range.last_row < at:
                continue
            if other.range.last_col < table.range.first_col or other.range.first_col > table.range.last_col:
                continue
            if (other.range.first_col, other.range.last_col) != (table.range.first_col, table.range.last_col):
                raise TotalsRowBlocked(name, row, len(sw.rows),
                                       f"下方的表格“{other.name}”与它的列不同，插入行会把它拆开")
        kept = [a.down(shift) if a.first_row >= at and table.range.first_col <= a.first_col
                and a.last_col <= table.range.last_col else a for a in kept]
        return Room([*kept, table.totals.down(shift)], (table, shift), extend, last)

    def _extended(self, sw: SheetWrite, tables: list[LiveTable], last: int) -> list[LiveTable]:
        """Tables without a totals row over the sheet's rows that they no longer reach: headed at
        the header row, across the contract's columns, ending at or below the last row of the
        old rows (as the file writer's ``tables.grown_table`` picks them)."""
        ours = len(sw.sheet.columns) - 1
        candidates = [t for t in tables if t.totals is None and t.headed and t.range.first_row == 1
                      and t.range.first_col <= 0 and t.range.last_col >= ours and t.range.last_row < last]
        if not candidates:
            return []
        old_last = _last_row(self._sheet(sw.sheet.name))
        return [t for t in candidates if t.range.last_row >= old_last]

    def make_room(self, sw: SheetWrite, room: Room) -> Room:
        """Insert the rows ``room.grow`` asks for into its table: ONE insert inside its body,
        across its columns, so Excel moves the totals row down and grows the table (its SUBTOTALs,
        and references covering the body, take the new rows in). The room, with nothing left to insert."""
        if not room.grow:
            return room
        table, shift = room.grow
        at = table.body.last_row
        cells = self._sheet(sw.sheet.name).range((at, table.range.first_col + 1),
                                                 (at + shift - 1, table.range.last_col + 1))
        try:
            cells.insert("down", "format_from_left_or_above")
        except Exception as exc:  # COM: Excel refused (merged cells, a protected sheet ...)
            raise TotalsRowBlocked(sw.sheet.name, table.totals.first_row, len(sw.rows),
                                   f"Excel 无法在表格“{table.name}”中插入行（{str(exc)[:120]}）",
                                   "本次没有写入数据") from exc
        self.counts["inserts"] += 1
        return replace(room, grow=None, inserted=room.inserted + shift)

    def write_sheet(self, sw: SheetWrite, room: Room | Tail | None = None) -> None:
        """Replace an output sheet's data (clear, then one bulk write); the ledger is updated in
        place; a log (``append``: 变更记录) gets its lines added below (``append_lines``).

        The totals rows of its tables are neither cleared nor written over (``room``): when the
        rows reach one, its table first gets the rows missing (``make_room``)."""
        if sw.sheet.role == "ledger":
            return self.write_ledger(sw)
        if sw.append:
            return self.append_lines(sw, room if isinstance(room, Tail) else self.tail(sw.sheet))
        sheet = self._sheet(sw.sheet.name)
        room = self.make_room(sw, room or self.room(sw))
        columns = sw.sheet.columns
        width = _width(sw)
        old_rows = _last_row(sheet) + room.inserted  # the cells below moved down with the insert
        for table in room.extend:  # as Excel's table grows over rows typed below it
            area = table.range
            table.handle.resize(sheet.range((area.first_row, area.first_col + 1), (room.last, area.last_col + 1)))
            self.counts["resizes"] += 1
        for top, left, bottom, right in _clear_blocks(2, old_rows, max(width, _last_column(sheet)), room.kept):
            sheet.range((top, left), (bottom, right)).clear()
            self.counts["clears"] += 1
        header = [c.header for c in columns] + (["", sw.note] if sw.note else [])
        block = [header]
        for i, row in enumerate(sw.rows):
            cells = []
            for col in columns:
                value = _write_value(row.get(col.key))
                target = sw.links.get((i, col.key))
                cells.append(_hyperlink(sheet_location(target, self._sheet_names()), value) if target else value)
            block.append(cells + [None] * (width - len(columns)))
        sheet.range((1, 1), (len(block), width)).value = block
        self.counts["writes"] += 1
        self.counts["cells_written"] += len(block) * width
        if sw.rows:
            # One call per run of adjacent columns sharing a number format.
            formats = [c.number_format for c in columns]
            c = 0
            while c < len(formats):
                end = c
                while end + 1 < len(formats) and formats[end + 1] == formats[c]:
                    end += 1
                if formats[c]:
                    sheet.range((2, c + 1), (len(sw.rows) + 1, end + 1)).number_format = formats[c]
                    self.counts["formats"] += 1
                c = end + 1
        keys = [c.key for c in columns]
        fills = {(i + 2, keys.index(key) + 1): FILLS[name]
                 for (i, key), name in sw.fills.items() if name in FILLS and key in keys}
        self._paint(sheet, fills)

    def tail(self, sheet: schema.Sheet) -> Tail:
        """Where lines added to log ``sheet`` go, as the file writer adds them: below the last row
        holding a value and below every table's totals row, under the columns where staff put
        them (moved, or beside columns of their own). A sheet missing is added, an empty one gets
        the header; one whose header lacks a column, holds one twice or has none is refused
        (``LogHeaderUnusable``): the file writer would rewrite its lines under a new header, which
        on a live book would mean rewriting the audit trail. Reads only."""
        contract = {c.key: i + 1 for i, c in enumerate(sheet.columns)}
        if sheet.name not in self._sheet_names():
            return Tail(1, contract, 2, 1, header=True, add=True)
        grid = self._grid(sheet.name)
        filled = [r for r, row in enumerate(grid, start=1) if any(v is not None and v != "" for v in row)]
        totals = [a.last_row for a in self.table_totals(sheet.name)]
        if not filled:
            return Tail(1, contract, max([1, *totals]) + 1, 1, header=True)
        at, _ = best_header_row(grid, sheet)
        if at is None:
            raise LogHeaderUnusable(sheet, "没有表头")
        headers = [clean_header(v) for v in grid[at]]
        missing = [h for h in sheet.headers if h not in headers]
        if missing:
            raise LogHeaderUnusable(sheet, f"的表头缺少“{'、'.join(missing)}”")
        twice = [h for h in sheet.headers if headers.count(h) > 1]
        if twice:
            raise LogHeaderUnusable(sheet, f"的表头中“{'、'.join(twice)}”出现了不止一次")
        last = max(filled[-1], at + 1)
        return Tail(at + 1, {c.key: headers.index(c.header) + 1 for c in sheet.columns},
                    max([last, *totals]) + 1, last)

    def append_lines(self, sw: SheetWrite, tail: Tail) -> None:
        """Add ``sw.rows`` to a log sheet at ``tail``: the lines there are never cleared or
        rewritten (变更记录 is the audit trail), nor staff's cells beside them. One value write
        per run of adjacent contract columns (one when staff kept them together), one
        number-format call per formatted column; a table headed at the header row, ending at the
        old lines, grows over the new ones (as the file writer's ``tables.grown_table``)."""
        if not sw.rows:
            return
        name = sw.sheet.name
        if tail.add:
            sheets = self.book.sheets
            added = sheets.add(name=name, after=sheets[len(sheets) - 1])
            self._sheet_names()[name] = name
            self._sheets[name] = added
            self._grids[name] = []
            self.counts["sheets_added"] += 1
        sheet = self._sheet(name)
        last = tail.first + len(sw.rows) - 1
        lines = {tail.header_row: {c.key: c.header for c in sw.sheet.columns}} if tail.header else {}
        lines.update({tail.first + i: {k: _write_value(row.get(k)) for k in tail.columns}
                      for i, row in enumerate(sw.rows)})
        by_column = {c: key for key, c in tail.columns.items()}
        for top, bottom in _runs(sorted(lines)):  # the header and the lines: one block when adjacent
            for left, right in _runs(sorted(by_column)):
                block = [[lines[r][by_column[c]] for c in range(left, right + 1)] for r in range(top, bottom + 1)]
                sheet.range((top, left), (bottom, right)).value = block
                self.counts["writes"] += 1
                self.counts["cells_written"] += len(block) * (right - left + 1)
        for col in sw.sheet.columns:
            if col.number_format:
                c = tail.columns[col.key]
                sheet.range((tail.first, c), (last, c)).number_format = col.number_format
                self.counts["formats"] += 1
        ours = tail.columns.values()
        for table in self.tables(name, bodies=False):
            area = table.range
            if (table.totals is None and table.headed and area.first_row == tail.header_row
                    and area.first_col + 1 <= min(ours) and area.last_col + 1 >= max(ours)
                    and tail.old_last <= area.last_row < last):
                table.handle.resize(sheet.range((area.first_row, area.first_col + 1), (last, area.last_col + 1)))
                self.counts["resizes"] += 1
        # The grid as the book now holds it: a later append in this run goes below these lines.
        grid = self._grids[name]
        width = max([len(grid[0]) if grid else 0, *ours])
        grid.extend([None] * width for _ in range(last - len(grid)))
        for r, values in lines.items():
            row = grid[r - 1]
            row.extend([None] * (width - len(row)))
            for key, value in values.items():
                row[tail.columns[key] - 1] = value

    def issued_numbers(self) -> Callable[[], dict[str, int]]:
        """Every record number given so far (``consolidate.issued_numbers_soon``), for numbering
        台账 rows in this book: 变更记录's added lines as the book holds them now (saved or not),
        the file's and its numbers file's. Refuses for a book with no file here (``NoFileHere``)
        and when 变更记录 cannot take the lines the numbering adds (``LogHeaderUnusable``)."""
        from ..consolidate import issued_in_grid, issued_numbers_soon  # heavy: only when numbering

        file = self.saved
        if file is None:
            raise NoFileHere()
        self.tail(schema.CHANGES)
        live = issued_in_grid(self._grid(schema.CHANGES.name)) if schema.CHANGES.name in self._sheet_names() else {}
        saved = issued_numbers_soon(file)

        def numbers() -> dict[str, int]:
            found = saved()
            for committee, number in live.items():
                found[committee] = max(number, found.get(committee, 0))
            return found

        return numbers

    def write_ledger(self, sw: SheetWrite) -> None:
        """Write only the ledger cells whose value changed, where staff put each column.

        Rows carrying ``_row`` go to that Excel row, others below the last row; columns are matched
        by header (extra columns and their formulas are never touched); missing contract columns
        are added right of the last one. One write per run of changed cells in a column.
        """
        sheet = self._sheet(sw.sheet.name)
        grid = self._grid(sw.sheet.name)
        header_index = find_header_row(grid, sw.sheet)
        if header_index is None:
            header_index = 0
        headers = [clean_header(v) for v in (grid[header_index] if grid else [])]
        by_header = sw.sheet.by_header()
        position = {by_header[h].key if h in by_header else h: i + 1
                    for i, h in enumerate(headers) if h and h not in headers[:i]}
        changed: dict[tuple[int, int], object] = {}
        for col in sw.sheet.columns:
            if col.key not in position:
                position[col.key] = max([len(headers), *position.values()]) + 1
                changed[(header_index + 1, position[col.key])] = col.header
        # Below the last row read and below every table's totals row, even one staff emptied
        # (汇总行 still ticked): a record written there is one no reader would see.
        next_row = max([len(grid), header_index + 1, *(a.last_row for a in self.table_totals(sw.sheet.name))]) + 1
        for row in sw.rows:
            excel_row = row.get(ROW)
            if not isinstance(excel_row, int):
                excel_row, next_row = next_row, next_row + 1
            old_row = grid[excel_row - 1] if excel_row <= len(grid) else []
            for key, value in row.items():
                c = position.get(key)
                if c is None or key == ROW:
                    continue
                old = old_row[c - 1] if c <= len(old_row) else None
                if not _same(old, value):
                    changed[(excel_row, c)] = _write_value(value)
        for (top, c), run in _column_runs(changed):
            sheet.range((top, c), (top + len(run) - 1, c)).options(ndim=2).value = [[v] for v in run]
            self.counts["writes"] += 1
            self.counts["cells_written"] += len(run)

    def _grid(self, sheet_name: str) -> list[list]:
        if sheet_name not in self._grids:
            self._grids[sheet_name] = self.read_grid(sheet_name)
        return self._grids[sheet_name]

    def replace_marks(self, marks: list[Mark]) -> None:
        """Clear the marks listed in the old 校验结果 sheet, then fill and annotate ``marks``."""
        new = {(m.sheet, m.row, m.column): m for m in marks if m.sheet in self._sheet_names()}
        old = [cell for cell in self._old_marks() if cell not in new]
        by_sheet: dict[str, dict[tuple[int, int], str | None]] = {}
        notes_to_clear: list[tuple[str, int, int]] = []
        for name, row, header in old:
            col = self._column_index(name, header)
            if col:
                by_sheet.setdefault(name, {})[(row, col)] = None
                notes_to_clear.append((name, row, col))
        for (name, row, header), mark in new.items():
            col = self._column_index(name, header)
            if col:
                by_sheet.setdefault(name, {})[(row, col)] = FILLS.get(mark.level, FILLS[schema.LEVEL_ERROR])
        for name, cells in by_sheet.items():
            self._paint(self._sheet(name), cells)
        for name, row, col in notes_to_clear:
            self._delete_note(self._sheet(name).range((row, col)))
        for (name, row, header), mark in new.items():
            col = self._column_index(name, header)
            if col:
                self._set_note(self._sheet(name).range((row, col)), note_text(mark))

    # ----------------------------------------------------------------------------- helpers
    def _sheet(self, name: str):
        if name not in self._sheets:
            if name not in self._sheet_names():
                raise MissingSheet(self.path, name)
            self._sheets[name] = self.book.sheets[self._sheet_names()[name]]
        return self._sheets[name]

    def _sheet_names(self) -> dict[str, str]:
        """Contract name → the sheet's own name ("台账 " with a stray space is the 台账, as in
        the file reader). Asked once: on COM every sheet's name is a round trip."""
        if self._names is None:
            self._names = {clean_header(s.name): s.name for s in self.book.sheets}
        return self._names

    def _column_index(self, sheet_name: str, header: str) -> int | None:
        """1-based column of ``header`` in the sheet as read (columns may be in any order)."""
        grid = self._grid(sheet_name)
        sheet = schema.SHEETS_BY_NAME.get(sheet_name)
        index = find_header_row(grid, sheet) if sheet else 0
        if index is None:
            return None
        headers = [clean_header(v) for v in grid[index]]
        return headers.index(header) + 1 if header in headers else None

    def _old_marks(self) -> list[tuple[str, int, str]]:
        """Cells marked by the previous run, as listed in 校验结果 — skipped when the row has moved."""
        if schema.ISSUES.name not in self._sheet_names():
            return []
        grid = self.read_grid(schema.ISSUES.name)
        try:
            frame = frame_from_rows(grid, schema.ISSUES, self.path)
        except HealthbookError:
            return []
        cells = []
        for rec in frame.to_dict("records"):
            sheet, row, column, key = rec["sheet"], rec["row"], rec["column"], rec["key"]
            if not (isinstance(sheet, str) and isinstance(row, int) and isinstance(column, str)):
                continue
            if key and not self._row_has_key(sheet, row, str(key)):
                continue  # rows were inserted or deleted since: that cell is no longer the one marked
            cells.append((sheet, row, column))
        return cells

    def _row_has_key(self, sheet_name: str, row: int, key: str) -> bool:
        grid = self._grids.get(sheet_name)
        if grid is None or row > len(grid):
            return False
        return key in {str(v) for v in grid[row - 1] if v is not None}

    def _paint(self, sheet, cells: dict[tuple[int, int], str | None]) -> None:
        """Set fill colours (hex or None to remove) on many cells with few calls."""
        if not cells:
            return
        if self.remote:
            rows = sorted({r for r, _ in cells})
            first_col = min(c for _, c in cells)
            last_col = max(c for _, c in cells)
            ncols = last_col - first_col + 1
            per_call = max(1, COLORS_PER_CALL // ncols)
            for start in range(rows[0], rows[-1] + 1, per_call):
                block_rows = [r for r in rows if start <= r < start + per_call]
                if not block_rows:
                    continue
                top, bottom = block_rows[0], block_rows[-1]
                matrix = [[_hex(cells[(r, c)]) if (r, c) in cells else ...
                           for c in range(first_col, last_col + 1)] for r in range(top, bottom + 1)]
                sheet.range((top, first_col), (bottom, last_col)).set_colors(matrix)
                self.counts["fill_calls"] += 1
        else:
            by_colour: dict[str | None, list[str]] = {}
            for (r, c), colour in cells.items():
                by_colour.setdefault(colour, []).append(xl_rowcol_to_cell(r - 1, c - 1))
            for colour, addresses in by_colour.items():
                for chunk in chunk_addresses(addresses):
                    sheet.range(chunk).color = _hex(colour)
                    self.counts["fill_calls"] += 1
        self.counts["cells_filled"] += len(cells)

    def _delete_note(self, cell) -> None:
        note = cell.note
        if note is None:
            return
        if not self.remote and not _ours(note):
            return  # a person's note: keep it
        note.delete()
        self.counts["notes_deleted"] += 1

    def _set_note(self, cell, text: str) -> None:
        try:
            note = cell.note
            if note is not None:
                if self.remote or _ours(note):
                    note.delete()
                    self.counts["notes_deleted"] += 1
                else:
                    return  # a person's note stays; the message is in 校验结果
            cell.add_note(text)
            self.counts["notes_added"] += 1
        except NotImplementedError:
            # Clients without notes (older Office.js, Google Sheets): the fill and 校验结果 remain.
            self.counts["notes_unsupported"] += 1


def note_text(mark: Mark) -> str:
    """The note on a marked cell: our tag, then the message under its level (as the file writer)."""
    message = mark.message if mark.message.startswith("【") else f"【{mark.level}】{mark.message}"
    return f"{NOTE_TAG}\n{message}"


def _ours(note) -> bool:
    """A note this tool wrote: tagged (live) or authored "healthbook" (the file writer)."""
    try:
        if str(note.text).startswith(NOTE_TAG):
            return True
        return str(note.api.Author) == NOTE_AUTHOR
    except Exception:  # an engine that cannot tell: leave the note alone
        return False


def chunk_addresses(addresses: Iterable[str], limit: int = COM_ADDRESS_LIMIT) -> list[str]:
    """Join cell addresses into comma-separated strings no longer than ``limit``."""
    chunks, current = [], ""
    for address in addresses:
        candidate = f"{current},{address}" if current else address
        if len(candidate) > limit and current:
            chunks.append(current)
            current = address
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _width(sw: SheetWrite) -> int:
    """Columns an output sheet's block covers: the contract's, and the banner's two beside them."""
    return len(sw.sheet.columns) + (2 if sw.note else 0)


def _area(cells) -> Area | None:
    """An xlwings range as an ``Area`` (0-based columns, Excel rows)."""
    if cells is None:
        return None
    rows, cols = cells.shape
    return Area(cells.column - 1, cells.row, cells.column + cols - 2, cells.row + rows - 1)


def _clear_blocks(top: int, bottom: int, right: int, keep: list[Area]) -> list[tuple[int, int, int, int]]:
    """Rows ``top``..``bottom``, columns 1..``right``, less the areas in ``keep``: as few
    rectangles (top, left, bottom, right; 1-based) as the kept rows allow."""
    keep = [a for a in keep if a.last_row >= top and a.first_row <= bottom and a.first_col < right]
    kept_rows = sorted({r for a in keep for r in range(max(a.first_row, top), min(a.last_row, bottom) + 1)})
    blocks, start = [], top
    for r in [*kept_rows, bottom + 1]:
        if r > start:
            blocks.append((start, 1, r - 1, right))
        if r <= bottom:
            col = 1
            for first, last in sorted((a.first_col + 1, a.last_col + 1) for a in keep if a.first_row <= r <= a.last_row):
                if first > col:
                    blocks.append((r, col, r, first - 1))
                col = max(col, last + 1)
            if col <= right:
                blocks.append((r, col, r, right))
        start = r + 1
    return blocks


def _last_row(sheet) -> int:
    used = sheet.used_range
    return used.row + used.shape[0] - 1


def _last_column(sheet) -> int:
    used = sheet.used_range
    return used.column + used.shape[1] - 1


def _same(old: object, new: object) -> bool:
    """Whether a cell as read already holds ``new`` (Excel gives floats, dates as datetimes)."""
    old, new = _read_value(old), _write_value(new)
    if isinstance(new, str) and new.startswith("'"):
        new = new[1:]
    if isinstance(old, str) and not old.strip():
        old = ""  # only spaces: the reader's blank, and staff's spaces stay where a blank is written
    if old in ("", None) or new in ("", None):
        return old in ("", None) and new in ("", None)
    if isinstance(old, str) and isinstance(new, str):
        return old.strip() == new.strip()
    if isinstance(new, datetime) and new.time() == datetime.min.time():
        new = new.date()
    return old == new


def _runs(columns: list[int]) -> list[tuple[int, int]]:
    """Sorted row or column numbers as runs of adjacent ones: (first, last)."""
    runs: list[tuple[int, int]] = []
    for c in columns:
        if runs and runs[-1][1] + 1 == c:
            runs[-1] = (runs[-1][0], c)
        else:
            runs.append((c, c))
    return runs


def _column_runs(cells: dict[tuple[int, int], object]) -> list[tuple[tuple[int, int], list]]:
    """Changed cells grouped into vertical runs: ((first row, column), values)."""
    runs: list[tuple[tuple[int, int], list]] = []
    for (r, c) in sorted(cells, key=lambda rc: (rc[1], rc[0])):
        if runs and runs[-1][0][1] == c and runs[-1][0][0] + len(runs[-1][1]) == r:
            runs[-1][1].append(cells[(r, c)])
        else:
            runs.append(((r, c), [cells[(r, c)]]))
    return runs


def _read_value(value: object) -> object:
    # Excel hands back datetimes for date cells; calamine gives a date when there is no time part.
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date()
    return value


def _write_value(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, date)):
        return value.item()  # numpy scalars
    if isinstance(value, str) and (value.startswith(FORMULA_STARTS) or COERCIBLE_TEXT.match(value)):
        return "'" + value  # text stays text (Excel's apostrophe prefix is not part of the value)
    return value


# An in-workbook target ("'台账'!B5"); anything else (a file path) is linked as it is.
INTERNAL_TARGET = re.compile(r"^'?[^/\\:]+'?!\$?[A-Z]+\$?\d+$")


def _hyperlink(target: str, value: object) -> str:
    """A HYPERLINK formula: part of the bulk value write, so a link costs no extra call."""
    shown = '""' if value is None else (
        str(value) if isinstance(value, (int, float)) else '"' + str(value).lstrip("'").replace('"', '""') + '"')
    address = f"#{target}" if INTERNAL_TARGET.match(target) else target
    return f'=HYPERLINK("{address.replace(chr(34), chr(34) * 2)}",{shown})'


def _hex(colour: str | None) -> str | None:
    return f"#{colour}" if colour else None
