"""The ``healthbook`` command: a few lines per command over the library."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import demo, schema
from .book.backup import BackupLabel, label_backups, labelling
from .book.build import build_workbook
from .book.read import read_workbook
from .book.write import backup_listing, other_backups_text, refuse_staged
from .errors import HealthbookError
from .marks import report_text, validation_writes
from .normalise import parse_date_text, programme_year
from .summary import describe, describe_text
from .validate import validate

if TYPE_CHECKING:
    from .consolidate import Consolidation


class UsageError(HealthbookError):
    """A command-line argument that cannot be used (exit 2)."""


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
    from .consolidate import retire_sent, sent_file

    rows = demo.starter_rows(date.today().year) if args.empty else demo.demo_rows()
    with labelling(args.path, "init --force", "重新新建主工作簿前") as label:
        label.changed = "整个文件换成新建的工作簿"
        backup = build_workbook(args.path, rows, force=args.force)
    retired = retire_sent(Path(args.path), backup) if backup else None
    info = describe(read_workbook(args.path))
    info["backup"] = str(backup) if backup else None
    info["demo"] = not args.empty
    info["sent_moved"] = str(retired) if retired else None
    note = f"原文件已备份到：{backup}\n" if backup else ""
    if retired:
        note += (f"原主工作簿记下的各居委会提交过的内容已移到 {retired}，新主工作簿从头记起（已发出的记录编号仍然保留，"
                 f"不会再分配）；用 healthbook restore 恢复上面这份备份时会一并移回。\n")
    elif not backup and sent_file(Path(args.path)).is_file():  # a master of this name renamed or deleted before
        note += (f"注意：旁边的 {sent_file(Path(args.path)).name} 记着以前同名的主工作簿各居委会提交过的内容。"
                 f"那个主工作簿若改了名，请把这个文件按新名改名；若已删除，请把它移走，"
                 f"否则居委会再交来的记录会被当作街道已删除的记录而不加入。\n")
    if args.empty:
        settings = schema.SETTINGS_BY_KEY
        todo = (f"\n请先填写：“{schema.PROJECTS.name}”表的目标值和截止日期，“{schema.COMMITTEES.name}”表的联系人和电话"
                f"（核对居委会名单），“{schema.SETTINGS.name}”表的{settings['contact'].item}、{settings['phone'].item}；"
                f"并核对已填好的{settings['year'].item}（{info['year']}）和{settings['doc_number'].item}（从 1 起）。")
    else:  # the demo's records, contacts and meetings are invented: never the start of a real master
        todo = (f"\n这是演示用的主工作簿：{schema.LEDGER.name}、{schema.MEETINGS.name}、{schema.ARTICLES.name}、联系人和目标值"
                f"都是编造的示例。正式使用请另建：healthbook init <文件名> --empty")
    emit(args, info, f"已新建主工作簿{'' if args.empty else '（含演示数据）'}。\n{note}{describe_text(info)}{todo}")
    return 0


@command
def cmd_info(args: argparse.Namespace) -> int:
    info = describe(read_workbook(args.path))
    emit(args, info, describe_text(info))
    return 0


def _notice_options(args: argparse.Namespace):
    from .render.notices import NoticeOptions, parse_kinds

    try:
        kinds = parse_kinds(getattr(args, "kind", None))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return NoticeOptions(kinds=kinds, issue=getattr(args, "issue", None), meeting=getattr(args, "meeting", None),
                         templates=args.templates, pdf=getattr(args, "pdf", False))


@command
def cmd_notices(args: argparse.Namespace) -> int:
    from . import report
    from .render.notices import render_notices

    options = _notice_options(args)
    refuse_staged(args.path)  # notices from a staged copy would look current
    book = read_workbook(args.path)
    as_of = args.as_of or date.today()
    validation, result = report.analyse(book, as_of)
    options = report.with_template_setting(book, options)
    out = args.out or report.default_out_dir(book)
    done = render_notices(report.notice_input(book, validation, result, as_of), out, options)
    counts = "，".join(f"{k} {v}" for k, v in done.counts().items()) or "无"
    notes = "".join(f"\n注意：{w}" for w in done.warnings)
    index = f"\n目录：{Path(done.index).resolve()}" if done.index else ""
    said = ("通知未生成（原因见下面的“注意”）。" if done.blocked  # no folder made: none named
            else f"已生成：{counts}。\n输出文件夹：{Path(out).resolve()}{index}")
    emit(args, done.to_dict(), f"{said}{notes}")
    return 1 if done.blocked else 0  # refused, not "nothing to do": a scheduled task must tell them apart


@command
def cmd_report(args: argparse.Namespace) -> int:
    from .book.write import FileBook
    from .report import run_report

    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    with labelling(args.path, "report", "生成报告前") as note:
        result = run_report(FileBook(args.path), args.out, args.as_of or date.today(), _notice_options(args), progress)
        note.changed = (f"写入校验结果（错误 {result.errors} 条，警告 {result.warnings} 条）"
                        f"{'' if result.rollup_blocked else '和进度表'}，生成通知 {sum(result.notices.counts().values())} 份")
    emit(args, result.to_dict(), result.text())
    return result.exit_code

@command
def cmd_serve(args: argparse.Namespace) -> int:
    import secrets

    from .serve import MACROS, PREFIX, make_server

    token = args.token or os.environ.get("HEALTHBOOK_TOKEN") or secrets.token_urlsafe(24)
    server = make_server(args.host, args.port, token, args.base)
    urls = "、".join(f"{PREFIX}{name}" for name in MACROS)
    print(f"服务已启动：http://{args.host}:{args.port}（POST {urls}）\n"
          f"令牌（请求头 Authorization）：{token}\n按 Ctrl+C 停止。", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


@command
def cmd_rollup(args: argparse.Namespace) -> int:
    from .book.write import FileBook
    from .rollup import rollup, rollup_sheets, rollup_text

    as_of = args.as_of or date.today()
    master = FileBook(args.path)
    book = master.read()
    validation = validate(book.frames, book.settings, as_of=as_of)
    result = rollup(validation, book.settings, as_of)
    if result.blocked:  # the wrong year's figures are not written, nor given: the sheets keep what they showed
        emit(args, {**result.to_dict(), "staged": None}, rollup_text(result))
        return 1
    with labelling(args.path, "rollup", "汇总进度前") as note:
        written = master.write_or_stage(rollup_sheets(result))
        names = "、".join(f"“{name}”" for name in written.sheets)
        note.changed = f"写入{names}"
    done = (f"主工作簿正被占用（{written.busy}），结果已另存为 {written.staged}，请关闭后重新运行。"
            if written.staged else f"已写入 {names}。")
    emit(args, {**result.to_dict(), "staged": str(written.staged) if written.staged else None},
         f"{rollup_text(result)}\n{done}")
    return 3 if written.staged else int(validation.errors > 0)


@command
def cmd_forms(args: argparse.Namespace) -> int:
    from .forms import build_forms

    refuse_staged(args.path)  # forms prefilled from a staged copy would hand out records the master lacks
    built = build_forms(args.path, args.out, args.committee or None, with_records=args.records, force=args.force)
    label_backups(built.backups, BackupLabel("forms --force", "重新生成填报表前", "被重新生成的填报表覆盖"))
    inbox = schema.SETTINGS_BY_KEY["inbox"]
    lines = [f"已生成 {len(built.written)} 份填报表：", *(f"  {p}" for p in built.written)]
    if built.backups:
        lines.append(f"原有的 {len(built.backups)} 份已先备份到 {built.backups[0].parent}。")
    if built.kept:
        lines += [f"以下 {len(built.kept)} 份填报表已存在，未覆盖（居委会可能正在填写）：",
                  *(f"  {p}" for p in built.kept),
                  "如确需重新生成，请先确认各居委会已交回，再加 --force（原表会先备份到该文件夹的 backups 里）。"]
    if built.written:
        lines.append(f"下一步：把表发给各居委会；交回的表放进主工作簿旁的收件箱文件夹（“设置”表的“{inbox.item}”，"
                     f'默认“{inbox.default}”），再运行 healthbook consolidate "{args.path}" 汇总（或由定时任务汇总）。')
    emit(args, {"forms": [str(p) for p in built.written], "kept": [str(p) for p in built.kept],
                "backups": [str(p) for p in built.backups]}, "\n".join(lines))
    return 2 if built.kept else 0


@command
def cmd_restore(args: argparse.Namespace) -> int:
    if args.list:
        found = backup_listing(args.path)
        lines = [f"{b['name']}  {b['time']}  {b['size']:,} 字节  {listing_label(b)}".rstrip() for b in found]
        if lines:  # the newest first; each is the file as it was just before that time's write
            lines += ["每份备份是该时间那次写入之前的主工作簿（最新的在最上面）。",
                      f'恢复其中一份：healthbook restore "{args.path}" --backup 备份文件名']
        none = f"{args.path.name} 还没有备份。{other_backups_text(args.path)}"
        emit(args, {"backups": found}, "\n".join(lines) or none)
        return 0
    from .recovery import restore_master, restore_text

    bar = TextProgress() if sys.stderr.isatty() else None  # seconds on a large master: say each step
    with labelling(args.path, "restore", "恢复备份前") as note:
        done = restore_master(args.path, args.backup, stage=bar.stage if bar else None)
        note.changed = f"换成备份 {done.restored.name}"
    emit(args, done.to_dict(), restore_text(done))
    return 0


@command
def cmd_validate(args: argparse.Namespace) -> int:
    from .book.write import FileBook  # the safe writer (lock, backup, owned sheets only)

    master = FileBook(args.path)
    book = master.read()  # the writer refuses if the file changes before --mark writes
    result = validate(book.frames, book.settings, args.as_of)
    data = {"errors": result.errors, "warnings": result.warnings,
            "issues": [p.to_dict() for p in result.problems]}
    emit(args, data, report_text(result, str(args.path)))
    if args.mark:
        sheets, marks = validation_writes(result)
        with labelling(args.path, "validate --mark", "标记校验结果前") as note:
            written = master.write(sheets, marks)
            note.changed = f"写入“{sheets[0].sheet.name}”表（{len(sheets[0].rows)} 行），标记 {written.marks_applied} 个单元格"
        if not args.json and not written.parts_changed:  # marked before, nothing changed since
            print(f"“{sheets[0].sheet.name}”表和单元格标记与上次相同，未写入（无需备份）。")
        elif not args.json:
            print(f"已写入“{sheets[0].sheet.name}”表（{len(sheets[0].rows)} 行），"
                  f"标记了 {written.marks_applied} 个单元格；写入前的备份：{written.backup}")
    return 1 if result.errors else 0


def listing_label(backup: dict) -> str:
    """What ``restore --list`` says of the run a backup was made before: "汇总填报表前（consolidate）：
    3 个文件，新增 120 行" ('' for a backup nobody labelled)."""
    if not backup.get("label"):
        return ""
    changed = f"：{backup['changed']}" if backup.get("changed") else ""
    return f"{backup['label']}（{backup['run']}）{changed}"


