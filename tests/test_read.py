"""The readers: tolerant of header whitespace and column order, clear Chinese errors otherwise."""

from __future__ import annotations

from datetime import date, datetime

import openpyxl
import pytest

from macros import schema
from macros.book.read import read_workbook
from macros.cli import main
from macros.errors import MissingColumns, MissingSheet, NotAWorkbook, WorkbookNotFound
from macros.forms import build_form


def _rewrite_header(path, sheet_name, old, new):
    # openpyxl is fine here: these fixtures are plain test workbooks, not a decorated master.
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet_name]
    for cell in ws[1]:
        if cell.value == old:
            cell.value = new
    wb.save(path)


def test_header_whitespace_and_column_order_are_tolerated(tmp_path):
    path = tmp_path / "hand.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = schema.LEDGER.name
    ws.append(["台账（手工填写）"])  # a title row above the header
    ws.append([])
    ws.append([" 项目编号", "活动内容\u3000", "自己加的列", "日 期", "居委会编号", "完成数量", "状态"])
    ws.append(["P01", "健康讲座", "随便", date(2020, 6, 22), "C01", 12.0, "进行中"])
    ws.append([None] * 7)
    ws.append(["P02", "上门理发", None, "6月28日", "C02", "800余次", "进行中"])
    for sheet in schema.INPUT_SHEETS:
        if sheet is not schema.LEDGER:
            wb.create_sheet(sheet.name).append(sheet.headers)
    wb.save(path)

    ledger = read_workbook(path)[schema.LEDGER.name]
    assert list(ledger.columns) == [*schema.LEDGER.keys, "自己加的列", "_row"]
    assert ledger["_row"].tolist() == [4, 6]
    assert ledger["project_id"].tolist() == ["P01", "P02"]
    assert ledger["quantity"].tolist() == [12, "800余次"]
    assert ledger["date"].tolist()[1] == "6月28日"
    assert ledger["record_id"].isna().all()
    assert ledger["自己加的列"].tolist() == ["随便", None]


def test_renamed_header_names_file_sheet_and_column(master_copy):
    _rewrite_header(master_copy, schema.LEDGER.name, "完成数量", "完成量")
    with pytest.raises(MissingColumns) as err:
        read_workbook(master_copy)
    message = str(err.value)
    assert master_copy.name in message and "台账" in message and "完成数量" in message


def test_missing_sheet_is_a_chinese_error(master_copy):
    wb = openpyxl.load_workbook(master_copy)
    del wb[schema.COMMITTEES.name]
    wb.save(master_copy)
    with pytest.raises(MissingSheet) as err:
        read_workbook(master_copy)
    assert "缺少工作表“居委会”" in str(err.value) and master_copy.name in str(err.value)
    assert "工作簿里有一张" not in str(err.value)  # 居委会进度 is a sheet of the contract, not a look-alike


def test_a_missing_sheet_names_its_look_alike(master_copy):
    """台帐 is the common variant of 台账: "缺少工作表“台账”" alone sent the clerk looking (walk3)."""
    wb = openpyxl.load_workbook(master_copy)
    wb[schema.LEDGER.name].title = "台帐"
    wb.save(master_copy)
    with pytest.raises(MissingSheet) as err:
        read_workbook(master_copy)
    assert "工作簿里有一张“台帐”，如果就是它，请把表名改为“台账”" in str(err.value)


def test_optional_sheet_may_be_missing(master_copy):
    wb = openpyxl.load_workbook(master_copy)
    del wb[schema.TARGETS.name]
    wb.save(master_copy)
    assert read_workbook(master_copy)[schema.TARGETS.name].empty


def test_cli_reports_missing_header_with_exit_2_and_no_traceback(master_copy, capsys):
    _rewrite_header(master_copy, schema.PROJECTS.name, "责任单位", "负责单位")
    assert main(["info", str(master_copy)]) == 2
    err = capsys.readouterr().err
    assert "责任单位" in err and "项目" in err and "Traceback" not in err


