"""Submitted rows enter the master as the validator read them (what the receipt announced), and a
row a clerk corrected and sent again without its 记录编号 is named as the record it likely corrects.

Real files through ``consolidate``: generated forms typed into as a committee would (openpyxl stands
in for the keyboard: text typed into date and number cells stays text, as in Excel with a cell
formatted as text or a leading apostrophe), a master built by ``healthbook init``'s builder.
"""

from __future__ import annotations

import html
import shutil
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders, summary_text
from macros.forms import build_forms
from macros.validate import validate

from .test_consolidate import fill_form as fill
from .test_consolidate import ledger_of as ledger
from .test_consolidate import new_row

LEDGER = schema.LEDGER.name
H = {c.key: c.header for c in schema.LEDGER.columns}
AS_OF = demo.DEMO_AS_OF
COMMITTEE = "C03"


@pytest.fixture(scope="module")
def blank(demo_master, tmp_path_factory) -> Path:
    [form] = build_forms(demo_master, tmp_path_factory.mktemp("as-read-forms"), [COMMITTEE]).written
    return form


def inbox_of(master: Path) -> Path:
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir(exist_ok=True)
    return inbox


def row(**kw) -> dict:
    return new_row(**{"date": date(2020, 11, 6), "activity": "社区健康讲座进楼宇", "participants": 40,
                      "quantity": 1, "status": "已完成", "reporter": "陈佳", **kw})


def cells(master: Path, record_id: str) -> dict[str, openpyxl.cell.Cell]:
    """The master's 台账 cells of one record, by column key (read-only: nothing is saved)."""
    ws = openpyxl.load_workbook(master)[LEDGER]
    header = {c.value: i for i, c in enumerate(ws[1]) if c.value}
    found = next(r for r in ws.iter_rows(min_row=2) if r[header[H["record_id"]]].value == record_id)
    return {k: found[header[h]] for k, h in H.items() if h in header}


def changes(master: Path):
    return read_workbook(master, [schema.CHANGES])[schema.CHANGES.name]