def consolidation_changed(run: Consolidation) -> str:
    """What a consolidation changed, as a backup's label says it (also in the nightly script's)."""
    numbered = f"，为手工录入的 {len(run.numbered)} 行编号" if run.numbered else ""
    return f"{len(run.files)} 个文件，新增 {run.rows_added} 行，更新 {run.rows_updated} 条记录{numbered}"


class MonthDay(date):
    """A date typed without its year ("11月15日", as the workbook takes "6月22日"): this year's until
    the command's workbook is read, then its 年度's (``in_programme_year``)."""


def _as_of(text: str) -> date:
    reading = parse_date_text(text)
    if reading.value is not None:
        return reading.value
    reading = parse_date_text(text, date.today().year)
    if reading.value is None:
        raise argparse.ArgumentTypeError(f"无法识别日期“{text}”，请写成 2020-11-15")
    day = reading.value
    return MonthDay(day.year, day.month, day.day)


def in_programme_year(day: date, path: Path) -> date:
    """``day`` in the 年度 of the workbook at ``path`` when it was typed without a year (else as it
    is); a workbook whose 年度 cannot be read leaves it this year's (the command says what is wrong)."""
    if not isinstance(day, MonthDay):
        return day
    try:
        year = programme_year(read_workbook(path, [schema.SETTINGS]).settings)
        return date(year, day.month, day.day) if year else date(day.year, day.month, day.day)
    except (HealthbookError, ValueError):  # ValueError: 2月29日 in a 年度 without one
        return date(day.year, day.month, day.day)


