"""The workbook contract, written once.

Every sheet and column name in healthbook comes from here: the builder, the readers, the
validator, the forms, the writers and the tests all derive from these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

ColumnType = Literal["text", "integer", "number", "date", "choice"]
# A 设置 value's type. "fraction": a share such as a 滞后 threshold (0.15, "15%"; a bare 15 is points).
SettingType = Literal["text", "integer", "number", "fraction"]
SheetRole = Literal["config", "ledger", "output", "guide", "lists", "form"]

CATEGORIES: tuple[str, ...] = ("健康社会类", "健康人群类", "健康服务类")
STATUSES: tuple[str, ...] = ("未开始", "进行中", "已完成", "延期")
YES_NO: tuple[str, ...] = ("是", "否")
LEVEL_ERROR = "错误"
LEVEL_WARNING = "警告"
UNIT_SEPARATOR = "、"
MANUAL_SOURCE = "手工"


@dataclass(frozen=True)
class Column:
    """One column: its Chinese header (what staff see) and English key (what code uses)."""

    key: str
    header: str
    type: ColumnType = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    # Name of the workbook-level defined name that feeds this column's dropdown.
    list_name: str | None = None
    width: int = 12
    help: str = ""
    number_format: str | None = None


@dataclass(frozen=True)
class Sheet:
    """One sheet of the contract."""

    name: str
    role: SheetRole
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    optional: bool = False
    description: str = ""
    # Row count the builder prepares dropdowns and formats for (staff append below).
    input_rows: int = 2000

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.columns]

    @property
    def required_columns(self) -> list[Column]:
        return [c for c in self.columns if c.required]

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(f"{self.name} has no column {key!r}")

    def header_of(self, key: str) -> str:
        return self.column(key).header

    def by_header(self) -> dict[str, Column]:
        return {c.header: c for c in self.columns}


@dataclass(frozen=True)
class ListName:
    """A defined name that a dropdown takes its values from."""

    name: str
    # Either fixed values (kept on the hidden list sheet) or a column of a config sheet.
    values: tuple[str, ...] = ()
    sheet: str | None = None
    column: str | None = None


# Defined names: dropdowns reference these, never another sheet directly (see DESIGN.md).
LIST_CATEGORIES = ListName("类别列表", values=CATEGORIES)
LIST_STATUSES = ListName("状态列表", values=STATUSES)
LIST_YES_NO = ListName("是否列表", values=YES_NO)
LIST_PROJECT_IDS = ListName("项目编号列表", sheet="项目", column="project_id")
LIST_COMMITTEE_IDS = ListName("居委会编号列表", sheet="居委会", column="committee_id")
LIST_NAMES: tuple[ListName, ...] = (
    LIST_CATEGORIES,
    LIST_STATUSES,
    LIST_YES_NO,
    LIST_PROJECT_IDS,
    LIST_COMMITTEE_IDS,
)

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
INTEGER_FORMAT = "#,##0"
NUMBER_FORMAT = "#,##0.##"
PERCENT_FORMAT = "0.0%"
# Progress cells keep the raw fraction (1.25 = 125 %) but show at most 100.0 % (Excel and LibreOffice
# both honour the condition section).
PERCENT_CAPPED_FORMAT = '[>1]"100.0%";0.0%'

# Traffic light of the roll-ups, best first; the thresholds are the 设置 items 滞后阈值 / 严重滞后阈值.
PROGRESS_OK = "正常"
PROGRESS_LAG = "滞后"
PROGRESS_SEVERE = "严重滞后"
PROGRESS_STATUSES: tuple[str, ...] = (PROGRESS_OK, PROGRESS_LAG, PROGRESS_SEVERE)
DONE_STATUS = "已完成"


def _project_id(**kw) -> Column:
    return Column(
        "project_id", "项目编号", required=True, list_name=LIST_PROJECT_IDS.name, width=10,
        help="从下拉列表选择项目编号（见“项目”表），如 P01。", **kw,
    )


def _committee_id(**kw) -> Column:
    return Column(
        "committee_id", "居委会编号", required=True, list_name=LIST_COMMITTEE_IDS.name, width=11,
        help="从下拉列表选择居委会编号（见“居委会”表），如 C01。", **kw,
    )


PROJECTS = Sheet(
    "项目",
    "config",
    (
        Column("project_id", "项目编号", required=True, width=10, help="唯一编号，如 P01。"),
        Column("category", "类别", "choice", True, CATEGORIES, LIST_CATEGORIES.name, 12,
               "从下拉列表选择：健康社会类、健康人群类或健康服务类。"),
        Column("name", "项目名称", required=True, width=30),
        Column("units", "责任单位", required=True, width=36,
               help="多个单位用顿号“、”分隔，如：发展办、社区卫生服务中心。"),
        Column("indicator", "指标", width=24, help="衡量进度的指标，如：健康干预服务人次。"),
        Column("indicator_unit", "指标单位", width=9, help="如：人次、场、个。"),
        Column("target", "目标值", "number", True, width=10, help="全街道全年目标，填数字。",
               number_format=NUMBER_FORMAT),
        Column("deadline", "截止日期", "date", True, width=12, help="填日期，如 2020-12-31。",
               number_format=DATE_FORMAT),
    ),
    key=("project_id",),
    description="试点项目及其责任单位、指标和目标。",
    input_rows=200,
)

COMMITTEES = Sheet(
    "居委会",
    "config",
    (
        Column("committee_id", "居委会编号", required=True, width=11, help="唯一编号，如 C01。"),
        Column("name", "居委会名称", required=True, width=18),
        Column("contact", "联系人", width=10),
        Column("phone", "联系电话", width=14),
        Column("email", "电子邮箱", width=24),
        Column("pilot", "试点", "choice", False, YES_NO, LIST_YES_NO.name, 6,
               "是否为健康居委会试点：是 / 否。"),
        Column("note", "备注", width=24),
    ),
    key=("committee_id",),
    description="各居委会及其联系人。",
    input_rows=200,
)

TARGETS = Sheet(
    "目标",
    "config",
    (
        _project_id(),
        _committee_id(),
        Column("target", "目标值", "number", True, width=10, help="该居委会在该项目上的目标，填数字。",
               number_format=NUMBER_FORMAT),
    ),
    key=("project_id", "committee_id"),
    optional=True,
    description="（可选）分居委会的目标；未填的项目按全街道目标值分摊。",
    input_rows=1000,
)

MEETINGS = Sheet(
    "会议",
    "config",
    (
        Column("meeting_id", "会议编号", required=True, width=10, help="唯一编号，如 M01。"),
        Column("name", "会议名称", required=True, width=36),
        Column("date", "日期", "date", True, width=12, number_format=DATE_FORMAT),
        Column("start_time", "开始时间", width=10, help="如 14:00。"),
        Column("place", "地点", width=24),
        Column("chair", "主持人", width=20),
        Column("attendees", "参会人员", width=40),
        Column("agenda", "议程", width=40, help="多项议程用分号“；”分隔。"),
        Column("contact", "联系人", width=10),
        Column("phone", "联系电话", width=14),
        Column("issuer", "发文单位", width=20),
    ),
    key=("meeting_id",),
    description="需要发会议通知的会议。",
    input_rows=200,
)

SETTINGS = Sheet(
    "设置",
    "config",
    (
        Column("item", "设置项", required=True, width=18),
        Column("value", "值", width=36),
        Column("help", "说明", width=50),
    ),
    key=("item",),
    description="每行一项设置。",
    input_rows=0,
)

ARTICLES = Sheet(
    "简报稿件",
    "config",
    (
        Column("article_id", "稿件编号", required=True, width=10, help="唯一编号，如 A01。"),
        Column("issue", "期号", "integer", True, width=6, help="该稿件编入第几期简报，填数字。",
               number_format="0"),
        Column("title", "标题", required=True, width=36),
        Column("body", "正文", required=True, width=60, help="段落之间换行（Alt+Enter）。"),
        Column("source_unit", "供稿单位", width=12, help="如：街道发展办。"),
        Column("caption", "图片说明", width=24),
        Column("record_ids", "关联记录编号", width=16, help="相关台账记录编号，多个用顿号分隔。"),
        Column("image", "图片文件", width=20, help="（可选）图片相对本工作簿的路径。"),
    ),
    key=("article_id",),
    description="工作简报的稿件。",
    input_rows=500,
)

LEDGER = Sheet(
    "台账",
    "ledger",
    (
        Column("record_id", "记录编号", width=12,
               help="如 C01-0007；新行可留空，系统按居委会自动编号。"),
        Column("date", "日期", "date", True, width=12, help="活动日期，如 2020-06-22。",
               number_format=DATE_FORMAT),
        _committee_id(),
        _project_id(),
        Column("activity", "活动内容", required=True, width=40, help="简要写明做了什么。"),
        Column("participants", "参与人数", "integer", width=9, help="填整数。",
               number_format=INTEGER_FORMAT),
        Column("quantity", "完成数量", "number", True, width=9,
               help="按项目指标单位计的完成量，填数字。", number_format=NUMBER_FORMAT),
        Column("status", "状态", "choice", True, STATUSES, LIST_STATUSES.name, 8,
               "未开始 / 进行中 / 已完成 / 延期。"),
        Column("reporter", "填报人", width=10),
        Column("in_bulletin", "入简报", "choice", False, YES_NO, LIST_YES_NO.name, 7,
               "是否建议编入工作简报：是 / 否。"),
        Column("note", "备注", width=24),
        Column("source", "来源", width=24, help="手工录入填“手工”；汇总时写入来源文件名。"),
    ),
    key=("record_id",),
    description="各居委会的工作台账，人工录入或由填报表汇总而来。",
    input_rows=5000,
)
# Ledger rows alike in all of these are probably one activity entered twice (the validator warns;
# consolidation names a row sent again without its 记录编号).
LIKELY_DUPLICATE_KEYS: tuple[str, ...] = ("committee_id", "project_id", "date", "activity")

ISSUES = Sheet(
    "校验结果",
    "output",
    (
        Column("sheet", "工作表", width=10),
        Column("row", "行号", "integer", width=6),
        Column("column", "列名", width=12),
        Column("key", "记录编号", width=12),
        Column("level", "级别", width=6),
        Column("code", "代码", width=16),
        Column("message", "问题", width=50),
        Column("suggestion", "建议", width=40),
    ),
    description="每次校验自动重写，请勿手工修改。",
)

COMMITTEE_PROGRESS = Sheet(
    "居委会进度",
    "output",
    (
        Column("committee_id", "居委会编号", width=11),
        Column("committee_name", "居委会名称", width=16),
        Column("entries", "台账条数", "integer", width=9),
        Column("last_report", "最近填报日期", "date", width=13, number_format=DATE_FORMAT),
        Column("days_since_report", "未填报天数", "integer", width=10),
        Column("target", "目标合计", "number", width=10, number_format=NUMBER_FORMAT),
        Column("achieved", "完成合计", "number", width=10, number_format=NUMBER_FORMAT),
        Column("percent", "完成率", "number", width=9, number_format=PERCENT_CAPPED_FORMAT),
        Column("overdue", "逾期事项", "integer", width=9),
        Column("unverified", "待核实", "integer", width=8),
        Column("status", "进度状态", width=10),
    ),
    description="每次汇总自动重写，请勿手工修改。",
)

PROJECT_PROGRESS = Sheet(
    "项目进度",
    "output",
    (
        Column("project_id", "项目编号", width=10),
        Column("category", "类别", width=12),
        Column("name", "项目名称", width=30),
        Column("units", "责任单位", width=36),
        Column("target", "目标值", "number", width=10, number_format=NUMBER_FORMAT),
        Column("achieved", "完成数量", "number", width=10, number_format=NUMBER_FORMAT),
        Column("percent", "完成率", "number", width=9, number_format=PERCENT_CAPPED_FORMAT),
        Column("committees_reported", "已填报居委会数", "integer", width=14),
        Column("deadline", "截止日期", "date", width=12, number_format=DATE_FORMAT),
        Column("overdue", "是否逾期", width=9),
        Column("overdue_committees", "逾期居委会数", "integer", width=12),
        Column("unverified", "待核实", "integer", width=8),
        Column("status", "进度状态", width=10),
    ),
    description="每次汇总自动重写，请勿手工修改。",
)

UNIT_PROGRESS = Sheet(
    "单位进度",
    "output",
    (
        Column("unit", "责任单位", width=20),
        Column("projects", "牵头项目数", "integer", width=11),
        Column("project_names", "项目", width=50),
        Column("average_percent", "平均完成率", "number", width=11, number_format=PERCENT_CAPPED_FORMAT),
        Column("overdue", "逾期项目数", "integer", width=11),
        Column("status", "进度状态", width=10),
    ),
    description="每次汇总自动重写，请勿手工修改。",
)

# The per-category block written below the units on 单位进度 (after one blank row, under its own
# header row). Not a sheet of its own: its columns sit in UNIT_PROGRESS's columns, position by position.
CATEGORY_BLOCK = Sheet(
    "类别进度",
    "output",
    (
        Column("category", "类别", width=20),
        Column("projects", "项目数", "integer", width=11),
        *UNIT_PROGRESS.columns[2:],  # the same totals as a unit's, in the same positions
    ),
    description="写在“单位进度”表下方的分类汇总。",
)

CHANGES = Sheet(
    "变更记录",
    "output",
    (
        Column("time", "时间", width=18, number_format=DATETIME_FORMAT),
        Column("source", "来源文件", width=30),
        Column("record_id", "记录编号", width=12),
        Column("action", "操作", width=8),
        Column("column", "列名", width=12),
        Column("old", "原值", width=24),
        Column("new", "新值", width=24),
    ),
    description="汇总填报表时新增或修改的每一行，自动追加，请勿手工修改。",
)

NOTICES = Sheet(
    "通知清单",
    "output",
    (
        Column("kind", "类别", width=10),
        Column("title", "标题", width=50),
        Column("docx", "Word 文件", width=36),
        Column("html", "网页版", width=36),
    ),
    description="每次生成报告时重写：通知文件夹中现有的各份通知，点击文件名即可打开。",
)

GUIDE = Sheet("说明", "guide", (), description="使用说明。")
LISTS = Sheet(
    "下拉列表", "lists", (Column("list", "列表", width=14),),
    description="下拉列表的固定选项（隐藏）。",
)

SHEETS: tuple[Sheet, ...] = (
    GUIDE,
    PROJECTS,
    COMMITTEES,
    TARGETS,
    LEDGER,
    MEETINGS,
    ARTICLES,
    SETTINGS,
    ISSUES,
    COMMITTEE_PROGRESS,
    PROJECT_PROGRESS,
    UNIT_PROGRESS,
    NOTICES,
    CHANGES,
    LISTS,
)
# The xlwings settings sheet of the .xlsm (xlwings' VBA looks it up by this exact name).
XLWINGS_CONF_SHEET = "xlwings.conf"
SHEETS_BY_NAME: dict[str, Sheet] = {s.name: s for s in SHEETS}
INPUT_SHEETS: tuple[Sheet, ...] = tuple(s for s in SHEETS if s.role in ("config", "ledger"))
OUTPUT_SHEETS: tuple[Sheet, ...] = tuple(s for s in SHEETS if s.role == "output")
# Sheets the macros may rewrite; every other part of the workbook is never touched.
OWNED_SHEETS: tuple[Sheet, ...] = (LEDGER, *OUTPUT_SHEETS)


# Submission forms (填报表): a guide, the ledger's columns, the lists and a hidden info sheet.
FORM_VERSION = "1"
FORM_GUIDE = Sheet("填报说明", "guide", (), description="填报表的填写说明。")
FORM_INFO = Sheet(
    "表单信息",
    "form",
    (
        Column("item", "项目", required=True, width=14),
        Column("value", "值", width=30),
    ),
    optional=True,
    description="本填报表属于哪个居委会、哪个版本（隐藏，请勿修改）。",
)
# FORM_INFO items: what consolidation reads back (the committee) and what people may want to know.
FORM_INFO_ITEMS: dict[str, str] = {
    "committee_id": "居委会编号",
    "committee_name": "居委会名称",
    "version": "表单版本",
    "created": "生成时间",
    "master": "主工作簿",
}
# Ledger columns a form carries: 来源 is written by consolidation, not by the committee.
FORM_LEDGER_COLUMNS: tuple[Column, ...] = tuple(c for c in LEDGER.columns if c.key != "source")
# A form prefilled with the committee's records keeps the values they were given, hidden: only
# what the committee edits is applied (the office's later corrections in the master stay).
FORM_BASE = Sheet(
    "原始记录",
    "form",
    tuple(replace(c, required=False, choices=(), list_name=None, help="") for c in FORM_LEDGER_COLUMNS),
    optional=True,
    description="预填记录生成时的原值（隐藏，请勿修改）：汇总时只采用居委会改动过的内容。",
)
# Rows of a form prepared with dropdowns and input messages.
FORM_INPUT_ROWS = 1000


@dataclass(frozen=True)
class Setting:
    """One row of the 设置 sheet."""

    key: str
    item: str  # the 设置项 text staff see
    default: str = ""
    help: str = ""
    type: SettingType = "text"


SETTING_ITEMS: tuple[Setting, ...] = (
    Setting("street", "街道名称", "", "街道全称。"),
    Setting("pilot_name", "试点名称", "", "如：上海市健康街道试点。"),
    Setting("year", "年度", "", "试点年度，如 2020；用于补全只写了月日的日期。", "integer"),
    Setting("issuer", "发文机关", "", "通报、通知的发文机关标志。"),
    Setting("doc_prefix", "发文字号前缀", "", "如“石二街道”，生成“石二街道〔2020〕3号”。"),
    Setting("doc_number", "发文序号", "1", "下一批通知的起始序号：进度通报用它，催办通知用下一个，会议通知依次往后。不会自动增加，通知正式发出后请改为下一个未用的序号。", "integer"),
    Setting("bulletin_name", "简报名称", "", "工作简报的报头名称。"),
    Setting("contact", "联系人", "", "通知落款的联系人。"),
    Setting("phone", "联系电话", "", "通知落款的联系电话。"),
    Setting("lag_threshold", "滞后阈值", "0.15",
            "完成率低于按时间应完成比例多少（0.15 即 15 个百分点）视为滞后。", "fraction"),
    Setting("severe_lag_threshold", "严重滞后阈值", "0.30",
            "完成率低于按时间应完成比例多少视为严重滞后。", "fraction"),
    Setting("silence_days", "未填报提醒天数", "30", "超过多少天未填报台账即发催办通知。", "integer"),
    Setting("inbox", "收件箱文件夹", "收件箱", "居委会填报表放在这里（相对本工作簿）。"),
    Setting("archive", "归档文件夹", "已归档", "已汇总的填报表移到这里。"),
    Setting("rejected", "退回文件夹", "已退回", "无法汇总的填报表移到这里。"),
    Setting("receipts", "回执文件夹", "回执", "给居委会的回执。"),
    Setting("notices", "通知输出文件夹", "通知", "生成的通报、通知和简报。"),
    Setting("backups_kept", "备份保留份数", "10", "写入前自动备份，保留最近几份；此外近 30 天每天的第一份也保留。", "integer"),
    Setting("templates", "模板文件夹", "", "（可选）本单位修改过的模板所在文件夹。"),
)
SETTINGS_BY_ITEM: dict[str, Setting] = {s.item: s for s in SETTING_ITEMS}
SETTINGS_BY_KEY: dict[str, Setting] = {s.key: s for s in SETTING_ITEMS}
# Settings every notice prints (blank, they leave "关于建设工作…" and "联系人：，" behind).
NOTICE_SETTINGS = ("street", "pilot_name", "issuer", "doc_prefix", "contact", "phone")


def sheet(name: str) -> Sheet:
    """The contract sheet called ``name`` (Chinese)."""
    return SHEETS_BY_NAME[name]
