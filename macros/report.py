"""The one-click job: validate → mark → roll up → write the output sheets → render every notice.

Works over any workbook adapter offering ``read() -> Workbook`` and ``write(sheets, marks)``: the
file adapter (``FileBook``) from the command line, the live xlwings adapter from the Excel button.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

from . import schema
from .book.read import Workbook, records
from .book.write import FileBook
from .book.write_types import Mark, SheetWrite
from .errors import HealthbookError, WorkbookBusy
from .marks import validation_writes
from .merge import COMMITTEE, KEY, NUMBER_DIGITS, SOURCE, Change, LedgerMerge
from .normalise import code_text, programme_year
from .problems import Validation
from .render.context import NoticeInput
from .render.notices import NoticeOptions, NoticeResult, count_text, render_notices
from .rollup import Rollup, not_refreshed_text, rollup, rollup_sheets, who_is_behind
from .validate import notice_blockers, validate


class BookAdapter(Protocol):
    def read(self) -> Workbook: ...

    def write(self, sheets: list[SheetWrite], marks: list[Mark] | None = None) -> Any: ...


@dataclass
class ReportResult:
    """What one report run did, as data (the CLI and the Excel macro render it)."""

    workbook: str
    as_of: date
    errors: int
    warnings: int
    statuses: dict[str, int]
    projects: int
    rows_used: int
    rows_unverified: int
    notices: NoticeResult
    written: bool = True
    busy: str = ""  # why the workbook was not written (open in Excel …)
    staged: str = ""  # where the would-be result was put instead
    messages: list[str] = field(default_factory=list)
    # 台账 rows typed with 记录编号 blank: the numbers this run gave them, or how many stay blank
    # and why (the Excel button refused by a 变更记录 whose header it cannot write under).
    numbered: list[str] = field(default_factory=list)
    unnumbered: int = 0
    unnumbered_why: str = ""
    behind: list[str] = field(default_factory=list)  # who is behind, overdue projects (``who_is_behind``)
    # Why the progress sheets were left as they were (``rollup.not_refreshed_text``), else "".
    rollup_blocked: str = ""

    @property
    def exit_code(self) -> int:
        if self.busy:
            return WorkbookBusy.exit_code
        return 1 if self.errors else 0

    def to_dict(self) -> dict:
        # Figures counted for the wrong year are not given (``rollup_blocked`` says why): null.
        figures = not self.rollup_blocked
        return {
            "workbook": self.workbook, "as_of": self.as_of.isoformat(), "errors": self.errors,
            "warnings": self.warnings, "statuses": self.statuses if figures else None, "projects": self.projects,
            "rows_used": self.rows_used if figures else None,
            "rows_unverified": self.rows_unverified if figures else None,
            "written": self.written, "busy": self.busy, "staged": self.staged,
            "numbered": self.numbered, "unnumbered": self.unnumbered, "unnumbered_why": self.unnumbered_why,
            "rollup_blocked": self.rollup_blocked, "notices": self.notices.to_dict(),
        }

    def text(self) -> str:
        """The Chinese summary printed after a run."""
        lines = [f"工作簿：{self.workbook}（统计截至 {self.as_of.isoformat()}）"]
        where = "已写入“校验结果”表，出错的单元格已标色并加批注" if self.written else "未写入工作簿"
        lines.append(f"校验：错误 {self.errors} 条，警告 {self.warnings} 条（{where}）。")
        status = "，".join(f"{k} {v}" for k, v in self.statuses.items())
        lines.append(self.rollup_blocked if self.rollup_blocked else
                     f"汇总：{self.projects} 个项目；居委会 {status}；台账计入 {self.rows_used} 条，"
                     f"待核实 {self.rows_unverified} 条。")
        lines += [f"  {line}" for line in self.behind]
        if self.numbered:
            lines.append(numbered_text(self.numbered, self.written))
        if self.unnumbered:
            lines.append(unnumbered_text(self.unnumbered, self.unnumbered_why))
        counts = "，".join(f"{k} {v}" for k, v in self.notices.counts().items()) or "无"
        combined = "，催办通知另有一份合并打印" if any(n.combined for n in self.notices.notices) else ""
        lines.append("通知：未生成（原因见下面的“注意”）。" if self.notices.blocked
                     else f"通知：{counts}（每份均有 Word 和网页版{combined}）。")
        if not self.notices.blocked or self.notices.out_dir.is_dir():  # a folder not made is not named
            lines.append(f"输出文件夹：{self.notices.out_dir.resolve()}")
        if self.notices.index:
            lines.append(f"目录：{self.notices.index.resolve()}")
        if self.busy:
            lines.append(f"注意：{self.busy}")
        if self.staged:
            lines.append(f"本次结果已暂存为：{self.staged}（关闭工作簿后重新运行即可写入）")
        lines += [f"注意：{w}" for w in self.notices.warnings]
        return "\n".join(lines)


def resolve_folder(value: object, base: Path) -> Path | None:
    """A 设置 folder: relative to the workbook's folder unless absolute; None when blank."""
    if value is None or not str(value).strip():
        return None
    path = Path(str(value).strip())
    return path if path.is_absolute() else base / path


