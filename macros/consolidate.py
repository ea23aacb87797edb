"""Consolidation: inbox of submission forms → validate → merge into the master → receipts.

Files are streamed one at a time (only the master's ledger and the current file are in memory);
the master is written once per run, through the safe writer. When the master is busy the would-be
result is staged beside it and the inbox is left untouched, so the next run retries. The merge
itself is ``macros.merge`` (pure); this module does the files.
"""

from __future__ import annotations

import os
import shutil
import stat
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from . import schema
from .book.read import (
    ROW,
    clean_header,
    find_header_row,
    frame_from_rows,
    open_calamine,
    read_sheet,
    settings_from_frame,
)
from .book.write_types import SheetWrite
from .errors import HealthbookError, WorkbookBusy
from .forms import read_form_info, safe_name
from .merge import ADDED, COMMITTEE, KEY, UNCHANGED, UPDATED, Change, LedgerMerge
from .problems import Problem

ACCEPTED, PARTLY, REJECTED, SKIPPED = "accepted", "partly", "rejected", "skipped"
STATUS_TEXT = {ACCEPTED: "已接受", PARTLY: "部分接受", REJECTED: "已退回", SKIPPED: "已跳过"}
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
FORMULA_PREFIXES = ("=", "+", "-", "@")
# Left alone: Excel/WPS/LibreOffice owner and lock files, partial downloads, system files.
TEMP_PREFIXES = ("~$", ".~lock.", "~")
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", "#")
SYSTEM_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}
LOG_NAME = "consolidate.log"
RECEIPT_TEMPLATE = "receipt.html"
LEDGER = schema.LEDGER.name
ERROR, WARNING = schema.LEVEL_ERROR, schema.LEVEL_WARNING

Progress = Callable[[int, int, str], None]


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
    outcomes: list = field(default_factory=list)  # merge.RowOutcome per merged row
    changes: list[Change] = field(default_factory=list)  # its lines of 变更记录
    moved_to: Path | None = None
    receipt: Path | None = None

    def to_dict(self) -> dict:
        """Exactly the per-file keys of ``consolidate --json``."""
        return {
            "file": self.file, "status": self.status, "rows_added": self.rows_added,
            "rows_updated": self.rows_updated, "rows_unchanged": self.rows_unchanged,
            "issues": [p.to_dict() for p in self.issues],
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

    @property
    def rows_added(self) -> int:
        return sum(f.rows_added for f in self.files)

    @property
    def rows_updated(self) -> int:
        return sum(f.rows_updated for f in self.files)

    def to_dict(self) -> dict:
        """Exactly the keys of ``consolidate --json``."""
        return {
            "files": [f.to_dict() for f in self.files],
            "rows_added": self.rows_added,
            "rows_updated": self.rows_updated,
            "master_written": self.master_written,
        }


@dataclass(frozen=True)
class Folders:
    inbox: Path
    archive: Path
    rejected: Path
    receipts: Path


def folders(master: Path, settings: dict, inbox: Path | str | None = None) -> Folders:
    """The consolidation folders from 设置, relative to the master (absolute paths kept)."""
    def where(key: str) -> Path:
        value = str(settings.get(key) or schema.SETTINGS_BY_KEY[key].default)
        return master.parent / value  # an absolute value replaces the master's folder

    return Folders(Path(inbox) if inbox else where("inbox"), where("archive"), where("rejected"),
                   where("receipts"))


def skip_reason(path: Path, min_age: float = 0.0, now: float | None = None) -> str | None:
    """Why ``path`` is left in the inbox untouched, or None to process it."""
    name = path.name
    lower = name.lower()
    if path.is_dir():
        return "文件夹"
    if lower in SYSTEM_FILES:
        return "系统文件"
    if name.startswith(TEMP_PREFIXES) or lower.endswith(TEMP_SUFFIXES):
        return "临时文件或 Excel 打开时的占用文件"
    if name.startswith("."):
        return "隐藏文件"
    st = path.stat()
    if getattr(st, "st_file_attributes", 0) & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0):
        return "隐藏文件"
    if min_age and (now or _time.time()) - st.st_mtime < min_age:
        return "刚刚修改，可能仍在复制中，下次再处理"
    return None


def inbox_files(inbox: Path) -> list[Path]:
    """Files of the inbox, oldest first (a later submission updates an earlier one)."""
    if not inbox.is_dir():
        return []
    return sorted((p for p in inbox.iterdir()), key=lambda p: (p.stat().st_mtime_ns, p.name))


# ---------------------------------------------------------------- reading one submission


@dataclass
class Submission:
    """One submission as read: its ledger rows (raw), the columns it carries, its committee."""

    path: Path
    frame: pd.DataFrame
    columns: set[str]
    info_committee: str | None


