"""Macros taking an ``xw.Book``: what the buttons in the master workbook run.

Each macro is a few lines over the core through ``LiveBook``. A person clicking a button never sees
a Python traceback: problems they can fix arrive as one Chinese message box naming the sheet and
what to do; anything unexpected arrives as a short message box, with the details in a log file
beside the workbook for the IT contact.

Before a macro's first write the workbook's saved file is backed up (``LiveBook.protect``); every
message box ends with the backup's name, or says there is none — also when the run failed midway.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import tempfile
import traceback
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from . import schema
from .book.backup import BACKUP_DIR, BackupLabel, label_backups
from .book.live import LiveBook
from .book.write import refuse_staged
from .errors import HealthbookError
from .marks import validation_writes
from .render.notices import NoticeOptions, render_notices
from .report import (
    analyse,
    notice_input,
    notices_sheet,
    numbered_text,
    run_report,
    unnumbered_text,
    with_template_setting,
)
from .rollup import not_refreshed_text, rollup_sheets, who_is_behind
from .rollup import rollup as core_rollup
from .validate import validate as core_validate

TITLE = "健康街道试点工作台账"
LOG_NAME = "healthbook-错误日志.txt"
log = logging.getLogger(__name__)
# The LiveBooks of the macro running now: a failure's message box names their backup too.
_run_books: contextvars.ContextVar[list[LiveBook] | None] = contextvars.ContextVar("run_books", default=None)


def macro(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func(book, ...)``; show its failure as a Chinese message box instead of raising."""

    @functools.wraps(func)
    def run(book, *args, **kwargs):
        books: list[LiveBook] = []
        token = _run_books.set(books)
        try:
            return func(book, *args, **kwargs)
        except HealthbookError as err:
            alert(book, str(err) + _backup_line(books), critical=True)
        except Exception as exc:  # a button must never end in a console traceback
            where = write_log(book, exc)
            alert(book, f"运行“{func.__name__}”时出错：{type(exc).__name__}: {str(exc)[:200]}\n"
                        f"详细信息已写入 {where}，请发给信息联络员。{_backup_line(books)}", critical=True)
        finally:
            _run_books.reset(token)
            label_backups([live.backup for live in books if live.backup_made],
                          BackupLabel(button_run(func.__name__), BUTTON_LABELS.get(func.__name__, "运行宏前")))
        return None

    return run


# What ``healthbook restore --list`` says a button's backup was made before.
BUTTON_LABELS = {"validate": "校验并标记前", "rollup": "汇总进度前", "notices": "生成通知前", "report": "一键生成报告前"}
# The buttons' captions (the shipped one; the step buttons as workbook/README.md has them captioned):
# ``restore --list`` names the button a clerk clicked, not its Python function (README maps the two).
BUTTON_NAMES = {"validate": "只校验", "rollup": "校验并汇总进度", "notices": "只生成通知", "report": "一键生成报告"}


def button_run(function: str) -> str:
    """The ``run`` a button's backup is labelled with: "Excel 按钮“一键生成报告”"."""
    name = BUTTON_NAMES.get(function)
    return f"Excel 按钮“{name}”" if name else "Excel 宏"


def live_book(book) -> LiveBook:
    """The LiveBook a macro reads and writes through (its backup is named in the message box)."""
    refuse_staged(str(book.name))  # the button in a staged copy would make it a second master
    live = LiveBook(book)
    books = _run_books.get()
    if books is not None:
        books.append(live)
    return live


def backup_note(live: LiveBook) -> str:
    """One short line for the message box about the backup taken before the first write."""
    if live.backup is not None:
        if live.backup_made:
            return f"写入前已备份：{BACKUP_DIR}/{live.backup.name}。"
        return f"工作簿自上次备份后未再保存，写入前的备份仍是 {BACKUP_DIR}/{live.backup.name}。"
    if live.no_backup:
        return f"注意：{live.no_backup}，写入前没有备份，按钮的改动无法撤销。"
    return ""  # nothing was written


def _backup_line(books: list[LiveBook]) -> str:
    """The backup note of a failed run, on a line of its own (nothing when nothing was written)."""
    notes = [n for n in (backup_note(live) for live in books) if n]
    return "".join("\n" + n for n in notes)


def alert(book, message: str, critical: bool = False) -> None:
    """A message box in Excel (an ``alert`` action on the xlwings Server / JSON book)."""
    book.app.alert(message, title=TITLE, mode="critical" if critical else "info")


def write_log(book, exc: BaseException) -> Path:
    """Append the traceback to a log beside the workbook (or in the temp folder)."""
    try:
        folder = workbook_folder(book)
    except CloudWorkbook:
        folder = Path(tempfile.gettempdir())
    path = (folder if folder.is_dir() else Path(tempfile.gettempdir())) / LOG_NAME
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(exc)) + "\n")
    except OSError:
        log.exception("cannot write %s", path)
    return path


class CloudWorkbook(HealthbookError):
    def __init__(self, fullname: str):
        super().__init__(
            f"工作簿是从网址打开的（{fullname[:80]}，如 OneDrive、SharePoint），无法确定通知输出文件夹。"
            "请从本机或共享文件夹（如 D:\\jiankang 或映射的网络盘）打开工作簿（与它同名的 .py 文件放在旁边）后再点按钮，"
            "或在“设置”的“通知输出文件夹”中填写完整路径。"
        )