def default_out_dir(book: Workbook) -> Path:
    setting = schema.SETTINGS_BY_KEY["notices"]
    folder = book.settings.get("notices") or setting.default
    return resolve_folder(folder, Path(book.path).parent) or Path(book.path).parent / setting.default


def analyse(book: Workbook, as_of: date) -> tuple[Validation, Rollup]:
    """(validation, rollup) of a workbook as read."""
    settings = book.settings
    validation = validate(book.frames, settings, as_of)
    return validation, rollup(validation, settings, as_of)


def notice_input(book: Workbook, validation: Validation, result: Rollup, as_of: date) -> NoticeInput:
    return NoticeInput(validation.frames, book.settings, as_of, result, Path(book.path).parent,
                       blockers=notice_blockers(validation))


def with_template_setting(book: Workbook, options: NoticeOptions) -> NoticeOptions:
    """Use 设置 模板文件夹 when no ``--templates`` was given."""
    if options.templates is None:
        options.templates = resolve_folder(book.settings.get("templates"), Path(book.path).parent)
    return options


def run_report(adapter: BookAdapter, out_dir: Path | str | None = None, as_of: date | None = None,
               options: NoticeOptions | None = None,
               progress: Callable[[str], None] | None = None) -> ReportResult:
    """Validate, mark, roll up, write the output sheets and render every notice.

    ``out_dir`` defaults to 设置 通知输出文件夹 beside the workbook; ``as_of`` to today. When the
    workbook is busy (open in Excel) the notices are still rendered and ``busy`` says why nothing
    was written.
    """
    say = progress or (lambda _msg: None)
    say("正在读取工作簿……")
    book = adapter.read()
    issued, why = numbering(adapter) if numberable(book) else (None, "")  # reads 变更记录: only when needed
    prepared = prepare_report(book, out_dir, as_of, options, say, number=not why, issued=issued, why=why)
    return write_report(adapter, prepared, progress=say)


def numbering(adapter: BookAdapter) -> tuple[Callable[[], dict[str, int]] | None, str]:
    """Whether the run may number 台账's blank keys: every number given is recorded in 变更记录,
    so only a writer that appends to it numbers. (The numbers given so far, when the adapter
    knows them otherwise than from the saved file — the live book's 变更记录 may be unsaved —
    else None; and why it may not number, else "".)"""
    if isinstance(adapter, FileBook):
        return None, ""
    issued = getattr(adapter, "issued_numbers", None)
    if issued is None:
        return None, f"此方式无法写入“{schema.CHANGES.name}”"
    try:
        return issued(), ""
    except HealthbookError as exc:  # a 变更记录 the new lines cannot go under: counted, and why
        return None, str(exc)


@dataclass
class PreparedReport:
    """A report computed and its notices rendered, not yet written: what the write holds."""

    sheets: list[SheetWrite]
    marks: list[Mark]
    result: ReportResult  # ``written`` is set by ``write_report``
    # 变更记录 lines of the 台账 rows numbered (``number_blank_records``): kept in ``numbers_file`` once written.
    changes: list[Change] = field(default_factory=list)


