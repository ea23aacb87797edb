"""Per-committee submission forms (填报表), built with xlsxwriter from the contract and the master.

A form is a standalone file: its dropdown lists (项目编号 copied from the master, 状态, 是否, and the
one committee) live on its own hidden list sheet under the contract's defined names, and a hidden
info sheet names the committee and the form version so consolidation knows whose form it is.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from . import schema
from .book.backup import BackupFolderUnusable, backup_file
from .book.build import HEADER_STYLE, SheetBuilder, fixed_lists, new_workbook
from .book.read import Workbook, read_workbook, records
from .errors import HealthbookError
from .normalise import code_text

FORM_PREFIX = "填报表"
# Characters Windows, macOS or a zip tool refuse in a file name.
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


class UnknownCommittee(HealthbookError):
    def __init__(self, master: Path | str, missing: list[str]):
        sheet = schema.COMMITTEES.name
        super().__init__(
            f"{Path(master).name} 的“{sheet}”表中没有居委会编号 {'、'.join(missing)}。"
            f"请检查编号，或先在“{sheet}”表中添加。"
        )


def safe_name(text: str, limit: int = 60) -> str:
    """``text`` usable as a file name part on every system: unsafe characters become '_'."""
    text = unicodedata.normalize("NFKC", str(text)).strip()
    text = _UNSAFE.sub("_", text).strip(" .")
    return text[:limit] or "_"


def form_filename(committee_id: str, committee_name: str) -> str:
    """``填报表-<编号>-<名称>.xlsx`` with both parts sanitised."""
    return f"{FORM_PREFIX}-{safe_name(committee_id)}-{safe_name(committee_name)}.xlsx"


@dataclass(frozen=True)
class FormInfo:
    """What a form's hidden info sheet says."""

    committee_id: str
    committee_name: str
    version: str = schema.FORM_VERSION
    master: str = ""  # the file name of the master it was made from


class FormsNotReplaced(HealthbookError):
    """``--force``: a form could not be copied to backups/ first, so it and those after it stay."""

    def __init__(self, path: Path, written: list[Path], cause: BackupFolderUnusable):
        done = "、".join(p.name for p in written)
        super().__init__(
            f"无法先把 {path.name} 备份到 {cause.folder}（{cause.reason}），为免丢失居委会填写的内容，"
            f"它和其后的填报表都未重新生成。" + (f"已重新生成：{done}（原表已备份）。" if written else "")
            + "请检查该文件夹（backups 应是可写入的文件夹）后重试。")


@dataclass
class FormsBuilt:
    """What ``build_forms`` did: the forms written, and those already there."""

    written: list[Path]
    kept: list[Path]  # already in the folder, left as they were (a committee may be filling it in)
    backups: list[Path]  # with ``force``: copies of the forms replaced, made first


def build_forms(
    master: Path | str,
    out_dir: Path | str,
    committees: list[str] | None = None,
    now: datetime | None = None,
    with_records: bool = False,
    force: bool = False,
) -> FormsBuilt:
    """Write one form per committee of ``master`` (or only ``committees``) into ``out_dir``.

    ``with_records``: each form holds its committee's records already in the ledger, with their
    记录编号, so corrections sent back update those records instead of adding them again.
    A form already in ``out_dir`` is kept as it is (forms often sit in a shared folder where the
    committees fill them in); ``force`` replaces it after copying it into ``out_dir``/backups."""
    book = read_workbook(master)
    known = [
        (str(cid), str(name or cid))
        for cid, name in zip(book[schema.COMMITTEES.name]["committee_id"],
                             book[schema.COMMITTEES.name]["name"])
        if cid is not None
    ]
    if committees:
        wanted = {code_text(c) for c in committees}  # "c01" and "C 01" are C01, as the validator reads them
        missing = sorted(wanted - {code_text(cid) for cid, _ in known})
        if missing:
            raise UnknownCommittee(master, missing)
        known = [(cid, name) for cid, name in known if code_text(cid) in wanted]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now()
    records_of: dict[str, list[dict]] = {}
    if with_records:
        for row in records(book[schema.LEDGER.name]):
            records_of.setdefault(code_text(row.get("committee_id")), []).append(row)
    built = FormsBuilt([], [], [])
    for cid, name in known:
        path = out_dir / form_filename(cid, name)
        if path.exists():
            if not force:
                built.kept.append(path)
                continue
            try:
                built.backups.append(backup_file(path))
            except BackupFolderUnusable as exc:  # its message speaks of the master: say what happened here
                raise FormsNotReplaced(path, built.written, exc) from exc
        built.written.append(build_form(book, cid, name, path, now,
                                        records_of.get(code_text(cid), []) if with_records else None))
    return built


