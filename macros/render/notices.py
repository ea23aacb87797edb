"""Render the four notice kinds to Word and HTML files in one folder, plus an index.html."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from markupsafe import Markup, escape

from .. import schema
from ..errors import NoticesFolderUnusable, os_reason
from . import context as ctx
from . import fmt
from .charts import NoCjkFont, progress_chart
from .env import (
    HtmlTemplates,
    TemplateProblem,
    find_template,
    templates_dir,
)
from .outfiles import INDEX, RETIRED, OutputFolder, Written
from .pictures import BULLETIN_PICTURE_MM, FittedPicture, fit_picture
from .word import Picture, WordTemplate, render_with_pictures

ALL_KINDS = (ctx.PROGRESS, ctx.REMINDER, ctx.MEETING, ctx.BULLETIN)
NOTICE_SETTINGS = schema.NOTICE_SETTINGS
CHART_LIMIT = 40  # more committees than this: the chart shows the lowest 40
NOTICE_START, NOTICE_END = "<!--notice-->", "<!--/notice-->"


@dataclass
class Notice:
    """One generated notice: its kind, a title for people, and its files (names inside out_dir)."""

    kind: str
    title: str
    docx: str | None = None
    html: str | None = None
    pdf: str | None = None
    combined: bool = False  # the print file holding every 催办通知
    doc_number: str = ""  # its 发文字号 (石二街道〔2020〕3号); the bulletin has none
    ref: str = ""  # a 会议通知's 会议编号: a run for one meeting replaces only that one in the listing

    @classmethod
    def from_record(cls, record: dict) -> Notice:
        """A notice as the folder's record (``asdict``) holds it; keys it does not know are left out."""
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        return {"kind": ctx.KIND_NAMES.get(self.kind, self.kind), "title": self.title,
                "docx": self.docx, "html": self.html, "pdf": self.pdf, "combined": self.combined,
                "doc_number": self.doc_number}


def count_text(notices: Iterable[Notice]) -> str:
    """How many notices a listing holds, said the same way in index.html and 通知清单: a notice is
    one document for one reader; the merged print file repeats them and is not counted as one."""
    notices = list(notices)
    count = sum(not n.combined for n in notices)
    combined = len(notices) - count
    text = f"共 {count} 份"
    if combined:
        text += f"，另有 {combined} 个合并打印文件（把各份催办通知合在一起，便于打印，不另计份数）"
    return text


def current_notices(listed: Iterable[dict], fresh: list[Notice], options: NoticeOptions,
                    folder: Path) -> list[Notice]:
    """The notices current in ``folder`` after a run: this run's, and the earlier runs' of the kinds
    this run did not make (``listed``, as the folder's manifest holds them). A run of a kind
    replaces that kind's (one for a single 会议: that meeting's); a file no longer in the folder
    (moved to 已过时, deleted by staff) is not listed, nor a notice left without any file."""
    earlier = [Notice.from_record(d) for d in listed
               if d.get("kind") in ctx.KIND_NAMES and isinstance(d.get("title"), str)]
    made = set(options.kinds)
    meetings = {n.ref for n in fresh if n.kind == ctx.MEETING}
    kept = [n for n in earlier if n.kind not in made
            or (n.kind == ctx.MEETING and options.meeting and n.ref not in meetings)]
    listing = []
    for kind in ALL_KINDS:
        for n in [*(n for n in kept if n.kind == kind), *(n for n in fresh if n.kind == kind)]:
            present = {key: name for key in ("docx", "html", "pdf")
                       if isinstance(name := getattr(n, key), str) and (folder / name).is_file()}
            if present:
                listing.append(replace(n, docx=present.get("docx"), html=present.get("html"),
                                       pdf=present.get("pdf")))
    return listing


@dataclass
class NoticeOptions:
    kinds: tuple[str, ...] = ALL_KINDS
    issue: int | None = None
    meeting: str | None = None
    templates: Path | None = None  # the office's own edited templates, searched first
    formats: tuple[str, ...] = ("docx", "html")
    pdf: bool = False


