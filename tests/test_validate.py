"""Every rule and every normalisation: a real workbook with planted values, each giving one exact problem."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import main
from macros.marks import cell_address, cell_marks, issues_sheet, report_text, validation_writes
from macros.problems import KINDS
from macros.validate import validate

E, W = schema.LEVEL_ERROR, schema.LEVEL_WARNING
AS_OF = date(2020, 11, 15)
LEDGER, PROJECTS, COMMITTEES, TARGETS = schema.LEDGER, schema.PROJECTS, schema.COMMITTEES, schema.TARGETS
BASE = {
    "date": date(2020, 6, 10), "committee_id": "C02", "project_id": "P02",
    "activity": "社区康复指导活动", "participants": 20, "quantity": 5, "status": "进行中",
    "reporter": "陈佳", "in_bulletin": "否", "note": None, "source": schema.MANUAL_SOURCE,
}

# label → (overrides of BASE, the header of the cell, expected {code: level} on that cell)
PLANTED: dict[str, tuple[dict, str, dict[str, str]]] = {
    # dates typed as text or numbers
    "date_cn": ({"date": "2020年6月22日"}, "日期", {"normalised": W}),
    "date_dots": ({"date": "2020.6.22"}, "日期", {"normalised": W}),
    "date_slashes": ({"date": "2020/6/22"}, "日期", {"normalised": W}),
    "date_dashes": ({"date": "2020-6-22"}, "日期", {"normalised": W}),
    "date_month_day": ({"date": "6月22日"}, "日期", {"normalised": W}),
    "date_hanzi": ({"date": "二〇二〇年六月二十二日"}, "日期", {"normalised": W}),
    "date_fullwidth": ({"date": "２０２０年６月２２日"}, "日期", {"normalised": W}),
    "date_serial": ({"date": "43999"}, "日期", {"normalised": W}),  # a serial pasted as text
    "date_6_22_cell": ({"date": 6.22}, "日期", {"normalised": W}),
    "date_iso_text": ({"date": "2020-06-22"}, "日期", {}),
    "date_with_time": ({"date": datetime(2020, 6, 22, 14, 0)}, "日期", {}),
    "date_unreadable": ({"date": "下周二"}, "日期", {"bad_date": E}),
    "date_impossible": ({"date": "2020年2月30日"}, "日期", {"bad_date": E}),
    "date_ambiguous": ({"date": 6.1}, "日期", {"bad_date": E}),
    "date_blank": ({"date": None}, "日期", {"required": E}),
    # numbers typed as text
    "num_commas": ({"quantity": "1,200"}, "完成数量", {"normalised": W}),
    "num_fullwidth": ({"quantity": "１２００"}, "完成数量", {"normalised": W}),
    "num_hanzi": ({"quantity": "三十"}, "完成数量", {"normalised": W}),
    "num_wan": ({"participants": "30万"}, "参与人数", {"normalised": W, "participants_implausible": W}),
    "num_yu": ({"quantity": "800余次"}, "完成数量", {"approximate": W}),
    "num_yue": ({"participants": "约200人"}, "参与人数", {"approximate": W}),
    "num_duo": ({"participants": "200多人"}, "参与人数", {"approximate": W}),
    "num_bad": ({"quantity": "很多"}, "完成数量", {"bad_number": E}),
    "num_fraction": ({"participants": 12.5}, "参与人数", {"not_integer": E}),
    "num_negative_int": ({"participants": -3}, "参与人数", {"negative": E}),
    "num_negative": ({"quantity": -2}, "完成数量", {"negative": W}),
    "quantity_blank": ({"quantity": None}, "完成数量", {"required": E}),
    # choices, required, codes
    "status_bad": ({"status": "完成"}, "状态", {"bad_choice": E}),
    "bulletin_bad": ({"in_bulletin": "Y"}, "入简报", {"bad_choice": E}),
    "activity_blank": ({"activity": None}, "活动内容", {"required": E}),
    "committee_unknown": ({"committee_id": "C3", "record_id": None}, "居委会编号", {"unknown_committee": E}),
    "committee_by_name": ({"committee_id": "新福康里居委会", "record_id": None}, "居委会编号",
                          {"unknown_committee": E}),
    # a well-formed code not in the list: most likely a committee not added yet
    "committee_new": ({"committee_id": "C15", "record_id": None}, "居委会编号", {"unknown_committee": E}),
    "committee_fullwidth": ({"committee_id": "Ｃ０２"}, "居委会编号", {"normalised": W}),
    "committee_lower": ({"committee_id": "c02"}, "居委会编号", {"normalised": W}),
    # "p 01" was read as "P 01", an unknown project, with the advice to type "P 01": no code holds a space
    "project_spaced": ({"project_id": "p 01"}, "项目编号", {"normalised": W}),
    "status_spaced": ({"status": "已 完成"}, "状态", {"normalised": W}),
    "project_unknown": ({"project_id": "P1"}, "项目编号", {"unknown_project": E}),
    "project_blank": ({"project_id": None}, "项目编号", {"required": E}),
    "record_dup": ({"record_id": "C02-0001"}, "记录编号", {"duplicate_key": E}),
    "record_form": ({"record_id": "C02-7"}, "记录编号", {"bad_record_id": E}),
    # a committee's 10,000th record on: 5 digits, as consolidation numbers them; not a padded 5-digit one
    "record_long": ({"record_id": "C02-10000"}, "记录编号", {}),
    "record_padded": ({"record_id": "C02-00007"}, "记录编号", {"bad_record_id": E}),
    "record_long_other": ({"record_id": "C03-10001"}, "记录编号", {"record_id_committee": E}),
    "record_other": ({"record_id": "C05-9001"}, "记录编号", {"record_id_committee": E}),
    # plausibility
    "future": ({"date": date(2021, 3, 1)}, "日期", {"future_date": W}),
    "other_year": ({"date": date(2019, 12, 1)}, "日期", {"outside_year": W}),
    "above_own_target": ({"project_id": "P06", "quantity": 600}, "完成数量", {"quantity_above_target": W}),
    "above_street_target": ({"project_id": "P03", "quantity": 50}, "完成数量", {"quantity_above_target": W}),
    "done_zero": ({"status": "已完成", "quantity": 0}, "完成数量", {"done_without_quantity": W}),
    "short_activity": ({"activity": "讲座"}, "活动内容", {"short_activity": W}),
    "crowd": ({"participants": 10**15}, "参与人数", {"participants_implausible": W}),
    "dup_first": ({"activity": "重复录入的一次活动"}, "活动内容", {}),
    "dup_second": ({"activity": "重复录入的一次活动"}, "活动内容", {"probable_duplicate": W}),
}


def _planted_rows(start_row: int) -> tuple[list[dict], dict[str, int], dict[str, str | None]]:
    rows, where, keys = [], {}, {}
    for i, (label, (overrides, _header, _expected)) in enumerate(PLANTED.items()):
        row = {**BASE, "record_id": f"C02-{9000 + i:04d}", **overrides}
        rows.append(row)
        where[label] = start_row + i
        keys[label] = row["record_id"]
    return rows, where, keys


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A demo master with the PLANTED ledger rows and broken config rows appended (real file)."""
    data = demo.demo_rows()
    ledger = data[LEDGER.name]
    rows, where, keys = _planted_rows(len(ledger) + 2)
    ledger.extend(rows)
    projects = data[PROJECTS.name]
    where["units"] = len(projects) + 2
    projects.append({**projects[0], "project_id": "P08", "units": "发展办、、服务办"})
    where["project_dup"] = len(projects) + 2
    projects.append({**projects[1]})
    where["project_cells"] = len(projects) + 2
    projects.append({**projects[2], "project_id": "P09", "category": "健康类", "target": "三千",
                     "deadline": "2020年12月31日"})
    committees = data[COMMITTEES.name]
    where["committee_row"] = len(committees) + 2
    committees.append({**committees[1], "committee_id": "C14", "name": None, "pilot": "Y"})
    targets = data[TARGETS.name]
    where["target_project"] = len(targets) + 2
    targets.append({"project_id": "P19", "committee_id": "C01", "target": 10})
    where["target_committee"] = len(targets) + 2
    targets.append({"project_id": "P01", "committee_id": "C99", "target": 10})
    where["target_dup"] = len(targets) + 2
    targets.append({"project_id": "P06", "committee_id": "C01", "target": 10})
    meetings = data[schema.MEETINGS.name]
    meetings[0] = {**meetings[0], "date": "6月22日"}
    articles = data[schema.ARTICLES.name]
    articles[0] = {**articles[0], "issue": "六", "record_ids": "C01-0001、C01-9999"}
    path = tmp_path_factory.mktemp("planted") / "planted.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    raw = copy.deepcopy(book.frames)
    result = validate(book.frames, book.settings, AS_OF)
    return {"path": path, "book": book, "raw": raw, "result": result, "where": where, "keys": keys}


