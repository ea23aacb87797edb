"""The Python side of healthbook.xlsm: its button runs ``main()`` (xlwings' quickstart convention).

The button **一键生成报告** calls the VBA macro ``SampleCall``, which runs
``import healthbook; healthbook.main()`` with this folder on the Python path. Keep this file beside
the workbook and both names ASCII. Buttons for the separate steps: see ``healthbook.bas``.
"""

import xlwings as xw

from macros import excel


def main():
    """一键生成报告: validate, mark, roll up and render the notices."""
    excel.report(xw.Book.caller())


def validate():
    """只校验：重写“校验结果”并标出有问题的单元格。"""
    excel.validate(xw.Book.caller())


def rollup():
    """校验并汇总进度。"""
    excel.rollup(xw.Book.caller())


def notices():
    """只生成通知。"""
    excel.notices(xw.Book.caller())
