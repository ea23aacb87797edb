"""Small named exceptions for operational failures.

Entry points catch ``HealthbookError`` and show its Chinese message (one line, naming the file and
sheet and what to do) with ``exit_code`` — never a traceback.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable
from pathlib import Path

_OS_REASONS = {errno.ENOSPC: "磁盘已满", errno.EACCES: "没有写入权限", errno.EPERM: "没有写入权限",
               errno.EROFS: "磁盘是只读的", errno.ENOTDIR: "这个路径上是一个文件，不是文件夹",
               errno.EEXIST: "这个路径上是一个文件，不是文件夹", errno.ENOENT: "文件夹不存在或已被移走"}


def os_reason(exc: OSError) -> str:
    """Why a file could not be written, in Chinese (the system's own words only for rare errors)."""
    return _OS_REASONS.get(exc.errno) or f"系统错误：{exc.strerror or exc}"


class HealthbookError(Exception):
    """Base: a problem a person must fix; ``str(err)`` is the Chinese message."""

    exit_code = 2


class WorkbookNotFound(HealthbookError):
    def __init__(self, path: Path | str):
        if Path(path).is_dir():
            super().__init__(f"{path} 是一个文件夹，不是工作簿。请写出工作簿文件本身的路径，"
                             f"如 {Path(path) / '台账.xlsx'}。")
        else:
            super().__init__(f"找不到工作簿：{path}。请检查路径是否正确。")


class NotAWorkbook(HealthbookError):
    def __init__(self, path: Path | str, reason: str = "", advice: str = "请用 Excel 另存为 .xlsx 后重试。"):
        detail = f"（{reason}）" if reason else "：它不是可读取的 Excel 工作簿（.xlsx/.xlsm）"
        super().__init__(f"无法打开 {Path(path).name}{detail}。{advice}")


class MissingSheet(HealthbookError):
    def __init__(self, path: Path | str, sheet: str, others: Iterable[str] = ()):
        """``others``: the workbook's sheets that are no contract sheet ("台帐" for 台账 is named)."""
        close = difflib.get_close_matches(sheet, [str(n).strip() for n in others], n=1, cutoff=0.5)
        hint = f"工作簿里有一张“{close[0]}”，如果就是它，请把表名改为“{sheet}”；否则请" if close else "请"
        super().__init__(
            f"{Path(path).name} 缺少工作表“{sheet}”。{hint}恢复该工作表（名称须完全一致），"
            "或用 healthbook init 新建一个工作簿作参照。"
        )


class FormNotMaster(HealthbookError):
    """A committee's 填报表 named where the master workbook belongs."""

    def __init__(self, path: Path | str):
        super().__init__(
            f"{Path(path).name} 是居委会填报表，不是主工作簿。填报表请放进收件箱文件夹，由汇总合并；"
            "命令里请写主工作簿（台账工作簿）的路径，如 healthbook consolidate 台账.xlsx。"
        )


class MissingColumns(HealthbookError):
    def __init__(self, path: Path | str, sheet: str, headers: list[str], found: list[str]):
        listed = "、".join(f"“{h}”" for h in headers)
        seen = "、".join(h for h in found if h) or "（空）"
        super().__init__(
            f"{Path(path).name} 的工作表“{sheet}”缺少必填列 {listed}。"
            f"请在表头行补上这些列名（现有表头：{seen}）。"
        )


class DuplicateColumns(HealthbookError):
    def __init__(self, path: Path | str, sheet: str, headers: list[str]):
        listed = "、".join(f"“{h}”" for h in headers)
        super().__init__(
            f"{Path(path).name} 的工作表“{sheet}”有重复的列 {listed}。请删除或改名多余的一列。"
        )


class FileExists(HealthbookError):
    def __init__(self, path: Path | str):
        super().__init__(
            f"{path} 已存在，未覆盖。如确需重建，请加 --force（会先备份原文件）。"
        )


class UnsupportedSuffix(HealthbookError):
    def __init__(self, path: Path | str):
        super().__init__(f"不支持的文件类型：{Path(path).name}。请使用 .xlsx 或 .xlsm。")


class WorkbookBusy(HealthbookError):
    """The master is open in Excel or locked by another run; the caller stages and retries."""

    exit_code = 3


class FolderNotWritable(HealthbookError):
    """The master's folder does not take the lock, temporary file or backup a safe write needs."""

    def __init__(self, folder: Path | str, reason: str):
        super().__init__(f"无法在 {folder} 中写入文件（{reason}）。写入主工作簿需要在它所在的文件夹里"
                         "建锁文件、临时文件和备份：请检查该文件夹的写入权限或磁盘空间。")


class NoticesFolderUnusable(HealthbookError):
    """The notices' folder cannot be made: a drive not mapped, a mistyped path, a file of that name."""

    def __init__(self, folder: Path | str, reason: str):
        from . import schema  # errors is imported by schema's readers: the contract only when raised

        super().__init__(f"无法建立通知输出文件夹 {folder}（{reason}），通知没有生成。这个文件夹来自“{schema.SETTINGS.name}”表的"
                         f"“{schema.SETTINGS_BY_KEY['notices'].item}”（或命令的 --out）：请检查路径是否写对、网络盘是否已连接。")
