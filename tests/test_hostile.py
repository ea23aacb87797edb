"""The hostile corpus (tests/hostile.py) through ``consolidate``: each file gets exactly its expected
outcome, nothing crashes, nothing is lost, and a file rejected whole leaves the master byte-identical."""

from __future__ import annotations

import html
import re
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from macros import demo, schema
from macros.book.read import read_workbook

consolidation = pytest.importorskip("macros.consolidate", reason="consolidation not merged yet")
consolidate, folders = consolidation.consolidate, consolidation.folders

from .hostile import REJECTED, cases  # noqa: E402

AS_OF = demo.DEMO_AS_OF
LEDGER = schema.LEDGER.name
CJK = re.compile(r"[\u4e00-\u9fff]")
BIG = "二十万行.xlsx"


def check_file(case, result) -> None:
    """The exact outcome of one file, its reason in Chinese, located where there is a place."""
    assert result.status == case.status, (case.file, result.status, [p.message for p in result.issues])
    assert result.rows_added == case.added, (case.file, result.rows_added)
    errors = [p for p in result.issues if p.is_error]
    if case.file == BIG:  # every one of its 200,000 rows named, with row and column
        assert len(errors) == 200_000 and {p.code for p in errors} == {"unknown_project"}
        assert {p.row for p in errors} == set(range(2, 200_002))
    elif case.errors or case.status != REJECTED:
        assert {(p.row, p.column, p.code) for p in errors} == case.errors, case.file
    else:  # rejected whole, for a reason that concerns the file
        assert errors and all(p.row is None for p in errors), case.file
    # The reason, or what to do about it (a file rejected whole: the receipt's 怎么改 column).
    assert case.reason in " ".join(f"{p.message} {p.suggestion}" for p in result.issues), (case.file, case.reason)
    assert case.warnings <= {p.code for p in result.issues if not p.is_error}, case.file
    for p in result.issues:
        assert CJK.search(p.message), p.message
        if p.row is not None:
            assert p.column in schema.LEDGER.headers and p.sheet == LEDGER, p
    page = result.receipt.read_text(encoding="utf-8")
    assert "<script>" not in page, case.file
    receipt = html.unescape(page)
    assert case.file in receipt, case.file
    for p in errors[:3]:
        assert p.message in receipt, case.file
        if p.row is not None:
            assert str(p.row) in receipt and p.column in receipt


