"""An .xlsx/.xlsm package held in memory: original parts, changed parts, and a faithful re-zip."""

from __future__ import annotations

import io
import os
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ..errors import HealthbookError, NotAWorkbook
from .ooxml import (
    NS_REL,
    REL_SHARED_STRINGS,
    REL_STYLES,
    WORKSHEET_PART,
    rels_name,
    shared_strings,
    sheet_names,
    sheet_parts,
    workbook_part,
    workbook_rel_target,
)
from .styles import Styles

REL_WORKSHEET = NS_REL + "/worksheet"
CT_WORKSHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"


STRICT_NS = b"http://purl.oclc.org/ooxml/spreadsheetml/main"


class StrictWorkbook(HealthbookError):
    """Saved as Excel's "Strict Open XML" (another namespace throughout): read, never written."""

    def __init__(self, path: Path):
        super().__init__(f"{path.name} 是“Strict Open XML 电子表格”格式：程序能读取，但不能安全写入，本次未写入。"
                         "请在 Excel 中“文件 → 另存为”，保存类型选“Excel 工作簿(*.xlsx)”（含宏的选"
                         "“Excel 启用宏的工作簿(*.xlsm)”），再重新运行。")


class Package:
    """The zip's parts by name; edits go to ``changed`` and everything else is copied as it was."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            with zipfile.ZipFile(self.path) as zf:
                self.infos = zf.infolist()
                self.parts = {i.filename: zf.read(i) for i in self.infos}
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise NotAWorkbook(self.path, str(exc)[:80]) from exc
        if STRICT_NS in self.parts.get(workbook_part(self.parts), b""):
            raise StrictWorkbook(self.path)
        self.changed: dict[str, bytes] = {}
        self.removed: set[str] = set()  # parts left out of the new file (a stale calcChain.xml)
        try:
            self.sheets = sheet_parts(self.parts)
            self.sheet_names = sheet_names(self.parts)  # "台账" → "台账 ", as the workbook spells it
        except Exception as exc:  # a zip that is not a workbook
            raise NotAWorkbook(self.path, "缺少工作簿结构") from exc
        self.styles_part = workbook_rel_target(self.parts, REL_STYLES)
        # Dates are written as serials of the workbook's own date system.
        self.date1904 = bool(re.search(rb'<(?:\w+:)?workbookPr\b[^>]*\sdate1904="(?:1|true)"',
                                       self.parts.get(workbook_part(self.parts), b"")))
        self._styles: Styles | None = None
        self.added_sheets: list[str] = []
        self._strings: list[str] | None = None
        self._deflating: dict[str, tuple[bytes, Future]] = {}

    def data(self, name: str) -> bytes | None:
        if name in self.removed:
            return None
        return self.changed.get(name, self.parts.get(name))

    def text(self, name: str) -> str:
        return self.data(name).decode("utf-8")

    def set_text(self, name: str, text: str) -> None:
        data = self.changed[name] = text.encode("utf-8")
        if self.large(name):
            # zlib lets go of the GIL: a large sheet is compressed while the next one is built.
            self._deflating[name] = (data, _background().submit(_deflate, data))

    def exists(self, name: str) -> bool:
        return name not in self.removed and (name in self.changed or name in self.parts)

    def remove(self, name: str) -> None:
        """Leave part ``name`` out of the new file (its relationship and content type are the
        caller's to remove)."""
        self.removed.add(name)
        self.changed.pop(name, None)

    @property
    def styles(self) -> Styles:
        if self._styles is None:
            if not self.styles_part or self.styles_part not in self.parts:
                raise NotAWorkbook(self.path, "缺少样式表 styles.xml")
            self._styles = Styles(self.text(self.styles_part))
        return self._styles

    @property
    def strings(self) -> list[str]:
        if self._strings is None:
            part = workbook_rel_target(self.parts, REL_SHARED_STRINGS)
            self._strings = shared_strings(self.parts.get(part)) if part else []
        return self._strings

    def add_sheet(self, name: str, xml: str) -> str:
        """Append a worksheet called ``name`` (last tab); returns its part name.

        Grow-only: a ``<sheet>`` entry at the end of workbook.xml's ``<sheets>``, a relationship,
        a content-type override and the new part; nothing that was there changes.
        """
        wb_part = workbook_part(self.parts)
        n = 1
        while self.exists(f"xl/worksheets/sheet{n}.xml"):
            n += 1
        part = f"xl/worksheets/sheet{n}.xml"
        rels_part = rels_name(wb_part)
        rels = self.text(rels_part)
        used = set(re.findall(r'Id="([^"]+)"', rels))
        k = 1
        while f"rId{k}" in used:
            k += 1
        rid = f"rId{k}"
        target = posixpath.relpath(part, posixpath.dirname(wb_part))
        close = rels.rindex("</")
        self.set_text(rels_part, rels[:close] + f'<Relationship Id="{rid}" Type="{REL_WORKSHEET}" '
                      f'Target="{target}"/>' + rels[close:])
        workbook = self.text(wb_part)
        root = re.search(r"<((?:\w+:)?)workbook\b[^>]*>", workbook)
        bound = re.search(rf'xmlns:(\w+)="{re.escape(NS_REL)}"', root.group(0))
        r_attr = f'{bound.group(1)}:id="{rid}"' if bound else f'xmlns:r="{NS_REL}" r:id="{rid}"'
        ids = [int(i) for i in re.findall(r'<(?:\w+:)?sheet\b[^>]*\ssheetId="(\d+)"', workbook)]
        prefix = root.group(1)
        entry = f'<{prefix}sheet name={quoteattr(name)} sheetId="{max(ids, default=0) + 1}" {r_attr}/>'
        close = workbook.index(f"</{prefix}sheets>")
        self.set_text(wb_part, workbook[:close] + entry + workbook[close:])
        types = self.text("[Content_Types].xml")
        close = types.rindex("</")
        self.set_text("[Content_Types].xml", types[:close] + f'<Override PartName="/{part}" '
                      f'ContentType="{CT_WORKSHEET}"/>' + types[close:])
        self.set_text(part, xml)
        self.sheets[name] = part
        self.sheet_names[name] = name
        self.added_sheets.append(name)
        return part

    def finish(self) -> None:
        """Fold the styles editor back into the parts."""
        if self._styles is not None and self._styles.changed:
            self.set_text(self.styles_part, self._styles.xml)

    def changed_names(self) -> set[str]:
        return {n for n, data in self.changed.items() if self.parts.get(n) != data}

    def save(self, target: Path) -> None:
        """Write the package to ``target`` (parts in their original order, new ones last) and fsync.

        Unchanged parts are copied as their original compressed bytes (faster, and identical even
        before decompression); changed ones are compressed again.
        """
        self.finish()
        changed = self.changed_names()
        with open(self.path, "rb") as src, open(target, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                for info in self.infos:
                    if info.filename in self.removed:
                        continue
                    if info.filename not in changed and _copyable(info):
                        _copy_raw(src, info, fh, zf)
                        continue
                    clone = zipfile.ZipInfo(info.filename, info.date_time)
                    clone.compress_type = info.compress_type
                    clone.external_attr = info.external_attr
                    clone.create_system = info.create_system
                    self._write_part(zf, fh, clone, self.data(info.filename))
                for name, data in self.changed.items():
                    if name not in self.parts:
                        clone = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
                        clone.compress_type = zipfile.ZIP_DEFLATED
                        self._write_part(zf, fh, clone, data)
            fh.flush()
            os.fsync(fh.fileno())
        self._deflating.clear()

    def large(self, name: str) -> bool:
        """Whether part ``name`` is large enough to be deflated (and re-read) in the background."""
        return len(self.data(name) or b"") > LARGE_PART

    def snapshot(self, part: str) -> tuple[bytes, Callable[[], bytes]]:
        """(``part``'s data now, a function building a package that holds it): every part but the
        other worksheets, as they are now (styles included), so one sheet can be re-read while the
        rest is still being built. The function may run in another thread."""
        self.finish()
        data = self.data(part)
        others = {n: self.data(n) for n in [*self.parts, *self.changed]
                  if n != part and not WORKSHEET_PART.match(n) and n not in self.removed}
        deflating = self._deflating.get(part)
        done = deflating[1] if deflating is not None and deflating[0] is data else None

        def build() -> bytes:
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as zf:  # small parts stored: only calamine reads this
                for name, body in others.items():
                    zf.writestr(name, body)
                info = zipfile.ZipInfo(part, (1980, 1, 1, 0, 0, 0))
                if done is None:
                    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                else:
                    info.compress_type = zipfile.ZIP_DEFLATED
                    crc, raw = done.result()
                    _append_raw(out, zf, info, raw, crc, len(data))
            return out.getvalue()

        return data, build

    def _write_part(self, zf: zipfile.ZipFile, fh, info: zipfile.ZipInfo, data: bytes) -> None:
        done = self._deflating.get(info.filename)
        if done is not None and done[0] is data and info.compress_type == zipfile.ZIP_DEFLATED:
            crc, raw = done[1].result()
            _append_raw(fh, zf, info, raw, crc, len(data))
        else:
            zf.writestr(info, data, compresslevel=_level(data))


LARGE_PART = 1 << 20
_pool: ThreadPoolExecutor | None = None


def _background() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(2, thread_name_prefix="healthbook-deflate")
    return _pool


def _deflate(data: bytes) -> tuple[int, bytes]:
    """(CRC-32, raw deflate stream) of a large part, as zipfile would store it at ``_level``."""
    level = _level(data)
    packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION if level is None else level, zlib.DEFLATED, -15)
    return zlib.crc32(data), packer.compress(data) + packer.flush()


def _level(data: bytes) -> int | None:
    # A large sheet compresses 3-4× faster at level 1, for a file ~20% larger.
    return 1 if len(data) > 1 << 20 else None


_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _copyable(info: zipfile.ZipInfo) -> bool:
    # Not encrypted, not zip64 (a workbook part is far below 2 GB).
    return not info.flag_bits & 0x1 and info.compress_size < 2**31 and info.file_size < 2**31


def _copy_raw(src, info: zipfile.ZipInfo, fh, zf: zipfile.ZipFile) -> None:
    """Append ``info``'s compressed bytes from ``src`` to the archive being written in ``zf``."""
    src.seek(info.header_offset)
    header = _LOCAL_HEADER.unpack(src.read(_LOCAL_HEADER.size))
    if header[0] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    src.seek(info.header_offset + _LOCAL_HEADER.size + header[9] + header[10])
    raw = src.read(info.compress_size)
    clone = zipfile.ZipInfo(info.filename, info.date_time)
    clone.compress_type = info.compress_type
    clone.external_attr = info.external_attr
    clone.create_system = info.create_system
    clone.flag_bits = info.flag_bits & ~0x08  # sizes go in the local header, no data descriptor
    _append_raw(fh, zf, clone, raw, info.CRC, info.file_size)


def _append_raw(fh, zf: zipfile.ZipFile, info: zipfile.ZipInfo, raw: bytes, crc: int, size: int) -> None:
    """Append an entry whose data is already compressed (``raw``) to the archive in ``zf``."""
    info.CRC, info.compress_size, info.file_size = crc, len(raw), size
    info.header_offset = fh.tell()
    fh.write(info.FileHeader())
    fh.write(raw)
    zf.filelist.append(info)
    zf.NameToInfo[info.filename] = info
    zf.start_dir = fh.tell()
    zf._didModify = True
