"""healthbook init: the built workbook agrees with the contract, read back two independent ways."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import openpyxl
import pytest

from macros import demo, schema
from macros.book.backup import list_backups
from macros.book.read import read_workbook
from macros.cli import main
from macros.forms import build_forms

from .conftest import convert_with_libreoffice


def test_every_contract_sheet_and_header_is_present(demo_master):
    wb = openpyxl.load_workbook(demo_master)
    assert wb.sheetnames == [s.name for s in schema.SHEETS]
    for sheet in schema.SHEETS:
        if not sheet.columns or sheet.role == "lists":
            continue
        ws = wb[sheet.name]
        headers = [c.value for c in ws[1]][: len(sheet.columns)]
        assert headers == sheet.headers, sheet.name
        assert ws.freeze_panes in ("A2", "B2"), sheet.name
    assert wb[schema.LISTS.name].sheet_state == "hidden"


def test_output_sheets_are_present_but_empty(demo_master):
    wb = openpyxl.load_workbook(demo_master)
    for sheet in schema.OUTPUT_SHEETS:
        assert wb[sheet.name].max_row == 1, sheet.name


def test_the_guide_says_the_change_log_is_appended_not_rewritten(demo_master):
    """变更记录 keeps every row it ever had (numbers given out rest on it): the 说明 sheet must not
    tell staff it is rewritten like the other output sheets."""
    ws = openpyxl.load_workbook(demo_master)[schema.GUIDE.name]
    text = next(row[1] for row in ws.iter_rows(values_only=True) if row[0] == "自动生成的表")
    rewritten, _, rest = text.partition("重写")
    assert f"“{schema.CHANGES.name}”" not in rewritten
    assert all(f"“{s.name}”" in rewritten for s in schema.OUTPUT_SHEETS if s is not schema.CHANGES)
    assert f"“{schema.CHANGES.name}”只在末尾追加" in rest and "原有的行不改动" in rest


def test_dropdowns_take_their_lists_from_defined_names(demo_master):
    wb = openpyxl.load_workbook(demo_master)
    names = wb.defined_names
    for list_name in schema.LIST_NAMES:
        assert list_name.name in names
    for list_name in schema.LIST_NAMES:
        if list_name.values:
            sheet, cells = next(names[list_name.name].destinations)
            values = [c.value for row in wb[sheet][cells] for c in row]
            assert values == list(list_name.values)
    for sheet in schema.SHEETS:
        dropdowns = [c for c in sheet.columns if c.list_name]
        if not dropdowns or sheet.role == "output":
            continue
        validations = {
            str(dv.sqref).split(":")[0]: dv for dv in wb[sheet.name].data_validations.dataValidation
        }
        for col in dropdowns:
            letter = openpyxl.utils.get_column_letter(sheet.columns.index(col) + 1)
            dv = validations[f"{letter}2"]
            assert dv.type == "list"
            assert dv.formula1 == col.list_name, "a dropdown must reference a defined name"
            assert dv.showErrorMessage and dv.error and col.header in dv.error
            assert dv.prompt, f"{sheet.name}.{col.header} needs a Chinese input message"


def test_dynamic_code_lists_point_at_the_code_column(demo_master):
    wb = openpyxl.load_workbook(demo_master)
    formula = wb.defined_names[schema.LIST_PROJECT_IDS.name].attr_text
    assert formula.startswith("OFFSET('项目'!$A$2")


def test_readers_give_back_what_was_written(demo_master):
    rows = demo.demo_rows()
    book = read_workbook(demo_master)
    for sheet in schema.INPUT_SHEETS:
        frame = book[sheet.name]
        assert len(frame) == len(rows[sheet.name]), sheet.name
        assert list(frame.columns[: len(sheet.columns)]) == sheet.keys
    ledger = book[schema.LEDGER.name].set_index("record_id")
    first = rows[schema.LEDGER.name][0]
    got = ledger.loc[first["record_id"]]
    assert got["date"] == first["date"]
    assert got["quantity"] == first["quantity"] and isinstance(got["quantity"], int)
    assert got["_row"] == 2
    assert book.settings["street"] == "石门二路街道"
    assert book.settings["year"] == 2020


def test_demo_has_committees_that_differ_and_marks_demo_names(demo_master):
    book = read_workbook(demo_master)
    committees = book[schema.COMMITTEES.name]
    assert 11 <= len(committees) <= 15
    pilot = committees[committees["name"] == "新福康里居委会"]
    assert pilot["pilot"].tolist() == ["是"]
    others = committees[committees["name"] != "新福康里居委会"]
    assert (others["note"] == demo.DEMO_NAME_NOTE).all()
    ledger = book[schema.LEDGER.name]
    last = ledger.groupby("committee_id")["date"].max()
    assert (last.max() - last.min()).days > 60, "some committees should have stopped reporting"


def test_demo_ledger_holds_the_bulletin_events(demo_master):
    ledger = read_workbook(demo_master)[schema.LEDGER.name]
    texts = " ".join(ledger["activity"]) + " ".join(ledger["note"].dropna())
    for fact in ("崇明", "30万元", "北站街道", "江宁路街道", "白领健康大讲堂", "65周岁", "上门理发"):
        assert fact in texts, fact
    assert "800余次" in ledger["quantity"].tolist(), "the approximate count stays as typed"


def test_demo_meeting_is_the_june_22_pilot_meeting(demo_master):
    meetings = read_workbook(demo_master)[schema.MEETINGS.name]
    first = meetings.iloc[0]
    assert first["date"].isoformat().startswith("2020-06-22")
    for person in ("马颖慧", "镇杨"):
        assert person in first["attendees"]
    assert "滕毅" in first["agenda"]


def test_articles_credit_the_bulletins_contributors(demo_master):
    articles = read_workbook(demo_master)[schema.ARTICLES.name]
    assert set(articles["source_unit"]) == {"街道发展办", "街道自治办", "街道党群办"}
    assert len(articles) == 5


def test_init_refuses_to_overwrite(master_copy, capsys):
    before = master_copy.read_bytes()
    assert main(["init", str(master_copy)]) == 2
    err = capsys.readouterr().err
    assert "已存在" in err and "--force" in err and master_copy.name in err
    assert master_copy.read_bytes() == before


def test_init_force_keeps_a_backup(master_copy):
    before = master_copy.read_bytes()
    assert main(["init", str(master_copy), "--force", "--empty"]) == 0
    backups = list_backups(master_copy)
    assert len(backups) == 1 and backups[0].read_bytes() == before
    book = read_workbook(master_copy)
    assert len(book[schema.LEDGER.name]) == 0
    assert len(book[schema.PROJECTS.name]) == 7


def test_init_empty_starts_a_real_master_without_the_demos_inventions(tmp_path, capsys):
    """--empty held the demo's invented contacts (陈佳 021-62000002 …), the June 2020 meetings and
    bulletin articles, and made-up targets: a report on it sent 催办通知 to them."""
    path = tmp_path / "真的台账.xlsx"
    assert main(["init", str(path), "--empty"]) == 0
    said = capsys.readouterr().out
    assert "请先填写" in said and "目标值" in said
    book = read_workbook(path)
    for sheet in (schema.LEDGER, schema.MEETINGS, schema.ARTICLES, schema.TARGETS):
        assert len(book[sheet.name]) == 0, sheet.name
    committees, projects = book[schema.COMMITTEES.name], book[schema.PROJECTS.name]
    assert len(committees) == len(demo.COMMITTEES) and committees["contact"].isna().all()
    assert committees["phone"].isna().all() and committees["note"].isna().all()
    assert len(projects) == len(demo.PROJECTS) and projects["target"].isna().all()
    assert book.settings["street"] == demo.SETTINGS["street"] and not book.settings.get("contact")
    assert book.settings["year"] == date.today().year
    out = tmp_path / "通知"
    assert main(["report", str(path), "--out", str(out)]) in (0, 1)
    texts = " ".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
    assert "陈佳" not in texts and "2020年6月" not in texts and "李敏" not in texts


def test_init_json_summary(tmp_path, capsys):
    import json

    path = tmp_path / "x.xlsx"
    assert main(["init", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sheets"][schema.LEDGER.name] == len(demo.ledger_rows())
    assert info["backup"] is None and info["demo"] is True


def test_init_says_its_default_master_is_the_demo(tmp_path, capsys):
    """A clerk typing ``init 健康台账.xlsx`` got 313 invented records and contacts, unannounced."""
    assert main(["init", str(tmp_path / "健康台账.xlsx")]) == 0
    said = capsys.readouterr().out
    assert said.startswith("已新建主工作簿（含演示数据）") and "--empty" in said and "编造" in said
    assert main(["init", str(tmp_path / "真的.xlsx"), "--empty"]) == 0
    said = capsys.readouterr().out
    assert "演示" not in said and "编造" not in said


def test_xlsm_carries_the_xlwings_vba_project(tmp_path):
    path = tmp_path / "healthbook.xlsm"
    assert main(["init", str(path)]) == 0
    with zipfile.ZipFile(path) as zf:
        assert "xl/vbaProject.bin" in zf.namelist()
        assert "macroEnabled" in zf.read("[Content_Types].xml").decode()


def test_unsupported_suffix(tmp_path, capsys):
    assert main(["init", str(tmp_path / "x.xls")]) == 2
    assert ".xls" in capsys.readouterr().err


def test_libreoffice_opens_the_built_master(demo_master, tmp_path):
    pdf = convert_with_libreoffice(demo_master, "pdf", tmp_path)
    assert pdf.stat().st_size > 1000


@pytest.mark.parametrize("suffix", [".xlsx", ".xlsm"])
def test_libreoffice_reads_the_same_ledger(tmp_path, suffix):
    path = tmp_path / f"m{suffix}"
    main(["init", str(path)])
    out = tmp_path / "lo"
    out.mkdir()
    # Re-saved by LibreOffice (as staff might): our reader still reads the same ledger.
    resaved = convert_with_libreoffice(path, "xlsx:Calc MS Excel 2007 XML", out)
    ours = read_workbook(path)[schema.LEDGER.name]
    theirs = read_workbook(resaved)[schema.LEDGER.name]
    assert ours.drop(columns="_row").equals(theirs.drop(columns="_row"))


def test_init_force_moves_the_old_master_s_records_aside(master_copy, tmp_path, capsys):
    """A trial master replaced by ``init --force --empty`` under its name kept its .sent.json: the
    committees' forms sent again to the new master were taken for records the office had deleted,
    dropped, and the receipts said so. Restoring the replaced master brings its record back."""
    from macros.consolidate import announced_numbers, consolidate, folders, read_sent, sent_file

    from .test_consolidate import fill_form, new_row

    [blank] = build_forms(master_copy, tmp_path / "blank", ["C01"]).written
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(blank, inbox / "C01-试用.xlsx", [new_row(activity="试运行时的一行")])
    assert consolidate(master_copy, refresh=False).rows_added == 1
    [trial] = read_sent(master_copy)[0].entries  # the record it added
    announced = announced_numbers(master_copy)
    capsys.readouterr()

    assert main(["init", str(master_copy), "--force", "--empty"]) == 0
    said = capsys.readouterr().out
    backup = list_backups(master_copy)[0]  # the one init made (consolidate made one before)
    assert (backup.parent / f"{backup.name}.sent.json").is_file() and backup.name in said
    fresh, problem = read_sent(master_copy)
    assert not fresh.entries and problem == ""  # a fresh record, not "the file went missing"
    assert announced_numbers(master_copy) == announced  # never given again: a trial receipt names them

    # The go-live master: the same form sent again is news to it, added, under a number not the trial's.
    fill_form(blank, inbox / "C01-正式.xlsx", [new_row(activity="试运行时的一行")])
    [f] = consolidate(master_copy, refresh=False).files
    [live] = read_sent(master_copy)[0].entries
    assert f.rows_added == 1 and f.gone == [] and live != trial

    # Restoring the trial master (init was a slip): its committees' record comes back with it.
    capsys.readouterr()
    assert main(["restore", str(master_copy), "--backup", backup.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sent_back"] == str(sent_file(master_copy))
    assert set(read_sent(master_copy)[0].entries) == {trial}
    # The go-live master's record is kept beside the copy restore made of it (restored, it comes back).
    [replaced] = [p for p in list_backups(master_copy) if (p.parent / f"{p.name}.sent.json").is_file() and p != backup]
    kept = json.loads((replaced.parent / f"{replaced.name}.sent.json").read_text(encoding="utf-8"))
    assert set(kept["sent"]) == {live}


def test_init_over_a_deleted_master_says_its_record_is_still_there(master_copy, capsys):
    """The master deleted (or renamed) and made again under the name: the record beside it is not
    this master's; init says what to do with it (it may belong to the renamed one: not moved)."""
    from macros.consolidate import SentValues, keep_sent, sent_file

    keep_sent(master_copy, SentValues({"C01-0001": "x"}))
    master_copy.unlink()
    assert main(["init", str(master_copy), "--empty"]) == 0
    said = capsys.readouterr().out
    assert f"注意：旁边的 {sent_file(master_copy).name}" in said and sent_file(master_copy).is_file()
