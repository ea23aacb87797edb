"""``healthbook restore`` with what it undoes: the consolidations a backup predates.

A backup taken before a consolidation brings back a master without that run's rows, while the
committees' receipts already named them and their forms sit in archive/ (never merged again on
their own). ``restore_master`` restores (``book.write.restore``), then compares 变更记录 of the
file it replaced with the one brought back: each run whose lines are gone is named with its source
file, where that file was archived, and the records it added or updated — so the clerk can move
those files back into the inbox. The numbers those runs gave stay given (``consolidate.keep_numbers``);
what those runs' committees sent is no longer taken for old news (``consolidate.undo_sent``), so that
sending it again applies it; the records those runs added take back their numbers when merged again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import schema
from .book.backup import is_backup_of
from .book.lock import DEFAULT_WAIT
from .book.read import read_workbook
from .book.write import restore
from .consolidate import (
    STAMP,
    UNDONE_KEPT,
    UNDONE_RECEIPT,
    bring_back_sent,
    folders,
    issued_numbers,
    keep_numbers,
    named_for_run,
    receipts_of,
    retired_sent,
    sent_file,
    undo_sent,
    unstamped,
)
from .errors import HealthbookError, os_reason
from .merge import ADDED, UPDATED

CHANGES = schema.CHANGES.name
LINE = ("time", "source", "record_id", "action", "column", "old", "new")
SHOWN = 10  # record numbers named per run; the rest are counted
# The longer steps, announced as they start (a master of 60,000 rows takes seconds at each).
KEEPING = "正在核对已发出的记录编号…"
REPLACING = "正在核对备份、备份当前文件并换成备份…"
COMPARING = "正在比对变更记录，找出备份之后的汇总…"


@dataclass
class LostRun:
    """One consolidation of one file whose changes the restored master no longer holds."""

    time: datetime | None
    source: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    archived: Path | None = None  # the file as consolidation archived it, when still there
    receipts: list[Path] = field(default_factory=list)  # its receipts, renamed to say they are undone

    def to_dict(self) -> dict:
        return {"time": self.time.strftime("%Y-%m-%d %H:%M:%S") if self.time else None, "source": self.source,
                "added": self.added, "updated": self.updated,
                "archived": str(self.archived) if self.archived else None,
                "receipts": [str(p) for p in self.receipts]}


@dataclass
class Restored:
    path: Path
    restored: Path  # the backup brought back
    backup: Path | None  # the copy of the file it replaced
    lost: list[LostRun]
    inbox: Path | None = None
    skipped: list[Path] = field(default_factory=list)  # newer backups passed over: broken or not a master
    sent_unsaved: str = ""  # why what the undone runs' committees sent could not be forgotten (Chinese)
    sent_back: Path | None = None  # the committees' record of a master init --force replaced, brought back

    def to_dict(self) -> dict:
        return {"restored": str(self.restored), "backup": str(self.backup) if self.backup else None,
                "skipped": [str(p) for p in self.skipped],
                "lost": [run.to_dict() for run in self.lost], "inbox": str(self.inbox) if self.inbox else None,
                "sent_back": str(self.sent_back) if self.sent_back else None}


def restore_master(path: Path | str, backup: str | Path | None = None, wait: float = DEFAULT_WAIT,
                   stage: Callable[[str], None] | None = None) -> Restored:
    """Restore ``path`` from a backup (see ``book.write.restore``) and say which consolidations it
    undid; ``stage`` is told each longer step as it starts (the CLI shows them on a terminal)."""
    path = Path(path)
    say = stage or (lambda text: None)
    if path.is_file():
        # Numbers given by runs from before the number file was kept are in this file's
        # 变更记录 only: kept before it is replaced.
        say(KEEPING)
        keep_numbers(path, issued_numbers(path))
    say(REPLACING)
    done = restore(path, backup, wait=wait)
    if done.backup is None:
        return Restored(path, done.restored, None, [], skipped=done.skipped)
    try:
        settings = read_workbook(done.backup, [schema.SETTINGS]).settings
    except HealthbookError:
        settings = {}
    where = folders(path, settings)
    try:  # a backup init --force made: what its committees had sent comes back with it
        sent_back = bring_back_sent(path, done.restored, done.backup)
    except OSError as exc:
        sent_back, unsaved_back = None, (f"未能把 {retired_sent(done.restored).name} 移回主工作簿旁（{os_reason(exc)}）："
                                         f"请手动把它移到主工作簿旁并改名为 {sent_file(path).name}。")
    else:
        unsaved_back = ""
    say(COMPARING)
    replaced, restored = Counter(change_lines(done.backup)), Counter(change_lines(path))
    lost = runs_of(replaced - restored, where.archive)
    # Receipts of undone runs no longer tell what the master holds; those of runs a restore of a
    # later backup brings back (a restore undone) do again.
    mark_receipts(where.receipts, lost, runs_of(restored - replaced, where.archive))
    # What those runs' committees sent is no longer in the master: sent again, it must apply.
    unsaved = ""
    try:
        undo_sent(path, [key for run in lost for key in run.added], [key for run in lost for key in run.updated])
    except OSError as exc:
        unsaved = (f"未能更新主工作簿旁的 {sent_file(path).name}（{os_reason(exc)}）：请删除这个文件，"
                   "否则重新并入的填报表中与上次相同的值不会被采用。")
    return Restored(path, done.restored, done.backup, lost, where.inbox if lost else None, done.skipped,
                    "\n".join(filter(None, (unsaved_back, unsaved))), sent_back)


def change_lines(path: Path) -> list[tuple]:
    """变更记录's lines as comparable tuples (none when the sheet cannot be read)."""
    try:
        frame = read_workbook(path, [schema.CHANGES]).frames[CHANGES]
    except HealthbookError:
        return []
    columns = [c for c in LINE if c in frame.columns]
    return [tuple(values) for values in frame[columns].itertuples(index=False, name=None)]