def build_form(book: Workbook, committee_id: str, committee_name: str, path: Path,
               now: datetime, rows: list[dict] | None = None) -> Path:
    """One committee's form at ``path`` (written to a temporary name, then moved into place).

    ``rows`` (keyed by column key) are written first, e.g. the committee's records to correct.
    Blank rows stay blank (no prefilled 居委会编号): the column's dropdown offers only this
    committee, and consolidation fills a blank one from the hidden info sheet.
    """
    projects = book[schema.PROJECTS.name]
    project_ids = tuple(str(p) for p in projects["project_id"] if p is not None)
    lists = {
        **fixed_lists(),
        schema.LIST_PROJECT_IDS.name: project_ids,
        schema.LIST_COMMITTEE_IDS.name: (committee_id,),
    }
    tmp = path.with_name(f".{path.name}.building")
    workbook = new_workbook(tmp)
    try:
        builder = SheetBuilder(workbook)
        filled = [{**r, "committee_id": committee_id} for r in rows or []]
        _guide(builder, book, committee_id, committee_name, filled if rows is not None else None, now)
        ws = builder.table(schema.LEDGER, filled, form_columns(committee_id),
                           input_rows=len(filled) + schema.FORM_INPUT_ROWS)  # blank rows below the records
        ws.activate()
        builder.lists(schema.LISTS, lists)
        given = [r for r in filled if r.get("record_id") is not None]
        if given:  # the values the records were given: consolidation applies only the committee's edits
            builder.table(schema.FORM_BASE, given, input_rows=0).hide()
        info = builder.table(schema.FORM_INFO, [
            {"item": schema.FORM_INFO_ITEMS["committee_id"], "value": committee_id},
            {"item": schema.FORM_INFO_ITEMS["committee_name"], "value": committee_name},
            {"item": schema.FORM_INFO_ITEMS["version"], "value": schema.FORM_VERSION},
            {"item": schema.FORM_INFO_ITEMS["created"], "value": now.strftime("%Y-%m-%d %H:%M")},
            {"item": schema.FORM_INFO_ITEMS["master"], "value": Path(book.path).name},
        ])
        info.hide()
    finally:
        workbook.close()
    tmp.replace(path)
    return path


def form_columns(committee_id: str) -> tuple[schema.Column, ...]:
    """The form's 台账 columns, their help (input messages, 填报说明) told for this committee: the
    master's help points to its 居委会/项目 sheets and to C01, which a form has not."""
    helps = {
        "record_id": f"如 {committee_id}-0007（见回执）；新行留空，汇总时自动编号。",
        "committee_id": f"填 {committee_id}（下拉列表中只有它），也可以留空，汇总时自动填上。",
        "project_id": f"从下拉列表选择项目编号，如 P01；各项目名称见“{schema.FORM_GUIDE.name}”表末尾。",
    }
    return tuple(replace(c, help=helps[c.key]) if c.key in helps else c for c in schema.FORM_LEDGER_COLUMNS)


GUIDE_TEXT_WIDTH = 90  # column B of 填报说明, in Excel's character units
LINE_HEIGHT = 15.75  # points per line of 11-point text


def wrapped_height(text: str, width: float = GUIDE_TEXT_WIDTH) -> float:
    """The row height that shows all of ``text`` wrapped in a column ``width`` wide. Neither Excel
    nor LibreOffice grows a row for wrapped text in a file they did not save: without it, only
    the first line of each paragraph shows. A Chinese character takes two units."""
    units = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return LINE_HEIGHT * max(1, math.ceil(units / (width - 2)))


