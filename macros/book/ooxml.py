"""Small, byte-preserving helpers over the parts of an .xlsx/.xlsm package.

The writer never re-serialises a part it does not own: it splices text into the original XML, so
everything it does not touch stays byte-for-byte as Excel (or the builder) wrote it. These helpers
find things (sheets, rows, cells, rels) and encode values; they never reformat.
"""

from __future__ import annotations

import bisect
import functools
import math
import posixpath
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
REL_COMMENTS = NS_REL + "/comments"
REL_VML = NS_REL + "/vmlDrawing"
REL_STYLES = NS_REL + "/styles"
REL_SHARED_STRINGS = NS_REL + "/sharedStrings"
CT_COMMENTS = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
CT_VML = "application/vnd.openxmlformats-officedocument.vmlDrawing"

EPOCH = datetime(1899, 12, 30)
LEAP_BUG_END = datetime(1900, 3, 1)  # serial 61: from here on, days count from EPOCH
EPOCH_BEFORE_MARCH_1900 = datetime(1899, 12, 31)  # serial 1 is 1 January 1900
# Text starting with one of these would be a formula if typed into Excel: stored as text.
FORMULA_PREFIXES = ("=", "+", "-", "@")
MAX_TEXT = 32767  # Excel's limit on characters in a cell