@dataclass
class NoticeResult:
    out_dir: Path
    notices: list[Notice] = field(default_factory=list)  # made by this run
    index: Path | None = None
    warnings: list[str] = field(default_factory=list)
    blocked: str = ""  # why no notice was made at all (``render_notices``), also among ``warnings``
    # Every notice current in the folder (this run's and earlier runs' of other kinds): what
    # index.html and 通知清单 list.
    listing: list[Notice] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Notices per kind (the combined print file is not counted as a notice)."""
        out: dict[str, int] = {}
        for n in self.notices:
            if not n.combined:
                out[ctx.KIND_NAMES[n.kind]] = out.get(ctx.KIND_NAMES[n.kind], 0) + 1
        return out

    def doc_numbers(self) -> list[str]:
        """The 发文字号 printed on this run's notices, each once, lowest first."""
        found = {n.doc_number for n in self.notices if n.doc_number}
        return sorted(found, key=lambda d: (len(d), d))

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "index": str(self.index) if self.index else None,
                "counts": self.counts(), "notices": [n.to_dict() for n in self.notices],
                "listed": [n.to_dict() for n in self.listing], "warnings": self.warnings,
                "blocked": self.blocked}


def parse_kinds(names: Iterable[str] | None) -> tuple[str, ...]:
    """Kinds from Chinese (进度通报…) or English (progress…) names; all when empty."""
    if not names:
        return ALL_KINDS
    kinds = []
    for name in names:
        kind = ctx.KINDS_BY_NAME.get(name, name)
        if kind not in ctx.KIND_NAMES:
            listed = "、".join(ctx.KIND_NAMES.values())
            raise ValueError(f"不认识的通知种类“{name}”，可选：{listed}")
        kinds.append(kind)
    return tuple(dict.fromkeys(kinds))


def _combine_html(pages: list[str]) -> str:
    """One printable page holding every notice in order (CSS breaks the page between them)."""
    first = pages[0]
    head, tail = first[:first.index(NOTICE_START)], first[first.index(NOTICE_END) + len(NOTICE_END):]
    bodies = [p[p.index(NOTICE_START) + len(NOTICE_START):p.index(NOTICE_END)] for p in pages]
    return head + NOTICE_START + "".join(bodies) + NOTICE_END + tail


def _data_uri(picture: FittedPicture) -> str:
    return f"data:{picture.mime};base64,{base64.b64encode(picture.data).decode('ascii')}"


def article_picture(path: Path) -> FittedPicture:
    """An article's picture fitted to the bulletin's frame. ``bulletin_context`` has already let in
    only pictures this can fit (the same decision, and the picture is decoded once)."""
    return fit_picture(path, BULLETIN_PICTURE_MM)