def test_not_a_workbook_and_missing_file(tmp_path):
    fake = tmp_path / "fake.xlsx"
    fake.write_text("名称,数量\n", encoding="utf-8")
    with pytest.raises(NotAWorkbook):
        read_workbook(fake)
    with pytest.raises(WorkbookNotFound):
        read_workbook(tmp_path / "nope.xlsx")


def test_a_form_or_a_folder_given_for_the_master_is_named_for_what_it_is(master_copy, tmp_path, capsys):
    """A committee's 填报表 named as the master was "缺少工作表“项目”。请恢复该工作表", inviting the
    user to add a 项目 sheet to a form; a folder was "找不到工作簿", though it is right there."""
    form = tmp_path / "填报表-C01.xlsx"
    book = read_workbook(master_copy)
    build_form(book, "C01", "新福康里居委会", form, datetime(2020, 11, 20, 9, 0), [])
    for command in ("report", "consolidate", "validate"):
        assert main([command, str(form)]) == 2
        err = capsys.readouterr().err
        assert "是居委会填报表，不是主工作簿" in err and "收件箱" in err and "请恢复" not in err, command
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} 是一个文件夹，不是工作簿" in err and "找不到" not in err


def test_a_sheet_name_with_a_stray_space_is_still_the_contract_sheet(master_copy):
    from macros.book.write import FileBook
    from macros.book.write_types import SheetWrite

    wb = openpyxl.load_workbook(master_copy)
    wb[schema.LEDGER.name].title = f"{schema.LEDGER.name} "
    wb.save(master_copy)
    book = read_workbook(master_copy)
    assert len(book[schema.LEDGER.name]) > 300
    rows = book[schema.LEDGER.name].to_dict("records")
    rows[0]["note"] = "已核对"
    FileBook(master_copy).write([SheetWrite(schema.LEDGER, rows)])
    names = openpyxl.load_workbook(master_copy).sheetnames
    assert f"{schema.LEDGER.name} " in names and schema.LEDGER.name not in names, "no second 台账 added"
    assert read_workbook(master_copy)[schema.LEDGER.name]["note"].iloc[0] == "已核对"


def test_records_are_the_rows_as_pandas_gives_them(master_copy):
    import math

    import pandas as pd

    from macros.book.read import records

    frames = dict(read_workbook(master_copy).frames)
    # and a frame with the dtypes pandas infers elsewhere: ints, floats with NaN, dates, objects
    frames["mixed"] = pd.DataFrame({"n": [1, 2, 3], "x": [1.5, float("nan"), 2.0],
                                    "t": pd.to_datetime(["2020-06-22", None, "2020-07-01"]),
                                    "o": ["甲", None, 3]})
    for name, frame in frames.items():
        got, want = records(frame), frame.to_dict("records")
        assert len(got) == len(want) and len(got) > 0, name
        for a, b in zip(got, want):
            assert a.keys() == b.keys(), name
            for k in a:
                same = a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) \
                    or (a[k] is pd.NaT and b[k] is pd.NaT)
                assert same and type(a[k]) is type(b[k]), (name, k, a[k], b[k])


def test_the_command_line_speaks_chinese(capsys):
    # argparse's own words (usage, section titles, -h, its errors) are translated for staff.
    with pytest.raises(SystemExit) as exit_info:
        main(["consolidate", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("用法：healthbook consolidate") and "显示本帮助并退出" in out and "工作簿" in out
    assert not any(word in out for word in ("usage", "positional arguments", "options:", "show this help"))
    for argv, expected in ((["consolidate"], "缺少必需的参数：工作簿"), (["汇总"], "无效的选择 '汇总'"),
                           (["consolidate", "x.xlsx", "--bogus"], "无法识别的参数：--bogus"),
                           (["forms", "x.xlsx", "--out"], "参数 --out：需要一个值")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and expected in err and "错误：" in err, err
        assert "error" not in err and "required" not in err
