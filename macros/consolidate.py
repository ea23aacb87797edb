"""Consolidation: inbox of submission forms → validate → merge into the master → receipts.

Files are streamed (the master's ledger, a validation batch and a bounded window of files read
ahead by a worker process are in memory); the master is written once per run, through the safe
writer. When the master is busy the would-be
result is staged beside it and the inbox is left untouched, so the next run retries. The merge
itself is ``macros.merge`` (pure); this module does the files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import threading
import time as _time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from difflib import SequenceMatcher
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from . import schema
from .book.backup import BACKUP_DIR
from .book.lock import owner_of
from .book.owned import ledger_columns, next_free_row
from .book.read import (
    ROW,
    Workbook,
    actual_sheet_name,
    best_header_row,
    clean_header,
    open_calamine,
    records,
    settings_from_frame,
)
from .book.write import STAGED, FileBook, WriteRefused, is_refused, staged_files
from .book.write_types import SheetWrite
from .collect import collect_seldom
from .errors import HealthbookError, os_reason
from .forms import form_filename, safe_name
from .merge import (
    ADDED,
    COMMITTEE,
    DATA_COLUMNS,
    KEY,
    SIMILAR_COLUMNS,
    UNCHANGED,
    UPDATED,
    Change,
    LedgerMerge,
    RowOutcome,
    SentValues,
    comparable_in,
    display,
    same_data,
)
from .normalise import APPROXIMATE, NORMALISED, code_text, nfkc, programme_year
from .problems import Problem
from .readahead import ReadAhead
from .render.env import TemplateProblem
from .submission import (
    COMMITTEE_INDEX,
    FORMULA_PREFIXES,
    KEY_INDEX,
    KEYS,
    RECEIPT_TEMPLATE,
    UNHEADED,
    Submission,
    read_for_consolidation,
    receipt_html,
    render_receipt,
)
from .validate import DOUBTFUL, validate

if TYPE_CHECKING:
    from .report import PreparedReport

ACCEPTED, PARTLY, REJECTED, SKIPPED = "accepted", "partly", "rejected", "skipped"
STATUS_TEXT = {ACCEPTED: "已接受", PARTLY: "部分接受", REJECTED: "已退回", SKIPPED: "已跳过"}
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
# Left alone: Excel/WPS/LibreOffice owner and lock files, partial downloads, system files.
TEMP_PREFIXES = ("~$", ".~lock.", "~")
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", "#")
SYSTEM_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}
LOG_NAME = "consolidate.log"
LEDGER = schema.LEDGER.name
ERROR, WARNING = schema.LEVEL_ERROR, schema.LEVEL_WARNING
RESENT = "probable_resend"  # an added row that looks like an earlier record sent again without its key

Progress = Callable[[int, int, str], None]
Stage = Callable[[str], None]
READING = "正在读取主工作簿…"
REFRESHING = "正在重新校验、汇总进度并生成通知…"
WRITING = "正在写入主工作簿（先备份，写入后重读核对）…"
FINISHING = "正在写回执、归档填报表…"


def _quiet(text: str) -> None:
    """No stage shown (the default: a scheduled run has no terminal)."""


@dataclass
class FileResult:
    """What happened to one inbox file."""

    file: str
    status: str
    committee_id: str | None = None
    committee_name: str = ""
    rows_added: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    issues: list[Problem] = field(default_factory=list)
    # merge.RowOutcome per merged row: rendered into a pending receipt right after the merge and
    # then dropped, so a run over thousands of files does not hold every row's outcome.
    outcomes: list = field(default_factory=list)
    pending_receipt: Path | None = None
    changes: list[Change] = field(default_factory=list)  # its lines of 变更记录
    moved_to: Path | None = None
    receipt: Path | None = None
    receipt_error: str = ""  # why it has no receipt, in Chinese after 回执 (未能写入文件夹…): it stays in the inbox
    # Why the whole file is returned although its rows were read (rows of another committee): its
    # rows are still checked, so that the receipt names every mistake at once, and none is merged.
    returned_whole: Problem | None = None
    doubtful: list[Problem] = field(default_factory=list)  # likely typos merged into the master
    # Records added that look like an earlier one sent again without its key: record → (the earlier
    # record, the one column they differ in or None), for the summary.
    look_alikes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Rows that are records the office deleted from the master, not added back: (Excel row, record).
    gone: list[tuple[int | None, str]] = field(default_factory=list)
    # Rows without 记录编号 added back under the number an earlier receipt named, after a restore took
    # that record out (``RowOutcome.given_back``): (Excel row, record).
    given_back: list[tuple[int | None, str]] = field(default_factory=list)
    # Cells the office and the committee both changed (the committee's value applied):
    # (Excel row, record, Chinese header, the office's value, the committee's), values as 变更记录 shows them.
    conflicts: list[tuple[int | None, str, str, object, object]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Exactly the per-file keys of ``consolidate --json``."""
        return {
            "file": self.file, "status": self.status, "rows_added": self.rows_added,
            "rows_updated": self.rows_updated, "rows_unchanged": self.rows_unchanged,
            "issues": [p.to_dict() for p in self.issues],
            "gone": [{"row": row, "record_id": key} for row, key in self.gone],
            "given_back": [{"row": row, "record_id": key} for row, key in self.given_back],
            "conflicts": [{"row": row, "record_id": key, "column": column, "office": office, "committee": committee}
                          for row, key, column, office, committee in self.conflicts],
        }


@dataclass
class Consolidation:
    """The result of one run."""

    master: Path
    files: list[FileResult]
    changes: list[Change]
    master_written: bool = False
    dry_run: bool = False
    busy: str = ""  # the Chinese reason when the master was busy
    staged: Path | None = None
    refreshed: str = ""  # what the refresh after the merge did (or why it did not run)
    log: Path | None = None
    inbox: Path | None = None  # the folder read, named in the summary when it held no form
    # Results staged beside the master by earlier runs (busy, or a refused write), named after a write.
    stale_staged: list[Path] = field(default_factory=list)
    numbers_unsaved: str = ""  # why the numbers given could not be kept beside the master
    sent_problem: str = ""  # why what committees sent before is not known (or could not be kept), in Chinese
    dropped_staged: list[Path] = field(default_factory=list)  # out-of-date staged results this run deleted
    inbox_created: bool = False  # a freshly set-up master's inbox, made by this run
    long_busy: str = ""  # the master has been open (its owner file there) for over STALE_OWNER: ！！ in the log
    numbered: list[str] = field(default_factory=list)  # the master's own rows given a 记录编号 (typed without)

    @property
    def rows_added(self) -> int:
        return sum(f.rows_added for f in self.files)

    @property
    def rows_updated(self) -> int:
        return sum(f.rows_updated for f in self.files)

    @property
    def exit_status(self) -> int:
        """3 master busy (staged), 2 receipts not written (a folder to fix), 1 files with problems, else 0."""
        if self.busy:
            return 3
        if any(f.receipt_error for f in self.files):
            return 2
        return 1 if any(f.status in (PARTLY, REJECTED) for f in self.files) or self.waiting else 0

    @property
    def waiting(self) -> list[FileResult]:
        """What the inbox holds that was left unread and needs someone: a folder holding workbooks,
        another master's forms (their forms wait there)."""
        return [f for f in self.files if f.status == SKIPPED and any(p.code in WAITING for p in f.issues)]

    def to_dict(self) -> dict:
        """Exactly the keys of ``consolidate --json``."""
        return {
            "files": [f.to_dict() for f in self.files],
            "rows_added": self.rows_added,
            "rows_updated": self.rows_updated,
            "master_written": self.master_written,
            "numbered": self.numbered,  # the master's own rows given a 记录编号 (written only with the master)
            "dry_run": self.dry_run,
            "busy": self.busy or None,  # the master was open: the result staged (exit 3), the inbox untouched
            "staged": str(self.staged) if self.staged else None,
        }


@dataclass(frozen=True)
class Folders:
    inbox: Path
    archive: Path
    rejected: Path
    receipts: Path
    templates: str | None = None  # the office's own templates, tried before the shipped ones
    contact: str = ""  # whom a committee asks about its receipt (``office_contact``)


def folders(master: Path, settings: dict, inbox: Path | str | None = None) -> Folders:
    """The consolidation folders from 设置, relative to the master (absolute paths kept)."""
    def where(key: str) -> Path:
        value = str(settings.get(key) or schema.SETTINGS_BY_KEY[key].default)
        return master.parent / value  # an absolute value replaces the master's folder

    own = settings.get("templates")
    return Folders(Path(inbox) if inbox else where("inbox"), where("archive"), where("rejected"),
                   where("receipts"), str(master.parent / str(own)) if own else None, office_contact(settings))


def office_contact(settings: dict) -> str:
    """Whom a committee asks, from 设置: "李敏（021-…）", or the office's usual name when unset."""
    contact = settings.get("contact") or "街道发展办"
    phone = settings.get("phone")
    return f"{contact}（{phone}）" if phone else str(contact)


def skip_reason(path: Path, min_age: float = 0.0, now: float | None = None,
                master: Path | None = None) -> str | None:
    """Why ``path`` is left in the inbox untouched, or None to process it."""
    name = path.name
    lower = name.lower()
    if path.is_dir():
        return FOLDER
    if master is not None and (path.resolve() == master.resolve() or name == LOG_NAME
                               or name.startswith(f"{master.stem}-{STAGED}-")):
        # An inbox set to the master's own folder must never take the master for a submission.
        return "主工作簿本身或它的暂存、日志文件"
    if lower in SYSTEM_FILES:
        return "系统文件"
    if name.startswith(TEMP_PREFIXES) or lower.endswith(TEMP_SUFFIXES):
        return "临时文件或 Excel 打开时的占用文件"
    if name.startswith("."):
        return "隐藏文件"
    try:
        st = path.stat()
    except FileNotFoundError:
        return GONE
    if getattr(st, "st_file_attributes", 0) & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0):
        return "隐藏文件"
    if min_age and (now or _time.time()) - st.st_mtime < min_age:
        return TOO_NEW
    if path.with_name("~$" + name).exists() or path.with_name(f".~lock.{name}#").exists():
        return BEING_EDITED
    return None


GONE = "汇总时已被改名、移走或删除，下次再处理"
TOO_NEW = "刚刚修改，可能仍在复制中，下次再处理"
BEING_EDITED = "正被 Excel/WPS/LibreOffice 打开编辑，下次再处理"
# Skipped files read on a later run (the summary counts them apart from temporary and hidden files).
NEXT_TIME = (GONE, TOO_NEW, BEING_EDITED)
FOLDER = "文件夹"  # skip_reason's word for a folder, which folder_reason then tells apart
SUBFOLDER = "subfolder"  # the code of a folder in the inbox holding workbooks, left unread
OTHER_MASTER = "other_master"  # a form made from another master beside this one, left for it
WAITING = (SUBFOLDER, OTHER_MASTER)
FOLDER_LOOK = 2000  # entries looked at inside one such folder (a whole share copied in is not walked)


def folder_reason(path: Path, where: Folders, master: Path) -> tuple[str, str]:
    """(code, why) for a folder inside the inbox, which is not read.

    Only the inbox's own files are read: a sub-folder may be where the office parks forms it does
    not want merged yet, the program's own folders may be set inside the inbox, and a form two
    levels down would get a receipt and an archive name that cannot say where it came from. A
    folder holding workbooks is named, with how many and what to do (``SUBFOLDER``); not when the
    inbox is the master's own folder (its folders are the office's: backups, forms sent out)."""
    own = {where.archive, where.rejected, where.receipts, master.parent / BACKUP_DIR}
    try:
        mine = any(path.resolve() == p.resolve() for p in own)
        beside_master = path.parent.resolve() == master.parent.resolve()
    except OSError:
        mine = beside_master = False
    if mine:
        return "skipped", "汇总程序自己的文件夹（归档、退回、回执或备份）"
    if beside_master:
        return "skipped", FOLDER
    if path.name.startswith("."):
        return "skipped", "隐藏文件夹"
    found, looked = [], 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            looked += 1
            suffix = Path(name).suffix.lower()
            if (suffix in WORKBOOK_SUFFIXES or suffix in OTHER_FORMATS) and not name.startswith(TEMP_PREFIXES + (".",)):
                found.append(Path(folder, name).relative_to(path))
        if looked > FOLDER_LOOK:
            break
    if not found:
        return "skipped", "文件夹（其中没有工作簿）"
    shown = "、".join(str(p) for p in found[:3]) + ("等" if len(found) > 3 else "")
    return SUBFOLDER, (f"收件箱里的文件夹“{path.name}”未处理：其中有 {len(found)} 份工作簿（{shown}）。"
                       f"汇总只读收件箱本身的文件，请把要汇总的填报表直接移到收件箱 {path.parent} 里，"
                       "下次汇总时处理；不要汇总的请移出收件箱")


def inbox_files(inbox: Path) -> list[Path]:
    """Files of the inbox, oldest first (a later submission updates an earlier one); one renamed
    or taken away while the folder is listed is left for the next run."""
    if not inbox.is_dir():
        return []
    found = []
    for p in inbox.iterdir():
        try:
            found.append((p.stat().st_mtime_ns, p.name, p))
        except FileNotFoundError:
            continue
    return [p for *_, p in sorted(found, key=lambda f: f[:2])]


# ---------------------------------------------------------------- reading one submission