class Renderer:
    """Renders notices of a NoticeInput into ``out_dir``."""

    def __init__(self, data: ctx.NoticeInput, out_dir: Path, options: NoticeOptions,
                 progress: Callable[[str], None] | None = None):
        self.data, self.options = data, options
        self.out_dir = Path(out_dir)
        self.result = NoticeResult(self.out_dir, warnings=data.warnings)
        self.html = HtmlTemplates.for_folder(options.templates)
        self.progress = progress or (lambda _msg: None)
        self._reminders_of_the_day: tuple[str, str, set[str]] | None = None
        self._carried: list[Notice] = []  # earlier notices this run kept as they are (``_issued_bulletin``)

    def _word_path(self, kind: str) -> Path:
        return find_template(f"{kind}.docx", self.options.templates)

    def _write_html(self, kind: str, stem: str, context: dict) -> tuple[str, str]:
        page = self.html.render(f"{kind}.html", context, ctx.VARIABLES[kind])
        name = f"{stem}.html"
        self._put(self.out_dir / name, page)
        return name, page

    def _put(self, path: Path, data: bytes | str) -> None:
        # Files are written on one background thread while the next document renders: creating
        # files costs as much as rendering them on some disks. The folder decides the name that
        # is really written (a file staff edited is kept); ``_settle`` applies its answers.
        payload = data.encode("utf-8") if isinstance(data, str) else data
        self._pending.append((path.name, self._writer.submit(self._folder.put, path.name, payload)))

    def _settle(self) -> None:
        """Each notice names the files really written (None where one could not be), and the
        folder's warnings join the run's."""
        written: dict[str, str | None] = {}
        for name, done in self._pending:
            outcome: Written = done.result()
            written[name] = outcome.name
            if outcome.warning:
                self.result.warnings.append(outcome.warning)
        self._pending = []
        for notice in self.result.notices:
            for key in ("docx", "html"):
                name = getattr(notice, key)
                if name is not None:
                    setattr(notice, key, written.get(name, name))

    # ---- kinds ----------------------------------------------------------------------------

    def progress_notice(self) -> None:
        if self.data.rollup is None:
            self.result.warnings.append("没有汇总结果，未生成进度通报。")
            return
        base = ctx.progress_context(self.data)
        chart = self._chart(base["committees"])
        stem = fmt.safe_name(ctx.KIND_NAMES[ctx.PROGRESS], base["street"], self.data.as_of.isoformat())
        notice = Notice(ctx.PROGRESS, f"进度通报（{fmt.cn_date(self.data.as_of)}）", doc_number=base["doc_number"])
        if "docx" in self.options.formats:
            pictures = {"chart": Picture(chart.png, chart.width_mm)} if chart else {"chart": ""}
            render_with_pictures(self._word_path(ctx.PROGRESS), self.out_dir / f"{stem}.docx",
                                 {**base, **pictures}, ctx.VARIABLES[ctx.PROGRESS], self._put)
            notice.docx = f"{stem}.docx"
        if "html" in self.options.formats:
            notice.html = self._write_html(ctx.PROGRESS, stem, {**base, "chart": Markup(chart.svg) if chart else ""})[0]
        self.result.notices.append(notice)

    def _chart(self, committees: list[dict]):
        # A committee without targets has no percent: no bar (a "0.0%" bar reads as nothing done),
        # and no chart at all when none has one (a workbook before its 目标值 are typed).
        def percent(c: dict) -> float | None:
            return None if ctx.clean(c.get("percent")) == "" else ctx.number(c.get("percent"))

        if not committees or all(percent(c) is None for c in committees):
            return None
        rows = committees
        if len(rows) > CHART_LIMIT:  # the lowest, those without targets last
            rows = sorted(rows, key=lambda c: (percent(c) is None, percent(c) or 0.0))[:CHART_LIMIT]
        try:
            return progress_chart([str(c.get("committee_name") or c.get("committee_id")) for c in rows],
                                  [percent(c) for c in rows],
                                  [str(c.get("status")) for c in rows],
                                  # Each committee's own: its projects' deadlines differ.
                                  expected=[None if ctx.clean(c.get("expected")) == "" else ctx.number(c["expected"])
                                            for c in rows],
                                  title=f"完成率最低的{CHART_LIMIT}个居委会" if rows is not committees else "",
                                  formats=tuple(f for f, k in (("svg", "html"), ("png", "docx"))
                                                if k in self.options.formats))
        except NoCjkFont as exc:
            self.result.warnings.append(str(exc))
            return None

    def reminders(self) -> None:
        if self.data.rollup is None:
            self.result.warnings.append("没有汇总结果，未生成催办通知。")
            return
        contexts = ctx.reminder_contexts(self.data)
        kind = ctx.REMINDER
        day = self.data.as_of.isoformat()
        stems = [fmt.safe_name(ctx.KIND_NAMES[kind], c["committee"]["committee_id"],
                               c["committee"]["committee_name"], day) for c in contexts]
        combined_stem = fmt.safe_name(ctx.KIND_NAMES[kind], "合并打印", day)
        # The day's reminders this run no longer writes (the committee caught up since the morning)
        # are moved aside once the writes are done: sent from the folder, they would be untrue.
        self._reminders_of_the_day = (f"{fmt.safe_name(ctx.KIND_NAMES[kind])}_", f"_{fmt.safe_name(day)}",
                                      {*stems, combined_stem} if contexts else set())
        if not contexts:
            return
        notices = [Notice(kind, f"催办通知：{c['committee']['committee_name']}", doc_number=c["doc_number"])
                   for c in contexts]
        combined = Notice(kind, f"催办通知（合并打印，共{len(contexts)}份）", combined=True,
                          doc_number=contexts[0]["doc_number"])
        if "docx" in self.options.formats:
            word = WordTemplate(self._word_path(kind), ctx.VARIABLES[kind])
            bodies = []
            for stem, context, notice in zip(stems, contexts, notices):
                body = word.render_body(context)
                word.save(self.out_dir / f"{stem}.docx", [body], context, self._put)
                notice.docx = f"{stem}.docx"
                bodies.append(body)
            # The combined file reuses the rendered bodies: one section per notice, numbered from 1.
            word.save(self.out_dir / f"{combined_stem}.docx", bodies, contexts[0], self._put)
            combined.docx = f"{combined_stem}.docx"
        if "html" in self.options.formats:
            pages = []
            for stem, context, notice in zip(stems, contexts, notices):
                notice.html, page = self._write_html(kind, stem, context)
                pages.append(page)
            self._put(self.out_dir / f"{combined_stem}.html", _combine_html(pages))
            combined.html = f"{combined_stem}.html"
        self.result.notices.extend([combined, *notices])

    def meetings(self) -> None:
        contexts = ctx.meeting_contexts(self.data, self.options.meeting)
        if self.options.meeting and not contexts:
            self.result.warnings.append(f"会议表中没有编号为“{self.options.meeting}”的会议。")
        if not contexts:
            return
        kind = ctx.MEETING
        word = WordTemplate(self._word_path(kind), ctx.VARIABLES[kind]) if "docx" in self.options.formats else None
        for context in contexts:
            m = context["meeting"]
            stem = fmt.safe_name(ctx.KIND_NAMES[kind], m.get("meeting_id"), m.get("name"),
                                 m["date"].isoformat() if m["date"] else "")
            notice = Notice(kind, f"会议通知：{m.get('name')}", doc_number=context["doc_number"],
                            ref=str(m.get("meeting_id") or ""))
            if word is not None:
                word.render_to(self.out_dir / f"{stem}.docx", context, self._put)
                notice.docx = f"{stem}.docx"
            if "html" in self.options.formats:
                notice.html = self._write_html(kind, stem, context)[0]
            self.result.notices.append(notice)

    def bulletin(self) -> None:
        context = ctx.bulletin_context(self.data, self.options.issue)
        if context is None:
            which = f"第{self.options.issue}期" if self.options.issue is not None else "任何一期"
            self.result.warnings.append(f"简报稿件中没有{which}的稿件，未生成工作简报。")
            return
        kind = ctx.BULLETIN
        stem = fmt.safe_name(ctx.KIND_NAMES[kind], f"第{context['issue']}期", self.data.as_of.isoformat())
        notice = Notice(kind, f"{context['bulletin_name']} 第{context['issue']}期")
        earlier = self._issued_bulletin(notice.title, stem)
        if earlier is not None:
            # An issue made on an earlier day is not made again by every report (or nightly refresh)
            # under the day's date and figures: two different 第6期 would be in circulation.
            self._carried.append(earlier)
            as_of = self.data.as_of.isoformat()
            self.result.warnings.append(
                f"{notice.title}已生成过（{earlier.docx or earlier.html}），本次未重新生成，以免同一期出现两个日期。"
                f"如确需按 {as_of} 重新生成，请运行 healthbook notices 工作簿 --kind {ctx.KIND_NAMES[kind]} --as-of {as_of}。")
            return
        # Each picture is fitted once, for Word and the web page alike.
        pictures = [article_picture(Path(a["picture_path"])) if a["picture_path"] else None
                    for a in context["articles"]]
        if "docx" in self.options.formats:
            articles = [{**a, "picture": Picture(p.data, p.width_mm, p.height_mm) if p else ""}
                        for a, p in zip(context["articles"], pictures)]
            render_with_pictures(self._word_path(kind), self.out_dir / f"{stem}.docx",
                                 {**context, "articles": articles}, ctx.VARIABLES[kind], self._put)
            notice.docx = f"{stem}.docx"
        if "html" in self.options.formats:
            articles = [{**a, "picture": Markup('<img src="{}" alt="{}" style="width:{:.0f}mm">').format(
                _data_uri(p), a.get("caption") or "", p.width_mm) if p else ""}
                for a, p in zip(context["articles"], pictures)]
            notice.html = self._write_html(kind, stem, {**context, "articles": articles})[0]
        self.result.notices.append(notice)

    def _issued_bulletin(self, title: str, stem: str) -> Notice | None:
        """The same issue made on another day and still in the folder, when this run was not asked
        for the bulletin by name (``--kind 工作简报``, ``--issue``): None to make it."""
        if self.options.issue is not None or tuple(self.options.kinds) != ALL_KINDS:
            return None
        for entry in self._folder.listing:
            if entry.get("kind") != ctx.BULLETIN or entry.get("title") != title:
                continue
            names = [entry.get(k) for k in ("docx", "html") if isinstance(entry.get(k), str)]
            if names and all(not n.startswith(stem + ".") for n in names) and any((self.out_dir / n).is_file() for n in names):
                return Notice.from_record(entry)
        # A folder whose record lacks the listing (an older healthbook's, or the hidden file lost
        # in a copy): the issue's own files under another date say it was made.
        issue = stem.rpartition("_")[0] + "_"
        found = {suffix: sorted(p.name for p in self.out_dir.glob(f"{issue}*{suffix}") if not p.name.startswith(stem + "."))
                 for suffix in (".docx", ".html")}
        if found[".docx"] or found[".html"]:
            return Notice(ctx.BULLETIN, title, docx=(found[".docx"] or [None])[-1], html=(found[".html"] or [None])[-1])
        return None

    # ---- the run --------------------------------------------------------------------------

    def run(self) -> NoticeResult:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # before anything is written: the caller's workbook write goes on without notices
            raise NoticesFolderUnusable(self.out_dir, os_reason(exc)) from exc
        steps = {ctx.PROGRESS: self.progress_notice, ctx.REMINDER: self.reminders,
                 ctx.MEETING: self.meetings, ctx.BULLETIN: self.bulletin}
        self._folder = OutputFolder(self.out_dir)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthbook-write")
        self._pending: list[tuple[str, Future]] = []
        self._blank_settings()
        try:
            for kind in self.options.kinds:
                self.progress(f"正在生成{ctx.KIND_NAMES[kind]}……")
                steps[kind]()
            self._writer.shutdown(wait=True)
            self._settle()  # a file that could not be written is a warning; the rest are written
            self._retire_old_reminders()
            self._doc_numbers_used()
            if self.options.pdf:
                self._pdf()
            self.result.listing = current_notices(self._folder.listing, [*self._carried, *self.result.notices],
                                                  self.options, self.out_dir)
            self._folder.listing = [asdict(n) for n in self.result.listing]
            self.result.index = self._index()
        finally:
            self._writer.shutdown(wait=True)
            self._folder.save()
        return self.result

    def _retire_old_reminders(self) -> None:
        found = self._reminders_of_the_day
        if found is None:
            return
        prefix, suffix, current = found
        moved, left = self._folder.retire(lambda name: name.startswith(prefix) and name.rpartition(".")[0].endswith(suffix)
                                          and name.rpartition(".")[0] not in current)
        # A file of a committee still written to (under another name: renamed in 居委会) is not one
        # that caught up: saying so would tell the clerk a letter she sent was premature.
        def committee(name: str) -> str:
            return name[len(prefix):].split("_", 1)[0]

        still = {committee(stem) for stem in current}
        renamed = sorted({n.rpartition(".")[0] for n in [*moved, *left] if committee(n) in still})
        if renamed:
            self.result.warnings.append(
                f"同一天早些时候生成的催办通知 {'、'.join(renamed)} 的居委会名称已改，本次已按新名称重新生成"
                + (f"；旧名称的文件已移到“{RETIRED}”文件夹。" if set(renamed) & {n.rpartition(".")[0] for n in moved}
                   else "；旧名称的文件被修改过或正被打开，未移走，请勿再发出。"))
        left = [n for n in left if committee(n) not in still]
        moved = [n for n in moved if committee(n) not in still]
        if left:  # edited by staff or open in Word: not moved, and no longer true
            self.result.warnings.append(
                f"同一天早些时候生成的催办通知 {'、'.join(sorted(left))} 本次已不需要（居委会已赶上进度或已填报），"
                "但它被修改过或正被打开，未移走：请勿再发出。")
        if moved:
            stems = sorted({name.rpartition(".")[0] for name in moved})
            self.result.warnings.append(
                f"同一天早些时候生成的 {len(stems)} 份催办通知本次已不需要（居委会已赶上进度或已填报），"
                f"已移到“{RETIRED}”文件夹，以免误发：{'、'.join(stems)}。")

    def _doc_numbers_used(self) -> None:
        """发文序号 is the office's to keep (设置 is never written): say which 文号 this run printed
        and what the next batch needs, or every run would print the same ones again."""
        used = self.result.doc_numbers()
        if not used:
            return
        last = re.search(r"(\d+)号$", used[-1])
        item = schema.SETTINGS_BY_KEY["doc_number"].item
        span = used[0] if len(used) == 1 else f"{used[0]}至{used[-1]}"
        self.result.warnings.append(
            f"本次通知的发文字号为{span}（“{schema.SETTINGS.name}”表的“{item}”不会自动增加）。"
            + (f"这些通知正式发出后，请把“{item}”改为 {int(last.group(1)) + 1}，下一批通知才不会重号。" if last else ""))

    def _blank_settings(self) -> None:
        """设置 items every notice prints: blank, they leave "关于建设工作…" and "联系人：，" behind."""
        blank = [schema.SETTINGS_BY_KEY[k].item for k in NOTICE_SETTINGS if not fmt.text(self.data.settings.get(k))]
        if blank:
            self.result.warnings.append(
                f"{schema.SETTINGS.name}表中{''.join(f'“{b}”' for b in blank)}未填，通知中相应的地方是空的："
                f"请在“{schema.SETTINGS.name}”表填写后重新生成。")

    def _pdf(self) -> None:
        docs = [n for n in self.result.notices if n.docx]
        # Converted in a folder of its own, then written like every other file: a PDF staff
        # changed, or one open in a reader, is kept as it is.
        with tempfile.TemporaryDirectory(prefix=".healthbook-pdf-", dir=self.out_dir) as scratch:
            try:
                converted = convert_to_pdf([self.out_dir / n.docx for n in docs], Path(scratch))
            except PdfUnavailable as exc:
                self.result.warnings.append(str(exc))
                return
            for n in docs:
                pdf = Path(n.docx).with_suffix(".pdf").name
                if pdf in converted:
                    n.pdf = self._write_now(pdf, (Path(scratch) / pdf).read_bytes())

    def _write_now(self, name: str, data: bytes) -> str | None:
        outcome = self._folder.put(name, data)
        if outcome.warning:
            self.result.warnings.append(outcome.warning)
        return outcome.name

    def _index(self) -> Path | None:
        """index.html: every notice current in the folder (``listing``), by kind."""
        listing = self.result.listing
        groups = []
        for kind in ALL_KINDS:
            items = [n for n in listing if n.kind == kind]
            if items:
                groups.append({"kind": ctx.KIND_NAMES[kind], "notices": items,
                               "count": sum(not n.combined for n in items)})
        page = self.html.render("index.html", {
            "street": fmt.text(self.data.settings.get("street")), "as_of": self.data.as_of,
            "notices": listing, "groups": groups, "warnings": self.result.warnings,
            "count": sum(not n.combined for n in listing), "count_text": count_text(listing),
        })
        name = self._write_now(INDEX, page.encode("utf-8"))
        return self.out_dir / name if name else None


