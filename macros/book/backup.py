"""Backups beside a workbook: ``backups/<stem>-<timestamp><suffix>``."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from ..errors import HealthbookError, os_reason

BACKUP_DIR = "backups"
# <stem>-YYYYmmdd-HHMMSS-microseconds<suffix>: matched whole, so that the backups of
# "健康台账-2021.xlsx" beside "健康台账.xlsx" are never taken (and pruned) as the latter's.
STAMP = r"-\d{8}-\d{6}-\d{6}"
ANY_BACKUP = re.compile(rf".+{STAMP}\.xls[xm]$", re.IGNORECASE)


class BackupFolderUnusable(HealthbookError):
    """``backups`` beside the master cannot take a backup: nothing is written without one."""

    def __init__(self, folder: Path, reason: str):
        self.folder, self.reason = folder, reason
        fix = ("请把这个文件改名或移走（备份需要一个名为 backups 的文件夹）"
               if folder.exists() and not folder.is_dir() else "请检查该文件夹的写入权限或磁盘空间")
        super().__init__(f"无法在备份文件夹 {folder} 中备份主工作簿（{reason}），为免无备份地改动主工作簿，"
                         f"本次不写入，主工作簿未改动。{fix}，然后重试。")


def backups_to_keep(value: object) -> int:
    """How many backups 设置 备份保留份数 keeps, from its value as typed or as read: read as the
    validator reads it ("二十", "20份"); a value it calls wrong (negative, not whole, not a number)
    keeps the default — a typo must not delete backups; 0 keeps 1 (the one just made)."""
    from .. import schema
    from ..normalise import read_setting, setting_default  # pandas: not for a light import of this module

    setting = schema.SETTINGS_BY_KEY["backups_kept"]
    kept = read_setting(setting, value).value
    return max(1, setting_default(setting) if kept is None else kept)


def backup_dir(path: Path) -> Path:
    return Path(path).parent / BACKUP_DIR


def backup_file(path: Path, keep: int | None = None, now: datetime | None = None) -> Path:
    """Copy ``path`` into the backups folder beside it; keep only the newest ``keep`` copies."""
    path = Path(path)
    folder = backup_dir(path)
    target = _backup_name(path, now or datetime.now())
    # Copy under a name list_backups ignores, then rename: a killed run leaves no half backup.
    partial = _partial_name(target)
    try:
        folder.mkdir(exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        _clean_partial(path)
        shutil.copy2(path, partial)
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
        if getattr(_made_here, "depth", 0):  # inside ``labelling``: that run labels it
            _made_here.__dict__.setdefault("backups", []).append(target)
    except OSError as exc:
        if folder.is_dir():
            partial.unlink(missing_ok=True)
        raise BackupFolderUnusable(folder, os_reason(exc)) from exc
    if keep is not None:
        prune_backups(path, keep)
    return target


def _clean_partial(path: Path) -> None:
    # Half copies a killed run left (each as large as the master); the caller holds the master's lock.
    ours = re.compile(rf"\.{re.escape(path.stem)}{STAMP}{re.escape(path.suffix)}\.partial")
    for leftover in backup_dir(path).glob("*.partial"):
        if ours.fullmatch(leftover.name):
            leftover.unlink(missing_ok=True)


def _backup_name(path: Path, now: datetime) -> Path:
    return backup_dir(path) / f"{path.stem}-{now.strftime('%Y%m%d-%H%M%S-%f')}{path.suffix}"


def _partial_name(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def backup_if_changed(path: Path, keep: int | None = None) -> tuple[Path, bool]:
    """``backup_file``, unless the newest backup already holds the same bytes: then that one.

    Returns ``(backup, made)``. An Excel button pressed ten times between two saves finds the
    file on disk unchanged each time; copying it again would push real backups out of the
    newest ``keep``. A copy that fails (disk full, no permission, "backups" a file) leaves no
    partial file and raises ``BackupFolderUnusable``.
    """
    path = Path(path)
    try:
        found = list_backups(path)
        if found and same_bytes(path, found[0]):
            return found[0], False
    except OSError as exc:
        raise BackupFolderUnusable(backup_dir(path), os_reason(exc)) from exc
    made = backup_file(path)
    if keep is not None:
        with suppress(OSError):  # an old copy someone has open: the new one is made, that counts
            prune_backups(path, keep)
    return made, True


def same_bytes(a: Path, b: Path, chunk: int = 1 << 20) -> bool:
    """Whether two files hold the same bytes: sizes first (one stat each), then the contents."""
    if Path(a).stat().st_size != Path(b).stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            block = fa.read(chunk)
            if block != fb.read(chunk):
                return False
            if not block:
                return True


DAILY_DAYS = 30  # besides the newest ``keep``, the first backup of each of the last 30 days stays
_DAY = re.compile(r"-(\d{8})-\d{6}-\d{6}\.xls[xm]$", re.IGNORECASE)


def prune_backups(path: Path, keep: int, today: date | None = None) -> None:
    """Delete the backups of ``path`` but the newest ``keep`` and the first of each of the last
    ``DAILY_DAYS`` days: a busy day of scheduled runs (one write, one backup, per form) would
    otherwise push out the morning's master by noon, and a bad merge found the next day could
    not be undone."""
    found = list_backups(path)  # newest first
    kept = set(found[:keep])
    first_of_day: dict[date, Path] = {}
    for backup in found:  # the last one seen of a day is its first
        stamp = _DAY.search(backup.name)
        if stamp:
            first_of_day[datetime.strptime(stamp.group(1), "%Y%m%d").date()] = backup
    since = (today or date.today()) - timedelta(days=DAILY_DAYS)
    kept |= {backup for day, backup in first_of_day.items() if day > since}
    for old in found:
        if old not in kept:
            old.unlink()


def is_backup_of(path: Path, candidate: Path) -> bool:
    """Whether ``candidate``'s name is a backup name of ``path`` (exactly: stem, stamp, suffix)."""
    pattern = rf"{re.escape(path.stem)}{STAMP}{re.escape(path.suffix)}"
    return re.fullmatch(pattern, candidate.name) is not None


