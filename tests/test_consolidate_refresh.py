"""A consolidation that changes something writes the master once: ledger, 变更记录, the report's
sheets and the marks, in one verified write with one backup — on real files."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.ooxml import sheet_parts
from macros.book.owned import next_free_row
from macros.book.read import read_workbook
from macros.book.verify import grid
from macros.book.write import FileBook
from macros.book.write_types import FILLS, SheetWrite
from macros.consolidate import consolidate, folders, written_headers
from macros.forms import build_forms
from macros.report import run_report

from .test_consolidate import fill_form, form_c01, new_row

LEDGER = schema.LEDGER.name
AS_OF = date(2020, 11, 30)
PEOPLE = schema.LEDGER.header_of("participants")
# What `report` writes: every output sheet but 变更记录 (the merge's).
OUTPUT_SHEETS = [s for s in schema.OWNED_SHEETS if s.role == "output" and s is not schema.CHANGES]


@pytest.fixture(scope="module")
def blank_forms(demo_master, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blank-forms")
    build_forms(demo_master, out, ["C01"])
    return out


def ledger_tail(master: Path) -> Path:
    """Give the master's 台账 what staff leave below the data: formatted blank rows, a note in a
    column without a header, a cell holding only a space, then more formatted blank rows. Edited
    in the zip (the writer's own rule decides where new rows go; this is what it must respect)."""
    last = int(read_workbook(master)[LEDGER]["_row"].max())
    with zipfile.ZipFile(master) as z:
        parts = {i.filename: z.read(i) for i in z.infolist()}
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode("utf-8")
    b, f = (re.search(rf'<c r="{c}{last}" s="(\d+)"', xml).group(1) for c in "BF")
    blank = "".join(f'<row r="{r}"><c r="B{r}" s="{b}"/><c r="F{r}" s="{f}"/></row>'
                    for r in range(last + 1, last + 4))
    note = (f'<row r="{last + 5}"><c r="P{last + 5}" t="inlineStr"><is><t>以上为十月数据</t></is></c></row>'
            f'<row r="{last + 6}"><c r="E{last + 6}" t="inlineStr"><is><t> </t></is></c></row>')
    more = "".join(f'<row r="{r}"><c r="B{r}" s="{b}"/><c r="F{r}" s="{f}"/></row>'
                   for r in range(last + 7, last + 12))
    xml = xml.replace("</sheetData>", blank + note + more + "</sheetData>")
    parts[part] = xml.encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    master.write_bytes(buffer.getvalue())
    return master


@pytest.fixture
def master(master_copy) -> Path:
    return ledger_tail(master_copy)


@pytest.fixture
def inbox(master) -> Path:
    where = folders(master, read_workbook(master).settings)
    where.inbox.mkdir()
    return where.inbox


def output_grids(master: Path) -> dict[str, list[list]]:
    """The output sheets' cells below their header (the header row carries a timestamp)."""
    book = CalamineWorkbook.from_path(str(master))
    return {s.name: grid(book, s.name)[1:] for s in OUTPUT_SHEETS}


def backups(master: Path) -> list[Path]:
    folder = master.parent / "backups"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_next_free_row_is_where_the_writer_puts_new_rows(master, tmp_path):
    rows = read_workbook(master)[LEDGER].to_dict("records")
    last = max(r["_row"] for r in rows)
    predicted = next_free_row(master, schema.LEDGER, (r["_row"] for r in rows))
    # below the note in a headerless column and the lone space; the formatted blank rows under
    # them are free
    assert predicted == last + 7
    new = {**rows[0], "_row": None, "record_id": "C01-9001"}
    FileBook(master).write([SheetWrite(schema.LEDGER, [*rows, new])])
    after = read_workbook(master)[LEDGER]
    assert after.loc[after["record_id"] == "C01-9001", "_row"].tolist() == [predicted]
    ws = openpyxl.load_workbook(master)[LEDGER]
    assert ws.cell(last + 5, 16).value == "以上为十月数据"  # staff's note stayed where it was


def test_one_write_holds_the_merge_the_report_and_the_marks(master, inbox, blank_forms):
    before = read_workbook(master)
    last = int(before[LEDGER]["_row"].max())
    committee_rows = int((before[LEDGER]["committee_id"] == "C01").sum())
    rows = [new_row(activity="老年人健康体检第一批"),
            new_row(activity="老年人健康体检第二批", participants=250_000),  # a warning, still merged
            new_row(activity="老年人健康体检第三批")]
    fill_form(form_c01(blank_forms), inbox / "C01-11月.xlsx", rows)

    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 3 and "一次写入" in run.refreshed
    assert len(backups(master)) == 1  # one write: one backup

    ledger = read_workbook(master)[LEDGER]
    added = ledger[ledger["source"] == "C01-11月.xlsx"]
    assert added["_row"].tolist() == [last + 7, last + 8, last + 9]  # below staff's note
    big = int(added.loc[added["participants"] == 250_000, "_row"].iloc[0])
    assert big == last + 8

    # The mark sits on 参与人数 of that row: the warning fill and a note naming the count.
    wb = openpyxl.load_workbook(master)
    ws = wb[LEDGER]
    col = [c.value for c in ws[1]].index(PEOPLE) + 1
    cell = ws.cell(big, col)
    assert cell.fill.fgColor.rgb.endswith(FILLS[schema.LEVEL_WARNING])
    assert cell.comment is not None and "250,000" in cell.comment.text
    for other in (big - 1, big + 1):  # and not on its neighbours
        assert ws.cell(other, col).comment is None
    # 校验结果 lists it and links to that cell.
    issues = wb[schema.ISSUES.name]
    found = [r for r in issues.iter_rows(min_row=2) if any("250,000" in str(c.value or "") for c in r)]
    assert len(found) == 1
    links = {c.hyperlink.location for r in found for c in r if c.hyperlink}
    assert f"'{LEDGER}'!{openpyxl.utils.get_column_letter(col)}{big}" in links

    # 居委会进度 counts the new rows.
    progress = read_workbook(master, [schema.COMMITTEE_PROGRESS])[schema.COMMITTEE_PROGRESS.name]
    c01 = progress[progress["committee_id"] == "C01"].iloc[0]
    assert int(c01["entries"]) == committee_rows + 3

    # 通知清单 lists every notice rendered, and the files are there.
    notices = read_workbook(master, [schema.NOTICES])[schema.NOTICES.name]
    out = master.parent / str(read_workbook(master).settings["notices"])
    assert len(notices) > 0
    for name in notices["docx"].dropna():
        assert (out / name).is_file()

    # What `healthbook report` would have written is what the one write wrote.
    written = output_grids(master)
    run_report(FileBook(master), as_of=AS_OF)
    assert output_grids(master) == written


def test_a_busy_master_gets_one_staged_file_holding_everything(master, inbox, blank_forms):
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx",
              [new_row(activity="老年人健康体检第四批", participants=300_000)])
    owner = master.with_name("~$" + master.name)
    owner.write_bytes(bytes([4]) + b"zhou".ljust(53) + "周敏".encode("utf-16-le"))
    original = master.read_bytes()

    run = consolidate(master, as_of=AS_OF)
    assert not run.master_written and run.busy and run.staged and "暂存文件" in run.refreshed
    assert "请勿据此发出" in run.refreshed  # the notices are ahead of the master
    receipts = master.parent / schema.SETTINGS_BY_KEY["receipts"].default
    assert not receipts.exists() or not list(receipts.rglob("*.html"))  # nothing confirmed yet
    assert master.read_bytes() == original and not backups(master)
    assert [p.name for p in inbox.iterdir()] == ["C01.xlsx"]
    assert list(master.parent.glob(f"{master.stem}-待合并-*")) == [run.staged]

    staged = read_workbook(run.staged)
    added = staged[LEDGER][staged[LEDGER]["source"] == "C01.xlsx"]
    assert added["participants"].tolist() == [300_000]
    row = int(added["_row"].iloc[0])
    ws = openpyxl.load_workbook(run.staged)[LEDGER]
    col = [c.value for c in ws[1]].index(PEOPLE) + 1
    assert "300,000" in ws.cell(row, col).comment.text
    progress = read_workbook(run.staged, [schema.COMMITTEE_PROGRESS])[schema.COMMITTEE_PROGRESS.name]
    assert progress["entries"].sum() == len(read_workbook(master)[LEDGER]) + 1  # the master's + the new
    changes = read_workbook(run.staged, [schema.CHANGES])[schema.CHANGES.name]
    assert "C01.xlsx" in set(changes["source"])

    owner.unlink()
    again = consolidate(master, as_of=AS_OF)
    assert again.master_written and len(backups(master)) == 1
    assert len(list(receipts.glob("回执-C01-*.html"))) == 1


