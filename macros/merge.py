"""Merging submitted ledger rows into the master's ledger, in memory: pure, no files.

Rows are values keyed by column key: the master's as the reader gives them, compared as the validator
reads them (``AsRead.row``: "6月22日" typed there is 2020-06-22) but never rewritten unless merged
into; the submitted ones as read already (consolidation hands over the validator's reading, which is
what gets written). Merge by 记录编号: a new key is
added, a known key with changed values is updated (every changed field becomes a ``Change``), an
unchanged one is left alone; nothing is deleted. A row without 记录编号 gets its committee's next
free number, unless an identical row of that committee is already in the ledger (then it was merged
before: re-running on the same files changes nothing).
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter

from . import schema
from .normalise import AsRead, code_text

ADDED, UPDATED, UNCHANGED = "新增", "修改", "未变化"
KEY = "record_id"
COMMITTEE = "committee_id"
SOURCE = "source"
# Compared and copied from a submission: every contract column except the key and 来源.
DATA_COLUMNS: tuple[str, ...] = tuple(k for k in schema.LEDGER.keys if k not in (KEY, SOURCE))
NUMBER_DIGITS = 4


@dataclass(slots=True)
class Change:
    """One line of 变更记录."""

    time: datetime
    source: str
    record_id: str
    action: str
    column: str | None = None  # Chinese header; None for an added row
    old: object = None
    new: object = None

    def row(self) -> dict:
        """Values keyed by the 变更记录 sheet's column keys."""
        return {
            "time": self.time, "source": self.source, "record_id": self.record_id,
            "action": self.action, "column": self.column,
            "old": display(self.old), "new": display(self.new),
        }


@dataclass(slots=True)
class RowOutcome:
    """What happened to one submitted row."""

    row: int | None  # Excel row in the submission
    record_id: str
    action: str  # ADDED / UPDATED / UNCHANGED
    columns: tuple[str, ...] = ()  # Chinese headers of the changed columns
    assigned: bool = False  # the 记录编号 was given by consolidation
    similar: str | None = None  # an added row's look-alike already merged (a correction re-sent without its key?)
    # A prefilled row (its form holds the values it was given, ``base``): the Chinese headers of the
    # columns the committee did not edit where the master now differs (the master's value stays),
    # and whether the master no longer holds the record at all (it is not added back).
    kept: tuple[str, ...] = ()
    # Of those, the columns kept because the committee sent again what it had sent before (``SentValues``),
    # with the master's value: (Chinese header, the master's value, the value sent again).
    resent: tuple[tuple[str, object, object], ...] = ()
    # The master no longer holds the record (the office deleted it) and the row is what it was given
    # (prefilled form) or what the committee last sent (``SentValues``): it is not added back.
    gone: bool = False
    rekeyed: bool = False  # a prefilled record whose 记录编号 the clerk cleared, known by its values
    # Changed columns another file of this run had changed first: (Chinese header, that file, its value).
    overrode: tuple[tuple[str, str, object], ...] = ()
    # When ``similar`` differs from the row in one data column alone: (Chinese header, its value, the row's).
    differs: tuple[str, object, object] | None = None
    # Updated columns the office had changed in the master since the committee's form was made (or
    # since it last sent the record), edited by the committee too: (Chinese header, the office's
    # value, the committee's). The committee's value applies (its record, its newer statement); both are told.
    conflicts: tuple[tuple[str, object, object], ...] = ()
    # Of those, the cells the committee left blank (a clerk deleting a cell while copying, most
    # often): a blank never erases what the office changed, whose value stays (it is in ``kept``
    # too): (Chinese header, the office's value).
    cleared: tuple[tuple[str, object], ...] = ()
    # Of those, the columns the committee's files had never carried for the record (a column added
    # to a hand-made workbook, left empty): the master's value was the office's all along.
    unsent: tuple[str, ...] = ()
    unkeyed: bool = False  # the row had no 记录编号 in the file (its record's number is news to the committee)
    # An added row without 记录编号 sent as a record a restore took out was (``SentValues.undone``):
    # the number an earlier receipt named for it, given back.
    given_back: bool = False


@dataclass
class MergeResult:
    outcomes: list[RowOutcome] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(o.action == action for o in self.outcomes)


def comparable(value: object) -> object:
    """A value as compared: blanks are None, whole datetimes are dates, numbers are numbers."""
    kind = type(value)  # dispatch on the exact type first: this runs for every merged cell
    if value is None or kind is int or kind is date:
        return value
    if kind is str:
        return value.strip() or None
    if kind is float:
        if value != value:  # NaN
            return None
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, str):
        return value.strip() or None
    return value


# A bare number in a date column is an Excel serial (a date whose cell format was lost). Written into
# the master's date column it reads back as a date, so it must compare as one: else every re-run of
# the same file would add the row again.
DATE_KEYS = frozenset(c.key for c in schema.LEDGER.columns if c.type == "date")
EXCEL_EPOCH = datetime(1899, 12, 30)


def comparable_in(key: str, value: object) -> object:
    """``comparable`` for the column ``key``: date columns read numbers as Excel serials."""
    value = comparable(value)
    if key in DATE_KEYS and type(value) in (int, float) and 1 <= value < 2958466:
        moment = EXCEL_EPOCH + timedelta(days=value)
        return moment.date() if moment.time() == datetime.min.time() else moment
    return value