def at(result, sheet: str, row: int, column: str) -> dict[str, str]:
    return {p.code: p.level for p in result.problems
            if p.sheet == sheet and p.row == row and p.column == column}


@pytest.mark.parametrize("label", list(PLANTED))
def test_planted_ledger_value_gives_exactly_its_problem(planted, label):
    _overrides, header, expected = PLANTED[label]
    row = planted["where"][label]
    assert at(planted["result"], LEDGER.name, row, header) == expected
    for p in planted["result"].problems:
        if p.sheet == LEDGER.name and p.row == row and p.column == header:
            assert p.key == planted["keys"][label]
            assert p.message and p.suggestion


def _problem(planted, sheet, row, column, code):
    found = [p for p in planted["result"].problems
             if (p.sheet, p.row, p.column, p.code) == (sheet, row, column, code)]
    assert len(found) == 1, [p for p in planted["result"].problems if p.sheet == sheet and p.row == row]
    return found[0]


def test_text_dates_are_read_as_the_date_they_name(planted):
    typed = planted["result"].frames[LEDGER.name].set_index("_row")["date"]
    for label in ("date_cn", "date_dots", "date_slashes", "date_dashes", "date_month_day", "date_hanzi",
                  "date_fullwidth", "date_6_22_cell", "date_iso_text", "date_with_time"):
        assert typed[planted["where"][label]] == pd.Timestamp(2020, 6, 22), label
    assert typed[planted["where"]["date_serial"]] == pd.Timestamp(2020, 6, 17)
    assert pd.isna(typed[planted["where"]["date_unreadable"]])
    p = _problem(planted, LEDGER.name, planted["where"]["date_6_22_cell"], "日期", "normalised")
    assert "6.22" in p.message and "2020-06-22" in p.message  # never a time of day


