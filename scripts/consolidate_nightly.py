"""Scheduled consolidation: run by Windows Task Scheduler or cron (see README, 定时汇总).

    python scripts/consolidate_nightly.py D:\\jiankang\\jiankang.xlsm
    python scripts/consolidate_nightly.py /srv/healthbook/healthbook.xlsx --min-age 120

Merges every submission in the master's inbox (folders from its 设置 sheet), appends one line per
file to consolidate.log beside the master, and prints a Chinese summary for the scheduler's log.
Exit status: 0 done, 1 some files had problems (see their receipts), 2 file or usage error
(also: receipts could not be written; those files stay in the inbox for the next run),
3 master busy (open in Excel, or another run is writing): the result is staged beside the master,
the inbox is left untouched, and the next scheduled run retries. The wrappers report 3 as success;
so once the owner file keeping the master busy is over a day old (Excel crashed on Friday, or the
master was left open), the status is 2 instead, and the logs say so (！！): every run since waited.
A missing inbox (share not connected, folder renamed) is 2 too; a freshly set-up master's own
inbox folder is created instead (see ``consolidate.check_inbox``).

``--log FILE`` appends everything printed (errors and tracebacks too, and the reader process's)
to FILE in UTF-8. The Windows wrapper uses it: Windows PowerShell 5.1's ``>>`` writes UTF-16 and
turns each line Python writes to stderr into an error record with PowerShell's own position text.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

# Runs from a checkout without installation (the scheduler's working folder may be anywhere).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    # The log is taken before the arguments are checked: a usage error must reach it too.
    early = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    early.add_argument("--log", type=Path)
    try:
        log = early.parse_known_args(argv)[0].log
    except argparse.ArgumentError:  # "--log" without a file: the full parser says so, in Chinese
        log = None
    if log is not None:
        try:
            append_output_to(log)
        except OSError as err:
            print(f"错误：无法写日志文件 {log}：{err.strerror or err}", file=sys.stderr)
            return 2
    # Imported once the log is set: a broken installation's traceback must reach it too.
    try:
        from macros.book.backup import labelling
        from macros.cli import ChineseParser, _utf8_stdout, consolidation_changed
        from macros.consolidate import consolidate, summary_text
        from macros.errors import HealthbookError
    except ModuleNotFoundError as missing:  # the scheduler's Python is not the one healthbook was installed into
        print(missing_library_text(missing.name), file=sys.stderr)
        return 2

    if log is None:
        _utf8_stdout()
    # Chinese usage and errors, as the healthbook command's: the office reads them in the task's log.
    parser = ChineseParser(description="定时汇总居委会填报表进主工作簿。")
    parser.add_argument("master", nargs="?", default=os.environ.get("HEALTHBOOK_MASTER"), metavar="主工作簿",
                        help="主工作簿路径（也可用环境变量 HEALTHBOOK_MASTER 指定）")
    parser.add_argument("--min-age", type=float, default=60.0, metavar="秒",
                        help="文件最后修改后至少等待多少秒才处理（避免读到仍在复制的文件），默认 60")
    parser.add_argument("--log", type=Path, metavar="日志文件",
                        help="把全部输出（含出错信息）以 UTF-8 追加到这个文件；Windows 计划任务用它，"
                             "不要用 PowerShell 的 >> 重定向（会写成 UTF-16）")
    args = parser.parse_args(argv)
    if not args.master:
        parser.error("请给出主工作簿路径，或设置环境变量 HEALTHBOOK_MASTER。")
    print(f"[{datetime.now():%Y-%m-%d %H:%M:%S}] 汇总 {args.master}")
    try:
        with labelling(Path(args.master), "定时汇总", "汇总填报表前") as note:
            run = consolidate(Path(args.master), min_age=args.min_age, stage=log_stage)
            note.changed = consolidation_changed(run)
    except HealthbookError as err:
        print(f"错误：{err}", file=sys.stderr)
        return err.exit_code
    print(summary_text(run))
    if run.busy and run.long_busy:
        print(f"错误：{run.long_busy}", file=sys.stderr)
        return 2  # not 3: the wrappers would report it as success night after night
    return run.exit_status


def missing_library_text(module: str | None, windows: bool = os.name == "nt") -> str:
    """Why the run cannot start, in Chinese: cron's or the Task Scheduler's Python (often the
    system's own, /usr/bin/python3) lacks what ``pip install .`` installed into another one. The
    advice leads with naming that other Python: on Debian 12 and the like the system's Python
    refuses ``pip install`` (externally managed)."""
    head = f"错误：运行本任务的 Python（{sys.executable}）没有安装 healthbook 需要的库（缺少 {module}），本次没有汇总。"
    if windows:
        return head + ("请在系统环境变量中设 HEALTHBOOK_PYTHON，写出装好 healthbook 的 python.exe 的完整路径；"
                       "或用这个 Python 在 healthbook 文件夹中运行 pip install . 。见 README“定时汇总”。")
    return head + ("请在 crontab 中用 PYTHON= 写出装好 healthbook 的虚拟环境里 Python 的完整路径"
                   "（在 crontab 开头加一行，如 PYTHON=/opt/healthbook/.venv/bin/python），见 README“定时汇总”。"
                   "不要往系统自带的 Python（如 /usr/bin/python3）里 pip install：Debian 12 等系统不允许。")


def append_output_to(path: Path) -> None:
    """From now on this process's stdout and stderr (file descriptors 1 and 2) are appended to
    ``path``, as UTF-8 text with the platform's line ends. The reader process inherits them on
    Linux; on Windows it does not (it prints nothing: its failures come back to this process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_BINARY: on Windows a text-mode descriptor would turn the "\r\n" written below into "\r\r\n".
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), 0o644)
    try:
        for std in (1, 2):
            os.dup2(fd, std)
    finally:
        os.close(fd)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115


def log_stage(text: str) -> None:
    """A timed line per step in the scheduler's log: a night that hangs shows where."""
    print(f"[{datetime.now():%H:%M:%S}] {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
