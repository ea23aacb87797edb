"""The notices folder: what healthbook wrote there, so that a file staff changed is never overwritten.

A hidden manifest (``.healthbook-通知.json``, one JSON object a line) records every file written:
its size, modification time and fingerprint. Before a name is written again:

- absent, or unchanged since healthbook wrote it → replaced (atomically: a temporary file in the
  same folder, then ``os.replace``; a run killed mid-write leaves the old file whole);
- already holding exactly what would be written → left alone;
- changed since (staff edited it in Word) or never written by healthbook → kept as it is, and the
  new notice goes beside it as ``<name>（新生成）<ext>`` with a warning naming both — unless the
  new notice is the very one staff started from (nothing new to offer: theirs stands, no warning);
- cannot be read or replaced (open in Word on Windows, a folder of that name) → not written, a
  warning says which and what to do; the other files are written as usual.

Each record is appended before its file is replaced, so a run killed between the two still knows
the file; the manifest is rewritten compactly when a run ends.

The manifest also holds the folder's listing (one line ``{"listing": [...]}``): the notices that are
current there, as index.html and 通知清单 list them, so that a run of one kind (``--kind 工作简报``)
lists the other kinds' notices of earlier runs as well.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import os_reason

MANIFEST = ".healthbook-通知.json"
TEMP_PREFIX = ".healthbook-写入中-"
NEW_MARK = "新生成"
RETIRED = "已过时"  # sub-folder for notices a later run of the same day no longer makes
INDEX = "index.html"  # every run's listing: a folder holding one without a manifest is an older healthbook's
BESIDE_LIMIT = 9  # 新生成, 新生成2 … 新生成9: past that, something is wrong with the folder
STALE_TEMP_SECONDS = 3600  # temporary files older than this are a killed run's; younger ones may be a running one's


def fingerprint(name: str, data: bytes) -> str:
    """What a file holds, ignoring what changes with every save of the same content: a .docx by
    its parts' names and CRCs (zip timestamps differ run to run), anything else by its bytes."""
    if name.lower().endswith(".docx"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                parts = sorted(f"{i.filename}:{i.CRC:08x}:{i.file_size}" for i in z.infolist())
            return "zip:" + hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
        except (zipfile.BadZipFile, OSError, ValueError):
            pass  # a damaged or foreign file: compared by its bytes
    return hashlib.sha256(data).hexdigest()


def beside_name(name: str, n: int = 1) -> str:
    """``进度通报-….docx`` → ``进度通报-…（新生成）.docx`` (``（新生成2）`` … for n > 1)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    mark = NEW_MARK if n == 1 else f"{NEW_MARK}{n}"
    return f"{stem}（{mark}）{dot}{ext}"


@dataclass
class Written:
    """The outcome of one write: the name that now holds the notice (None: not written) and, when
    the person should know something, a Chinese warning."""

    name: str | None
    warning: str = ""


class _Changed(Exception):
    """The file on disk is not one healthbook left unchanged."""


class OutputFolder:
    """A notices folder and its manifest. ``put`` is called from one writer thread at a time."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.manifest = self.folder / MANIFEST
        # A folder an older healthbook wrote has no manifest: the files it holds under this run's
        # names are that version's notices (it overwrote them every run). Adopted: moved into
        # RETIRED when they differ (nothing lost), else kept as ours — not "edited by staff"
        # forever, with a （新生成） copy and a warning on every run after the upgrade.
        self.adopting = not self.manifest.exists() and (self.folder / INDEX).is_file()
        self.listing: list[dict] = []  # the notices current in the folder (``Notice`` fields)
        self.records: dict[str, dict] = self._load()
        self._journal = None
        self._clear_stale_temps()

    # ---- the manifest ---------------------------------------------------------------------

    def _load(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        try:
            lines = self.manifest.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return records  # none yet (or unreadable): every existing file counts as not ours
        for line in lines:
            try:
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("listing"), list):
                    self.listing = [n for n in entry["listing"] if isinstance(n, dict)]
                    continue
                name, fps = entry["name"], entry["fps"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed run
            records[name] = {"fps": list(fps)[:2], "size": entry.get("size"), "mtime_ns": entry.get("mtime_ns")}
        return records

    def _record(self, name: str, fp: str, stat: os.stat_result | None) -> None:
        old = self.records.get(name, {}).get("fps", [])
        fps = [fp, *[f for f in old if f != fp]][:2]  # the new and the one before (a kill in between)
        entry = {"name": name, "fps": fps, "size": stat.st_size if stat else None,
                 "mtime_ns": stat.st_mtime_ns if stat else None}
        self.records[name] = {k: v for k, v in entry.items() if k != "name"}
        if stat is None:  # appended before the file is replaced: a kill in between still knows it
            if self._journal is None:
                self._journal = open(self.manifest, "a", encoding="utf-8")  # noqa: SIM115 (closed in save)
            self._journal.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._journal.flush()

    def save(self) -> None:
        """Rewrite the manifest compactly: one line per file still in the folder."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        lines = [json.dumps({"listing": self.listing}, ensure_ascii=False)] if self.listing else []
        for name, rec in sorted(self.records.items()):
            if (self.folder / name).is_file():
                lines.append(json.dumps({"name": name, **rec}, ensure_ascii=False))
        try:
            self._replace(MANIFEST, ("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
        except OSError:
            pass  # the appended lines still hold what was written

    # ---- writing --------------------------------------------------------------------------

    def _replace(self, name: str, data: bytes) -> os.stat_result:
        """Write ``data`` to ``name`` atomically; returns the new file's stat."""
        temp = self.folder / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}.tmp"
        try:
            with open(temp, "xb") as f:
                f.write(data)
            # No fsync: the notices can be made again; what matters is that a killed process never
            # leaves half a file, which the rename guarantees.
            os.replace(temp, self.folder / name)
        except BaseException:
            try:
                temp.unlink()
            except OSError:
                pass
            raise
        return os.stat(self.folder / name)

    def _state(self, name: str, fp: str) -> str:
        """'absent', 'ours' (unchanged since written), 'same' (holds ``fp`` already), or raises
        ``_Changed``; an OSError when the file cannot be examined (open elsewhere, a folder)."""
        path = self.folder / name
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "absent"
        if not os.path.isfile(path):
            raise IsADirectoryError(errno.EISDIR, "是一个文件夹", str(path))
        rec = self.records.get(name)
        if rec and rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns:
            return "same" if rec["fps"][0] == fp else "ours"
        on_disk = fingerprint(name, path.read_bytes())
        if on_disk == fp:
            return "same"
        if rec and on_disk in rec["fps"]:
            return "ours"
        if rec is None and self.adopting:
            (self.folder / RETIRED).mkdir(exist_ok=True)
            os.replace(path, self.folder / RETIRED / name)
            return "absent"
        raise _Changed()

    def put(self, name: str, data: bytes) -> Written:
        """Write one file by the rules above; never raises for a file it cannot write."""
        fp = fingerprint(name, data)
        target = name
        try:
            for n in range(BESIDE_LIMIT + 1):
                try:
                    state = self._state(target, fp)
                except _Changed:
                    rec = self.records.get(name)
                    if target == name and rec and rec["fps"][0] == fp:
                        return Written(name)  # staff edited exactly this notice: theirs stands
                    target = beside_name(name, n + 1)
                    continue
                if state == "same":
                    self._record(target, fp, os.stat(self.folder / target))
                else:
                    self._record(target, fp, None)
                    self._record(target, fp, self._replace(target, data))
                return Written(target, "" if target == name else _kept(name, target))
            return Written(None, f"“{name}”及其“{NEW_MARK}”副本都已被修改过，本次未再另存："
                                 f"请整理通知输出文件夹后重新生成。")
        except OSError as exc:
            return Written(None, _unwritable(target, exc))

    def retire(self, wanted: Callable[[str], bool]) -> tuple[list[str], list[str]]:
        """Move the files healthbook wrote whose names ``wanted`` picks, and that nobody changed
        since, into the ``RETIRED`` sub-folder (kept, never deleted). Returns (moved, left): a file
        staff edited, or one open in Word, stays where it is."""
        moved, left = [], []
        for name in sorted(self.records):
            if not wanted(name):
                continue
            path = self.folder / name
            rec = self.records[name]
            try:
                st = os.stat(path)
                if not (rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns
                        or fingerprint(name, path.read_bytes()) in rec["fps"]):
                    left.append(name)  # changed by staff: theirs to keep or send
                    continue
                (self.folder / RETIRED).mkdir(exist_ok=True)
                os.replace(path, self.folder / RETIRED / name)
            except FileNotFoundError:
                continue  # gone already
            except OSError:
                left.append(name)  # open in Word
                continue
            del self.records[name]
            moved.append(name)
        return moved, left

    def _clear_stale_temps(self) -> None:
        now = time.time()
        for temp in self.folder.glob(f"{TEMP_PREFIX}*.tmp"):
            try:
                if now - temp.stat().st_mtime > STALE_TEMP_SECONDS:
                    temp.unlink()
            except OSError:
                pass


def _kept(name: str, target: str) -> str:
    return (f"“{name}”在上次生成后被修改过（或不是本程序生成的），已原样保留；按最新数据生成的通知"
            f"另存为“{target}”。请核对两份文件；不再需要修改过的版本时删去“{name}”，下次即按原文件名生成。")


def _unwritable(name: str, exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        why = "同名的是一个文件夹"
    elif isinstance(exc, PermissionError):
        why = "文件正被 Word 等程序打开，或没有写入权限"
    else:
        why = os_reason(exc)
    return f"未能写入“{name}”（{why}），该文件保持原样：请关闭 Word 等打开它的程序后重新生成。其他通知已照常生成。"
