"""Grow-only editing of styles.xml: derive a cell format from an existing one.

A derived format is the original ``<xf>`` copied verbatim with only the number format, fill, font
or quote prefix changed, appended to ``cellXfs``; new fills, fonts and number formats are appended
to their lists. Nothing that was there is changed or moved, so every existing style index keeps
its meaning (only the ``count`` attributes grow).
"""

from __future__ import annotations

import re
from xml.sax.saxutils import quoteattr

from .ooxml import attrs_of

# Built-in number formats that show dates or times (ECMA-376 §18.8.30, plus the CJK ones).
DATE_BUILTINS = set(range(14, 23)) | set(range(27, 37)) | {45, 46, 47} | set(range(50, 59))
BUILTIN_CODES = {0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00", 9: "0%", 10: "0.00%",
                 14: "mm-dd-yy", 22: "m/d/yy h:mm", 49: "@"}
LINK_COLOR = "FF0563C1"


def _block_re(name: str) -> re.Pattern:
    return re.compile(rf"<(?P<p>(?:\w+:)?){name}\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</(?P=p){name}>)", re.S)


def _items(body: str, tag: str) -> list[str]:
    """Direct children called ``tag`` of a list element, verbatim (they do not nest)."""
    pattern = re.compile(rf"<(?P<p>(?:\w+:)?){tag}\b[^>]*?(?:/>|>.*?</(?P=p){tag}>)", re.S)
    return [m.group(0) for m in pattern.finditer(body)]


def is_date_code(code: str) -> bool:
    """Whether a custom number format shows a date or time (letters outside quotes and brackets)."""
    bare = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", code).lower()
    return bool(re.search(r"[ymdhs]", bare.replace("general", "")))


