"""Who else has the master: our own lock file, and the owner files Excel/WPS/LibreOffice leave.

* ``WorkbookLock``: an exclusive lock on ``.<name>.lock`` beside the master, held by the OS
  (``fcntl.flock`` / ``msvcrt.locking``), so it is released even when a run is killed — no stale
  lock to clean up by hand. Two runs cannot interleave; the second waits briefly, then raises
  ``WorkbookBusy``.
* ``owner_of``: Excel (and WPS) create ``~$<name>`` while a workbook is open; bytes 1–54 hold the
  user name. LibreOffice creates ``.~lock.<name>#``. Either may be stale after a crash.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import FolderNotWritable, WorkbookBusy, os_reason

DEFAULT_WAIT = 10.0  # seconds a run waits for another run to finish writing


@dataclass(frozen=True)
class Owner:
    """An owner file found beside a workbook."""

    file: Path
    user: str | None
    app: str  # "Excel" or "LibreOffice"
    since: datetime


def owner_files(path: Path) -> list[Path]:
    """The owner-file names an office suite would create for ``path``."""
    path = Path(path)
    return [path.with_name("~$" + path.name), path.with_name(f".~lock.{path.name}#")]


def owner_of(path: Path | str) -> Owner | None:
    """The owner file showing ``path`` open in Excel/WPS/LibreOffice, with the user it names."""
    excel, libre = owner_files(Path(path))
    for file, app, parse in ((excel, "Excel", parse_excel_owner), (libre, "LibreOffice", parse_libre_lock)):
        try:
            data = file.read_bytes()
            since = datetime.fromtimestamp(file.stat().st_mtime)
        except FileNotFoundError:
            continue
        except OSError:  # present but unreadable (Excel holds it exclusively on Windows)
            return Owner(file, None, app, datetime.now())
        return Owner(file, parse(data), app, since)
    return None


def parse_excel_owner(data: bytes) -> str | None:
    """The user name in an Excel owner file (UTF-16 when present, else the length-prefixed bytes)."""
    for name in (_utf16_after_ansi(data), _utf16_inline(data), _ansi(data)):
        if name:
            return name
    return None


def _clean(text: str) -> str | None:
    text = text.replace("\x00", "").strip()
    if text and all(ch.isprintable() for ch in text):
        return text
    return None


def _ansi(data: bytes) -> str | None:
    # Byte 0: length; bytes 1..54: the name in the Windows code page (GBK on Chinese Windows).
    if not data:
        return None
    n = data[0]
    raw = data[1:1 + n] if 0 < n <= 54 else data[1:55]
    for codec in ("utf-8", "gbk"):
        try:
            return _clean(raw.decode(codec))
        except UnicodeDecodeError:
            continue
    return _clean(raw.decode("latin-1"))


def _utf16_inline(data: bytes) -> str | None:
    # Some writers put UTF-16LE straight into bytes 1..54.
    raw = data[1:55]
    if len(raw) >= 4 and raw[1::2].count(0) >= len(raw) // 4:
        try:
            return _clean(raw.decode("utf-16-le", errors="strict"))
        except UnicodeDecodeError:
            return None
    return None


def _utf16_after_ansi(data: bytes) -> str | None:
    # After the 54 ANSI bytes Excel writes a 16-bit length and the name in UTF-16LE.
    for offset in (55, 54, 56):
        if len(data) < offset + 2:
            continue
        (n,) = struct.unpack_from("<H", data, offset)
        raw = data[offset + 2: offset + 2 + 2 * n]
        if 0 < n <= 54 and len(raw) == 2 * n:
            try:
                name = _clean(raw.decode("utf-16-le", errors="strict"))
            except UnicodeDecodeError:
                continue
            if name:
                return name
    return None


def parse_libre_lock(data: bytes) -> str | None:
    # "office user name,system user,host,date,url;" (the office user name may be blank).
    fields = data.decode("utf-8", errors="replace").split(",")
    for candidate in (fields[0], fields[1] if len(fields) > 1 else ""):
        name = _clean(candidate)
        if name:
            return name
    return None


def busy_message(path: Path, owner: Owner) -> str:
    who = f"“{owner.user}”" if owner.user else "某位用户"
    when = owner.since.strftime("%Y-%m-%d %H:%M")
    return (f"{path.name} 正被{who}在 {owner.app} 中打开（所有者文件 {owner.file.name}，{when} 起），"
            f"本次不写入。请关闭该工作簿后重试；若确认无人打开，该文件可能是异常退出留下的，"
            f"可删除 {owner.file.name} 后重试。")


def check_not_open(path: Path | str) -> None:
    """Raise ``WorkbookBusy`` (naming the user) while an owner file says ``path`` is open."""
    path = Path(path)
    owner = owner_of(path)
    if owner:
        raise WorkbookBusy(busy_message(path, owner))


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


class WorkbookLock:
    """Exclusive, OS-held lock beside ``path``; re-entrant within one object."""

    def __init__(self, path: Path | str, wait: float = DEFAULT_WAIT):
        self.path = Path(path)
        self.wait = wait
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        if self._depth:
            self._depth += 1
            return
        file = lock_path(self.path)
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError as exc:
            # Left by a run under another account (the nightly task) that this one may read but
            # not write: the OS lock works on a read-only handle too; only the holder's note is lost.
            try:
                fd = os.open(file, os.O_RDONLY)
            except OSError:
                raise FolderNotWritable(file.parent, os_reason(exc)) from exc
        except OSError as exc:
            raise FolderNotWritable(file.parent, os_reason(exc)) from exc
        deadline = time.monotonic() + self.wait
        while True:
            if _try_lock(fd):
                break
            if time.monotonic() >= deadline:
                holder = _read_holder(fd)
                os.close(fd)
                raise WorkbookBusy(
                    f"{self.path.name} 正由另一个 healthbook 任务写入（{holder}），等待 {self.wait:.0f} 秒"
                    "后仍未结束，本次不写入。请稍后重试。"
                )
            time.sleep(0.1)
        info = f"pid {os.getpid()} @ {socket.gethostname()} {datetime.now():%Y-%m-%d %H:%M:%S}"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0) if hasattr(os, "pwrite") else os.write(fd, info.encode())
        except OSError:  # a read-only lock file (see above): who holds it is only a courtesy
            pass
        self._fd = fd
        self._depth = 1

    def release(self) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        fd, self._fd = self._fd, None
        _unlock(fd)
        os.close(fd)

    def __enter__(self) -> WorkbookLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode("utf-8", errors="replace").strip() or "未知进程"
    except OSError:
        return "未知进程"


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
