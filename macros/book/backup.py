"""Backups beside a workbook: ``backups/<stem>-<timestamp><suffix>``."""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from datetime import datetime
from pathlib import Path

BACKUP_DIR = "backups"


def backup_dir(path: Path) -> Path:
    return Path(path).parent / BACKUP_DIR


def backup_file(path: Path, keep: int | None = None, now: datetime | None = None) -> Path:
    """Copy ``path`` into the backups folder beside it; keep only the newest ``keep`` copies."""
    path = Path(path)
    folder = backup_dir(path)
    folder.mkdir(exist_ok=True)
    target = _backup_name(path, now or datetime.now())
    # Copy under a name list_backups ignores, then rename: a killed run leaves no half backup.
    partial = _partial_name(target)
    shutil.copy2(path, partial)
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)
    if keep is not None:
        prune_backups(path, keep)
    return target


def _backup_name(path: Path, now: datetime) -> Path:
    return backup_dir(path) / f"{path.stem}-{now.strftime('%Y%m%d-%H%M%S-%f')}{path.suffix}"


def _partial_name(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def backup_if_changed(path: Path, keep: int | None = None) -> tuple[Path, bool]:
    """``backup_file``, unless the newest backup already holds the same bytes: then that one.

    Returns ``(backup, made)``. An Excel button pressed ten times between two saves finds the
    file on disk unchanged each time; copying it again would push real backups out of the
    newest ``keep``. A copy that fails (disk full, no permission) leaves no partial file and
    raises the ``OSError``.
    """
    path = Path(path)
    found = list_backups(path)
    if found and same_bytes(path, found[0]):
        return found[0], False
    now = datetime.now()
    try:
        made = backup_file(path, None, now)
    except OSError:
        with suppress(OSError):  # NotADirectoryError when "backups" is a file
            _partial_name(_backup_name(path, now)).unlink(missing_ok=True)
        raise
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


def prune_backups(path: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` backups of ``path``."""
    for old in list_backups(path)[keep:]:
        old.unlink()


def list_backups(path: Path) -> list[Path]:
    """Backups of ``path``, newest first."""
    path = Path(path)
    folder = backup_dir(path)
    if not folder.is_dir():
        return []
    found = folder.glob(f"{path.stem}-[0-9]*{path.suffix}")
    return sorted(found, key=lambda p: p.name, reverse=True)