@command
def cmd_consolidate(args: argparse.Namespace) -> int:
    from .consolidate import consolidate, summary_text

    bar = TextProgress() if sys.stderr.isatty() else None
    with labelling(args.path, "consolidate", "汇总填报表前") as note:
        run = consolidate(args.path, inbox=args.inbox, dry_run=args.dry_run, as_of=args.as_of, progress=bar,
                          stage=bar.stage if bar else None)
        note.changed = consolidation_changed(run)
    if bar:
        bar.close()
    emit(args, run.to_dict(), summary_text(run))
    return run.exit_status


class TextProgress:
    """A plain progress bar on stderr, drawn only when several files are processed, and a line for
    each longer step after it (the write of a large master takes seconds with no file to count)."""

    def __init__(self, width: int = 30):
        self.width = width
        self.drawn = False

    def __call__(self, done: int, total: int, name: str) -> None:
        if total < 2:
            return
        filled = self.width * done // total
        bar = "█" * filled + "·" * (self.width - filled)
        sys.stderr.write(f"\r汇总 [{bar}] {done}/{total} {name[:40]:<40}")
        sys.stderr.flush()
        self.drawn = True

    def stage(self, text: str) -> None:
        sys.stderr.write(("\n" if self.drawn else "") + text + "\n")
        sys.stderr.flush()
        self.drawn = False

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")