# Rows and cells as Excel, xlsxwriter and openpyxl write them (an optional namespace prefix is kept).
ROW_RE = re.compile(r"<(?P<p>(?:\w+:)?)row\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</(?P=p)row>)", re.S)
CELL_RE = re.compile(r"<(?P<p>(?:\w+:)?)c\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</(?P=p)c>)", re.S)
ATTR_RE = re.compile(r"([\w:.-]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
REF_RE = re.compile(r"([A-Z]+)(\d+)")
DIMENSION_RE = re.compile(r"<(?:\w+:)?dimension\b[^>]*?/>", re.S)
HYPERLINKS_RE = re.compile(r"<(?P<p>(?:\w+:)?)hyperlinks\b[^>]*?(?:/>|>.*?</(?P=p)hyperlinks>)", re.S)
# Illegal in XML 1.0; OOXML escapes them (and a literal "_xHHHH_") as _xHHHH_.
# (\r too: an XML parser would turn a raw \r into \n.)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile(r"_(x[0-9A-Fa-f]{4})_")

# Elements that follow <hyperlinks> / <legacyDrawing> in CT_Worksheet's sequence (insertion points).
AFTER_HYPERLINKS = (
    "printOptions", "pageMargins", "pageSetup", "headerFooter", "rowBreaks", "colBreaks",
    "customProperties", "cellWatches", "ignoredErrors", "smartTags", "drawing", "legacyDrawing",
    "legacyDrawingHF", "picture", "oleObjects", "controls", "webPublishItems", "tableParts", "extLst",
)
AFTER_LEGACY_DRAWING = (
    "legacyDrawingHF", "picture", "oleObjects", "controls", "webPublishItems", "tableParts", "extLst",
)


def attrs_of(text: str) -> dict[str, str]:
    """Attributes of a start tag's attribute text (values still XML-escaped)."""
    return {k: v[1:-1] for k, v in ATTR_RE.findall(text)}


@functools.lru_cache(maxsize=4096)
def col_name(index: int) -> str:
    """0-based column index → letters (0 → A); cached: a large write asks for the same few."""
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def col_index(letters: str) -> int:
    """Column letters → 0-based index (A → 0)."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def split_ref(ref: str) -> tuple[int, int]:
    """"B5" → (row 5, column index 1)."""
    m = REF_RE.fullmatch(ref.replace("$", ""))
    if not m:
        raise ValueError(f"bad cell reference {ref!r}")
    return int(m.group(2)), col_index(m.group(1))


def ref_of(row: int, col: int) -> str:
    return f"{col_name(col)}{row}"


# --- package structure -------------------------------------------------------------------------


def resolve(base_part: str, target: str) -> str:
    """A relationship target relative to ``base_part`` → a zip member name."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def rels_name(part: str) -> str:
    """The relationships part of ``part`` (xl/worksheets/sheet1.xml → xl/worksheets/_rels/sheet1.xml.rels)."""
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", name + ".rels")


def relative(from_part: str, to_part: str) -> str:
    return posixpath.relpath(to_part, posixpath.dirname(from_part))


@dataclass
class Rel:
    id: str
    type: str
    target: str  # resolved zip member (or the raw target for external links)
    external: bool = False


def parse_rels(xml: bytes | None, base_part: str) -> list[Rel]:
    if not xml:
        return []
    rels = []
    for el in ET.fromstring(xml):
        external = el.get("TargetMode") == "External"
        target = el.get("Target", "")
        rels.append(Rel(el.get("Id", ""), el.get("Type", ""), target if external else resolve(base_part, target),
                        external))
    return rels


class ZipParts(Mapping):
    """A zip's parts by name, read when asked for (the few a sheet or table lookup needs)."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf, self.names = zf, set(zf.namelist())

    def __getitem__(self, name: str) -> bytes:
        if name not in self.names:
            raise KeyError(name)
        return self.zf.read(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def workbook_part(parts: dict[str, bytes]) -> str:
    for rel in parse_rels(parts.get("_rels/.rels"), ""):
        if rel.type.endswith("/officeDocument"):
            return rel.target
    return "xl/workbook.xml"


def sheet_parts(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name → worksheet part name, in workbook order."""
    return {name: part for name, (part, _) in _sheets(parts).items()}


def sheet_names(parts: dict[str, bytes]) -> dict[str, str]:
    """Sheet name as the contract spells it → the workbook's own ("台账" → "台账 ")."""
    return {name: actual for name, (_, actual) in _sheets(parts).items()}


def _sheets(parts: dict[str, bytes]) -> dict[str, tuple[str, str]]:
    wb_part = workbook_part(parts)
    rels = {r.id: r.target for r in parse_rels(parts.get(rels_name(wb_part)), wb_part)}
    root = ET.fromstring(parts[wb_part])
    found = {}
    for el in root.iter(f"{{{NS_MAIN}}}sheet"):
        rid = el.get(f"{{{NS_REL}}}id")
        if rid in rels:
            # Keyed as the readers match names: a stray space in "台账 " does not hide the sheet.
            found[clean_header(el.get("name"))] = (rels[rid], el.get("name"))
    return found


def sheet_location(target: str, names: Mapping[str, str]) -> str:
    """In-workbook link ``target`` ("'台账'!B5") naming the sheet as the workbook spells it
    (``names``: contract name → the workbook's, see ``sheet_names``): a link to '台账' in a
    workbook whose tab is "台账 " (a stray space, matched like headers) is one Excel cannot follow."""
    sheet, _, cell = target.rpartition("!")
    name = sheet[1:-1].replace("''", "'") if sheet.startswith("'") and sheet.endswith("'") else sheet
    actual = names.get(clean_header(name))
    if actual is None or actual == name:
        return target
    return "'" + actual.replace("'", "''") + "'!" + cell


def workbook_rel_target(parts: dict[str, bytes], rel_type: str) -> str | None:
    wb_part = workbook_part(parts)
    for rel in parse_rels(parts.get(rels_name(wb_part)), wb_part):
        if rel.type == rel_type:
            return rel.target
    return None


def shared_strings(xml: bytes | None) -> list[str]:
    """Plain text of every shared string (rich-text runs joined; phonetic runs left out)."""
    if not xml:
        return []
    out = []
    t, r, rph = f"{{{NS_MAIN}}}t", f"{{{NS_MAIN}}}r", f"{{{NS_MAIN}}}rPh"
    for si in ET.fromstring(xml):
        parts = []
        for child in si:
            if child.tag == t:
                parts.append(child.text or "")
            elif child.tag == r:
                parts.extend(x.text or "" for x in child.iter(t))
            # rPh (phonetic guide) is not part of the value
            _ = rph
        out.append(unescape_text("".join(parts)))
    return out


def unescape_text(text: str) -> str:
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


# --- rows and cells ----------------------------------------------------------------------------


@dataclass
class Cell:
    col: int
    xml: str
    attrs: dict[str, str]
    body: str | None
    start: int = 0  # span within the row's xml
    end: int = 0

    @property
    def style(self) -> int:
        return int(self.attrs.get("s", 0) or 0)


@dataclass
class Row:
    r: int
    attrs_text: str
    xml: str = ""
    start: int = 0  # span within the sheetData text
    end: int = 0
    _cells: list[Cell] | None = field(default=None, repr=False)

    @property
    def cells(self) -> list[Cell]:
        """The row's cells, parsed on first use (marking touches few rows of a large sheet)."""
        if self._cells is None:
            self._cells = []
            last_c = -1
            for cm in CELL_RE.finditer(self.xml):
                cattrs = attrs_of(cm.group("attrs"))
                c = split_ref(cattrs["r"])[1] if "r" in cattrs else last_c + 1
                last_c = c
                self._cells.append(Cell(c, cm.group(0), cattrs, cm.group("body"), cm.start(), cm.end()))
        return self._cells


_SHEETDATA_START = re.compile(r"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")


def sheet_data_span(xml: str) -> tuple[int, int]:
    """Span of the <sheetData> element (found by its tags: a regex over 10 MB of rows is slow)."""
    m = _SHEETDATA_START.search(xml)
    if not m:
        raise ValueError("worksheet has no sheetData")
    if m.group(2):
        return m.start(), m.end()
    close = f"</{m.group(1)}sheetData>"
    end = xml.rfind(close)
    if end < m.end():
        raise ValueError("worksheet sheetData is not closed")
    return m.start(), end + len(close)


def parse_rows(sheet_data: str) -> list[Row]:
    """Every <row> of a sheetData element with its cells (implicit row/cell numbers filled in)."""
    rows = []
    last_r = 0
    for m in ROW_RE.finditer(sheet_data):
        found = ROW_NUMBER_RE.search(m.group("attrs"))
        r = int(found.group(1)) if found else last_r + 1
        last_r = r
        rows.append(Row(r, m.group("attrs"), xml=m.group(0), start=m.start(), end=m.end()))
    return rows


ROW_NUMBER_RE = re.compile(r"""(?:^|\s)r\s*=\s*["'](\d+)["']""")
# A cell element that holds something: a value, inline text or a formula.
HOLDS_VALUE_RE = re.compile(r"<(?:\w+:)?(?:v|is|f)\b")
_ROW_START = re.compile(r'<row r="(\d+)"')


def row_starts(sheet_data: str) -> list[tuple[int, int]] | None:
    """(row number, offset) of every row, found without parsing cells — when every row is written
    ``<row r="N"`` as Excel, xlsxwriter, openpyxl and this writer do; else None (parse them)."""
    if not sheet_data.startswith("<sheetData"):
        return None  # a prefixed sheetData: its rows are prefixed too
    starts = [(int(m.group(1)), m.start()) for m in _ROW_START.finditer(sheet_data)]
    if len(starts) != sheet_data.count("<row"):
        return None
    if any(a[0] >= b[0] for a, b in zip(starts, starts[1:])):
        return None  # not ascending: let the full parse sort it out
    return starts


def rows_at(sheet_data: str, wanted: set[int], starts: list[tuple[int, int]] | None) -> dict[int, Row]:
    """The rows numbered ``wanted`` that exist (``starts`` from ``row_starts``; None parses all)."""
    if starts is None:
        return {row.r: row for row in parse_rows(sheet_data) if row.r in wanted}
    found = {}
    offsets = dict(starts)
    for r in wanted:
        at = offsets.get(r)
        if at is not None:
            m = ROW_RE.match(sheet_data, at)
            found[r] = Row(r, m.group("attrs"), xml=m.group(0), start=m.start(), end=m.end())
    return found


def head_rows(sheet_data: str, last: int, starts: list[tuple[int, int]] | None) -> list[Row]:
    """The rows numbered up to ``last`` (where a header is looked for)."""
    if starts is None:
        return [row for row in parse_rows(sheet_data) if row.r <= last]
    end = next((at for r, at in starts if r > last), len(sheet_data))
    return [row for row in parse_rows(sheet_data[:end]) if row.r <= last]


def edit_frame(xml: str, edit) -> str:
    """Apply ``edit`` to a worksheet's XML with its rows set aside (elements around sheetData
    are found without scanning megabytes of cells), then put the rows back."""
    start, end = sheet_data_span(xml)
    prefix = re.match(r"<((?:\w+:)?)sheetData", xml[start:end]).group(1)
    hole = f"<{prefix}sheetData/>"
    frame = edit(xml[:start] + hole + xml[end:])
    at = frame.index(hole)
    return frame[:at] + xml[start:end] + frame[at + len(hole):]


_V_RE = re.compile(r"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.S)
_T_RE = re.compile(r"<(?:\w+:)?t\b[^>]*?(?:/>|>(.*?)</(?:\w+:)?t>)", re.S)
_RPH_RE = re.compile(r"<(?P<p>(?:\w+:)?)rPh\b.*?</(?P=p)rPh>", re.S)


def cell_value(cell: Cell, strings: list[str]) -> object:
    """The value a cell holds (cached result for formulas): str, float, bool or None."""
    body = cell.body or ""
    kind = cell.attrs.get("t", "n")
    if kind == "inlineStr":
        body = _RPH_RE.sub("", body)
        return unescape_text(_xml_unescape("".join(t or "" for t in _T_RE.findall(body))))
    m = _V_RE.search(body)
    if not m:
        return None
    raw = _xml_unescape(m.group(1))
    if kind == "s":
        try:
            return strings[int(raw)]
        except (ValueError, IndexError):
            return None
    if kind in ("str", "e"):
        return unescape_text(raw)
    if kind == "b":
        return raw.strip() in ("1", "true")
    try:
        return float(raw)
    except ValueError:
        return raw


_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _xml_unescape(text: str) -> str:
    """XML character and entity references (openpyxl writes CJK text as &#39033;…)."""
    if "&" not in text:
        return text

    def one(m: re.Match) -> str:
        ref = m.group(1)
        if ref[0] == "#":
            return chr(int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:]))
        return _NAMED[ref]

    return _ENTITY.sub(one, text)


