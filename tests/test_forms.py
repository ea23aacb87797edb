"""healthbook forms: one standalone form per committee, read back by openpyxl, calamine and LibreOffice."""

from __future__ import annotations

import os
import shutil
import subprocess

import openpyxl
import pytest

from macros import schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import main
from macros.forms import build_forms, form_filename, read_form_info, safe_name

from .conftest import convert_with_libreoffice


@pytest.fixture(scope="module")
def forms_dir(demo_master, tmp_path_factory):
    out = tmp_path_factory.mktemp("forms")
    assert main(["forms", str(demo_master), "--out", str(out)]) == 0
    return out


def test_one_form_per_committee_named_by_id_and_name(forms_dir, demo_master):
    committees = read_workbook(demo_master)[schema.COMMITTEES.name]
    expected = {form_filename(c, n) for c, n in zip(committees["committee_id"], committees["name"])}
    assert {p.name for p in forms_dir.glob("*.xlsx")} == expected
    assert "填报表-C01-新福康里居委会.xlsx" in expected


def test_form_sheets_columns_and_hidden_info(forms_dir):
    wb = openpyxl.load_workbook(forms_dir / "填报表-C03-蒋家巷居委会.xlsx")
    assert wb.sheetnames == [schema.FORM_GUIDE.name, schema.LEDGER.name, schema.LISTS.name,
                             schema.FORM_INFO.name]
    assert wb[schema.FORM_INFO.name].sheet_state == "hidden"
    assert wb[schema.LISTS.name].sheet_state == "hidden"
    ws = wb[schema.LEDGER.name]
    headers = [c.value for c in ws[1]][: len(schema.FORM_LEDGER_COLUMNS)]
    assert headers == [c.header for c in schema.FORM_LEDGER_COLUMNS]
    assert ws.max_row == 1, "no prefilled rows: a blank form reads as empty"
    letter = openpyxl.utils.get_column_letter(
        [c.key for c in schema.FORM_LEDGER_COLUMNS].index("committee_id") + 1)
    [dv] = [dv for dv in ws.data_validations.dataValidation if str(dv.sqref).startswith(f"{letter}2")]
    assert str(dv.sqref) == f"{letter}2:{letter}{schema.FORM_INPUT_ROWS + 1}"
    guide = " ".join(str(c.value) for row in wb[schema.FORM_GUIDE.name].iter_rows() for c in row if c.value)
    assert "蒋家巷居委会" in guide and "记录编号" in guide and "P07" in guide


def test_dropdowns_come_from_the_forms_own_defined_names(forms_dir, demo_master):
    wb = openpyxl.load_workbook(forms_dir / "填报表-C03-蒋家巷居委会.xlsx")
    projects = read_workbook(demo_master)[schema.PROJECTS.name]["project_id"].tolist()

    def values(name):
        sheet, cells = next(wb.defined_names[name].destinations)
        assert sheet == schema.LISTS.name, "a form must not point at sheets it does not have"
        return [c.value for row in wb[sheet][cells] for c in row]

    assert values(schema.LIST_PROJECT_IDS.name) == projects
    assert values(schema.LIST_COMMITTEE_IDS.name) == ["C03"]
    assert values(schema.LIST_STATUSES.name) == list(schema.STATUSES)
    ws = wb[schema.LEDGER.name]
    rules = {str(dv.sqref).split(":")[0]: dv for dv in ws.data_validations.dataValidation}
    for i, col in enumerate(schema.FORM_LEDGER_COLUMNS, start=1):
        dv = rules.get(f"{openpyxl.utils.get_column_letter(i)}2")
        if col.list_name:
            assert dv.type == "list" and dv.formula1 == col.list_name
        elif col.type in ("date", "integer", "number"):
            assert dv.type in ("date", "whole", "decimal") and dv.prompt, col.header


def test_only_the_asked_committees_and_unknown_ones_refused(demo_master, tmp_path, capsys):
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "c02", "C04"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.xlsx")) == ["填报表-C02-恒德里居委会.xlsx",
                                                              "填报表-C04-春平坊居委会.xlsx"]
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C99"]) == 2
    assert "C99" in capsys.readouterr().err


def test_the_forms_command_says_what_to_do_next(demo_master, tmp_path, capsys):
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C02"]) == 0
    out = capsys.readouterr().out
    inbox = schema.SETTINGS_BY_KEY["inbox"]
    assert "下一步" in out and inbox.default in out and f'healthbook consolidate "{demo_master}"' in out