def test_text_numbers_are_read_as_the_number_they_name(planted):
    frame = planted["result"].frames[LEDGER.name].set_index("_row")
    w = planted["where"]
    assert frame.loc[w["num_commas"], "quantity"] == 1200
    assert frame.loc[w["num_fullwidth"], "quantity"] == 1200
    assert frame.loc[w["num_hanzi"], "quantity"] == 30
    assert frame.loc[w["num_wan"], "participants"] == 300_000
    assert frame.loc[w["num_yu"], "quantity"] == 800
    assert frame.loc[w["num_yue"], "participants"] == 200
    assert np.isnan(frame.loc[w["num_bad"], "quantity"])
    p = _problem(planted, LEDGER.name, w["num_commas"], "完成数量", "normalised")
    assert "按 1200 处理" in p.message


def test_typed_frames_have_schema_dtypes_and_raw_frames_are_untouched(planted):
    ledger = planted["result"].frames[LEDGER.name]
    assert str(ledger["date"].dtype) == "datetime64[ns]"
    assert ledger["quantity"].dtype == "float64" and ledger["participants"].dtype == "float64"
    assert ledger["status"].dtype == object
    assert ledger.loc[ledger["_row"] == planted["where"]["committee_fullwidth"], "committee_id"].item() == "C02"
    assert ledger.loc[ledger["_row"] == planted["where"]["project_spaced"], "project_id"].item() == "P01"
    for name, frame in planted["raw"].items():
        pd.testing.assert_frame_equal(planted["book"].frames[name], frame)