def escape_text(text: str) -> str:
    """Text for a <t> element: OOXML-escape control characters and look-alikes, then XML-escape."""
    if "_x" in text:
        text = _ESCAPE_LIKE.sub(r"_x005F_\1_", text)
    if not text.isprintable():
        text = _CONTROL.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    if "&" in text or "<" in text or ">" in text:
        return escape(text)
    return text


DATE1904_OFFSET = 1462  # days from 1900's serial 0 to 1 January 1904, serial 0 of the 1904 system


def to_serial(value: date | datetime | time, date1904: bool = False) -> float:
    """A date/datetime/time as an Excel serial (1900 date system; ``date1904``: the workbook uses
    the 1904 one, Excel 选项 → 高级 → 使用 1904 日期系统, as Excel for Mac long did)."""
    if date1904 and not isinstance(value, time):
        return to_serial(value) - DATE1904_OFFSET
    if isinstance(value, time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None)
    # Excel counts a 29 February 1900 that never was (serial 60): days before March 1900 are one
    # lower than the count from EPOCH, as Excel shows them and calamine reads them.
    delta: timedelta = value - (EPOCH if value >= LEAP_BUG_END else EPOCH_BEFORE_MARCH_1900)
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6


def plain(value: object) -> object:
    """A cell value as a plain Python value: numpy/pandas scalars unwrapped, blanks → None."""
    t = type(value)
    if t is str:
        return value or None
    if t is int or t is date or t is datetime:
        return value
    if t is float:
        return None if (value != value or value in (math.inf, -math.inf)) else value
    if value is None:
        return None
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, (str, bytes)) and pd.isna(value) is True):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, str) and value == "":
        return None
    return value


