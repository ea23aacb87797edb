"""Build the Word templates in templates/ with python-docx, so they are reproducible.

    python scripts/build_templates.py [输出文件夹]    (default: templates/, rewritten in place)

Layout of 进度通报 / 催办通知 / 会议通知 follows GB/T 9704-2012 (党政机关公文格式): A4, margins top
37 mm and left 28 mm, a 156 × 225 mm text block, 22 lines of 28 characters, the 发文机关标志 centred in
red, the 发文字号, a red rule, the title in 2号 小标宋, the body in 3号 仿宋 indented two characters,
headings 一、 in 黑体 and （一） in 楷体, page numbers “— 1 —” in 4号 宋体 (odd pages right, even left).
The 工作简报 uses the usual bulletin masthead instead. Every font is set for East Asian text
(w:eastAsia) — without it Word shows Chinese in a Japanese fallback font.

Staff restyle a template by editing its named styles (公文标题, 正文, 一级标题 …) in Word; the jinja
tags ({{ … }}, {%p … %}) must stay intact. templates/README.md lists the variables.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from docx import Document
from docx.enum.section import WD_SECTION
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor

ROOT = Path(__file__).resolve().parents[1]
RED = RGBColor(0xFF, 0x00, 0x00)

# Fonts: 小标宋 is not on every PC; the font table names 宋体 as its alternative.
XBS = "方正小标宋简体"
SONG, FANGSONG, HEI, KAI = "宋体", "仿宋", "黑体", "楷体"
LATIN = "Times New Roman"

# Page: A4 with a 156 × 225 mm text block (GB/T 9704-2012 §5.2.1–5.2.3).
PAGE_W, PAGE_H = 210, 297
TOP, LEFT, BLOCK_W, BLOCK_H = 37, 28, 156, 225
LINES, CHARS = 22, 28
BODY_PT = 16  # 3号
TWIPS_PER_MM = 1440 / 25.4
LINE_PITCH = int(BLOCK_H * TWIPS_PER_MM / LINES)  # 579 twips: 22 lines in 225 mm
# Character pitch relative to the 16 pt default size, in 1/4096 pt: 28 characters in 156 mm.
CHAR_SPACE = round((BLOCK_W * 72 / 25.4 / CHARS - BODY_PT) * 4096)
TITLE_PT, ARTICLE_TITLE_PT, TABLE_PT = 22, 18, 12  # 2号 公文标题, the bulletin's 文章标题, 小四 tables
CELL_MARGIN = 1  # mm left and right inside table cells: dates and six-digit numbers fit on one line


def per_line(width_mm: float, size_pt: float) -> int:
    """Characters of ``size_pt`` that fit in ``width_mm``: where ``cn_wrap`` breaks a line."""
    return int(width_mm * 72 / 25.4 / size_pt)


def title(words: str, size_pt: float = TITLE_PT) -> str:
    """A title broken between words (GB/T 9704 §7.3.3): Word alone breaks Chinese mid-word."""
    return "{% filter cn_wrap(" + str(per_line(BLOCK_W, size_pt)) + ") %}" + words + "{% endfilter %}"


def set_fonts(rpr_parent, east_asia: str, latin: str | None = None) -> None:
    """Set w:rFonts on a run, style or rPr owner: East Asian font explicitly, Latin alongside."""
    rpr = rpr_parent.get_or_add_rPr() if hasattr(rpr_parent, "get_or_add_rPr") else rpr_parent
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    latin = latin or east_asia
    for attr, value in (("w:ascii", latin), ("w:hAnsi", latin), ("w:eastAsia", east_asia),
                        ("w:cs", latin)):
        fonts.set(qn(attr), value)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)


def paragraph_style(doc, name: str, font: str, size: float, *, align=WD_ALIGN_PARAGRAPH.JUSTIFY,
                    indent_chars: int = 0, bold: bool = False, color: RGBColor | None = None,
                    exact: bool = True, before: float = 0, after: float = 0, latin: str | None = LATIN,
                    base: str | None = None, snap: bool | None = None, keep_next: bool = False):
    """A named paragraph style staff can restyle in Word."""
    styles = doc.styles
    style = styles[name] if name in [s.name for s in styles] else styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
    if base:
        style.base_style = styles[base]
    style.quick_style = True
    style.font.size = Pt(size)
    style.font.bold = bold
    if color is not None:
        style.font.color.rgb = color
    set_fonts(style.element, font, latin or font)
    pf = style.paragraph_format
    pf.alignment = align
    pf.space_before, pf.space_after = Pt(before), Pt(after)
    if exact:
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Pt(LINE_PITCH / 20)
    else:
        pf.line_spacing_rule = WD_LINE_SPACING.SINGLE
    pf.first_line_indent = None
    pf.keep_with_next = keep_next or None  # headings stay with the text they introduce
    ppr = style.element.get_or_add_pPr()
    # 3号 body text is drawn 0.25 pt tighter so that 28 characters fill the 156 mm line exactly
    # (16 pt × 28 would overflow it). Titles, the 版头 and tables do not snap to the line grid.
    snap = (size == BODY_PT) if snap is None else snap
    if not snap:
        grid = OxmlElement("w:snapToGrid")
        grid.set(qn("w:val"), "0")
        ppr.append(grid)
    else:
        rpr = style.element.get_or_add_rPr()
        spacing = OxmlElement("w:spacing")
        spacing.set(qn("w:val"), "-5")
        rpr.append(spacing)
    ind = ppr.find(qn("w:ind"))
    if ind is None:
        ind = OxmlElement("w:ind")
        ppr.append(ind)
    # firstLineChars keeps the indent at two characters whatever size staff choose later.
    ind.set(qn("w:firstLineChars"), str(indent_chars * 100))
    ind.set(qn("w:firstLine"), str(int(indent_chars * size * 20)))
    return style


def bottom_rule(paragraph_or_style, color: str = "FF0000", size_eighths: int = 12, space_pt: int = 8) -> None:
    """A red rule under the paragraph, as wide as the text block (a paragraph border)."""
    ppr = paragraph_or_style.element.get_or_add_pPr() if hasattr(paragraph_or_style, "element") \
        else paragraph_or_style._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for attr, value in (("w:val", "single"), ("w:sz", str(size_eighths)), ("w:space", str(space_pt)),
                        ("w:color", color)):
        bottom.set(qn(attr), value)
    borders.append(bottom)
    ppr.append(borders)


def base_document(numbered: bool = True) -> Document:
    """A4, GB/T 9704 margins and grid, default fonts, styles and (optionally) page numbers."""
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(PAGE_W), Mm(PAGE_H)
    section.top_margin, section.left_margin = Mm(TOP), Mm(LEFT)
    section.right_margin = Mm(PAGE_W - LEFT - BLOCK_W)
    section.bottom_margin = Mm(PAGE_H - TOP - BLOCK_H)
    section.header_distance, section.footer_distance = Mm(15), Mm(22)
    section.start_type = WD_SECTION.NEW_PAGE
    grid = section._sectPr.find(qn("w:docGrid"))
    # A line grid (22 lines of 579 twips). The 28 characters a line come from the body styles'
    # 0.25 pt tighter glyphs (28 × 15.75 pt fits 156 mm): LibreOffice breaks lines at about half
    # the width under a "linesAndChars" grid, so the character grid is made by metrics instead;
    # Word shows the same 28 × 22 page. charSpace stays for anyone switching the grid on in Word.
    grid.set(qn("w:type"), "lines")
    grid.set(qn("w:linePitch"), str(LINE_PITCH))
    grid.set(qn("w:charSpace"), str(CHAR_SPACE))

    # Document defaults: 3号 仿宋 for East Asian text (w:eastAsia), so nothing falls back to MS Mincho.
    rpr_default = doc.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    set_fonts(rpr_default, FANGSONG, LATIN)
    size = rpr_default.find(qn("w:sz"))
    if size is None:
        size = OxmlElement("w:sz")
        rpr_default.append(size)
    size.set(qn("w:val"), str(BODY_PT * 2))
    lang = rpr_default.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr_default.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")
    lang.set(qn("w:val"), "en-US")

    normal = paragraph_style(doc, "Normal", FANGSONG, BODY_PT, indent_chars=2)
    normal.font.color.rgb = RGBColor(0, 0, 0)
    for name in ("Header", "Footer"):
        paragraph_style(doc, name, SONG, 14, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False, latin=SONG)
    paragraph_style(doc, "发文机关标志", XBS, 36, align=WD_ALIGN_PARAGRAPH.CENTER, color=RED,
                    exact=False, latin=XBS, before=0, after=0)
    style = paragraph_style(doc, "发文字号", FANGSONG, BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER,
                            before=2 * LINE_PITCH / 20, after=0)
    bottom_rule(style, space_pt=11)  # the red rule 4 mm under the 发文字号
    paragraph_style(doc, "公文标题", XBS, TITLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False,
                    latin=XBS, before=2 * LINE_PITCH / 20, after=LINE_PITCH / 20)
    paragraph_style(doc, "主送机关", FANGSONG, BODY_PT)
    paragraph_style(doc, "一级标题", HEI, BODY_PT, indent_chars=2, latin=HEI, keep_next=True)
    paragraph_style(doc, "二级标题", KAI, BODY_PT, indent_chars=2, latin=KAI, keep_next=True)
    paragraph_style(doc, "公文正文", FANGSONG, BODY_PT, indent_chars=2)
    signature = paragraph_style(doc, "落款", FANGSONG, BODY_PT, align=WD_ALIGN_PARAGRAPH.RIGHT)
    ind = signature.element.get_or_add_pPr().find(qn("w:ind"))
    ind.set(qn("w:rightChars"), "400")  # 右空四字
    ind.set(qn("w:right"), str(4 * BODY_PT * 20))
    paragraph_style(doc, "表格文字", FANGSONG, TABLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False)
    paragraph_style(doc, "表格标题", HEI, TABLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False, latin=HEI)
    paragraph_style(doc, "图表", FANGSONG, 12, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False)
    paragraph_style(doc, "图题", FANGSONG, 12, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False)
    _font_alternatives(doc)
    if numbered:
        page_numbers(doc)
    # python-docx's default document holds one empty paragraph; start clean.
    body = doc.element.body
    for p in body.findall(qn("w:p")):
        body.remove(p)
    return doc


def _font_alternatives(doc) -> None:
    """Declare 小标宋 in the font table with 宋体 as its alternative (Word uses it when missing)."""
    part = doc.part
    font_part = None
    for rel in part.rels.values():
        if rel.reltype.endswith("/fontTable"):
            font_part = rel.target_part
    if font_part is None:
        return
    from lxml import etree
    root = etree.fromstring(font_part.blob)
    ns = root.nsmap.get("w") or "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    w = f"{{{ns}}}"
    for name, alt, family in ((XBS, SONG, "roman"), (FANGSONG, None, "modern"), (HEI, None, "modern"),
                              (KAI, None, "modern"), (SONG, None, "auto")):
        font = etree.SubElement(root, w + "font", {w + "name": name})
        if alt:
            etree.SubElement(font, w + "altName", {w + "val": alt})
        etree.SubElement(font, w + "charset", {w + "val": "86"})
        etree.SubElement(font, w + "family", {w + "val": family})
        etree.SubElement(font, w + "pitch", {w + "val": "variable"})
    font_part._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _page_field(paragraph) -> None:
    """“— PAGE —”: one-em dashes either side of the page number field."""
    for text in ("— ", None, " —"):
        if text is None:
            field = OxmlElement("w:fldSimple")
            field.set(qn("w:instr"), " PAGE ")
            run = OxmlElement("w:r")
            t = OxmlElement("w:t")
            t.text = "1"
            run.append(t)
            field.append(run)
            paragraph._p.append(field)
        else:
            paragraph.add_run(text)


def page_numbers(doc) -> None:
    """4号 宋体 page numbers: odd pages right-aligned, even pages left-aligned, one character in."""
    doc.settings.odd_and_even_pages_header_footer = True
    section = doc.sections[0]
    for footer, align, side in ((section.footer, WD_ALIGN_PARAGRAPH.RIGHT, "right"),
                                (section.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT, "left")):
        footer.is_linked_to_previous = False
        p = footer.paragraphs[0]
        p.style = doc.styles["Footer"]
        p.alignment = align
        ppr = p._p.get_or_add_pPr()
        ind = OxmlElement("w:ind")
        ind.set(qn(f"w:{side}Chars"), "100")
        ind.set(qn(f"w:{side}"), "280")
        ppr.append(ind)
        _page_field(p)


def para(doc, text: str = "", style: str = "公文正文"):
    return doc.add_paragraph(text, style=doc.styles[style])


def red_masthead(doc, issuer: str = "{{ issuer }}", number: str = "{{ doc_number }}") -> None:
    """版头: 发文机关标志 in red, 发文字号, red rule."""
    para(doc, issuer, "发文机关标志")
    para(doc, number, "发文字号")


def table(doc, headers: list[str], cells: list[str], loop: str, widths_mm: list[float],
          wrap: tuple[int, ...] = (), units: tuple[int, ...] = ()) -> None:
    """A table with a header row and one templated row repeated by ``{%tr for … %}``; the text of
    the columns in ``wrap`` is broken between words to the column's width (not "服务中 / 心"),
    in ``units`` (责任单位 lists) between the units it names (not "自治 / 办、")."""
    scale = BLOCK_W / sum(widths_mm)  # tables span the text block

    def wrapped(i: int, cell: str) -> str:
        value = cell[2:-2].strip()
        keep = f", keep={value}" if i in units else ""
        return f"{{{{ {value}|cn_wrap({per_line(widths_mm[i] * scale - 2 * CELL_MARGIN, TABLE_PT)}{keep}) }}}}"

    cells = [wrapped(i, cell) if i in wrap else cell for i, cell in enumerate(cells)]
    t = doc.add_table(rows=4, cols=len(headers))
    t.style = doc.styles["Table Grid"]
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    for i, header in enumerate(headers):
        t.rows[0].cells[i].paragraphs[0].text = header
        t.rows[0].cells[i].paragraphs[0].style = doc.styles["表格标题"]
    t.rows[1].cells[0].paragraphs[0].text = "{%tr " + loop + " %}"
    for i, cell in enumerate(cells):
        t.rows[2].cells[i].paragraphs[0].text = cell
    t.rows[3].cells[0].paragraphs[0].text = "{%tr endfor %}"
    t.autofit = False
    grid = t._tbl.tblGrid
    for i, col in enumerate(grid.findall(qn("w:gridCol"))):
        col.set(qn("w:w"), str(int(widths_mm[i] * scale * TWIPS_PER_MM)))
    tblpr = t._tbl.tblPr
    width = tblpr.find(qn("w:tblW"))
    if width is None:
        width = OxmlElement("w:tblW")
        tblpr.append(width)
    width.set(qn("w:type"), "dxa")
    width.set(qn("w:w"), str(int(BLOCK_W * TWIPS_PER_MM)))
    margins = OxmlElement("w:tblCellMar")
    for side in ("left", "right"):
        margin = OxmlElement(f"w:{side}")
        margin.set(qn("w:w"), str(round(CELL_MARGIN * TWIPS_PER_MM)))
        margin.set(qn("w:type"), "dxa")
        margins.append(margin)
    look = tblpr.find(qn("w:tblLook"))  # schema order: tblCellMar comes just before tblLook
    if look is not None:
        look.addprevious(margins)
    else:
        tblpr.append(margins)
    for row in t.rows:
        for i, cell in enumerate(row.cells):
            cell.width = Mm(widths_mm[i] * scale)
            cell.paragraphs[0].style = doc.styles["表格标题" if row is t.rows[0] else "表格文字"]
    # No row is split across pages (a split row left "…项目" and "日" alone atop the next page);
    # the header row repeats on every page.
    for row in t.rows:
        row._tr.get_or_add_trPr().append(OxmlElement("w:cantSplit"))
    t.rows[0]._tr.get_or_add_trPr().append(OxmlElement("w:tblHeader"))


def signature(doc, issuer: str = "{{ issuer }}", when: str = "{{ date|cn_date }}") -> None:
    # The last paragraph of the text goes with the signature: a notice that nearly fills its page
    # must not print the signature alone on the next one (with widow control, its last lines move).
    last = doc.paragraphs[-1]
    assert "{%" not in last.text, "the signature follows text, not a template tag (removed on rendering)"
    last.paragraph_format.keep_with_next = True
    # Issuer and date are one paragraph, two lines (both right-aligned alike by 落款): kept
    # together, no page break falls between them. As two paragraphs joined by keep-with-next,
    # LibreOffice still printed the date alone atop a page of the combined 催办通知.
    signed = para(doc, issuer, "落款")
    signed.add_run().add_break()
    signed.add_run(when)
    signed.paragraph_format.keep_together = True
    # 正文下空一行: space before rather than an empty paragraph (LibreOffice pushed an empty
    # paragraph plus the signature onto a page of their own).
    signed.paragraph_format.space_before = Pt(LINE_PITCH / 20)


def progress_template() -> Document:
    doc = base_document()
    red_masthead(doc)
    para(doc, title("关于{{ pilot_name }}建设工作进展情况的通报"), "公文标题")
    para(doc, "各居委会、各责任单位：", "主送机关")
    # A workbook without any 目标值 has no percent: "平均完成年度目标的暂无目标" would read as nonsense.
    para(doc, "截至{{ as_of|cn_date }}，{{ street }}{{ summary.projects }}个试点项目"
              "{% if summary.percent is blank %}尚未设定年度目标{% else %}平均完成年度目标的{{ summary.percent|pct }}"
              "{% endif %}，{{ summary.committees }}个居委会共填报台账{{ summary.entries }}条。"
              "现将有关情况通报如下。")
    para(doc, "一、总体进展", "一级标题")
    para(doc, "{{ summary.on_track }}个居委会进度正常，{{ summary.lagging }}个滞后，{{ summary.severe }}个严重滞后"
              "{% if summary.no_target %}，{{ summary.no_target }}个尚未设定目标{% endif %}；"
              "{{ summary.overdue_projects }}个项目已过截止日期仍未完成{% if overdue_projects %}："
              "{% for p in overdue_projects %}{{ p.name }}{% if p.units %}（由{{ p.units }}负责）{% endif %}"
              "{% if not loop.last %}、{% endif %}{% endfor %}{% endif %}；{{ summary.unverified }}条台账记录待核实。")
    para(doc, "二、分类别进展", "一级标题")
    table(doc, ["类别", "项目数", "平均完成率", "逾期项目"],
          ["{{ c.category }}", "{{ c.projects }}", "{{ c.percent|pct }}", "{{ c.overdue }}"],
          "for c in categories", [50, 30, 40, 36])
    para(doc, "三、分项目进展", "一级标题")
    table(doc, ["项目", "责任单位", "目标", "完成", "完成率", "截止日期"],
          ["{{ p.name }}", "{{ p.units }}", "{{ p.target|num }}", "{{ p.achieved|num }}",
           # A line break (Shift+Enter in Word) between the date and the mark: "已逾期" never splits.
           "{{ p.percent|pct }}", "{{ p.deadline|cn_date }}{% if p.is_overdue %}\n已逾期{% endif %}"],
          "for p in projects", [32, 32, 18, 18, 20, 36], wrap=(0, 1), units=(1,))
    para(doc, "四、各居委会进展", "一级标题")
    para(doc, "{%p if chart %}", "图表")
    para(doc, "{{ chart }}", "图表").paragraph_format.keep_with_next = True
    para(doc, "图1  各居委会完成率（截至{{ as_of|cn_date }}）", "图题")
    para(doc, "{%p endif %}", "图表")
    para(doc, "居委会的完成率{{ percent_rule }}。")  # what the percents below are (rollup's rule)
    para(doc, "{%p if severe_committees %}")
    para(doc, "（一）严重滞后的居委会", "二级标题")
    para(doc, "{% for c in severe_committees %}{{ c.committee_name }}（完成率{{ c.percent|pct }}）"
              "{% if not loop.last %}、{% endif %}{% endfor %}。")
    para(doc, "{%p endif %}")
    para(doc, "{%p if lagging_committees %}")
    para(doc, "（{% if severe_committees %}二{% else %}一{% endif %}）进度滞后的居委会", "二级标题")
    para(doc, "{% for c in lagging_committees %}{{ c.committee_name }}（完成率{{ c.percent|pct }}）"
              "{% if not loop.last %}、{% endif %}{% endfor %}。")
    para(doc, "{%p endif %}")
    para(doc, "{%p if not severe_committees and not lagging_committees %}")
    # A committee without targets has no status: "各居委会进度均正常" would vouch for it.
    para(doc, "{% if not summary.no_target %}各居委会进度均正常。{% elif summary.no_target == summary.committees %}"
              "各居委会尚未设定目标，暂无进度状态。{% else %}没有进度滞后的居委会（另有{{ summary.no_target }}个"
              "居委会尚未设定目标）。{% endif %}")
    para(doc, "{%p endif %}")
    para(doc, "五、下一步工作安排", "一级标题")
    # Overdue projects first, each with who leads it and how many committees have not finished.
    para(doc, "{%p for p in overdue_projects %}")
    para(doc, "{{ loop.index }}. {{ p.name }}{% if p.units %}（{{ p.units }}）{% endif %}：截止日期"
              "{{ p.deadline|cn_date }}已过，{% if p.percent is blank %}尚未设定目标{% else %}目标{{ p.target|num }}"
              "{{ p.indicator_unit }}，已完成{{ p.achieved|num }}{{ p.indicator_unit }}（{{ p.percent|pct }}）"
              "{% if p.remaining %}，尚差{{ p.remaining|num }}{{ p.indicator_unit }}{% endif %}{% endif %}，"
              "{{ p.overdue_committees|num }}个居委会尚未完成，请责任单位督促抓紧完成。")
    para(doc, "{%p endfor %}")
    para(doc, "{%p for p in upcoming %}")
    para(doc, "{{ loop.index + overdue_projects|length }}. {{ p.name }}：截止日期{{ p.deadline|cn_date }}，目标{{ p.target|num }}"
              "{{ p.indicator_unit }}，已完成{{ p.achieved|num }}{{ p.indicator_unit }}（{{ p.percent|pct }}），"
              "尚差{{ p.remaining|num }}{{ p.indicator_unit }}。")
    para(doc, "{%p endfor %}")
    para(doc, "请各居委会、各责任单位对照目标任务，抓紧推进，按时在台账中如实填报。"
              "联系人：{{ contact }}，联系电话：{{ phone }}。")
    signature(doc)
    return doc


def reminder_template() -> Document:
    doc = base_document()
    red_masthead(doc)
    para(doc, title("关于加快推进{{ pilot_name }}建设工作的催办通知"), "公文标题")
    para(doc, "{{ committee.committee_name }}：", "主送机关")
    para(doc, "截至{{ as_of|cn_date }}，你居委会{{ reasons|join('；') }}。为确保按期完成试点建设任务，"
              "现就有关事项通知如下。")
    para(doc, "一、当前进度", "一级标题")
    para(doc, "你居委会共填报台账{{ committee.entries|num }}条"
              "{% if committee.unverified %}（另有{{ committee.unverified|num }}条有误，待核实）{% endif %}，"
              "{% if committee.last_report %}最近一次填报为{{ committee.last_report|cn_date }}"
              "{% elif committee.unverified %}尚无通过校验的记录{% else %}尚无填报记录{% endif %}；"
              # 人次 + 场 + 幢 is no total: the sums only when the projects share a unit (blank otherwise).
              "{% if committee.percent is blank %}各项目尚未设定目标。{% else %}"
              "{% if committee.target is not blank %}各项目目标合计{{ committee.target|num }}{{ committee.indicator_unit }}，"
              "已完成{{ committee.achieved|num }}{{ committee.indicator_unit }}，{% endif %}"
              "完成率{{ committee.percent|pct }}（{{ percent_rule }}）{% if committee.expected is not blank %}，"
              "按各项目截止日期，截至{{ as_of|cn_date }}应完成{{ committee.expected|pct }}{% endif %}，"
              "进度状态：{{ committee.status }}。{% endif %}")
    para(doc, "二、逾期事项", "一级标题")
    para(doc, "{%p if overdue_items %}")
    table(doc, ["项目", "目标", "已完成", "尚差", "截止日期"],
          ["{{ i.name }}", "{{ i.target|num }}{{ i.indicator_unit }}", "{{ i.achieved|num }}{{ i.indicator_unit }}",
           "{{ i.remaining|num }}{{ i.indicator_unit }}", "{{ i.deadline|cn_date }}"],
          "for i in overdue_items", [66, 18, 18, 18, 36], wrap=(0,))
    para(doc, "{%p else %}")
    para(doc, "你居委会暂无逾期事项。")
    para(doc, "{%p endif %}")
    para(doc, "三、工作要求", "一级标题")
    para(doc, "{%p for i in overdue_items %}")
    para(doc, "{{ loop.index }}. {{ i.name }}：请于{{ reply_by|cn_date }}前完成{% if i.remaining is not blank %}剩余的"
              "{{ i.remaining|num }}{{ i.indicator_unit }}{% endif %}，并在台账中填报。")
    para(doc, "{%p endfor %}")
    para(doc, "{%p for i in upcoming_items %}")
    para(doc, "{{ loop.index + overdue_items|length }}. {{ i.name }}：截止日期{{ i.deadline|cn_date }}，"
              "尚差{{ i.remaining|num }}{{ i.indicator_unit }}，请抓紧推进。")
    para(doc, "{%p endfor %}")
    para(doc, "请于{{ reply_by|cn_date }}前将落实情况报{{ contact }}（联系电话：{{ phone }}）。")
    signature(doc)
    return doc


def meeting_template() -> Document:
    doc = base_document()
    red_masthead(doc, issuer="{{ meeting.issuer }}")
    para(doc, title("关于召开{{ meeting.name }}的通知"), "公文标题")
    para(doc, "各有关部门、各居委会：", "主送机关")
    para(doc, "经研究，定于{{ meeting.date|cn_date }}召开{{ meeting.name }}。现将有关事项通知如下：")
    para(doc, "{{ meeting.numbers.time }}、会议时间", "一级标题")
    para(doc, "{{ meeting.date|cn_date }}（{{ meeting.date|weekday }}）{{ meeting.start_time }}")
    # A section the 会议 row leaves blank is left out, and the headings are numbered in turn.
    for key, heading, body in (("place", "会议地点", "{{ meeting.place }}"), ("chair", "主持人", "{{ meeting.chair }}"),
                               ("attendees", "参会人员", "{{ meeting.attendees }}")):
        para(doc, f"{{%p if meeting.numbers.{key} is defined %}}")
        para(doc, f"{{{{ meeting.numbers.{key} }}}}、{heading}", "一级标题")
        para(doc, body)
        para(doc, "{%p endif %}")
    para(doc, "{%p if meeting.numbers.agenda is defined %}")
    para(doc, "{{ meeting.numbers.agenda }}、会议议程", "一级标题")
    para(doc, "{%p for item in meeting.agenda_items %}")
    para(doc, "（{{ loop.index|cn_numeral }}）{{ item }}")
    para(doc, "{%p endfor %}")
    para(doc, "{%p endif %}")
    para(doc, "{{ meeting.numbers.requirements }}、有关要求", "一级标题")
    para(doc, "请参会人员提前10分钟到场签到。如不能参会，请提前向联系人请假。")
    para(doc, "联系人：{{ meeting.contact }}，联系电话：{{ meeting.phone }}。")
    signature(doc, issuer="{{ meeting.issuer }}")
    return doc


def bulletin_template() -> Document:
    doc = base_document(numbered=True)
    paragraph_style(doc, "简报名称", XBS, 40, align=WD_ALIGN_PARAGRAPH.CENTER, color=RED, exact=False,
                    latin=XBS, before=12, after=6)
    paragraph_style(doc, "简报期号", KAI, BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER, latin=KAI)
    line = paragraph_style(doc, "简报编发", FANGSONG, 14, align=WD_ALIGN_PARAGRAPH.LEFT, exact=False,
                           before=6)
    line.paragraph_format.tab_stops.add_tab_stop(Mm(BLOCK_W), WD_TAB_ALIGNMENT.RIGHT)
    bottom_rule(line, size_eighths=18, space_pt=4)
    paragraph_style(doc, "文章标题", XBS, ARTICLE_TITLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False, latin=XBS,
                    before=18, after=6, keep_next=True)
    paragraph_style(doc, "图片说明", KAI, 14, align=WD_ALIGN_PARAGRAPH.CENTER, exact=False, latin=KAI)
    paragraph_style(doc, "供稿单位", KAI, BODY_PT, align=WD_ALIGN_PARAGRAPH.RIGHT, latin=KAI)
    paragraph_style(doc, "栏目", HEI, BODY_PT, align=WD_ALIGN_PARAGRAPH.LEFT, latin=HEI, before=12,
                    keep_next=True)
    paragraph_style(doc, "链接标题", HEI, BODY_PT, align=WD_ALIGN_PARAGRAPH.CENTER, latin=HEI, keep_next=True)
    # The 【链接】 list is reference matter in 4号 and single spacing: at the body's 3号 its last two
    # lines spilled onto a page of their own.
    paragraph_style(doc, "链接正文", FANGSONG, 14, indent_chars=2, exact=False)
    paragraph_style(doc, "链接类别", HEI, 14, align=WD_ALIGN_PARAGRAPH.LEFT, latin=HEI, exact=False,
                    before=6, keep_next=True)
    para(doc, "{{ bulletin_name }}", "简报名称")
    para(doc, "第{{ issue }}期", "简报期号")
    para(doc, "{{ issuer }}编\t{{ date|cn_date }}", "简报编发")
    para(doc, "{%p for a in articles %}")
    para(doc, title("{{ a.title }}", ARTICLE_TITLE_PT), "文章标题")
    para(doc, "{%p for text in a.paragraphs %}")
    para(doc, "{{ text }}")
    para(doc, "{%p endfor %}")
    para(doc, "{%p if a.picture %}", "图表")
    para(doc, "{{ a.picture }}", "图表").paragraph_format.keep_with_next = True  # with its caption
    # A caption says what the picture shows: without the picture it is a stray line.
    para(doc, "{%p if a.caption %}", "图片说明")
    para(doc, "{{ a.caption }}", "图片说明")
    para(doc, "{%p endif %}", "图片说明")
    para(doc, "{%p endif %}", "图表")
    para(doc, "{%p if a.source_unit %}", "供稿单位")
    para(doc, "（{{ a.source_unit }}）", "供稿单位")
    para(doc, "{%p endif %}", "供稿单位")
    para(doc, "{%p endfor %}")
    para(doc, "{%p if progress %}")
    para(doc, "【进度】", "栏目")
    para(doc, "截至{{ as_of|cn_date }}，{{ progress.projects }}个试点项目{% if progress.percent is blank %}尚未设定年度目标"
              "{% else %}平均完成年度目标的{{ progress.percent|pct }}"
              "（{% for c in progress.categories %}{{ c.category }}{{ c.percent|pct }}"
              "{% if not loop.last %}，{% endif %}{% endfor %}）{% endif %}；{{ progress.committees }}个居委会中，"
              "{{ progress.on_track }}个进度正常，{{ progress.lagging }}个滞后，{{ progress.severe }}个严重滞后"
              "{% if progress.no_target %}，{{ progress.no_target }}个尚未设定目标{% endif %}。")
    para(doc, "{%p endif %}")
    para(doc, "【链接】", "栏目")
    para(doc, "{{ link_title }}", "链接标题")
    para(doc, "{%p for cat in link_categories %}")
    para(doc, "■ {{ cat.category }}", "链接类别")
    para(doc, "{%p for p in cat.projects %}")
    para(doc, "项目{{ p.numeral }}：{{ p.name }}", "链接正文").paragraph_format.keep_with_next = True
    para(doc, "责任单位：{{ p.units }}", "链接正文")
    para(doc, "{%p endfor %}")
    para(doc, "{%p endfor %}")
    return doc


# ECMA-376 child order of w:pPr and w:rPr: Word rejects documents whose properties are out of order.
PPR_ORDER = ("pStyle keepNext keepLines pageBreakBefore framePr widowControl numPr suppressLineNumbers "
             "pBdr shd tabs suppressAutoHyphens kinsoku wordWrap overflowPunct topLinePunct autoSpaceDE "
             "autoSpaceDN bidi adjustRightInd snapToGrid spacing ind contextualSpacing mirrorIndents "
             "suppressOverlap jc textDirection textAlignment textboxTightWrap outlineLvl divId cnfStyle "
             "rPr sectPr pPrChange").split()
RPR_ORDER = ("rStyle rFonts b bCs i iCs caps smallCaps strike dstrike outline shadow emboss imprint noProof "
             "snapToGrid vanish webHidden color spacing w kern position sz szCs highlight u effect bdr shd "
             "fitText vertAlign rtl cs em lang eastAsianLayout specVanish oMath").split()


def schema_order(root) -> None:
    """Sort the children of every w:pPr and w:rPr under ``root`` into schema order."""
    for tag, order in (("w:pPr", PPR_ORDER), ("w:rPr", RPR_ORDER)):
        rank = {qn(f"w:{name}"): i for i, name in enumerate(order)}
        for props in root.iter(qn(tag)):
            children = list(props)
            children.sort(key=lambda e: rank.get(e.tag, len(rank)))
            for child in children:
                props.append(child)


def finish(doc) -> None:
    """Schema order in the body, the styles and every header and footer."""
    schema_order(doc.element)
    schema_order(doc.styles.element)
    section = doc.sections[0]
    for part in (section.footer, section.even_page_footer):
        schema_order(part._element)


TEMPLATES = {
    "progress.docx": progress_template,
    "reminder.docx": reminder_template,
    "meeting.docx": meeting_template,
    "bulletin.docx": bulletin_template,
}


def build(out_dir: Path) -> list[Path]:
    """Write every Word template into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in TEMPLATES.items():
        doc = make()
        finish(doc)
        doc.core_properties.author = "healthbook"
        doc.core_properties.title = name
        doc.core_properties.created = doc.core_properties.modified = datetime(2020, 1, 1)
        doc.core_properties.last_modified_by = "healthbook"
        doc.core_properties.revision = 1
        path = out_dir / name
        doc.save(str(path))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))  # run from a checkout: its macros package, for the Chinese usage
    from macros.cli import ChineseParser

    parser = ChineseParser(
        description="用 python-docx 重新生成四个 Word 通知模板（进度通报、催办通知、会议通知、工作简报）。"
                    "不给文件夹时改写仓库中自带的 templates/ 里的模板。")
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "templates", metavar="输出文件夹",
                        help="写入模板的文件夹（不存在时新建），默认 templates/")
    args = parser.parse_args(argv)
    for path in build(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