SAVE_AS_XLSX = "“另存为”Excel 工作簿（*.xlsx）"
# Spreadsheet formats a committee's office program saves in, with how to get an .xlsx from it.
OTHER_FORMATS = {
    ".xls": f"这是旧版 Excel 97-2003 格式（.xls）。请用 Excel 或 WPS 打开后{SAVE_AS_XLSX}，再提交。",
    ".et": "这是 WPS 表格自己的格式（.et）。请用 WPS 打开，点“文件 → 另存为”，文件类型选 Excel 工作簿（*.xlsx），再提交。",
    ".ods": ("这是 LibreOffice 或 WPS 的 ODF 表格格式（.ods）。请打开它，点“文件 → 另存为”，文件类型选"
             "“Excel 2007-365 (.xlsx)”（出现格式提示时选“使用 Excel 2007-365!”），再提交。"),
    ".xlsb": f"这是 Excel 二进制工作簿（.xlsb）。请用 Excel 打开后{SAVE_AS_XLSX}，再提交。",
    ".numbers": "这是苹果 Numbers 的格式。请在 Numbers 中“导出为 → Excel”（.xlsx），再提交。",
    ".csv": "CSV 文件会丢失格式、日期和下拉选项。请使用街道下发的填报表（.xlsx）填写后提交。",
}


