"""validate --mark: results in 校验结果, marks on the bad cells; a fixed cell is clean on the next run."""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.book.write_types import FILLS
from macros.cli import main

LEDGER = schema.LEDGER


def _sheet_part(path: Path, sheet_name: str) -> str:
    """The zip part of a sheet, found through workbook.xml and its relationships."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
    rid = re.search(rf'<sheet [^>]*name="{sheet_name}"[^>]*r:id="(rId\d+)"', book)[1]
    target = re.search(rf'<Relationship [^>]*Id="{rid}"[^>]*Target="([^"]+)"', rels)
    target = target or re.search(rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + target[1].removeprefix("/xl/").removeprefix("xl/")


def retype_cell(path: Path, sheet_name: str, ref: str, text: str) -> None:
    """What a person does in Excel: type a new value into a cell, keeping its format.

    Edits only that cell's XML (an inline string, same ``s`` style); every other part is copied.
    """
    part = _sheet_part(path, sheet_name)
    tmp = path.with_suffix(".retyped")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == part:
                xml = data.decode()
                cell = re.search(rf'<c r="{ref}"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)', xml, re.S)
                assert cell, f"{ref} not found"
                style = re.search(r'\ss="(\d+)"', cell["attrs"])
                s = f' s="{style[1]}"' if style else ""
                new = f'<c r="{ref}"{s} t="inlineStr"><is><t>{text}</t></is></c>'
                data = (xml[:cell.start()] + new + xml[cell.end():]).encode()
            dst.writestr(info, data)
    shutil.move(tmp, path)


def _fill(cell) -> str:
    rgb = cell.fill.fgColor.rgb if cell.fill and cell.fill.fill_type else None
    return str(rgb or "")[-6:].upper()


@pytest.fixture
def bad_master(tmp_path) -> tuple[Path, int, int]:
    """The demo master with two bad ledger rows appended: a wrong 状态 and an unknown 居委会编号."""
    data = demo.demo_rows()
    ledger = data[LEDGER.name]
    base = {**ledger[-1], "date": date(2020, 11, 1)}
    ledger.append({**base, "record_id": "C02-9001", "committee_id": "C02", "status": "完成"})
    ledger.append({**base, "record_id": None, "committee_id": "C3", "status": "进行中",
                   "activity": "另一次活动的内容"})
    path = tmp_path / "master.xlsx"
    build_workbook(path, data)
    return path, len(ledger), len(ledger) + 1


def test_mark_then_fix_then_mark_again_leaves_the_fixed_cell_clean(bad_master, capsys):
    path, status_row, committee_row = bad_master
    status_col = openpyxl.utils.get_column_letter(LEDGER.keys.index("status") + 1)
    committee_col = openpyxl.utils.get_column_letter(LEDGER.keys.index("committee_id") + 1)
    before = read_workbook(path)

    assert main(["validate", str(path), "--mark", "--as-of", "2020-11-15"]) == 1
    assert "写入前的备份：" in capsys.readouterr().out
    # Marked again with nothing changed: nothing written, and said so (it printed "备份：None").
    marked = path.read_bytes()
    assert main(["validate", str(path), "--mark", "--as-of", "2020-11-15"]) == 1
    again = capsys.readouterr().out
    assert "未写入" in again and "None" not in again and path.read_bytes() == marked
    wb = openpyxl.load_workbook(path)  # inspection only; never saved
    ws = wb[LEDGER.name]
    status_cell = ws[f"{status_col}{status_row}"]
    assert _fill(status_cell) == FILLS[schema.LEVEL_ERROR]
    assert status_cell.comment and "完成" in status_cell.comment.text
    assert _fill(ws[f"{committee_col}{committee_row}"]) == FILLS[schema.LEVEL_ERROR]
    issues = wb[schema.ISSUES.name]
    headers = [c.value for c in issues[1]]
    assert headers[: len(schema.ISSUES.headers)] == schema.ISSUES.headers
    listed = [(r[0], r[1], r[2]) for r in issues.iter_rows(min_row=2, max_col=3, values_only=True) if r[0]]
    assert (LEDGER.name, status_row, "状态") in listed
    assert (LEDGER.name, committee_row, "居委会编号") in listed
    i = listed.index((LEDGER.name, status_row, "状态")) + 2
    assert issues.cell(i, 2).hyperlink.location == f"'{LEDGER.name}'!{status_col}{status_row}"
    assert _fill(issues.cell(i, 5)) == FILLS[schema.LEVEL_ERROR]
    # Marking changed no value anybody typed.
    after = read_workbook(path)
    for name, frame in before.frames.items():
        assert frame.drop(columns="_row").equals(after.frames[name].drop(columns="_row")), name

    retype_cell(path, LEDGER.name, f"{status_col}{status_row}", "已完成")
    assert main(["validate", str(path), "--mark", "--as-of", "2020-11-15"]) == 1  # C3 is still wrong
    wb = openpyxl.load_workbook(path)
    ws = wb[LEDGER.name]
    fixed = ws[f"{status_col}{status_row}"]
    assert fixed.value == "已完成"
    assert _fill(fixed) not in (FILLS[schema.LEVEL_ERROR], FILLS[schema.LEVEL_WARNING])
    assert fixed.comment is None
    assert _fill(ws[f"{committee_col}{committee_row}"]) == FILLS[schema.LEVEL_ERROR]
    listed = [(r[0], r[1]) for r in wb[schema.ISSUES.name].iter_rows(min_row=2, max_col=2, values_only=True)]
    assert (LEDGER.name, status_row) not in listed and (LEDGER.name, committee_row) in listed


def test_retype_cell_changes_only_that_value(bad_master):
    """The test's own tool: a retyped cell reads back with its new value, the rest as before."""
    path, status_row, _ = bad_master
    before = read_workbook(path)[LEDGER.name]
    col = openpyxl.utils.get_column_letter(LEDGER.keys.index("status") + 1)
    retype_cell(path, LEDGER.name, f"{col}{status_row}", "已完成")
    after = read_workbook(path)[LEDGER.name]
    changed = before.compare(after)
    assert list(changed.index) == [len(before) - 2]
    assert after["status"].iloc[-2] == "已完成"


def test_mark_while_open_in_excel_reports_then_exits_3_and_leaves_the_file(bad_master, capsys):
    from .test_write_safety import excel_owner_file

    path, _status_row, _ = bad_master
    path.with_name("~$" + path.name).write_bytes(excel_owner_file("张三"))
    before = path.read_bytes()
    assert main(["validate", str(path), "--mark", "--as-of", "2020-11-15"]) == 3
    captured = capsys.readouterr()
    assert "错误 2 个" in captured.out  # the report is still shown
    assert "张三" in captured.err and path.name in captured.err
    assert path.read_bytes() == before
