"""The shipped workbook/healthbook.xlsm: VBA project, the 一键生成报告 button, xlwings.conf."""

from __future__ import annotations

import io
import re
import zipfile
from importlib import resources

from python_calamine import CalamineWorkbook

from macros import demo, schema
from macros.book.build import REPORT_BUTTON, XLWINGS_CONF, build_workbook

from .conftest import ROOT, convert_with_libreoffice

SHIPPED = ROOT / "workbook" / "healthbook.xlsm"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def sheet_part(zf: zipfile.ZipFile, name: str) -> str:
    """The zip part holding sheet ``name``."""
    book = zf.read("xl/workbook.xml").decode()
    rid = re.search(rf'<sheet name="{re.escape(name)}" sheetId="\d+"(?: state="\w+")? r:id="(\w+)"', book)
    rels = zf.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'Id="{rid.group(1)}" Type="[^"]+" Target="([^"]+)"', rels).group(1)
    return "xl/" + target.removeprefix("/xl/")


def test_shipped_workbook_carries_xlwings_standalone_vba_project():
    with zipfile.ZipFile(SHIPPED) as zf:
        vba = zf.read("xl/vbaProject.bin")
        types = zf.read("[Content_Types].xml").decode()
    quickstart = resources.files("xlwings").joinpath("quickstart_standalone.xlsm").read_bytes()
    with zipfile.ZipFile(io.BytesIO(quickstart)) as zf:
        assert vba == zf.read("xl/vbaProject.bin")
    assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
    # The VBA's SampleCall imports the module named after the workbook: it must stay ASCII.
    assert b"SampleCall" in vba or b".main()" in vba
    assert SHIPPED.stem.isascii() and (SHIPPED.parent / f"{SHIPPED.stem}.py").is_file()


def test_report_button_on_the_guide_sheet_runs_samplecall():
    with zipfile.ZipFile(SHIPPED) as zf:
        part = sheet_part(zf, schema.GUIDE.name)
        rels = zf.read(part.replace("worksheets/", "worksheets/_rels/") + ".rels").decode()
        vml = re.search(r'Target="\.\./drawings/(vmlDrawing\d+\.vml)"', rels).group(1)
        drawing = zf.read(f"xl/drawings/{vml}").decode()
    assert "<x:FmlaMacro>[0]!SampleCall</x:FmlaMacro>" in drawing
    assert REPORT_BUTTON["caption"] == "一键生成报告" and "一键生成报告" in drawing
    assert 'ObjectType="Button"' in drawing


def test_xlwings_conf_sheet_starts_at_a1_with_the_interpreter():
    rows = CalamineWorkbook.from_path(str(SHIPPED)).get_sheet_by_name(
        schema.XLWINGS_CONF_SHEET).to_python()
    keys = [r[0] for r in rows[: len(XLWINGS_CONF)]]
    assert keys == [k for k, _, _ in XLWINGS_CONF]
    assert keys[0] == "Interpreter_Win" and rows[0][1] == "python"
    # The VBA reads A1 down to the first blank: the explanation sits below a blank row.
    assert rows[len(XLWINGS_CONF)][0] == ""
    assert all(r[2] for r in rows[: len(XLWINGS_CONF)])  # every setting explained


def test_shipped_workbook_is_what_init_builds_now(tmp_path):
    fresh = tmp_path / "healthbook.xlsm"
    build_workbook(fresh, demo.demo_rows())
    shipped, built = (CalamineWorkbook.from_path(str(p)) for p in (SHIPPED, fresh))
    assert shipped.sheet_names == built.sheet_names, (
        "workbook/healthbook.xlsm is stale: rebuild with `python -m macros init workbook/healthbook.xlsm --force`")
    for name in built.sheet_names:
        assert shipped.get_sheet_by_name(name).to_python() == built.get_sheet_by_name(name).to_python(), name


def test_xlsx_gets_no_button_and_no_conf_sheet(tmp_path):
    path = tmp_path / "plain.xlsx"
    build_workbook(path, demo.demo_rows())
    assert schema.XLWINGS_CONF_SHEET not in CalamineWorkbook.from_path(str(path)).sheet_names
    with zipfile.ZipFile(path) as zf:
        assert not any("vml" in n or "vba" in n for n in zf.namelist())


def test_shipped_workbook_opens_in_libreoffice(tmp_path):
    copy = tmp_path / SHIPPED.name
    copy.write_bytes(SHIPPED.read_bytes())
    converted = convert_with_libreoffice(copy, "xlsx", tmp_path / "out")
    names = CalamineWorkbook.from_path(str(converted)).sheet_names
    assert names[0] == schema.GUIDE.name and schema.XLWINGS_CONF_SHEET in names
    assert {s.name for s in schema.SHEETS} <= set(names)