class ChineseParser(argparse.ArgumentParser):
    """argparse with its own words in Chinese (usage, section titles, -h, errors): staff read them."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", ChineseHelpFormatter)
        super().__init__(*args, **kwargs)
        self._positionals.title = "参数"
        self._optionals.title = "选项"
        for action in self._actions:
            if isinstance(action, argparse._HelpAction):
                action.help = "显示本帮助并退出"

    def error(self, message: str) -> NoReturn:
        for pattern, chinese in ARGPARSE_ERRORS:
            message = re.sub(pattern, chinese, message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}：错误：{message}\n")


class ChineseHelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None) -> None:
        super().add_usage(usage, actions, groups, "用法：" if prefix is None else prefix)


# argparse's error messages (Python 3.9–3.13), in the order they nest.
ARGPARSE_ERRORS = [
    (r"the following arguments are required: (.*)", r"缺少必需的参数：\1"),
    (r"unrecognized arguments: (.*)", r"无法识别的参数：\1"),
    (r"argument (\S+): ", r"参数 \1："),
    (r"invalid choice: (.*?) \(choose from (.*)\)", r"无效的选择 \1（可选：\2）"),
    (r"expected one argument", "需要一个值"),
    (r"expected at least one argument", "至少需要一个值"),
    (r"ignored explicit argument (.*)", r"不接受值 \1"),
    (r"invalid (\S+) value: (.*)", r"无效的值 \2"),
    (r"not allowed with argument (.*)", r"不能与参数 \1 同时使用"),
]


def workbook_command(sub, name: str, help: str, description: str,
                     path_help: str = "主工作簿路径") -> argparse.ArgumentParser:
    """A command over one workbook: every one takes PATH and --json (the output options, once)."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("path", type=Path, metavar="工作簿", help=path_help)
    p.add_argument("--json", action="store_true", help="以 JSON 输出结果")
    return p


