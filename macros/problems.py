"""Validation results as data: the validator returns them; CLI, workbook marks and receipts render them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from . import schema

# 问题类型: each problem code's short Chinese name, written once. Staff read these (the 校验结果
# sheet's 代码 column); ``--json`` keeps the English codes, which machines read. Every code the
# validator, the normaliser and consolidation can produce is here (tests/test_problem_kinds.py
# finds them in the source).
KINDS: dict[str, str] = {
    # reading a value (macros/normalise.py)
    "bad_date": "日期无法识别",
    "bad_number": "数字无法识别",
    "approximate": "约数按整数计",
    "normalised": "按规范写法读取",
    # the contract's rules (macros/validate.py)
    "required": "必填未填",
    "bad_choice": "不在可选项内",
    "not_integer": "应为整数",
    "negative": "不应为负数",
    "duplicate_key": "编号重复",
    "bad_record_id": "记录编号格式不对",
    "record_id_committee": "记录编号与居委会不符",
    "unknown_project": "项目编号不存在",
    "unknown_committee": "居委会编号不存在",
    "unknown_record": "关联记录不存在",
    "caption_without_picture": "图片说明没有图片",
    "empty_unit": "责任单位有空项",
    "unit_twin": "责任单位写法相近",
    "zero_target": "目标值为0",
    "outside_year": "不在试点年度内",
    "unknown_setting": "不认识的设置项",
    "bad_setting": "设置值无法使用",
    "missing_year": "年度未填",
    "threshold_order": "滞后阈值大小颠倒",
    "year_mismatch": "统计日期不在年度内",
    "year_ended": "试点年度已过",
    "blank_setting": "设置未填",
    "no_projects": "项目表为空",
    "targets_exceed": "目标合计超过项目目标",
    "no_target_share": "没有分到目标",

    "future_date": "日期晚于统计截止日期",
    "done_without_quantity": "已完成但无数量",
    "participants_implausible": "参与人数异常",
    "short_activity": "活动内容过简",
    "quantity_above_target": "数量超过全年目标",
    "probable_duplicate": "疑似重复录入",
    # a submission form (macros/consolidate.py)
    "not_a_workbook": "不是可读的工作簿",
    "structure": "表格结构不符",
    "empty": "表中没有记录",
    "committee": "无法确定居委会",
    "wrong_committee": "混有其他居委会的记录",
    "wrong_form": "不是本居委会的填报表",
    "committee_name": "居委会名称不符",
    "record_of_other_committee": "记录属于其他居委会",
    "another_record": "编号已属另一条记录",
    "repeated_record_id": "记录编号重复",
    "formula_text": "按文字保存",
    "formula_cell": "填的是公式",
    "error_value": "单元格显示错误值",
    "header_read_as": "表头按近似列名读取",
    "sheet_read_as": "读取了其他工作表",
    "column_not_merged": "多出的列未汇总",
    "totals_row": "合计行未汇总",
    "key_cleared": "记录编号被清空",
    "overrode": "同批另一份表已改过",
    "record_removed": "记录已被街道删除",
    "master_kept": "以主工作簿为准",
    "resent_kept": "重交旧值未采用",
    "conflict": "与街道的修改冲突",
    "cleared_kept": "清空未采用",
    "removed_from_form": "预填记录被删去",
    "probable_resend": "疑似重复提交",
    "skipped": "未处理的文件",
    "subfolder": "收件箱中的文件夹未处理",
    "other_master": "另一主工作簿的填报表",
    "not_moved": "文件未能移走",
    "receipt_not_written": "回执未写入",
    "sample": "示例",
}
OTHER_KIND = "其他"


def kind_name(code: str) -> str:
    """The 问题类型 staff read for ``code`` (``KINDS``)."""
    return KINDS.get(code, OTHER_KIND)


@dataclass(frozen=True)
class Problem:
    """One finding: where it is, how bad, and what to do (Chinese)."""

    sheet: str
    row: int | None
    column: str | None
    key: str | None
    level: str
    code: str
    message: str
    suggestion: str = ""

    @property
    def kind(self) -> str:
        """问题类型: the code's Chinese name, what staff read in its place."""
        return kind_name(self.code)

    @property
    def is_error(self) -> bool:
        return self.level == schema.LEVEL_ERROR

    def to_dict(self) -> dict:
        """Exactly the keys of ``healthbook validate --json``."""
        return asdict(self)


@dataclass
class Validation:
    """Normalised frames and every problem found in them."""

    frames: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(p.is_error for p in self.problems)

    @property
    def warnings(self) -> int:
        return len(self.problems) - self.errors

    def error_rows(self, sheet_name: str) -> set[int]:
        """Excel row numbers of ``sheet_name`` that carry at least one error."""
        return {p.row for p in self.problems if p.is_error and p.sheet == sheet_name and p.row}
