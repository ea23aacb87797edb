"""``healthbook report`` numbers 台账 rows staff typed with 记录编号 blank, as consolidation would:
each its committee's next free number (after the ledger's highest and after every number ever
given, deleted records' too), 来源 手工 where blank, a 变更记录 line a row, in the report's one write.
The Excel button numbers them the same way (tests/test_live_numbers.py). Real files throughout."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from macros import demo, schema
from macros.book.build import build_workbook
from macros.consolidate import announced_numbers, numbers_file

from .conftest import cli_json

LEDGER, CHANGES = schema.LEDGER.name, schema.CHANGES.name
KEY_HEADER, SOURCE_HEADER = schema.LEDGER.header_of("record_id"), schema.LEDGER.header_of("source")
AS_OF = "2020-11-30"
# Staff's own way of typing, which the numbering must leave exactly as typed.
TYPED_C03 = {"date": "6月22日", "committee_id": "C03", "project_id": "P01", "activity": "健康讲座（手工补录）",
             "participants": "３５", "quantity": 1, "status": "已完成", "reporter": "王芳", "in_bulletin": "否",
             "note": " 纸质签到表 ", "record_id": None, "source": None}
TYPED_C05 = {"date": date(2020, 7, 3), "committee_id": "C05", "project_id": "P02", "activity": "控烟宣传",
             "participants": 20, "quantity": 2, "status": "进行中", "reporter": "李强", "in_bulletin": "否",
             "note": "", "record_id": "", "source": "电话报送"}
UNKNOWN = {**TYPED_C05, "committee_id": "C99", "activity": "居委会编号填错的行"}


def highest(rows: list[dict], committee: str) -> int:
    return max(int(r["record_id"].split("-")[1]) for r in rows if r["committee_id"] == committee)


@pytest.fixture
def typed_master(tmp_path) -> tuple[Path, dict]:
    return build_typed_master(tmp_path)


def build_typed_master(tmp_path: Path) -> tuple[Path, dict]:
    """The demo master with three rows typed by staff at the end of 台账, 记录编号 blank (one of an
    unknown committee); C03 had a number above its ledger's highest issued, then deleted."""
    rows = demo.demo_rows()
    ledger = rows[LEDGER]
    expected = {"C03": f"C03-{highest(ledger, 'C03') + 4:04d}", "C05": f"C05-{highest(ledger, 'C05') + 1:04d}"}
    rows[LEDGER] = [*ledger, dict(TYPED_C03), dict(TYPED_C05), dict(UNKNOWN)]
    path = tmp_path / "healthbook.xlsx"
    build_workbook(path, rows)
    # The memory consolidation keeps beside the master: C03's number +3 was given, its record deleted.
    numbers_file(path).write_text(json.dumps({"numbers": {"C03": highest(ledger, "C03") + 3}}), encoding="utf-8")
    return path, expected