def test_forms_already_in_the_folder_are_not_overwritten(demo_master, tmp_path, capsys):
    """Forms sit in a shared folder where committees fill them in: running ``forms`` again (to
    refresh the project list) blanked a form a committee had half filled, without a word."""
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C02", "C04"]) == 0
    filled = tmp_path / "填报表-C02-恒德里居委会.xlsx"
    wb = openpyxl.load_workbook(filled)
    wb[schema.LEDGER.name]["E2"] = "居委会正在填的一行"
    wb.save(filled)
    typed = filled.read_bytes()
    other = tmp_path / "填报表-C04-春平坊居委会.xlsx"
    other.unlink()
    capsys.readouterr()
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C02", "C04"]) == 2
    said = capsys.readouterr().out
    assert filled.read_bytes() == typed and other.exists()
    assert "已存在，未覆盖" in said and filled.name in said and "--force" in said
    # --force replaces it, after a copy that holds what the committee typed.
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C02", "--force"]) == 0
    [copy] = (tmp_path / "backups").glob("*.xlsx")  # beside it: 备份说明.jsonl
    assert copy.read_bytes() == typed and filled.read_bytes() != typed
    assert str(copy.parent) in capsys.readouterr().out
    # No backup possible (backups is a file): nothing replaced, and the message is about the form.
    shutil.rmtree(tmp_path / "backups")
    (tmp_path / "backups").write_text("不是文件夹", encoding="utf-8")
    before = filled.read_bytes()
    assert main(["forms", str(demo_master), "--out", str(tmp_path), "--committee", "C02", "--force"]) == 2
    err = capsys.readouterr().err
    assert filled.read_bytes() == before and filled.name in err and "主工作簿" not in err


def test_unsafe_committee_names_make_safe_file_names(tmp_path):
    assert safe_name('新/福:康*里?"<>|') == "新_福_康_里_"
    master = tmp_path / "m.xlsx"
    rows = {schema.COMMITTEES.name: [{"committee_id": "C01", "name": "..\\..\\居委会:一"}],
            schema.PROJECTS.name: []}
    build_workbook(master, rows)
    assert main(["forms", str(master), "--out", str(tmp_path / "out")]) == 0
    made = list((tmp_path / "out").iterdir())
    assert [p.name for p in made] == ["填报表-C01-_.._居委会_一.xlsx"]


def test_form_opens_in_libreoffice_and_keeps_its_committee(forms_dir, tmp_path):
    form = forms_dir / "填报表-C05-联华居委会.xlsx"
    converted = convert_with_libreoffice(form, "xlsx:Calc MS Excel 2007 XML", tmp_path)
    book = read_workbook(converted, [schema.LEDGER, schema.FORM_INFO])
    assert read_form_info(book[schema.FORM_INFO.name]).committee_id == "C05"
    assert list(book[schema.LEDGER.name].columns[: len(schema.LEDGER.keys)]) == schema.LEDGER.keys


def test_a_form_with_the_committees_records_corrected_and_sent_back_updates_them(master_copy, tmp_path):
    from macros.consolidate import consolidate, folders

    assert main(["forms", str(master_copy), "--out", str(tmp_path / "forms"), "--committee", "C01",
                 "--records"]) == 0
    [form] = (tmp_path / "forms").glob("*.xlsx")
    ledger = read_workbook(master_copy)[schema.LEDGER.name]
    own = ledger[ledger["committee_id"] == "C01"].set_index("record_id")
    wb = openpyxl.load_workbook(form)
    ws = wb[schema.LEDGER.name]
    headers = {c.value: c.column for c in ws[1]}
    key_col = headers[schema.LEDGER.header_of("record_id")]
    assert sorted(ws.cell(r, key_col).value for r in range(2, ws.max_row + 1)) == sorted(own.index)
    assert f"已汇总的本居委会记录 {len(own)} 条" in wb[schema.FORM_GUIDE.name]["B3"].value
    # Below the records, as many validated blank rows for new ones as a blank form has.
    last = ws.max_row
    validated_to = max(cells.max_row for dv in ws.data_validations.dataValidation for cells in dv.sqref.ranges)
    assert validated_to >= last + schema.FORM_INPUT_ROWS

    # Sent back untouched: nothing changes.
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    shutil.copy2(form, inbox / "原样.xlsx")
    run = consolidate(master_copy, refresh=False)
    assert (run.rows_added, run.rows_updated, run.files[0].rows_unchanged) == (0, 0, len(own))
    # What the master's own records hold (e.g. “800余次” read as 800) is not reported back to the
    # committee on rows it did not touch.
    assert run.files[0].issues == [] and run.files[0].status == "accepted"

    # A head count corrected in place and a new row below: one update, one addition, no resend warning.
    first = next(r for r in range(2, last + 1) if ws.cell(r, key_col).value is not None)
    key = ws.cell(first, key_col).value
    people = headers[schema.LEDGER.header_of("participants")]
    ws.cell(first, people).value = int(own.loc[key, "participants"] or 0) + 7
    for col, value in [("date", own.loc[key, "date"]), ("project_id", own.loc[key, "project_id"]),
                       ("activity", "新的一次活动"), ("participants", 9), ("quantity", 1), ("status", "已完成")]:
        ws.cell(last + 1, headers[schema.LEDGER.header_of(col)]).value = value
    wb.save(inbox / "改正.xlsx")
    run = consolidate(master_copy, refresh=False)
    assert (run.rows_added, run.rows_updated) == (1, 1)
    assert not [p for p in run.files[0].issues if p.code == "probable_resend"]
    after = read_workbook(master_copy)[schema.LEDGER.name].set_index("record_id")
    assert after.loc[key, "participants"] == int(own.loc[key, "participants"] or 0) + 7
    assert len(after) == len(ledger) + 1


