"""The ``healthbook`` command: a few lines per command over the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from . import demo
from .book.build import build_workbook
from .book.read import read_workbook
from .errors import HealthbookError
from .summary import describe, describe_text

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[func.__name__.removeprefix("cmd_")] = func
    return func


def emit(args: argparse.Namespace, data: dict, text: str) -> None:
    """Print ``text`` for people, or ``data`` as JSON with ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print(text)


@command
def cmd_init(args: argparse.Namespace) -> int:
    rows = demo.demo_rows(with_ledger=not args.empty)
    backup = build_workbook(args.path, rows, force=args.force)
    info = describe(read_workbook(args.path))
    info["backup"] = str(backup) if backup else None
    note = f"原文件已备份到：{backup}\n" if backup else ""
    emit(args, info, f"已新建主工作簿。\n{note}{describe_text(info)}")
    return 0


@command
def cmd_info(args: argparse.Namespace) -> int:
    info = describe(read_workbook(args.path))
    emit(args, info, describe_text(info))
    return 0


@command
def cmd_rollup(args: argparse.Namespace) -> int:
    from .book.write import FileBook  # the safe writer (issue: writer)
    from .rollup import rollup, rollup_sheets, rollup_text
    from .validate import validate  # issue: validate

    as_of = args.as_of or date.today()
    book = read_workbook(args.path)
    validation = validate(book.frames, book.settings, as_of=as_of)
    result = rollup(validation, book.settings, as_of)
    sheets = rollup_sheets(result)
    FileBook(args.path).write(sheets, None)
    names = "、".join(f"“{s.sheet.name}”" for s in sheets)
    emit(args, result.to_dict(), f"{rollup_text(result)}\n已写入 {names}。")
    return int(validation.errors > 0)


def as_of_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"无法识别的日期“{text}”，请写成 2020-11-15 的形式") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="healthbook",
        description="健康街道试点工作台账：校验、汇总进度、生成通报和通知。",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")

    p = sub.add_parser("init", help="新建主工作簿（默认含演示数据）",
                       description="新建主工作簿：全部工作表、表头、下拉列表和说明；默认含演示数据。")
    p.add_argument("path", type=Path, help="新工作簿路径（.xlsx 或 .xlsm）")
    p.add_argument("--force", action="store_true", help="已存在时覆盖（先备份原文件）")
    p.add_argument("--empty", action="store_true", help="只含配置（项目、居委会、设置等），台账为空")
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果")

    p = sub.add_parser("info", help="概述工作簿内容", description="读取主工作簿，概述其中的项目、居委会和台账。")
    p.add_argument("path", type=Path, help="主工作簿路径")
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果")

    p = sub.add_parser("rollup", help="汇总进度，写入居委会进度、项目进度、单位进度",
                       description="校验台账并按居委会、项目、责任单位和类别汇总进度，"
                                   "写入“居委会进度”“项目进度”“单位进度”三张表（有错误的台账行不计入，记为待核实）。")
    p.add_argument("path", type=Path, help="主工作簿路径")
    p.add_argument("--as-of", type=as_of_date, default=None,
                   help="截至日期（如 2020-11-15），默认今天；晚于此日期的台账不计入")
    p.add_argument("--json", action="store_true", help="以 JSON 输出汇总表")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``healthbook`` console script; returns the exit status."""
    _utf8_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except HealthbookError as err:
        print(f"错误：{err}", file=sys.stderr)
        return err.exit_code


def _utf8_stdout() -> None:
    # Windows consoles default to a legacy code page; Chinese must not crash the print.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")


if __name__ == "__main__":
    sys.exit(main())
