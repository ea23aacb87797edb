"""The master as 发展办 staff leave it after a few months in Excel, through report, validate --mark
and consolidate.

Staff decorate 台账 the way people do: rows sorted by date, a hyperlink and a note on cells, a
partly bold/red cell, an autofilter with a filter set, hidden and grouped rows, a row height, a
hidden column, frozen panes moved, the sheet protected with a password, a print area and print
titles, page setup and header/footer, columns of their own (a formula filled down — a shared
formula —, an array formula, a VLOOKUP into 项目 whose cached result is text or #N/A, an
=ISNUMBER() showing TRUE), a conditional format old and x14 style, a dropdown of their own, merged
cells beside the data, a tab colour, right-to-left off; the tab moved first and renamed "台账 "
(a stray space); a workbook name over the ledger's rows, an external link, a custom XML part, a
changed theme; output sheets with conditional formats, filters and frozen panes. openpyxl stands
in for Excel (it is the input); what openpyxl cannot write (shared formulas, cached results, x14
conditional formats, the external link, custom XML, calcChain.xml) is put into the XML as Excel
writes it.

Each command must change only the parts it means to, keep every decoration, and give a file
LibreOffice reads with the same values.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from datetime import date as date_type
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.comments import Comment
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import PatternFill
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula
from python_calamine import CalamineWorkbook

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.ooxml import rels_name, sheet_parts
from macros.book.read import read_workbook
from macros.consolidate import consolidate, folders
from macros.forms import build_forms

from .conftest import cli_json, convert_with_libreoffice
from .test_consolidate import fill_form, new_row

AS_OF = date_type(2020, 11, 15)  # inside the demo's 年度: "today" (years on) makes no notice

LEDGER = schema.LEDGER.name
TAB = "台账 "  # staff renamed the tab: a stray space
STAFF_NAME = "台账数据"
X14 = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"
XM = "http://schemas.microsoft.com/office/excel/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
CALC_CHAIN_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.calcChain+xml"
OUTPUTS = (schema.ISSUES, schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS, schema.UNIT_PROGRESS)
# What staff computed on 居委会进度, under the rows the report writes (rewritten by every run).
STAFF_TOTAL = ("P30", "SUM(F2:F14)", "2.5")


def decorate(base: Path, out: Path) -> Path:
    wb = openpyxl.load_workbook(base)
    ws = wb[LEDGER]
    n = ws.max_row
    rows = sorted(([c.value for c in r] for r in ws.iter_rows(min_row=2, max_row=n)), key=lambda r: r[1],
                  reverse=True)  # 数据 → 排序, newest first
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            ws.cell(i, j).value = value
    ws["K2"].hyperlink = "https://example.org/photo/1"
    ws["E5"].comment = Comment("照片在共享盘", "张三")
    ws["E6"].value = CellRichText([TextBlock(InlineFont(b=True), "重点："),
                                   TextBlock(InlineFont(color="FFFF0000"), str(ws["E6"].value))])
    ws.auto_filter.ref = f"A1:L{n}"
    ws.auto_filter.add_filter_column(7, ["已完成", "进行中"])
    for r in range(20, 25):
        ws.row_dimensions[r].hidden = True
    for r in range(30, 36):
        ws.row_dimensions[r].outlineLevel = 1
    ws.row_dimensions[40].height = 33
    ws.column_dimensions["Q"].hidden = True
    ws.freeze_panes = "C2"
    ws.protection.sheet = True
    ws.protection.password = "hb"
    ws.print_area = f"A1:L{n}"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.oddHeader.center.text = "健康街道台账"
    ws.oddFooter.right.text = "第 &P 页"
    ws["M1"], ws["N1"], ws["O1"], ws["P1"] = "人均", "数组", "项目名称", "核对"
    for r in range(2, 12):
        ws[f"M{r}"] = f"=IFERROR(G{r}/F{r},0)"
    ws["N2"] = ArrayFormula("N2:N5", "=F2:F5*2")
    for r in range(2, 6):
        ws[f"O{r}"] = f"=VLOOKUP(D{r},项目!$A:$C,3,FALSE)"
    red = PatternFill("solid", fgColor="FFC7CE")
    ws.conditional_formatting.add(f"F2:F{n}", CellIsRule(operator="greaterThan", formula=["100"], fill=red))
    dv = DataValidation(type="list", formula1='"已核,未核"', allow_blank=True)
    ws.add_data_validation(dv)
    dv.add("P2:P500")
    ws["R2"] = "说明：本区域为科室备注"
    ws.merge_cells("R2:T3")
    ws.sheet_properties.tabColor = "FF0000"
    ws.sheet_view.rightToLeft = False
    wb.defined_names[STAFF_NAME] = DefinedName(STAFF_NAME, attr_text=f"'{TAB}'!$A$1:$L${n}")
    for sheet in (schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS):
        other = wb[sheet.name]
        other.conditional_formatting.add("F2:F200", CellIsRule(operator="lessThan", formula=["0.5"], fill=red))
        other.freeze_panes = "B2"
        other.sheet_properties.tabColor = "00B050"
        other.auto_filter.ref = "A1:H50"
    wb.move_sheet(LEDGER, offset=-wb.sheetnames.index(LEDGER))
    ws.title = TAB
    wb.save(out)
    _excel_parts(out, n)
    return out


def _excel_parts(path: Path, n: int) -> None:
    """What Excel writes and openpyxl does not: a formula filled down stored as a shared formula,
    cached results (text, #N/A, TRUE), an x14 data bar, an external link, a custom XML part, a theme."""
    parts, names = _parts(path)
    part = sheet_parts(parts)[LEDGER]
    x = parts[part].decode("utf-8")
    x = x.replace("<f>IFERROR(G2/F2,0)</f><v></v>", '<f t="shared" ref="M2:M11" si="0">IFERROR(G2/F2,0)</f><v>0.5</v>')
    for r in range(3, 12):
        x = x.replace(f"<f>IFERROR(G{r}/F{r},0)</f><v></v>", '<f t="shared" si="0"/><v>0.5</v>')
    x = re.sub(r'(<c r="N2"[^>]*><f[^>]*>[^<]*</f>)<v></v>', r"\1<v>114</v>", x)
    for r in (3, 4, 5):  # the rest of the array's cells hold its results
        x = re.sub(rf'(<c r="M{r}"[^>]*>.*?</c>)', rf'\1<c r="N{r}"><v>{r * 10}</v></c>', x, count=1)
    lookup = "<f>VLOOKUP(D{r},&#39033;&#30446;!$A:$C,3,FALSE)</f><v></v>"
    x = x.replace(f'<c r="O3">{lookup.format(r=3)}',
                  f'<c r="O3" t="str">{lookup.format(r=3).replace("<v></v>", "<v>楼宇控烟项目</v>")}')
    x = x.replace(f'<c r="O4">{lookup.format(r=4)}',
                  f'<c r="O4" t="e">{lookup.format(r=4).replace("<v></v>", "<v>#N/A</v>")}')
    x = x.replace(f'<c r="O5">{lookup.format(r=5)}', '<c r="O5" t="b"><f>ISNUMBER(F5)</f><v>1</v>')
    assert x.count("<v>#N/A</v>") == 1 and x.count('si="0"') == 10, "the ledger is not as the test expects"
    ext = (f'<ext uri="{{78C0D931-6437-407d-A8EE-F0AAD7539E65}}" xmlns:x14="{X14}"><x14:conditionalFormattings>'
           f'<x14:conditionalFormatting xmlns:xm="{XM}"><x14:cfRule type="dataBar" '
           'id="{00000000-0000-0000-0000-000000000001}"><x14:dataBar minLength="0" maxLength="100">'
           '<x14:cfvo type="autoMin"/><x14:cfvo type="autoMax"/></x14:dataBar></x14:cfRule>'
           f"<xm:sqref>G2:G{n}</xm:sqref></x14:conditionalFormatting></x14:conditionalFormattings></ext>")
    parts[part] = x.replace("</worksheet>", f"<extLst>{ext}</extLst></worksheet>").encode("utf-8")
    parts["xl/externalLinks/externalLink1.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{REL}">'
        '<externalBook r:id="rId1"><sheetNames><sheet val="Sheet1"/></sheetNames><sheetDataSet>'
        '<sheetData sheetId="0"><row r="1"><cell r="A1"><v>42</v></cell></row></sheetData></sheetDataSet>'
        "</externalBook></externalLink>").encode()
    parts["xl/externalLinks/_rels/externalLink1.xml.rels"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
        '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        f'Type="{REL}/externalLinkPath" Target="file:///C:/%E5%8F%91%E5%B1%95%E5%8A%9E/2019.xlsx" '
        'TargetMode="External"/></Relationships>').encode()
    _append(parts, "xl/_rels/workbook.xml.rels", "</Relationships>",
            f'<Relationship Id="rIdX1" Type="{REL}/externalLink" Target="externalLinks/externalLink1.xml"/>')
    wbx = parts["xl/workbook.xml"].decode("utf-8")
    if "xmlns:r=" not in wbx[:wbx.index(">")]:
        wbx = wbx.replace("<workbook ", f'<workbook xmlns:r="{REL}" ', 1)
    wbx = wbx.replace("<definedNames>", '<externalReferences><externalReference r:id="rIdX1"/>'
                      "</externalReferences><definedNames>")
    parts["xl/workbook.xml"] = wbx.replace(
        "</definedNames>", '<definedName name="去年合计">[1]Sheet1!$A$1</definedName></definedNames>').encode("utf-8")
    _append(parts, "[Content_Types].xml", "</Types>",
            '<Override PartName="/xl/externalLinks/externalLink1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/><Override PartName='
            '"/customXml/itemProps1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'customXmlProperties+xml"/>')
    parts["customXml/item1.xml"] = (b'<?xml version="1.0" encoding="UTF-8"?><b:Sources xmlns:b="http://'
                                    b'schemas.openxmlformats.org/officeDocument/2006/bibliography"/>')
    parts["customXml/itemProps1.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="no"?><ds:datastoreItem ds:itemID="{1A2B3C4D-'
        b'0000-0000-0000-000000000001}" xmlns:ds="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'customXml"><ds:schemaRefs/></ds:datastoreItem>')
    parts["customXml/_rels/item1.xml.rels"] = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
        b'openxmlformats.org/officeDocument/2006/relationships/customXmlProps" Target="itemProps1.xml"/>'
        b"</Relationships>")
    _append(parts, "_rels/.rels", "</Relationships>",
            f'<Relationship Id="rIdC1" Type="{REL}/customXml" Target="customXml/item1.xml"/>')
    theme = next(p for p in parts if p.startswith("xl/theme/"))
    parts[theme] = re.sub(rb'(<a:accent1>\s*<a:srgbClr val=")[0-9A-F]{6}', rb"\g<1>C00000", parts[theme])
    _save(path, parts, names)


def add_calc_chain(path: Path, cells: list[tuple[str, str]], formula: tuple[str, str, str] | None = None) -> None:
    """Excel's calcChain.xml listing ``cells`` ((sheet, ref)); ``formula`` (ref, formula, cached)
    is first put on 居委会进度, as staff type a total under the rows."""
    parts, names = _parts(path)
    sheets = sheet_parts(parts)
    if formula:
        part = sheets[schema.COMMITTEE_PROGRESS.name]
        ref, text, cached = formula
        row = re.match(r"[A-Z]+(\d+)", ref).group(1)
        parts[part] = parts[part].replace(b"</sheetData>", f'<row r="{row}"><c r="{ref}"><f>{text}</f>'
                                          f"<v>{cached}</v></c></row></sheetData>".encode(), 1)
    wbx = parts["xl/workbook.xml"].decode("utf-8")
    ids = {}
    for m in re.finditer(r"<sheet\b[^>]*>", wbx):
        name = re.search(r'name="([^"]*)"', m.group(0)).group(1)
        ids[name.strip()] = re.search(r'sheetId="(\d+)"', m.group(0)).group(1)
    entries, last = [], None
    for sheet, ref in cells:
        i = ids[sheet]
        entries.append(f'<c r="{ref}"' + (f' i="{i}"' if i != last else "") + "/>")
        last = i
    parts["xl/calcChain.xml"] = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<calcChain xmlns='
                                 f'"http://schemas.openxmlformats.org/spreadsheetml/2006/main">{"".join(entries)}'
                                 "</calcChain>").encode()
    _append(parts, "xl/_rels/workbook.xml.rels", "</Relationships>",
            f'<Relationship Id="rIdCC" Type="{REL}/calcChain" Target="calcChain.xml"/>')
    _append(parts, "[Content_Types].xml", "</Types>",
            f'<Override PartName="/xl/calcChain.xml" ContentType="{CALC_CHAIN_CT}"/>')
    _save(path, parts, names)


def _parts(path: Path) -> tuple[dict[str, bytes], list[str]]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}, zf.namelist()


def _append(parts: dict[str, bytes], name: str, close: str, text: str) -> None:
    parts[name] = parts[name].decode("utf-8").replace(close, text + close).encode("utf-8")


def _save(path: Path, parts: dict[str, bytes], names: list[str]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names + [p for p in parts if p not in names]:
            zf.writestr(name, parts[name])


@pytest.fixture(scope="module")
def staffed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("staffed")
    base = folder / "base.xlsx"
    build_workbook(base, demo.demo_rows())
    return decorate(base, folder / "healthbook.xlsx")


@pytest.fixture
def master(staffed, tmp_path) -> Path:
    target = tmp_path / staffed.name
    shutil.copy2(staffed, target)
    return target


def grid(path: Path, sheet: str = TAB) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def cells(xml: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)', xml)}


def rows(xml: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<row r="(\d+)"[^>]*?(?:/>|>.*?</row>)', xml)}


def without_cells(xml: str) -> str:
    return re.sub(r"<sheetData>.*</sheetData>|<sheetData/>", "", re.sub(r'<dimension ref="[^"]*"/>', "", xml),
                  flags=re.S)


def owned_parts(parts: dict[str, bytes]) -> set[str]:
    sheets = sheet_parts(parts)
    return {sheets[s.name] for s in schema.OWNED_SHEETS if s.name in sheets}


def assert_only_ours_changed(before: dict[str, bytes], after: dict[str, bytes], also: set[str] = frozenset()):
    """Parts other than the owned sheets, their rels and notes, styles and the content types list
    are byte-identical; the ledger differs in its cells only."""
    ours = owned_parts(before) | {"xl/styles.xml", "[Content_Types].xml", "xl/comments/comment1.xml",
                                  "xl/drawings/commentsDrawing1.vml"} | set(also)
    ledger = sheet_parts(before)[LEDGER]  # its rels hold staff's hyperlinks: byte for byte
    ours |= {p.replace("worksheets/", "worksheets/_rels/") + ".rels" for p in owned_parts(before) if p != ledger}
    changed = {p for p in before if before[p] != after.get(p)}
    assert changed <= ours, sorted(changed - ours)
    assert without_cells(before[ledger].decode()) == without_cells(after[ledger].decode())
    for sheet in (schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS):  # staff's filter, freeze, CF, tab colour
        part = sheet_parts(before)[sheet.name]
        assert without_cells(before[part].decode()) == without_cells(after[part].decode()), sheet.name


def test_a_report_keeps_every_staff_decoration_and_links_to_the_renamed_tab(master, tmp_path):
    before, _ = _parts(master)
    code, out = cli_json("report", str(master), "--as-of", "2020-11-15", "--out", str(tmp_path / "通知"))
    assert code in (0, 1), out
    after, _ = _parts(master)
    assert_only_ours_changed(before, after)
    assert after["xl/workbook.xml"] == before["xl/workbook.xml"]  # names, print area, external refs
    # 校验结果 links each problem to its cell: on the tab as staff named it, or Excel cannot follow it
    issues = after[sheet_parts(after)[schema.ISSUES.name]].decode()
    locations = re.findall(r'location="([^"]*)"', issues)
    assert locations and all(loc.startswith(f"'{TAB}'!") for loc in locations), locations
    # ledger rows the marks did not touch are byte for byte; the staff's formulas keep their results
    ledger = sheet_parts(after)[LEDGER]
    old, new = rows(before[ledger].decode()), rows(after[ledger].decode())
    assert sum(old[r] != new[r] for r in old) <= len(locations) and set(old) == set(new)


@pytest.fixture(scope="module")
def consolidated(staffed, tmp_path_factory) -> tuple[Path, dict[str, int], list[str]]:
    """The staff master after committees updated the records on rows 3–6 (the row with a link
    target, the array formula's rows, the #N/A and TRUE formulas, the partly bold cell) and on a
    hidden row, and added two: (master, record → row before, updated records)."""
    folder = tmp_path_factory.mktemp("consolidated")
    master = folder / staffed.name
    shutil.copy2(staffed, master)
    ledger = read_workbook(master)[LEDGER]
    at = {int(r["_row"]): r for r in ledger.to_dict("records")}
    updates = {3: {"note": "照片已补"}, 4: {"quantity": 70}, 5: {"status": "已完成"}, 6: {"participants": 5},
               21: {"note": "已回访"}}
    forms = folder / "forms"
    committees = sorted({at[r]["committee_id"] for r in updates})
    build_forms(master, forms, committees)
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    keys = ("record_id", "date", "project_id", "activity", "participants", "quantity", "status", "reporter",
            "in_bulletin", "note")
    for committee in committees:
        filled = []
        for r, change in updates.items():
            if at[r]["committee_id"] == committee:
                row = {k: (None if at[r][k] != at[r][k] else at[r][k]) for k in keys}  # NaN → blank
                filled.append({**row, **change})
        if committee == committees[0]:
            filled += [new_row(activity="新增：老年人健康讲座", project_id="P02"),
                       new_row(activity="新增：家庭医生签约宣传", project_id="P02")]
        fill_form(next(forms.glob(f"填报表-{committee}-*.xlsx")), inbox / f"{committee}.xlsx", filled)
    before = {str(r["record_id"]): int(r["_row"]) for r in ledger.to_dict("records")}
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 2 and run.rows_updated == len(updates), run
    return master, before, [str(at[r]["record_id"]) for r in updates]


def test_a_consolidation_keeps_staff_formulas_and_decorations_in_the_rows_it_updates(staffed, consolidated):
    master, rows_before, updated = consolidated
    before, _ = _parts(staffed)
    after, _ = _parts(master)
    assert_only_ours_changed(before, after)
    assert after["xl/workbook.xml"] == before["xl/workbook.xml"]
    ledger = sheet_parts(after)[LEDGER]
    old, new = cells(before[ledger].decode()), cells(after[ledger].decode())
    # staff's own columns in the updated rows: formulas (shared, array, #N/A, TRUE) and the
    # array's results stay exactly as Excel saved them
    for ref in ("M3", "M4", "M5", "M6", "N2", "N3", "N4", "N5", "O3", "O4", "O5", "E6"):
        assert new[ref] == old[ref], ref
    assert "<f>ISNUMBER(F5)</f>" in new["O5"] and 't="e"' in new["O4"]
    old_rows, new_rows = rows(before[ledger].decode()), rows(after[ledger].decode())
    assert re.match(r'<row r="21"[^>]*hidden="1"', new_rows[21])  # the hidden row it updated stays hidden
    # every record where it was (so 台账数据, the print area and the filter still cover the same
    # records), the new ones below them
    now = {str(r[0]): i for i, r in enumerate(grid(master), start=1) if i > 1 and r[0]}
    assert all(now[k] == r for k, r in rows_before.items())
    assert sorted(set(now.values()) - set(rows_before.values())) == [len(rows_before) + 2, len(rows_before) + 3]
    changed_rows = {r for r in old_rows if old_rows[r] != new_rows.get(r)}
    assert changed_rows <= {rows_before[k] for k in updated} | marked_rows(after), changed_rows


def marked_rows(parts: dict[str, bytes]) -> set[int]:
    """Ledger rows holding one of this run's marks (a note by healthbook)."""
    notes = parts.get("xl/comments/comment1.xml", b"").decode()
    return {int(m) for m in re.findall(r'<comment ref="[A-Z]+(\d+)" authorId="1"', notes)}


def test_libreoffice_reads_the_consolidated_staff_master_as_we_wrote_it(consolidated, tmp_path):
    master, _, _ = consolidated
    converted = convert_with_libreoffice(master, "xlsx", tmp_path)
    ours, theirs = CalamineWorkbook.from_path(str(master)), CalamineWorkbook.from_path(str(converted))
    assert theirs.sheet_names == ours.sheet_names
    for sheet in (TAB, *(s.name for s in OUTPUTS), schema.CHANGES.name):
        a, b = grid(master, sheet), grid(converted, sheet)
        width = 12 if sheet == TAB else len(a[0])  # staff's formula columns: LibreOffice recomputes them
        assert len(a) == len(b), sheet
        for r, (x, y) in enumerate(zip(a, b), start=1):
            for c in range(width):
                u, v = x[c] if c < len(x) else "", y[c] if c < len(y) else ""
                assert u == v or (isinstance(u, float) and abs(u - v) < 1e-9), (sheet, r, c, u, v)


def test_a_formula_the_report_replaces_takes_excels_calc_chain_with_it(master, tmp_path):
    """Excel lists every formula cell in calcChain.xml; a listed cell that holds no formula any
    more makes Excel repair the file on open. A staff total under 居委会进度 goes with the rewrite."""
    listed = [(LEDGER, f"M{r}") for r in range(2, 12)] + [(LEDGER, "N2"), (LEDGER, "O3"), (LEDGER, "O4"),
                                                         (LEDGER, "O5"), (schema.COMMITTEE_PROGRESS.name,
                                                                          STAFF_TOTAL[0])]
    add_calc_chain(master, listed, STAFF_TOTAL)
    before, _ = _parts(master)
    code, out = cli_json("report", str(master), "--as-of", "2020-11-15", "--out", str(tmp_path / "通知"))
    assert code in (0, 1), out
    after, _ = _parts(master)
    assert "xl/calcChain.xml" not in after  # Excel rebuilds it
    assert "calcChain" not in after["xl/_rels/workbook.xml.rels"].decode()
    assert "calcChain" not in after["[Content_Types].xml"].decode()
    rels_before = before["xl/_rels/workbook.xml.rels"].decode()
    assert after["xl/_rels/workbook.xml.rels"].decode() == re.sub(r'<Relationship Id="rIdCC"[^>]*/>', "", rels_before)
    del before["xl/calcChain.xml"]
    assert_only_ours_changed(before, after, {"xl/_rels/workbook.xml.rels"})


def test_a_calc_chain_dropped_but_still_listed_is_refused(master, tmp_path, monkeypatch, capsys):
    """Fault injection: the chain's content-type entry left behind when the part went (Excel would
    repair the file); the writer's own check refuses it, the master stays as it was."""
    from macros.book import write

    add_calc_chain(master, [(schema.COMMITTEE_PROGRESS.name, STAFF_TOTAL[0])], STAFF_TOTAL)
    drop = write._drop_stale_calc_chain

    def drop_leaving_its_type(pkg):
        types = pkg.text("[Content_Types].xml")
        drop(pkg)
        pkg.set_text("[Content_Types].xml", types)

    monkeypatch.setattr(write, "_drop_stale_calc_chain", drop_leaving_its_type)
    before = master.read_bytes()
    from macros.cli import main

    assert main(["report", str(master), "--as-of", "2020-11-15", "--out", str(tmp_path / "通知")]) == 2
    err = capsys.readouterr().err
    assert "核对未通过" in err and "calcChain.xml is gone but still listed" in err
    assert master.read_bytes() == before


def test_the_calc_chain_stays_while_every_formula_it_lists_is_kept(master):
    add_calc_chain(master, [(LEDGER, f"M{r}") for r in range(2, 12)] + [(LEDGER, "N2"), (LEDGER, "O5")])
    before, _ = _parts(master)
    code, out = cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    assert code in (0, 1), out
    after, _ = _parts(master)
    assert after["xl/calcChain.xml"] == before["xl/calcChain.xml"]
    assert after["xl/_rels/workbook.xml.rels"] == before["xl/_rels/workbook.xml.rels"]
    assert_only_ours_changed(before, after)


def test_a_ledger_formula_a_merge_overwrites_takes_the_calc_chain_with_it(master, tmp_path):
    """Staff computed 完成数量 of one record with a formula; the committee sends the real figure."""
    part = sheet_parts(_parts(master)[0])[LEDGER]
    at = {int(r["_row"]): r for r in read_workbook(master)[LEDGER].to_dict("records")}
    row = 7
    parts, names = _parts(master)
    xml = parts[part].decode()
    cell = re.search(rf'<c r="G{row}"[^>]*>.*?</c>', xml).group(0)
    quantity = int(at[row]["quantity"])
    parts[part] = xml.replace(cell, f'<c r="G{row}" s="5"><f>{quantity}*1</f><v>{quantity}</v></c>').encode()
    _save(master, parts, names)
    add_calc_chain(master, [(LEDGER, f"G{row}"), (LEDGER, "M2")])
    forms = tmp_path / "forms"
    committee = at[row]["committee_id"]
    build_forms(master, forms, [committee])
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    keys = ("record_id", "date", "project_id", "activity", "participants", "quantity", "status", "reporter",
            "in_bulletin", "note")
    record = {k: (None if at[row][k] != at[row][k] else at[row][k]) for k in keys}
    fill_form(next(forms.glob(f"填报表-{committee}-*.xlsx")), inbox / "更正.xlsx", [{**record, "quantity": quantity + 5}])
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_updated == 1
    after, _ = _parts(master)
    assert "<f>" not in cells(after[part].decode())[f"G{row}"]
    assert "xl/calcChain.xml" not in after and "calcChain" not in after["[Content_Types].xml"].decode()


def sort_rows(path: Path, a: int, b: int) -> None:
    """Staff sort 台账 (数据 → 排序) over its columns A:L: rows ``a`` and ``b`` change places with
    their cells' formats (a mark's fill too) and notes, as Excel sorts them; the cells of staff's
    columns beside the range stay where they are."""
    parts, names = _parts(path)
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode()
    found = {r: re.search(rf'<row r="{r}"([^>]*)>(.*?)</row>', xml) for r in (a, b)}

    def moved(r: int, to: int) -> tuple[str, str]:
        inside = re.findall(r'<c r="[A-Z]+\d+".*?</c>|<c r="[A-Z]+\d+"[^>]*/>', found[r].group(2))
        sorted_part = "".join(re.sub(rf'r="([A-L]){r}"', rf'r="\g<1>{to}"', c) for c in inside
                              if re.match(r'<c r="[A-L]\d', c))
        return sorted_part, "".join(c for c in inside if not re.match(r'<c r="[A-L]\d', c))

    (a_sorted, a_rest), (b_sorted, b_rest) = moved(a, b), moved(b, a)
    new_a = f'<row r="{a}"{found[a].group(1)}>{b_sorted}{a_rest}</row>'
    new_b = f'<row r="{b}"{found[b].group(1)}>{a_sorted}{b_rest}</row>'
    xml = xml[:found[a].start()] + new_a + xml[found[a].end():found[b].start()] + new_b + xml[found[b].end():]
    parts[part] = xml.encode()
    notes = "xl/comments/comment1.xml"
    text = re.sub(rf'ref="([A-L]){a}"', r'ref="\g<1>@"', parts[notes].decode())
    text = re.sub(rf'ref="([A-L]){b}"', rf'ref="\g<1>{a}"', text).replace('@"', f'{b}"')
    parts[notes] = text.encode()
    _save(path, parts, names)


def set_cell(path: Path, ref: str, value: int) -> str:
    """Staff type a number into ``ref`` (its format stays); returns the cell's format index."""
    parts, names = _parts(path)
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode()
    cell = re.search(rf'<c r="{ref}"([^>]*?)(?:/>|>.*?</c>)', xml)
    style = re.search(r'\ss="(\d+)"', cell.group(1)).group(1)
    parts[part] = (xml[:cell.start()] + f'<c r="{ref}" s="{style}"><v>{value}</v></c>' + xml[cell.end():]).encode()
    _save(path, parts, names)
    return style


@pytest.mark.parametrize("staff_use_the_mark_format_too", [False, True])
def test_a_mark_that_a_sort_moved_is_cleared_once_fixed(master, staff_use_the_mark_format_too):
    """validate --mark fills 800余次; staff sort the ledger (the filled cell moves up to row 2), type
    800 and mark again: the fill goes, though the cell is no longer where it was marked."""
    before = cells(_parts(master)[0][sheet_parts(_parts(master)[0])[LEDGER]].decode())
    code, out = cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    marked = [p for p in out["issues"] if p["sheet"] == LEDGER]
    assert len(marked) == 1 and marked[0]["column"] == "完成数量", marked
    row, column = marked[0]["row"], "G"
    original = re.search(r'\ss="(\d+)"', before[f"{column}{row}"]).group(1)
    sort_rows(master, 2, row)
    mark_style = set_cell(master, f"{column}2", 800)
    assert mark_style != original
    if staff_use_the_mark_format_too:  # staff painted that yellow on a cell of their own: theirs
        parts, names = _parts(master)
        part = sheet_parts(parts)[LEDGER]
        xml = parts[part].decode()
        at = f"{column}9"
        cell = re.search(rf'<c r="{at}"[^>]*?(?:/>|>.*?</c>)', xml).group(0)
        parts[part] = xml.replace(cell, re.sub(r'\ss="\d+"', f' s="{mark_style}"', cell)).encode()
        _save(master, parts, names)
    code, out = cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    assert code == 0 and not out["issues"], out
    now = cells(_parts(master)[0][sheet_parts(_parts(master)[0])[LEDGER]].decode())
    if staff_use_the_mark_format_too:  # two cells in the mark's format where one mark went missing
        assert f's="{mark_style}"' in now[f"{column}2"] and f's="{mark_style}"' in now[f"{column}9"]
    else:
        assert now[f"{column}2"] == f'<c r="{column}2" s="{original}"><v>800</v></c>'
        assert not any(f's="{mark_style}"' in c for c in now.values())


def test_a_master_on_the_1904_date_system_gets_its_dates_right(tmp_path):
    """Excel 选项 → 高级 → 使用 1904 日期系统 (Excel for Mac's old default): serials count from 1904.
    Dates the writer adds (a merged record, 变更记录's times, the progress sheets' dates) must be
    written in that system, not refused by the re-read check, nor shifted by four years."""
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    base = tmp_path / "base.xlsx"
    build_workbook(base, demo.demo_rows())
    wb = openpyxl.load_workbook(base)
    wb.epoch = CALENDAR_MAC_1904  # openpyxl converts the dates it saves
    master = tmp_path / "mac.xlsx"
    wb.save(master)
    assert b'date1904="1"' in _parts(master)[0]["xl/workbook.xml"]
    before = read_workbook(master)[LEDGER]
    forms = tmp_path / "forms"
    build_forms(master, forms, ["C01"])
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    fill_form(next(forms.glob("填报表-C01-*.xlsx")), inbox / "C01.xlsx", [new_row()])
    run = consolidate(master, as_of=AS_OF)
    assert run.master_written and run.rows_added == 1
    after = read_workbook(master)[LEDGER]
    assert after["date"].tolist()[:len(before)] == before["date"].tolist()
    assert after["date"].tolist()[-1] == new_row()["date"]
    progress = read_workbook(master, [schema.PROJECT_PROGRESS])[schema.PROJECT_PROGRESS.name]
    projects = read_workbook(master)[schema.PROJECTS.name]
    assert progress["deadline"].tolist() == projects["deadline"].tolist()
    log = grid(master, schema.CHANGES.name)
    assert log[1][0].year == datetime.now().year


def test_a_master_saved_as_strict_open_xml_is_read_but_not_written_and_says_how_to_fix_it(tmp_path, capsys):
    """Excel's 另存为 → "Strict Open XML 电子表格" puts every part in other namespaces: calamine
    reads it, the writer's XML would not fit it. Refused, saying so and what to choose instead."""
    base = tmp_path / "base.xlsx"
    build_workbook(base, demo.demo_rows())
    parts, names = _parts(base)
    for name, data in parts.items():
        parts[name] = data.replace(b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                                   b"http://purl.oclc.org/ooxml/spreadsheetml/main").replace(
            REL.encode(), b"http://purl.oclc.org/ooxml/officeDocument/relationships")
    master = tmp_path / "strict.xlsx"
    _save(master, parts, names)
    before = master.read_bytes()
    from macros.cli import main

    assert main(["validate", str(master), "--as-of", "2020-11-15"]) == 0  # read as any workbook
    capsys.readouterr()
    assert main(["validate", str(master), "--as-of", "2020-11-15", "--mark"]) == 2
    message = capsys.readouterr().err
    assert "strict.xlsx" in message and "Strict Open XML" in message and "另存为" in message, message
    assert "Excel 工作簿(*.xlsx)" in message and "本次未写入" in message
    assert master.read_bytes() == before


def test_the_excel_buttons_links_name_the_tab_as_staff_spelt_it(demo_master):
    """The live adapter's HYPERLINK formulas too: "#'台账'!B5" cannot be followed to a tab "台账 "."""
    import copy

    import xlwings as xw

    from macros.book.live import LiveBook
    from macros.book.write_types import SheetWrite

    from .xlwings_book import book_payload

    payload = book_payload(demo_master)
    for sheet in payload["sheets"]:
        if sheet["name"] == LEDGER:
            sheet["name"] = TAB
    book = xw.Book(json=copy.deepcopy(payload))
    rows = [{"sheet": LEDGER, "row": 5, "column": "日期", "level": "错误", "message": "日期无法识别"}]
    LiveBook(book).write([SheetWrite(schema.ISSUES, rows, links={(0, "row"): f"'{LEDGER}'!B5"})])
    [write] = [a for a in book.json()["actions"] if a["func"] == "setValues"]
    assert write["values"][1][schema.ISSUES.keys.index("row")] == f"=HYPERLINK(\"#'{TAB}'!B5\",5)"


def test_a_table_staff_made_over_a_progress_sheet_keeps_their_column_names(tmp_path):
    """Staff turned 居委会进度 into a table (Ctrl+T over A1:K…), renamed 完成率 to 完成率(%) and added
    a column 备注 to it. Excel keeps each column's name in its header cell, and repairs the file
    (dropping the table) when a header cell says otherwise: the report must leave those names."""
    from .tabled import CT_TABLE, REL_TABLE

    master = tmp_path / "healthbook.xlsx"
    build_workbook(master, demo.demo_rows())
    out = tmp_path / "通知"
    assert cli_json("report", str(master), "--as-of", "2020-11-15", "--out", str(out))[0] in (0, 1)
    sheet = schema.COMMITTEE_PROGRESS
    n = len(grid(master, sheet.name))
    parts, names = _parts(master)
    part = sheet_parts(parts)[sheet.name]
    headers = [*sheet.headers]
    renamed = headers.index("完成率")
    headers[renamed] = "完成率(%)"
    headers.append("备注")
    last = chr(ord("A") + len(headers) - 1)
    xml = parts[part].decode()
    at = f"{chr(ord('A') + renamed)}1"
    xml = re.sub(rf'<c r="{at}"[^>]*?(?:/>|>.*?</c>)', f'<c r="{at}" t="inlineStr"><is><t>完成率(%)</t></is></c>', xml)
    row1 = re.search(r'<row r="1"[^>]*>.*?</row>', xml).group(0)  # the banner moves out of the way
    kept = re.sub(rf'<c r="[{last}-Z]1"[^>]*?(?:/>|>.*?</c>)', "", row1)
    xml = xml.replace(row1, kept.replace("</row>", f'<c r="{last}1" t="inlineStr"><is><t>备注</t></is></c></row>'))
    columns = "".join(f'<tableColumn id="{i}" name="{h}"/>' for i, h in enumerate(headers, start=1))
    parts["xl/tables/table1.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<table xmlns="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main" id="1" name="进度表" displayName="进度表" ref="A1:{last}{n}" totalsRowShown="0">'
        f'<autoFilter ref="A1:{last}{n}"/><tableColumns count="{len(headers)}">{columns}</tableColumns>'
        '<tableStyleInfo name="TableStyleMedium2" showFirstColumn="0" showLastColumn="0" showRowStripes="1" '
        'showColumnStripes="0"/></table>').encode()
    xml = xml.replace("</worksheet>", '<tableParts count="1"><tablePart r:id="rIdT1"/></tableParts></worksheet>')
    if 'xmlns:r="' not in xml[:xml.index(">", xml.index("<worksheet"))]:
        xml = xml.replace("<worksheet ", f'<worksheet xmlns:r="{REL}" ', 1)
    parts[part] = xml.encode()
    rels = part.replace("worksheets/", "worksheets/_rels/") + ".rels"
    parts[rels] = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.'
                   f'openxmlformats.org/package/2006/relationships"><Relationship Id="rIdT1" Type="{REL_TABLE}" '
                   'Target="../tables/table1.xml"/></Relationships>').encode()
    _append(parts, "[Content_Types].xml", "</Types>",
            f'<Override PartName="/xl/tables/table1.xml" ContentType="{CT_TABLE}"/>')
    _save(master, parts, names)
    assert grid(master, sheet.name)[0][:len(headers)] == headers

    assert cli_json("report", str(master), "--as-of", "2020-11-15", "--out", str(out))[0] in (0, 1)
    after = grid(master, sheet.name)
    table = _parts(master)[0]["xl/tables/table1.xml"].decode()
    names_now = re.findall(r'<tableColumn id="\d+" name="([^"]*)"', table)
    assert names_now == headers
    assert after[0][:len(headers)] == headers  # header cells = the table's column names
    assert all(v == "" for v in after[0][len(headers):len(headers) + 1])  # the banner is right of the table
    assert any(str(v).startswith("截至") for v in after[0][len(headers) + 1:])
    committees = read_workbook(master)[schema.COMMITTEES.name]["committee_id"].tolist()
    assert [r[0] for r in after[1:]] == committees and len(after) == n


def test_formats_renumbered_by_another_program_are_not_taken_for_moved_marks(master):
    """A save by another program (LibreOffice, WPS) may renumber the formats: the remembered mark
    format can then be, say, the header's. The one header cell of the marked column is no mark
    a sort moved, and keeps its format."""
    code, out = cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    [marked] = [p for p in out["issues"] if p["sheet"] == LEDGER]
    ref = f"G{marked['row']}"
    parts, names = _parts(master)
    ledger, issues = sheet_parts(parts)[LEDGER], sheet_parts(parts)[schema.ISSUES.name]
    xml = parts[ledger].decode()
    header_style = re.search(r'\ss="(\d+)"', cells(xml)["G1"]).group(1)
    cell = cells(xml)[ref]
    parts[ledger] = xml.replace(cell, re.sub(r'\ss="\d+"', ' s="5"', cell)).encode()  # renumbered
    memory = parts[issues].decode()
    mark_style = re.search(r'<c r="CZ2"[^>]*>(?:<v>(\d+)</v>|<is><t>(\d+)</t></is>)</c>', memory)
    assert mark_style, "the mark memory is not where the test expects it"
    parts[issues] = memory.replace(mark_style.group(0), f'<c r="CZ2"><v>{header_style}</v></c>').encode()
    _save(master, parts, names)
    cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    assert cells(_parts(master)[0][ledger].decode())["G1"] == cells(xml)["G1"]


def test_a_change_inside_a_staff_array_formula_is_refused_saying_what_to_do(master, tmp_path, capsys):
    """Staff entered {=F3:F5*1} over 完成数量 G3:G5 (Ctrl+Shift+Enter). A committee corrects the
    record on row 4: written into G4, the figure would be put back to the formula's result the
    moment Excel opens the file (while 变更记录 says it changed). Refused, saying where and what to do."""
    from macros.cli import main

    parts, names = _parts(master)
    part = sheet_parts(parts)[LEDGER]
    xml = parts[part].decode()
    at = {int(r["_row"]): r for r in read_workbook(master)[LEDGER].to_dict("records")}
    for r in (3, 4, 5):
        cell = cells(xml)[f"G{r}"]
        cached = int(at[r]["quantity"])
        formula = '<f t="array" ref="G3:G5">F3:F5*1</f>' if r == 3 else ""
        xml = xml.replace(cell, f'<c r="G{r}" s="5">{formula}<v>{cached}</v></c>')
    parts[part] = xml.encode()
    _save(master, parts, names)
    forms = tmp_path / "forms"
    committee = at[4]["committee_id"]
    build_forms(master, forms, [committee])
    inbox = folders(master, read_workbook(master).settings).inbox
    inbox.mkdir()
    keys = ("record_id", "date", "project_id", "activity", "participants", "quantity", "status", "reporter",
            "in_bulletin", "note")
    record = {k: (None if at[4][k] != at[4][k] else at[4][k]) for k in keys}
    fill_form(next(forms.glob(f"填报表-{committee}-*.xlsx")), inbox / "更正.xlsx",
              [{**record, "quantity": int(at[4]["quantity"]) + 1}])
    before = master.read_bytes()
    assert main(["consolidate", str(master), "--as-of", "2020-11-15"]) == 2
    err = capsys.readouterr().err
    assert "G3:G5" in err and "G4" in err and "数组公式" in err and "选择性粘贴" in err and LEDGER in err, err
    assert master.read_bytes() == before
    assert (inbox / "更正.xlsx").exists()  # the next run retries it


def test_a_threaded_comment_on_the_cell_a_mark_fills_stays_as_excel_365_wrote_it(master):
    """Excel 365's 新建批注 is a threaded comment (its own part, a person list, and a placeholder
    note for older versions). Marking that cell fills it and adds no note of ours; every part of
    the thread stays byte for byte."""
    guid, person = "{3E6F0C1A-7B2D-4C5E-9F10-A1B2C3D4E5F6}", "{9A8B7C6D-5E4F-4A3B-8C2D-1E0F9A8B7C6D}"
    probe = master.with_name("probe.xlsx")  # which cell the mark fills
    shutil.copy2(master, probe)
    [warned] = [p for p in cli_json("validate", str(probe), "--as-of", "2020-11-15", "--mark")[1]["issues"] if p["sheet"] == LEDGER]
    probe.unlink()
    ref = f"G{warned['row']}"
    parts, names = _parts(master)
    notes = "xl/comments/comment1.xml"
    text = parts[notes].decode().replace("</authors>", f"<author>tc={guid}</author></authors>")
    parts[notes] = text.replace("</commentList>", (
        f'<comment ref="{ref}" authorId="1" shapeId="0"><text><t>[Threaded comment]\n\nComment:\n'
        "    这个数字请再核实</t></text></comment></commentList>")).encode()
    parts["xl/threadedComments/threadedComment1.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<ThreadedComments xmlns="http://schemas.'
        'microsoft.com/office/spreadsheetml/2018/threadedcomments" xmlns:x="http://schemas.openxmlformats.org/'
        f'spreadsheetml/2006/main"><threadedComment ref="{ref}" dT="2020-11-20T08:00:00.00" personId="{person}" '
        f'id="{guid}"><text>这个数字请再核实</text></threadedComment></ThreadedComments>').encode()
    parts["xl/persons/person.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<personList xmlns="http://schemas.microsoft.'
        'com/office/spreadsheetml/2018/threadedcomments" xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/'
        f'2006/main"><person displayName="李四" id="{person}" userId="lisi@example.org" providerId="AD"/>'
        "</personList>").encode()
    rels = sheet_parts(parts)[LEDGER].replace("worksheets/", "worksheets/_rels/") + ".rels"
    _append(parts, rels, "</Relationships>", '<Relationship Id="rIdTC1" Type="http://schemas.microsoft.com/'
            'office/2017/10/relationships/threadedComment" Target="../threadedComments/threadedComment1.xml"/>')
    _append(parts, "xl/_rels/workbook.xml.rels", "</Relationships>", '<Relationship Id="rIdP1" Type="http://'
            'schemas.microsoft.com/office/2017/10/relationships/person" Target="persons/person.xml"/>')
    _append(parts, "[Content_Types].xml", "</Types>",
            '<Override PartName="/xl/threadedComments/threadedComment1.xml" ContentType="application/'
            'vnd.ms-excel.threadedcomments+xml"/><Override PartName="/xl/persons/person.xml" '
            'ContentType="application/vnd.ms-excel.person+xml"/>')
    _save(master, parts, names)
    before, _ = _parts(master)
    cli_json("validate", str(master), "--as-of", "2020-11-15", "--mark")
    after, _ = _parts(master)
    for part in ("xl/threadedComments/threadedComment1.xml", "xl/persons/person.xml", rels,
                 "xl/_rels/workbook.xml.rels", notes):
        assert after[part] == before[part], part
    assert cells(after[sheet_parts(after)[LEDGER]].decode())[ref] != cells(before[sheet_parts(before)[LEDGER]]
                                                                          .decode())[ref]  # filled


def test_a_refused_write_says_why_and_what_to_do_in_chinese_and_stages_the_result(master, monkeypatch):
    """Whatever the check finds (here: a date read back other than written), staff read in Chinese
    that the master was left alone and why, where the result is, and whom to give it to."""
    from macros.book import owned
    from macros.book.write import FileBook, WriteRefused

    real = owned.cell_xml
    monkeypatch.setattr(owned, "cell_xml", lambda ref, value, style, *more: real(
        ref, value.replace(year=value.year + 4) if isinstance(value, date_type) else value, style, *more))
    book = FileBook(master)
    frame = book.read([schema.LEDGER]).frames[LEDGER]
    rows = frame.to_dict("records")
    rows[0]["date"] = date_type(2020, 12, 1)
    before = master.read_bytes()
    with pytest.raises(WriteRefused) as refused:
        book.write([schema_write(rows)])
    message = str(refused.value)
    assert master.read_bytes() == before and refused.value.staged.exists()
    assert message.startswith(f"写入 {master.name} 前的核对未通过：写好的文件与应有的内容不符")
    assert "主工作簿未改动" in message and refused.value.staged.name in message and "技术联系人" in message


def schema_write(rows: list[dict]):
    from macros.book.write_types import SheetWrite

    return SheetWrite(schema.LEDGER, rows)


def test_a_write_losing_a_staff_hyperlink_on_the_ledger_is_refused(master, monkeypatch):
    """Fault injection: a writer bug dropping the hyperlink relationship staff put on a 台账 cell.
    Output sheets' links are ours to replace; the ledger's are not, and the check says so."""
    from macros.book.package import Package
    from macros.book.write import FileBook, WriteRefused

    ledger_rels = rels_name(sheet_parts(_parts(master)[0])[LEDGER])
    save = Package.save

    def drop_links(pkg, target):
        pkg.set_text(ledger_rels, re.sub(r'<Relationship\b[^>]*/hyperlink"[^>]*/>', "", pkg.text(ledger_rels)))
        return save(pkg, target)

    monkeypatch.setattr(Package, "save", drop_links)
    book = FileBook(master)
    rows = book.read([schema.LEDGER]).frames[LEDGER].to_dict("records")
    rows[0]["participants"] = 99
    before = master.read_bytes()
    with pytest.raises(WriteRefused):
        book.write([schema_write(rows)])
    assert master.read_bytes() == before
