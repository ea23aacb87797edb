"""The safe writer on a decorated master: what it promises is checked independently of its code."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from macros import schema
from macros.book.backup import list_backups
from macros.book.ooxml import sheet_parts
from macros.book.read import read_workbook
from macros.book.write import FileBook, stage, staged_files
from macros.book.write_types import FILLS, Mark, SheetWrite

from .conftest import convert_with_libreoffice
from .decorated import (
    EXTRA_HEADER,
    FORMULA_HEADER,
    KEEP_BACKUPS,
    STAFF,
    STAFF_NOTE_LEDGER,
    STAFF_NOTE_PROJECTS,
)

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
INJECTION = "=HYPERLINK(\"http://evil\",\"点我\")"




def parts_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def ledger_rows(path: Path) -> list[dict]:
    frame = read_workbook(path)[schema.LEDGER.name]
    return frame.to_dict("records")


def sheet_xml(path: Path, sheet: str) -> str:
    parts = parts_of(path)
    return parts[sheet_parts(parts)[sheet]].decode("utf-8")


def the_write(path: Path) -> tuple[list[SheetWrite], list[Mark]]:
    """A realistic write: ledger (one value changed, one row added, formula text), issues, progress."""
    rows = ledger_rows(path)
    rows[0]["activity"] = INJECTION
    rows[1]["quantity"] = 123.5
    rows.append({"record_id": "C01-9999", "date": date(2020, 11, 20), "committee_id": "C01",
                 "project_id": "P02", "activity": "+新增 活动", "participants": 12, "quantity": 12,
                 "status": "进行中", "reporter": "周敏", "source": "填报表-C01.xlsx", EXTRA_HEADER: "新核对人"})
    issues = [{"sheet": schema.PROJECTS.name, "row": 3, "column": "目标值", "key": "P02", "level": "警告",
               "code": "target_low", "message": "目标值偏低", "suggestion": "-核对"},
              {"sheet": schema.LEDGER.name, "row": 2, "column": "日期", "key": rows[0]["record_id"],
               "level": "错误", "code": "bad_date", "message": "日期晚于截止日期", "suggestion": "@请改"}]
    progress = [{"committee_id": "C01", "committee_name": "新福康里居委会", "entries": 30,
                 "last_report": date(2020, 11, 12), "days_since_report": 3, "target": 1000, "achieved": 1250.5,
                 "percent": 1.2505, "overdue": 0, "unverified": 1, "status": "正常"},
                {"committee_id": "C11", "committee_name": "景华居委会", "entries": 3,
                 "last_report": date(2020, 7, 2), "days_since_report": 136, "target": 1000, "achieved": 100,
                 "percent": 0.1, "overdue": 2, "unverified": 0, "status": "严重滞后"}]
    changes = [{"time": datetime(2020, 11, 20, 9, 30), "source": "填报表-C01.xlsx", "record_id": "C01-9999",
                "action": "新增", "column": "", "old": "", "new": ""}]
    sheets = [
        SheetWrite(schema.LEDGER, rows),
        SheetWrite(schema.ISSUES, issues, note="2020-11-20 09:30 校验，共 2 个问题"),
        SheetWrite(schema.COMMITTEE_PROGRESS, progress, note="截至 2020-11-15",
                   fills={(0, "status"): "正常", (1, "status"): "严重滞后"},
                   links={(0, "committee_id"): "'台账'!A2"}),
        SheetWrite(schema.CHANGES, changes),
    ]
    marks = [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低"),
             Mark(schema.PROJECTS.name, 3, "类别", "错误", "与员工批注同一格"),
             Mark(schema.LEDGER.name, 2, "日期", "错误", "日期晚于截止日期"),
             Mark(schema.LEDGER.name, 4, "备注", "警告", "备注为空")]
    return sheets, marks


# --- byte-identical: every untouched part, checked here with ElementTree, not the writer's code


def _grew(old: bytes, new: bytes) -> None:
    """Every element of each old list is still there, unchanged and in order (styles), or present (others)."""
    a, b = ET.fromstring(old), ET.fromstring(new)
    if a.tag.endswith("styleSheet"):
        new_lists = {c.tag: c for c in b}
        for child in a:
            assert [ET.tostring(x) for x in child] == [ET.tostring(x) for x in new_lists[child.tag]][: len(child)]
    else:
        new_items = {ET.tostring(x) for x in b}
        assert all(ET.tostring(x) in new_items for x in a)


def _raw(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        info = zf.getinfo(name)
        fh.seek(info.header_offset + 26)
        skip = int.from_bytes(fh.read(2), "little") + int.from_bytes(fh.read(2), "little")
        fh.seek(info.header_offset + 30 + skip)
        return fh.read(info.compress_size)


def test_untouched_parts_stay_byte_identical_and_shared_parts_only_grow(master, early_reads):
    before = parts_of(master)
    raw_before = {name: _raw(master, name) for name in before}
    sheets, marks = the_write(master)
    FileBook(master).write(sheets, marks)
    after = parts_of(master)
    names = sheet_parts(before)
    owned = {names[s.name] for s in schema.OWNED_SHEETS}
    marked_sheet = names[schema.PROJECTS.name]
    grow_only = {"xl/styles.xml", "[Content_Types].xml"}
    notes = {n for n in after if re.search(r"(comments\d+\.xml|vmlDrawing\d+\.vml|\.rels)$", n)}

    assert set(before) <= set(after)
    changed = {n for n in before if before[n] != after[n]}
    assert changed <= owned | {marked_sheet} | grow_only | notes, changed - owned
    for name in before:
        if name not in owned | {marked_sheet} | grow_only | notes:
            assert after[name] == before[name], name
            # Copied as the original compressed bytes, not re-compressed.
            assert _raw(master, name) == raw_before[name], name
    # The decorations, named: VBA, chart, drawings, image, workbook (defined names), other sheets.
    for name in ("xl/vbaProject.bin", "xl/charts/chart1.xml", "xl/media/image1.png", "xl/workbook.xml",
                 "xl/sharedStrings.xml", "xl/drawings/drawing1.xml", names[schema.GUIDE.name],
                 names[schema.SETTINGS.name], names[schema.COMMITTEES.name]):
        assert after[name] == before[name], name
    for name in grow_only | {n for n in notes if n.endswith(".rels") and n in before}:
        _grew(before[name], after[name])
    # A marked sheet: its XML outside the cell data is as it was (a legacyDrawing may be added).
    strip = re.compile(r"<sheetData>.*</sheetData>|<legacyDrawing [^>]*/>", re.S)
    assert strip.sub("", after[marked_sheet].decode()) == strip.sub("", before[marked_sheet].decode())


def test_owned_sheet_keeps_everything_but_its_cell_data(master):
    before = sheet_xml(master, schema.LEDGER.name)
    sheets, marks = the_write(master)
    FileBook(master).write(sheets, marks)
    after = sheet_xml(master, schema.LEDGER.name)
    for element in ("sheetViews", "cols", "dataValidations", "conditionalFormatting", "extLst", "pageMargins",
                    "legacyDrawing"):
        found = re.search(rf"<{element}\b.*?(?:</{element}>|/>)", before, re.S).group(0)
        assert found in after, element
    assert 'state="frozen"' in after and "x14:dataValidation" in after and "x14:dataBar" in after


def test_values_read_back_with_calamine_and_openpyxl(master, early_reads):
    sheets, marks = the_write(master)
    FileBook(master).write(sheets, marks)
    ledger = sheets[0].rows
    book = CalamineWorkbook.from_path(str(master))
    grid = book.get_sheet_by_name(schema.LEDGER.name).to_python()
    assert grid[0][: len(schema.LEDGER.headers)] == schema.LEDGER.headers
    assert grid[1][schema.LEDGER.keys.index("activity")] == INJECTION
    assert grid[2][schema.LEDGER.keys.index("quantity")] == 123.5
    last = grid[len(ledger)]
    assert last[0] == "C01-9999" and last[1] == date(2020, 11, 20) and last[5] == 12.0
    assert read_workbook(master)[schema.LEDGER.name].drop(columns="_row").to_dict("records")[-1]["activity"] \
        == "+新增 活动"

    wb = openpyxl.load_workbook(master)
    ws = wb[schema.LEDGER.name]
    injected = ws.cell(2, schema.LEDGER.keys.index("activity") + 1)
    assert injected.value == INJECTION and injected.data_type == "s"  # text, never a formula
    assert injected.quotePrefix  # and Excel keeps it text when the cell is edited
    new = ws.cell(len(ledger) + 1, 2)
    assert new.value == datetime(2020, 11, 20) and new.number_format == schema.DATE_FORMAT
    assert ws.cell(len(ledger) + 1, 6).value == 12 and ws.cell(len(ledger) + 1, 6).data_type == "n"
    # The staff formula whose inputs did not change is kept (with its cached value) verbatim.
    headers = [c.value for c in ws[1]]
    formula_col = headers.index(FORMULA_HEADER) + 1
    assert str(ws.cell(4, formula_col).value).startswith("=IFERROR(")
    assert ws.cell(len(ledger) + 1, headers.index(EXTRA_HEADER) + 1).value == "新核对人"

    progress = wb[schema.COMMITTEE_PROGRESS.name]
    assert progress["H2"].value == pytest.approx(1.2505) and progress["H2"].number_format == schema.COMMITTEE_PROGRESS.column("percent").number_format
    assert progress["K2"].fill.fgColor.rgb == "FF" + FILLS["正常"]
    assert progress["K3"].fill.fgColor.rgb == "FF" + FILLS["严重滞后"]
    assert progress["A2"].hyperlink.location == "'台账'!A2"
    assert progress.cell(1, len(schema.COMMITTEE_PROGRESS.columns) + 2).value == "截至 2020-11-15"
    issues = wb[schema.ISSUES.name]
    assert [c.value for c in issues[2]][:8] == ["项目", 3, "目标值", "P02", "警告", "target_low", "目标值偏低", "-核对"]
    assert issues["H2"].data_type == "s" and issues["H3"].value == "@请改"
    changes = wb[schema.CHANGES.name]
    assert changes["A2"].value == datetime(2020, 11, 20, 9, 30) and "hh:mm" in changes["A2"].number_format


def test_marks_fill_and_annotate_without_changing_values(master, early_reads):
    before = CalamineWorkbook.from_path(str(master))
    projects_before = before.get_sheet_by_name(schema.PROJECTS.name).to_python()
    sheets, marks = the_write(master)
    result = FileBook(master).write(sheets, marks)
    assert result.marks_applied == 4 and not result.marks_skipped
    after = CalamineWorkbook.from_path(str(master))
    assert after.get_sheet_by_name(schema.PROJECTS.name).to_python() == projects_before

    wb = openpyxl.load_workbook(master)
    projects, ledger = wb[schema.PROJECTS.name], wb[schema.LEDGER.name]
    assert projects["G3"].fill.fgColor.rgb == "FF" + FILLS["警告"]
    assert projects["G3"].comment.author == "healthbook" and "目标值偏低" in projects["G3"].comment.text
    assert projects["G3"].number_format == "#,##0.##"  # its own format kept, only the fill changed
    # Staff's comment stays theirs; the cell is still filled.
    cell, text = STAFF_NOTE_PROJECTS
    assert projects[cell].comment.author == STAFF and projects[cell].comment.text == text
    assert projects[cell].fill.fgColor.rgb == "FF" + FILLS["错误"]
    assert ledger["B2"].fill.fgColor.rgb == "FF" + FILLS["错误"] and ledger["B2"].number_format == schema.DATE_FORMAT
    assert ledger["K4"].comment.text.startswith("【警告】")
    assert ledger[STAFF_NOTE_LEDGER[0]].comment.author == STAFF
    # The memory of original formats lives in hidden columns of 校验结果.
    issues = wb[schema.ISSUES.name]
    hidden = [k for k, d in issues.column_dimensions.items() if d.hidden]
    assert hidden and issues[f"{hidden[0]}1"].value.startswith("healthbook")
    if early_reads:  # the ledger was re-read once marked, not before
        assert schema.LEDGER.name in early_reads and schema.ISSUES.name not in early_reads


def _cell_xml(path: Path, sheet: str, ref: str) -> str | None:
    m = re.search(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', sheet_xml(path, sheet), re.S)
    return m.group(0) if m else None


def test_remarking_after_a_fix_restores_the_original_cell_exactly(master):
    original = {ref: _cell_xml(master, schema.PROJECTS.name, ref) for ref in ("G3", "B3", "G4")}
    blank = _cell_xml(master, schema.LEDGER.name, "K4")
    book = FileBook(master)
    marks = [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低"),
             Mark(schema.PROJECTS.name, 3, "类别", "错误", "类别不对"),
             Mark(schema.LEDGER.name, 4, "备注", "警告", "备注为空")]
    book.write([], marks)
    assert _cell_xml(master, schema.PROJECTS.name, "G3") != original["G3"]
    # Staff fixed the target and the note; only the category is still wrong.
    book.write([], [Mark(schema.PROJECTS.name, 3, "类别", "错误", "类别不对"),
                    Mark(schema.PROJECTS.name, 4, "目标值", "警告", "新问题")])
    assert _cell_xml(master, schema.PROJECTS.name, "G3") == original["G3"]
    assert _cell_xml(master, schema.LEDGER.name, "K4") == blank
    wb = openpyxl.load_workbook(master)
    assert wb[schema.PROJECTS.name]["G3"].comment is None
    assert wb[schema.PROJECTS.name]["G4"].comment.text == "【警告】新问题"
    assert wb[schema.LEDGER.name]["K4"].comment is None
    # Everything fixed: every cell back as it was, staff comments untouched, our notes gone.
    book.write([], [])
    for ref, xml in original.items():
        assert _cell_xml(master, schema.PROJECTS.name, ref) == xml
    wb = openpyxl.load_workbook(master)
    comments = [(c.coordinate, c.comment.author) for ws in wb for row in ws.iter_rows() for c in row if c.comment]
    assert sorted(comments) == sorted([(STAFF_NOTE_PROJECTS[0], STAFF), (STAFF_NOTE_LEDGER[0], STAFF)])


def test_marks_none_keeps_earlier_marks_and_memory(master):
    book = FileBook(master)
    book.write([], [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低")])
    marked = _cell_xml(master, schema.PROJECTS.name, "G3")
    sheets, _ = the_write(master)
    book.write(sheets)  # a rollup-only write: marks untouched, memory carried through 校验结果's rewrite
    assert _cell_xml(master, schema.PROJECTS.name, "G3") == marked
    book.write([], [])
    assert 'fillId="0"' in _style_of(master, _cell_xml(master, schema.PROJECTS.name, "G3"))


def _style_of(path: Path, cell: str) -> str:
    s = int(re.search(r'\ss="(\d+)"', cell).group(1))
    styles = ET.fromstring(parts_of(path)["xl/styles.xml"])
    xf = styles.find("m:cellXfs", NS)[s]
    return ET.tostring(xf).decode()


def test_unlocatable_marks_are_reported_not_guessed(master):
    result = FileBook(master).write([], [Mark(schema.PROJECTS.name, 3, "没有这一列", "错误", "x"),
                                         Mark("不存在的表", 2, "日期", "错误", "x"),
                                         Mark(schema.PROJECTS.name, 1, "目标值", "错误", "表头")])
    assert result.marks_applied == 0 and len(result.marks_skipped) == 3


def test_refuses_a_sheet_it_does_not_own(master):
    before = master.read_bytes()
    with pytest.raises(ValueError, match="项目"):
        FileBook(master).write([SheetWrite(schema.PROJECTS, [{"project_id": "P99"}])])
    assert master.read_bytes() == before
    assert not list_backups(master)


def test_text_that_xml_cannot_hold_round_trips(master):
    odd = ["控制\x01字符", "_x000D_ 字面量", "换行\n第二行", "emoji 😀", "<b>&amp;</b>", " 前后空格 ", "x" * 40000]
    rows = [{"sheet": "台账", "row": i + 2, "message": text} for i, text in enumerate(odd)]
    FileBook(master).write([SheetWrite(schema.ISSUES, rows)])
    grid = CalamineWorkbook.from_path(str(master)).get_sheet_by_name(schema.ISSUES.name).to_python()
    got = [row[schema.ISSUES.keys.index("message")] for row in grid[1:]]
    assert got[:6] == odd[:6]
    assert got[6] == "x" * 32767  # Excel's cell limit
    assert openpyxl.load_workbook(master)[schema.ISSUES.name]["G6"].value == odd[4]


def test_ledger_rows_stay_at_their_row_and_unheaded_cells_are_kept(master):
    rows = ledger_rows(master)
    # Drop row 5 (a deletion the caller decided) but keep the others at their Excel rows.
    kept = [r for r in rows if r["_row"] != 5]
    FileBook(master).write([SheetWrite(schema.LEDGER, kept)])
    after = read_workbook(master)[schema.LEDGER.name]
    assert 5 not in set(after["_row"]) and list(after["_row"]) == [r["_row"] for r in kept]
    assert list(after["record_id"]) == [r["record_id"] for r in kept]


def test_backups_follow_the_setting_and_the_argument(master):
    book = FileBook(master)
    for i in range(KEEP_BACKUPS + 2):
        book.write([SheetWrite(schema.ISSUES, [], note=f"第 {i} 次")])
        if i == 0:
            first_today = list_backups(master)[0]
    # 设置 备份保留份数 newest, and the first of the day (the master as the day began).
    assert len(list_backups(master)) == KEEP_BACKUPS + 1 and list_backups(master)[-1] == first_today
    book.write([SheetWrite(schema.ISSUES, [], note="再一次")], keep_backups=2)
    assert len(list_backups(master)) == 3 and list_backups(master)[-1] == first_today


def test_the_first_backup_of_each_of_the_last_30_days_outlasts_a_busy_day(master):
    """Ten backups, one per write, and a scheduled run every ten minutes: by noon the master as it
    was before the day's first merge was gone, and a bad merge found the next morning could not be
    undone."""
    from datetime import date, datetime, timedelta

    from macros.book.backup import DAILY_DAYS, backup_dir, prune_backups

    today = date(2020, 11, 20)
    folder = backup_dir(master)
    folder.mkdir(exist_ok=True)
    made = {}
    for days_ago in range(DAILY_DAYS + 5):
        for hour in (8, 12, 17):  # three writes a day
            when = datetime.combine(today - timedelta(days=days_ago), datetime.min.time()) + timedelta(hours=hour)
            path = folder / f"{master.stem}-{when:%Y%m%d-%H%M%S-%f}{master.suffix}"
            path.write_bytes(master.read_bytes())
            made[(days_ago, hour)] = path
    prune_backups(master, 4, today=today)
    left = set(list_backups(master))
    newest = {made[(0, 17)], made[(0, 12)], made[(0, 8)], made[(1, 17)]}
    firsts = {made[(d, 8)] for d in range(DAILY_DAYS)}
    assert left == newest | firsts
    assert made[(DAILY_DAYS, 8)] not in left and made[(2, 12)] not in left


def test_stage_writes_beside_the_master_and_leaves_it_alone(master):
    before = master.read_bytes()
    sheets, marks = the_write(master)
    staged = stage(master, sheets, marks)
    assert master.read_bytes() == before
    assert staged.parent == master.parent and "-待合并-" in staged.name and staged.suffix == ".xlsm"
    assert staged_files(master) == [staged]
    grid = CalamineWorkbook.from_path(str(staged)).get_sheet_by_name(schema.LEDGER.name).to_python()
    assert grid[1][schema.LEDGER.keys.index("activity")] == INJECTION
    assert parts_of(staged)["xl/vbaProject.bin"] == parts_of(master)["xl/vbaProject.bin"]


def test_libreoffice_opens_the_written_file_and_reads_our_values(master, tmp_path, early_reads):
    sheets, marks = the_write(master)
    FileBook(master).write(sheets, marks)
    out = tmp_path / "lo"
    out.mkdir()
    converted = convert_with_libreoffice(master, "xlsx", out)
    theirs = CalamineWorkbook.from_path(str(converted))
    ours = CalamineWorkbook.from_path(str(master))
    for sheet in (schema.LEDGER.name, schema.ISSUES.name, schema.COMMITTEE_PROGRESS.name, schema.PROJECTS.name,
                  schema.CHANGES.name):
        a = [row[:14] for row in ours.get_sheet_by_name(sheet).to_python()]
        b = [row[:14] for row in theirs.get_sheet_by_name(sheet).to_python()]
        # LibreOffice saves floats to 15 significant digits.
        assert [[pytest.approx(v) if isinstance(v, float) else v for v in row] for row in a] == b, sheet
    wb = openpyxl.load_workbook(converted)
    assert "目标值偏低" in wb[schema.PROJECTS.name]["G3"].comment.text


def test_a_workbook_with_formulas_is_recalculated_on_open(master, tmp_path):
    # As Excel saves it: no fullCalcOnLoad. After our write the cached results may be stale.
    parts = parts_of(master)
    xml = parts["xl/workbook.xml"].decode()
    parts["xl/workbook.xml"] = re.sub(r'\sfullCalcOnLoad="1"', "", xml).encode()
    plain_master = tmp_path / "excel-saved.xlsm"
    with zipfile.ZipFile(master) as src, zipfile.ZipFile(plain_master, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, parts[info.filename])
    before = parts_of(plain_master)["xl/workbook.xml"].decode()
    FileBook(plain_master).write([SheetWrite(schema.LEDGER, ledger_rows(plain_master))])
    after = parts_of(plain_master)["xl/workbook.xml"].decode()
    assert 'fullCalcOnLoad="1"' in after and 'fullCalcOnLoad' not in before
    assert after.replace(' fullCalcOnLoad="1"', "") == before


def test_repeated_runs_do_not_grow_the_styles(master):
    book = FileBook(master)
    sheets, marks = the_write(master)
    book.write(sheets, marks)
    grown = parts_of(master)["xl/styles.xml"]
    for _ in range(3):
        sheets, marks = the_write(master)
        book.write(sheets, marks)
    assert parts_of(master)["xl/styles.xml"] == grown


def _prefixed(xml: str) -> str:
    # The same worksheet as the .NET Open XML SDK writes it: every element with an "x:" prefix.
    xml = xml.replace(f'<worksheet xmlns="{NS["m"]}"', f'<x:worksheet xmlns:x="{NS["m"]}"')
    xml = re.sub(r"<(/?)(?!x:|\?)([a-zA-Z][a-zA-Z0-9]*)([\s/>])", r"<\1x:\2\3", xml)
    return xml.replace("</worksheet>", "</x:worksheet>")


def test_prefixed_worksheets_are_written_in_the_right_namespace(demo_master, tmp_path, early_reads):
    path = tmp_path / "prefixed.xlsx"
    parts = parts_of(demo_master)
    names = sheet_parts(parts)
    for sheet in (schema.LEDGER, schema.PROJECTS, schema.ISSUES):
        parts[names[sheet.name]] = _prefixed(parts[names[sheet.name]].decode()).encode()
    with zipfile.ZipFile(demo_master) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, parts[info.filename])
    rows = ledger_rows(path)
    rows[0]["activity"] = "改过"
    issues = [{"sheet": schema.PROJECTS.name, "row": 3, "column": "目标值", "message": "目标值偏低"}]
    FileBook(path).write([SheetWrite(schema.LEDGER, rows),
                          SheetWrite(schema.ISSUES, issues, links={(0, "row"): "'项目'!G3"})],
                         [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低")])
    for sheet in (schema.LEDGER, schema.PROJECTS, schema.ISSUES):
        root = ET.fromstring(parts_of(path)[names[sheet.name]])
        # Every element in the main namespace (an unprefixed one without it would be lost on Excel).
        assert {el.tag.split("}")[0] for el in root.iter()} == {"{" + NS["m"]}, sheet.name
    wb = openpyxl.load_workbook(path)
    assert wb[schema.LEDGER.name]["E2"].value == "改过"
    assert wb[schema.PROJECTS.name]["G3"].comment.text == "【警告】目标值偏低"
    assert wb[schema.ISSUES.name]["B2"].hyperlink.location == "'项目'!G3"


def test_numpy_values_and_row_numbers_are_plain_cells(master):
    import numpy as np
    import pandas as pd

    rows = ledger_rows(master)
    rows[2] = {**rows[2], "_row": np.int64(rows[2]["_row"]), "participants": np.int64(77),
               "quantity": np.float64(1.5), "date": pd.Timestamp("2020-03-04"), "note": np.nan,
               "reporter": pd.NA}
    FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    after = read_workbook(master)[schema.LEDGER.name]
    row = after[after["_row"] == int(rows[2]["_row"])].iloc[0]
    assert (row["participants"], row["quantity"], row["date"]) == (77, 1.5, date(2020, 3, 4))
    assert row["note"] is None and row["reporter"] is None
    assert len(after) == len(rows)


def test_new_ledger_rows_fill_formatted_blank_rows_below_the_data(master, tmp_path):
    # Staff formatted blank rows below the data (as Excel saves them: styled, empty cells).
    parts = parts_of(master)
    part = sheet_parts(parts)[schema.LEDGER.name]
    xml = parts[part].decode()
    last = max(int(r) for r in re.findall(r'<row r="(\d+)"', xml))
    blank = "".join(f'<row r="{r}"><c r="A{r}" s="7"/><c r="E{r}" s="7"/></row>' for r in range(last + 1, last + 4))
    parts[part] = xml.replace("</sheetData>", blank + "</sheetData>").encode()
    path = tmp_path / "formatted.xlsm"
    with zipfile.ZipFile(master) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, parts[info.filename])
    rows = ledger_rows(path)
    rows.append({"record_id": "C01-9998", "date": date(2020, 11, 21), "committee_id": "C01", "project_id": "P01",
                 "activity": "紧接数据之后", "quantity": 1, "status": "进行中"})
    FileBook(path).write([SheetWrite(schema.LEDGER, rows)])
    after = read_workbook(path)[schema.LEDGER.name]
    assert after["_row"].iloc[-1] == last + 1 and after["activity"].iloc[-1] == "紧接数据之后"
    written = sheet_xml(path, schema.LEDGER.name)
    assert re.search(rf'<c r="A{last + 1}" s="7"', written)  # the new cell took the row's format
    for r in (last + 2, last + 3):  # the other formatted rows are kept as they were
        assert f'<row r="{r}"><c r="A{r}" s="7"/><c r="E{r}" s="7"/></row>' in written


def test_a_deleted_output_sheet_is_added_back(demo_master, tmp_path):
    path = tmp_path / "older.xlsx"
    wb = openpyxl.load_workbook(demo_master)  # a plain fixture copy, not a decorated master
    del wb[schema.CHANGES.name]
    del wb[schema.ISSUES.name]
    wb.save(path)
    before = parts_of(path)
    changes = [{"time": datetime(2020, 11, 20, 9, 30), "source": "填报表-C01.xlsx", "record_id": "C01-0001",
                "action": "修改", "column": "备注", "old": "", "new": "已核对"}]
    FileBook(path).write([SheetWrite(schema.CHANGES, changes)],
                         [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低")])
    book = CalamineWorkbook.from_path(str(path))
    assert book.sheet_names[-2:] == [schema.ISSUES.name, schema.CHANGES.name]
    grid = book.get_sheet_by_name(schema.CHANGES.name).to_python()
    assert grid[0][:7] == schema.CHANGES.headers and grid[1][2] == "C01-0001"
    after = parts_of(path)
    # workbook.xml only grew by the two <sheet> entries; every other old sheet is untouched.
    old_wb, new_wb = before["xl/workbook.xml"].decode(), after["xl/workbook.xml"].decode()
    assert re.sub(r'<sheet name="(校验结果|变更记录)"[^>]*/>', "", new_wb) == old_wb
    names = sheet_parts(before)
    for sheet in (schema.LEDGER, schema.COMMITTEES, schema.SETTINGS):
        assert after[names[sheet.name]] == before[names[sheet.name]]
    assert openpyxl.load_workbook(path)[schema.PROJECTS.name]["G3"].comment is not None
    # An independent reader opens the added sheets too.
    out = tmp_path / "lo"
    out.mkdir()
    theirs = CalamineWorkbook.from_path(str(convert_with_libreoffice(path, "xlsx", out)))
    assert theirs.get_sheet_by_name(schema.CHANGES.name).to_python()[1][2] == "C01-0001"


def test_a_ledger_without_its_header_is_refused_not_guessed(master):
    rows = ledger_rows(master)
    parts = parts_of(master)
    part = sheet_parts(parts)[schema.LEDGER.name]
    # Someone typed over the header row (日期 → 时间): the writer must not guess the layout.
    xml = parts[part].decode()
    strings = parts["xl/sharedStrings.xml"].decode()
    index = re.findall(r"<si>(.*?)</si>", strings).index("<t>日期</t>")
    xml = xml.replace(f'<c r="B1" s="7" t="s"><v>{index}</v></c>', '<c r="B1" t="inlineStr"><is><t>时间</t></is></c>')
    parts[part] = xml.encode()
    with zipfile.ZipFile(master) as src:
        infos = src.infolist()
    with zipfile.ZipFile(master, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in infos:
            dst.writestr(info, parts[info.filename])
    before = master.read_bytes()
    from macros.errors import MissingColumns

    with pytest.raises(MissingColumns, match="日期"):
        FileBook(master).write([SheetWrite(schema.LEDGER, rows)])
    assert master.read_bytes() == before


def test_marking_a_workbook_saved_by_openpyxl_keeps_its_comments(demo_master, tmp_path):
    path = tmp_path / "openpyxl-saved.xlsx"
    wb = openpyxl.load_workbook(demo_master)
    wb[schema.PROJECTS.name]["B3"].comment = openpyxl.comments.Comment("员工的批注", STAFF)
    wb.save(path)  # comments in xl/comments/comment1.xml, text as &#…; references
    result = FileBook(path).write([], [Mark(schema.PROJECTS.name, 3, "目标值", "警告", "目标值偏低"),
                                       Mark(schema.PROJECTS.name, 3, "类别", "错误", "类别不对")])
    assert result.marks_applied == 2
    ws = openpyxl.load_workbook(path)[schema.PROJECTS.name]
    assert ws["B3"].comment.text == "员工的批注" and ws["B3"].comment.author == STAFF
    assert ws["G3"].comment.text == "【警告】目标值偏低"
    FileBook(path).write([], [])
    ws = openpyxl.load_workbook(path)[schema.PROJECTS.name]
    assert ws["G3"].comment is None and ws["B3"].comment.text == "员工的批注"


def test_a_write_that_changes_nothing_leaves_the_file_alone(master, early_reads):
    book = FileBook(master)
    sheets, marks = the_write(master)
    book.write(sheets, marks)
    before, backups = master.read_bytes(), list_backups(master)
    rows = ledger_rows(master)
    result = book.write([SheetWrite(schema.LEDGER, rows), sheets[1], sheets[2], sheets[3]], marks)
    assert result.parts_changed == [] and result.backup is None
    assert master.read_bytes() == before and list_backups(master) == backups


@pytest.mark.parametrize("layout", ["spans first", "no row numbers", "self-closing row"])
def test_marks_land_on_the_right_cell_however_rows_are_written(demo_master, tmp_path, layout):
    # Marking parses only the marked rows when every row is written <row r="N"…>; other writers'
    # layouts take the full parse. Either way the fill and note land on 日期 of Excel row 6.
    parts = parts_of(demo_master)
    part = sheet_parts(parts)[schema.LEDGER.name]
    xml = parts[part].decode()
    if layout == "spans first":
        xml = re.sub(r'<row r="(\d+)" spans="([^"]*)"', r'<row spans="\2" r="\1"', xml)
    elif layout == "no row numbers":  # rows and cells numbered by position, as some tools write
        xml = re.sub(r'(<row) r="\d+"', r"\1", xml)
        xml = re.sub(r'(<c) r="[A-Z]+\d+"', r"\1", xml)
    else:  # an empty row 5 written as <row r="5"/> right before the marked row
        xml = re.sub(r'<row r="5"[^>]*>.*?</row>', '<row r="5"/>', xml, count=1, flags=re.S)
    parts[part] = xml.encode()
    path = tmp_path / "rows.xlsx"
    with zipfile.ZipFile(demo_master) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, parts[info.filename])
    before = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.LEDGER.name).to_python()
    result = FileBook(path).write([], [Mark(schema.LEDGER.name, 6, "日期", "错误", "日期不对")])
    assert result.marks_applied == 1
    ws = openpyxl.load_workbook(path)[schema.LEDGER.name]
    assert ws["B6"].fill.fgColor.rgb[-6:] == FILLS["错误"] and ws["B6"].comment.text == "【错误】日期不对"
    assert [c.coordinate for row in ws.iter_rows() for c in row if c.comment] == ["B6"]
    after = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(schema.LEDGER.name).to_python()
    assert after == before


def test_a_ledger_whose_every_row_changed_is_written(master, early_reads):
    # No old row is kept verbatim: the unchanged-rows pass finds none (regression: it failed).
    book = FileBook(master)
    rows = book.read()[schema.LEDGER.name].to_dict("records")
    for i, row in enumerate(rows):
        row["note"] = f"逐行修改{i}"
    book.write([SheetWrite(schema.LEDGER, rows)])
    after = read_workbook(master)[schema.LEDGER.name]
    assert list(after["note"]) == [f"逐行修改{i}" for i in range(len(rows))]
    assert list(after["_row"]) == [r["_row"] for r in rows]