def runs_of(gone: Counter, archive: Path) -> list[LostRun]:
    """The runs (by time and source file) the 变更记录 lines ``gone`` are of."""
    runs: dict[tuple, LostRun] = {}
    for line in sorted(gone.elements(), key=lambda t: (str(t[0]), str(t[1]))):
        values = dict(zip(LINE, line))
        when = values.get("time") if isinstance(values.get("time"), datetime) else None
        source = str(values.get("source") or "")
        run = runs.setdefault((when, source), LostRun(when, source, archived=archived_as(archive, source, when)))
        key = str(values.get("record_id") or "")
        kept = run.added if values.get("action") == ADDED else run.updated if values.get("action") == UPDATED else None
        if kept is not None and key and key not in kept:
            kept.append(key)
    return list(runs.values())


def archived_as(archive: Path, source: str, when: datetime | None) -> Path | None:
    """The file consolidation archived as ``<stem>-<run time><suffix>`` (``move_with_stamp``)."""
    if not source or when is None or not archive.is_dir():
        return None
    name = Path(source)
    found = named_for_run(sorted(archive.iterdir()), (name.stem, unstamped(name.stem)),
                          lambda stem: rf"{re.escape(stem)}-{when.strftime(STAMP)}(?:-\d+)?{re.escape(name.suffix)}")
    return found[0] if found else None


def mark_receipts(folder: Path, undone: list[LostRun], regained: list[LostRun]) -> None:
    """Rename the receipts of the ``undone`` runs to end in ``UNDONE_RECEIPT`` (the receipt of the
    file merged again stands beside it, telling the committee what holds now; ``LostRun.receipts``),
    and take the mark off those of the ``regained`` runs. A receipt that cannot be renamed stays."""
    for runs, mark in ((undone, True), (regained, False)):
        for run in runs:
            if run.source == schema.MANUAL_SOURCE or run.time is None:
                continue
            for receipt in receipts_of(folder, run.source, run.time):
                stem = receipt.stem.removesuffix(UNDONE_RECEIPT)
                target = receipt.with_name(f"{stem}{UNDONE_RECEIPT if mark else ''}.html")
                if target != receipt and not target.exists():
                    try:
                        receipt = receipt.rename(target)
                    except OSError:
                        pass
                run.receipts.append(receipt)