def display(value: object) -> object:
    """A value as 变更记录 shows it (dates as text so they read the same everywhere)."""
    kind = type(value)  # the common cell types first: this runs for every added row's summary
    if kind is str:
        return value.strip() or None
    if value is None or kind is int:
        return value
    if kind is date:
        return value.isoformat()
    value = comparable(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


SUMMARY_COLUMNS = ("date", "project_id", "activity", "quantity")


def summary(row: dict) -> str:
    """A short text naming an added row in 变更记录."""
    return " ".join([str(v) for v in map(display, map(row.__getitem__, SUMMARY_COLUMNS)) if v is not None])


# A row without 记录编号 matching an earlier record on all of these but differing elsewhere is most
# likely that record corrected and sent again without its key (it is added, and the receipt says so).
SIMILAR_COLUMNS = schema.LIKELY_DUPLICATE_KEYS


def similarity(row: dict) -> tuple | None:
    """The row's values in ``SIMILAR_COLUMNS`` as compared (a date's time of day left out), or
    None when one is blank."""
    values = []
    for key in SIMILAR_COLUMNS:  # the common cell types first: this runs for every ledger row
        value = row.get(key)
        kind = type(value)
        if kind is str:
            value = value.strip()
        elif kind is datetime:
            value = value.date()
        elif kind is not date:
            value = comparable_in(key, value)
            if isinstance(value, datetime):
                value = value.date()
        if value is None or value == "":
            return None
        values.append(value)
    return tuple(values)


def same_data(row: dict, other: dict, columns: set[str]) -> bool:
    """Whether two rows hold the same values, as compared, in the data columns of ``columns``."""
    return all(comparable_in(k, row.get(k)) == comparable_in(k, other.get(k)) for k in DATA_COLUMNS if k in columns)


def record_number(record_id: object, committee_id: str) -> int | None:
    """The number in ``<committee>-<digits>``, or None when the key is not that committee's."""
    text = str(record_id or "").strip()
    digits = text[len(committee_id) + 1:]
    # isdecimal is what the regex \d matched (full-width digits too, which int() reads)
    if text.startswith(committee_id) and text[len(committee_id):len(committee_id) + 1] == "-" and digits.isdecimal():
        return int(digits)
    return None


NOT_SENT = 0  # a column the committee's files have not carried for the record
_PACKED = struct.Struct(f"<{len(DATA_COLUMNS)}I")
_POSITION = {k: i for i, k in enumerate(DATA_COLUMNS)}
_ALIKE = tuple(_POSITION[k] for k in SIMILAR_COLUMNS)  # 居委会编号, 项目编号, 日期, 活动内容


def digest(value: object) -> int:
    """A value as compared (``comparable_in``) as a stable 32-bit number, never ``NOT_SENT``: the
    same in every run (Python's own ``hash`` of text changes from process to process). Text is
    digested as typed ("30" sent again as the number 30 is the same value sent again)."""
    return (zlib.crc32(value.encode()) if type(value) is str else zlib.crc32(repr(value).encode())) or 1


def _digests(values: tuple) -> list[int]:
    """``digest`` of each value (the common case inlined: this runs for every merged row)."""
    crc = zlib.crc32
    found = [crc(v.encode()) if type(v) is str else crc(repr(v).encode()) for v in values]
    return found if NOT_SENT not in found else [d or 1 for d in found]


class SentValues:
    """What each record's committee last sent, one ``digest`` per data column (``DATA_COLUMNS``
    order; ``NOT_SENT`` for a column its files did not carry), packed as base64 text by 记录编号.

    A committee sends its cumulative form again and again, records it never edited included: a value
    it sends again unchanged is not news, and must not undo what the office corrected in the master
    since (Excel, by hand: nothing records it). Digests, not values: ~60 bytes a record whatever the
    text, and a value is only ever compared for equality."""

    def __init__(self, entries: dict[str, str] | None = None, undone: dict[str, str] | None = None,
                 undone_on: dict[str, str] | None = None):
        self.entries: dict[str, str] = entries if entries is not None else {}
        # Records a restore took out of the master with the runs that added them (``undo``), by what
        # they were last sent as: a row sent again so, without its key, takes back the number its
        # receipt named (``LedgerMerge._undone_as``), not a new one.
        self.undone: dict[str, str] = undone if undone is not None else {}
        # The day (ISO text) each ``undone`` record was taken out: kept for a while only (``expire``).
        self.undone_on: dict[str, str] = undone_on if undone_on is not None else {}
        self._undone_by_packed: dict[str, list[str]] | None = None
        self._undone_by_alike: dict[tuple, list[str]] | None = None
        self.updated = False  # an entry was added or changed (the file beside the master is out of date)
        self.earlier = bool(self.entries)  # anything sent before this run (else nothing to look up)
        self._by_packed: dict[str, list[str]] | None = None  # packed digests → records (``records_sent_as``)
        self._last: tuple[tuple | None, str] = (None, "")  # the values ``records_sent_as`` last digested, packed

    def of(self, record_id: str, entries: dict[str, str] | None = None) -> tuple[int, ...] | None:
        """The digests last sent for ``record_id`` (None when unknown or unreadable); ``entries``:
        where to look (default the live ``entries``; a restore's ``undone`` are not looked at)."""
        packed = (self.entries if entries is None else entries).get(record_id)
        if type(packed) is not str:
            return None
        try:
            return _PACKED.unpack(base64.b64decode(packed, validate=True))
        except (binascii.Error, struct.error, ValueError):
            return None

    def remember(self, record_id: str, values: tuple, carried: tuple[int, ...] | None) -> None:
        """``values`` (comparable, ``DATA_COLUMNS`` order; ``fingerprint``) are what the committee sent
        for ``record_id``; ``carried``: the positions its file holds (None: all of them)."""
        if carried is None and self._last[0] is values:
            packed = self._last[1]
        else:
            if carried is None:
                digests = _digests(values)
            else:
                digests = list(self.of(record_id) or self.of(record_id, self.undone) or (NOT_SENT,) * len(DATA_COLUMNS))
                for i in carried:
                    digests[i] = digest(values[i])
            packed = base64.b64encode(_PACKED.pack(*digests)).decode("ascii")
        if self.entries.get(record_id) != packed:
            self.entries[record_id] = packed
            self.updated = True
        if self.undone and self.undone.pop(record_id, None) is not None:  # merged again: live once more
            self.undone_on.pop(record_id, None)
            self.updated = True

    def restate(self, record_id: str, digests: dict[int, int]) -> None:
        """Set what the committee last sent for ``record_id`` at the positions ``digests`` holds
        (a blank it sent that was not applied: its earlier statement stands)."""
        current = self.of(record_id)
        if current is None:
            return
        values = list(current)
        for position, value in digests.items():
            values[position] = value
        packed = base64.b64encode(_PACKED.pack(*values)).decode("ascii")
        if self.entries.get(record_id) != packed:
            self.entries[record_id] = packed
            self.updated = True

    def records_sent_as(self, values: tuple, carried: tuple[int, ...] | None) -> list[str]:
        """The records last sent with exactly ``values`` (comparable, ``DATA_COLUMNS`` order) in the
        columns ``carried`` and nothing in the others: a row sent again without its 记录编号."""
        if self._by_packed is None:
            self._by_packed = defaultdict(list)
            for record_id, packed in self.entries.items():
                self._by_packed[packed].append(record_id)
        if not self._by_packed:  # nothing sent before this run (a new master, or the file missing)
            return []
        packed = self._packed(values, carried)
        # Entries remembered since the index was built are not in it (those rows are in the master as sent).
        return [k for k in self._by_packed.get(packed, ()) if self.entries.get(k) == packed]

    def undone_as(self, values: tuple, carried: tuple[int, ...] | None) -> list[str]:
        """The records a restore undid (``undone``) last sent with exactly ``values``, as ``records_sent_as``."""
        if self._undone_by_packed is None:
            self._undone_by_packed = defaultdict(list)
            for record_id, packed in self.undone.items():
                self._undone_by_packed[packed].append(record_id)
        packed = self._packed(values, carried)
        # An entry merged again since the index was built has left ``undone``.
        return [k for k in self._undone_by_packed.get(packed, ()) if self.undone.get(k) == packed]

    def undone_alike(self, values: tuple) -> list[str]:
        """The records a restore undid (``undone``) last sent with ``values``' 居委会编号, 项目编号, 日期 and
        活动内容 (``SIMILAR_COLUMNS``, as compared), whatever they were sent with in the other columns."""
        if self._undone_by_alike is None:
            self._undone_by_alike = defaultdict(list)
            for record_id in self.undone:
                digests = self.of(record_id, self.undone)
                if digests is not None:  # a column not sent (NOT_SENT) matches no digest
                    self._undone_by_alike[tuple(digests[p] for p in _ALIKE)].append(record_id)
        found = self._undone_by_alike.get(tuple(digest(values[p]) for p in _ALIKE), ())
        return [k for k in found if k in self.undone]  # not those merged again since

    def _packed(self, values: tuple, carried: tuple[int, ...] | None) -> str:
        if carried is None and self._last[0] is values:
            return self._last[1]
        digests = [NOT_SENT] * len(DATA_COLUMNS)
        for i in range(len(DATA_COLUMNS)) if carried is None else carried:
            digests[i] = digest(values[i])
        packed = base64.b64encode(_PACKED.pack(*digests)).decode("ascii")
        if carried is None:  # the row is remembered next, digested just so: not twice
            self._last = (values, packed)
        return packed

    def forget(self, record_ids) -> None:
        """Drop what was recorded for ``record_ids`` (a restored master no longer holds what they sent)."""
        for record_id in record_ids:
            if self.entries.pop(record_id, None) is not None:
                self.updated = True

    def undo(self, record_ids, on: str) -> None:
        """Move what was recorded for ``record_ids`` (records a restore took out of the master, on the
        day ``on``, ISO text) from the live entries to ``undone``: sent again, they are no longer old
        news nor records the office deleted, and a row sent again as they were takes back their number."""
        for record_id in record_ids:
            packed = self.entries.pop(record_id, None)
            if packed is not None:
                self.undone[record_id] = packed
                self.undone_on[record_id] = on
                self.updated = True

    def expire(self, before: str, today: str) -> None:
        """Drop the ``undone`` records taken out before the day ``before`` (ISO text): their files were
        not merged again in time, and a row sent long after takes a new number, as any (theirs stay
        given: ``consolidate.keep_numbers``). Those without a day (a file from before days were kept)
        are dated ``today``."""
        for record_id in list(self.undone):
            day = self.undone_on.get(record_id)
            if type(day) is not str:
                self.undone_on[record_id] = today
                self.updated = True
            elif day < before:
                del self.undone[record_id]
                del self.undone_on[record_id]
                self.updated = True
        for record_id in [k for k in self.undone_on if k not in self.undone]:
            del self.undone_on[record_id]
            self.updated = True

    def held_again(self, held) -> None:
        """Move back to the live entries the ``undone`` records the master holds again (restored
        from a later backup): there, what they were sent as is what the master was merged from,
        and a record the office deletes after must not come back under its number."""
        for record_id in [k for k in self.undone if k in held]:
            packed = self.undone.pop(record_id)
            self.undone_on.pop(record_id, None)
            self.entries.setdefault(record_id, packed)
            self.updated = True


class LedgerMerge:
    """The master's ledger rows, merged into in place; ``rows`` keeps the master's row order."""

    def __init__(self, rows: list[dict], issued: Callable[[], dict[str, int]] | None = None,
                 year: int | None = None, sent: SentValues | None = None):
        """``issued``: each committee's highest record number ever given (the change log's added
        rows), asked the first time a number is given: a record staff deleted keeps its number,
        which a receipt or a prefilled form may still name. ``year``: 设置 年度, which completes a
        month and day typed as text in the master ("6月22日") when its rows are compared as read.
        ``sent``: what committees last sent per record (read from earlier runs, updated by this
        one); without it a re-sent value always applies."""
        self.rows = rows
        self._issued = issued
        self.sent = sent
        # The master's values are compared as the validator reads them (``reader.row``): a record
        # an earlier version merged as typed ("6月22日", "３５") is the same record read.
        self.reader = AsRead(schema.LEDGER, year)
        # Per committee, its fingerprints by (项目编号, 活动内容) and by (日期, 完成数量, 状态) (``near_keys``): built for a
        # committee when a row of its is first added with a new number (from ``_unindexed``, the
        # fingerprints grouped by committee once).
        self._near: dict[object, tuple[dict, dict]] = {}
        self._unindexed: dict[object, list[tuple]] | None = None
        self.index: dict[str, int] = {}
        self.numbers: dict[str, int] = defaultdict(int)
        self.fingerprints: dict[tuple, list[int]] = defaultdict(list)
        self.similar: dict[tuple, str] = {}  # similarity → the first record holding it
        self.changed: dict[tuple[str, str], tuple[str, object]] = {}  # (record, column) → (file, value) this run
        self._file_alike: Counter | None = None  # the merged file's keyless rows by ``similarity`` (``_undone_alike``)
        self._file_rows: list[tuple[int | None, dict]] = []
        for i, row in enumerate(rows):
            self._register(i, row)
        if sent is not None and sent.undone:
            sent.held_again(self.index)

    def _register(self, i: int, row: dict) -> None:
        read = self.reader.row(row)
        # Keys as the validator and the submission reader read them: staff typing "c01-0028" in
        # the master made a twin "C01-0028" the next number given, which updates then landed on.
        key = code_text(row.get(KEY))
        if key is not None:
            self.index.setdefault(key, i)
            committee = code_text(row.get(COMMITTEE))
            if committee is not None:
                number = record_number(key, str(committee))
                if number is not None:
                    self.numbers[str(committee)] = max(self.numbers[str(committee)], number)
            alike = similarity(read)
            if alike is not None:
                self.similar.setdefault(alike, str(key))
        self.fingerprints[fingerprint(read)].append(i)

    def owner(self, record_id: str) -> str | None:
        """The committee of the master row keyed ``record_id`` (None when the key is new)."""
        i = self.index.get(record_id)
        return None if i is None else code_text(self.rows[i].get(COMMITTEE))

    def next_id(self, committee_id: str) -> str:
        if self._issued is not None:
            for committee, number in self._issued().items():
                self.numbers[committee] = max(self.numbers[committee], number)
            self._issued = None
        number = self.numbers[committee_id] + 1
        key = f"{committee_id}-{number:0{NUMBER_DIGITS}d}"
        while key in self.index:
            number += 1
            key = f"{committee_id}-{number:0{NUMBER_DIGITS}d}"
        self.numbers[committee_id] = number
        return key

    def number(self, positions: list[int], when: datetime) -> list[Change]:
        """Give the ledger rows at ``positions`` (typed in the master with 记录编号 blank) their
        committee's next free number (``next_id``), and 来源 手工 where blank; returns their 变更记录
        lines (one added line a row, from 手工)."""
        changes = []
        for i in positions:
            row = self.rows[i]
            row[KEY] = self.next_id(str(code_text(row.get(COMMITTEE))))
            self.index.setdefault(row[KEY], i)
            if code_text(row.get(SOURCE)) is None:
                row[SOURCE] = schema.MANUAL_SOURCE
            changes.append(Change(when, schema.MANUAL_SOURCE, row[KEY], ADDED, None, None, summary(row)))
        return changes

    def _sent_as(self, row: dict, fp: tuple, carried: tuple[int, ...] | None,
                 taken: set[str]) -> tuple[str | None, bool]:
        """The record of the row's committee last sent with exactly the row's values, when a row without
        记录编号 (a cumulative workbook typed by hand) is sent again after the office corrected it: that
        record, not a new one; (None, False) when there is none, or each is another row of this file already.

        A record the master no longer holds comes second, with True: the office deleted it (a restore
        moves what the runs it undid added out of the live entries: ``consolidate.undo_sent``), and
        the row sent again unchanged must not bring it back. Only when the file carries 居委会编号 (digested with the rest)."""
        committee = code_text(row.get(COMMITTEE))
        found = self.sent.records_sent_as(fp, carried)
        if not found:
            return None, False
        held = _unused((k for k in found if k in self.index
                        and code_text(self.rows[self.index[k]].get(COMMITTEE)) == committee), taken)
        if held is not None or (carried is not None and _COMMITTEE_AT not in carried):
            return held, False
        gone = _unused((k for k in found if k not in self.index), taken)
        return gone, gone is not None

    def _undone_as(self, row: dict, fp: tuple, carried: tuple[int, ...] | None, taken: set[str]) -> str | None:
        """The record of the row's committee a restore took out (``SentValues.undone``) that was last
        sent with exactly the row's values, when the master does not hold it: a row without 记录编号
        merged again after the restore, which takes back the number its receipt named."""
        committee = code_text(row.get(COMMITTEE))
        if committee is None:
            return None
        return _unused((k for k in self.sent.undone_as(fp, carried)
                        if k not in self.index and record_number(k, str(committee)) is not None), taken)

    def _undone_alike(self, row: dict, fp: tuple, carried: tuple[int, ...] | None, taken: set[str]) -> str | None:
        """The record a restore took out that a row without 记录编号 is, edited by the committee since
        it was last sent (so ``_undone_as`` finds nothing): the one undone record of the row's
        committee with its 日期, 项目编号 and 活动内容 (``similarity``), when that is unambiguous — no other
        undone record has them, no other keyless row of the file has them, the master holds no
        record with them, and the file carries those columns. It takes back its number as a row
        sent unchanged would; otherwise the row gets a new number."""
        committee = code_text(row.get(COMMITTEE))
        alike = similarity(row)
        if committee is None or alike is None or alike in self.similar or (
                carried is not None and not all(p in carried for p in _ALIKE)):
            return None
        if self._file_alike is None:
            self._file_alike = Counter(similarity(r) for _, r in self._file_rows if code_text(r.get(KEY)) is None)
        if self._file_alike[alike] != 1:
            return None
        found = self.sent.undone_alike(fp)
        if len(found) != 1:
            return None
        record = found[0]
        if record in self.index or record in taken or record_number(record, str(committee)) is None:
            return None
        return record

    def _sent_gone(self, key: str, row: dict, carried: tuple[int, ...] | None) -> bool:
        """Whether ``key``, which the master no longer holds, was last sent with exactly the row's
        values (in the columns the file carries): a record the office deleted, sent again as before."""
        before = self.sent.of(key) if self.sent is not None and self.sent.earlier else None
        if before is None:  # most new keys: nothing to digest
            return False
        fp = fingerprint(row)
        positions = range(len(DATA_COLUMNS)) if carried is None else carried
        return all(before[p] != NOT_SENT and before[p] == digest(fp[p]) for p in positions)

    def merge(self, rows: list[tuple[int | None, dict]], columns: set[str], source: str,
              time: datetime, base: dict[str, dict] | None = None,
              file_keys: set[str] | None = None) -> MergeResult:
        """Merge one file's accepted rows: (Excel row, values) pairs; ``columns`` it carries.

        ``base``: for a form prefilled with the committee's records, each record's values as the
        form was given them (by 记录编号). Only what the committee edited is applied: a value the
        office changed in the master since stays, and a record the office removed is not added back.
        ``file_keys``: the 记录编号 on every row of the file, refused rows too (default: those of
        ``rows``): a record whose own row was refused is not one whose key the clerk cleared.
        With ``self.sent`` the same holds for what the committee sent before, form or not: a value it
        sends again unchanged is not applied over a master that differs (``RowOutcome.resent``), and a
        row exactly as a record the master no longer holds was last sent is not added back (``gone``);
        every merged row's values are then remembered as what it last sent. A row without 记录编号
        sent as a record a restore took out was (``SentValues.undone``) is added back under its
        number (``given_back``): the one the committee's receipt named; so is a row the committee
        edited since, when one undone record alone has its date, project and activity
        (``_undone_alike``). A cell the committee edited that the office had changed too is
        applied and named (``RowOutcome.conflicts``), unless the committee left it blank: a blank
        never erases the office's value (``cleared``).
        """
        result = MergeResult()
        outcomes, changes = result.outcomes, result.changes
        compared = [k for k in DATA_COLUMNS if k in columns]
        sent = self.sent
        self._file_alike, self._file_rows = None, rows
        carried = None if len(compared) == len(DATA_COLUMNS) else tuple(_POSITION[k] for k in compared)
        blank = dict.fromkeys(self.rows[0] if self.rows else schema.LEDGER.keys)
        ledger, index, fingerprints = self.rows, self.index, self.fingerprints
        used: dict[tuple, int] = defaultdict(int)
        resent_keyless: set[str] = set()  # records rows without a key were found to be (``records_sent_as``)
        added: list[tuple[tuple | None, int, tuple | None]] = []
        looked: list[tuple[RowOutcome, tuple]] = []  # added rows given a number: look-alikes looked for at the end
        # A prefilled record's row whose 记录编号 the clerk cleared, known by the values it was given,
        # or else by its date, project and activity when one record alone has them (the master's
        # record may have changed since: without this it would be added again).
        unclaimed: set[str] = set()
        by_values: dict[tuple, list[str]] = defaultdict(list)
        by_alike: dict[tuple, list[str]] = defaultdict(list)
        if base:
            named = file_keys if file_keys is not None else {code_text(row.get(KEY)) for _, row in rows}
            for given, values in base.items():
                values = self.reader.row(values)  # the master's values, as the form was given them
                if given not in named:
                    unclaimed.add(given)
                    by_values[fingerprint(values)].append(given)
                    by_alike[similarity(values)].append(given)
        for excel_row, row in rows:
            key = code_text(row.get(KEY))
            fp = None
            if key is None:
                # An identical row already merged (an earlier run on this file) is not added again;
                # the k-th identical row of this file matches the k-th such row of the ledger.
                fp = fingerprint(row)
                seen = fingerprints.get(fp)
                if seen is not None and used[fp] < len(seen):
                    i = seen[used[fp]]
                    used[fp] += 1
                    record = code_text(ledger[i][KEY]) or str(ledger[i][KEY])  # as ``index`` keys it
                    outcomes.append(RowOutcome(excel_row, record, UNCHANGED))
                    if sent is not None:
                        sent.remember(record, fp, carried)
                        resent_keyless.add(record)
                    continue
                key = _cleared_key(row, fp, unclaimed, by_values, by_alike) if unclaimed else None
                assigned, rekeyed, given_back = False, key is not None, False
                if key is not None:
                    unclaimed.discard(key)
                elif sent is not None and sent.earlier and (found := self._sent_as(row, fp, carried, resent_keyless))[0]:
                    key = found[0]
                    resent_keyless.add(key)
                    if found[1]:  # a record the office deleted, sent again as before: not back
                        outcomes.append(RowOutcome(excel_row, key, UNCHANGED, gone=True))
                        continue
                elif sent is not None and sent.undone and (
                        back := self._undone_as(row, fp, carried, resent_keyless)
                        or self._undone_alike(row, fp, carried, resent_keyless)):
                    key, given_back = back, True
                    resent_keyless.add(key)
                else:
                    key, assigned = self.next_id(str(comparable(row.get(COMMITTEE)))), True
            else:
                key, assigned, rekeyed, given_back = str(key), False, False, False
            i = index.get(key)
            was = self.reader.row(base[key]) if base and not assigned and key in base else None
            edited = compared if was is None else [
                k for k in compared if comparable_in(k, was.get(k)) != comparable_in(k, row.get(k))]
            # A record a restore took out (``undone``) was not deleted by the office: its row comes back.
            if i is None and (not edited if was is not None else
                              not assigned and not rekeyed and self._sent_gone(key, row, carried)) and not (
                                  sent is not None and key in sent.undone):
                outcomes.append(RowOutcome(excel_row, key, UNCHANGED, gone=True, rekeyed=rekeyed))
                continue
            if i is None:
                new = blank.copy()
                new.update(zip(DATA_COLUMNS, map(row.get, DATA_COLUMNS)))
                new[KEY], new[SOURCE] = key, source
                i = len(ledger)
                ledger.append(new)
                index[key] = i
                alike = similarity(row)
                added.append((fp, i, alike))
                if not assigned:  # an assigned number is already counted by next_id
                    committee = str(comparable(row.get(COMMITTEE)))
                    number = record_number(key, committee)
                    if number is not None:
                        self.numbers[committee] = max(self.numbers[committee], number)
                outcomes.append(RowOutcome(excel_row, key, ADDED, (), assigned,
                                           self.similar.get(alike) if assigned and alike is not None else None,
                                           rekeyed=rekeyed, given_back=given_back))
                changes.append(Change(time, source, key, ADDED, None, None, summary(new)))
                if assigned:
                    looked.append((outcomes[-1], fp))
                if sent is not None:
                    sent.remember(key, fp if fp is not None else fingerprint(row), carried)
                continue
            target = ledger[i]
            held = self.reader.row(target)  # the master's cell typed "6月22日" holds the date 2020-06-22
            differ = [k for k in compared if comparable_in(k, held.get(k)) != comparable_in(k, row.get(k))]
            # What was sent before, read before this row is remembered (only where the master differs).
            before = sent.of(key) if sent is not None and differ else None
            if sent is not None:
                sent.remember(key, fp if fp is not None else fingerprint(row), carried)
            changed = differ if was is None else [k for k in differ if k in edited]
            kept = () if was is None else tuple(schema.LEDGER.header_of(k) for k in differ if k not in edited)
            resent: tuple = ()
            if before is not None and changed:
                # Sent before just so: the master's differing value is the office's correction since.
                # On a prefilled form, only where the office changed the value after the form was
                # made (the master differs from what the form was given): a form issued after the
                # correction, edited back by the clerk to a value sent before, is still an edit.
                again = [k for k in changed
                         if before[_POSITION[k]] != NOT_SENT and before[_POSITION[k]] == digest(comparable_in(k, row.get(k)))
                         and (was is None or comparable_in(k, was.get(k)) != comparable_in(k, held.get(k)))]
                if again:
                    changed = [k for k in changed if k not in again]
                    resent = tuple((schema.LEDGER.header_of(k), target.get(k), row.get(k)) for k in again)
                    kept += tuple(header for header, _, _ in resent)
            conflicts: tuple = ()
            cleared: tuple = ()
            unsent: tuple = ()
            if changed and (was is not None or before is not None):
                conflicts = _conflicts(changed, was, held, before, target, row)
                cleared = tuple((header, office) for header, office, committee in conflicts if comparable(committee) is None)
                # A column the committee never sent for the record, sent now blank: the master's
                # value there is the office's (a note typed since); not erased either.
                never = [k for k in changed if was is None and before is not None
                         and before[_POSITION[k]] == NOT_SENT and comparable(row.get(k)) is None]
                unsent = tuple(schema.LEDGER.header_of(k) for k in never)
                cleared += tuple((schema.LEDGER.header_of(k), target.get(k)) for k in never)
                if cleared:
                    conflicts = tuple(c for c in conflicts if comparable(c[2]) is not None)
                    gone_blank = {header for header, _ in cleared}
                    changed = [k for k in changed if schema.LEDGER.header_of(k) not in gone_blank]
                    kept += tuple(header for header, _ in cleared)
                    if sent is not None:
                        # What the committee last stated there stays what it sent before the blank
                        # (else its old value sent again would be news, undoing the office's value).
                        sent.restate(key, {_POSITION[k]: before[_POSITION[k]] if before is not None
                                           else digest(comparable_in(k, was.get(k)))
                                           for k in DATA_COLUMNS if schema.LEDGER.header_of(k) in gone_blank})
            if not changed:
                outcomes.append(RowOutcome(excel_row, key, UNCHANGED, kept=kept, resent=resent, rekeyed=rekeyed,
                                           cleared=cleared, unsent=unsent))
                continue
            headers, overrode = [], []
            for k in changed:
                header = schema.LEDGER.header_of(k)
                headers.append(header)
                changes.append(Change(time, source, key, UPDATED, header, target.get(k), row.get(k)))
                target[k] = row.get(k)
                earlier = self.changed.get((key, k))
                if earlier is not None and earlier[0] != source:
                    overrode.append((header, *earlier))
                self.changed[(key, k)] = (source, row.get(k))
            target[SOURCE] = source
            outcomes.append(RowOutcome(excel_row, key, UPDATED, tuple(headers), kept=kept, resent=resent,
                                       rekeyed=rekeyed, overrode=tuple(overrode), conflicts=conflicts,
                                       cleared=cleared, unsent=unsent))
        if looked:
            self._look_alikes(looked, outcomes, compared)
        # Registered after the file, so two identical new rows in one file are both added.
        fresh = []  # fingerprints new to the ledger
        for fp, i, alike in added:
            fp = fp if fp is not None else fingerprint(ledger[i])
            seen = fingerprints[fp]
            if not seen:
                fresh.append(fp)
            seen.append(i)
            if alike is not None:
                self.similar.setdefault(alike, ledger[i][KEY])
        if fresh:
            self._index_near(fresh)
        self._file_alike, self._file_rows = None, []
        return result

    def _near_index(self, committee: object) -> tuple[dict, dict]:
        """``committee``'s fingerprints by ``near_keys`` (built on first use)."""
        index = self._near.get(committee)
        if index is None:
            if self._unindexed is None:
                self._unindexed = defaultdict(list)
                for fp in self.fingerprints:
                    self._unindexed[fp[_COMMITTEE_AT]].append(fp)
            index = self._near[committee] = (defaultdict(list), defaultdict(list))
            for fp in self._unindexed.pop(committee, ()):
                _add_near(index, fp)
        return index

    def _index_near(self, fps: list[tuple]) -> None:
        """Fingerprints new to the ledger, into their committee's index (or the ungrouped ones)."""
        last, index = None, None
        for fp in fps:  # a file's rows are one committee's
            committee = fp[_COMMITTEE_AT]
            if index is None or committee != last:
                last, index = committee, self._near.get(committee)
            if index is not None:
                index[0][_TOPIC(fp)].append(fp)
                index[1][_DAY(fp)].append(fp)
            elif self._unindexed is not None:
                self._unindexed[committee].append(fp)

    def _look_alikes(self, looked: list[tuple[RowOutcome, tuple]], outcomes: list[RowOutcome],
                     compared: list[str]) -> None:
        """Name the earlier record each added row (``looked``: outcome, fingerprint) most likely
        corrects: the one record of its committee it differs from in one compared column alone
        (``differs``), else one with the same ``SIMILAR_COLUMNS`` (``similar``, set already).
        A record another row of the file stands for (the committee's cumulative form holds last
        week's session beside this week's) is no candidate; nor are several records differing in
        one column each (a weekly activity told apart by its date alone)."""
        claimed = {code_text(o.record_id) for o in outcomes if o.action != ADDED}
        positions = [DATA_COLUMNS.index(k) for k in compared if k != COMMITTEE]
        indexes: dict[object, tuple[dict, dict]] = {}
        for outcome, fp in looked:
            committee = fp[_COMMITTEE_AT]
            index = indexes.get(committee)
            if index is None:
                index = indexes[committee] = self._near_index(committee)
            same_topic, same_day = index[0].get(_TOPIC(fp), ()), index[1].get(_DAY(fp), ())
            if not (same_topic or same_day):  # most rows: nothing alike
                if outcome.similar in claimed:
                    outcome.similar = None
                continue
            found = []
            for other in dict.fromkeys((*same_topic, *same_day)):
                differ = [p for p in positions if other[p] != fp[p]]
                if len(differ) == 1:
                    found += [(record, i, differ[0]) for i in self.fingerprints[other]
                              if (record := code_text(self.rows[i].get(KEY))) is not None and record not in claimed]
                    if len(found) > 1:
                        break
            if len(found) == 1:
                (record, i, p), = found
                key = DATA_COLUMNS[p]
                outcome.similar = record
                outcome.differs = (schema.LEDGER.header_of(key), self.rows[i].get(key), fp[p])
            elif outcome.similar in claimed:
                outcome.similar = None


def _conflicts(changed: list[str], was: dict | None, held: dict, before: tuple[int, ...] | None,
               target: dict, row: dict) -> tuple[tuple[str, object, object], ...]:
    """Of the columns a row changes (the committee edited them, to a value the master does not
    hold), those the office changed too: on a prefilled form, the master differs from what the form
    was given (``was``); else the master differs from what the committee last sent (``before``).
    Where the master holds what the committee itself last sent, the change was its own (another of
    its files), not the office's. (Chinese header, the master's value, the row's)."""
    found = []
    for k in changed:
        p = _POSITION[k]
        now = comparable_in(k, held.get(k))
        own = before is not None and before[p] != NOT_SENT and before[p] == digest(now)
        if own or (comparable_in(k, was.get(k)) == now if was is not None else before is None or before[p] == NOT_SENT):
            continue
        found.append((schema.LEDGER.header_of(k), target.get(k), row.get(k)))
    return tuple(found)


def _unused(keys, taken: set[str]) -> str | None:
    return next((k for k in keys if k not in taken), None)


def _cleared_key(row: dict, fp: tuple, unclaimed: set[str], by_values: dict, by_alike: dict) -> str | None:
    """The prefilled record a row without 记录编号 was given: the same values, else the only
    unclaimed record with its date, project and activity."""
    same = [k for k in by_values.get(fp, ()) if k in unclaimed]
    if same:
        return same[0]
    alike = similarity(row)
    close = [k for k in by_alike.get(alike, ()) if k in unclaimed] if alike is not None else []
    return close[0] if len(close) == 1 else None


# A row differing from a record of its committee in one data column alone has its 项目编号 and 活动内容
# (when that column is another) or else its 日期, 完成数量 and 状态 (columns every file carries):
# records are found by those, then compared column by column. A committee's records of one topic,
# or of one day with one quantity and status, are few (a weekly activity: one a week).
_TOPIC = itemgetter(*map(DATA_COLUMNS.index, ("project_id", "activity")))
_DAY = itemgetter(*map(DATA_COLUMNS.index, ("date", "quantity", "status")))
_COMMITTEE_AT = DATA_COLUMNS.index(COMMITTEE)


def near_keys(fp: tuple) -> tuple[tuple, tuple]:
    """A fingerprint's (项目编号, 活动内容) and (日期, 完成数量, 状态): where rows differing from it in one
    column find it."""
    return _TOPIC(fp), _DAY(fp)


def _add_near(index: tuple[dict, dict], fp: tuple) -> None:
    topic, day = near_keys(fp)
    index[0][topic].append(fp)
    index[1][day].append(fp)


def fingerprint(row: dict) -> tuple:
    """A row's data values (not its key or source), as compared."""
    values = list(map(row.get, DATA_COLUMNS))
    # ``comparable_in`` inlined for the common cell types: this runs for every row without a key.
    for i, value in enumerate(values):
        kind = type(value)
        if kind is str:
            values[i] = value.strip() or None
        elif value is None or kind is date or (kind is int and i not in _DATE_POSITIONS):
            continue
        else:
            values[i] = comparable_in(DATA_COLUMNS[i], value)
    return tuple(values)


_DATE_POSITIONS = frozenset(i for i, k in enumerate(DATA_COLUMNS) if k in DATE_KEYS)
