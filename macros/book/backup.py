"""Backups beside a workbook: ``backups/<stem>-<timestamp><suffix>``."""

from __future__ import annotations

import os
import shutil
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
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
    target = folder / f"{path.stem}-{stamp}{path.suffix}"
    # Copy under a name list_backups ignores, then rename: a killed run leaves no half backup.
    partial = folder / f".{target.name}.partial"
    shutil.copy2(path, partial)
    with open(partial, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)
    if keep is not None:
        prune_backups(path, keep)
    return target


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