def receipt_of(result) -> str:
    return html.unescape(result.receipt.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- F-F: values as read


def test_text_typed_for_dates_numbers_and_codes_is_merged_as_the_value_the_receipt_announced(
        master_copy, blank):
    typed = [
        row(date="２０２０－１１－１１", participants="３５", quantity="20", activity="健康讲座：全角日期"),
        row(date="6月22日", participants="六", activity="健康讲座：只写月日"),
        row(date="11/5", participants="20", project_id="ｐ０６", activity="健康讲座：斜杠月日"),
        row(date="2020.11.5", status=" 已完成 ", in_bulletin="是", activity="健康讲座：点分日期"),
        row(participants="约30人", quantity="800余次", activity="健康讲座：约数"),
        row(participants="+30人", activity="健康讲座：像公式的人数", note="-1+2 次"),
    ]
    inbox = inbox_of(master_copy)
    fill(blank, inbox / "C03-11月.xlsx", typed)

    run = consolidate(master_copy, as_of=AS_OF)
    [result] = run.files
    assert (result.status, result.rows_added) == ("accepted", 6), result.issues
    added = ledger(master_copy).query("source == 'C03-11月.xlsx'").set_index("activity")
    assert list(added["date"]) == [date(2020, 11, 11), date(2020, 6, 22), date(2020, 11, 5), date(2020, 11, 5),
                                   date(2020, 11, 6), date(2020, 11, 6)]
    assert list(added["participants"]) == [35, 6, 20, 40, "约30人", "+30人"]
    assert list(added["quantity"]) == [20, 1, 1, 1, "800余次", 1]
    assert set(added["project_id"]) == {"P06"} and set(added["status"]) == {"已完成"}
    assert added.loc["健康讲座：点分日期", "in_bulletin"] == "是"

    # In the file itself: real dates and numbers, which Excel's filters, SUM and COUNTIFS count.
    first = cells(master_copy, added.loc["健康讲座：全角日期", "record_id"])
    assert first["date"].is_date and first["date"].value == datetime(2020, 11, 11)
    assert first["participants"].data_type == "n" and first["quantity"].data_type == "n"
    # Kept as typed: the approximate count (its "about" would be lost) and formula-looking text.
    rough = cells(master_copy, added.loc["健康讲座：约数", "record_id"])
    assert rough["participants"].data_type == "s" and rough["quantity"].value == "800余次"
    formula = cells(master_copy, added.loc["健康讲座：像公式的人数", "record_id"])
    assert (formula["participants"].data_type, formula["participants"].value) == ("s", "+30人")
    assert formula["note"].value == "-1+2 次" and formula["note"].data_type == "s"

    # The receipt's "按 … 处理，已按此汇总为记录 …，不必修改" is now what the master holds: validating
    # the master finds nothing to read differently on these rows but the approximate count.
    book = read_workbook(master_copy)
    found = validate(book.frames, book.settings, AS_OF).problems
    keys = set(added["record_id"])
    read_as = {(p.key, p.column, p.code) for p in found if p.key in keys and p.code in ("normalised", "approximate")}
    rough_key, formula_key = added.loc["健康讲座：约数", "record_id"], added.loc["健康讲座：像公式的人数", "record_id"]
    assert read_as == {(rough_key, H["participants"], "approximate"), (rough_key, H["quantity"], "approximate"),
                       (formula_key, H["participants"], "normalised")}
    said = {(p.row, p.column): p for p in result.issues if p.code == "normalised"}
    assert "按 2020-06-22 处理" in said[(3, H["date"])].message and "不必修改" in said[(3, H["date"])].suggestion

    # Sent again as it was: nothing changes, not even the file.
    written = master_copy.read_bytes()
    shutil.copy2(result.moved_to, inbox / "C03-11月.xlsx")
    [again] = consolidate(master_copy, as_of=AS_OF).files
    assert (again.rows_added, again.rows_updated, again.rows_unchanged) == (0, 0, 6)
    assert master_copy.read_bytes() == written


def test_a_keyed_resend_compares_and_audits_the_values_as_read(master_copy, blank):
    inbox = inbox_of(master_copy)
    fill(blank, inbox / "C03-第一次.xlsx", [row(date="6月22日", participants="四十")])
    [first] = consolidate(master_copy, as_of=AS_OF).files
    key = next(k for k in ledger(master_copy).query("source == 'C03-第一次.xlsx'")["record_id"])

    # The same text sent again under the record's key: the record holds 2020-06-22 and 40 already.
    written = master_copy.read_bytes()
    fill(blank, inbox / "C03-带编号.xlsx", [row(record_id=key, date="6月22日", participants="40")])
    [same] = consolidate(master_copy, as_of=AS_OF).files
    assert (same.rows_added, same.rows_updated, same.rows_unchanged) == (0, 0, 1), same.issues
    assert master_copy.read_bytes() == written

    # Corrected under its key, typed as text again: updated to the values read, audited as written.
    fill(blank, inbox / "C03-更正.xlsx", [row(record_id=key, date="6月23日", participants="４５")])
    [fixed] = consolidate(master_copy, as_of=AS_OF).files
    assert (fixed.rows_added, fixed.rows_updated) == (0, 1), fixed.issues
    held = cells(master_copy, key)
    assert held["date"].is_date and held["date"].value == datetime(2020, 6, 23)
    assert (held["participants"].data_type, held["participants"].value) == ("n", 45)
    audit = {(c["column"], c["old"], c["new"]) for c in changes(master_copy).to_dict("records")
             if c["record_id"] == key and c["source"] == "C03-更正.xlsx"}
    assert audit == {(H["date"], "2020-06-22", "2020-06-23"), (H["participants"], 40, 45)}

    # Its activity rewritten, the date typed as before: the same day read, so the record is updated
    # (not refused as another activity given this record's number).
    fill(blank, inbox / "C03-改内容.xlsx", [row(record_id=key, date="6月23日", participants=45, activity="家庭医生签约咨询")])
    [rewritten] = consolidate(master_copy, as_of=AS_OF).files
    assert (rewritten.rows_updated, rewritten.status) == (1, "accepted"), rewritten.issues


def test_what_staff_or_an_earlier_version_typed_in_the_master_is_compared_as_read_and_left_as_typed(tmp_path):
    # C03-0901: typed by staff with text in the date and number cells; C03-0902: merged as typed
    # by an earlier version from a form without 记录编号.
    rows = demo.demo_rows()
    staff = {"record_id": "C03-0901", "date": "6/22", "committee_id": COMMITTEE, "project_id": "p06",
             "activity": "街道工作人员补录的讲座", "participants": "３５", "quantity": "2", "status": "已完成",
             "reporter": "发展办", "in_bulletin": "否", "source": "手工"}
    earlier = {**staff, "record_id": "C03-0902", "date": "6月23日", "project_id": "P06", "participants": "四十",
               "activity": "早先汇总的讲座", "reporter": "陈佳", "source": "C03-6月.xlsx"}
    rows[LEDGER] = [*rows[LEDGER], staff, earlier]
    master = tmp_path / "healthbook.xlsx"
    build_workbook(master, rows)
    before = ledger(master).set_index("record_id")
    assert before.loc["C03-0901", "date"] == "6/22"  # the master really holds the text

    # The form C03 gets back with its records, sent back with one row edited and the others as given.
    [prefilled] = build_forms(master, tmp_path / "forms", [COMMITTEE], with_records=True).written
    wb = openpyxl.load_workbook(prefilled)
    ws = wb[LEDGER]
    col = {c.value: c.column for c in ws[1] if c.value}
    at = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, col[H["record_id"]]).value == "C03-0901")
    assert ws.cell(at, col[H["date"]]).value == "6/22"
    other = next(r for r in range(2, ws.max_row + 1)
                 if ws.cell(r, col[H["record_id"]]).value not in (None, "C03-0901", "C03-0902"))
    ws.cell(other, col[H["note"]]).value = "补充说明"
    inbox = inbox_of(master)
    wb.save(inbox / "C03-退回.xlsx")
    # And the earlier form sent again without keys, as the clerk keeps it.
    blank = build_forms(master, tmp_path / "blank", [COMMITTEE]).written[0]
    fill(blank, inbox / "C03-6月.xlsx", [{k: earlier[k] for k in row()}])

    run = consolidate(master, as_of=AS_OF)
    by_file = {f.file: f for f in run.files}
    back, resent = by_file["C03-退回.xlsx"], by_file["C03-6月.xlsx"]
    assert (back.rows_added, back.rows_updated) == (0, 1), back.issues
    assert not [p for p in back.issues if p.key in ("C03-0901", "C03-0902")]  # no "changed since" warnings
    assert (resent.rows_added, resent.rows_updated, resent.rows_unchanged) == (0, 0, 1), resent.issues
    after = ledger(master).set_index("record_id")
    for key in ("C03-0901", "C03-0902"):  # neither rewritten nor twinned
        assert after.loc[key].to_dict() == before.loc[key].to_dict()
    assert len(after) == len(before)