def workbook_folder(book) -> Path:
    """The folder the workbook lives in (the current folder for a book without a path)."""
    if "://" in book.fullname:  # OneDrive / SharePoint hand Excel a URL, not a folder
        raise CloudWorkbook(book.fullname)
    return Path(book.fullname).resolve().parent


def notices_folder(book, settings: dict, base: Path | None = None) -> Path:
    """设置 通知输出文件夹, relative to ``base`` (default: the workbook's folder) unless absolute."""
    setting = str(settings.get("notices") or schema.SETTINGS_BY_KEY["notices"].default)
    folder = Path(setting)
    return folder if folder.is_absolute() else (base or workbook_folder(book)) / folder


@macro
def validate(book, as_of: date | None = None):
    """Check the workbook: 校验结果 rewritten, bad cells marked (fill + note)."""
    live = live_book(book)
    workbook = live.read()
    validation = core_validate(workbook.frames, workbook.settings, as_of or date.today())
    sheets, marks = validation_writes(validation)
    live.write(sheets, marks)
    alert(book, f"校验完成：错误 {validation.errors} 条，警告 {validation.warnings} 条。"
                f"详见“{schema.ISSUES.name}”表，有问题的单元格已标色并加批注。" + _backup_line([live]))
    return validation


@macro
def rollup(book, as_of: date | None = None):
    """Validate, then rewrite the progress sheets (居委会进度, 项目进度, 单位进度)."""
    as_of = as_of or date.today()
    live = live_book(book)
    workbook = live.read()
    validation = core_validate(workbook.frames, workbook.settings, as_of)
    result = core_rollup(validation, workbook.settings, as_of)
    sheets, marks = validation_writes(validation)
    live.write([*sheets, *rollup_sheets(result)], marks)
    head = "校验完成" if result.blocked else "进度汇总完成"
    alert(book, f"{head}（截至 {as_of:%Y-%m-%d}）。错误 {validation.errors} 条，"
                f"警告 {validation.warnings} 条。\n"
                + "\n".join(who_is_behind(result) or [not_refreshed_text(result)]) + _backup_line([live]))
    return result


@macro
def notices(book, as_of: date | None = None, base: Path | None = None):
    """Render every notice into the notices folder and list them in 通知清单 (nothing else written)."""
    as_of = as_of or date.today()
    live = live_book(book)
    workbook = live.read()
    validation, result = analyse(workbook, as_of)
    folder = notices_folder(book, workbook.settings, base)
    options = with_template_setting(workbook, NoticeOptions())
    rendered = render_notices(notice_input(workbook, validation, result, as_of), folder, options)
    listed = "" if rendered.blocked else list_notices(live, rendered, workbook)
    notes = "".join(f"\n注意：{w}" for w in rendered.warnings)  # e.g. a notice staff edited, kept
    said = "通知未生成。" if rendered.blocked else f"已生成 {_counts(rendered)}，保存在文件夹 {folder}；{listed}"
    alert(book, f"{said}{notes}" + _backup_line([live]))
    return rendered


@macro
def report(book, as_of: date | None = None, base: Path | None = None):
    """The one-click job: validate, mark, roll up, write, render notices, list them."""
    live = live_book(book)
    folder = notices_folder(book, live.read().settings, base)
    result = run_report(live, folder, as_of or date.today())
    listed = (f"清单见“{schema.NOTICES.name}”表。" if schema.NOTICES.name in live.read().sheet_names
              else _NO_LIST)
    blocked = result.notices.blocked
    lines = [f"{'通知未生成' if blocked else '报告已生成'}（统计截至 {result.as_of:%Y-%m-%d}）。",
             f"校验：错误 {result.errors} 条，警告 {result.warnings} 条，详见“{schema.ISSUES.name}”表。",
             *result.behind, result.rollup_blocked,
             "通知：未生成（原因见下面的“注意”）。" if blocked else
             f"通知：{_counts(result.notices)}，保存在文件夹 {folder}；{listed}",
             numbered_text(result.numbered, result.written) if result.numbered else "",
             unnumbered_text(result.unnumbered, result.unnumbered_why) if result.unnumbered else "",
             *(f"注意：{w}" for w in result.notices.warnings),
             backup_note(live)]
    alert(book, "\n".join(line for line in lines if line))
    return result


_NO_LIST = (f"工作簿中没有“{schema.NOTICES.name}”表，清单未写入"
            f"（可从新版 healthbook.xlsm 复制该表，表名须一致）。")


def list_notices(live: LiveBook, rendered, workbook) -> str:
    """Write 通知清单; a workbook made before that sheet existed just goes without the list."""
    if schema.NOTICES.name not in workbook.sheet_names:
        return _NO_LIST
    try:
        live.write([notices_sheet(rendered, Path(workbook.path).parent)])
    except HealthbookError as err:  # the notices are made: say so, and why the list is not
        return f"“{schema.NOTICES.name}”表未更新：{err}"
    return f"清单见“{schema.NOTICES.name}”表。"


def _counts(result) -> str:
    return "，".join(f"{kind} {n} 份" for kind, n in result.counts().items()) or "没有需要生成的通知"