def test_suggestions_name_the_nearest_code_or_name(planted):
    w = planted["where"]
    p = _problem(planted, LEDGER.name, w["committee_unknown"], "居委会编号", "unknown_committee")
    assert p.suggestion == "您是否指 C03 蒋家巷居委会？"
    p = _problem(planted, LEDGER.name, w["committee_by_name"], "居委会编号", "unknown_committee")
    assert p.suggestion == "您是否指 C01 新福康里居委会？"
    p = _problem(planted, LEDGER.name, w["committee_new"], "居委会编号", "unknown_committee")
    assert p.suggestion.startswith("如是新设的居委会，需先由街道在主工作簿的“居委会”表中加上 C15；如是填错，您是否指 C1")
    p = _problem(planted, LEDGER.name, w["project_unknown"], "项目编号", "unknown_project")
    assert p.suggestion.startswith("您是否指 P01")
    p = _problem(planted, LEDGER.name, w["status_bad"], "状态", "bad_choice")
    assert p.suggestion == "您是否指“已完成”？"
    p = _problem(planted, LEDGER.name, w["record_form"], "记录编号", "bad_record_id")
    # Both readings: offered alone, "C02-0007" (another record's key, may be) leads a new row onto it.
    assert p.suggestion == "如指记录 C02-0007，请改为 C02-0007；如是新记录，请留空，由系统按居委会自动编号"


def test_duplicates_name_the_first_row(planted):
    w = planted["where"]
    p = _problem(planted, LEDGER.name, w["record_dup"], "记录编号", "duplicate_key")
    ledger = planted["raw"][LEDGER.name]
    first = int(ledger.loc[ledger["record_id"] == "C02-0001", "_row"].iloc[0])
    assert f"第 {first} 行" in p.message
    p = _problem(planted, LEDGER.name, w["dup_second"], "活动内容", "probable_duplicate")
    assert f"第 {w['dup_first']} 行" in p.message


def test_target_scope_is_named(planted):
    w = planted["where"]
    own = _problem(planted, LEDGER.name, w["above_own_target"], "完成数量", "quantity_above_target")
    street = _problem(planted, LEDGER.name, w["above_street_target"], "完成数量", "quantity_above_target")
    assert "该居委会" in own.message and "520" in own.message
    assert "项目全年目标值 40" in street.message


@pytest.mark.parametrize("sheet, where, column, code, level", [
    (PROJECTS.name, "units", "责任单位", "empty_unit", E),
    (PROJECTS.name, "project_dup", "项目编号", "duplicate_key", E),
    (PROJECTS.name, "project_cells", "类别", "bad_choice", E),
    (PROJECTS.name, "project_cells", "目标值", "normalised", W),
    (PROJECTS.name, "project_cells", "截止日期", "normalised", W),
    (COMMITTEES.name, "committee_row", "居委会名称", "required", E),
    (COMMITTEES.name, "committee_row", "试点", "bad_choice", E),
    (TARGETS.name, "target_project", "项目编号", "unknown_project", E),
    (TARGETS.name, "target_committee", "居委会编号", "unknown_committee", E),
    (TARGETS.name, "target_dup", "项目编号", "duplicate_key", E),
])
def test_config_sheet_rules(planted, sheet, where, column, code, level):
    p = _problem(planted, sheet, planted["where"][where], column, code)
    assert p.level == level