def prepare_report(book: Workbook, out_dir: Path | str | None = None, as_of: date | None = None,
                   options: NoticeOptions | None = None,
                   progress: Callable[[str], None] | None = None, *, number: bool = False,
                   issued: Callable[[], dict[str, int]] | None = None, why: str = "") -> PreparedReport:
    """Everything ``run_report`` does before its write, over a workbook already in memory.

    Consolidation passes the merged workbook (its new ledger rows numbered with the Excel rows
    they will take), so the merge and the refresh go into the master in one write.
    ``number``: give 台账 rows typed with 记录编号 blank their committee's next free number
    (``number_blank_records``; ``issued``: the numbers given so far, default from the saved
    file), written with the report; else they are only counted (``why``: the reason shown).
    """
    say = progress or (lambda _msg: None)
    as_of = as_of or date.today()
    numbered: list[SheetWrite] = []
    changes: list[Change] = []
    unnumbered = 0
    if number:
        book, numbered, changes = number_blank_records(book, issued=issued)
    else:
        unnumbered = len(numberable(book))
    say("正在校验和汇总……")
    validation, result = analyse(book, as_of)
    issues, marks = validation_writes(validation)
    options = with_template_setting(book, options or NoticeOptions())
    out = Path(out_dir) if out_dir else default_out_dir(book)
    # Notices first, so the workbook is written once, with the list of what was generated.
    notices = render_notices(notice_input(book, validation, result, as_of), out, options, say)
    sheets = [*numbered, *issues, *rollup_sheets(result)]
    # Workbooks made before 通知清单 existed go without; made no notice, the last list still stands.
    if schema.NOTICES.name in book.sheet_names and not notices.blocked:
        sheets.append(notices_sheet(notices, Path(book.path).parent))
    statuses = {s: 0 for s in schema.PROGRESS_STATUSES}
    for s in result.committees["status"]:
        if s in statuses:
            statuses[s] += 1
    meta = result.meta
    report = ReportResult(
        workbook=str(book.path), as_of=as_of, errors=validation.errors, warnings=validation.warnings,
        statuses=statuses, projects=len(result.projects), rows_used=int(meta.get("rows_used", 0)),
        rows_unverified=int(meta.get("rows_unverified", 0)), notices=notices, written=False,
        numbered=[c.record_id for c in changes], unnumbered=unnumbered, unnumbered_why=why if unnumbered else "",
        behind=who_is_behind(result), rollup_blocked=not_refreshed_text(result),
    )
    return PreparedReport(sheets, marks, report, changes)


def numberable(book: Workbook) -> list[int]:
    """Positions in 台账's frame of the rows typed with 记录编号 blank whose 居委会编号 is a
    committee of 居委会 (a blank or unknown one is validation's to report: no number is guessed)."""
    ledger = book.frames.get(schema.LEDGER.name)
    committees = book.frames.get(schema.COMMITTEES.name)
    if ledger is None or committees is None or ledger.empty:
        return []
    known = {c for c in map(code_text, committees["committee_id"].tolist()) if c is not None}
    keys, owners = ledger[KEY].tolist(), ledger[COMMITTEE].tolist()
    return [i for i, (key, owner) in enumerate(zip(keys, owners))
            if code_text(key) is None and code_text(owner) in known]


def number_blank_records(book: Workbook, now: datetime | None = None,
                         issued: Callable[[], dict[str, int]] | None = None,
                         ) -> tuple[Workbook, list[SheetWrite], list[Change]]:
    """Give each ``numberable`` row its committee's next free number, as consolidation would
    (``LedgerMerge.next_id``: after the committee's highest in the ledger, in 变更记录's added
    lines and in ``numbers_file``, so a deleted record's number is never given again), and 来源
    手工 where blank. Returns the workbook as it will read once written, the writes (台账, every
    row back at its Excel row with only those two cells changed; 变更记录, one added line a row)
    and the changes; the book itself and no writes when there is nothing to number. ``issued``:
    the numbers given so far (``LiveBook.issued_numbers``), else read from the saved file."""
    at = numberable(book)
    if not at:
        return book, [], []
    from .consolidate import issued_numbers_soon  # consolidation is heavy: only when numbering

    frame = book.frames[schema.LEDGER.name]
    rows = records(frame)
    merge = LedgerMerge(rows, issued or issued_numbers_soon(Path(book.path)), year=programme_year(book.settings))
    when = now or datetime.now().replace(microsecond=0)
    changes = merge.number(at, when)
    numbered = frame.copy()
    for column in (KEY, SOURCE):
        numbered[column] = [row[column] for row in rows]
    frames = {**book.frames, schema.LEDGER.name: numbered}
    writes = [SheetWrite(schema.LEDGER, rows),
              SheetWrite(schema.CHANGES, [c.row() for c in changes], append=True)]
    return Workbook(book.path, frames, book.sheet_names), writes, changes