def reject_reason_for_suffix(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in WORKBOOK_SUFFIXES:
        return None
    if suffix == ".xls":
        return "这是旧版 .xls 格式。请用 Excel 或 WPS 打开后“另存为”.xlsx 格式再提交。"
    if suffix == ".csv":
        return "CSV 文件会丢失格式、日期和下拉选项。请使用街道下发的填报表（.xlsx）填写后提交。"
    return f"不是 Excel 工作簿（{suffix or '无扩展名'}）。请提交 .xlsx 格式的填报表。"


def read_submission(path: Path) -> Submission:
    """Read the 台账 sheet (and the hidden info sheet of a generated form) of one submission."""
    book = open_calamine(path)
    if LEDGER not in book.sheet_names:
        # read_sheet raises the named error with the Chinese message.
        read_sheet(book, schema.LEDGER, path)
    try:
        grid = book.get_sheet_by_name(LEDGER).to_python(skip_empty_area=False)
    except Exception as exc:  # calamine's private error types
        raise FileUnreadable(path, str(exc)[:60]) from exc
    frame = frame_from_rows(grid, schema.LEDGER, path)
    header = find_header_row(grid, schema.LEDGER)
    by_header = schema.LEDGER.by_header()
    present = {by_header[h].key for h in (clean_header(v) for v in grid[header]) if h in by_header}
    info = None
    if schema.FORM_INFO.name in book.sheet_names:
        info = read_form_info(read_sheet(book, schema.FORM_INFO, path))
    # Prefilled form rows carry only the committee: they are not data.
    data = [k for k in schema.LEDGER.keys if k not in (COMMITTEE, "source")]
    frame = frame[frame[data].notna().any(axis=1)].reset_index(drop=True)
    return Submission(path, frame, present, info.committee_id if info else None)


class FileUnreadable(HealthbookError):
    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path.name} 的工作表“{LEDGER}”无法读取（{reason}）。请用 Excel 打开检查后重新保存。")


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
) -> Consolidation:
    """Merge every submission in the inbox into ``master``; see the module docstring.

    ``min_age``: seconds a file must have been left alone before it is read (files still being
    copied into a shared folder). ``progress(done, total, file name)`` is called after each file.
    """
    from .book.write import FileBook, stage  # the safe writer
    from .validate import validate

    master = Path(master)
    now = now or datetime.now().replace(microsecond=0)
    as_of = as_of or now.date()
    stamp_before = _file_stamp(master)
    book = open_calamine(master)
    frames = {s.name: read_sheet(book, s, master) for s in schema.INPUT_SHEETS}
    old_changes = (read_sheet(book, schema.CHANGES, master).drop(columns=ROW).to_dict("records")
                   if schema.CHANGES.name in book.sheet_names else [])
    del book
    settings = settings_from_frame(frames[schema.SETTINGS.name])
    where = folders(master, settings, inbox)
    committees = _committees(frames[schema.COMMITTEES.name])
    ledger_frame = frames[LEDGER]
    merge = LedgerMerge(ledger_frame.drop(columns=ROW).to_dict("records"))
    # Only the config sheets are needed to validate a submission; the master's ledger is in ``merge``.
    config = {name: f for name, f in frames.items() if name != LEDGER}
    del frames, ledger_frame

    paths = inbox_files(where.inbox)
    results: list[FileResult] = []
    changes: list[Change] = []
    clock = _time.time()
    for done, path in enumerate(paths, start=1):
        reason = skip_reason(path, min_age, clock)
        if reason:
            results.append(FileResult(path.name, SKIPPED, issues=[_file_problem("skipped", reason, WARNING)]))
        else:
            result = process_file(path, merge, config, settings, committees, validate, as_of, now)
            results.append(result)
        changes.extend(results[-1].changes)
        if progress:
            progress(done, len(paths), path.name)

    run = Consolidation(master, results, changes, dry_run=dry_run)
    if dry_run:
        return run
    if changes:
        sheets = [
            SheetWrite(schema.LEDGER, merge.rows),
            SheetWrite(schema.CHANGES, old_changes + [c.row() for c in changes]),
        ]
        try:
            if _file_stamp(master) != stamp_before:
                raise MasterChanged(master)
            FileBook(master).write(sheets)
        except WorkbookBusy as busy:
            run.busy = str(busy)
            run.staged = stage(master, sheets, None)
            return run
        run.master_written = True
    for result in results:
        if result.status != SKIPPED:
            finish_file(result, where, now, master)
    run.log = write_log(master, run, now)
    if run.master_written and refresh:
        run.refreshed = refresh_after_merge(master)
    return run


class MasterChanged(WorkbookBusy):
    def __init__(self, path: Path):
        super().__init__(
            f"{path.name} 在汇总期间被修改（可能有人刚保存了它，或另一个汇总任务正在运行），本次结果未写入。"
            "下次运行会重新汇总。"
        )