def reject_reason_for_suffix(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in WORKBOOK_SUFFIXES:
        return None
    return OTHER_FORMATS.get(suffix) or f"不是 Excel 工作簿（{suffix or '无扩展名'}）。请提交 .xlsx 格式的填报表。"


def with_advice(code: str, text: str) -> Problem:
    """A file rejected whole: the Chinese reason split into what is wrong and what to do (from its
    first “请”), so that the receipt's 怎么改 column says it."""
    head, said, advice = text.partition("。请")
    return _file_problem(code, head + "。", suggestion="请" + advice, sheet="") if said else _file_problem(
        code, text, sheet="")


# ---------------------------------------------------------------- the run


def consolidate(
    master: Path | str,
    *,
    inbox: Path | str | None = None,
    dry_run: bool = False,
    as_of: date | None = None,
    now: datetime | None = None,
    min_age: float = 0.0,
    progress: Progress | None = None,
    refresh: bool = True,
    stage: Stage | None = None,
) -> Consolidation:
    """Merge every submission in the inbox into ``master``; see the module docstring.

    ``min_age``: seconds a file must have been left alone before it is read (files still being
    copied into a shared folder). ``progress(done, total, file name)`` is called after each file;
    ``stage(text)`` as each longer step without files begins (Chinese: reading the master, the
    refresh, the write, the receipts), so that a bar at its end is not taken for a hang.
    Raises ``WorkbookBusy`` only when another run holds the master; when the master is open
    in Excel the result says so (``busy``, ``staged``) and the inbox is left as it was.
    """
    master = Path(master)
    now = now or datetime.now().replace(microsecond=0)
    book = FileBook(master)
    # Two runs never interleave: the second waits, then is busy. The whole run builds objects
    # per row (the ledger, the merge, the write): the cycle collector runs seldom.
    say = stage or _quiet
    with book.locked(), collect_seldom():
        say(READING)
        wb = book.read(schema.INPUT_SHEETS)  # 变更记录 is only appended to: never read
        return _run(book, wb, master, inbox, dry_run, as_of or now.date(), now, min_age, progress, refresh, say)


def _run(book, wb, master: Path, inbox, dry_run: bool, as_of: date, now: datetime, min_age: float,
         progress: Progress | None, refresh: bool, say: Stage) -> Consolidation:
    frames = wb.frames
    settings = settings_from_frame(frames[schema.SETTINGS.name])
    where = folders(master, settings, inbox)
    created = check_inbox(master, settings, where, given=inbox is not None, dry_run=dry_run, now=now)
    # Rows keep their _row: the writer puts each record back at its Excel row (without it every
    # record would go below the old end of the ledger, leaving the rows above blank).
    sent, sent_problem = read_sent(master, now.date())
    merge = LedgerMerge(records(frames[LEDGER]), issued_numbers_soon(master), year=programme_year(settings), sent=sent)
    committees = _committees(frames[schema.COMMITTEES.name])
    # The config sheets are what a submission is validated against; the ledger lives in ``merge``.
    pending = None if dry_run else where.receipts / f".pending-{now:%Y%m%d-%H%M%S}-{os.getpid()}"
    if pending is not None:
        drop_stale_pending(where.receipts)
    checker = _Checker({n: f for n, f in frames.items() if n in CHECKED_AGAINST},
                       settings, as_of, merge, now, pending, master, where)
    checker.sent_problem = sent_problem
    try:
        run = _merge_and_write(book, master, where, merge, checker, committees, dry_run,
                               as_of, now, min_age, progress, refresh, wb, say)
        run.inbox_created = created
    finally:
        if pending is not None:
            shutil.rmtree(pending, ignore_errors=True)
    return run


class InboxMissing(HealthbookError):
    """The inbox is not there: a share not connected, a typo, a renamed folder (exit 2: nothing was read)."""

    def __init__(self, inbox: Path, setting: str | None):
        if inbox.exists():
            what = f"收件箱 {inbox.absolute()} 是一个文件，不是文件夹。"
        else:
            what = f"收件箱文件夹 {inbox.absolute()} 不存在。"
        if setting is None:  # --inbox
            fix = "请检查命令里 --inbox 给出的路径是否写错；若它在共享文件夹上，请确认共享已连接。"
        else:
            item = schema.SETTINGS_BY_KEY["inbox"].item
            fix = (f"若它在共享文件夹上，请确认共享已连接；若文件夹被改名或移走，请改回原名，"
                   f"或在主工作簿“设置”表的“{item}”（现为“{setting}”）中改为居委会交表的文件夹。")
        super().__init__(f"{what}本次没有汇总任何填报表。{fix}")


class ConfigEmpty(HealthbookError):
    """The master's 项目 or 居委会 sheet holds no code (a slip of 删除行, a bad paste): every form's every
    row would be refused as naming an unknown project or committee, and its receipt would blame the
    committee (exit 2: nothing was read, the inbox is left as it is)."""

    def __init__(self, master: Path, sheets: list[schema.Sheet]):
        what = "、".join(f"“{s.name}”表中没有任何{s.header_of(s.key[0])}" for s in sheets)
        names = "、".join(f"“{s.name}”" for s in sheets)
        super().__init__(f"主工作簿 {master.name} 的{what}：按它校验，每份填报表都会被误判为填错而退回，"
                         f"所以本次没有汇总任何填报表，收件箱保持原样。请恢复{names}表的内容"
                         "（可用 healthbook restore 从备份恢复主工作簿），下次汇总会照常处理这些填报表。")


def check_config(master: Path, wb: Workbook, committees: dict[str, str], dry_run: bool, now: datetime) -> None:
    """Raise ``ConfigEmpty`` (with a ！！ line in consolidate.log) when the sheets a form is judged by
    hold no project or no committee: the office's slip, not the committees'."""
    projects = wb.frames.get(schema.PROJECTS.name)
    empty = [sheet for sheet, codes in (
        (schema.PROJECTS, [] if projects is None else [c for c in map(code_text, projects["project_id"]) if c]),
        (schema.COMMITTEES, list(committees)),
    ) if not codes]
    if empty:
        error = ConfigEmpty(master, empty)
        if not dry_run:
            _log_line(master, now, f"！！错误：{error}")
        raise error


STALE_PENDING = timedelta(days=1)  # no run takes this long: a folder this old is a killed run's


def drop_stale_pending(receipts: Path) -> None:
    """Remove the unsent receipts of runs killed before they ended (``.pending-*`` folders over a
    day old): they name numbers the master never got. A younger one may be a live run's of another
    master sharing the receipts folder (the lock is per master)."""
    cutoff = _time.time() - STALE_PENDING.total_seconds()
    try:
        found = [d for d in receipts.glob(".pending-*") if d.is_dir() and d.stat().st_mtime < cutoff]
    except OSError:
        return
    for folder in found:
        shutil.rmtree(folder, ignore_errors=True)


def run_marker(master: Path) -> str:
    """How consolidate.log names a run of ``master`` (the log is per folder, shared by its masters)."""
    return f"（本次运行：{master.name}）"


def check_inbox(master: Path, settings: dict, where: Folders, given: bool, dry_run: bool,
                now: datetime) -> bool:
    """Make sure the inbox is a folder; returns True when this run created it.

    A missing inbox is an error (``InboxMissing``, with a ！！ line in consolidate.log): forms
    would pile up unseen while every night looks quiet. Except on a freshly set-up master — the
    设置 folder relative to the master, and no run of it in consolidate.log yet — whose inbox
    nobody has made: it is created (not on a dry run), as ``init`` leaves that to staff. An
    absolute path (a share) is never created: an unconnected share would get a local folder
    nobody drops forms into."""
    inbox = where.inbox
    if inbox.is_dir():
        return False
    value = str(settings.get("inbox") or schema.SETTINGS_BY_KEY["inbox"].default)
    fresh = (not given and not inbox.exists() and not Path(value).is_absolute()
             and run_marker(master) not in _log_text(master))
    if fresh:
        if dry_run:
            return False
        try:
            inbox.mkdir(parents=True)
        except OSError:
            pass  # said as missing below
        else:
            _log_line(master, now, f"已新建收件箱文件夹 {inbox.absolute()}（本主工作簿第一次汇总）：居委会交回的填报表请放进这里")
            return True
    error = InboxMissing(inbox, None if given else value)
    if not dry_run:
        _log_line(master, now, f"！！错误：{error}")
    raise error


def _log_text(master: Path) -> str:
    try:
        return (master.parent / LOG_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _log_line(master: Path, now: datetime, text: str) -> None:
    """One line of the run in consolidate.log (a log that cannot be written does not stop the run)."""
    try:
        with (master.parent / LOG_NAME).open("a", encoding="utf-8") as log:
            log.write(f"{now:%Y-%m-%d %H:%M:%S}\t{run_marker(master)}\t{text}\n")
    except OSError:
        pass


_RECORD_ID = re.compile(r"^(?P<committee>.+)-(?P<number>\d+)$")
NUMBERS_NOTE = ("请勿删除或修改：汇总程序在这里记下每个居委会已发出（已在回执中告知）的最大记录编号，"
                "用备份恢复主工作簿之后，这些编号也不会再分给别的记录。")


def _number_of(key: object) -> tuple[str, int] | None:
    """("C01", 7) for the record number "C01-0007" (typed in any width), else None."""
    m = _RECORD_ID.match(key.strip() if type(key) is str and key.isascii() else code_text(key) or "")
    if m and m["number"].isdecimal():
        return m["committee"].strip().upper(), int(m["number"])
    return None


def issued_numbers(master: Path) -> dict[str, int]:
    """Each committee's highest record number in 变更记录's added rows (the master's change log):
    numbers consolidation gave, or took from a form, to records that staff may have deleted
    since. A log staff broke gives none.

    The log grows by every added row (60,000 lines is ~25 MB of XML): only its header row is
    matched, and only two columns of its rows are looked at."""
    try:
        book = open_calamine(master)
        name = actual_sheet_name(book, schema.CHANGES.name)
        if name is None:
            return {}
        grid = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception:  # noqa: BLE001 — only a safeguard: the master's own rows give the numbers
        return {}
    return issued_in_grid(grid)


def issued_in_grid(grid: list[list]) -> dict[str, int]:
    """``issued_numbers`` of 变更记录's cells (first row = Excel row 1), however they were read:
    from the saved file, or from the open workbook by the Excel button (``LiveBook``)."""
    at, _ = best_header_row(grid, schema.CHANGES)
    if at is None:
        return {}
    headers = [clean_header(h) for h in grid[at]]
    try:
        key_at, action_at = (headers.index(schema.CHANGES.header_of(k)) for k in (KEY, "action"))
    except ValueError:
        return {}
    found: dict[str, int] = {}
    for values in grid[at + 1:]:
        if len(values) <= max(key_at, action_at) or values[action_at] != ADDED:
            continue
        number = _number_of(values[key_at])
        if number and number[1] > found.get(number[0], 0):
            found[number[0]] = number[1]
    return found


# Numbers announced must outlive a restore: 变更记录 lives inside the master, so a backup taken
# before a consolidation brings back a log without the numbers its receipts already told the
# committees. This small file beside the master is written by every consolidation that wrote
# the master, before any receipt is put in place, and is never restored.
def numbers_file(master: Path) -> Path:
    """``.<master name>.numbers.json`` beside the master: the highest number announced per committee."""
    return master.with_name(f".{master.name}.numbers.json")


def announced_numbers(master: Path) -> dict[str, int]:
    """The numbers kept in ``numbers_file`` (none when it is missing or unreadable)."""
    try:
        data = json.loads(numbers_file(master).read_text(encoding="utf-8"))
        return {str(k).strip().upper(): int(v) for k, v in data["numbers"].items() if int(v) > 0}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def keep_numbers(master: Path, numbers: dict[str, int]) -> None:
    """Fold ``numbers`` into ``numbers_file`` (each committee's highest), replaced atomically."""
    kept = announced_numbers(master)
    merged = dict(kept)
    for committee, number in numbers.items():
        merged[committee] = max(number, merged.get(committee, 0))
    if merged == kept:
        return
    target = numbers_file(master)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump({"说明": NUMBERS_NOTE, "numbers": dict(sorted(merged.items()))}, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# What each committee last sent per record (``merge.SentValues``), kept between runs beside the master
# like the numbers: a committee re-sending its cumulative form must not undo the office's corrections.
SENT_NOTE = ("请勿修改：汇总程序在这里记下各居委会上次提交的每条记录（只记校验值，不含内容）。"
             "居委会重新提交未改动的旧值时，不会覆盖街道此后在主工作簿中的修改。删除本文件不会损坏主工作簿，"
             "只是下次汇总时旧值会重新覆盖街道的修改（汇总后重新记下）。")


def sent_file(master: Path) -> Path:
    """``.<master name>.sent.json`` beside the master: what committees last sent, per record."""
    return master.with_name(f".{master.name}.sent.json")


# How long a restore's ``undone`` records wait for their files to be merged again (``SentValues.expire``):
# the restore asks for them at once, and committees send their cumulative forms monthly at least.
UNDONE_KEPT = timedelta(days=90)


def read_sent(master: Path, today: date | None = None) -> tuple[SentValues, str]:
    """What committees sent before, and why it is not known when it is not (Chinese; '' when read, or
    when no run has written the master yet): then every re-sent value applies, as before. ``undone``
    records taken out more than ``UNDONE_KEPT`` before ``today`` (default: the real today) are dropped."""
    path = sent_file(master)
    name = path.name
    effect = "本次汇总中，居委会重新提交的旧值会照常覆盖主工作簿中的值（包括街道此后的修改），请留意回执中的“修改”；汇总后会重新记下。"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        orphans = orphaned_records(master)
        if orphans and not numbers_file(master).exists():  # the master renamed: its records kept the old name
            old = orphans[0]
            return SentValues(), (f"主工作簿旁有 {old.name} 等记录文件，但没有它们所属的 {_workbook_of(old)}："
                                  f"如果那是本主工作簿改名前的名称，请把这些文件改名为 {name} 和 "
                                  f"{numbers_file(master).name}（否则已告知居委会的记录编号可能被再次分配）。{effect}")
        if numbers_file(master).exists():  # consolidation wrote this master before: the file went missing
            return SentValues(), (f"主工作簿旁还没有记录居委会上次提交内容的文件 {name}（升级到本版本后第一次汇总时如此，"
                                  f"本次汇总后即会记下；若此前已有，可能被删除或移走了）。{effect}")
        return SentValues(), ""
    except (OSError, ValueError) as exc:
        return SentValues(), f"记录居委会上次提交内容的文件 {name} 无法读取（{os_reason(exc) if isinstance(exc, OSError) else '内容已损坏'}）。{effect}"
    entries = data.get("sent") if isinstance(data, dict) else None
    if (not isinstance(entries, dict) or data.get("columns") != list(DATA_COLUMNS)
            or not all(type(v) is str for v in entries.values())):  # values are looked up by: a list would raise
        return SentValues(), f"记录居委会上次提交内容的文件 {name} 内容不对（已损坏或来自其他版本）。{effect}"
    # Written by a restore (``undo_sent``); files from before it lack the map.
    undone, undone_on = data.get("undone"), data.get("undone_on")
    if not isinstance(undone, dict):
        undone = {}
    sent = SentValues(entries, {k: v for k, v in undone.items() if type(v) is str},
                      dict(undone_on) if isinstance(undone_on, dict) else {})
    today = today or date.today()
    sent.expire((today - UNDONE_KEPT).isoformat(), today.isoformat())
    return sent, ""


def orphaned_records(master: Path) -> list[Path]:
    """``.<name>.sent.json`` files beside ``master`` whose workbook ``<name>`` is not there (renamed
    or moved): a renamed master's records kept its old name."""
    try:
        found = sorted(master.parent.glob(".*.sent.json"))
    except OSError:
        return []
    return [f for f in found if f != sent_file(master) and not (master.parent / _workbook_of(f)).exists()]


def _workbook_of(sent: Path) -> str:
    """The workbook name a ``sent_file`` is named after (".a.xlsx.sent.json" → "a.xlsx")."""
    return sent.name[1:-len(".sent.json")]


def retired_sent(backup: Path) -> Path:
    """Where ``retire_sent`` keeps what committees had sent to the workbook ``backup`` is a copy of."""
    return backup.with_name(f"{backup.name}.sent.json")


def retire_sent(master: Path, backup: Path) -> Path | None:
    """Move what committees sent to ``master`` (``sent_file``) beside ``backup``, the copy of the
    workbook ``init --force`` just replaced, and start an empty record: the new master holds none
    of those records, and a committee's form sent again would be taken for records the office
    deleted (dropped, its receipt blaming the office). The numbers announced (``numbers_file``)
    stay: never given again, as a receipt of the old master may name them. ``restore`` of that
    backup brings the record back (``bring_back_sent``). Returns where it went (None: no record)."""
    side = sent_file(master)
    if not side.is_file():
        return None
    target = retired_sent(backup)
    try:
        os.replace(side, target)
        keep_sent(master, SentValues())
    except OSError as exc:
        raise HealthbookError(
            f"新的主工作簿已建好，但原主工作簿的汇总记录 {side} 无法移到 {target.parent}（{os_reason(exc)}）："
            f"请在下次汇总前把它移走或删除，否则居委会再次提交的记录会被当作街道已删除的记录而不加入。") from exc
    return target


def bring_back_sent(master: Path, restored: Path, replaced: Path | None) -> Path | None:
    """After ``restored`` (a backup ``init --force`` made) was put back at ``master``: its committees'
    record (``retire_sent``) back beside it, the replaced master's moved beside ``replaced`` (its
    copy). Returns the record brought back (None: there was none)."""
    kept = retired_sent(restored)
    if not kept.is_file():
        return None
    side = sent_file(master)
    if side.is_file() and replaced is not None:
        os.replace(side, retired_sent(replaced))
    os.replace(kept, side)
    return side


def keep_sent(master: Path, sent: SentValues) -> None:
    """Write ``sent`` to ``sent_file``, replaced atomically. Records the master no longer holds stay:
    the office deleted them, and a committee sending one again as before must not bring it back
    (``LedgerMerge._sent_as``); a restore moves those the runs it undid added to ``undone``
    (``undo_sent``), kept until they are merged again."""
    target = sent_file(master)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    kept = {"说明": SENT_NOTE, "columns": list(DATA_COLUMNS), "sent": sent.entries}
    if sent.undone:
        kept["undone"], kept["undone_on"] = sent.undone, sent.undone_on
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            # One string, one write: json.dump writes a few bytes at a time (60k records: ~10× slower).
            fh.write(json.dumps(kept, ensure_ascii=False, separators=(",", ":")))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def undo_sent(master: Path, added: list[str], updated: list[str] = ()) -> None:
    """After a restore, what was recorded for the records the runs it undid ``added`` and ``updated``:
    the restored master no longer holds what they were sent, so sending it again must apply it.
    Those added move to ``SentValues.undone`` (a row sent again as one was, without its key, takes
    back the number its receipt named); those only updated are dropped. An unreadable file is left
    to ``read_sent``."""
    sent, problem = read_sent(master)
    if problem or not (added or updated):
        return
    sent.undo(added, date.today().isoformat())
    sent.forget(set(updated) - set(added))
    if sent.updated:
        keep_sent(master, sent)


def added_numbers(changes: list[Change]) -> dict[str, int]:
    """Each committee's highest record number among the rows ``changes`` added."""
    found: dict[str, int] = {}
    for change in changes:
        number = _number_of(change.record_id) if change.action == ADDED else None
        if number and number[1] > found.get(number[0], 0):
            found[number[0]] = number[1]
    return found


def issued_numbers_soon(master: Path) -> Callable[[], dict[str, int]]:
    """``issued_numbers`` (and the numbers announced before a restore) read in a thread from now
    on (calamine parses without the GIL, beside the reading of the inbox); the returned function
    waits for it."""
    done: dict[str, dict[str, int]] = {}

    def read() -> None:
        numbers = issued_numbers(master)
        for committee, number in announced_numbers(master).items():
            numbers[committee] = max(number, numbers.get(committee, 0))
        done["numbers"] = numbers

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def result() -> dict[str, int]:
        reader.join()
        return done.get("numbers", {})

    return result


def _merge_and_write(book, master: Path, where: Folders, merge: LedgerMerge, checker,
                     committees: dict[str, str], dry_run: bool, as_of: date, now: datetime,
                     min_age: float, progress: Progress | None, refresh: bool, wb: Workbook,
                     say: Stage) -> Consolidation:
    paths = inbox_files(where.inbox)
    clock = _time.time()
    reasons = [skip_reason(path, min_age, clock, master) for path in paths]
    folder_codes = {p.name: folder_reason(p, where, master) for p, r in zip(paths, reasons) if r == FOLDER}
    reasons = [folder_codes[p.name][1] if p.name in folder_codes else r for p, r in zip(paths, reasons)]
    if not dry_run and not all(reasons):
        check_receipt_template(where.templates, master, now)  # broken: stop before anything is written
    wanted = [p for p, reason in zip(paths, reasons) if reason is None and reject_reason_for_suffix(p) is None]
    if wanted:
        check_config(master, wb, committees, dry_run, now)
    # In a dry run too (in memory): the forms' new rows then get the numbers the real run gives.
    numbered = number_typed_rows(wb, checker.merge, now) if wanted else []
    # The reader process is left to finish the receipts while this one writes the master; they
    # are all written (or written here) when the ``with`` ends, before any file is moved.
    with ReadAhead(wanted) as reader:
        results = _process_files(paths, reasons, committees, checker, progress, reader)
        for result in results:
            if folder_codes.get(result.file, ("",))[0] == SUBFOLDER:
                result.issues = [replace(p, code=SUBFOLDER) for p in result.issues]
        run = _write(book, master, merge, results, numbered, dry_run, as_of, now, refresh, wb, reader, say)
        run.inbox = where.inbox
        if checker.sent_problem and any(r.status != SKIPPED for r in results):
            run.sent_problem = "\n".join(filter(None, (checker.sent_problem, run.sent_problem)))
        if not (run.dry_run or run.staged) and any(r.status != SKIPPED for r in results):
            say(FINISHING)  # the worker may still be writing receipts
    for result in results:  # receipts the worker could not write, nor this process after it
        if result.pending_receipt in reader.failed:
            _receipt_failed(result, where.receipts, reader.failed[result.pending_receipt])
    if run.staged:
        run.log = write_log(master, run, now)
    if run.dry_run or run.staged:
        return run
    for result in results:
        if result.status != SKIPPED:
            finish_file(result, where, now, master)
    run.log = write_log(master, run, now)
    return run


def _write(book, master: Path, merge: LedgerMerge, results: list[FileResult], numbered: list[Change],
           dry_run: bool, as_of: date, now: datetime, refresh: bool, wb: Workbook, reader: ReadAhead,
           say: Stage) -> Consolidation:
    """Write the merge (and the refresh) into the master, or stage it when the master is busy;
    ``numbered``: the 变更记录 lines of the master's own rows numbered (``number_typed_rows``)."""
    changes = numbered + [c for r in results for c in r.changes]
    run = Consolidation(master, results, changes, dry_run=dry_run, numbered=[c.record_id for c in numbered])
    if dry_run:
        return run
    if changes:
        merged = [
            SheetWrite(schema.LEDGER, merge.rows),
            SheetWrite(schema.CHANGES, [c.row() for c in changes], append=True),
        ]
        sheets = list(merged)
        marks = None  # without a refresh, earlier marks stay where they are
        report, problem, refused_fix = None, "", None
        if refresh:
            # The refresh goes into the same write: one backup, one check, one replace.
            say(REFRESHING)
            report, problem = refresh_after_merge(wb, merge.rows, as_of)
            if report is not None:
                sheets += report.sheets
                marks = report.marks
        say(WRITING)
        try:
            written = book.write_or_stage(sheets, marks)
        except WriteRefused as refused:
            if report is None:
                raise
            # The refresh's part failed the written file's check: the merge must not wait for it.
            written = book.write_or_stage(merged, None)
            report, problem = None, (f"写入主工作簿前的核对未通过（技术细节：{refused.reason}），"
                                     "为免损坏主工作簿，它们没有写入")
            refused_fix = "请运行 healthbook report 重试；仍不能写入时，请把这条信息发给技术联系人"
        if refresh:
            run.refreshed = refresh_text(report is not None, problem, bool(written.staged), refused_fix)
            if report is not None and report.result.rollup_blocked:  # the wrong year: 校验结果 only
                done = "校验结果已一并放入暂存文件" if written.staged else "已刷新校验结果（与台账一次写入）"
                run.refreshed = f"{done}。{report.result.rollup_blocked}{report.result.notices.blocked}"
            elif report is not None and report.result.notices.blocked:  # the sheets are refreshed, no notice is made
                done = "校验结果和进度汇总已一并放入暂存文件" if written.staged else "已刷新进度汇总（与台账一次写入）"
                run.refreshed = f"{done}。{report.result.notices.blocked}"
        if written.staged:  # open in Excel: leave the inbox for the next run
            run.busy, run.staged, run.dropped_staged = written.busy, written.staged, written.dropped
            run.long_busy = long_busy_text(master)
            reader.drop_writes()  # no receipts: the files stay in the inbox (logged by the caller)
            return run
        run.master_written = True
        try:  # before any receipt announces them
            keep_numbers(master, added_numbers(changes))
        except OSError as exc:
            run.numbers_unsaved = (f"未能在 {numbers_file(master).name} 中记下本次发出的记录编号（{os_reason(exc)}）："
                                   "以后若用本次之前的备份恢复主工作簿，这些编号可能被再次分配。请检查主工作簿所在文件夹的写入权限。")
        run.stale_staged = staged_files(master)
        run.dropped_staged = written.dropped
    if merge.sent is not None and merge.sent.updated and not dry_run:
        # Only once the master holds what was sent: remembered but not merged (busy), a re-sent
        # change would be taken for old news next run.
        try:
            keep_sent(master, merge.sent)
        except OSError as exc:
            run.sent_problem = (f"未能在 {sent_file(master).name} 中记下各居委会本次提交的内容（{os_reason(exc)}）："
                                "下次居委会重新提交旧值时，可能覆盖街道在主工作簿中的修改。请检查主工作簿所在文件夹的写入权限。")
    return run


STALE_OWNER = timedelta(days=1)  # an owner file older than this blocks runs unnoticed (a crash on Friday)


def long_busy_text(master: Path) -> str:
    """What to say when the owner file keeping ``master`` busy is older than ``STALE_OWNER``
    (every run since was staged, and the scheduler's wrapper reports busy as success). Judged
    by the clock, as the owner file's time is (a run's ``now`` may be given)."""
    now = datetime.now()
    owner = owner_of(master)
    if owner is None or now - owner.since <= STALE_OWNER:
        return ""
    hours = int((now - owner.since).total_seconds() // 3600)
    who = f"“{owner.user}”" if owner.user else "某位用户"
    return (f"主工作簿自 {owner.since:%Y-%m-%d %H:%M} 起一直被{who}打开（已 {hours} 小时），"
            "其间每次汇总都只暂存、没有写入，收件箱里的填报表一直在等。请让打开它的人关闭；"
            f"若没有人开着它，{owner.file} 是 Excel 异常退出留下的所有者文件，请删除它。")


def number_typed_rows(wb: Workbook, merge: LedgerMerge, now: datetime) -> list[Change]:
    """The master's 台账 rows typed with 记录编号 blank, numbered as ``healthbook report`` numbers
    them, to go into this run's write; numbered before the files are merged, so that a form's row
    without 记录编号 identical to one of them is that record (its receipt names the number)."""
    from .report import numberable  # report imports the core: imported here to keep start-up light

    return merge.number(numberable(wb), now)


def _process_files(paths: list[Path], reasons: list[str | None], committees: dict[str, str], checker: _Checker,
                   progress: Progress | None, reader: ReadAhead) -> list[FileResult]:
    """Read (by ``reader``), validate and merge every inbox file in order, skipping those with a
    ``reasons`` entry; ``progress`` ticks once per file."""
    results: list[FileResult] = []
    done = 0

    def tick(name: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, len(paths), name)

    batch = _Batch()
    checker.write = reader.write
    try:
        for path, reason in zip(paths, reasons):
            if reason:
                results.append(FileResult(path.name, SKIPPED,
                                          issues=[_file_problem("skipped", reason, WARNING, sheet="")]))
                tick(path.name)
                continue
            result, sub = load_file(path, committees, reader.next)
            if sub is not None and (other := other_master(sub, checker.master)):
                committee = code_text(sub.info_committee)
                result = FileResult(path.name, SKIPPED, committee, committees.get(committee or "", ""),
                                    issues=[_file_problem(OTHER_MASTER, other, WARNING, sheet="")])
                sub = None
            if sub is None and result.status == REJECTED and not os.path.lexists(path):
                # Renamed or taken away while the run read the inbox: not a submission to answer
                # (the renamed file is read next run).
                result = FileResult(path.name, SKIPPED, issues=[_file_problem("skipped", GONE, WARNING, sheet="")])
            results.append(result)
            if sub is None:
                tick(path.name)
                continue
            if not batch.fits(sub):
                checker.flush(batch, tick)
                batch = _Batch()
            batch.add(result, sub)
        checker.flush(batch, tick)
    finally:
        checker.write = render_receipt
    return results


# The config sheets the ledger's rules look up (the other sheets' rules report on those sheets,
# which a submission is not judged by; each validate call would normalise them again).
CHECKED_AGAINST = {schema.PROJECTS.name, schema.COMMITTEES.name, schema.TARGETS.name}
# Rows of the files validated together are told apart by adding file-number × ROW_OFFSET to their
# Excel row (Excel has at most 1,048,576 rows); problems and their messages are mapped back.
ROW_OFFSET = 10_000_000
BATCH_ROWS = 20_000
_ROW_IN_TEXT = re.compile(r"第 (\d+) 行")


@dataclass
class _Batch:
    """Files validated in one call. No 记录编号 is in two of them, so the validator's duplicate-key
    rule stays within a file; a problem that points at a row of another file (a probable duplicate:
    a committee re-sending rows it sent before) is dropped, since merging handles those."""

    items: list[tuple[FileResult, Submission]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    rows: int = 0

    def fits(self, sub: Submission) -> bool:
        return not self.items or (not (sub.keys & self.keys) and self.rows + len(sub.rows) <= BATCH_ROWS)

    def add(self, result: FileResult, sub: Submission) -> None:
        self.items.append((result, sub))
        self.keys |= sub.keys
        self.rows += len(sub.rows)


class _Checker:
    """Validates a batch with the master's rules plus the submission checks, then merges it."""

    def __init__(self, config: dict, settings: dict, as_of: date, merge: LedgerMerge, now: datetime,
                 pending: Path | None, master: Path, where: Folders):
        self.config, self.settings, self.as_of = config, settings, as_of
        self.merge, self.now = merge, now
        self.pending, self.master, self.where = pending, master, where
        self.receipt_names: set[str] = set()  # this run's receipts: two files never share one
        self.sent_problem = ""  # why what committees sent before is not known (``read_sent``)
        self.write: Callable[[Path, str | None, dict], object] = render_receipt  # or the run's reader's

    def flush(self, batch: _Batch, tick: Callable[[str], None]) -> None:
        if not batch.items:
            return
        body, numbers = [], []
        for f, (_result, sub) in enumerate(batch.items):
            body += sub.rows
            numbers += [f * ROW_OFFSET + n for n in sub.row_numbers]
        frame = pd.DataFrame(body, columns=KEYS, dtype=object)
        frame[ROW] = numbers
        validation = validate({**self.config, LEDGER: frame}, self.settings, self.as_of)
        # The values the receipts announce ("按 2020-06-22 处理") are the ones merged: the validator's own reading.
        starts = list(accumulate((len(sub.rows) for _, sub in batch.items), initial=0))
        read: list[dict[int, dict]] = [{} for _ in batch.items]
        for pos, values in self.merge.reader.overlay(frame, validation.frames[LEDGER]).items():
            f = bisect_right(starts, pos) - 1
            read[f][pos - starts[f]] = values
        found: list[list[Problem]] = [[] for _ in batch.items]
        for p in validation.problems:
            if p.sheet != LEDGER:
                continue
            if p.row is None:
                for issues in found:
                    issues.append(p)
                continue
            f = p.row // ROW_OFFSET
            if any(int(n) // ROW_OFFSET != f for n in _ROW_IN_TEXT.findall(p.message)):
                continue  # points at another file's row
            found[f].append(_unshift(p) if f else p)
        for (result, sub), issues, values in zip(batch.items, found, read):
            self.merge_file(result, sub, issues, values)
            tick(result.file)

    def merge_file(self, result: FileResult, sub: Submission, issues: list[Problem],
                   read: dict[int, dict] | None = None) -> None:
        """Merge the file's rows without errors; ``read``: row position → values as the validator
        read them (``AsRead.overlay``), merged instead of the text typed."""
        unread = _unread_cells(sub)
        if unread:  # an error value or a formula's missing result reads blank: not "未填写" to the committee
            erred = {(sub.row_numbers[pos], schema.LEDGER.header_of(key)) for pos, key in unread}
            issues = [p for p in issues if p.code != "required" or (p.row, p.column) not in erred]
        issues = [_in_merged_cell(p, sub.merged) for p in issues] + _submission_checks(
            sub, result.committee_id, self.merge)
        if sub.base:  # prefilled records left as given: what they hold is the master's, not news to report
            untouched = _untouched_rows(sub)
            issues = [p for p in issues if p.row not in untouched]
        repeated = _repeated_keys(sub)  # after the filter: an untouched original is one of them
        if repeated:
            twice = {p.row for p in repeated}
            # One message a row: "on several rows" says all that "another record's number" would.
            issues = [p for p in issues if p.code not in ("duplicate_key", "another_record") or p.row not in twice
                      ] + repeated
        bad_rows = {p.row for p in issues if p.is_error and p.row is not None}
        if result.returned_whole is not None:
            issues.append(result.returned_whole)
        good = [] if result.returned_whole is not None else [
            (n, _read_as(row, read.get(pos)) if read else dict(zip(KEYS, row)))
            for pos, (n, row) in enumerate(zip(sub.row_numbers, sub.rows)) if n not in bad_rows]
        merged = self.merge.merge(good, sub.columns, sub.path.name, self.now, sub.base,
                                  {row[KEY_INDEX] for row in sub.rows if row[KEY_INDEX] is not None})
        issues += [_look_alike(o, _key_cell(sub)) for o in merged.outcomes if o.similar is not None]
        result.look_alikes = {o.record_id: (o.similar, o.differs[0] if o.differs else None)
                              for o in merged.outcomes if o.similar is not None}
        keyless = {n for n, row in zip(sub.row_numbers, sub.rows) if row[KEY_INDEX] is None}
        who = office_contact(self.settings)
        issues += [p for o in merged.outcomes if o.kept or o.gone
                   for p in _master_kept(o, _gone_how(o, sub, keyless), who)]
        issues += [p for o in merged.outcomes if o.conflicts for p in _conflicts(o, o.record_id in (sub.base or ()), who)]
        issues += [p for o in merged.outcomes if o.cleared for p in _cleared_kept(o, o.record_id in (sub.base or ()), who)]
        result.gone = [(o.row, o.record_id) for o in merged.outcomes if o.gone]
        for o in merged.outcomes:
            o.unkeyed = o.row in keyless
        result.given_back = [(o.row, o.record_id) for o in merged.outcomes if o.given_back]
        result.conflicts = [(o.row, o.record_id, header, display(office), display(committee))
                            for o in merged.outcomes for header, office, committee in o.conflicts]
        issues += [_overrode(o, sub.path.name) for o in merged.outcomes if o.overrode]
        issues += [_rekeyed(o) for o in merged.outcomes if o.rekeyed]
        issues += removed_from_form(sub, merged.outcomes, self.merge, result.committee_id, self.settings)
        issues = _keep_as_read(issues, merged.outcomes, sub)
        # A row the file gave no 记录编号: its problems name the record it became (the receipt's column),
        # added now or in an earlier run.
        given = {o.row: o.record_id for o in merged.outcomes if o.row in keyless}
        issues = [replace(p, key=given[p.row]) if p.key is None and p.row in given else p for p in issues]
        result.issues = sorted(issues, key=lambda p: (p.row or 0, p.level != ERROR, p.column or ""))
        result.outcomes, result.changes = merged.outcomes, merged.changes
        # The likely typos now in the master: on rows added, or in columns updated (not on a row
        # refused for an error, nor a value the office's correction kept out).
        landed = {(o.row, None) for o in merged.outcomes if o.action == ADDED} | {
            (o.row, c) for o in merged.outcomes if o.action == UPDATED for c in o.columns}
        result.doubtful = [p for p in issues if p.code in DOUBTFUL
                           and ((p.row, None) in landed or (p.row, p.column) in landed)]
        result.rows_added = merged.count(ADDED)
        result.rows_updated = merged.count(UPDATED)
        result.rows_unchanged = merged.count(UNCHANGED)
        result.status = REJECTED if not good else PARTLY if bad_rows else ACCEPTED
        if self.pending is not None:
            try:
                result.pending_receipt = write_receipt(result, self.pending, self.now, self.master, self.where,
                                                       self.write, self.receipt_names)
            except Exception as exc:  # the folder, or the template on this file: the merge goes on, the file waits
                _receipt_failed(result, self.pending.parent, exc)
        result.outcomes = []


def _read_as(row: list, read: dict | None) -> dict:
    values = dict(zip(KEYS, row))
    if read:
        values.update(read)
    return values


# Warnings on a value read differently from how it was typed ("6.22" read as 2020-06-22).
READ_AS = {NORMALISED, APPROXIMATE}


def _keep_as_read(issues: list[Problem], outcomes: list[RowOutcome], sub: Submission) -> list[Problem]:
    """On a merged row the file gave no 记录编号, a "read as …" warning must not invite an edit:
    the edited row, sent again without its key, would be a new record (a duplicate). Say that the
    row is merged as read, and how to change it."""
    keyless = {n for n, row in zip(sub.row_numbers, sub.rows) if row[KEY_INDEX] is None}
    merged_as = {o.row: o.record_id for o in outcomes if o.row in keyless}
    if not merged_as:
        return issues
    where = _key_cell(sub)

    def advice(p: Problem) -> Problem:
        record = merged_as.get(p.row) if p.code in READ_AS else None
        if record is None:
            return p
        return replace(p, suggestion=f"已按此汇总为记录 {record}，不必修改。如确要修改，请先在{where}"
                                     f"填上 {record} 再提交，否则改过的行会作为新记录重复添加。")

    return [advice(p) for p in issues]


def _repeated_keys(sub: Submission) -> list[Problem]:
    """Rows of one file giving one 记录编号 different values (a row copied to make a new record,
    its key left in): which one is the record cannot be told, so none is merged. The validator
    names only the later rows, and a prefilled row left as given is not reported at all: the copy,
    above it or below, would overwrite the record."""
    rows_of: dict[str, list[tuple[int, dict]]] = {}
    for n, values in zip(sub.row_numbers, sub.rows):
        if values[KEY_INDEX] is not None:
            rows_of.setdefault(str(values[KEY_INDEX]).strip(), []).append((n, dict(zip(KEYS, values))))
    key_header = schema.LEDGER.header_of(KEY)
    problems = []
    for key, found in rows_of.items():
        if len(found) < 2 or all(same_data(found[0][1], row, sub.columns) for _, row in found[1:]):
            continue
        listed = "、".join(str(n) for n, _ in found)
        problems += [Problem(
            LEDGER, n, key_header, key, ERROR, "repeated_record_id",
            f"记录编号 {key} 在第 {listed} 行都出现，内容却不同，无法确定哪一行是这条记录，这几行都未汇总。",
            "复制一行来填新记录时，请把新行的记录编号清空（汇总时自动编号），原记录那一行保留编号，然后重新提交。")
            for n, _ in found]
    return problems


def _untouched_rows(sub: Submission) -> set[int]:
    """Excel rows of a prefilled form that hold exactly what their record was given."""
    found = set()
    for n, values in zip(sub.row_numbers, sub.rows):
        key = values[KEY_INDEX]
        was = sub.base.get(str(key).strip()) if key is not None else None
        if was is not None and same_data(dict(zip(KEYS, values)), was, sub.columns):
            found.add(n)
    return found


REMOVED = "removed_from_form"  # a record prefilled on the form that the committee deleted from it


def removed_from_form(sub: Submission, outcomes: list[RowOutcome], merge: LedgerMerge, committee: str | None,
                      settings: dict) -> list[Problem]:
    """The records a prefilled form (``forms --records``) was given that are no longer on it, and
    still in the master as this committee's: deleting a row is how a clerk says "this is wrong",
    but consolidation never deletes, so the receipt must say so and whom to ask."""
    if not sub.base:
        return []
    on_form = sub.keys | {o.record_id for o in outcomes}
    gone = [k for k in sub.base if k not in on_form and k in merge.index and merge.owner(k) == committee]
    who = office_contact(settings)
    key_header = schema.LEDGER.header_of(KEY)
    return [Problem(
        LEDGER, None, key_header, key, WARNING, REMOVED,
        f"填报表上预填的记录 {key} 已从表中删去。汇总不会删除记录：它仍在主工作簿中，照常计入进度。",
        f"如这条记录确应删除（如重复或填错），请联系{who}，由街道在主工作簿中删除；如是误删，不必处理。")
        for key in gone]


GIVEN, SENT_KEYLESS, SENT_KEYED = "given", "sent keyless", "sent keyed"  # how a gone record was known


def _gone_how(outcome: RowOutcome, sub: Submission, keyless: set) -> str:
    """How the merge knew a row for a record the office deleted: the prefilled form's original values,
    or what the committee last sent, on a row with or without 记录编号."""
    if sub.base and outcome.record_id in sub.base:
        return GIVEN
    return SENT_KEYLESS if outcome.row in keyless else SENT_KEYED


def _key_cell(sub: Submission) -> str:
    """Where the committee puts a row's 记录编号 in this file (a hand-made form may have no such column)."""
    key_header = schema.LEDGER.header_of(KEY)
    return f"这一行的“{key_header}”列" if KEY in sub.columns else f"表中加一列“{key_header}”，在这一行"


def _look_alike(outcome: RowOutcome, where: str) -> Problem:
    """An added row without 记录编号 that matches an earlier record in every data column but one
    (``differs``), or on the fields the validator's probable_duplicate rule compares: most likely
    that record corrected and sent again. ``where``: where the file takes a 记录编号 (``_key_cell``)."""
    same = "、".join(schema.LEDGER.header_of(k) for k in SIMILAR_COLUMNS)
    key_header = schema.LEDGER.header_of(KEY)
    if outcome.differs is not None:
        header, held, sent = outcome.differs
        earlier, new = outcome.similar, outcome.record_id
        return Problem(
            LEDGER, outcome.row, header, new, WARNING, RESENT,
            f"这一行没有填{key_header}，除“{header}”外（这一行为 {_value_text(sent)}，记录 {earlier} 为 "
            f"{_value_text(held)}）与已汇总的记录 {earlier} 完全相同，可能是改正 {earlier} 后重新提交；"
            f"已作为新记录 {new} 加入，{earlier} 仍保留，两条都会计入汇总。",
            f"如是改正 {earlier}：请在{where}填上 {earlier} 后重新提交（将改正这条记录），并告知街道删除 {new}。"
            f"如确是另一次活动，可不处理（最好在{schema.LEDGER.header_of('activity')}或"
            f"{schema.LEDGER.header_of('note')}中写明区别）。")
    return Problem(
        LEDGER, outcome.row, schema.LEDGER.header_of("activity"), outcome.record_id, WARNING, RESENT,
        f"这一行没有填{key_header}，与已汇总的记录 {outcome.similar} 的{same}都相同，可能是同一次活动重复提交；"
        f"已作为新记录 {outcome.record_id} 加入。",
        f"如是修改 {outcome.similar}：请告知街道删除 {outcome.record_id}；以后修改已报记录，请在“{key_header}”列填写 "
        f"{outcome.similar} 再提交，或向街道索取已填好记录编号的填报表。"
        f"如确是另一次活动，可不处理（最好在{schema.LEDGER.header_of('activity')}中写明区别）。")


def _value_text(value: object) -> object:
    """A value as 变更记录 shows it, “空白” when blank."""
    shown = display(value)
    return "空白" if shown is None else shown


def _rekeyed(outcome: RowOutcome) -> Problem:
    """A prefilled row left as given but for its cleared 记录编号: the record, not a new one."""
    key_header = schema.LEDGER.header_of(KEY)
    return Problem(LEDGER, outcome.row, key_header, outcome.record_id, WARNING, "key_cleared",
                   f"这一行的{key_header}被清空了；按日期、项目编号和活动内容，它是填报表中原有的记录 "
                   f"{outcome.record_id}，已按这条记录处理，没有作为新记录重复添加。",
                   f"已有记录的{key_header}请保留，只有新记录才留空。")


def _overrode(outcome: RowOutcome, file: str) -> Problem:
    """An update of what another file of the same run had just changed: the later file's values
    stand (files are merged oldest first); its receipt says so, the earlier one's cannot any more."""
    said = "；".join(f"“{header}”先按 {other} 改为 {display(value) if value is not None else '空白'}"
                    for header, other, value in outcome.overrode)
    return Problem(LEDGER, outcome.row, outcome.overrode[0][0], outcome.record_id, WARNING, "overrode",
                   f"本次汇总中，记录 {outcome.record_id} 的{said}，又按本表 {file}（提交较晚）改为本表的值，以本表为准。",
                   "两份表对同一条记录填得不同：请核对哪一份是对的；如应以另一份为准，请改正后重新提交。")


RECORD_REMOVED = "record_removed"  # a row for a record the office deleted, left as given or as sent: not back
CONFLICT = "conflict"  # a cell the office and the committee both changed (the committee's value applied)


def _master_kept(outcome: RowOutcome, how: str, who: str) -> list[Problem]:
    """A record the committee left as it was given (prefilled form) or as it sent it before, where
    the master changed since: the master's values stay. ``how``: ``_gone_how``; ``who``: the office's contact."""
    key_header = schema.LEDGER.header_of(KEY)
    if outcome.gone:
        record = outcome.record_id
        if how == GIVEN:
            said = f"记录 {record} 已由街道从主工作簿中删除，这一行您没有改动，未重新加入。"
        elif how == SENT_KEYLESS:
            said = (f"这一行没有填{key_header}，与您此前提交、曾汇总为记录 {record} 的那一行完全相同；"
                    f"该记录已被街道从主工作簿中删除，本次未重新加入。")
        else:
            said = f"记录 {record} 已被街道从主工作簿中删除；这一行与您上次提交的完全相同，本次未重新加入。"
        return [Problem(LEDGER, outcome.row, key_header, record, WARNING, RECORD_REMOVED, said,
                        f"如确需恢复这条记录，请联系{who}；否则请从表中删去这一行（以后提交就不会再提示）。")]
    found = []
    again = {header for header, _, _ in outcome.resent} | {header for header, _ in outcome.cleared}
    given = [h for h in outcome.kept if h not in again]
    if given:
        found.append(Problem(
            LEDGER, outcome.row, given[0], outcome.record_id, WARNING, "master_kept",
            f"记录 {outcome.record_id} 的“{'、'.join(given)}”在填报表生成后已被修改（由街道，或由您的另一份填报表），"
            "您没有改动这些列，以主工作簿为准。",
            "下次请使用街道新下发的填报表；如街道的修改有误，请在表中改正后重新提交。"))
    if outcome.resent:
        said = "；".join(f"“{header}”您这次填的仍是 {_shown(sent)}，主工作簿中现为 {_shown(held)}"
                        for header, held, sent in outcome.resent)
        found.append(Problem(
            LEDGER, outcome.row, outcome.resent[0][0], outcome.record_id, WARNING, RESENT_KEPT,
            f"记录 {outcome.record_id}：{said}。您上次提交的就是这个值，此后街道在主工作簿中作了修改，"
            "这次您没有改动它，以主工作簿为准（未采用表中的旧值）。",
            "请把表中这一格改成主工作簿中的值，以免误会；如街道的修改有误，请在表中填上正确的值（与上次提交的不同）后重新提交。"))
    return found


RESENT_KEPT = "resent_kept"  # a value sent again as before, where the office corrected the master since


def _conflicts(outcome: RowOutcome, prefilled: bool, who: str) -> list[Problem]:
    """A cell the committee edited that the office had changed too, since the form was made
    (``prefilled``) or since the committee last sent the record: the committee's value applies (its
    record, its newer statement), and the receipt says whose value was replaced, one line a cell."""
    since = "填报表生成后" if prefilled else "您上次提交这条记录后"
    return [Problem(
        LEDGER, outcome.row, header, outcome.record_id, WARNING, CONFLICT,
        f"记录 {outcome.record_id} 的“{header}”：{since}，街道已在主工作簿中改为 {_shown(office)}，"
        f"贵居委会这次改为 {_shown(committee)}；两边改了同一格，已按贵居委会的填报更新为 {_shown(committee)}。",
        f"请与{who}核对哪个值是对的；如应为街道的 {_shown(office)}，请在表中改为 {_shown(office)} 后重新提交。")
        for header, office, committee in outcome.conflicts]


CLEARED_KEPT = "cleared_kept"  # a cell the committee left blank where the office had changed the value: kept


def _cleared_kept(outcome: RowOutcome, prefilled: bool, who: str) -> list[Problem]:
    """A cell the committee cleared (often by accident: a cell deleted while copying) whose value the
    office had changed since the form was made (``prefilled``) or since the committee last sent the
    record: a blank never erases the office's value, which stays; the receipt says so, one line a cell."""
    since = "填报表生成后" if prefilled else "您上次提交这条记录后"
    return [Problem(
        LEDGER, outcome.row, header, outcome.record_id, WARNING, CLEARED_KEPT,
        (f"记录 {outcome.record_id} 的“{header}”：您的表中这一格是空白，您此前提交这条记录时没有这一列，"
         f"主工作簿中是街道填写的 {_shown(office)}；" if header in outcome.unsent else
         f"记录 {outcome.record_id} 的“{header}”：您这次把这一格清空了，而{since}，街道已在主工作簿中改为 {_shown(office)}；")
        + f"空白不会替换街道修改过的值，保留了主工作簿的 {_shown(office)}（未采用表中的空白）。",
        f"如果是复制时误删，请在表中填回 {_shown(office)}；如确要删去这一格的内容，请与{who}联系。")
        for header, office in outcome.cleared]


def _shown(value: object) -> object:
    shown = display(value)
    return "空白" if shown is None else shown


def _unshift(p: Problem) -> Problem:
    def fix(text: str) -> str:
        return _ROW_IN_TEXT.sub(lambda m: f"第 {int(m.group(1)) % ROW_OFFSET} 行", text)

    return replace(p, row=p.row % ROW_OFFSET, message=fix(p.message), suggestion=fix(p.suggestion))


def _committees(frame: pd.DataFrame) -> dict[str, str]:
    # Keyed as the validator and the merge read a code ("c01", "Ｃ０１", "C 01" are C01), as the rows are.
    return {code_text(c): str(n or "") for c, n in zip(frame["committee_id"], frame["name"]) if code_text(c)}


def _file_problem(code: str, message: str, level: str = ERROR, suggestion: str = "",
                  sheet: str = LEDGER) -> Problem:
    """A problem with the whole file (``sheet`` is '' when it is not about the 台账 sheet)."""
    return Problem(sheet, None, None, None, level, code, message, suggestion)


def load_file(path: Path, committees: dict[str, str],
              read: Callable[[Path], Submission | str] = read_for_consolidation,
              ) -> tuple[FileResult, Submission | None]:
    """Read one file and decide its committee; a file rejected whole comes back without rows.

    ``read`` gives the file's submission or the Chinese text of why it cannot be read."""
    result = FileResult(path.name, REJECTED)
    reason = reject_reason_for_suffix(path)
    if reason:
        result.issues.append(with_advice("not_a_workbook", reason))
        _committee_by_name(result, committees)
        return result, None
    sub = read(path)
    if isinstance(sub, str):
        result.issues.append(replace(with_advice("structure", sub), sheet=LEDGER))
        _committee_by_name(result, committees)
        return result, None
    if not sub.rows and sub.info_committee is None:
        # A hand-made form with nothing filled in: there is no committee to tell, and nothing to
        # reject either.
        result.status = ACCEPTED
        result.issues.append(_empty_problem(sub.sheet_name))
        return result, None
    for row in sub.rows:
        # Compared as the validator reads them: "ｃ０２" is C02 and "c02-0005" the record C02-0005
        # (kept as typed, a new record would get the key "ｃ０２-0001", an update would add a twin).
        for i in IDENTITY_INDEXES:
            if row[i] is not None:
                row[i] = code_text(row[i])
    if sub.base:  # keyed as its rows now are (a prefilled "c01-0028" typed so by staff)
        sub.base = {code_text(k): v for k, v in sub.base.items()}
    committee, problem = _committee_of(sub, committees)
    result.committee_id = committee
    result.committee_name = committees.get(committee or "", "")
    if problem and problem.code == COMMITTEE_NAME:  # the receipt is for the form's own committee
        result.committee_name = sub.form_info.committee_name
    if problem and problem.code in ("wrong_committee", "wrong_form"):
        result.returned_whole = problem
    elif problem:
        result.issues.append(problem)
        if committee is None:
            _committee_by_name(result, committees)
        return result, None
    for row in sub.rows:
        if row[COMMITTEE_INDEX] is None:
            row[COMMITTEE_INDEX] = committee
    if committee.startswith(FORMULA_PREFIXES):  # now in cells the reader saw blank
        sub.formula_rows = list(range(len(sub.rows)))
    if not sub.rows:
        result.status = ACCEPTED
        result.issues.append(_empty_problem(sub.sheet_name))
        return result, None
    return result, sub


def other_master(sub: Submission, master: Path) -> str:
    """Why a form made from another master in this master's folder is left in the inbox (two
    masters whose 设置 name one inbox, e.g. a copy staff made beside it): merged here, its rows
    would be missing from the master it was made for. "" for a form of this master, a form whose
    master is gone or renamed (this one, most likely), and a workbook typed by hand."""
    made_for = sub.info_master
    if not made_for or made_for == master.name:
        return ""
    other = master.parent / made_for
    try:
        if not other.is_file() or other.samefile(master):
            return ""
    except OSError:
        return ""
    return (f"{sub.path.name} 是用同一文件夹中的另一个主工作簿“{made_for}”生成的填报表，本次（{master.name}）没有汇总它，"
            f"它留在收件箱，等“{made_for}”汇总。两个主工作簿共用一个收件箱，每次都会这样跳过对方的填报表："
            f"请在其中一个主工作簿的“{schema.SETTINGS.name}”中把“{schema.SETTINGS_BY_KEY['inbox'].item}”改成另一个文件夹，"
            "或把不用的那个主工作簿移走")


IDENTITY_INDEXES = (KEY_INDEX, COMMITTEE_INDEX)


def _committee_by_name(result: FileResult, committees: dict[str, str]) -> None:
    """A file returned before its committee was known ("填报表-C09-育明居委会.xls", "太阳山居委会.csv"):
    the committee its name names, when exactly one, so that its receipt is named for it."""
    name = nfkc(Path(result.file).stem).upper()  # as ``committees`` is keyed (``code_text``)
    found = {c for c, n in committees.items()
             if re.search(rf"(?<![A-Z0-9]){re.escape(c)}(?![0-9])", name) or (n and nfkc(n).upper() in name)}
    if len(found) == 1:
        result.committee_id = found.pop()
        result.committee_name = committees[result.committee_id]


def _empty_problem(sheet: str = LEDGER) -> Problem:
    """Nothing filled in on ``sheet`` (the sheet read: a copied "台账 (2)" is named as such)."""
    return _file_problem("empty", f"“{sheet}”表中没有填写任何记录。", WARNING,
                         "如有活动，请在表中逐行填写后重新提交。")


COMMITTEE_NAME = "committee_name"


def _committee_of(sub: Submission, committees: dict[str, str]) -> tuple[str | None, Problem | None]:
    """The file's committee (hidden info sheet, else its single 居委会编号) or why it is rejected."""
    header = schema.LEDGER.header_of(COMMITTEE)
    typed = [(n, str(r[COMMITTEE_INDEX]).strip()) for n, r in zip(sub.row_numbers, sub.rows)
             if r[COMMITTEE_INDEX] is not None]
    found = sorted({c for _, c in typed})
    committee = code_text(sub.info_committee) if sub.info_committee is not None else None
    if committee is None:
        if len(found) != 1:
            detail = "、".join(found) if found else "（都没填）"
            return None, _file_problem(
                "committee", f"无法确定这份填报表属于哪个居委会：“{header}”列为 {detail}。",
                suggestion="一份填报表只填一个居委会的记录，并在每行填写本居委会编号。")
        committee = found[0]
    if committee not in committees:
        return committee, _file_problem(
            "unknown_committee", f"居委会编号 {committee} 不在主工作簿的“{schema.COMMITTEES.name}”表中。",
            suggestion="请使用街道下发的填报表，或核对居委会编号。")
    named = sub.form_info.committee_name if sub.form_info is not None else ""
    ours = committees.get(committee) or ""
    if named and ours and code_text(named) != code_text(ours):  # width and spaces aside, as codes are
        # Committee codes are numbered alike in every street (C01…): another street's form, or
        # another master's, would file its rows under our committee of that code.
        return committee, _file_problem(
            COMMITTEE_NAME,
            f"这份填报表是为“{named}”（{committee}）生成的，但本主工作簿的 {committee} 是“{ours}”："
            "它可能是其他街道（或其他主工作簿）的填报表。整份退回，未汇总任何一行。",
            suggestion="如确是本街道的居委会（居委会改过名），请向街道索取新的填报表重新填写后提交；"
                       "如不是本街道的，请交给该街道。")
    others = sorted(set(found) - {committee})
    if (others == found and len(others) == 1 and len(typed) == len(sub.rows) and others[0] in committees
            and sub.info_committee is not None):
        # Every row is one other committee's: that committee filled in a form not its own (a
        # shortcut: "the form is the same"). Changing its rows to the form's committee would file
        # its work under another; the receipt is the writer's.
        writer = others[0]
        problem = _file_problem(
            "wrong_form",
            f"这是{committees.get(committee) or committee}（{committee}）的填报表，但所有记录的“{header}”都是 "
            f"{writer}（{committees[writer]}）：可能用错了填报表。整份退回，未汇总任何一行。",
            suggestion=f"{committees[writer]}请使用本居委会的填报表（{form_filename(writer, committees[writer])}，"
                       f"可向街道索取）重新填写后提交；也请改正本回执列出的其他问题。")
        return writer, replace(problem, row=typed[0][0], column=header)
    if others:
        rows = [n for n, c in typed if c != committee]
        listed = "、".join(str(r) for r in rows[:10]) + ("等" if len(rows) > 10 else "")
        problem = _file_problem(
            "wrong_committee",
            f"这是 {committee} 的填报表，但第 {listed} 行的“{header}”为 {'、'.join(others)}。整份退回，未汇总任何一行。",
            suggestion=f"每个居委会只填报本居委会的记录；请把这些行改为 {committee} 或删除，"
                       "并改正本回执列出的其他问题，再整份重新提交。")
        # The receipt's 行号 and 列 point at the cell (the first, when there are several).
        return committee, replace(problem, row=rows[0], column=header)
    return committee, None


def _submission_checks(sub: Submission, committee: str, merge: LedgerMerge) -> list[Problem]:
    """Checks a submission needs beyond the master's rules: others' records; formula-looking text."""
    problems = []
    key_header = schema.LEDGER.header_of(KEY)
    headers = schema.LEDGER.headers
    # The reader marked the rows holding formula-looking text: only those are looked at closely.
    suspects = set(sub.formula_rows)
    for pos, (n, row) in enumerate(zip(sub.row_numbers, sub.rows)):
        record_id = row[KEY_INDEX]
        if record_id is not None:
            record_id = str(record_id).strip()
            owner = merge.owner(record_id)
            # A key of the wrong form is the validator's (bad_record_id / record_id_committee);
            # this is a well-formed key the master already holds for another committee.
            if owner is not None and owner != committee:
                problems.append(Problem(
                    LEDGER, n, key_header, record_id, ERROR, "record_of_other_committee",
                    f"记录编号 {record_id} 在主工作簿中属于 {owner}，不能由 {committee} 修改。",
                    f"新记录请把记录编号留空，系统自动编号；修改已报记录请保留回执中给出的编号（{committee}-xxxx）。"))
            elif owner is not None:
                problems += _another_record(merge, record_id, n, row, sub.columns)
        if pos not in suspects:
            continue
        for i, value in enumerate(row):
            if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _is_number(value):
                problems.append(Problem(
                    LEDGER, n, headers[i], record_id, WARNING, "formula_text",
                    f"“{value[:20]}”以“{value[0]}”开头，已按文字保存，不会当作公式计算。", ""))
    erred = {(pos, key) for pos, key, _ in sub.error_cells}
    for pos, key, shown in sub.error_cells:  # read blank: merged, the row would clear the master's value
        n, row, header = sub.row_numbers[pos], sub.rows[pos], schema.LEDGER.header_of(key)
        problems.append(Problem(LEDGER, n, header, row[KEY_INDEX], ERROR, "error_value",
                                f"“{header}”显示的是错误值“{shown}”，不是数据，这一行未汇总。",
                                "请在这一格直接填写正确的值（公式算出的错误请改正公式，或改填数值）后重新提交。"))
    unsaved = set(sub.unsaved_formula_cells)
    for pos, key in sub.formula_cells:  # real formulas: the value they last showed is what is kept
        if (pos, key) in erred:
            continue  # said above
        n, row, header = sub.row_numbers[pos], sub.rows[pos], schema.LEDGER.header_of(key)
        value = row[KEYS.index(key)]
        if (pos, key) in unsaved:  # read blank: merged, the row would add a blank or clear the master's value
            problems.append(Problem(
                LEDGER, n, header, row[KEY_INDEX], ERROR, "formula_cell",
                f"“{header}”填的是公式，文件里没有它的计算结果（可能没有在 Excel 或 WPS 里保存过），这一行未汇总。",
                "请直接填写数值或文字，不要用公式（或用 Excel、WPS 打开这份表保存一次），然后重新提交。"))
            continue
        shown = f"计算结果“{str(value)[:20]}”" if value is not None else "计算结果（空白）"
        problems.append(Problem(LEDGER, n, header, row[KEY_INDEX], WARNING, "formula_cell",
                                f"“{header}”填的是公式，已按它的{shown}保存，公式本身不保存。",
                                "请直接填写数值或文字，不要用公式。"))
    return problems + _reading_notes(sub)


def _unread_cells(sub: Submission) -> set[tuple[int, str]]:
    """(row position, column) of cells read blank though the committee saw something there: error
    values, and formulas whose result the file does not hold."""
    found = {(pos, key) for pos, key, _ in sub.error_cells}
    return found | set(sub.unsaved_formula_cells)


# A keyed row whose date and activity both differ from its record's is another activity given
# that record's number (a clerk numbering new rows C01-0001, C01-0002…, or typing over a prefilled
# row), whatever its project: committees work on a few projects.
IDENTITY_COLUMNS = ("date", "activity")
# Activities this alike (difflib's ratio) are one activity retyped: "健康讲座" → "健康知识讲座".
SAME_ACTIVITY_RATIO = 0.5


def _another_record(merge: LedgerMerge, record_id: str, n: int, row: list, columns: set[str]) -> list[Problem]:
    """An error when the row would replace the master's record ``record_id`` with another activity."""
    if not all(k in columns for k in IDENTITY_COLUMNS):
        return []
    # Both as read: "6月22日" sent for a record merged as 2020-06-22 is its date.
    held, sent = merge.reader.row(merge.rows[merge.index[record_id]]), merge.reader.row(dict(zip(KEYS, row)))
    (old_date, new_date), (old_text, new_text) = [
        (comparable_in(k, held.get(k)), comparable_in(k, sent.get(k))) for k in IDENTITY_COLUMNS]
    if None in (old_date, new_date, old_text, new_text) or old_date == new_date:
        return []
    old_text, new_text = str(old_text), str(new_text)
    if old_text in new_text or new_text in old_text or SequenceMatcher(
            None, old_text, new_text).ratio() >= SAME_ACTIVITY_RATIO:
        return []
    date_header, activity_header = map(schema.LEDGER.header_of, IDENTITY_COLUMNS)
    return [Problem(
        LEDGER, n, schema.LEDGER.header_of(KEY), record_id, ERROR, "another_record",
        f"记录编号 {record_id} 是已汇总的另一条记录（{display(old_date)} {old_text}），这一行的{date_header}"
        f"和{activity_header}都与它不同，像是新记录填了已有的编号；为免覆盖原记录，这一行未汇总。",
        "新记录请把记录编号留空（汇总时自动编号）后重新提交；如确要把这条记录整条改掉，请联系街道在主工作簿中修改。")]


def _reading_notes(sub: Submission) -> list[Problem]:
    """What the reader did with a hand-made form that its maker should know: a header read as the
    column it names, a 合计 row left out."""
    notes = [Problem(LEDGER, row, header, None, WARNING, "header_read_as",
                     f"表头“{typed}”按“{header}”列读取。", f"表头请只写“{header}”，单位等说明不必写在表头里。")
             for row, typed, header in sub.aliased]
    if sub.passed_over is not None:
        notes.append(_file_problem(
            "sheet_read_as", f"工作表“{sub.passed_over}”是空的，已读取填有记录的工作表“{sub.sheet_name}”。", WARNING,
            f"下次请直接在“{LEDGER}”表中填写，不必复制工作表。"))
    elif clean_header(sub.sheet_name) != LEDGER:
        notes.append(_file_problem(
            "sheet_read_as", f"没有名为“{LEDGER}”的工作表，已读取工作表“{sub.sheet_name}”。", WARNING,
            f"下次请把这张工作表命名为“{LEDGER}”。"))
    for header, rows in sub.extra_columns.items():
        if sub.info is not None and not header.endswith(UNHEADED):
            continue  # a generated form's guide says its own columns on the right are not read
        listed = "、".join(map(str, rows[:5])) + ("等" if len(rows) > 5 else "")
        notes.append(Problem(
            LEDGER, rows[0], header, None, WARNING, "column_not_merged",
            f"“{header}”不是台账的列，第 {listed} 行在这一列填的内容没有汇总。",
            f"需要汇总的内容请写进“{schema.LEDGER.header_of('note')}”列；已汇总的行请同时填上回执中的"
            f"{schema.LEDGER.header_of(KEY)}再提交，否则会作为新记录重复添加。"))
    notes += [Problem(LEDGER, n, None, None, WARNING, "totals_row",
                      "这一行是手写的合计行，不是一条活动记录，未汇总。",
                      "填报表里可以不写合计行：街道汇总时会自动计算合计。") for n in sub.totals_rows]
    return notes


def _in_merged_cell(p: Problem, merged: dict[tuple[int, str], str]) -> Problem:
    """A blank required cell under the first row of a merged cell: say so, or the committee, who sees
    the merged value there in Excel, cannot tell what to fix."""
    if p.code != "required" or not merged:
        return p
    column = schema.LEDGER.by_header().get(p.column or "")
    where = merged.get((p.row, column.key)) if column else None
    if where is None:
        return p
    return replace(p, message=f"{p.column}在合并单元格 {where} 中：表里看得到，但合并单元格的内容只属于第一行，"
                              "这一行读到的是空白，未汇总。",
                   suggestion=f"请取消这个合并单元格，在每一行都填上{p.column}后重新提交。")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- after the write


def finish_file(result: FileResult, where: Folders, now: datetime, master: Path) -> None:
    """Put the file's receipt in place, then move the file to archive/ or rejected/. A file whose
    receipt cannot be written stays in the inbox: the next run retries (merging again changes nothing)."""
    if result.receipt_error:
        return
    try:
        if result.pending_receipt is not None:
            where.receipts.mkdir(parents=True, exist_ok=True)
            receipt = where.receipts / result.pending_receipt.name
            os.replace(result.pending_receipt, receipt)
        else:
            receipt = write_receipt(result, where.receipts, now, master, where)
    except Exception as exc:  # the master is written: one file's receipt must not stop the others
        _receipt_failed(result, where.receipts, exc)
        return
    result.receipt = receipt
    source = where.inbox / result.file
    folder = where.rejected if result.status == REJECTED else where.archive
    try:
        result.moved_to = move_with_stamp(source, folder, now)
    except OSError as exc:  # e.g. Windows: the committee opened it again meanwhile
        result.issues.append(_file_problem(
            "not_moved", f"{result.file} 无法移到“{folder.name}”文件夹（{os_reason(exc)}），仍留在收件箱；"
            "下次汇总时会再次处理（不会重复添加）。", WARNING, sheet=""))


def _receipt_failed(result: FileResult, folder: Path, exc: Exception) -> None:
    """``result``'s receipt could not be written: say so; the file is not moved (its outcome is
    kept in the master, so the next run finds it unchanged and writes the receipt)."""
    result.pending_receipt = None
    again = "下次汇总时会再次处理这份文件并补发回执（已并入的行不会重复添加）。"
    if isinstance(exc, OSError):
        result.receipt_error = f"未能写入文件夹“{folder}”（{os_reason(exc)}）"
        fix = "请检查回执文件夹能否写入（磁盘空间、权限，或设置中的回执文件夹路径）；"
    else:  # the office's template fails on this file's data (one that fails on any is stopped earlier)
        result.receipt_error = f"未能生成（{template_failure(exc)}）"
        fix = f"请把这条信息发给技术联系人，或改正设置中模板文件夹里的 {RECEIPT_TEMPLATE}（删除它即用自带模板）；"
    result.issues.append(_file_problem(
        "receipt_not_written", f"{result.file} 的回执{result.receipt_error}，文件仍留在收件箱。",
        WARNING, fix + again, sheet=""))


def template_failure(exc: Exception) -> str:
    """Why the receipt template failed, in Chinese (a TemplateProblem names the tag already)."""
    if isinstance(exc, TemplateProblem):
        return exc.what
    return f"回执模板“{RECEIPT_TEMPLATE}”对这份填报表计算出错：{type(exc).__name__}: {str(exc)[:120]}"


def check_receipt_template(templates: str | None, master: Path, now: datetime) -> None:
    """Render a sample receipt (every kind of row and problem) before any file is touched: a
    template the office broke stops the run with a Chinese ``TemplateProblem`` naming it."""
    sample = FileResult(
        "填报表-C01-示例.xlsx", PARTLY, "C01", "示例居委会", rows_added=1, rows_updated=1, rows_unchanged=1,
        issues=[Problem(LEDGER, 5, schema.LEDGER.header_of("date"), None, ERROR, "sample", "示例错误", "示例改法"),
                Problem(LEDGER, 4, None, "C01-0002", WARNING, "sample", "示例提示", "")],
        outcomes=[RowOutcome(2, "C01-0001", ADDED, (), True),
                  RowOutcome(3, "C01-0002", UPDATED, (schema.LEDGER.header_of("quantity"),)),
                  RowOutcome(4, "C01-0003", UNCHANGED)])
    try:
        receipt_html(templates, receipt_context(sample, now, master, "示例联系人（021-00000000）"), fresh=True)
    except TemplateProblem:
        raise
    except Exception as exc:  # an error raised by the template's own code (a division by zero...)
        raise TemplateProblem(RECEIPT_TEMPLATE, "", f"渲染示例回执时出错（{type(exc).__name__}: {exc}）") from exc


STAMP = "%Y%m%d-%H%M%S"  # the run's time in the names of archived files and receipts
_STAMPED = re.compile(r"(.+)-(\d{8}-\d{6})(?:-\d+)?")


def unstamped(stem: str) -> str:
    """``stem`` without the run time ``move_with_stamp`` added: a file put back into the inbox from
    the archive (as ``restore`` asks) is archived and receipted again under its own name, with this
    run's time alone (not "C06-20201115-100000-20201116-090000")."""
    found = _STAMPED.fullmatch(stem)
    if found is None:
        return stem
    try:
        datetime.strptime(found.group(2), STAMP)
    except ValueError:  # digits that are no time: the committee's own name
        return stem
    return found.group(1)


def move_with_stamp(path: Path, folder: Path, now: datetime) -> Path:
    """Move ``path`` into ``folder`` as ``<stem>-<timestamp><suffix>`` (never overwriting; a stem
    archived before loses its earlier time: ``unstamped``)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp, stem = now.strftime(STAMP), unstamped(path.stem)
    target = folder / f"{stem}-{stamp}{path.suffix}"
    if target.exists():  # two archived copies of one form put back: each keeps a name of its own
        stem = path.stem
        target = folder / f"{stem}-{stamp}{path.suffix}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{stamp}-{n}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


def write_receipt(result: FileResult, folder: Path, now: datetime, master: Path, where: Folders,
                  write: Callable[[Path, str | None, dict], object] = render_receipt,
                  taken: set[str] | None = None) -> Path:
    """The committee's receipt (回执) for one file, as HTML (``where.templates``: the office's own
    copies; ``where.contact``: whom to ask).

    ``write(path, templates, context)`` renders and writes it (consolidation hands it to its
    worker process); ``taken``: names given this run, which the worker may not have written yet."""
    folder.mkdir(parents=True, exist_ok=True)
    who = safe_name(result.committee_id or "未知居委会")
    taken = set() if taken is None else taken
    stem = f"回执-{who}-{receipt_part(result.file)}-{now.strftime(STAMP)}"
    if f"{stem}.html" in taken or (folder / f"{stem}.html").exists():
        # Two archived copies of one form put back: each its own name, as archived (``move_with_stamp``).
        stem = f"回执-{who}-{receipt_part(result.file, unstamp=False)}-{now.strftime(STAMP)}"
    path, n = folder / f"{stem}.html", 1
    # Names can still meet ("X-xls.xlsx" and "X.xls"; full-width and ASCII names are one after NFKC).
    while path.name in taken or path.exists():
        n += 1
        path = folder / f"{stem}-{n}.html"
    taken.add(path.name)
    write(path, where.templates, receipt_context(result, now, master, where.contact))
    return path


def receipt_part(file: str, unstamp: bool = True) -> str:
    """What a receipt's name says of the file, between the committee and the run's time (the
    time an earlier run archived it with left out, unless ``unstamp`` is false)."""
    name = Path(file)
    # The suffix too unless .xlsx: "C01.xls" and "C01.ods" sent together get a receipt each.
    kind = "" if name.suffix == ".xlsx" else f"-{safe_name(name.suffix.lstrip('.') or '无扩展名')}"
    return f"{safe_name(unstamped(name.stem) if unstamp else name.stem)}{kind}"


UNDONE_RECEIPT = "-已撤销"  # ends the name of a receipt whose run a restore undid (``recovery.mark_receipts``)


def receipts_of(folder: Path, file: str, when: datetime) -> list[Path]:
    """The receipts ``write_receipt`` wrote for ``file`` in the run at ``when`` (marked undone or not)."""
    try:
        files = sorted(folder.iterdir())
    except OSError:  # no receipts folder (yet), or unreadable: nothing to mark
        return []
    return named_for_run(files, (receipt_part(file, unstamp=False), receipt_part(file)),
                         lambda part: rf"回执-[^-]+-{re.escape(part)}-{when.strftime(STAMP)}(?:-\d+)?"
                                      rf"(?:{UNDONE_RECEIPT})?\.html")


def named_for_run(files: list[Path], stems: tuple[str, ...], pattern: Callable[[str], str]) -> list[Path]:
    """The ``files`` whose names fully match ``pattern(stem)`` for the first of ``stems`` any does:
    a file's own name first, then without an earlier run's time (of two archived copies of one
    form put back, the second kept its own name: ``move_with_stamp``, ``write_receipt``)."""
    for stem in dict.fromkeys(stems):
        named = re.compile(pattern(stem))
        found = [p for p in files if named.fullmatch(p.name)]
        if found:
            return found
    return []


def receipt_context(result: FileResult, now: datetime, master: Path, contact: str = "") -> dict:
    """The variables the receipt template gets (documented in templates/README.md)."""
    return {
        "contact": contact,
        "file": result.file,
        "committee_id": result.committee_id or "",
        "committee_name": result.committee_name,
        "status": result.status,
        "status_text": STATUS_TEXT[result.status],
        "time": now.strftime("%Y-%m-%d %H:%M"),
        "master": master.name,
        "rows_added": result.rows_added,
        "rows_updated": result.rows_updated,
        "rows_unchanged": result.rows_unchanged,
        "rows": [
            {"row": o.row, "record_id": o.record_id, "action": o.action,
             "columns": "、".join(o.columns), "assigned": o.assigned,
             "given_back": o.given_back, "gone": o.gone, "unkeyed": o.unkeyed}
            for o in result.outcomes
        ],
        "errors": [p.to_dict() for p in result.issues if p.is_error],
        "warnings": [p.to_dict() for p in result.issues if not p.is_error],
    }


def write_log(master: Path, run: Consolidation, now: datetime) -> Path:
    """Append one line per file (and one for the run) to ``consolidate.log`` beside the master."""
    path = master.parent / LOG_NAME
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    # A staged run's files stay in the inbox and are logged again when merged: not twice 已接受.
    staged = "（暂存，未并入，下次重试）" if run.busy else ""
    lines = [
        f"{stamp}\t{f.file}\t{STATUS_TEXT[f.status]}{staged if f.status != SKIPPED else ''}\t新增 {f.rows_added}\t更新 {f.rows_updated}\t"
        f"未变化 {f.rows_unchanged}\t错误 {sum(p.is_error for p in f.issues)}\t"
        f"{f.moved_to.name if f.moved_to else ''}"
        + (f"回执{f.receipt_error}，留在收件箱" if f.receipt_error else "")
        + (f"\t请核实 {len(f.doubtful)} 处很可能填错的数值" if f.doubtful else "")
        + (f"\t街道已删除的记录再次提交、未加回 {len(f.gone)} 条：{_gone_text(f)}" if f.gone else "")
        + (f"\t恢复备份后重新并入、沿用原编号 {len(f.given_back)} 条：{_rows_text(f.given_back)}" if f.given_back else "")
        + (f"\t与街道的修改冲突 {len(f.conflicts)} 处（已按居委会的值更新）：{_conflicts_text(f)}" if f.conflicts else "")
        + (f"\t居委会清空了街道修改过的单元格、保留街道的值 {len(cleared)} 处：{_cleared_text(cleared)}"
           if (cleared := [p for p in f.issues if p.code == CLEARED_KEPT]) else "")
        + (("！！" if f in run.waiting else "") + f.issues[0].message if f.status == SKIPPED and f.issues else "")
        for f in run.files
    ]
    if run.busy:
        outcome = f"主工作簿未写入（{run.busy}）结果暂存为 {run.staged.name}，收件箱保持原样，下次重试"
    else:
        outcome = f"主工作簿{'已写入' if run.master_written else '无需更新'}"
    unsent = sum(bool(f.receipt_error) for f in run.files)
    if unsent:
        outcome += f"；{unsent} 份回执未写入，这些文件留在收件箱，下次重试"
    # The log is per folder: two masters there share it, so the run names its master.
    if run.long_busy:
        outcome += f"；！！{run.long_busy}"
    if run.sent_problem:  # the nightly task's readers read this log, not the summary
        outcome += "；！！" + run.sent_problem.replace("\n", " ")
    if run.numbered and run.master_written:
        outcome += f"；手工录入的 {len(run.numbered)} 行已编号：{'、'.join(run.numbered)}"
    lines.append(f"{stamp}\t{run_marker(run.master)}\t{len(run.files)} 个文件\t新增 {run.rows_added}\t"
                 f"更新 {run.rows_updated}\t{outcome}")
    with path.open("a", encoding="utf-8") as log:
        log.write("\n".join(lines) + "\n")
    return path


def refresh_after_merge(wb: Workbook, rows: list[dict], as_of: date) -> tuple[PreparedReport | None, str]:
    """What ``healthbook report`` would write after the merge, computed on the merged workbook in
    memory, to go into the merge's own write.

    New ledger rows get the Excel rows the writer will give them, first (so problems, marks and
    links point at them). A notice template the office broke does not hold the merge back:
    returns (None, why) and the ledger is merged without the refresh.
    """
    from .report import prepare_report  # report imports the core; imported here to keep start-up light

    merged = merged_workbook(wb, rows)
    try:
        return prepare_report(merged, as_of=as_of), ""
    except HealthbookError as exc:
        return None, str(exc).rstrip("。")


def refresh_text(done: bool, problem: str, staged: bool, fix: str | None = None) -> str:
    """What the refresh did, in Chinese, for the summary (``fix``: what to do, when not to correct
    the workbook and run the report again)."""
    if done:
        if staged:
            return ("校验结果、进度汇总和通知清单已一并放入暂存文件；通知已按暂存的结果生成，"
                    "但主工作簿尚未更新，请勿据此发出，下次汇总写入后会重新生成。")
        return "已刷新进度汇总和通知（同 healthbook report，与台账一次写入）。"
    fix = fix or ("改正后运行 healthbook report 即可补上" if not staged else "改正后下次汇总时会一并刷新")
    head = "台账已合并，但" if not staged else ""
    return f"{head}进度汇总和通知未刷新：{problem}。{fix}。"


def merged_workbook(wb: Workbook, rows: list[dict]) -> Workbook:
    """The master as it will read after the merge is written: ``rows`` (the merged ledger) as
    its 台账, the other input sheets as read. Rows without ``_row`` (added by the merge) are
    given, in place, the Excel rows the writer puts them at."""
    old = wb.frames[LEDGER]
    free = next_free_row(wb.path, schema.LEDGER, (r[ROW] for r in rows if r.get(ROW) is not None))
    for row in rows:
        if row.get(ROW) is None:
            row[ROW] = free
            free += 1
    frame = pd.DataFrame(rows, columns=list(old.columns), dtype=object)
    frame[ROW] = frame[ROW].astype("int64")
    frame.attrs["headers"] = written_headers(old.attrs.get("headers", []))
    frames = {s.name: wb.frames[s.name] for s in schema.INPUT_SHEETS if s.name in wb.frames}
    return Workbook(wb.path, {**frames, LEDGER: frame}, wb.sheet_names)


def written_headers(headers: list[str]) -> list[str]:
    """The 台账 header row after a write (index 0 = column A), as the writer lays it out."""
    columns = ledger_columns({i: h for i, h in enumerate(headers) if h}, schema.LEDGER)
    out = list(headers) + [""] * (max(columns.values(), default=-1) + 1 - len(headers))
    for key, c in columns.items():
        out[c] = schema.LEDGER.header_of(key) if key in KEYS else key
    return out


def _names(paths: list[Path]) -> str:
    shown = "、".join(p.name for p in paths[:3])
    return f"{len(paths)} 份结果（{shown}{'等' if len(paths) > 3 else ''}）"


DOUBTFUL_LISTED = 10


def _look_alike_text(record: str | None, run: Consolidation) -> str:
    """“C03-0030（与 C03-0026 只差“日期”）” for the summary."""
    for f in run.files:
        earlier, column = f.look_alikes.get(record or "", (None, None))
        if earlier is not None:
            return f"{record}（与 {earlier} {f'只差“{column}”' if column else '相近'}）"
    return str(record)


def _rows_text(rows: list[tuple[int | None, str]]) -> str:
    """“C06-0026（第 3 行）、…” for the summary and the log."""
    return "、".join(f"{key}（第 {row} 行）" if row else str(key) for row, key in rows)


def _gone_text(f: FileResult) -> str:
    return _rows_text(f.gone)


def _conflicts_text(f: FileResult) -> str:
    """“C04-0001 第 3 行“完成数量”：街道 999，居委会 150；…” for the summary and the log."""
    return "；".join(f"{key}{f' 第 {row} 行' if row else ''}“{column}”：街道 {_shown(office)}，居委会 {_shown(committee)}"
                    for row, key, column, office, committee in f.conflicts)


def _cleared_text(cleared: list[Problem]) -> str:
    """“C04-0002 第 3 行（参与人数）、…” for the summary and the log (``CLEARED_KEPT`` problems)."""
    return "、".join(f"{p.key}{f' 第 {p.row} 行' if p.row else ''}（{p.column}）" for p in cleared[:5]) + (
        "等" if len(cleared) > 5 else "")


def summary_text(run: Consolidation) -> str:
    """The run in Chinese, a few lines: per file, then totals and what happened to the master."""
    lines = []
    for f in run.files:
        if f.status == SKIPPED:
            continue
        errors = sum(p.is_error for p in f.issues)
        detail = f"新增 {f.rows_added}、更新 {f.rows_updated}、未变化 {f.rows_unchanged}"
        if errors:
            detail += f"，{errors} 个错误"
        if f.status == REJECTED and f.issues:
            first = f.issues[0]
            # The message may name the row already ("第 3 行", "第 3、4 行").
            needs_row = first.row and not re.search(rf"第 {first.row}[ 、]", first.message)
            detail = (f"第 {first.row} 行：" if needs_row else "") + first.message
        lines.append(f"  {STATUS_TEXT[f.status]}　{f.file}：{detail}")
    counts = {s: sum(f.status == s for f in run.files) for s in STATUS_TEXT}
    processed = len(run.files) - counts[SKIPPED]
    later = sum(f.status == SKIPPED and any(p.message in NEXT_TIME for p in f.issues) for f in run.files)
    quiet = counts[SKIPPED] - len(run.waiting) - later
    head = ("（预演，未写入任何文件）" if run.dry_run
            else "（主工作簿正被占用，以下结果未写入，已暂存，下次重试）" if run.busy else "")
    lines.insert(0, f"{head}处理填报表 {processed} 份：接受 {counts[ACCEPTED]}，部分接受 {counts[PARTLY]}，"
                    f"退回 {counts[REJECTED]}" + (f"；跳过 {quiet} 个临时、隐藏文件或空文件夹" if quiet else "")
                    + (f"；{later} 个文件刚修改、正被打开或已移走，下次再处理" if later else "") + "。")
    lines += [f"  未处理　{f.issues[0].message}。" for f in run.waiting]
    if run.inbox_created:
        lines.append(f"已新建收件箱文件夹 {run.inbox.absolute()}（本主工作簿第一次汇总）：请让居委会把填报表放进这里。")
    elif not processed and run.inbox is not None:
        where = "" if run.inbox.is_dir() else "（这个文件夹还不存在，正式汇总时会新建）"
        lines.append(f"收件箱 {run.inbox.absolute()} 里没有要汇总的填报表{where}。")
    lines.append(f"共新增 {run.rows_added} 行，更新 {run.rows_updated} 行。")
    resent = [p for f in run.files for p in f.issues if p.code == RESENT]
    if resent:
        listed = "、".join(_look_alike_text(p.key, run) for p in resent[:5]) + ("等" if len(resent) > 5 else "")
        lines.append(f"其中 {len(resent)} 行没有填记录编号，但与已汇总的记录内容相近，可能是修改后重复提交：{listed}。"
                     "请核对，确属重复的请在台账中删除（回执已告知居委会）。")
    kept = [p for f in run.files for p in f.issues if p.code == RESENT_KEPT]
    if kept:
        listed = "、".join(f"{p.key}（{p.column}）" for p in kept[:5]) + ("等" if len(kept) > 5 else "")
        lines.append(f"其中 {len(kept)} 条记录重新提交的是原来的值，而街道此后已在主工作簿中修改，保留了主工作簿的值：{listed}。"
                     "回执已告知居委会。")
    cleared = [p for f in run.files for p in f.issues if p.code == CLEARED_KEPT]
    if cleared:
        lines.append(f"其中 {len(cleared)} 处居委会清空了街道修改过的单元格（多半是复制时误删），未采用空白，"
                     f"保留了主工作簿的值：{_cleared_text(cleared)}。回执已告知居委会。")
    doubtful = [(f, p) for f in run.files for p in f.doubtful]
    if doubtful:
        lines.append(f"请核实 {len(doubtful)} 处已汇总、但很可能填错的数值（会影响进度和通报；回执已请居委会核对）：")
        lines += [f"  {f.file} 第 {p.row} 行" + (f"（{p.key}）" if p.key else "") + f"：{p.message}"
                  for f, p in doubtful[:DOUBTFUL_LISTED]]
        if len(doubtful) > DOUBTFUL_LISTED:
            lines.append(f"  ……另有 {len(doubtful) - DOUBTFUL_LISTED} 处，见各回执和“{schema.ISSUES.name}”表。")
    removed: dict[str, list[str]] = {}
    for f in run.files:
        for p in f.issues:
            if p.code == REMOVED:
                removed.setdefault(f.file, []).append(str(p.key))
    for file, keys in removed.items():
        lines.append(f"{file} 删去了预填的记录 {'、'.join(keys)}：汇总不删除记录，它们仍在台账中、照常计入进度。"
                     "请向居委会核实，确应删除的请在台账中删除（回执已请居委会与街道联系）。")
    for f in run.files:
        if f.gone:
            lines.append(f"{f.file} 又交来了街道已从“{LEDGER}”删除的记录 {_gone_text(f)}，内容与删除前相同，"
                         "未重新加入。回执已告知居委会；如居委会说明确需恢复，请在台账中补回。")
    for f in run.files:
        if f.given_back:
            lines.append(f"{f.file} 中 {len(f.given_back)} 行是恢复备份后重新并入的记录，沿用了原回执中告知居委会的编号："
                         f"{_rows_text(f.given_back)}。")
    for f in run.files:
        if f.conflicts:
            lines.append(f"{f.file} 与街道在主工作簿中的修改冲突 {len(f.conflicts)} 处（两边改了同一格），"
                         f"已按居委会的填报更新，街道的值被替换（见“{schema.CHANGES.name}”）：{_conflicts_text(f)}。"
                         "请与居委会核对（回执已告知居委会）。")
    if run.busy:
        lines.append(f"主工作簿未写入：{run.busy}")
        if run.long_busy:
            lines.append(f"！！{run.long_busy}")
        lines.append(f"本次结果已暂存为 {run.staged}；它只供查看，不是主工作簿，请勿在其中录入；收件箱保持原样，下次运行会自动重试。"
                     + (f"此前暂存的 {_names(run.dropped_staged)} 已被它取代，已删除。" if run.dropped_staged else ""))
    elif run.master_written:
        lines.append(f"已写入主工作簿 {run.master.name}（写入前已备份）。")
        if run.dropped_staged:
            lines.append(f"已删除主工作簿被占用时暂存的 {_names(run.dropped_staged)}：其中的填报表已在本次写入，已过时。")
        refused = [p for p in run.stale_staged if is_refused(p)]
        kept = [p for p in run.stale_staged if not is_refused(p)]
        if refused:
            lines.append(f"主工作簿旁有写入前核对未通过而留下的 {_names(refused)}：请交给技术联系人查看，不要当作主工作簿使用。")
        if kept:
            lines.append(f"主工作簿旁还有此前暂存的 {_names(kept)}，已过时（其中的填报表已写入主工作簿），"
                         "但暂存后被打开或保存过，未自动删除：若有人在其中做了修改，请把修改做到主工作簿里，然后删除它。")
    elif not run.dry_run:
        lines.append("主工作簿没有需要更新的内容，未写入。")
    if run.numbered:
        from .report import numbered_text

        lines.append(numbered_text(run.numbered, run.master_written))
    if run.refreshed:
        lines.append(run.refreshed)
    if run.numbers_unsaved:
        lines.append(run.numbers_unsaved)
    if run.sent_problem:
        lines.append(run.sent_problem)
    unsent: dict[str, list[str]] = {}
    for f in run.files:
        if f.receipt_error:
            unsent.setdefault(f.receipt_error, []).append(f.file)
    for where, names in unsent.items():
        lines.append(f"回执{where}：{'、'.join(names)} 共 {len(names)} 份仍留在收件箱。"
                     "请处理后再运行一次：会补发这些回执，已并入的行不会重复添加。")
    receipts = [f.receipt for f in run.files if f.receipt]
    if receipts:
        lines.append(f"回执 {len(receipts)} 份在 {receipts[0].parent.absolute()}；日志：{run.log.absolute() if run.log else ''}")
    return "\n".join(lines)