def number_text(value: float | int) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def cell_xml(ref: str, value: object, style: int, date1904: bool = False) -> str:
    """One <c> element for a plain value (see ``plain``); None gives a styled blank or nothing."""
    s = f' s="{style}"' if style else ""
    if value is None:
        return f'<c r="{ref}"{s}/>' if style else ""
    if isinstance(value, bool):
        return f'<c r="{ref}"{s} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        return f'<c r="{ref}"{s}><v>{number_text(value)}</v></c>'
    if isinstance(value, (date, time)):
        return f'<c r="{ref}"{s}><v>{number_text(to_serial(value, date1904))}</v></c>'
    text = str(value)[:MAX_TEXT]
    # Inline strings keep sharedStrings.xml untouched and are never formulas.
    return f'<c r="{ref}"{s} t="inlineStr"><is>{t_open(text)}{escape_text(text)}</t></is></c>'


_SPACES = re.compile(r"[\s\u3000]+")


def clean_header(value: object) -> str:
    """A header cell or sheet name as matched against the contract: all whitespace removed
    ("台账 " is the 台账)."""
    return _SPACES.sub("", str(value)) if value is not None else ""


# Where workbooks keep their worksheets (Excel, xlsxwriter, openpyxl, LibreOffice all do).
WORKSHEET_PART = re.compile(r"xl/worksheets/[^/]+\.xml$")
FORMULA_ELEMENT = re.compile(rb"<(?:\w+:)?f[\s>/]")
_AFTER_F = (b">", b"/", b" ", b"\t", b"\n", b"\r")


