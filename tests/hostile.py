"""A corpus of hostile and broken submissions, built on the fly (no binary files in the repo).

``corpus(folder)`` writes every case into ``folder`` and returns the cases with the exact outcome
each must have when consolidated into the demo master (committee C01 unless said): the file's
status, where each error is (Excel row, Chinese column, code), how many rows are added, and a piece
of the Chinese reason. Files are built with xlsxwriter, zipfile and plain bytes.
"""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import xlsxwriter

from macros import schema

LEDGER = schema.LEDGER.name
HEADERS = [c.header for c in schema.LEDGER.columns]
H = {c.key: c.header for c in schema.LEDGER.columns}
ACCEPTED, PARTLY, REJECTED = "accepted", "partly", "rejected"


@dataclass
class Case:
    file: str
    build: Callable[[Path], None]
    status: str
    reason: str = ""  # a piece of the file's first problem (file-level) or of its receipt
    errors: set[tuple[int | None, str | None, str]] = field(default_factory=set)  # (row, column, code)
    added: int = 0
    warnings: set[str] = field(default_factory=set)  # codes that must be among the warnings

    @property
    def rejected_whole(self) -> bool:
        return self.status == REJECTED


_SERIAL = itertools.count(1)


def row(**kw) -> list:
    """A good ledger row of C01, in contract column order, with ``kw`` (column keys) changed.

    Each row's activity is numbered: a blank-key row equal to one already merged is not added again.
    """
    values = {"date": date(2020, 11, 12), "committee_id": "C01", "project_id": "P06",
              "activity": f"老年人健康体检进社区（第 {next(_SERIAL)} 批）", "participants": 42, "quantity": 42, "status": "进行中",
              "reporter": "周敏", "in_bulletin": "否"}
    values.update(kw)
    return [values.get(k) for k in schema.LEDGER.keys]


def xlsx(path: Path, rows: list[list], *, sheet: str = LEDGER, merges: tuple = (), hidden: tuple = (),
         formulas: dict | None = None, other_sheets: dict | None = None, formatted_to: int = 0) -> None:
    """A workbook as a person or another program makes it: ``rows`` from A1 (row 0 = Excel row 1)."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    for name, grid in (other_sheets or {}).items():
        ws = wb.add_worksheet(name)
        for r, values in enumerate(grid):
            ws.write_row(r, 0, values)
    ws = wb.add_worksheet(sheet)
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            if isinstance(value, (date, datetime)):
                ws.write_datetime(r, c, value if isinstance(value, datetime) else datetime(*value.timetuple()[:3]), day)
            elif value is not None:
                ws.write(r, c, value)
    for (r, c), (formula, cached) in (formulas or {}).items():
        ws.write_formula(r, c, formula, None, cached)
    for first_row, first_col, last_row, last_col, value in merges:
        ws.merge_range(first_row, first_col, last_row, last_col, value)
    for r in hidden:
        ws.set_row(r, None, None, {"hidden": True})
    if formatted_to:  # rows formatted far down (a fill colour), as staff do by selecting whole columns
        fill = wb.add_format({"bg_color": "#FFF2CC"})
        for r in range(len(rows), formatted_to):
            ws.set_row(r, None, fill)
    wb.close()


def form(rows: list[list], **kw) -> Callable[[Path], None]:
    return lambda path: xlsx(path, [HEADERS, *rows], **kw)


def raw(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def good_bytes() -> bytes:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    ws = wb.add_worksheet(LEDGER)
    ws.write_row(0, 0, HEADERS)
    ws.write_row(1, 0, [v.isoformat() if isinstance(v, date) else v for v in row()])
    wb.close()
    return buffer.getvalue()


def declared_bomb(path: Path) -> None:
    """A real form whose central directory declares a 4 GB sheet (never expanded to check)."""
    data = bytearray(good_bytes())
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) != -1:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len].endswith(b"sheet1.xml"):
            struct.pack_into("<I", data, at + 24, 0xFFFFFFF0)
        at += 4
    path.write_bytes(bytes(data))


def future_zip_version(path: Path) -> None:
    """A form whose central directory asks for zip version 19.2 (Python's zipfile: NotImplementedError)."""
    data = bytearray(good_bytes())
    at = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, at + 6, 192)
    path.write_bytes(bytes(data))