def test_a_unit_spelt_one_character_off_is_named_with_both_spellings(tmp_path, capsys):
    """社区卫生服务中芯 on one project (中心 on five others) would be a unit of its own on 单位进度."""
    data = demo.demo_rows(with_ledger=False)
    projects = data[PROJECTS.name]
    by_id = {p["project_id"]: i for i, p in enumerate(projects)}
    projects[by_id["P05"]] = {**projects[by_id["P05"]], "units": "服务办、社区卫生服务中芯"}
    # Units one numeral apart are different schools, not a slip.
    projects[by_id["P07"]] = {**projects[by_id["P07"]], "units": "社区卫生服务中心、第一中学、第二中学"}
    path = tmp_path / "units.xlsx"
    build_workbook(path, data)
    assert main(["validate", str(path), "--json", "--as-of", "2020-11-15"]) == 0
    issues = [i for i in json.loads(capsys.readouterr().out)["issues"] if i["code"] == "unit_twin"]
    p05_row = by_id["P05"] + 2
    assert [(i["sheet"], i["row"], i["column"], i["key"], i["level"]) for i in issues] == [
        (PROJECTS.name, p05_row, "责任单位", "P05", W)]
    [twin] = issues
    assert "“社区卫生服务中芯”" in twin["message"] and "“社区卫生服务中心”" in twin["message"]
    assert twin["message"] == ("责任单位“社区卫生服务中芯”与第 2、3、5 等行的“社区卫生服务中心”只差一个字，"
                               "“单位进度”表中会算作两个单位")
    assert "都写“社区卫生服务中心”" in twin["suggestion"]


def _unit_twin_issues(tmp_path, capsys, units: dict[str, str]) -> list[dict]:
    """The unit_twin warnings of the demo master with the 责任单位 of some projects replaced."""
    data = demo.demo_rows(with_ledger=False)
    projects = data[PROJECTS.name]
    by_id = {p["project_id"]: i for i, p in enumerate(projects)}
    for project_id, cell in units.items():
        projects[by_id[project_id]] = {**projects[by_id[project_id]], "units": cell}
    path = tmp_path / "units.xlsx"
    build_workbook(path, data)
    assert main(["validate", str(path), "--json", "--as-of", "2020-11-15"]) == 0
    return [i for i in json.loads(capsys.readouterr().out)["issues"] if i["code"] == "unit_twin"]


def test_units_one_real_character_apart_are_not_called_twins(tmp_path, capsys):
    """Two different units often differ in one character: no warning staff could not silence."""
    issues = _unit_twin_issues(tmp_path, capsys, {
        "P02": "党群服务中心、城运中心、文化活动中心、东片居委会、A区卫生站",
        "P05": "党建服务中心、城建中心、文体活动中心、西片居委会、B区卫生站",
        # A character more at either end is another unit (the centre's 站), not a dropped one.
        "P06": "城运中心站、东片居委会西、社区卫生服务中心",
    })
    assert [(i["row"], i["message"]) for i in issues] == []


@pytest.mark.parametrize("slip", [
    "社区卫生服务中芯",  # 芯 for 心, both read xin
    "社区卫声服务中心",  # 声 for 生, both read sheng
    "社区卫生服务中心心",  # a character typed twice
    "社区卫生服中心",  # one dropped inside the name
], ids=["same_reading_xin", "same_reading_sheng", "doubled", "dropped_inside"])
def test_unit_ime_slips_are_twins(tmp_path, capsys, slip):
    issues = _unit_twin_issues(tmp_path, capsys, {"P05": f"服务办、{slip}"})
    assert [(i["row"], i["key"]) for i in issues] == [(6, "P05")]
    assert issues[0]["message"].startswith(f"责任单位“{slip}”与第 2、3、5 等行的“社区卫生服务中心”只差一个字")