def has_formula(data: bytes) -> bool:
    """Whether worksheet XML holds a formula element (``FORMULA_ELEMENT``), found fast."""
    # Plain substring search first (``<`` in text is always escaped, so "<f" is markup: <f>, <f …/>,
    # or a few others such as <formula1> in data validations); the regex, slow over a large sheet,
    # only for a prefixed worksheet.
    at = data.find(b"<f")
    while at != -1:
        if data[at + 2:at + 3] in _AFTER_F:
            return True
        at = data.find(b"<f", at + 2)
    return b":f" in data and FORMULA_ELEMENT.search(data) is not None


T_PRESERVE = '<t xml:space="preserve">'


def t_open(text: str) -> str:
    """The <t> start tag: ``xml:space="preserve"`` only where text has leading or trailing
    whitespace (a reader may drop it otherwise), as openpyxl and xlsxwriter write it."""
    return T_PRESERVE if text[:1].isspace() or text[-1:].isspace() else "<t>"


def row_xml(r: int, cells: list[tuple[int, str]], attrs_text: str | None = None) -> str:
    """A <row> from (column, cell xml) pairs, sorted by column."""
    body = "".join(x for _, x in sorted(cells, key=lambda t: t[0]))
    # The optional "spans" hint may no longer hold for the new cells.
    attrs = re.sub(r'\sspans="[^"]*"', "", attrs_text) if attrs_text is not None else f' r="{r}"'
    if not body:
        return f"<row{attrs}/>" if attrs_text is not None else ""
    return f"<row{attrs}>{body}</row>"


_TAG_RE = re.compile(r"<(/?)((?:[\w.-]+:)?[\w.-]+)[^>]*?(/?)>|<!--.*?-->|<\?.*?\?>|<!\[CDATA\[.*?\]\]>", re.S)


def top_level(xml: str) -> list[tuple[str, int, int]]:
    """(local name, start, end) of each child element of the root, in order.

    Nested elements (an ``extLst`` inside a conditional format, say) are not confused with the
    worksheet's own; sheetData, the bulk of a sheet, is stepped over without scanning its cells.
    """
    children: list[tuple[str, int, int]] = []
    depth, start, name = 0, 0, ""
    pos = 0
    try:
        data = sheet_data_span(xml)
    except ValueError:
        data = None
    while True:
        m = _TAG_RE.search(xml, pos)
        if not m:
            break
        if data and m.start() == data[0] and depth == 1:
            children.append(("sheetData", data[0], data[1]))
            pos = data[1]
            continue
        pos = m.end()
        if m.group(2) is None:
            continue  # comment, declaration or CDATA
        closing, selfclose = m.group(1) == "/", m.group(3) == "/"
        local = m.group(2).split(":")[-1]
        if closing:
            depth -= 1
            if depth == 1:
                children.append((name, start, m.end()))
        elif selfclose:
            if depth == 1:
                children.append((local, m.start(), m.end()))
        else:
            if depth == 1:
                start, name = m.start(), local
            depth += 1
    return children


def find_top(xml: str, name: str) -> tuple[int, int] | None:
    for local, start, end in top_level(xml):
        if local == name:
            return start, end
    return None


