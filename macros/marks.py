"""Problems → what a writer writes: the 校验结果 sheet and the marks on offending cells.

Shared by ``healthbook validate --mark``, the one-click report and the Excel macro, so every
output shows the same list. Pure: no file is touched here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from xlsxwriter.utility import xl_col_to_name

from . import schema
from .book.write_types import Mark, SheetWrite
from .problems import Problem, Validation

# How many problems the readable report lists per sheet (the sheet and --json list all).
REPORT_LIMIT = 100


def cell_address(sheet: str, row: int, column: str | None,
                 headers: dict[str, list[str]] | None = None) -> str:
    """An in-workbook link target such as ``'台账'!B5`` (column A when the column is unknown).

    ``headers`` maps a sheet to its header cells as they sit in the file (index 0 = column A);
    without it the contract's column order is assumed (as ``healthbook init`` builds them).
    """
    order = (headers or {}).get(sheet)
    if order is None:
        contract = schema.SHEETS_BY_NAME.get(sheet)
        order = contract.headers if contract else []
    index = order.index(column) if column in order else 0
    quoted = sheet.replace("'", "''")
    return f"'{quoted}'!{xl_col_to_name(index)}{row}"


def headers_of(validation: Validation) -> dict[str, list[str]]:
    """Header positions recorded by the reader (``frame.attrs["headers"]``), per sheet."""
    return {name: frame.attrs["headers"] for name, frame in validation.frames.items()
            if "headers" in frame.attrs}


def issues_sheet(problems: list[Problem], headers: dict[str, list[str]] | None = None,
                 when: datetime | None = None) -> SheetWrite:
    """The 校验结果 sheet: one row per problem, its level coloured, its row linked to the cell."""
    rows, fills, links = [], {}, {}
    for i, problem in enumerate(problems):
        # Staff read the 问题类型 in the 代码 column; ``--json`` keeps the English code.
        rows.append({**problem.to_dict(), "code": problem.kind})
        fills[(i, "level")] = problem.level
        if problem.row:
            links[(i, "row")] = cell_address(problem.sheet, problem.row, problem.column, headers)
    errors = sum(p.is_error for p in problems)
    stamp = (when or datetime.now()).strftime("%Y-%m-%d %H:%M")
    note = f"校验于 {stamp}：错误 {errors} 个，警告 {len(problems) - errors} 个。点击行号可跳到出错的单元格。"
    return SheetWrite(schema.ISSUES, rows, note=note, fills=fills, links=links)


def cell_marks(problems: Iterable[Problem]) -> list[Mark]:
    """One mark per offending cell: the worst level, and every message on that cell."""
    cells: dict[tuple[str, int, str], list[Problem]] = {}
    for problem in problems:
        if problem.row and problem.column:
            cells.setdefault((problem.sheet, problem.row, problem.column), []).append(problem)
    marks = []
    for (sheet, row, column), found in cells.items():
        level = schema.LEVEL_ERROR if any(p.is_error for p in found) else schema.LEVEL_WARNING
        lines = [f"【{p.level}】{p.message}" + (f"（{p.suggestion}）" if p.suggestion else "")
                 for p in found]
        marks.append(Mark(sheet, row, column, level, "\n".join(lines)))
    return marks


def validation_writes(validation: Validation,
                      when: datetime | None = None) -> tuple[list[SheetWrite], list[Mark]]:
    """Everything ``--mark`` writes: ``([校验结果], marks)`` for ``FileBook``/``LiveBook.write``."""
    headers = headers_of(validation)
    return [issues_sheet(validation.problems, headers, when)], cell_marks(validation.problems)


def report_text(validation: Validation, source: str = "", limit: int = REPORT_LIMIT) -> str:
    """The readable Chinese report: a summary, then each sheet's problems, errors first."""
    problems = validation.problems
    lines = [f"工作簿：{source}"] if source else []
    if not problems:
        lines.append("校验通过：没有发现错误或警告。")
        return "\n".join(lines)
    verdict = "有错误需要改正" if validation.errors else "没有错误"
    lines.append(f"{schema.ISSUES.name}：错误 {validation.errors} 个，警告 {validation.warnings} 个（{verdict}）。")
    by_sheet: dict[str, list[Problem]] = {}
    for problem in problems:
        by_sheet.setdefault(problem.sheet, []).append(problem)
    for sheet, found in by_sheet.items():
        errors = sum(p.is_error for p in found)
        lines.append("")
        lines.append(f"【{sheet}】错误 {errors} 个，警告 {len(found) - errors} 个")
        ordered = sorted(found, key=lambda p: (not p.is_error, p.row or 0))
        for p in ordered[:limit]:
            where = f"第 {p.row} 行" if p.row else "整表"
            if p.column:
                where += f"“{p.column}”"
            if p.key:
                where += f"（{p.key}）"
            hint = f" → {p.suggestion}" if p.suggestion else ""
            lines.append(f"  {p.level}  {where}：{p.message}{hint}")
        if len(ordered) > limit:
            lines.append(f"  ……另有 {len(ordered) - limit} 个问题未列出；加 --mark 写入“{schema.ISSUES.name}”表，"
                         "或加 --json 查看全部。")
    return "\n".join(lines)