class Styles:
    """styles.xml as text, with appenders that leave everything already there untouched."""

    def __init__(self, xml: str):
        self.xml = xml
        self.prefix = re.match(r"(?:<\?.*?\?>\s*)?<((?:\w+:)?)styleSheet", xml, re.S).group(1)
        self.changed = False
        self._numfmts = {int(a["numFmtId"]): _unescape(a.get("formatCode", ""))
                         for a in (attrs_of(x) for x in self._list("numFmts", "numFmt"))}
        self._xfs = self._list("cellXfs", "xf")
        self._fills = self._list("fills", "fill")
        self._fonts = self._list("fonts", "font")
        self._cache: dict[tuple, int] = {}
        self._xf_lookup: dict[str, int] | None = None

    # --- reading

    def _list(self, block: str, tag: str) -> list[str]:
        m = _block_re(block).search(self.xml)
        return _items(m.group("body") or "", tag) if m else []

    def xf(self, index: int) -> dict[str, str]:
        if 0 <= index < len(self._xfs):
            return attrs_of(self._xfs[index].split(">", 1)[0])
        return {}

    def numfmt_code(self, index: int) -> str:
        num_id = int(self.xf(index).get("numFmtId", 0) or 0)
        return self._numfmts.get(num_id, BUILTIN_CODES.get(num_id, ""))

    def is_date(self, index: int) -> bool:
        num_id = int(self.xf(index).get("numFmtId", 0) or 0)
        if num_id in DATE_BUILTINS:
            return True
        return num_id in self._numfmts and is_date_code(self._numfmts[num_id])

    def is_general(self, index: int) -> bool:
        return int(self.xf(index).get("numFmtId", 0) or 0) == 0

    def fill_of(self, index: int) -> int:
        return int(self.xf(index).get("fillId", 0) or 0)

    def fill_rgb(self, fill_id: int) -> str | None:
        if 0 <= fill_id < len(self._fills):
            m = re.search(r'fgColor\b[^>]*\brgb="([0-9A-Fa-f]{8})"', self._fills[fill_id])
            return m.group(1).upper() if m else None
        return None

    @property
    def xf_count(self) -> int:
        return len(self._xfs)

    # --- growing

    def derive(self, base: int, *, num_format: str | None = None, fill: str | None = None,
               link: bool = False, quote_prefix: bool = False) -> int:
        """Index of ``base`` with the given changes (an existing derived xf is reused)."""
        if base >= len(self._xfs) or base < 0:
            base = 0
        key = (base, num_format, fill, link, quote_prefix)
        if key in self._cache:
            return self._cache[key]
        if not self._xfs:
            raise ValueError("styles.xml has no cellXfs")
        original = self._xfs[base]
        start, rest = _split_start(original)
        attrs = attrs_of(start)
        changes: dict[str, str] = {}
        if num_format is not None:
            changes["numFmtId"] = str(self._numfmt_id(num_format))
            changes["applyNumberFormat"] = "1"
        if fill is not None:
            changes["fillId"] = str(self._fill_id(fill))
            changes["applyFill"] = "1"
        if link:
            changes["fontId"] = str(self._link_font(int(attrs.get("fontId", 0) or 0)))
            changes["applyFont"] = "1"
        if quote_prefix:
            changes["quotePrefix"] = "1"
        if all(attrs.get(k) == v for k, v in changes.items()):
            self._cache[key] = base
            return base
        new_start = start
        for name, value in changes.items():
            if re.search(rf'\s{name}="[^"]*"', new_start):
                new_start = re.sub(rf'(\s{name}=)"[^"]*"', rf'\1"{value}"', new_start)
            else:
                new_start = re.sub(r"(\s*/?>)$", rf' {name}="{value}"\1', new_start)
        element = new_start + rest
        # Reuse an identical format from an earlier run: cellXfs must not grow run after run
        # (Excel allows about 64,000 formats).
        index = self._xf_index().get(element)
        if index is None:
            index = self._append("cellXfs", self._xfs, element)
            self._xf_lookup[element] = index
        self._cache[key] = index
        return index

    def _xf_index(self) -> dict[str, int]:
        if self._xf_lookup is None:
            self._xf_lookup = {}
            for i, text in enumerate(self._xfs):
                self._xf_lookup.setdefault(text, i)
        return self._xf_lookup

    def _numfmt_id(self, code: str) -> int:
        for num_id, existing in BUILTIN_CODES.items():
            if existing == code and num_id not in (14, 22):
                return num_id
        for num_id, existing in self._numfmts.items():
            if existing == code:
                return num_id
        num_id = max([163, *self._numfmts]) + 1
        element = f'<{self.prefix}numFmt numFmtId="{num_id}" formatCode={quoteattr(code)}/>'
        if not _block_re("numFmts").search(self.xml):
            # numFmts is the stylesheet's first child.
            m = re.search(rf"<{self.prefix}styleSheet\b[^>]*>", self.xml)
            self.xml = (self.xml[:m.end()] + f'<{self.prefix}numFmts count="0"></{self.prefix}numFmts>'
                        + self.xml[m.end():])
        self._append("numFmts", [], element)
        self._numfmts[num_id] = code
        return num_id

    def _fill_id(self, rgb: str) -> int:
        argb = ("FF" + rgb.upper()) if len(rgb) == 6 else rgb.upper()
        p = self.prefix
        element = (f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor rgb="{argb}"/>'
                   f'<{p}bgColor indexed="64"/></{p}patternFill></{p}fill>')
        if element in self._fills:
            return self._fills.index(element)
        return self._append("fills", self._fills, element)

    def _link_font(self, font_id: int) -> int:
        p = self.prefix
        base = self._fonts[font_id] if font_id < len(self._fonts) else f"<{p}font></{p}font>"
        if base.endswith("/>"):
            base = base[:-2] + f"></{p}font>"
        inner = re.sub(rf"<{p}(?:u|color)\b[^>]*?(?:/>|>.*?</{p}(?:u|color)>)", "", base, flags=re.S)
        start, rest = _split_start(inner)
        # CT_Font children are unordered in practice; Excel writes u before sz and color after.
        element = f'{start}<{p}u/>{rest[:-len(f"</{p}font>")]}<{p}color rgb="{LINK_COLOR}"/></{p}font>'
        if element in self._fonts:
            return self._fonts.index(element)
        return self._append("fonts", self._fonts, element)

    def _append(self, block: str, items: list[str], element: str) -> int:
        m = _block_re(block).search(self.xml)
        if m.group("body") is None:  # self-closing list: open it
            opened = m.group(0)[:-2] + f"></{m.group('p')}{block}>"
            self.xml = self.xml[:m.start()] + opened + self.xml[m.end():]
            m = _block_re(block).search(self.xml)
        end_tag = f"</{m.group('p')}{block}>"
        close = m.end() - len(end_tag)
        start_tag_end = m.start() + len(m.group(0).split(">", 1)[0]) + 1
        start_tag = self.xml[m.start():start_tag_end]
        count = len(_items(m.group("body") or "", _child(block))) + 1
        if 'count="' in start_tag:
            start_tag = re.sub(r'count="\d*"', f'count="{count}"', start_tag)
        self.xml = self.xml[:m.start()] + start_tag + self.xml[start_tag_end:close] + element + self.xml[close:]
        items.append(element)
        self.changed = True
        return len(items) - 1


def _child(block: str) -> str:
    return {"cellXfs": "xf", "fills": "fill", "fonts": "font", "numFmts": "numFmt"}[block]


def _split_start(element: str) -> tuple[str, str]:
    """(start tag, the rest) of an element's text."""
    end = element.index(">") + 1
    if element[end - 2] == "/":
        return element[:end], ""
    return element[:end], element[end:]


def _unescape(text: str) -> str:
    return (text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
            .replace("&apos;", "'").replace("&amp;", "&"))