def test_a_caption_without_its_picture_is_named(tmp_path, capsys):
    """The bulletin prints a 图片说明 only under its picture: one typed without a 图片文件 vanished
    without a word. The demo ships neither (its first validate stays quiet: see the test below)."""
    data = demo.demo_rows(with_ledger=False)
    articles = data[schema.ARTICLES.name]
    articles[0] = {**articles[0], "caption": "会议现场"}
    articles[1] = {**articles[1], "caption": "参观学习", "image": "图片\\参观.jpg"}
    path = tmp_path / "captions.xlsx"
    build_workbook(path, data)
    assert main(["validate", str(path), "--json", "--as-of", "2020-11-15"]) == 0
    issues = [i for i in json.loads(capsys.readouterr().out)["issues"] if i["code"] == "caption_without_picture"]
    sheet = schema.ARTICLES
    assert [(i["sheet"], i["row"], i["column"], i["key"], i["level"]) for i in issues] == [
        (sheet.name, 2, sheet.header_of("caption"), "A01", W)]
    [p] = issues
    assert "“会议现场”没有对应的图片" in p["message"] and "不会印出" in p["message"]
    assert f"“{sheet.header_of('image')}”中填写图片相对本工作簿的路径" in p["suggestion"]
    assert f"清空{sheet.header_of('caption')}" in p["suggestion"]


def test_composite_key_and_other_sheets(planted):
    p = _problem(planted, TARGETS.name, planted["where"]["target_dup"], "项目编号", "duplicate_key")
    assert p.key == "P06/C01"
    assert _problem(planted, schema.MEETINGS.name, 2, "日期", "normalised").key == "M01"
    assert _problem(planted, schema.ARTICLES.name, 2, "期号", "normalised").level == W
    p = _problem(planted, schema.ARTICLES.name, 2, "关联记录编号", "unknown_record")
    assert "C01-9999" in p.message and "C01-0001" not in p.message


def test_demo_workbook_has_no_errors(demo_master):
    book = read_workbook(demo_master)
    result = validate(book.frames, book.settings, demo.DEMO_AS_OF)
    assert result.errors == 0
    # The bulletin's "800余次" is kept, read as 800 and flagged as approximate.
    assert [(p.sheet, p.column, p.code) for p in result.problems] == [(LEDGER.name, "完成数量", "approximate")]


# ---------------------------------------------------------------- 设置

def _settings_book(tmp_path, values: dict, ledger_dates: list) -> tuple:
    data = demo.demo_rows(with_ledger=False)
    data[schema.SETTINGS.name] = demo.settings_rows({**demo.SETTINGS, **values})
    data[schema.SETTINGS.name].append({"item": "年份", "value": "2020", "help": ""})
    data[LEDGER.name] = [{**BASE, "record_id": f"C02-{i + 1:04d}", "date": d} for i, d in enumerate(ledger_dates)]
    path = tmp_path / "settings.xlsx"
    build_workbook(path, data)
    book = read_workbook(path)
    return book, validate(book.frames, book.settings, AS_OF)


def _setting_row(book, key: str) -> int:
    frame = book[schema.SETTINGS.name]
    return int(frame.loc[frame["item"] == schema.SETTINGS_BY_KEY[key].item, "_row"].item())


def test_settings_values_of_the_wrong_type(tmp_path):
    book, result = _settings_book(
        tmp_path, {"year": "明年", "doc_number": "3.5", "lag_threshold": "一些", "silence_days": "三十"},
        ["6月22日"],
    )
    s = schema.SETTINGS.name
    assert at(result, s, _setting_row(book, "year"), "值") == {"bad_setting": E}
    assert at(result, s, _setting_row(book, "doc_number"), "值") == {"bad_setting": E}
    assert at(result, s, _setting_row(book, "lag_threshold"), "值") == {"bad_setting": E}
    assert at(result, s, _setting_row(book, "silence_days"), "值") == {}  # 三十 reads as 30
    unknown = [p for p in result.problems if p.code == "unknown_setting"]
    assert len(unknown) == 1 and unknown[0].level == W and unknown[0].suggestion == "您是否指“年度”？"
    # Without a year, "6月22日" cannot be completed: an error naming why.
    assert at(result, LEDGER.name, 2, "日期") == {"bad_date": E}
    assert "年度" in next(p.message for p in result.problems if p.code == "bad_date")