def insert_before_any(xml: str, element: str, followers: tuple[str, ...]) -> str:
    """Insert ``element`` as a root child before the first of ``followers`` present, else last."""
    for local, start, _ in top_level(xml):
        if local in followers:
            return xml[:start] + element + xml[start:]
    end = xml.rindex("</")
    return xml[:end] + element + xml[end:]


def set_style(cell: str, style: int) -> str:
    """A <c> element's XML with its ``s`` attribute set (removed for 0); nothing else changes."""
    end = cell.index(">")
    start = cell[:end]
    if re.search(r'\ss="[^"]*"', start):
        start = re.sub(r'\ss="[^"]*"', f' s="{style}"' if style else "", start)
    elif style:
        start = re.sub(r"^(<(?:\w+:)?c\b)", rf'\1 s="{style}"', start)
    return start + cell[end:]


def edit_cells(sheet_data: str, edits: dict[tuple[int, int], object]) -> str:
    """Splice cell edits into a sheetData element's text, leaving every other byte as it was.

    ``edits`` maps (row, col) to a function taking the existing ``Cell`` (or None) and returning
    the new cell XML, "" to remove the cell, or None to leave it.
    """
    if not edits:
        return sheet_data
    m = re.match(r"<((?:\w+:)?)sheetData\b[^>]*?/>$", sheet_data)
    if m:
        sheet_data = sheet_data[:-2] + f"></{m.group(1)}sheetData>"
    prefix = re.match(r"<((?:\w+:)?)sheetData", sheet_data).group(1)
    wanted: dict[int, dict[int, object]] = {}
    for (r, c), fn in edits.items():
        wanted.setdefault(r, {})[c] = fn
    # Only the edited rows are parsed (marking a few cells of a 100k-row ledger).
    starts = row_starts(sheet_data)
    if starts is None:
        starts = [(row.r, row.start) for row in parse_rows(sheet_data)]
    by_r = rows_at(sheet_data, set(wanted), starts)
    splices: list[tuple[int, int, int, str]] = []
    close = sheet_data.rindex("</")
    row_numbers = [r for r, _ in starts]  # ascending in a valid sheet
    for r, by_c in wanted.items():
        row = by_r.get(r)
        if row is None:
            cells = [(c, fn(None)) for c, fn in by_c.items()]
            cells = [(c, x) for c, x in cells if x]
            if cells:
                text = f"<{prefix}row r=\"{r}\">" + "".join(x for _, x in sorted(cells)) + f"</{prefix}row>"
                following = bisect.bisect_right(row_numbers, r)
                at = starts[following][1] if following < len(starts) else close
                splices.append((at, at, r, text))
            continue
        splices.append((row.start, row.end, r, _edit_row(row, by_c, prefix)))
    # One pass in document order: repeated slicing of a large sheet would be quadratic.
    pieces, position = [], 0
    for start, end, _r, text in sorted(splices):
        pieces += [sheet_data[position:start], text]
        position = end
    pieces.append(sheet_data[position:])
    return "".join(pieces)


def _edit_row(row: Row, by_c: dict[int, object], prefix: str) -> str:
    xml = row.xml
    if xml.endswith("/>"):
        xml = xml[:-2] + f"></{prefix}row>"
    existing = {cell.col: cell for cell in row.cells}
    splices = []
    for c, fn in by_c.items():
        if c in existing:
            cell = existing[c]
            new = fn(cell)
            if new is not None:
                splices.append((cell.start, cell.end, new))
            continue
        new = fn(None)
        if not new:
            continue
        later = [cell.start for cell in row.cells if cell.col > c]
        at = min(later) if later else xml.rindex("</")
        splices.append((at, at, new, c))
    for item in sorted(splices, key=lambda s: (s[0], s[1], s[3] if len(s) > 3 else 0), reverse=True):
        start, end, text = item[:3]
        xml = xml[:start] + text + xml[end:]
    # A cell outside the row's "spans" hint would make the hint wrong: drop the hint there.
    spans = re.search(r'\sspans="(\d+):(\d+)"', xml[: xml.index(">")])
    if spans and any(c + 1 < int(spans.group(1)) or c + 1 > int(spans.group(2)) for c in by_c):
        xml = xml[: spans.start()] + xml[spans.end():]
    return xml