class PdfUnavailable(Exception):
    def __str__(self) -> str:
        return ("未找到 LibreOffice（soffice），未生成 PDF。请安装 LibreOffice 后重试，"
                "或用 Word 打开 .docx 另存为 PDF。")


def _font_map_env() -> dict[str, str] | None:
    """LibreOffice's environment: on Linux, where fontconfig chooses its fonts, the shipped map of
    仿宋/小标宋/黑体/楷体 to installed CJK faces (``templates/fonts.conf``), unless one is set already.
    Without it every character of the PDF fell back to one sans face."""
    conf = templates_dir() / "fonts.conf"
    # Linux only: the map includes /etc/fonts/fonts.conf, which is not where macOS keeps fontconfig's.
    if not sys.platform.startswith("linux") or "FONTCONFIG_FILE" in os.environ or not conf.is_file():
        return None
    return {**os.environ, "FONTCONFIG_FILE": str(conf)}


def convert_to_pdf(paths: list[Path], out_dir: Path, timeout: int = 600) -> set[str]:
    """Convert .docx files to PDF with headless LibreOffice (one process); returns the PDF names made."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise PdfUnavailable()
    if not paths:
        return set()
    with tempfile.TemporaryDirectory(prefix="healthbook-lo-") as profile:
        subprocess.run(
            [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
             "--convert-to", "pdf", "--outdir", str(out_dir), *map(str, paths)],
            check=False, capture_output=True, timeout=timeout, env=_font_map_env(),
        )
    return {p.with_suffix(".pdf").name for p in paths if (out_dir / p.with_suffix(".pdf").name).exists()}


def render_notices(data: ctx.NoticeInput, out_dir: Path | str, options: NoticeOptions | None = None,
                   progress: Callable[[str], None] | None = None) -> NoticeResult:
    """Render the chosen notice kinds of ``data`` into ``out_dir`` (Word, HTML, an index.html).
    None is made when ``data.blockers`` says the workbook would make them false (``blocked`` says
    why; the folder is left as it is)."""
    if data.blockers:
        blocked = (f"本次没有生成任何通知：{'；'.join(data.blockers)}。据此生成的通报和催办通知会把错误的情况发给各居委会，"
                   f"请先按“{schema.ISSUES.name}”表改正，再重新生成。")
        return NoticeResult(Path(out_dir), warnings=[*data.warnings, blocked], blocked=blocked)
    options = options or NoticeOptions()
    if options.templates is not None and not Path(options.templates).is_dir():
        # Misspelt, or a share offline: the letters would go out in the stock wording unnoticed.
        data.warnings.append(f"模板文件夹“{options.templates}”不存在或无法访问（来自“{schema.SETTINGS.name}”表的"
                             f"“{schema.SETTINGS_BY_KEY['templates'].item}”或 --templates），"
                             "本次通知用的是自带模板：请检查文件夹名称和网络盘。")
    return Renderer(data, Path(out_dir), options, progress).run()


__all__ = ["Notice", "NoticeOptions", "NoticeResult", "PdfUnavailable", "TemplateProblem",
           "convert_to_pdf", "count_text", "current_notices", "escape", "parse_kinds", "render_notices"]