def test_blank_year_is_a_warning(tmp_path):
    book, result = _settings_book(tmp_path, {"year": None}, [date(2020, 6, 22)])
    assert at(result, schema.SETTINGS.name, _setting_row(book, "year"), "值") == {"missing_year": W}
    assert result.errors == 0


def test_year_written_in_chinese_completes_month_day_dates(tmp_path):
    _book, result = _settings_book(tmp_path, {"year": "2019年"}, ["6月22日"])
    assert result.frames[LEDGER.name]["date"].iloc[0] == pd.Timestamp(2019, 6, 22)
    assert at(result, LEDGER.name, 2, "日期") == {"normalised": W}


@pytest.mark.parametrize("typed", ["2020-1 typed (Excel made it 2020-01-01)", "2020 in a cell formatted as a date"])
def test_year_held_as_a_date_is_read_as_its_year(tmp_path, typed):
    """Excel turns "2020-1" into a date, and 2020 in a date-formatted cell reads back as
    1905-07-12: both are 2020, with a warning saying how it was read (it was 不是数字, and the
    month-day dates of the whole ledger went uncompleted)."""
    book, _ = _settings_book(tmp_path, {}, ["6月22日"])
    path = Path(book.path)
    wb = openpyxl.load_workbook(path)
    cell = next(r[1] for r in wb[schema.SETTINGS.name].iter_rows() if r[0].value == "年度")
    cell.value = datetime(2020, 1, 1) if typed.startswith("2020-1") else 2020
    cell.number_format = "yyyy-mm-dd"
    wb.save(path)
    book = read_workbook(path)
    assert book.settings["year"] == 2020
    result = validate(book.frames, book.settings, AS_OF)
    assert result.frames[LEDGER.name]["date"].iloc[0] == pd.Timestamp(2020, 6, 22)
    found = at(result, schema.SETTINGS.name, _setting_row(book, "year"), "值")
    assert found == {"normalised": W}
    problem = next(p for p in result.problems if p.sheet == schema.SETTINGS.name and p.code == "normalised")
    assert "按 2020 年处理" in problem.message and "常规" in problem.suggestion


# ---------------------------------------------------------------- outputs

def test_issues_sheet_and_marks_follow_the_problems(planted):
    result = planted["result"]
    sheet = issues_sheet(result.problems, when=datetime(2020, 11, 15, 9, 0))
    assert sheet.sheet is schema.ISSUES
    assert [set(r) for r in sheet.rows[:1]] == [set(schema.ISSUES.keys)]
    assert len(sheet.rows) == len(result.problems)
    i = next(i for i, r in enumerate(sheet.rows) if r["code"] == KINDS["bad_choice"] and r["sheet"] == LEDGER.name)
    row = sheet.rows[i]["row"]
    assert sheet.links[(i, "row")] == f"'台账'!H{row}"  # 状态 is the 8th contract column
    assert sheet.fills[(i, "level")] == E
    assert "错误" in sheet.note and "2020-11-15 09:00" in sheet.note
    marks = cell_marks(result.problems)
    cells = {(m.sheet, m.row, m.column) for m in marks}
    assert len(cells) == len(marks)
    assert {(p.sheet, p.row, p.column) for p in result.problems if p.row and p.column} == cells
    mark = next(m for m in marks if (m.sheet, m.row, m.column) == (LEDGER.name, row, "状态"))
    assert mark.level == E and "您是否指“已完成”" in mark.message