def _guide(builder: SheetBuilder, book: Workbook, committee_id: str, committee_name: str,
           prefilled: list[dict] | None = None, now: datetime | None = None) -> None:
    ws = builder.wb.add_worksheet(schema.FORM_GUIDE.name)
    ws.set_column(0, 0, 16)
    ws.set_column(1, 1, GUIDE_TEXT_WIDTH)
    ws.set_paper(9)  # A4, one page wide: printed, the guide is read as a page
    ws.fit_to_pages(1, 0)
    settings = book.settings
    title = f"{settings.get('street') or ''}{settings.get('pilot_name') or '健康街道试点'}工作台账填报表"
    bold = builder.fmt(bold=True, valign="top")
    wrap = builder.fmt(text_wrap=True, valign="top")
    ws.write_string(0, 0, title, builder.fmt(bold=True, font_size=16, font_color="#2E7D32"))
    ws.write_string(1, 0, f"填报单位：{committee_name}（{committee_id}）", builder.fmt(bold=True))
    if prefilled is not None and now is not None:
        key = schema.LEDGER.header_of("record_id")
        ws.write_string(2, 0, "已填入的记录", builder.fmt(bold=True, valign="top", font_color="#C62828"))
        text = (f"“{schema.LEDGER.name}”表已填入截至 {now:%Y-%m-%d} 已汇总的本居委会记录 {len(prefilled)} 条"
                f"（带{key}）。改正这些行、在下方空行添加新记录后整份提交即可：只有您改动过的内容按{key}更新，"
                "没改的行不会重复添加，街道此后在主工作簿中的修改也不会被表中的旧值覆盖。请不要改动或删除已有的记录编号。")
        ws.write_string(2, 1, text, builder.fmt(bold=True, text_wrap=True, valign="top", font_color="#C62828"))
        ws.set_row(2, wrapped_height(text))
    r = 3
    for heading, text in form_guide_sections(book, committee_id, committee_name):
        ws.write_string(r, 0, heading, bold)
        ws.write_string(r, 1, text, wrap)
        ws.set_row(r, wrapped_height(text))
        r += 1
    r += 1
    ws.write_string(r, 0, "各列说明", builder.fmt(**HEADER_STYLE))
    ws.write_string(r, 1, "怎么填", builder.fmt(**HEADER_STYLE))
    for col in form_columns(committee_id):
        r += 1
        need = "（必填）" if col.required else "（选填）"
        ws.write_string(r, 0, col.header, bold)
        ws.write_string(r, 1, f"{need}{col.help}", wrap)
        ws.set_row(r, wrapped_height(f"{need}{col.help}"))
    r += 2
    ws.write_string(r, 0, "项目编号", builder.fmt(**HEADER_STYLE))
    ws.write_string(r, 1, "项目名称（完成数量按指标单位填写）", builder.fmt(**HEADER_STYLE))
    projects = book[schema.PROJECTS.name]
    for pid, name, unit in zip(projects["project_id"], projects["name"], projects["indicator_unit"]):
        if pid is None:
            continue
        r += 1
        ws.write_string(r, 0, str(pid), bold)
        ws.write_string(r, 1, f"{name or ''}（单位：{unit or '—'}）", wrap)


def form_guide_sections(book: Workbook, committee_id: str, committee_name: str) -> list[tuple[str, str]]:
    """The 填报说明 text: (heading, paragraph) pairs."""
    settings = book.settings
    contact = settings.get("contact") or "街道发展办"
    phone = settings.get("phone") or ""
    inbox = settings.get("inbox") or schema.SETTINGS_BY_KEY["inbox"].default
    ledger = schema.LEDGER.name
    return [
        ("这是什么", f"这是{committee_name}的工作台账填报表。请在“{ledger}”表中每行填写一次活动，"
                    "街道会定时把填报表汇总进主工作簿，并给您回执。"),
        ("新增记录", f"在“{ledger}”表的空行中填写。“记录编号”留空，汇总时系统按居委会自动编号"
                    f"（如 {committee_id}-0001），回执中会列出分配的编号。请不要自己编号；复制已有的行来填新记录时，"
                    "请清空复制出的记录编号，否则这几行都不会汇总。"),
        ("修改已报记录", "保留原来的“记录编号”（见回执），改正其他列后重新提交；汇总时按记录编号更新，"
                      "每处修改都会记入变更记录。没填记录编号的行会作为新记录再加一次。"
                      "也可以向街道索取已填好本居委会记录和编号的填报表，在上面改正。"
                      "已报记录不会因为没有再次提交而被删除。"),
        ("填写要点", f"“居委会编号”只能填 {committee_id}，也可以留空（汇总时自动填上）；项目编号、状态、入简报请从下拉列表选择；"
                   "日期写成 2020-06-22；参与人数、完成数量填数字。不要改动表头，可以在右侧增加自己的列"
                   "（汇总时不会读取）。请直接填写数值和文字，不要用公式；以“=”等开头的内容会按文字保存。"),
        ("提交", f"保存为 .xlsx 文件（不要另存为 .xls 或 .csv），放入街道共享的“{inbox}”文件夹，"
               f"或发送给{contact}{('（' + str(phone) + '）') if phone else ''}。"),
        ("回执", "每份填报表汇总后都会生成回执：新增、更新、未变化的条数，以及每个问题所在的行、列和改法。"
               "有问题的行不会汇总，请按回执改正后重新提交。"),
    ]


def read_form_info(frame) -> FormInfo | None:
    """The committee a form belongs to, from its hidden info sheet (a frame, or a dict of columns
    keyed by column key); None when absent."""
    if frame is None or len(frame) == 0 or "item" not in frame or "value" not in frame:
        return None
    values = {str(k): v for k, v in zip(frame["item"], frame["value"]) if k is not None}
    committee = values.get(schema.FORM_INFO_ITEMS["committee_id"])
    if committee is None:
        return None
    return FormInfo(
        committee_id=str(committee).strip(),
        committee_name=str(values.get(schema.FORM_INFO_ITEMS["committee_name"]) or ""),
        version=str(values.get(schema.FORM_INFO_ITEMS["version"]) or ""),
        master=str(values.get(schema.FORM_INFO_ITEMS["master"]) or "").strip(),
    )
