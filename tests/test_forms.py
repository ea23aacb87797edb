"""healthbook forms: one standalone form per committee, read back by openpyxl, calamine and LibreOffice."""

from __future__ import annotations

import openpyxl
import pytest

from macros import schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import main
from macros.forms import form_filename, read_form_info, safe_name

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