def notice_options(p: argparse.ArgumentParser) -> None:
    """The options every command that renders notices takes (notices, report)."""
    p.add_argument("--out", type=Path, metavar="文件夹", help="输出文件夹（默认：设置中的“通知输出文件夹”，在工作簿旁）")
    p.add_argument("--as-of", type=_as_of, metavar="日期", help="统计截止日期，如 2020-11-15，或 11月15日（按“设置”的年度）；默认今天")
    p.add_argument("--templates", type=Path, metavar="文件夹", help="本单位修改过的模板所在文件夹（优先于设置）")
    p.add_argument("--pdf", action="store_true", help="同时用 LibreOffice 转成 PDF")


def build_parser() -> argparse.ArgumentParser:
    parser = ChineseParser(
        prog="healthbook",
        description="健康街道试点工作台账：校验、汇总进度、生成通报和通知。",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")

    p = workbook_command(sub, "report", help="一键生成报告：校验、汇总、写回工作簿、生成全部通知",
                       description="一键生成报告（与 Excel 中的按钮相同）：校验并标记问题单元格，汇总进度写入输出表，"
                                   "生成全部通知，打印摘要。")
    notice_options(p)

    p = workbook_command(sub, "consolidate", help="把收件箱里的填报表汇总进主工作簿",
                       description="读取收件箱中各居委会的填报表，校验后按记录编号并入主工作簿的台账"
                                   "（新增、更新并记入变更记录，不删除），归档或退回每个文件并生成回执。"
                                   "主工作簿正被打开时暂存结果、保留收件箱，退出码 3。")
    p.add_argument("--inbox", type=Path, metavar="文件夹", help="收件箱文件夹（默认取“设置”表，相对主工作簿）")
    p.add_argument("--dry-run", action="store_true", help="只检查和预演，不写主工作簿、不移动文件")
    p.add_argument("--as-of", type=_as_of, default=None, metavar="日期",
                   help="校验和进度统计的截止日期，如 2020-11-15，或 11月15日（按“设置”的年度）；默认今天")

    p = workbook_command(sub, "validate", help="校验工作簿的填写",
                       description="校验主工作簿：必填、类型、可选值、编号唯一、引用、设置和合理性；"
                                   "按工作表列出错误和警告。有错误时退出码为 1。")
    p.add_argument("--as-of", type=_as_of, default=None, metavar="日期",
                   help="按哪一天判断“晚于统计截止日期”的日期（默认今天），如 2020-11-15，或 11月15日（按“设置”的年度）")
    p.add_argument("--mark", action="store_true",
                   help=f"把结果写入“{schema.ISSUES.name}”表，并在出错的单元格上标色加批注（先清除上次的标记）")

    p = workbook_command(sub, "forms", help="为各居委会生成填报表",
                       description="按主工作簿的居委会和项目，为每个居委会生成一份填报表"
                                   "（填报表-编号-名称.xlsx，含下拉列表、输入提示和填报说明）。")
    p.add_argument("--out", type=Path, required=True, metavar="文件夹", help="填报表输出文件夹")
    p.add_argument("--committee", action="extend", nargs="+", metavar="编号",
                   help="只生成这些居委会的填报表，如 --committee C01 C02")
    p.add_argument("--records", action="store_true",
                   help="预先填入各居委会已汇总的记录（带记录编号）：改正后提交即按编号更新，不会重复添加")
    p.add_argument("--force", action="store_true",
                   help="覆盖文件夹中已有的同名填报表（原表先备份到该文件夹的 backups 里）；不加时已有的不覆盖")

    p = workbook_command(sub, "notices", help="生成进度通报、催办通知、会议通知和工作简报（Word 和网页）",
                       description="按模板生成通知（Word 和网页），并在输出文件夹写目录 index.html；不改动工作簿。")
    notice_options(p)
    p.add_argument("--kind", nargs="+", action="extend", metavar="种类", help="只生成这些种类：进度通报 催办通知 会议通知 工作简报")
    p.add_argument("--issue", type=int, metavar="期号", help="工作简报的期号（默认最新一期）")
    p.add_argument("--meeting", metavar="编号", help="只生成这个会议编号的会议通知，如 M02")

    p = workbook_command(sub, "rollup", help="汇总进度，写入居委会进度、项目进度、单位进度",
                       description="校验台账并按居委会、项目、责任单位和类别汇总进度，"
                                   "写入“居委会进度”“项目进度”“单位进度”三张表（有错误的台账行不计入，记为待核实）。")
    p.add_argument("--as-of", type=_as_of, default=None, metavar="日期",
                   help="截至日期（如 2020-11-15，或 11月15日：按“设置”的年度），默认今天；晚于此日期的台账不计入")

    p = workbook_command(sub, "restore", help="从备份恢复主工作簿",
                       description="用 backups 文件夹中的备份恢复主工作簿（默认最新一份）；恢复前先备份当前文件。")
    p.add_argument("--list", action="store_true", help="列出可用的备份（最新在前），不恢复")
    p.add_argument("--backup", metavar="备份文件名", help="要恢复的备份文件名（见 --list）")

    p = workbook_command(sub, "init", path_help="新工作簿路径（.xlsx 或 .xlsm）", help="新建主工作簿（默认含演示数据）",
                       description="新建主工作簿：全部工作表、表头、下拉列表和说明；默认含演示数据。")
    p.add_argument("--force", action="store_true", help="已存在时覆盖（先备份原文件）")
    p.add_argument("--empty", action="store_true", help="开始真正使用时选它：只含本街道的项目、居委会名单和设置（目标值、截止日期、联系人等待填写），"
                        "台账、会议、简报稿件都为空；不加时含演示数据")

    p = workbook_command(sub, "info", help="概述工作簿内容", description="读取主工作簿，概述其中的项目、居委会和台账。")

    p = sub.add_parser("serve", help="（可选）以 xlwings Server 协议提供宏，供 Office.js 加载项调用",
                       description="以 xlwings Server 协议提供 validate/rollup/notices/report 宏：POST 工作簿 JSON，"
                                   "返回要在 Excel 中执行的动作。默认只监听本机。")
    p.add_argument("--host", default="127.0.0.1", metavar="地址", help="监听地址（默认 127.0.0.1，仅本机）")
    p.add_argument("--port", type=int, default=8000, metavar="端口", help="端口（默认 8000）")
    p.add_argument("--token", metavar="令牌", help="共享令牌（默认取环境变量 HEALTHBOOK_TOKEN，都没有时随机生成并显示）")
    p.add_argument("--base", type=Path, metavar="文件夹", help="相对的通知输出文件夹以此为起点（默认当前文件夹）")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``healthbook`` console script; returns the exit status."""
    _utf8_stdout()
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # here, not at exit: a reader gone (| head) is found inside the try
    except BrokenPipeError:
        # The reader stopped reading (healthbook ... | head -1): nothing more to say to it. Python
        # would try stdout again at exit and print a traceback; point it at devnull instead.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "as_of", None) is not None:
            args.as_of = in_programme_year(args.as_of, args.path)
        return COMMANDS[args.command](args)
    except HealthbookError as err:
        print(f"错误：{err}", file=sys.stderr)
        return err.exit_code


BROKEN_PIPE = 141  # what a shell reports for a command its pipe's reader closed (128 + SIGPIPE)


def _utf8_stdout() -> None:
    # Windows consoles default to a legacy code page; Chinese must not crash the print.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")


if __name__ == "__main__":
    sys.exit(main())
