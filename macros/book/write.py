"""The safe writer: owned sheets' cell data and marks, written inside the zip; the rest untouched.

``FileBook(path).write(sheets, marks)``:

1. take the lock beside the master (another run waits, then ``WorkbookBusy``);
2. refuse while Excel/WPS/LibreOffice has it open (``WorkbookBusy`` naming the user);
3. build the new package in memory: owned sheets' ``sheetData`` replaced, marks applied, styles
   and notes grown — every other part kept as bytes;
4. write it to a temporary file in the same folder, fsync, re-read and verify it (zip parts,
   grow-only parts, values via calamine);
5. back the master up (``backups/``, keeping the newest N), check the owner file again, and
   ``os.replace`` the temporary file over the master (then fsync the folder).

A crash at any point leaves the old file or the new one. ``stage()`` writes the would-be result
beside a busy master as ``<stem>-待合并-<timestamp><suffix>``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

from python_calamine import CalamineWorkbook

from .. import schema
from ..collect import collect_seldom
from ..errors import FolderNotWritable, HealthbookError, WorkbookBusy, WorkbookNotFound, os_reason
from . import marks as marking
from .backup import (
    backup_dir,
    backup_file,
    backup_labels,
    backups_to_keep,
    glob_escape,
    list_backups,
    other_backups,
    prune_backups,
    same_bytes,
)
from .lock import DEFAULT_WAIT, WorkbookLock, check_not_open, owner_of
from .ooxml import (
    NS_MAIN,
    NS_REL,
    REL_COMMENTS,
    REL_VML,
    attrs_of,
    has_formula,
    insert_before_any,
    parse_rels,
    rels_name,
    workbook_part,
)
from .owned import Written, blank_sheet_xml, rewrite_sheet
from .package import Package
from .read import Workbook, actual_sheet_name, read_workbook
from .tables import grow_tables, table_parts
from .verify import (
    OWNED_CHILDREN,
    GridReads,
    VerifyError,
    check_parts,
    check_sheet_frame,
    check_table_grew,
    check_values,
    check_workbook_grew,
    grid,
)
from .write_types import Mark, SheetWrite

STAGED = "待合并"
REFUSED = "核对未通过"  # <stem>-待合并-核对未通过-<time>: a result the check refused, kept as evidence
EDITED_AFTER = timedelta(hours=1)  # a staged result saved this long after its time holds someone's work
TEMP_PREFIX = ".hb-"  # temporary files: .hb-<name>-<random>.tmp, removed when a run ends
OWNED_NAMES = {s.name for s in schema.OWNED_SHEETS}
NOTE_PART = re.compile(r"(^|/)comments\d*\.xml$|\.vml$")
# CT_Workbook children that come after calcPr.
CALC_PR_FOLLOWERS = ("oleSize", "customWorkbookViews", "pivotCaches", "smartTagPr", "smartTagTypes",
                     "webPublishing", "fileRecoveryPr", "webPublishObjects", "extLst")


# A staged result's name, as ``_staged_name`` makes it (a copy Windows or WPS named "… - 副本" or "… (1)" too).
_STAGED_NAME = re.compile(rf"^(?P<stem>.+)-{STAGED}-(?P<refused>{REFUSED}-)?\d{{8}}-\d{{6}}")


class StagedNotMaster(HealthbookError):
    """A staged result (``<stem>-待合并-<time>``) named where the master belongs."""

    def __init__(self, path: Path, master: str, refused: bool):
        name = Path(path).name
        if refused:
            what = (f"是写入主工作簿 {master} 前核对未通过而留下的结果，只供技术联系人查看，不是主工作簿。"
                    "请把它交给技术联系人，不要在其中录入；")
        else:
            what = (f"是主工作簿 {master} 被占用（在 Excel 中打开）时暂存的汇总结果，只供查看，不是主工作簿，"
                    "下次汇总写入主工作簿后就过时了。请不要在其中录入；如已在其中改过内容，请把改动做到主工作簿里。"
                    f"请关闭主工作簿 {master}，再对它运行（如 healthbook consolidate \"{master}\"），收件箱里的填报表会重新汇总；")
        super().__init__(f"{name} {what}本次没有读取或写入它。")


def staged_master(path: Path | str) -> tuple[str, bool] | None:
    """(the master's file name, whether the check refused it) when ``path`` is named as a result
    staged beside a master; None for any other name."""
    path = Path(path)
    m = _STAGED_NAME.match(path.stem)
    return (m["stem"] + path.suffix, bool(m["refused"])) if m else None


def refuse_staged(path: Path | str) -> None:
    """Raise ``StagedNotMaster`` for a staged result: one worked on becomes a second, diverging master."""
    found = staged_master(path)
    if found is not None:
        raise StagedNotMaster(Path(path), *found)


class WriteRefused(HealthbookError):
    """The written file failed its own check; the master was left as it was."""

    def __init__(self, path: Path, reason: str, staged: Path | None = None):
        self.reason, self.staged = reason, staged
        where = f"结果已暂存为 {staged.name}（供查看，勿当作主工作簿使用）。" if staged else ""
        super().__init__(f"写入 {Path(path).name} 前的核对未通过：写好的文件与应有的内容不符（技术细节：{reason}），"
                         f"为免损坏主工作簿，没有替换它，主工作簿未改动。{where}请把该文件和这条信息发给技术联系人。")


@dataclass
class WriteResult:
    """What a write did."""

    path: Path
    sheets: list[str]
    marks_applied: int = 0
    marks_skipped: list[Mark] = field(default_factory=list)
    backup: Path | None = None
    parts_changed: list[str] = field(default_factory=list)
    staged: Path | None = None  # set by write_or_stage when the master was busy
    busy: str = ""  # why it was busy (the Chinese message)
    tables_grown: list[str] = field(default_factory=list)  # table parts grown over appended rows
    dropped: list[Path] = field(default_factory=list)  # staged results this write or staging made out of date


class FileBook:
    """A master workbook file: one bulk read, and safe writes of the sheets the macros own."""

    def __init__(self, path: Path | str, wait: float = DEFAULT_WAIT):
        self.path = Path(path)
        refuse_staged(self.path)  # report/rollup/validate/consolidate never work on a staged copy
        self.lock = WorkbookLock(self.path, wait)
        self._signature: tuple | None = None
        self._grids: dict[str, list[list]] = {}

    def read(self, sheets: list[schema.Sheet] | None = None) -> Workbook:
        """The contract's input sheets (see ``read_workbook``)."""
        grids: dict[str, list[list]] = {}
        book = read_workbook(self.path, sheets, grids)
        self._signature = _signature(self.path)
        # The ledger as read: the write compares its rows with this instead of reading it again
        # (the signature check makes sure the file is still the one read).
        self._grids = {name: grid for name, grid in grids.items() if name == schema.LEDGER.name}
        return book

    @contextmanager
    def locked(self) -> Iterator[FileBook]:
        """Hold the lock across a read → change → write cycle (consolidation does)."""
        with self.lock:
            yield self

    def write(self, sheets: list[SheetWrite], marks: list[Mark] | None = None,
              keep_backups: int | None = None) -> WriteResult:
        """Replace the owned sheets' cell data and (when ``marks`` is not None) the marks.

        ``marks=None`` leaves earlier marks as they are; ``[]`` clears them. Raises
        ``WorkbookBusy`` when the master is open or another run holds it.
        """
        check_owned(sheets)
        if not self.path.is_file():
            raise WorkbookNotFound(self.path)
        if not sheets and marks is None:
            return WriteResult(self.path, [])
        with self.lock:
            check_not_open(self.path)
            if self._signature is not None and _signature(self.path) != self._signature:
                raise WorkbookBusy(f"{self.path.name} 在本次读取之后被修改过（可能有人刚保存），本次不写入。"
                                   "请重新运行。")
            _clean_temp(self.path)
            keep = keep_backups if keep_backups is not None else backups_kept(self.path)
            tmp = _temp_path(self.path)
            began = datetime.now()
            try:
                try:
                    with collect_seldom():
                        result = _build(self.path, sheets, marks, tmp, self._grids)
                except WriteRefused as refused:
                    # Keep what was built for inspection, beside the master (DESIGN: refused → staged).
                    staged = _staged_name(self.path, kind=REFUSED)
                    same_access(self.path, tmp)
                    os.replace(tmp, staged)
                    raise WriteRefused(self.path, refused.reason, staged) from refused
                if not result.parts_changed:
                    return result  # nothing differs: no backup, no replace (re-runs stay quiet)
                check_not_open(self.path)
                backup = backup_file(self.path)
                try:
                    same_access(self.path, tmp)
                    replace_patiently(tmp, self.path)
                except BaseException:
                    # Not replaced: the copy is of the file as it still is. Kept, every busy retry
                    # would push an older backup out; the rotation only runs after a write.
                    backup.unlink(missing_ok=True)
                    raise
                result.backup = backup
                prune_backups(self.path, keep)
                _fsync_dir(self.path.parent)
                result.dropped = drop_out_of_date(self.path, before=began)
            except PermissionError as exc:  # Windows: Excel opened it meanwhile
                raise WorkbookBusy(f"{self.path.name} 正被其他程序占用，无法替换（{exc.strerror}）。"
                                   "请关闭后重试。") from exc
            finally:
                tmp.unlink(missing_ok=True)
            self._signature = _signature(self.path)
            self._grids = {}  # the file changed: what was read no longer describes it
            return result

    def stage(self, sheets: list[SheetWrite], marks: list[Mark] | None = None) -> Path:
        """Write the would-be result beside the master (see ``stage``)."""
        return stage(self.path, sheets, marks)

    def write_or_stage(self, sheets: list[SheetWrite], marks: list[Mark] | None = None,
                       keep_backups: int | None = None) -> WriteResult:
        """``write``; when the master is busy, ``stage`` instead and say so in the result
        (``result.staged``, ``result.busy``) — the caller exits 3 and retries later."""
        try:
            return self.write(sheets, marks, keep_backups)
        except WorkbookBusy as busy:
            staged = self.stage(sheets, marks)
            # Built from the master as it is now and the same untouched inbox, it holds all that
            # earlier ones held: night after night with Excel left open, one waits beside the master.
            return WriteResult(self.path, [w.sheet.name for w in sheets], staged=staged, busy=str(busy),
                               dropped=drop_out_of_date(self.path, keep=staged, before=datetime.now()))


# Windows: an antivirus or search indexer scanning the master, or a backup tool copying it, holds
# it for a moment, and os.replace fails with a sharing violation. Waited out briefly before the
# master is called busy (then the result is staged and the next run retries).
REPLACE_WAITS = (0.1, 0.25, 0.5, 1.0, 2.0)


def replace_patiently(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``, retried while ``path`` is held (``PermissionError``) for up to
    ``sum(REPLACE_WAITS)`` seconds; stops at once when Excel opened it meanwhile (``WorkbookBusy``)."""
    for wait in (*REPLACE_WAITS, None):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if wait is None:
                raise
            time.sleep(wait)
            check_not_open(path)


def check_owned(sheets: list[SheetWrite]) -> None:
    """Refuse to write any sheet the macros do not own."""
    for write in sheets:
        if write.sheet.name not in OWNED_NAMES:
            raise ValueError(f"工作表“{write.sheet.name}”不是程序管理的表，不能写入。")
    names = [w.sheet.name for w in sheets]
    if len(names) != len(set(names)):
        raise ValueError("同一工作表在一次写入中出现了两次。")


def stage(path: Path | str, sheets: list[SheetWrite], marks: list[Mark] | None = None,
          now: datetime | None = None) -> Path:
    """Write the would-be result beside a busy master as ``<stem>-待合并-<timestamp><suffix>``.

    The suffix stays the master's (.xlsm keeps its macros; Excel refuses an .xlsx holding VBA).
    The master itself is not touched and needs no lock.
    """
    path = Path(path)
    check_owned(sheets)
    target = _staged_name(path, now)
    tmp = _temp_path(path)
    try:
        _build(path, sheets, marks, tmp)
        same_access(path, tmp)  # a temporary file is the writer's alone (0600): staff must open it
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def same_access(path: Path, tmp: Path) -> None:
    """Give ``tmp`` the permissions of ``path`` and, where allowed (a scheduled job run as root or
    as the file's owner), its owner and group: replaced by a file the job made, the master would
    belong to the job's account, and staff whose access came from owning it would lose it."""
    shutil.copymode(path, tmp)
    if hasattr(os, "chown"):
        st = path.stat()
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass  # not allowed to give a file away: it stays the job's (README: the share's rights)


def _staged_name(path: Path, now: datetime | None = None, kind: str = "") -> Path:
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    head = f"{path.stem}-{STAGED}-" + (f"{kind}-" if kind else "")
    target = path.with_name(f"{head}{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{head}{stamp}-{n}{path.suffix}")
    return target


def staged_files(path: Path | str) -> list[Path]:
    """Results waiting beside ``path`` (staged while it was busy, or refused by the check), newest first."""
    path = Path(path)
    return sorted(path.parent.glob(f"{glob_escape(path.stem)}-{STAGED}-*{glob_escape(path.suffix)}"), reverse=True)


def is_refused(staged: Path) -> bool:
    """A result the written file's check refused (kept for the technical contact), not a busy one."""
    return f"-{STAGED}-{REFUSED}-" in staged.name


def drop_out_of_date(path: Path, keep: Path | None = None, before: datetime | None = None) -> list[Path]:
    """Delete the results staged while ``path`` was busy, out of date now (the master was written,
    or ``keep`` was staged over the same inbox); returns them. Only those staged before ``before``
    (another run staging while this one wrote keeps its file). Kept: a refused result, one open in
    Excel, and one saved more than ``EDITED_AFTER`` after it was staged (someone's work)."""
    dropped = []
    for staged in staged_files(path):
        m = re.search(r"-(\d{8}-\d{6})(?:-\d+)?$", staged.stem)
        if staged == keep or is_refused(staged) or m is None or owner_of(staged) is not None:
            continue
        made = datetime.strptime(m.group(1), "%Y%m%d-%H%M%S")
        try:
            saved = datetime.fromtimestamp(staged.stat().st_mtime)
            # The file's own time, not the name's (whole seconds): staged after ``before`` is kept.
            if before is not None and saved >= before or saved > made + EDITED_AFTER:
                continue
            staged.unlink()
        except OSError:  # gone already, or held (Windows): left for a later run
            continue
        dropped.append(staged)
    return dropped


def backups_kept(path: Path) -> int:
    """设置 备份保留份数 of the workbook at ``path`` (``backups_to_keep``); the default when its
    设置 cannot be read: an unreadable 设置 must not stop a write."""
    try:
        book = CalamineWorkbook.from_path(str(path))
        if actual_sheet_name(book, schema.SETTINGS.name) is None:
            return backups_to_keep(None)
        from .read import frame_from_rows

        frame = frame_from_rows(grid(book, schema.SETTINGS.name), schema.SETTINGS, path)
        item = schema.SETTINGS_BY_KEY["backups_kept"].item
        # As typed (settings_from_frame turns 2.5 into 2): the validator judges the typed value.
        return backups_to_keep(next((v for i, v in zip(frame["item"], frame["value"]) if i == item and v is not None),
                                    None))
    except Exception:  # noqa: BLE001
        return backups_to_keep(None)


def _build(path: Path, sheets: list[SheetWrite], marks: list[Mark] | None, target: Path,
           grids: dict[str, list[list]] | None = None) -> WriteResult:
    """Build the new package into ``target`` and verify it; raises ``WriteRefused`` if it fails.

    ``grids``: sheets of this very file as calamine read them (not read again)."""
    pkg = Package(path)
    result = WriteResult(path, [w.sheet.name for w in sheets])
    expected: dict[str, Written] = {}
    issues = schema.ISSUES
    later = [w for w in sheets if w.sheet.name == issues.name]
    if (marks is not None or later) and issues.name not in pkg.sheets:
        # The mark memory lives there; rows written to it need it too (else they went nowhere).
        pkg.add_sheet(issues.name, blank_sheet_xml(issues))
    memory = marking.read_memory(pkg) if issues.name in pkg.sheets else []
    marked_sheets: set[str] = set()
    if marks is not None:
        marked_sheets |= marking.unmark(pkg, memory)
    marked = False
    with GridReads() as reads:
        for write in sheets:
            name = write.sheet.name
            if name == issues.name:
                continue
            expected[name] = rewrite_sheet(pkg, write, old_grid=(grids or {}).get(name))
            if name == schema.LEDGER.name and marks is not None:
                # Marks go on input sheets only, so the ledger is final once they are on.
                memory = _apply_marks(pkg, marks, marked_sheets, result)
                marked = True
            part = pkg.sheets[name]
            if pkg.large(part) and (name != schema.LEDGER.name or marks is None or marked):
                reads.early(name, *pkg.snapshot(part))  # re-read while the next sheets are built
        if marks is not None and not marked:
            memory = _apply_marks(pkg, marks, marked_sheets, result)
        _finish(pkg, marks, memory, later, expected, bool(sheets))
        for name, written in expected.items():  # Excel tables over owned sheets take in new rows
            grown = grow_tables(pkg, schema.SHEETS_BY_NAME[name], written.header_row, written.columns,
                                written.totals_moved)
            result.tables_grown += [g.part for g in grown]
        _drop_stale_calc_chain(pkg)
        pkg.save(target)
        result.parts_changed = sorted(pkg.changed_names() | pkg.removed)
        try:
            _verify(pkg, target, expected, marked_sheets - set(expected), reads)
        except (VerifyError, ET.ParseError, UnicodeDecodeError, KeyError, ValueError) as exc:
            raise WriteRefused(path, str(exc)[:200]) from exc
    return result


def _apply_marks(pkg: Package, marks: list[Mark], marked_sheets: set[str], result: WriteResult) -> list:
    memory, applied, skipped, touched = marking.apply(pkg, marks)
    marked_sheets |= touched
    result.marks_applied, result.marks_skipped = applied, skipped
    return memory


def _finish(pkg: Package, marks: list[Mark] | None, memory: list, later: list[SheetWrite],
            expected: dict[str, Written], wrote: bool) -> None:
    """After the sheets and marks: the mark memory in 校验结果 (written last), the recalc flag."""
    issues = schema.ISSUES
    if issues.name in pkg.sheets and (later or marks is not None):
        cells, drop = marking.memory_cells(pkg, memory)
        if later:
            expected[issues.name] = rewrite_sheet(pkg, later[0], extra_cells=cells, drop_cols=drop)
        else:
            marking.replace_memory(pkg, cells, drop)
        if memory:
            marking.hide_memory(pkg)
    if wrote:
        _ensure_recalc(pkg)




_CALC_PR = re.compile(r"<(?:\w+:)?calcPr\b[^>]*?/?>")


def _ensure_recalc(pkg: Package) -> None:
    """Ask Excel to recalculate on open when the workbook has formulas.

    Cached formula results (a staff SUMIF over 台账, say) would otherwise show the values from
    before our write until someone presses F9. The one change: ``fullCalcOnLoad="1"`` on
    ``<calcPr>`` in workbook.xml (added, or the element added), which Excel clears when it saves.
    """
    # Our writes never add a formula, so the original parts tell (the new ones can be far larger).
    if not any(has_formula(pkg.parts.get(part) or b"") for part in pkg.sheets.values()):
        return
    wb_part = workbook_part(pkg.parts)
    xml = pkg.text(wb_part)
    m = _CALC_PR.search(xml)
    if m and re.search(r'\sfullCalcOnLoad="(1|true)"', m.group(0)):
        return
    if m:
        tag = m.group(0)
        tag = (re.sub(r'\sfullCalcOnLoad="[^"]*"', ' fullCalcOnLoad="1"', tag) if "fullCalcOnLoad" in tag
               else re.sub(r"\s*(/?>)$", r' fullCalcOnLoad="1"\1', tag))
        xml = xml[:m.start()] + tag + xml[m.end():]
    else:
        prefix = re.search(r"<((?:\w+:)?)workbook\b", xml).group(1)
        xml = insert_before_any(xml, f'<{prefix}calcPr fullCalcOnLoad="1"/>', CALC_PR_FOLLOWERS)
    pkg.set_text(wb_part, xml)


REL_CALC_CHAIN = NS_REL + "/calcChain"
_CHAIN_CELL = re.compile(r"<(?:\w+:)?c\b([^>]*?)/?>")
_FORMULA_START = re.compile(r"<(?:\w+:)?f\b")
_CELL_REF = re.compile(r'\sr="([A-Z]+\d+)"')


def calc_chain_part(parts: dict[str, bytes]) -> str | None:
    """Excel's calculation chain (``xl/calcChain.xml``), when the workbook has one."""
    wb_part = workbook_part(parts)
    return next((rel.target for rel in parse_rels(parts.get(rels_name(wb_part)), wb_part)
                 if rel.type == REL_CALC_CHAIN), None)


def _drop_stale_calc_chain(pkg: Package) -> None:
    """Leave out Excel's calcChain.xml when a written sheet lost a formula cell it lists.

    Excel keeps there every formula cell of the workbook; one listed cell that holds no formula
    any more (a staff total or an Excel button's HYPERLINK formula on an output sheet, a formula
    in a ledger cell a merge updated) makes Excel open the file only after a repair ("已删除的记录:
    /xl/calcChain.xml 部分的 公式"). Excel rebuilds a missing chain (and recalculates anyway:
    ``fullCalcOnLoad``), so the part goes, with its relationship and content type — nothing else.
    """
    chain = calc_chain_part(pkg.parts)
    if chain is None or chain not in pkg.parts:
        return
    written = {part for part in pkg.changed_names() if part in pkg.sheets.values() and part in pkg.parts}
    if not written:
        return
    wb_part = workbook_part(pkg.parts)
    rels = {rel.id: rel.target for rel in parse_rels(pkg.parts.get(rels_name(wb_part)), wb_part)}
    sheets = list(ET.fromstring(pkg.parts[wb_part]).iter(f"{{{NS_MAIN}}}sheet"))
    # ``i`` is the sheetId (ECMA-376 18.6.1); some writers take it for the tab's position: a cell
    # is looked for under both (a needless drop costs nothing, a missed one a repair prompt).
    by_id: dict[str, set[str]] = {}
    for position, el in enumerate(sheets, start=1):
        part = rels.get(el.get(f"{{{NS_REL}}}id"))
        by_id.setdefault(el.get("sheetId"), set()).add(part)
        by_id.setdefault(str(position), set()).add(part)
    listed: dict[str, set[str]] = {}
    sheet_id = None
    for m in _CHAIN_CELL.finditer(pkg.parts[chain].decode("utf-8")):
        attrs = attrs_of(m.group(1))
        sheet_id = attrs.get("i", sheet_id)  # omitted: the previous cell's sheet
        for part in by_id.get(sheet_id, ()):
            if part in written and "r" in attrs:
                listed.setdefault(part, set()).add(attrs["r"])
    if all(refs <= formula_cells(pkg.text(part)) for part, refs in listed.items()):
        return
    pkg.remove(chain)
    rels_part = rels_name(wb_part)
    pkg.set_text(rels_part, re.sub(r'<Relationship\b[^>]*\bType="' + re.escape(REL_CALC_CHAIN) + r'"[^>]*/>', "",
                                   pkg.text(rels_part)))
    pkg.set_text("[Content_Types].xml", re.sub(r'<Override\b[^>]*\bPartName="/' + re.escape(chain) + r'"[^>]*/>',
                                                "", pkg.text("[Content_Types].xml")))


def formula_cells(xml: str) -> set[str]:
    """References of the cells holding a formula (``<f>`` comes first in its cell)."""
    found = set()
    for m in _FORMULA_START.finditer(xml):
        ref = _CELL_REF.search(xml[xml.rfind("<", 0, m.start()):m.start()])  # the cell's start tag
        if ref:
            found.add(ref.group(1))
    return found


def _verify(pkg: Package, target: Path, expected: dict[str, Written], marked: set[str], reads: GridReads) -> None:
    changed = pkg.changed_names()
    sheet_parts = {pkg.sheets[name]: name for name in pkg.sheets}
    allowed, grow, notes = set(), set(), set()
    wb_part = workbook_part(pkg.parts)
    # Comments and VML parts wherever the sheets' relationships put them (openpyxl: xl/comments/…).
    note_parts = {rel.target for part in pkg.sheets.values()
                  for rel in parse_rels(pkg.data(rels_name(part)), part) if rel.type in (REL_COMMENTS, REL_VML)}
    # Tables of owned sheets may grow over appended rows (their ref only: check_table_grew).
    owned_tables = {table for sheet, part in pkg.sheets.items() if sheet in OWNED_NAMES
                    for table in table_parts(pkg.parts, part)}
    for name in changed:
        if name == wb_part:
            check_workbook_grew(pkg.parts[name].decode("utf-8"), pkg.text(name), pkg.added_sheets)
            allowed.add(name)
        elif name in sheet_parts and name not in pkg.parts:
            allowed.add(name)  # an owned sheet we added; its values are checked below
        elif name in sheet_parts:
            sheet = sheet_parts[name]
            if sheet not in OWNED_NAMES and sheet not in marked:
                raise VerifyError(f"sheet {sheet} was not to change")
            allowed.add(name)
            may = {"sheetData", "legacyDrawing"}
            if sheet in expected:
                may |= OWNED_CHILDREN
            if sheet == schema.ISSUES.name:
                may.add("cols")
            check_sheet_frame(sheet, pkg.parts[name], pkg.data(name), may)
        elif name in owned_tables:
            check_table_grew(name, pkg.parts[name], pkg.data(name))
            allowed.add(name)
        elif name == pkg.styles_part or name == "[Content_Types].xml" or name.endswith(".rels"):
            grow.add(name)  # each old element kept (checked by check_parts)
        elif name in note_parts or NOTE_PART.search(name):
            notes.add(name)  # staff comments and other shapes kept (checked by check_marks)
        else:
            raise VerifyError(f"part changed: {name}")
    try:
        marking.check_marks(pkg)
    except ValueError as exc:
        raise VerifyError(str(exc)) from exc
    # Output sheets' hyperlinks are all ours (rewritten each run); the ledger's are staff's: kept.
    owned_rels = frozenset(rels_name(part) for sheet, part in pkg.sheets.items()
                           if sheet in OWNED_NAMES and sheet != schema.LEDGER.name)
    # The largest sheets first: they take longest to read.
    sheets = sorted(expected, key=lambda s: -len(pkg.data(pkg.sheets[s]) or b"")) + sorted(marked)
    read_early = reads.read(target, sheets, lambda sheet: pkg.data(pkg.sheets[sheet]))
    chain = calc_chain_part(pkg.parts)
    if pkg.removed - {chain}:
        raise VerifyError(f"parts removed: {sorted(pkg.removed)}")
    new = check_parts(pkg.parts, target, allowed | notes, grow, owned_rels, chain)
    for sheet, data in read_early.items():
        if new.get(pkg.sheets[sheet]) != data:
            raise VerifyError(f"{sheet}: the written file does not hold the sheet that was checked")
    before = {}
    if marked:
        old = CalamineWorkbook.from_path(str(pkg.path))
        before = {sheet: grid(old, sheet) for sheet in marked}
    check_values(reads, expected, before)
    reads.check_opens(sheets)


def _signature(path: Path) -> tuple:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size)


def _temp_path(path: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise FolderNotWritable(path.parent, os_reason(exc)) from exc
    os.close(fd)
    return Path(name)


def _clean_temp(path: Path) -> None:
    # Left by a run that was killed; we hold the lock, so no live run owns them.
    # Matched whole: ".hb-台账-2021-x.tmp" is another master's live run, not ours.
    ours = re.compile(rf"{re.escape(TEMP_PREFIX + path.stem)}-[a-z0-9_]+\.tmp")
    for leftover in path.parent.glob(f"{glob_escape(TEMP_PREFIX + path.stem)}-*.tmp"):
        if ours.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- restore ---------------------------------------------------------------------------------

# What makes a file a master: a restore never puts a submission form or another workbook in its place.
MASTER_SHEETS = (schema.PROJECTS, schema.COMMITTEES, schema.LEDGER, schema.SETTINGS)


class BackupNotFound(HealthbookError):
    def __init__(self, path: Path, name: str | None):
        found = "、".join(p.name for p in list_backups(path)[:5]) or "（无）"
        what = f"备份“{name}”" if name else "任何备份"
        super().__init__(f"找不到 {Path(path).name} 的{what}。backups 文件夹中最近的备份：{found}。"
                         + other_backups_text(path))


class BackupUnusable(HealthbookError):
    def __init__(self, path: Path, chosen: Path, why: str):
        super().__init__(f"{chosen.name} {why}，没有用它恢复 {path.name}，主工作簿未改动。"
                         f"请用 healthbook restore \"{path}\" --list 查看它的备份，用 --backup 选另一份。")


def other_backups_text(path: Path) -> str:
    """A sentence naming backups of other workbooks in the folder (the master before a rename)."""
    others = other_backups(path)
    if not others:
        return ""
    listed = "、".join(p.name for p in others[:3]) + ("等" if len(others) > 3 else "")
    return (f"backups 文件夹里还有 {len(others)} 份其他名称的工作簿的备份（如主工作簿改过名，便是改名前的）：{listed}；"
            f"确认是这份主工作簿的，可用 healthbook restore \"{path}\" --backup \"{others[0]}\" 这样给出完整路径来恢复。")


@dataclass
class RestoreResult:
    path: Path
    restored: Path  # the backup brought back
    backup: Path | None  # the copy of the file it replaced (an earlier backup when identical)
    skipped: list[Path] = field(default_factory=list)  # newer backups passed over: not a master that opens


def restore(path: Path | str, backup: str | Path | None = None, keep: int | None = None,
            wait: float = DEFAULT_WAIT) -> RestoreResult:
    """Bring back a backup (default: the newest), first backing up the current file.

    ``keep`` is not applied here: a clerk trying one backup after another must not push out
    the very backups being searched (the next write rotates them)."""
    path = Path(path)
    chosen, skipped = _find_backup(path, backup)
    lock = WorkbookLock(path, wait)
    with lock:
        check_not_open(path)
        _clean_temp(path)
        tmp = _temp_path(path)
        try:
            with open(chosen, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            why = _not_a_master(tmp)  # checked on the copy: what is restored is what was checked
            if why:
                raise BackupUnusable(path, chosen, why)
            current = None
            if path.exists():
                # A copy identical to a backup already there (the file a previous restore brought
                # back) is not copied again.
                current = _same_backup(path) or backup_file(path)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
    return RestoreResult(path, chosen, current, skipped)


def _not_a_master(file: Path) -> str:
    """Why ``file`` cannot stand in for the master ('' when it can)."""
    try:
        Package(file)
        book = CalamineWorkbook.from_path(str(file))
    except Exception:  # noqa: BLE001 — whatever the reader says: it does not open
        return "不是可以打开的 Excel 工作簿（可能已损坏或不完整）"
    missing = [s.name for s in MASTER_SHEETS if actual_sheet_name(book, s.name) is None]
    if missing:
        return f"不是主工作簿（缺少工作表 {'、'.join(f'“{m}”' for m in missing)}）"
    return ""


def _same_backup(path: Path) -> Path | None:
    return next((candidate for candidate in list_backups(path) if same_bytes(path, candidate)), None)


def backup_listing(path: Path | str) -> list[dict]:
    """Backups of ``path``, newest first: name, time, size and, where the run that made it noted
    them (``book.backup.labelling``), that run's command, label and what it changed (else None)."""
    out = []
    labels = backup_labels(backup_dir(Path(path)))
    for b in list_backups(Path(path)):
        m = re.search(r"-(\d{8}-\d{6})-\d+$", b.stem)
        made = datetime.strptime(m.group(1), "%Y%m%d-%H%M%S") if m else datetime.fromtimestamp(b.stat().st_mtime)
        label = labels.get(b.name, {})
        out.append({"name": b.name, "time": made.strftime("%Y-%m-%d %H:%M:%S"), "size": b.stat().st_size,
                    "run": label.get("run"), "label": label.get("label"), "changed": label.get("changed")})
    return out


def _find_backup(path: Path, backup: str | Path | None) -> tuple[Path, list[Path]]:
    """The backup to restore, and the newer ones passed over (by default: the newest that opens as a
    master — a broken master restored over is backed up too, and must not come back)."""
    found = list_backups(path)
    if backup is None:
        if not found:
            raise BackupNotFound(path, None)
        for n, candidate in enumerate(found):
            if not _not_a_master(candidate):
                return candidate, found[:n]
        raise BackupUnusable(path, found[0], f"{_not_a_master(found[0])}；其余 {len(found) - 1} 份备份也不能用")
    name = Path(backup).name
    for candidate in found:
        if candidate.name == name or candidate.stem == name:
            return candidate, []
    # A path given in full (a backup of the master under its old name, a copy kept elsewhere):
    # restore checks it is a master.
    if Path(backup).is_file() and re.search(r"\.xls[xm]$", str(backup), re.IGNORECASE):
        return Path(backup), []
    raise BackupNotFound(path, name)