def test_nothing_changed_nothing_written(master, inbox, blank_forms):
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row(activity="老年人健康体检第五批")])
    assert consolidate(master, as_of=AS_OF).master_written
    shutil.copy2(next((master.parent / str(read_workbook(master).settings["archive"])).iterdir()),
                 inbox / "C01.xlsx")
    written = master.read_bytes()
    again = consolidate(master, as_of=AS_OF)
    assert not again.master_written and not again.refreshed
    assert master.read_bytes() == written and len(backups(master)) == 1


def test_without_refresh_only_the_merge_is_written(master, inbox, blank_forms):
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row(activity="老年人健康体检第六批")])
    grids = output_grids(master)
    run = consolidate(master, as_of=AS_OF, refresh=False)
    assert run.master_written and not run.refreshed
    assert output_grids(master) == grids


def test_a_broken_notice_template_does_not_hold_the_merge_back(master_copy, blank_forms):
    # The office's own progress.html with a variable that does not exist (设置 模板文件夹).
    wb = openpyxl.load_workbook(master_copy)  # a test copy: set up the office's setting
    ws = wb[schema.SETTINGS.name]
    item = schema.SETTINGS_BY_KEY["templates"].item
    next(r for r in ws.iter_rows() if r[0].value == item)[1].value = "我的模板"
    wb.save(master_copy)
    (master_copy.parent / "我的模板").mkdir()
    (master_copy.parent / "我的模板" / "progress.html").write_text("{{ no_such_value }}", encoding="utf-8")
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    fill_form(form_c01(blank_forms), where.inbox / "C01.xlsx", [new_row(activity="老年人健康体检第七批")])
    grids = output_grids(master_copy)

    run = consolidate(master_copy, as_of=AS_OF)
    assert run.master_written and run.rows_added == 1
    assert "未刷新" in run.refreshed and "no_such_value" in run.refreshed
    assert "老年人健康体检第七批" in set(read_workbook(master_copy)[LEDGER]["activity"])
    assert output_grids(master_copy) == grids and len(backups(master_copy)) == 1
    assert not any(where.inbox.iterdir())


