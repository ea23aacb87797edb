"""Build a new master workbook from the contract with xlsxwriter.

xlsxwriter (not openpyxl) because it writes what staff rely on and openpyxl round-trips badly:
data validations with input messages, defined names, and a VBA project for .xlsm.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from importlib import resources
from pathlib import Path

import xlsxwriter
from xlsxwriter.utility import xl_col_to_name

from .. import schema
from ..demo import DEMO_NAME_NOTE
from ..errors import FileExists, UnsupportedSuffix
from .backup import backup_file

HEADER_STYLE = {
    "bold": True, "font_color": "#FFFFFF", "bg_color": "#2E7D32", "border": 1,
    "align": "center", "valign": "vcenter", "text_wrap": True,
}
OUTPUT_HEADER_STYLE = {**HEADER_STYLE, "bg_color": "#546E7A"}
FONT = {"font_name": "等线", "font_size": 11}
VALIDATION_RANGES = {"date": "date", "integer": "integer", "number": "decimal"}
SUFFIXES = (".xlsx", ".xlsm")
GUIDE_TEXT_WIDTH = 90
# The quickstart VBA's SampleCall runs `import <workbook stem>; <workbook stem>.main()`.
REPORT_BUTTON = {"macro": "SampleCall", "caption": "一键生成报告", "width": 160, "height": 40}
# xlwings.conf sheet (read by the VBA from A1 down: key, value); column C explains each row.
XLWINGS_CONF: tuple[tuple[str, object, str], ...] = (
    ("Interpreter_Win", "python",
     "Windows 上运行的 Python。主工作簿各电脑共用，这里要对每台电脑都适用：保留 python 则用 PATH 中的 Python；"
     r"或写带环境变量的路径，如 %LOCALAPPDATA%\Programs\Python\Python312\pythonw.exe（按打开工作簿的人展开）。"
     r"不要填某一个人的路径（C:\Users\<用户名>\…），其他电脑上会找不到。"),
    ("Interpreter_Mac", "", "Mac 上 python 的完整路径（Windows 不用填）。"),
    ("PYTHONPATH", "", "（可选）额外的模块搜索路径；本工作簿所在文件夹已自动加入。"),
    ("Conda Path", "", "（可选）使用 Anaconda 时填其安装目录，如 C:\\ProgramData\\Anaconda3。"),
    ("Conda Env", "", "（可选）Anaconda 环境名，如 base。"),
    ("UDF Modules", "", "不使用，保持为空。"),
    ("Debug UDFs", False, "不使用，保持 FALSE。"),
    ("Use UDF Server", False, "保持 FALSE。"),
    ("Show Console", False, "排查问题时可改为 TRUE，运行时显示命令行窗口。"),
)


def xlwings_vba_project() -> bytes:
    """The VBA project of xlwings' standalone quickstart workbook (no add-in needed)."""
    xlsm = resources.files("xlwings").joinpath("quickstart_standalone.xlsm").read_bytes()
    with zipfile.ZipFile(io.BytesIO(xlsm)) as zf:
        return zf.read("xl/vbaProject.bin")


def build_workbook(
    path: Path | str,
    rows: dict[str, list[dict]] | None = None,
    *,
    force: bool = False,
) -> Path | None:
    """Write a new master workbook at ``path`` with every contract sheet.

    ``rows`` maps sheet name to rows keyed by column key (see ``macros.demo``); sheets not in it
    get only their header. Refuses to overwrite unless ``force``, which first backs the file up.
    Returns the backup's path when one was made.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UnsupportedSuffix(path)
    backup = None
    if path.exists():
        if not force:
            raise FileExists(path)
        backup = backup_file(path)
    rows = rows or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building")
    workbook = new_workbook(tmp)
    try:
        if path.suffix.lower() == ".xlsm":
            workbook.add_vba_project(io.BytesIO(xlwings_vba_project()), is_stream=True)
            workbook.set_vba_name("ThisWorkbook")
        SheetBuilder(workbook, macros=path.suffix.lower() == ".xlsm").build(rows)
    finally:
        workbook.close()
    tmp.replace(path)
    return backup


def new_workbook(path: Path | str) -> xlsxwriter.Workbook:
    """An xlsxwriter workbook that keeps text as text (never a formula or a link)."""
    return xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})


def fixed_lists() -> dict[str, tuple[str, ...]]:
    """The contract's fixed dropdown lists, by defined name."""
    return {ln.name: ln.values for ln in schema.LIST_NAMES if ln.values}


