"""Word output from docxtpl templates.

``WordTemplate`` parses a .docx template once (docxtpl's tag clean-up, jinja compilation) and then
fills it for each document by rendering the compiled body and zipping it with the template's other
parts as stored bytes — the repeated work plain docxtpl does per document (unzip, parse, clean up,
compile, re-serialise) happens once. Documents that embed pictures (the progress chart, bulletin
photos) go through docxtpl itself, which manages image parts.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from docx.shared import Mm
from docxtpl import DocxTemplate, InlineImage

from .env import TemplateProblem, compile_template, docx_environment, render_checked, undefined_problem

DOCUMENT = "word/document.xml"
_TEMPLATED_PART = re.compile(r"word/(document|header\d*|footer\d*)\.xml$")
_BODY = re.compile(r"(<w:body>)(.*?)(<w:sectPr\b.*?</w:sectPr>)(\s*</w:body>)", re.DOTALL)
_PGNUM = re.compile(r"<w:pgNumType\b[^>]*/>")
_LISTING_CHARS = re.compile(r"[\t\a\n\f]")


def _xml_source(tpl: DocxTemplate, xml: str) -> str:
    # docxtpl's own preparation: tags merged across runs, {%p %}/{%tr %} lifted, one paragraph a line.
    return re.sub(r"<w:p([ >])", r"\n<w:p\1", tpl.patch_xml(xml))


# A title set by ``{% filter cn_wrap(n) %}…{% endfilter %}``: once staff format part of it in Word
# (or Word splits it for proofing), the filter's body holds the XML between runs, which cn_wrap would
# print as text. What may lie between the runs of a title and be dropped with the title then set
# in its first run's format: run edges, run formatting, proofing marks, bookmarks.
_WRAP_BLOCK = re.compile(r"(\{%-?\s*filter\s+cn_wrap\b.*?%\})(.*?)(\{%-?\s*endfilter\s*-?%\})", re.DOTALL)
_RUN_SEAM = re.compile(
    r"</w:t>|</w:r>|<w:r(?:\s[^>]*)?>|<w:rPr>.*?</w:rPr>|<w:rPr/>|<w:t(?:\s[^>]*)?/?>"
    r"|<w:(?:proofErr|bookmarkStart|bookmarkEnd|lastRenderedPageBreak|permStart|permEnd)\b[^>]*/>",
    re.DOTALL)
_NOT_TEXT = [  # what else Word may put inside a title, as staff call it
    (re.compile(r"</?w:p[ >/]"), "回车分段"), (re.compile(r"<w:(?:br|cr)\b"), "手动换行"),
    (re.compile(r"<w:tab\b"), "制表符"), (re.compile(r"<w:(?:drawing|pict|object)\b"), "图片"),
    (re.compile(r"<w:(?:fldChar|fldSimple|instrText)\b"), "页码、日期等域"),
    (re.compile(r"<w:hyperlink\b"), "超链接"),
]


def merge_wrapped_runs(xml: str, template: str) -> str:
    """Each ``cn_wrap`` filter block as one run of text (the first run's format), like docxtpl
    merges the runs inside one tag; a block holding more than formatted text → ``TemplateProblem``."""
    def merge(m: re.Match) -> str:
        body = m.group(2)
        if "<" not in body:
            return m.group(0)
        text = _RUN_SEAM.sub("", body)
        if "<" in text:
            what = next((name for pattern, name in _NOT_TEXT if pattern.search(text)), "文字以外的内容")
            raise TemplateProblem(
                template, m.group(1),
                f"用 cn_wrap 断行的标题里有{what}，cn_wrap 只能断开文字：请在 Word 中删去标题里的{what}"
                f"（标题的换行由 cn_wrap 按词安排）")
        return m.group(1) + text + m.group(3)

    return _WRAP_BLOCK.sub(merge, xml) if "cn_wrap" in xml else xml


# Phone numbers as written in China: 021-62000000(-8012), 138-1234-5678, 400-800-1234. Their hyphens
# become Word's non-breaking hyphen, so that a number is never split over two lines on paper. Dates
# (2020-11-15) and record numbers (C01-0007) do not match.
_PHONE = re.compile(r"(?<![\d-])(?:0\d{2,3}-\d{7,8}(?:-\d{1,6})?|1[3-9]\d-\d{4}-\d{4}|[48]00-\d{3}-\d{4})(?![\d-])")
_TEXT_NODE = re.compile(r"(<w:t(?:\s[^>]*)?>)([^<]*)(</w:t>)")
# <w:noBreakHyphen/> rather than U+2011: Word draws it with the run's own hyphen (U+2011 is missing
# from some Chinese fonts), and readers of the .docx (python-docx, a PDF LibreOffice made) take it
# as "-"; LibreOffice prints both alike.
_NO_BREAK = '</w:t><w:noBreakHyphen/><w:t xml:space="preserve">'


def keep_phone_numbers_whole(xml: str) -> str:
    """``xml`` (a rendered WordprocessingML part) with the hyphens of phone numbers in its text made
    non-breaking."""
    if "-" not in xml:
        return xml

    def text_node(m: re.Match) -> str:
        text = m.group(2)
        if "-" not in text:
            return m.group(0)
        return m.group(1) + _PHONE.sub(lambda p: p.group(0).replace("-", _NO_BREAK), text) + m.group(3)

    return _TEXT_NODE.sub(text_node, xml)


class _Template(DocxTemplate):
    """docxtpl's template, whose preparation also merges the runs of ``cn_wrap`` titles."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.template_name = Path(path).name

    def patch_xml(self, src_xml: str) -> str:
        return merge_wrapped_runs(super().patch_xml(src_xml), self.template_name)

    def render_xml_part(self, src_xml, part, context, jinja_env=None):
        # docxtpl's own rendering (documents with pictures): body, headers, footers, footnotes.
        return keep_phone_numbers_whole(super().render_xml_part(src_xml, part, context, jinja_env))


def _finish(tpl: DocxTemplate, xml: str) -> str:
    xml = re.sub(r"\n<w:p([ >])", r"<w:p\1", xml)
    xml = xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")
    # Line breaks, tabs and page breaks inside values → Word breaks (docxtpl's listing rules).
    xml = tpl.resolve_listing(xml) if _LISTING_CHARS.search(xml) else xml
    return keep_phone_numbers_whole(xml)


class WordTemplate:
    """A .docx template compiled once, filled many times."""

    def __init__(self, path: Path, variables: Iterable[str] | None = None,
                 env: jinja2.Environment | None = None):
        self.path = Path(path)
        self.name = self.path.name
        self.env = env or docx_environment()
        self._tpl = _Template(self.path)
        with zipfile.ZipFile(self.path) as z:
            self.parts = {info.filename: z.read(info) for info in z.infolist()}
        self.sources: dict[str, str] = {}
        self.compiled: dict[str, jinja2.Template] = {}
        variables = list(variables) if variables is not None else None
        for part, data in self.parts.items():
            if not _TEMPLATED_PART.match(part):
                continue
            xml = data.decode("utf-8")
            if "{" not in xml and "｛" not in xml:
                continue
            if part == DOCUMENT:
                m = _BODY.search(xml)
                if not m:
                    raise TemplateProblem(self.name, "", "不是有效的 Word 文档（找不到正文）")
                self._head, body, self._sect, tail = xml[:m.start(2)], m.group(2), m.group(3), m.group(4)
                self._tail = tail + xml[m.end():]
                xml = body
            source = _xml_source(self._tpl, xml)
            self.sources[part] = source
            self.compiled[part] = compile_template(self.env, source, self.name, variables)
        if DOCUMENT not in self.compiled:  # a template without tags still renders
            xml = self.parts[DOCUMENT].decode("utf-8")
            m = _BODY.search(xml)
            self._head, self._sect = xml[:m.start(2)], m.group(3)
            self._tail = m.group(4) + xml[m.end():]
            self.compiled[DOCUMENT] = self.env.from_string(m.group(2).replace("{", "{{ '{' }}"))
            self.sources[DOCUMENT] = m.group(2)

    def render_body(self, context: dict) -> str:
        """The filled body XML of one document (without its final section properties)."""
        return _finish(self._tpl, render_checked(self.compiled[DOCUMENT], context,
                                                 self.sources[DOCUMENT], self.name))

    def _other_parts(self, context: dict) -> dict[str, bytes]:
        parts = {}
        for part, template in self.compiled.items():
            if part != DOCUMENT:
                xml = _finish(self._tpl, render_checked(template, context, self.sources[part], self.name))
                parts[part] = xml.encode("utf-8")
        return parts

    def save(self, path: Path, bodies: list[str], context: dict,
             write: Callable[[Path, bytes], object] | None = None) -> Path:
        """Write a document holding ``bodies`` in order, each its own section numbered from 1.

        ``context`` fills templated headers and footers (the first notice's, in a combined file);
        ``write(path, data)`` replaces the plain file write (the renderer writes on a thread).
        """
        sections = []
        if len(bodies) > 1:
            restart = _PGNUM.sub("", self._sect).replace(
                "</w:sectPr>", '<w:pgNumType w:fmt="decimal" w:start="1"/></w:sectPr>')
            # Schema order wants pgNumType before cols/docGrid; LibreOffice and Word accept this
            # position, but keep it tidy: put it right after the page margins.
            restart = _reorder_pgnum(restart)
            for body in bodies[:-1]:
                sections.append(f"{body}<w:p><w:pPr>{restart}</w:pPr></w:p>")
        sections.append(bodies[-1])
        final_sect = _reorder_pgnum(_PGNUM.sub("", self._sect).replace(
            "</w:sectPr>", '<w:pgNumType w:fmt="decimal" w:start="1"/></w:sectPr>'))
        document = self._head + "".join(sections) + final_sect + self._tail
        overrides = {DOCUMENT: document.encode("utf-8"), **self._other_parts(context)}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            for part, data in self.parts.items():
                z.writestr(part, overrides.get(part, data))
        path = Path(path)
        (write or Path.write_bytes)(path, buffer.getvalue())
        return path

    def render_to(self, path: Path, context: dict,
                  write: Callable[[Path, bytes], object] | None = None) -> Path:
        """One document from one context."""
        return self.save(path, [self.render_body(context)], context, write)


_SECT_ORDER = re.compile(r"(<w:pgMar\b[^>]*/>)(.*?)(<w:pgNumType\b[^>]*/>)", re.DOTALL)


def _reorder_pgnum(sect: str) -> str:
    # ECMA-376 order inside sectPr: ... pgSz, pgMar, paperSrc, pgBorders, lnNumType, pgNumType, cols ...
    m = re.search(r"<w:pgNumType\b[^>]*/>", sect)
    if not m:
        return sect
    sect = sect[:m.start()] + sect[m.end():]
    anchor = re.search(r"<w:pgMar\b[^>]*/>", sect)
    if not anchor:
        return sect.replace("</w:sectPr>", m.group(0) + "</w:sectPr>")
    return sect[:anchor.end()] + m.group(0) + sect[anchor.end():]


@dataclass(frozen=True)
class Picture:
    """A picture to place in a Word document (PNG/JPEG bytes, width in mm; height in mm, or
    None for the picture's own proportions)."""

    data: bytes
    width_mm: float
    height_mm: float | None = None


def _bind(value: object, tpl: DocxTemplate) -> object:
    # Pictures may sit anywhere in the context (the chart at top level, photos inside articles).
    if isinstance(value, Picture):
        height = Mm(value.height_mm) if value.height_mm else None
        return InlineImage(tpl, io.BytesIO(value.data), width=Mm(value.width_mm), height=height)
    if isinstance(value, dict):
        return {k: _bind(v, tpl) for k, v in value.items()}
    if isinstance(value, list):
        return [_bind(v, tpl) for v in value]
    return value


def render_with_pictures(path: Path, out: Path, context: dict,
                         variables: Iterable[str] | None = None,
                         write: Callable[[Path, bytes], object] | None = None) -> Path:
    """Render one document through docxtpl; ``Picture`` values in ``context`` become images.

    ``write(path, data)`` replaces the plain file write, as in ``WordTemplate.save``.
    """
    tpl = _Template(Path(path))
    env = docx_environment()
    name = Path(path).name
    tpl.init_docx()
    source = _xml_source(tpl, tpl.get_xml())
    compile_template(env, source, name, variables)  # Chinese errors before docxtpl sees the template
    try:
        tpl.render(_bind(context, tpl), env, autoescape=True)
    except jinja2.UndefinedError as exc:
        raise undefined_problem(exc, source, name) from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem(name, "", f"渲染失败（{exc}）") from exc
    buffer = io.BytesIO()
    tpl.save(buffer)
    (write or Path.write_bytes)(Path(out), buffer.getvalue())
    return Path(out)