# ---------------------------------------------------------------- F-E: a corrected row sent again without its key


def test_a_date_corrected_and_sent_again_without_its_key_names_the_record_it_corrects(master_copy, blank):
    inbox = inbox_of(master_copy)
    rows = [row(activity="控烟宣传进楼宇", date=date(2020, 11, 2)),
            row(activity="老年人健康体检", date=date(2020, 11, 3), participants=25),
            row(activity="健康讲座：合理膳食", date="6月22日", note=None)]
    fill(blank, inbox / "C03-11月.xlsx", rows)
    [first] = consolidate(master_copy, as_of=AS_OF).files
    keys = dict(zip(ledger(master_copy).query("source == 'C03-11月.xlsx'")["activity"],
                    ledger(master_copy).query("source == 'C03-11月.xlsx'")["record_id"]))
    meant = keys["健康讲座：合理膳食"]  # read as 2020-06-22, as the receipt said

    # The clerk meant 6 November: she fixes the date in her copy and sends the whole form again.
    rows[2]["date"] = "11月6日"
    fill(blank, inbox / "C03-11月.xlsx", rows)
    run = consolidate(master_copy, as_of=AS_OF)
    [again] = run.files
    assert (again.rows_added, again.rows_unchanged) == (1, 2)
    twin = next(k for k in ledger(master_copy).query("source == 'C03-11月.xlsx'")["record_id"] if k not in keys.values())
    [hint] = [p for p in again.issues if p.code == "probable_resend"]
    assert (hint.row, hint.column, hint.key, hint.level) == (4, H["date"], twin, "警告")
    assert f"除“{H['date']}”外" in hint.message and f"记录 {meant} 为 2020-06-22" in hint.message
    assert "这一行为 2020-11-06" in hint.message and f"已作为新记录 {twin} 加入" in hint.message
    assert f"“{H['record_id']}”列填上 {meant}" in hint.suggestion and f"删除 {twin}" in hint.suggestion
    assert f"除“{H['date']}”外" in receipt_of(again)
    assert f"{twin}（与 {meant} 只差“{H['date']}”）" in summary_text(run)

    # Done as told: the record is corrected, nothing more is added.
    rows[2]["record_id"] = meant
    fill(blank, inbox / "C03-11月.xlsx", rows)
    [fixed] = consolidate(master_copy, as_of=AS_OF).files
    assert (fixed.rows_added, fixed.rows_updated) == (0, 1), fixed.issues
    assert ledger(master_copy).set_index("record_id").loc[meant, "date"] == date(2020, 11, 6)


def test_sessions_that_differ_in_more_than_one_column_or_stand_beside_each_other_are_not_named(
        master_copy, blank):
    inbox = inbox_of(master_copy)
    first = row(activity="太极拳健身队活动", date=date(2020, 10, 5), participants=20)
    fill(blank, inbox / "C03-10月.xlsx", [first])
    consolidate(master_copy, as_of=AS_OF)

    def resends(name: str, rows: list[dict]) -> list:
        fill(blank, inbox / name, rows)
        [result] = consolidate(master_copy, as_of=AS_OF).files
        assert result.rows_added == 1, result.issues
        return [p for p in result.issues if p.code == "probable_resend"]

    # The cumulative form with the next session: the earlier session is its other row.
    assert resends("C03-10月累计.xlsx", [first, {**first, "date": date(2020, 10, 12)}]) == []
    # The next session alone: two earlier records differ from it in the date alone, a series.
    assert resends("C03-10月19日.xlsx", [{**first, "date": date(2020, 10, 19)}]) == []
    # Another day with another head count: two columns differ.
    assert resends("C03-11月2日.xlsx", [{**first, "date": date(2020, 11, 2), "participants": 24}]) == []
    # The one-column look-alike of a single record is named (here: the head count corrected).
    lone = [row(activity="家庭医生签约咨询", date=date(2020, 10, 8), participants=30)]
    fill(blank, inbox / "C03-签约.xlsx", lone)
    [signed] = consolidate(master_copy, as_of=AS_OF).files
    [hint] = resends("C03-签约更正.xlsx", [{**lone[0], "participants": 32}])
    assert hint.column == H["participants"] and signed.rows_added == 1
    assert "这一行为 32" in hint.message and "为 30）" in hint.message