class SheetBuilder:
    """Writes contract sheets with xlsxwriter; shared by the master builder and the forms."""

    def __init__(self, workbook: xlsxwriter.Workbook, macros: bool = False):
        self.wb = workbook
        self.macros = macros
        self.formats: dict[tuple, object] = {}

    def fmt(self, **props) -> object:
        key = tuple(sorted(props.items()))
        if key not in self.formats:
            self.formats[key] = self.wb.add_format({**FONT, **props})
        return self.formats[key]

    def build(self, rows: dict[str, list[dict]]) -> None:
        for sheet in schema.SHEETS:
            if sheet.role == "guide":
                self.guide(sheet, rows)
            elif sheet.role == "lists":
                self.lists(sheet)
            else:
                self.table(sheet, rows.get(sheet.name, []))
        self.defined_names()
        if self.macros:
            self.xlwings_conf()

    def xlwings_conf(self) -> None:
        ws = self.wb.add_worksheet(schema.XLWINGS_CONF_SHEET)
        ws.set_column(0, 0, 16)
        ws.set_column(1, 1, 40)
        ws.set_column(2, 2, 90, self.fmt(text_wrap=True))
        for r, (key, value, help_text) in enumerate(XLWINGS_CONF):
            ws.write_string(r, 0, key)
            if isinstance(value, bool):
                ws.write_boolean(r, 1, value)
            else:
                ws.write_string(r, 1, value)
            ws.write_string(r, 2, help_text)
        ws.write_string(len(XLWINGS_CONF) + 1, 0, "说明：这些是 xlwings 的设置（按钮运行 Python 时读取），"
                        "设置须从 A1 起连续排列、不要插入空行；详见 workbook/README.md。",
                        self.fmt(italic=True))
        ws.set_tab_color("#90A4AE")

    def table(self, sheet: schema.Sheet, data: list[dict], columns: tuple[schema.Column, ...] | None = None,
              input_rows: int | None = None):
        """One sheet: styled header, widths and formats, ``data`` rows, validations; returns it."""
        ws = self.wb.add_worksheet(sheet.name)
        columns = columns or sheet.columns
        header_style = OUTPUT_HEADER_STYLE if sheet.role == "output" else HEADER_STYLE
        ws.set_row(0, 30)
        ws.freeze_panes(1, 1 if sheet.role == "ledger" else 0)
        ws.set_paper(9)
        ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        for c, col in enumerate(columns):
            cell_format = self.fmt(num_format=col.number_format) if col.number_format else self.fmt()
            ws.set_column(c, c, col.width, cell_format)
            ws.write_string(0, c, col.header, self.fmt(**header_style))
            for r, row in enumerate(data, start=1):
                self.write_cell(ws, r, c, row.get(col.key), cell_format)
        if sheet.role == "output":
            ws.set_tab_color("#90A4AE")
            ws.write_string(0, len(columns) + 1, sheet.description, self.fmt(italic=True))
            return ws
        self.validations(ws, columns, max(sheet.input_rows if input_rows is None else input_rows, len(data)))
        return ws

    def write_cell(self, ws, r: int, c: int, value, cell_format) -> None:
        if value is None or value == "":
            return
        if isinstance(value, (date, datetime)):
            ws.write_datetime(r, c, value, cell_format)
        elif isinstance(value, (int, float)):
            ws.write_number(r, c, value, cell_format)
        else:
            # Text stays text: never let "=..." become a formula.
            ws.write_string(r, c, str(value), cell_format)

    def validations(self, ws, columns: tuple[schema.Column, ...], last_row: int) -> None:
        if last_row <= 0:
            return
        for c, col in enumerate(columns):
            rule = validation_rule(col)
            if rule:
                ws.data_validation(1, c, last_row, c, rule)

    def lists(self, sheet: schema.Sheet, lists: dict[str, tuple[str, ...]] | None = None) -> None:
        """The hidden list sheet: one column per list, each under a defined name of its own."""
        lists = fixed_lists() if lists is None else lists
        ws = self.wb.add_worksheet(sheet.name)
        for c, (name, values) in enumerate(lists.items()):
            ws.set_column(c, c, sheet.columns[0].width)
            ws.write_string(0, c, name, self.fmt(**HEADER_STYLE))
            for r, value in enumerate(values, start=1):
                ws.write_string(r, c, value)
            column = xl_col_to_name(c)
            self.wb.define_name(
                name, f"='{sheet.name}'!${column}$2:${column}${max(2, len(values) + 1)}"
            )
        ws.hide()

    def defined_names(self) -> None:
        for list_name in schema.LIST_NAMES:
            if list_name.values:
                continue
            source = schema.sheet(list_name.sheet)
            column = xl_col_to_name(source.keys.index(list_name.column))
            # Grows with the sheet: as many cells as there are non-blank codes below the header.
            self.wb.define_name(
                list_name.name,
                f"=OFFSET('{source.name}'!${column}$2,0,0,"
                f"MAX(1,COUNTA('{source.name}'!${column}:${column})-1),1)",
            )

    def guide(self, sheet: schema.Sheet, rows: dict[str, list[dict]]) -> None:
        ws = self.wb.add_worksheet(sheet.name)
        ws.set_column(0, 0, 18)
        ws.set_column(1, 1, GUIDE_TEXT_WIDTH, self.fmt(text_wrap=True, valign="top"))
        settings = {r["item"]: r["value"] for r in rows.get(schema.SETTINGS.name, [])}
        street = settings.get(schema.SETTINGS_BY_KEY["street"].item) or ""
        pilot = settings.get(schema.SETTINGS_BY_KEY["pilot_name"].item) or "健康街道试点"
        title = f"{street}{pilot}工作台账（主工作簿）"
        ws.set_row(0, 30)
        ws.merge_range(0, 0, 0, 1, title, self.fmt(bold=True, font_size=16, font_color="#2E7D32"))
        r = 2
        for heading, text in guide_sections(rows):
            ws.write_string(r, 0, heading, self.fmt(bold=True, valign="top"))
            ws.write_string(r, 1, text, self.fmt(text_wrap=True, valign="top"))
            # xlsxwriter cannot autofit: size the row for the wrapped text (CJK = 2 width units).
            ws.set_row(r, 16 * max(1, -(-_display_width(text) // (GUIDE_TEXT_WIDTH - 4))))
            r += 1
        if self.macros:
            # Top left, in the blank row under the title: the first thing staff see.
            ws.set_row(1, 36)
            ws.insert_button(1, 0, {**REPORT_BUTTON, "x_offset": 4, "y_offset": 4})
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        ws.activate()


def validation_rule(col: schema.Column) -> dict | None:
    """xlsxwriter data validation for a column: dropdown from its defined name, or a range check."""
    message = {"input_title": col.header[:32], "input_message": col.help[:255]} if col.help else {}
    if col.list_name:
        allowed = "、".join(col.choices) if col.choices else f"“{col.list_name}”中的值"
        return {
            "validate": "list", "source": f"={col.list_name}", **message,
            "error_title": f"{col.header}无效"[:32],
            "error_message": f"请从下拉列表选择{col.header}（{allowed}）。"[:255],
            "error_type": "stop",
        }
    kind = VALIDATION_RANGES.get(col.type)
    if kind == "date":
        return {
            "validate": "date", "criteria": "between", "minimum": date(2000, 1, 1),
            "maximum": date(2100, 12, 31), **message,
            "error_title": "日期格式", "error_type": "warning",
            "error_message": f"{col.header}应为日期，如 2020-06-22。仍要保留可点“是”，校验时会提示。",
        }
    if kind:
        return {
            "validate": kind, "criteria": ">=", "value": 0, **message,
            "error_title": "数字格式", "error_type": "warning",
            "error_message": f"{col.header}应为不小于 0 的{'整数' if kind == 'integer' else '数字'}。"
                             "仍要保留可点“是”，校验时会提示。",
        }
    if message:
        return {"validate": "any", **message}
    return None


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def guide_sections(rows: dict[str, list[dict]]) -> list[tuple[str, str]]:
    """The 说明 sheet's text: one (heading, paragraph) per section, derived from the contract."""
    sections = [
        ("这是什么", "本工作簿是健康街道试点建设的主工作簿（唯一数据来源）。各居委会的工作台账、"
                    "项目和目标都记在这里；校验、进度汇总和通知生成由 healthbook 自动完成。"),
        ("一键生成报告", "点击本页的“一键生成报告”按钮（或运行 healthbook report 主工作簿路径），"
                      "依次完成：检查填写是否正确（有问题的单元格标色并加批注）、按居委会/项目/责任单位"
                      "汇总进度、生成进度通报、催办通知、会议通知和工作简报。"),
    ]
    for sheet in schema.SHEETS:
        if sheet.role in ("config", "ledger"):
            sections.append((f"“{sheet.name}”表", f"{sheet.description}"
                             f"列：{'、'.join(sheet.headers)}。"))
    # 变更记录 is the one output sheet never rewritten: rows are only added at its end.
    rewritten = "、".join(f"“{s.name}”" for s in schema.OUTPUT_SHEETS if s is not schema.CHANGES)
    sections += [
        ("自动生成的表", f"{rewritten}由程序每次运行时重写；“{schema.CHANGES.name}”只在末尾追加"
                      "（自动编号和汇总填报表时新增、修改的每一行），原有的行不改动。这些表请不要手工修改。"),
        ("填写要点", "日期写成 2020-06-22（写成“6月22日”等也能识别，但会提示）；数量填数字；"
                   "编号、类别、状态等请从下拉列表选择；台账的记录编号可留空，系统自动编号；"
                   "不要改动表头（列的顺序可以调整，可以在右侧增加自己的列）。"),
        ("安全", "程序只会改写台账和自动生成的表，写入前会自动备份到 backups 文件夹；"
               "工作簿在 Excel 中打开时程序不会写入，会暂存结果、稍后重试。"),
    ]
    committees = rows.get(schema.COMMITTEES.name, [])
    if any(c.get("note") == DEMO_NAME_NOTE for c in committees):
        sections.append(("示例数据", "本工作簿含演示数据：项目及责任单位、6月22日工作会议和简报稿件"
                                   "取自街道2020年6月工作简报；除新福康里居委会外，居委会名称为示例名称，"
                                   "台账数据为演示生成。healthbook init --empty 可新建不含台账的工作簿。"))
    return sections