def test_links_follow_the_real_header_positions():
    headers = {LEDGER.name: ["活动内容", "日期", "记录编号"]}
    assert cell_address(LEDGER.name, 7, "记录编号", headers) == "'台账'!C7"
    assert cell_address(LEDGER.name, 7, "日期") == "'台账'!B7"
    assert cell_address("It's", 3, None) == "'It''s'!A3"


def test_reader_records_header_positions_for_links(planted):
    sheets, _marks = validation_writes(planted["result"])
    assert planted["result"].frames[LEDGER.name].attrs["headers"][:3] == LEDGER.headers[:3]
    assert len(sheets) == 1 and sheets[0].rows


def test_report_text_groups_by_sheet_errors_first(planted):
    text = report_text(planted["result"], "planted.xlsx")
    lines = text.splitlines()
    assert lines[0] == "工作簿：planted.xlsx"
    sections = [line for line in lines if line.startswith("【")]
    assert [s[1:s.index("】")] for s in sections] == [
        name for name in (s.name for s in schema.SHEETS)
        if any(p.sheet == name for p in planted["result"].problems)
    ]
    start = lines.index(next(s for s in sections if s.startswith(f"【{LEDGER.name}】")))
    block = [line for line in lines[start + 1:] if line.startswith("  ")][:40]
    levels = [line.split()[0] for line in block]
    assert levels == sorted(levels, key=lambda lv: lv != E)  # errors before warnings


# ---------------------------------------------------------------- CLI

def test_cli_json_and_exit_codes(planted, demo_master, capsys, tmp_path):
    assert main(["validate", str(planted["path"]), "--json", "--as-of", "2020-11-15"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["errors"] == planted["result"].errors and data["warnings"] == planted["result"].warnings
    assert set(data["issues"][0]) == {"sheet", "row", "column", "key", "level", "code", "message", "suggestion"}
    assert len(data["issues"]) == len(planted["result"].problems)

    assert main(["validate", str(demo_master), "--as-of", "2020年11月15日"]) == 0
    out = capsys.readouterr().out
    assert "错误 0 个" in out and "800余次" in out

    bad = tmp_path / "不是工作簿.xlsx"
    bad.write_text("hello", encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    assert "不是工作簿.xlsx" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "没有.xlsx")]) == 2


def test_cli_future_dates_follow_as_of(planted, capsys):
    main(["validate", str(planted["path"]), "--json", "--as-of", "2022-01-01"])
    codes = {i["code"] for i in json.loads(capsys.readouterr().out)["issues"]}
    assert "future_date" not in codes



def test_a_future_date_is_later_than_the_date_reported_for_not_than_today(planted):
    [future] = [p for p in planted["result"].problems if p.code == "future_date" and p.sheet == LEDGER.name]
    assert f"晚于统计截止日期（{AS_OF.isoformat()}）" in future.message


def test_links_point_at_the_real_cell_of_a_hand_made_sheet(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = LEDGER.name
    ws.append(["填报表（手工）"])
    order = ["状态", "活动内容", "日期", "居委会编号", "项目编号", "完成数量"]
    ws.append(order)
    ws.append(["做完了", "社区康复指导活动", date(2020, 6, 1), "C01", "P02", 3])
    for sheet in schema.INPUT_SHEETS:
        if sheet is not LEDGER:
            wb.create_sheet(sheet.name).append(sheet.headers)
    path = tmp_path / "hand.xlsx"
    wb.save(path)
    book = read_workbook(path)
    result = validate(book.frames, book.settings, AS_OF)
    (sheet,), _marks = validation_writes(result)
    i = next(i for i, r in enumerate(sheet.rows) if r["code"] == KINDS["bad_choice"])
    assert sheet.rows[i]["row"] == 3
    assert sheet.links[(i, "row")] == "'台账'!A3"  # 状态 sits in column A of this form


def test_settings_default_to_the_settings_sheet(planted):
    frames = planted["book"].frames
    assert validate(frames, None, AS_OF).problems == validate(frames, planted["book"].settings, AS_OF).problems