def pdf_text(pdf) -> str:
    """The text a PDF shows (poppler's pdftotext), without spaces, line breaks or hyphens (it joins
    a word broken at a hyphen: 2020-06-/22 → 2020-0622)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("CI 环境应已安装 poppler-utils（见 .ci/run）")
        pytest.skip("pdftotext 未安装")
    out = subprocess.run([tool, str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return "".join(out.split()).replace("-", "")


def test_the_guide_prints_every_paragraph_whole_on_one_page_wide(demo_master, tmp_path):
    # Neither Excel nor LibreOffice grows a row for wrapped text in a file it did not save: the
    # guide sets each row's height, or only each paragraph's first line would show.
    [form] = build_forms(demo_master, tmp_path / "forms", ["C01"], with_records=True).written
    pdf = convert_with_libreoffice(form, "pdf", tmp_path)
    shown = pdf_text(pdf)
    guide = openpyxl.load_workbook(form)[schema.FORM_GUIDE.name]
    paragraphs = [row[1].value for row in guide.iter_rows(min_row=3, max_col=2)
                  if row[1].value and len(row[1].value) > 40]
    assert len(paragraphs) >= 6
    for text in paragraphs:
        assert "".join(text.split()).replace("-", "") in shown, text[:20]


def test_a_prefilled_form_sent_back_later_keeps_the_offices_corrections(master_copy, tmp_path):
    from macros.consolidate import consolidate, folders

    [form] = build_forms(master_copy, tmp_path / "forms", ["C01"], with_records=True).written
    assert openpyxl.load_workbook(form)[schema.FORM_BASE.name].sheet_state == "hidden"
    ledger = read_workbook(master_copy)[schema.LEDGER.name].set_index("record_id")
    fixed, edited = [k for k in ledger.index if k.startswith("C01-")][:2]
    # The office corrects a head count in the master (in Excel; openpyxl stands in on this copy).
    wb = openpyxl.load_workbook(master_copy)
    ws = wb[schema.LEDGER.name]
    people = 1 + [c.value for c in ws[1]].index(schema.LEDGER.header_of("participants"))
    ws.cell(int(ledger.loc[fixed, "_row"]), people).value = 999
    wb.save(master_copy)
    # Weeks later the committee edits another record's note in its form and sends it all back.
    wb = openpyxl.load_workbook(form)
    ws = wb[schema.LEDGER.name]
    headers = {c.value: c.column for c in ws[1]}
    at = next(r for r in range(2, ws.max_row + 1)
              if ws.cell(r, headers[schema.LEDGER.header_of("record_id")]).value == edited)
    ws.cell(at, headers[schema.LEDGER.header_of("note")]).value = "居委会补充的说明"
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    wb.save(inbox / form.name)

    run = consolidate(master_copy, refresh=False)
    assert (run.rows_added, run.rows_updated) == (0, 1)
    after = read_workbook(master_copy)[schema.LEDGER.name].set_index("record_id")
    assert after.loc[fixed, "participants"] == 999  # the office's correction stays
    assert after.loc[edited, "note"] == "居委会补充的说明"  # the committee's edit is applied
    [kept] = run.files[0].issues  # only the news: nothing about the rows left as given
    assert kept.code == "master_kept" and kept.key == fixed
    assert schema.LEDGER.header_of("participants") in kept.message
    assert "以主工作簿为准" in run.files[0].receipt.read_text(encoding="utf-8")


def test_help_speaks_of_the_forms_own_committee_and_sheets(forms_dir):
    # The master's column help says "见“居委会”表，如 C01": a form has no such sheet, and C01 is
    # another committee's code. Its input messages and 填报说明 name its own committee instead.
    wb = openpyxl.load_workbook(forms_dir / "填报表-C03-蒋家巷居委会.xlsx")
    prompts = " ".join(dv.prompt or "" for dv in wb[schema.LEDGER.name].data_validations.dataValidation)
    guide = " ".join(str(c.value) for row in wb[schema.FORM_GUIDE.name].iter_rows() for c in row if c.value)
    for text in (prompts, guide):
        assert "C01" not in text
        for sheet in wb.sheetnames + [schema.COMMITTEES.name, schema.PROJECTS.name]:
            if f"见“{sheet}”表" in text:
                assert sheet in wb.sheetnames, f"points at a sheet the form has not: {sheet}"
    assert "填 C03" in prompts and "C03-0007" in prompts and "C03-0007" in guide