def grid(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def by_header(rows: list[list]) -> tuple[list, list[list]]:
    return rows[0], rows[1:]


def report(path: Path) -> dict:
    code, out = cli_json("report", str(path), "--as-of", AS_OF, "--out", str(path.parent / "notices"))
    assert out["written"], out
    return out


def test_report_numbers_rows_typed_without_a_key_after_every_number_given(typed_master):
    path, expected = typed_master
    header, before = by_header(grid(path, LEDGER))
    key_at, source_at = header.index(KEY_HEADER), header.index(SOURCE_HEADER)
    changes_before = grid(path, CHANGES)

    out = report(path)

    header_after, after = by_header(grid(path, LEDGER))
    assert header_after == header and len(after) == len(before)
    c03, c05, unknown = len(before) - 3, len(before) - 2, len(before) - 1
    assert after[c03][key_at] == expected["C03"]  # after the deleted record's number, not reusing it
    assert after[c05][key_at] == expected["C05"]
    assert after[c03][source_at] == schema.MANUAL_SOURCE
    assert after[c05][source_at] == "电话报送"  # staff's own 来源 stays
    assert after[unknown][key_at] == ""  # an unknown committee: validation reports it, no number
    # Every other cell of 台账 is as staff typed it ("6月22日", "３５", the spaces around the note).
    for i, (old, new) in enumerate(zip(before, after)):
        for c, (a, b) in enumerate(zip(old, new)):
            if (i, c) not in {(c03, key_at), (c05, key_at), (c03, source_at)}:
                assert a == b, (i + 2, header[c], a, b)
    assert after[c03][header.index(schema.LEDGER.header_of("date"))] == "6月22日"
    assert after[c03][header.index(schema.LEDGER.header_of("note"))] == " 纸质签到表 "

    # 变更记录: one added-key line a numbered row, below what was there.
    log_header, *log = grid(path, CHANGES)
    assert log[:len(changes_before) - 1] == changes_before[1:]
    added = [dict(zip(log_header, line)) for line in log[len(changes_before) - 1:]]
    changes = schema.CHANGES
    assert [a[changes.header_of("record_id")] for a in added] == [expected["C03"], expected["C05"]]
    assert {a[changes.header_of("action")] for a in added} == {"新增"}
    assert {a[changes.header_of("source")] for a in added} == {schema.MANUAL_SOURCE}
    assert "健康讲座（手工补录）" in added[0][changes.header_of("new")]
    assert out.get("numbered") == [expected["C03"], expected["C05"]]
    # The numbers given are remembered beside the master too (a restore must not give them again).
    assert announced_numbers(path)["C05"] == int(expected["C05"].split("-")[1])


def test_a_second_report_numbers_nothing_and_changes_neither_sheet(typed_master):
    path, expected = typed_master
    report(path)
    ledger, log = grid(path, LEDGER), grid(path, CHANGES)
    key_at = ledger[0].index(KEY_HEADER)
    assert [line[key_at] for line in ledger[-3:-1]] == [expected["C03"], expected["C05"]]
    again = report(path)
    assert again.get("numbered") == []
    assert grid(path, LEDGER) == ledger and grid(path, CHANGES) == log


def test_an_article_may_name_the_new_number_in_the_same_run(typed_master):
    """The run's own validation reads the ledger as it will be written: an article naming the
    number the row is given is not reported unknown, and the summary says what was numbered."""
    path, expected = typed_master
    from macros.book.write import FileBook
    from macros.report import run_report

    rows = demo.demo_rows()
    ledger = rows[LEDGER]
    rows[LEDGER] = [*ledger, dict(TYPED_C03), dict(TYPED_C05), dict(UNKNOWN)]
    article = dict(rows[schema.ARTICLES.name][0], article_id="A99", record_ids=expected["C03"])
    rows[schema.ARTICLES.name].append(article)
    path.unlink()
    build_workbook(path, rows)

    result = run_report(FileBook(path), path.parent / "notices", date(2020, 11, 30))
    header, *issues = grid(path, schema.ISSUES.name)
    unknown = [line for line in issues if line[0] == schema.ARTICLES.name and "不存在" in str(line)]
    assert unknown == [], unknown
    # The numbered row's own problems (its date typed as text) are keyed by its new number.
    assert any(line[0] == LEDGER and line[3] == expected["C03"] for line in issues)
    text = result.text()
    assert "2 行" in text and expected["C03"] in text and "变更记录" in text, text
    # The unknown committee's row is still reported (not numbered, not silenced).
    assert any("C99" in str(cell) for line in issues for cell in line)


def test_the_excel_button_does_not_number_them_in_a_book_without_a_file_here(typed_master, tmp_path, monkeypatch):
    """A book whose name is no file on this machine (the xlwings Server's JSON book sends the name
    only): the numbers announced before a restore (kept beside the master) cannot be read, so no
    number is given — one a receipt announced could be given again (C03's +3 here); the alert
    says why and what to do, and no numbers file is written (not even one of that name in the
    current folder, which is another workbook's)."""
    from macros import excel

    from .test_excel import actions
    from .xlwings_book import json_book

    path, _ = typed_master
    monkeypatch.chdir(tmp_path)
    kept = numbers_file(path).read_bytes()
    book = json_book(path)
    result = excel.report(book, as_of=date(2020, 11, 30), base=tmp_path)
    ledger_at = [s.name for s in book.sheets].index(LEDGER)
    changes_at = [s.name for s in book.sheets].index(CHANGES)
    assert not [a for a in actions(book, "setValues") if a["sheet_position"] in (ledger_at, changes_at)]
    assert result.numbered == [] and result.unnumbered == 2
    [alert] = actions(book, "alert")
    assert "2 行" in alert["args"][0] and "不是本机磁盘上的文件" in alert["args"][0], alert["args"][0]
    assert numbers_file(path).read_bytes() == kept