def _file_stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _committees(frame: pd.DataFrame) -> dict[str, str]:
    return {str(c): str(n or "") for c, n in zip(frame["committee_id"], frame["name"]) if c is not None}


def _file_problem(code: str, message: str, level: str = ERROR, suggestion: str = "") -> Problem:
    return Problem(LEDGER, None, None, None, level, code, message, suggestion)


def process_file(path: Path, merge: LedgerMerge, config: dict, settings: dict,
                 committees: dict[str, str], validate, as_of: date, now: datetime) -> FileResult:
    """Read, check, validate and merge one file into ``merge``; never raises for bad input."""
    result = FileResult(path.name, REJECTED)
    reason = reject_reason_for_suffix(path)
    if reason:
        result.issues.append(_file_problem("not_a_workbook", reason))
        return result
    try:
        sub = read_submission(path)
    except HealthbookError as err:
        result.issues.append(_file_problem("structure", str(err)))
        return result

    committee, problem = _committee_of(sub, committees)
    result.committee_id = committee
    result.committee_name = committees.get(committee or "", "")
    if problem:
        result.issues.append(problem)
        return result
    frame = sub.frame
    frame[COMMITTEE] = frame[COMMITTEE].where(frame[COMMITTEE].notna(), committee)
    if frame.empty:
        result.status = ACCEPTED
        result.issues.append(_file_problem("empty", f"“{LEDGER}”表中没有填写任何记录。", WARNING,
                                           "如有活动，请在表中逐行填写后重新提交。"))
        return result

    validation = validate({**config, LEDGER: frame}, settings, as_of)
    issues = [p for p in validation.problems if p.sheet == LEDGER]
    issues += _submission_checks(frame, committee, merge)
    bad_rows = {p.row for p in issues if p.is_error and p.row is not None}
    result.issues = sorted(issues, key=lambda p: (p.row or 0, p.level != ERROR, p.column or ""))

    good = [(row, values) for row, values in zip(frame[ROW], frame.to_dict("records"))
            if row not in bad_rows]
    merged = merge.merge([(r, v) for r, v in good], sub.columns, path.name, now)
    result.outcomes = merged.outcomes
    result.rows_added = merged.count(ADDED)
    result.rows_updated = merged.count(UPDATED)
    result.rows_unchanged = merged.count(UNCHANGED)
    result.changes = merged.changes
    if not good:
        result.status = REJECTED
    elif bad_rows:
        result.status = PARTLY
    else:
        result.status = ACCEPTED
    return result


def _committee_of(sub: Submission, committees: dict[str, str]) -> tuple[str | None, Problem | None]:
    """The file's committee (hidden info sheet, else its single 居委会编号) or why it is rejected."""
    header = schema.LEDGER.header_of(COMMITTEE)
    typed = sub.frame[COMMITTEE].dropna().map(lambda v: str(v).strip())
    found = sorted(set(typed))
    committee = sub.info_committee
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
    others = sorted(set(found) - {committee})
    if others:
        rows = sub.frame.loc[typed.index[typed != committee], ROW].tolist()
        listed = "、".join(str(r) for r in rows[:10]) + ("等" if len(rows) > 10 else "")
        return committee, _file_problem(
            "wrong_committee",
            f"这是 {committee} 的填报表，但第 {listed} 行的“{header}”为 {'、'.join(others)}。整份退回，未汇总任何一行。",
            suggestion=f"每个居委会只填报本居委会的记录；请把这些行改为 {committee} 或删除后重新提交。")
    return committee, None


def _submission_checks(frame: pd.DataFrame, committee: str, merge: LedgerMerge) -> list[Problem]:
    """Checks a submission needs beyond the master's rules: keys of other committees; formula text."""
    problems = []
    key_header = schema.LEDGER.header_of(KEY)
    for row, record_id in zip(frame[ROW], frame[KEY]):
        if record_id is None:
            continue
        record_id = str(record_id).strip()
        owner = merge.owner(record_id)
        # A key of the wrong form is the validator's (bad_record_id / record_id_committee); this is
        # a well-formed key that the master already holds for another committee.
        if owner is not None and owner != committee:
            problems.append(Problem(
                LEDGER, int(row), key_header, record_id, ERROR, "record_of_other_committee",
                f"记录编号 {record_id} 在主工作簿中属于 {owner}，不能由 {committee} 修改。",
                f"新记录请把记录编号留空，系统自动编号；修改已报记录请保留回执中给出的编号（{committee}-xxxx）。"))
    headers = {c.key: c.header for c in schema.LEDGER.columns}
    for key in schema.LEDGER.keys:
        for row, value in zip(frame[ROW], frame[key]):
            if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _is_number(value):
                problems.append(Problem(
                    LEDGER, int(row), headers[key], None, WARNING, "formula_text",
                    f"“{value[:20]}”以“{value[0]}”开头，已按文字保存，不会当作公式计算。", ""))
    return problems


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------- after the write