def list_backups(path: Path) -> list[Path]:
    """Backups of ``path``, newest first."""
    path = Path(path)
    folder = backup_dir(path)
    if not folder.is_dir():
        return []
    found = (p for p in folder.glob(f"{glob_escape(path.stem)}-[0-9]*{glob_escape(path.suffix)}")
             if is_backup_of(path, p))
    return sorted(found, key=lambda p: p.name, reverse=True)


def other_backups(path: Path) -> list[Path]:
    """Backups in ``path``'s backups folder of workbooks with other names (the master before it
    was renamed, or another master in the same folder), newest first."""
    path = Path(path)
    folder = backup_dir(path)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if ANY_BACKUP.match(p.name) and not is_backup_of(path, p)]
    return sorted(found, key=lambda p: p.name[-len("20200101-000000-000000.xlsx"):], reverse=True)


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters ([, ], *, ?) taken literally."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


# --- what each backup was made before ---------------------------------------------------------
# The writer makes backups without knowing which command runs it; the command labels them after
# its run, in one small file beside them (a line per backup, appended). A backup without a line
# (made by the Excel button, or by an older healthbook) still lists, only without a label.
LABELS = "备份说明.jsonl"


@dataclass
class BackupLabel:
    """What the run that made a backup was (``run``: the command; ``label``: "汇总填报表前") and,
    once known, what it changed (``changed``: "3 个文件，新增 120 行")."""

    run: str
    label: str
    changed: str = ""


def label_backups(backups: Iterable[Path], label: BackupLabel) -> None:
    """Note ``label`` for each of ``backups`` (a file that cannot be written loses the label only)."""
    backups = list(backups)
    lines = [json.dumps({"backup": Path(b).name, "run": label.run, "label": label.label,
                         "changed": label.changed or None}, ensure_ascii=False) + "\n" for b in backups]
    if not lines:
        return
    folder = Path(backups[0]).parent
    with suppress(OSError):
        # One short append a line: two runs appending at once do not interleave within a line.
        with open(folder / LABELS, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))
        _trim_labels(folder)


def backup_labels(folder: Path) -> dict[str, dict]:
    """The labels in ``folder``'s 备份说明 by backup file name (the last line for a name wins);
    lines that do not read (cut short, edited) are passed over."""
    try:
        text = (Path(folder) / LABELS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        with suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and isinstance(entry.get("backup"), str):
                found[entry["backup"]] = entry
    return found


TRIM_AT = 64 * 1024  # bytes: the labels of pruned backups are dropped once the file is this large


def _trim_labels(folder: Path) -> None:
    labels = folder / LABELS
    if labels.stat().st_size < TRIM_AT:
        return
    kept = [entry for name, entry in backup_labels(folder).items() if (folder / name).exists()]
    tmp = folder / f".{LABELS}.partial"
    tmp.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept), encoding="utf-8")
    os.replace(tmp, labels)


# The backups this thread made (``backup_file``), in order: a run labels its own, never those
# another run (a scheduled one while staff press a button) made meanwhile in the same folder.
_made_here = threading.local()


@contextmanager
def labelling(path: Path, run: str, label: str) -> Iterator[BackupLabel]:
    """Label the backups of ``path`` this thread makes while the block runs (set ``changed``
    inside it); the writer is left as it is. The label is written when the block fails too (a
    write may have happened before the failure)."""
    noted = BackupLabel(run, label)
    made = _made_here.__dict__.setdefault("backups", [])
    start = len(made)
    _made_here.depth = getattr(_made_here, "depth", 0) + 1
    try:
        yield noted
    finally:
        _made_here.depth -= 1
        ours = [b for b in made[start:] if is_backup_of(Path(path), b) and b.exists()]
        with suppress(OSError):
            label_backups(ours, noted)
        if not _made_here.depth:  # the outermost block ended: a long-lived process keeps no list
            made.clear()