def numbered_text(numbered: list[str], written: bool) -> str:
    """The summary's line on the 台账 rows numbered."""
    shown = "、".join(numbered[:5]) + ("等" if len(numbered) > 5 else "")
    where = (f"已写入“{schema.LEDGER.name}”，并记入“{schema.CHANGES.name}”" if written
             else "但本次未写入工作簿，下次写入时重新编号")
    return (f"编号：“{schema.LEDGER.name}”中{schema.LEDGER.header_of(KEY)}为空的 {len(numbered)} 行"
            f"已按居委会自动编号（{shown}，{schema.LEDGER.header_of(SOURCE)}空白的填“{schema.MANUAL_SOURCE}”），{where}。")


def unnumbered_text(count: int, why: str) -> str:
    """The line on 台账 rows left without a number, and why (``numbering``)."""
    why = why or "请运行命令 healthbook report 为其编号"
    return (f"注意：“{schema.LEDGER.name}”中有 {count} 行{schema.LEDGER.header_of(KEY)}为空，本次未自动编号："
            f"{why.rstrip('。')}。也可按“{schema.LEDGER.header_of(COMMITTEE)}-{NUMBER_DIGITS}位序号”手工填写。")


class ReportNotWritten(HealthbookError):
    """The notices were rendered, then writing the workbook failed (no backup possible, the
    write's check refused it, a totals row in the way): the message says where the notices are."""

    def __init__(self, cause: HealthbookError, notices: NoticeResult):
        self.exit_code = cause.exit_code
        counts = "，".join(f"{kind} {n} 份" for kind, n in notices.counts().items()) or "没有需要生成的通知"
        super().__init__(f"{cause}\n通知已生成（{counts}），保存在文件夹 {notices.out_dir}；"
                         f"工作簿中的{schema.ISSUES.name}、进度表和{schema.NOTICES.name}未更新。")


def write_report(adapter: BookAdapter, prepared: PreparedReport,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write a prepared report (one write); a busy file adapter stages it instead."""
    say = progress or (lambda _msg: None)
    result = prepared.result
    written, busy, staged = True, "", None
    say("正在写入校验结果……" if result.rollup_blocked else "正在写入校验结果、进度表和通知清单……")
    try:
        if hasattr(adapter, "write_or_stage"):  # the file adapter stages beside a busy master
            outcome = adapter.write_or_stage(prepared.sheets, prepared.marks)
            if outcome.busy:
                written, busy, staged = False, outcome.busy, outcome.staged
        else:
            try:
                adapter.write(prepared.sheets, prepared.marks)
            except WorkbookBusy as exc:
                written, busy = False, str(exc)
    except HealthbookError as exc:
        raise ReportNotWritten(exc, result.notices) from exc
    result.written, result.busy, result.staged = written, busy, str(staged) if staged else ""
    if written and prepared.changes:
        # The live book's numbers go beside its saved file; one with none here keeps them in 变更记录 only.
        master = adapter.saved if hasattr(adapter, "saved") else Path(result.workbook)
        if master is not None:
            keep_given(master, prepared.changes)
    return result


def keep_given(master: Path, changes: list[Change]) -> None:
    """The numbers just written, into ``numbers_file`` too (as consolidation does): a backup restored
    from before this run must not give them again. Not kept (folder read-only): 变更记录 holds them."""
    from .consolidate import added_numbers, keep_numbers

    try:
        keep_numbers(master, added_numbers(changes))
    except OSError:
        pass  # the master was written, with 变更记录's lines: only a later restore could forget them


def notices_sheet(rendered: NoticeResult, home: Path) -> SheetWrite:
    """通知清单: one row per notice current in the folder (as index.html lists them), its files
    linked relative to the workbook's folder."""
    rows, links = [], {}
    home = Path(home).resolve()
    out_dir = Path(rendered.out_dir).resolve()
    for i, notice in enumerate(rendered.listing):
        rows.append({"kind": notice.to_dict()["kind"], "title": notice.title,
                     "docx": notice.docx, "html": notice.html})
        for key in ("docx", "html"):
            name = getattr(notice, key)
            if name:
                path = out_dir / name
                links[(i, key)] = os.path.relpath(path, home) if path.is_relative_to(home) else str(path)
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    note = f"生成于 {when}，通知{count_text(rendered.listing)}，保存在 {out_dir}。"
    return SheetWrite(schema.NOTICES, rows, note=note, links=links)