def _numbers(keys: list[str]) -> str:
    shown = "、".join(keys[:SHOWN])
    return shown + (f" 等 {len(keys)} 个" if len(keys) > SHOWN else "")


def restore_text(done: Restored) -> str:
    """What the restore did, in Chinese: the backup, the copy of the replaced file, and each
    consolidation it undid with what to do about it."""
    lines = [f"已用备份 {done.restored.name} 恢复 {done.path.name}。"]
    if not is_backup_of(done.path, done.restored):
        lines.append(f"注意：{done.restored.name} 不是以 {done.path.name} 这个名称做的备份（是改名前的备份，或另一个工作簿？）"
                     "请打开核对；用错了可再运行 healthbook restore，恢复前的文件已备份（见下）。")
    if done.skipped:
        lines.append(f"跳过了更新的 {len(done.skipped)} 份备份（{'、'.join(p.name for p in done.skipped)}）："
                     "它们打不开或不是主工作簿（例如恢复时为已损坏的主工作簿做的备份）。")
    if done.backup:
        lines.append(f"恢复前的文件已备份为：{done.backup}")
    if done.sent_back:
        lines.append(f"这份备份是重新新建主工作簿（init --force）之前做的：它记下的各居委会提交过的内容已一并移回（{done.sent_back.name}）。")
    if done.sent_unsaved:
        lines.append(done.sent_unsaved)
    # Rows typed by staff and numbered (by a report or a consolidation): no file to put back.
    typed = [key for run in done.lost if run.source == schema.MANUAL_SOURCE for key in run.added]
    if typed:
        lines.append(f"这份备份早于给“{schema.LEDGER.name}”中手工录入的 {len(typed)} 行编号（{_numbers(typed)}）："
                     "恢复后这些行的记录编号又为空，下次汇总或运行 healthbook report 时会重新编号（不会重用这些编号）。")
    runs = [run for run in done.lost if run.source != schema.MANUAL_SOURCE]
    if not runs:
        return "\n".join(lines)
    lines.append(f"注意：这份备份早于下面 {len(runs)} 份填报表的汇总，它们并入的内容已不在主工作簿中：")
    for run in runs:
        did = []
        if run.added:
            did.append(f"新增 {len(run.added)} 行（{_numbers(run.added)}）")
        if run.updated:
            did.append(f"更新 {len(run.updated)} 条记录（{_numbers(run.updated)}）")
        where = f"原文件已归档为 {run.archived}" if run.archived else "在归档文件夹中没有找到原文件，请向该居委会要回"
        undone = [p for p in run.receipts if p.stem.endswith(UNDONE_RECEIPT)]
        if undone:
            where += f"；原回执已改名为 {'、'.join(p.name for p in undone)}（所述汇总已撤销，以重新并入后的新回执为准）"
        when = f"{run.time:%Y-%m-%d %H:%M}" if run.time else "时间不明"
        lines.append(f"  {when}  {run.source}：{'，'.join(did) or '有改动'}；{where}")
    lines.append(f"要把它们重新并入，请把这些文件从归档文件夹移回收件箱 {done.inbox}（不必改名），"
                 "再运行 healthbook consolidate（或等下一次定时汇总）。")
    if any(run.added for run in runs):
        lines.append("回执里已告知居委会的这些记录编号不会再分给别的记录；这些文件在恢复后 "
                     f"{UNDONE_KEPT.days} 天内重新并入时，内容未改的新增行会沿用原来的编号（即原回执中的编号），新的回执会再次列出；"
                     "居委会改过内容的行，日期、项目编号和活动内容与撤销的记录中唯一的一条相同（表中也只有这一行如此）时也沿用它的编号；"
                     "其余的行，以及过了这个期限才并入的行，得到新的编号，新的回执会告知居委会。")
    return "\n".join(lines)