def finish_file(result: FileResult, where: Folders, now: datetime, master: Path) -> None:
    """Move the file to archive/ or rejected/ and write its receipt."""
    source = where.inbox / result.file
    folder = where.rejected if result.status == REJECTED else where.archive
    result.moved_to = move_with_stamp(source, folder, now)
    result.receipt = write_receipt(result, where.receipts, now, master)


def move_with_stamp(path: Path, folder: Path, now: datetime) -> Path:
    """Move ``path`` into ``folder`` as ``<stem>-<timestamp><suffix>`` (never overwriting)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    target = folder / f"{path.stem}-{stamp}{path.suffix}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{path.stem}-{stamp}-{n}{path.suffix}"
    shutil.move(str(path), str(target))
    return target


def write_receipt(result: FileResult, folder: Path, now: datetime, master: Path) -> Path:
    """The committee's receipt (回执) for one file, as HTML."""
    from .render.env import html_environment

    folder.mkdir(parents=True, exist_ok=True)
    who = safe_name(result.committee_id or "未知居委会")
    path = folder / f"回执-{who}-{safe_name(Path(result.file).stem)}-{now.strftime('%Y%m%d-%H%M%S')}.html"
    html = html_environment().get_template(RECEIPT_TEMPLATE).render(**receipt_context(result, now, master))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def receipt_context(result: FileResult, now: datetime, master: Path) -> dict:
    """The variables the receipt template gets (documented in templates/README.md)."""
    return {
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
             "columns": "、".join(o.columns), "assigned": o.assigned}
            for o in result.outcomes
        ],
        "errors": [p.to_dict() for p in result.issues if p.is_error],
        "warnings": [p.to_dict() for p in result.issues if not p.is_error],
    }


def write_log(master: Path, run: Consolidation, now: datetime) -> Path:
    """Append one line per file (and one for the run) to ``consolidate.log`` beside the master."""
    path = master.parent / LOG_NAME
    stamp = now.strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"{stamp}\t{f.file}\t{STATUS_TEXT[f.status]}\t新增 {f.rows_added}\t更新 {f.rows_updated}\t"
        f"未变化 {f.rows_unchanged}\t错误 {sum(p.is_error for p in f.issues)}\t"
        f"{f.moved_to.name if f.moved_to else ''}"
        for f in run.files
    ]
    lines.append(f"{stamp}\t（本次运行）\t{len(run.files)} 个文件\t新增 {run.rows_added}\t更新 {run.rows_updated}\t"
                 f"主工作簿{'已写入' if run.master_written else '未改变'}")
    with path.open("a", encoding="utf-8") as log:
        log.write("\n".join(lines) + "\n")
    return path


def refresh_after_merge(master: Path) -> str:
    """Refresh roll-ups and notices as ``healthbook report`` does, when that job exists.

    HOOK: ``macros.report.run_report`` is built by the notices work; until it lands on main this
    only says so (the next ``healthbook report`` or button click refreshes them).
    """
    try:
        from .report import run_report  # type: ignore[attr-defined]
    except ImportError:
        return "未刷新进度汇总和通知（本版本尚无 report 功能），请稍后运行 healthbook report。"
    run_report(master)
    return "已刷新进度汇总和通知。"


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
            detail = f.issues[0].message
        lines.append(f"  {STATUS_TEXT[f.status]}　{f.file}：{detail}")
    counts = {s: sum(f.status == s for f in run.files) for s in STATUS_TEXT}
    processed = len(run.files) - counts[SKIPPED]
    head = "（预演，未写入任何文件）" if run.dry_run else ""
    lines.insert(0, f"{head}处理填报表 {processed} 份：接受 {counts[ACCEPTED]}，部分接受 {counts[PARTLY]}，"
                    f"退回 {counts[REJECTED]}" + (f"；跳过 {counts[SKIPPED]} 个临时或隐藏文件" if counts[SKIPPED] else "")
                    + "。")
    lines.append(f"共新增 {run.rows_added} 行，更新 {run.rows_updated} 行。")
    if run.busy:
        lines.append(f"主工作簿未写入：{run.busy}")
        lines.append(f"本次结果已暂存为 {run.staged}；收件箱保持原样，下次运行会自动重试。")
    elif run.master_written:
        lines.append(f"已写入主工作簿 {run.master.name}（写入前已备份）。")
    elif not run.dry_run:
        lines.append("主工作簿没有需要更新的内容，未写入。")
    if run.refreshed:
        lines.append(run.refreshed)
    receipts = [f.receipt for f in run.files if f.receipt]
    if receipts:
        lines.append(f"回执 {len(receipts)} 份在 {receipts[0].parent}；日志：{run.log}")
    return "\n".join(lines)