def ratio_bomb(path: Path, size: int = 300 << 20) -> None:
    """A form whose sheet expands from ~300 KB to 300 MB of blanks inside <sheetData> (a real bomb)."""
    source = zipfile.ZipFile(io.BytesIO(good_bytes()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            body = source.read(info)
            if not info.filename.endswith("sheet1.xml"):
                out.writestr(info, body)
                continue
            head, tail = body.split(b"<sheetData>", 1)
            with out.open(info.filename, "w", force_zip64=True) as entry:
                entry.write(head + b"<sheetData>")
                for _ in range(size >> 20):
                    entry.write(b" " * (1 << 20))
                entry.write(tail)


def ole_file(encrypted: bool) -> bytes:
    """An OLE compound file header as Excel writes for .xls and for password-protected .xlsx."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHH", 0x3E, 3, 0xFFFE)
    header += b"\0" * (512 - len(header))
    names = ["EncryptionInfo", "EncryptedPackage"] if encrypted else ["Workbook"]
    directory = b"".join(n.encode("utf-16-le").ljust(64, b"\0") + b"\0" * 64 for n in names)
    return header + directory.ljust(512, b"\0")


def encrypted_workbook() -> bytes:
    """A real password-protected .xlsx (ECMA-376 agile encryption) when msoffcrypto-tool is there."""
    try:
        import msoffcrypto
        from msoffcrypto.format.ooxml import OOXMLFile
    except ImportError:
        return ole_file(encrypted=True)
    del msoffcrypto
    plain, secret = io.BytesIO(good_bytes()), io.BytesIO()
    OOXMLFile(plain).encrypt("密码123", secret)
    return secret.getvalue()


def many_rows(count: int, **kw) -> Callable[[Path], None]:
    """``count`` equal rows: the sheet XML is written directly (xlsxwriter takes ~25 s for 200,000)."""
    def build(path: Path) -> None:
        values = [v.isoformat() if isinstance(v, date) else v for v in row(**kw)]
        letters = [chr(ord("A") + i) for i in range(len(values))]

        def cells(r: int, items: list) -> str:
            return "".join(
                f'<c r="{c}{r}"><v>{v}</v></c>' if isinstance(v, (int, float)) else
                f'<c r="{c}{r}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>'
                for c, v in zip(letters, items) if v is not None)

        template = cells(0, values).replace('0"', '{r}"')
        body = "".join(f'<row r="{r}">' + template.format(r=r) + "</row>" for r in range(2, count + 2))
        source = zipfile.ZipFile(io.BytesIO(good_bytes()))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                data = source.read(info)
                if info.filename.endswith("sheet1.xml"):
                    head, rest = data.split(b"<sheetData>", 1)
                    header = rest.split(b"</row>", 1)[0] + b"</row>"
                    tail = b"</sheetData>" + rest.split(b"</sheetData>", 1)[1]
                    data = head + b"<sheetData>" + header + body.encode() + tail
                out.writestr(info, data)
    return build


def docx_like(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")


def cases() -> list[Case]:
    ri, da, pr, ac, qu, st = (H[k] for k in ("record_id", "date", "project_id", "activity", "quantity", "status"))
    pa = H["participants"]
    good = good_bytes()
    long_text = "健康" * 5000  # 10,000 characters
    date_texts = ["2020-11-18", "2020/11/18", "2020.11.18", "2020年11月18日", "11月18日", "２０２０年１１月１８日",
                  "20201118", "2020-11-18 09:30", "2020年11月18号", " 2020-11-18 "]
    nonsense_dates = ["昨天", "2020-13-45", "2020年2月30日", "0000-00-00", "十一月", "2020-11-18至19日"]
    out = [
        # ---- rejected whole: not a workbook at all
        Case("不是zip.xlsx", raw("这不是工作簿，只是改了扩展名".encode()), REJECTED, "不是"),
        Case("空文件.xlsx", raw(b""), REJECTED, "0 字节"),
        Case("截断.xlsx", raw(good[: len(good) // 2]), REJECTED, "无法打开"),
        Case("只有开头.xlsx", raw(good[:30]), REJECTED, "无法打开"),
        Case("加密.xlsx", raw(encrypted_workbook()), REJECTED, "密码"),
        Case("加密头.xlsx", raw(ole_file(encrypted=True)), REJECTED, "密码"),
        Case("旧格式.xls", raw(ole_file(encrypted=False)), REJECTED, "另存为"),
        Case("旧格式改名.xlsx", raw(ole_file(encrypted=False)), REJECTED, "97-2003"),
        Case("导出.csv", raw(",".join(HEADERS).encode("utf-8-sig")), REJECTED, "CSV"),
        Case("CSV改名.xlsx", raw((",".join(HEADERS) + "\n2020-11-18,C01,P06\n").encode("gbk")), REJECTED, "不是"),
        Case("文档改名.xlsx", docx_like, REJECTED, "Word 文档"),
        Case("声明4GB.xlsx", declared_bomb, REJECTED, "压缩炸弹"),
        Case("zip版本19.xlsx", future_zip_version, REJECTED, "损坏"),
        Case("压缩炸弹.xlsx", ratio_bomb, REJECTED, "压缩炸弹"),
        Case("网页.htm", raw(b"<html><body><table><tr><td>1</td></tr></table></body></html>"), REJECTED, ".htm"),
        # ---- rejected whole: a workbook, but not a submission
        Case("没有台账.xlsx", form([row()], sheet="Sheet1"), REJECTED, f"缺少工作表“{LEDGER}”"),
        # Sheet names are matched like headers: a stray space does not hide the 台账.
        Case("台账名带空格.xlsx", form([row()], sheet=f"{LEDGER} "), ACCEPTED, added=1),
        Case("空工作表.xlsx", lambda p: xlsx(p, []), REJECTED, da),
        Case("缺日期列.xlsx", lambda p: xlsx(p, [[h for h in HEADERS if h != da],
                                                [v for h, v in zip(HEADERS, row()) if h != da]]), REJECTED, da),
        Case("列名改了.xlsx", lambda p: xlsx(p, [[("活动名称" if h == ac else h) for h in HEADERS], row()]),
             REJECTED, ac),
        Case("列重复.xlsx", lambda p: xlsx(p, [[*HEADERS, da], [*row(), date(2020, 11, 19)]]), REJECTED, da),
        Case("表头在第12行.xlsx", lambda p: xlsx(p, [*[["说明"]] * 11, HEADERS, row()]), REJECTED, da),
        Case("混报.xlsx", form([row(), row(committee_id="C02", activity="别处的活动")]), REJECTED, "C01、C02"),
        Case("未知居委会.xlsx", form([row(committee_id="C99")]), REJECTED, "C99"),
        Case("居委会没填.xlsx", form([row(committee_id=None)]), REJECTED, "无法确定"),
        Case("全部出错.xlsx", form([row(project_id="P99"), row(project_id="P98", activity="另一项")]), REJECTED,
             "P99", {(2, pr, "unknown_project"), (3, pr, "unknown_project")}),
        Case("二十万行.xlsx", many_rows(200_000, project_id="P99"), REJECTED, "P99"),
        # ---- accepted or partly: rows are judged one by one
        Case("标题合并在上.xlsx", lambda p: xlsx(p, [["新福康里居委会 11 月台账"], [], HEADERS, row()],
                                                merges=((0, 0, 1, 8, "新福康里居委会 11 月台账"),)),
             ACCEPTED, added=1),
        # A hand-made form with only the headers: nothing to merge, nothing to reject.
        Case("只有表头.xlsx", form([]), ACCEPTED, "没有填写任何记录", warnings={"empty"}),
        Case("一万字.xlsx", form([row(activity=long_text), row(note=long_text, activity="长备注")]), ACCEPTED, added=2),
        Case("控制字符.xlsx", form([row(activity="健康\x01讲座\x07第\x1f二期", note="换行\r\n制表\t")]), ACCEPTED,
             added=1),
        Case("表情.xlsx", form([row(activity="健步走打卡 🏃‍♀️💪🏻", reporter="周敏😀")]), ACCEPTED, added=1),
        Case("公式单元格.xlsx", form([row(), row(activity="占位")],
                                    formulas={(1, 6): ("=20+22", 42), (2, 4): ('=HYPERLINK("http://evil.example","点我看")', "点我看")}),
             ACCEPTED, added=2),
        Case("公式文字.xlsx", form([row(activity='=HYPERLINK("http://evil.example","点我")'),
                                   row(activity="@SUM(A1:A9)", note="+86 21 6200 0000"),
                                   row(activity="-减盐宣传-", note="=1+1")]),
             ACCEPTED, added=3, warnings={"formula_text"}),
        Case("文字日期.xlsx", form([row(date=t, activity=f"健康讲座第{i}场") for i, t in enumerate(date_texts)]),
             ACCEPTED, added=len(date_texts)),
        Case("日期乱写.xlsx", form([row(), *(row(date=t, activity=f"活动{i}") for i, t in enumerate(nonsense_dates))]),
             PARTLY, "日期", {(3 + i, da, "bad_date") for i in range(len(nonsense_dates))}, added=1),
        Case("日期是数字.xlsx", form([row(date=44153), row(date=-5, activity="负日期"), row(date=10**9, activity="很大")]),
             PARTLY, "日期", {(3, da, "bad_date"), (4, da, "bad_date")}, added=1),
        Case("负数.xlsx", form([row(), row(quantity=-5, activity="负数量"), row(participants=-1, activity="负人数")]),
             PARTLY, "负", {(4, pa, "negative")}, added=2, warnings={"negative"}),
        Case("巨大数字.xlsx", form([row(quantity=1e20, activity="巨大数量"), row(participants=10**15, activity="巨大人数"),
                                   row(quantity="1e400", activity="溢出")]),
             PARTLY, "", {(4, qu, "bad_number")}, added=2, warnings={"quantity_above_target"}),
        Case("数字写成文字.xlsx", form([row(quantity="三十万", activity="宣传"), row(quantity="800余次", activity="走访"),
                                      row(quantity="42人", activity="体检")]), ACCEPTED, added=3),
        Case("状态乱写.xlsx", form([row(status="搞定了")]), REJECTED, "搞定了", {(2, st, "bad_choice")}),
        Case("隐藏行.xlsx", form([row(), row(activity="隐藏的行"), row(activity="第三行")], hidden=(2,)),
             ACCEPTED, added=3),
        Case("合并单元格.xlsx", form([row(), row(date=None, activity="合并下的第二行"), row(date=None, activity="第三行")],
                                    merges=((1, 1, 3, 1, datetime(2020, 11, 12)),)),
             PARTLY, da, {(3, da, "required"), (4, da, "required")}, added=1),
        Case("格式到二十万行.xlsx", form([row(), row(activity="第二行")], formatted_to=200_000), ACCEPTED, added=2),
        Case("空白格.xlsx", form([row(), ["  ", "\u3000", "", None, " "]]), ACCEPTED, added=1),
        Case("别人的编号.xlsx", form([row(record_id="C02-0001")]), REJECTED, "C02", {(2, ri, "record_of_other_committee"), (2, ri, "record_id_committee")}),
        # Which of two different rows is C01-0900 cannot be told: neither is merged.
        Case("编号重复.xlsx", form([row(record_id="C01-0900"), row(record_id="C01-0900", activity="重复编号"), row()]),
             PARTLY, "C01-0900", {(2, ri, "repeated_record_id"), (3, ri, "repeated_record_id")}, added=1),
        Case("<script>alert(1)<／script>&'.xlsx", form([row(activity="<b>粗体</b>&amp;")]), ACCEPTED, added=1),
        Case("台账不在第一张.xlsx", form([row()], other_sheets={"说明": [["请填写台账"]], "草稿": [[1, 2, 3]]}),
             ACCEPTED, added=1),
    ]
    return out


def corpus(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    built = cases()
    for case in built:
        case.build(folder / case.file)
    return built
