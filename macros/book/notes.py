"""Legacy notes (Excel "批注") written by healthbook, beside staff's own.

A note is two things: a ``<comment>`` in the sheet's comments part (author ``healthbook``) and a
``<v:shape>`` of ObjectType "Note" in its VML drawing. Ours are found by author, and their shapes
by the cell they sit on; staff's comments and every other shape (buttons, header images) are kept
verbatim. A sheet without notes gets a comments part, a VML part, two relationships, a content
type and a ``<legacyDrawing>`` element — all additions.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from .ooxml import (
    AFTER_LEGACY_DRAWING,
    CT_COMMENTS,
    CT_VML,
    NS_MAIN,
    NS_REL,
    REL_COMMENTS,
    REL_VML,
    attrs_of,
    edit_frame,
    escape_text,
    find_top,
    insert_before_any,
    parse_rels,
    ref_of,
    relative,
    rels_name,
    split_ref,
)
from .package import Package

AUTHOR = "healthbook"
_COMMENT_RE = re.compile(r"<(?P<p>(?:\w+:)?)comment\b(?P<attrs>[^>]*?)(?:/>|>.*?</(?P=p)comment>)", re.S)
_AUTHOR_RE = re.compile(r"<(?P<p>(?:\w+:)?)author\b[^>]*?(?:/>|>(?P<name>.*?)</(?P=p)author>)", re.S)
_SHAPE_RE = re.compile(r"<v:shape\b[^>]*?(?:/>|>.*?</v:shape>)", re.S)
_NOTE_CELL_RE = re.compile(r'ObjectType="Note".*?<x:Row>\s*(\d+)\s*</x:Row>\s*<x:Column>\s*(\d+)\s*</x:Column>', re.S)
SHAPETYPE_NOTE = (
    '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
    '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
)


def _sheet_links(pkg: Package, sheet_part: str) -> tuple[str, list, str | None, str | None]:
    rels_part = rels_name(sheet_part)
    rels = parse_rels(pkg.data(rels_part), sheet_part)
    data = pkg.data(sheet_part)
    comments = next((r.target for r in rels if r.type == REL_COMMENTS), None)
    vml = None
    # A substring test first: the regex over a large sheet's rows is slow.
    # legacyDrawing follows sheetData: only the worksheet's tail is decoded and searched.
    tail = data[max(data.rfind(b"sheetData"), 0):]
    legacy = re.search(r"<(?:\w+:)?legacyDrawing\b([^>]*)/?>", tail.decode("utf-8")) \
        if b"legacyDrawing" in tail else None
    if legacy:
        rid = next((v for k, v in attrs_of(legacy.group(1)).items() if k.endswith(":id")), None)
        vml = next((r.target for r in rels if r.id == rid), None)
    return rels_part, rels, comments, vml


def set_notes(pkg: Package, sheet_part: str, notes: dict[tuple[int, int], str]) -> set[tuple[int, int]]:
    """Replace healthbook's notes on a sheet with ``notes`` ((row, col) → text).

    Returns the cells left without our note because staff already have a comment there.
    """
    rels_part, rels, comments_part, vml_part = _sheet_links(pkg, sheet_part)
    if comments_part is None and not notes:
        return set()
    if comments_part is None:
        comments_part = _free_name(pkg, "xl/comments{}.xml")
        pkg.set_text(comments_part, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                     f'<comments xmlns="{NS_MAIN}"><authors/><commentList/></comments>')
        _add_rel(pkg, rels_part, sheet_part, REL_COMMENTS, comments_part)
        _add_content_type(pkg, comments_part, CT_COMMENTS)
    comments = pkg.text(comments_part)
    authors = [m.group("name") or "" for m in _AUTHOR_RE.finditer(comments)]
    ours = str(authors.index(AUTHOR)) if AUTHOR in authors else None

    removed: set[tuple[int, int]] = set()
    staff: set[tuple[int, int]] = set()
    for m in _COMMENT_RE.finditer(comments):
        attrs = attrs_of(m.group("attrs"))
        cell = split_ref(attrs["ref"])
        if ours is not None and attrs.get("authorId") == ours:
            removed.add(cell)
        else:
            staff.add(cell)
    if removed:
        comments = _COMMENT_RE.sub(lambda m: "" if _is_ours(m, ours) else m.group(0), comments)
    wanted = {cell: text for cell, text in notes.items() if cell not in staff}
    if wanted:
        if ours is None:
            ours = str(len(authors))
            comments = _append_into(comments, "authors", f"<author>{AUTHOR}</author>")
        new = "".join(
            f'<comment ref="{ref_of(r, c)}" authorId="{ours}"><text><r><rPr><b/><sz val="9"/>'
            f'<rFont val="宋体"/><charset val="134"/></rPr><t xml:space="preserve">{escape_text(text)}</t>'
            f"</r></text></comment>"
            for (r, c), text in sorted(wanted.items())
        )
        comments = _append_into(comments, "commentList", new)
    pkg.set_text(comments_part, comments)

    if vml_part is None and wanted:
        vml_part = _free_name(pkg, "xl/drawings/vmlDrawing{}.vml")
        block = 1000 + len([n for n in (*pkg.parts, *pkg.changed) if n.endswith(".vml")])
        pkg.set_text(vml_part, '<xml xmlns:v="urn:schemas-microsoft-com:vml" '
                     'xmlns:o="urn:schemas-microsoft-com:office:office" '
                     'xmlns:x="urn:schemas-microsoft-com:office:excel">'
                     f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{block}"/></o:shapelayout>'
                     f"{SHAPETYPE_NOTE}</xml>")
        rid = _add_rel(pkg, rels_part, sheet_part, REL_VML, vml_part)
        _add_content_type(pkg, vml_part, CT_VML, default_ext="vml")
        _add_legacy_drawing(pkg, sheet_part, rid)
    if vml_part is not None:
        vml = pkg.text(vml_part)
        if removed:
            vml = _SHAPE_RE.sub(lambda m: "" if _note_cell(m.group(0)) in removed else m.group(0), vml)
        if wanted:
            if "_x0000_t202" not in vml:
                vml = vml[: vml.rindex("</xml>")] + SHAPETYPE_NOTE + "</xml>"
            vml = vml[: vml.rindex("</xml>")] + "".join(_shape(vml, cell) for cell in sorted(wanted)) + "</xml>"
        pkg.set_text(vml_part, vml)
    return set(notes) - set(wanted)


def _is_ours(m: re.Match, ours: str | None) -> bool:
    return ours is not None and attrs_of(m.group("attrs")).get("authorId") == ours


def _note_cell(shape: str) -> tuple[int, int] | None:
    m = _NOTE_CELL_RE.search(shape)
    return (int(m.group(1)) + 1, int(m.group(2))) if m else None


def _shape(vml: str, cell: tuple[int, int]) -> str:
    r, c = cell
    idmap = re.search(r'<o:idmap\b[^>]*data="(\d+)', vml)
    base = int(idmap.group(1)) * 1024 if idmap else 1024
    used = {int(n) for n in re.findall(r'id="_x0000_s(\d+)"', vml)}
    n = max([base, *used]) + 1
    row0 = r - 1
    return (
        f'<v:shape id="_x0000_s{n}" type="#_x0000_t202" style="position:absolute;margin-left:60pt;'
        f'margin-top:2pt;width:180pt;height:70pt;z-index:{n - base};visibility:hidden" '
        'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/>'
        '<v:shadow on="t" color="black" obscured="t"/><v:path o:connecttype="none"/>'
        '<v:textbox style="mso-direction-alt:auto"><div style="text-align:left"></div></v:textbox>'
        '<x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
        f"<x:Anchor>{c + 1}, 15, {max(row0 - 1, 0)}, 10, {c + 4}, 15, {row0 + 4}, 4</x:Anchor>"
        f"<x:AutoFill>False</x:AutoFill><x:Row>{row0}</x:Row><x:Column>{c}</x:Column></x:ClientData></v:shape>"
    )


def _append_into(xml: str, element: str, content: str) -> str:
    m = re.search(rf"<(?P<p>(?:\w+:)?){element}\b[^>]*?(?P<self>/?)>", xml)
    p = m.group("p")
    if m.group("self"):
        opened = m.group(0)[:-2] + ">"
        return xml[: m.start()] + opened + content + f"</{p}{element}>" + xml[m.end():]
    close = xml.index(f"</{p}{element}>", m.end())
    return xml[:close] + content + xml[close:]


def _free_name(pkg: Package, pattern: str) -> str:
    n = 1
    while pkg.exists(pattern.format(n)):
        n += 1
    return pattern.format(n)


def _add_rel(pkg: Package, rels_part: str, source: str, rel_type: str, target: str) -> str:
    xml = pkg.text(rels_part) if pkg.exists(rels_part) else (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"></Relationships>')
    used = set(re.findall(r'Id="([^"]+)"', xml))
    n = 1
    while f"rId{n}" in used:
        n += 1
    rid = f"rId{n}"
    element = f'<Relationship Id="{rid}" Type="{rel_type}" Target="{escape(relative(source, target))}"/>'
    if xml.rstrip().endswith("/>") and "<Relationships" in xml and "</Relationships>" not in xml:
        xml = xml.rstrip()[:-2] + "></Relationships>"
    close = xml.rindex("</")
    pkg.set_text(rels_part, xml[:close] + element + xml[close:])
    return rid


def _add_content_type(pkg: Package, part: str, content_type: str, default_ext: str | None = None) -> None:
    xml = pkg.text("[Content_Types].xml")
    root = ET.fromstring(xml)
    for el in root:
        if el.get("PartName") == "/" + part:
            return
        if default_ext and el.get("Extension", "").lower() == default_ext:
            return
    if default_ext:
        element = f'<Default Extension="{default_ext}" ContentType="{content_type}"/>'
    else:
        element = f'<Override PartName="/{part}" ContentType="{content_type}"/>'
    close = xml.rindex("</")
    pkg.set_text("[Content_Types].xml", xml[:close] + element + xml[close:])


def _add_legacy_drawing(pkg: Package, sheet_part: str, rid: str) -> None:
    pkg.set_text(sheet_part, edit_frame(pkg.text(sheet_part), lambda xml: _with_legacy_drawing(xml, rid)))


def _with_legacy_drawing(xml: str, rid: str) -> str:
    if find_top(xml, "legacyDrawing"):
        return xml
    root = re.search(r"<(?:\w+:)?worksheet\b[^>]*>", xml).group(0)
    bound = re.search(rf'xmlns:(\w+)="{re.escape(NS_REL)}"', root)
    if bound:
        element = f'<legacyDrawing {bound.group(1)}:id="{rid}"/>'
    else:
        element = f'<legacyDrawing xmlns:r="{NS_REL}" r:id="{rid}"/>'
    prefix = re.match(r"<((?:\w+:)?)worksheet", root).group(1)
    if prefix:
        element = element.replace("<legacyDrawing", f"<{prefix}legacyDrawing")
    return insert_before_any(xml, element, AFTER_LEGACY_DRAWING)


def check_notes(pkg: Package) -> None:
    """Staff's comments and every shape that is not our note survive unchanged (raises ValueError)."""
    for sheet_part in pkg.sheets.values():
        _, _, comments_part, vml_part = _sheet_links(pkg, sheet_part)
        if comments_part and comments_part in pkg.parts and pkg.data(comments_part) != pkg.parts[comments_part]:
            old, new = pkg.parts[comments_part].decode("utf-8"), pkg.text(comments_part)
            old_authors = [m.group("name") or "" for m in _AUTHOR_RE.finditer(old)]
            new_authors = [m.group("name") or "" for m in _AUTHOR_RE.finditer(new)]
            if new_authors[: len(old_authors)] != old_authors:
                raise ValueError(f"{comments_part}: authors changed")
            ours = str(old_authors.index(AUTHOR)) if AUTHOR in old_authors else None
            new_comments = {m.group(0) for m in _COMMENT_RE.finditer(new)}
            ours_old = set()
            for m in _COMMENT_RE.finditer(old):
                if _is_ours(m, ours):
                    ours_old.add(split_ref(attrs_of(m.group("attrs"))["ref"]))
                elif m.group(0) not in new_comments:
                    raise ValueError(f"{comments_part}: a staff comment changed")
            if vml_part and vml_part in pkg.parts:
                new_vml = pkg.text(vml_part)
                for shape in _SHAPE_RE.findall(pkg.parts[vml_part].decode("utf-8")):
                    if _note_cell(shape) not in ours_old and shape not in new_vml:
                        raise ValueError(f"{vml_part}: a shape was lost")
        elif vml_part and vml_part in pkg.parts and pkg.data(vml_part) != pkg.parts[vml_part]:
            new_vml = pkg.text(vml_part)
            for shape in _SHAPE_RE.findall(pkg.parts[vml_part].decode("utf-8")):
                if shape not in new_vml:
                    raise ValueError(f"{vml_part}: a shape was lost")