@pytest.fixture(scope="module")
def hostile_run(demo_master, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    master = folder / demo_master.name
    shutil.copy2(demo_master, master)
    where = folders(master, read_workbook(master).settings)
    where.inbox.mkdir()
    corpus = cases()
    whole = [c for c in corpus if c.rejected_whole]
    rows = [c for c in corpus if not c.rejected_whole]
    for c in whole:
        c.build(where.inbox / c.file)
    before = master.read_bytes()
    first = consolidate(master, as_of=AS_OF)
    after_first = master.read_bytes()
    for c in rows:
        c.build(where.inbox / c.file)
    ledger_before = read_workbook(master, [schema.LEDGER])[LEDGER]
    second = consolidate(master, as_of=AS_OF, refresh=False)
    return master, where, corpus, whole, rows, before, after_first, first, second, ledger_before


def test_the_corpus_is_big_enough():
    built = cases()
    assert len(built) >= 40
    assert len({c.file for c in built}) == len(built)


def test_files_rejected_whole_leave_the_master_byte_identical(hostile_run):
    master, where, corpus, whole, rows, before, after_first, first, *_ = hostile_run
    assert after_first == before and not first.master_written
    by_file = {f.file: f for f in first.files}
    assert set(by_file) == {c.file for c in whole}
    for case in whole:
        check_file(case, by_file[case.file])
        assert by_file[case.file].moved_to.parent == where.rejected


def test_every_file_gets_its_exact_outcome(hostile_run):
    master, where, corpus, whole, rows, before, after_first, first, second, _ = hostile_run
    by_file = {f.file: f for f in second.files}
    assert set(by_file) == {c.file for c in rows}
    for case in rows:
        check_file(case, by_file[case.file])
        expected_folder = where.rejected if case.status == REJECTED else where.archive
        assert by_file[case.file].moved_to.parent == expected_folder


def test_nothing_is_lost_every_file_is_in_exactly_one_place(hostile_run):
    master, where, corpus, *_ = hostile_run
    assert not list(where.inbox.iterdir())
    moved = [p.name for p in (*where.archive.iterdir(), *where.rejected.iterdir())]
    assert len(moved) == len(corpus)
    for case in corpus:
        stem = Path(case.file).stem
        assert sum(name.startswith(f"{stem}-") for name in moved) >= 1, case.file
    assert len(list(where.receipts.glob("*.html"))) == len(corpus)


def test_accepted_rows_arrive_as_typed_and_stay_data(hostile_run):
    master, where, corpus, whole, rows, *_, second, ledger_before = hostile_run
    ledger = read_workbook(master, [schema.LEDGER])[LEDGER]
    assert len(ledger) == len(ledger_before) + second.rows_added
    assert second.rows_added == sum(c.added for c in rows)
    # Old rows are untouched and stay where they were.
    old = ledger[ledger["_row"].isin(ledger_before["_row"])].reset_index(drop=True)
    assert old.drop(columns="_row").equals(ledger_before.drop(columns="_row"))
    new = ledger.iloc[len(ledger_before):]
    by_source = {s: part for s, part in new.groupby("source")}
    assert by_source["一万字.xlsx"]["activity"].str.len().max() == 10_000
    assert "健康\x01讲座\x07第\x1f二期" in set(by_source["控制字符.xlsx"]["activity"])
    assert "换行\r\n制表" in set(by_source["控制字符.xlsx"]["note"])
    assert "健步走打卡 🏃‍♀️💪🏻" in set(by_source["表情.xlsx"]["activity"])
    formulas = by_source["公式单元格.xlsx"]
    assert "点我看" in set(formulas["activity"]) and 42 in set(formulas["quantity"])
    assert '=HYPERLINK("http://evil.example","点我")' in set(by_source["公式文字.xlsx"]["activity"])
    # Dates typed as text arrive as the dates the validator read (what the receipt announced).
    assert list(by_source["文字日期.xlsx"]["date"])[:2] == [date(2020, 11, 18)] * 2
    # Nothing a submission brought is a formula in the master.
    ws = openpyxl.load_workbook(master)[LEDGER]
    assert not [c.coordinate for r in ws.iter_rows(min_row=len(ledger_before) + 2) for c in r if c.data_type == "f"]


def test_a_rerun_on_the_same_files_changes_nothing(hostile_run, tmp_path):
    master, where, corpus, whole, rows, *_ = hostile_run
    before = master.read_bytes()
    quick = [c for c in rows if c.file != "格式到二十万行.xlsx"]
    for c in quick:  # the same files again (their rows already merged)
        shutil.copy2(next(where.archive.glob(f"{Path(c.file).stem}-*")) if c.status != REJECTED else
                     next(where.rejected.glob(f"{Path(c.file).stem}-*")), where.inbox / c.file)
    again = consolidate(master, as_of=AS_OF, refresh=False)
    assert again.rows_added == 0 and again.rows_updated == 0
    assert master.read_bytes() == before and not again.master_written


# ---- bugs the corpus found, each shown on its own -------------------------------------------------

def _consolidate_one(master: Path, name: str, rows: list[list]):
    from .hostile import HEADERS, xlsx

    inbox = folders(master, {}).inbox
    inbox.mkdir(exist_ok=True)
    xlsx(inbox / name, [HEADERS, *rows])
    return consolidate(master, as_of=AS_OF, refresh=False)


def test_ledger_rows_stay_where_staff_keep_them(master_copy):
    from .hostile import row

    before = read_workbook(master_copy, [schema.LEDGER])[LEDGER]
    run = _consolidate_one(master_copy, "C01.xlsx", [row(activity="控烟宣传")])
    assert run.rows_added == 1
    after = read_workbook(master_copy, [schema.LEDGER])[LEDGER]
    # Every old record at its old Excel row (it used to move the whole ledger below its old end,
    # leaving as many blank rows above it, on every run); the new one right below.
    assert list(after["_row"][:len(before)]) == list(before["_row"])
    assert list(after["record_id"][:len(before)]) == list(before["record_id"])
    assert after["_row"].iloc[-1] == before["_row"].iloc[-1] + 1


def test_a_date_typed_as_a_plain_number_is_merged_once(master_copy):
    from .hostile import row

    rows = [row(date=44147, activity="体检（日期是序号）")]  # 2020-11-12 as Excel stores it, format lost
    assert _consolidate_one(master_copy, "C01-序号.xlsx", rows).rows_added == 1
    again = _consolidate_one(master_copy, "C01-序号.xlsx", rows)  # the same file sent again
    assert again.rows_added == 0 and again.rows_updated == 0


def test_the_encrypted_case_is_a_real_password_protected_workbook(tmp_path):
    msoffcrypto = pytest.importorskip("msoffcrypto")
    import io

    from .hostile import encrypted_workbook

    office = msoffcrypto.OfficeFile(io.BytesIO(encrypted_workbook()))
    assert office.is_encrypted()
    office.load_key(password="密码123")
    plain = tmp_path / "decrypted.xlsx"
    with plain.open("wb") as out:
        office.decrypt(out)
    # With the password removed it is an ordinary submission our reader reads.
    assert len(read_workbook(plain, [schema.LEDGER])[LEDGER]) == 1