def test_a_refresh_failing_the_written_files_check_does_not_hold_the_merge_back(master, inbox, blank_forms,
                                                                               monkeypatch):
    # Fault injection: the writer's re-read check refuses any file holding 校验结果 (as it would
    # for a bug in writing the report's sheets); the merge alone must still go in.
    import macros.book.write as writer
    from macros.book.verify import VerifyError

    check = writer.check_values

    def refuse_report(reads, written, unchanged):
        if schema.ISSUES.name in written:
            raise VerifyError("injected")
        return check(reads, written, unchanged)

    monkeypatch.setattr(writer, "check_values", refuse_report)
    fill_form(form_c01(blank_forms), inbox / "C01.xlsx", [new_row(activity="老年人健康体检第八批")])
    grids = output_grids(master)
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 1
    assert "未刷新" in run.refreshed and "技术细节：injected" in run.refreshed and "技术联系人" in run.refreshed
    assert "老年人健康体检第八批" in set(read_workbook(master)[LEDGER]["activity"])
    assert output_grids(master) == grids and not any(inbox.iterdir())


def test_a_column_the_master_lacks_is_marked_where_the_writer_adds_it(master_copy, blank_forms):
    wb = openpyxl.load_workbook(master_copy)  # a test copy: a ledger made without 参与人数
    ws = wb[LEDGER]
    ws.delete_cols([c.value for c in ws[1]].index(PEOPLE) + 1)
    wb.save(master_copy)
    headers = read_workbook(master_copy)[LEDGER].attrs["headers"]
    assert PEOPLE not in headers
    where = folders(master_copy, read_workbook(master_copy).settings)
    where.inbox.mkdir()
    fill_form(form_c01(blank_forms), where.inbox / "C01.xlsx",
              [new_row(activity="老年人健康体检第八批", participants=400_000)])

    assert consolidate(master_copy, as_of=AS_OF).master_written
    ledger = read_workbook(master_copy)[LEDGER]
    col = ledger.attrs["headers"].index(PEOPLE) + 1
    assert col == len([h for h in headers if h]) + 1  # appended after the last header
    row = int(ledger.loc[ledger["participants"] == 400_000, "_row"].iloc[0])
    wb = openpyxl.load_workbook(master_copy)
    assert "400,000" in wb[LEDGER].cell(row, col).comment.text
    links = {c.hyperlink.location for r in wb[schema.ISSUES.name].iter_rows(min_row=2) for c in r
             if c.hyperlink and any("400,000" in str(x.value or "") for x in r)}
    assert links == {f"'{LEDGER}'!{openpyxl.utils.get_column_letter(col)}{row}"}


def test_written_headers_are_the_header_row_the_writer_leaves(master_copy):
    # Staff moved columns, added one of their own and dropped two optional contract columns.
    wb = openpyxl.load_workbook(master_copy)  # a test copy
    ws = wb[LEDGER]
    headers = [c.value for c in ws[1]]
    for name in ("备注", "入简报"):
        ws.delete_cols(headers.index(name) + 1)
        headers = [c.value for c in ws[1]]
    ws.move_range(f"A1:A{ws.max_row}", cols=ws.max_column + 1)  # 记录编号 moved to the far right
    ws.cell(1, ws.max_column + 2, "核对人")
    wb.save(master_copy)
    before = read_workbook(master_copy)[LEDGER]
    book = FileBook(master_copy)
    book.write([SheetWrite(schema.LEDGER, before.to_dict("records"))])
    after = read_workbook(master_copy)[LEDGER].attrs["headers"]
    assert written_headers(before.attrs["headers"]) == after
    assert {"备注", "入简报", "核对人", "记录编号"} <= set(after)
