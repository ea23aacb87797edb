"""Notices for a district-sized workbook (300 committees): HTML rate and Word speed-up, in one run.

    python bench/bench_notices.py [--committees 300]

Builds a master with 300 committees (the demo's projects, meetings and articles; each committee's
ledger copied from a demo committee), reads, validates and rolls it up once, then times:

- HTML: every notice kind rendered to .html (documents/s; the one chart is timed on its own,
  since Word and HTML share it);
- Word: the per-committee 催办通知 with healthbook's compiled template (each written to its own
  .docx, plus the combined print file — which plain docxtpl is not asked to make) against plain
  docxtpl rendering the same documents one by one (DocxTemplate(path).render(...).save(...)).
  Ratio = healthbook rate / plain rate; the target is ≥ 1.6.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from docxtpl import DocxTemplate  # noqa: E402

from macros import demo, schema  # noqa: E402
from macros.book.build import build_workbook  # noqa: E402
from macros.book.read import read_workbook  # noqa: E402
from macros.render import context as ctx  # noqa: E402
from macros.render.env import docx_environment, find_template  # noqa: E402
from macros.render.notices import HtmlTemplates, NoticeOptions, Renderer  # noqa: E402


def district_rows(n: int) -> dict[str, list[dict]]:
    """Demo rows with ``n`` committees; committee i reuses demo committee (i mod 13)'s ledger."""
    rows = demo.demo_rows()
    base = rows[schema.COMMITTEES.name]
    ledger = rows[schema.LEDGER.name]
    committees, new_ledger = [], []
    for i in range(n):
        model = base[i % len(base)]
        cid = f"C{i + 1:03d}"
        committees.append({**model, "committee_id": cid, "name": f"第{i + 1}居委会",
                           "email": f"{cid.lower()}@example.org"})
        count = 0
        for row in ledger:
            if row["committee_id"] == model["committee_id"]:
                count += 1
                new_ledger.append({**row, "committee_id": cid, "record_id": f"{cid}-{count:04d}"})
    rows[schema.COMMITTEES.name] = committees
    rows[schema.LEDGER.name] = new_ledger
    rows[schema.TARGETS.name] = []  # street-wide targets split equally
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--committees", type=int, default=300)
    args = parser.parse_args()
    from macros.report import analyse

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "district.xlsx"
        build_workbook(path, district_rows(args.committees))
        book = read_workbook(path)
        as_of = demo.DEMO_AS_OF
        validation, result = analyse(book, as_of)
        data = ctx.NoticeInput(validation.frames, book.settings, as_of, result, tmp)
        contexts = ctx.reminder_contexts(data)
        print(f"{args.committees} committees, {len(result.committees)} rolled up, "
              f"{len(contexts)} reminders")

        # HTML: every kind. The chart is timed on its own (Word and HTML share the one chart).
        def html_run(folder: str) -> tuple[float, int]:
            fresh = ctx.NoticeInput(validation.frames, book.settings, as_of, result, tmp)
            renderer = Renderer(fresh, tmp / folder, NoticeOptions(formats=("html",)))
            renderer._chart = lambda _committees: None
            t = time.perf_counter()
            res = renderer.run()
            return time.perf_counter() - t, sum(1 for n in res.notices if n.html) + 1  # + index.html

        cold_s, docs = html_run("html-cold")  # compiles the templates
        warm_s, _ = html_run("html-warm")  # templates compiled (a long-running process), contexts rebuilt
        t = time.perf_counter()
        Renderer(data, tmp / "chart", NoticeOptions(formats=("html",)))._chart(
            ctx.progress_context(data)["committees"])
        chart_s = time.perf_counter() - t
        # The same documents rendered to strings (contexts built, no files), and what creating that
        # many files of the same sizes costs on this disk: file creation bounds the end-to-end rate.
        fresh = ctx.NoticeInput(validation.frames, book.settings, as_of, result, tmp)
        templates = HtmlTemplates.for_folder(None)
        t = time.perf_counter()
        pages = [templates.render("progress.html", ctx.progress_context(fresh), ctx.VARIABLES["progress"])]
        pages += [templates.render("reminder.html", c, ctx.VARIABLES["reminder"])
                  for c in ctx.reminder_contexts(fresh)]
        pages += [templates.render("meeting.html", c, ctx.VARIABLES["meeting"])
                  for c in ctx.meeting_contexts(fresh)]
        pages.append(templates.render("bulletin.html", ctx.bulletin_context(fresh), ctx.VARIABLES["bulletin"]))
        render_s = time.perf_counter() - t
        floor = tmp / "floor"
        floor.mkdir()
        t = time.perf_counter()
        for i, page in enumerate(pages):
            (floor / f"{i}.html").write_text(page, encoding="utf-8")
        write_s = time.perf_counter() - t
        print(f"HTML: {docs} documents: first run {cold_s:.3f} s = {docs / cold_s:,.0f}/s (templates "
              f"compiled in it); next run {warm_s:.3f} s = {docs / warm_s:,.0f} documents/s")
        print(f"  rendered to strings (contexts included, no files): {len(pages) / render_s:,.0f} documents/s; "
              f"only writing {len(pages)} files of those sizes: {len(pages) / write_s:,.0f} files/s "
              f"(this disk's ceiling); the one SVG chart: {chart_s:.3f} s")

        # Word: healthbook's compiled template vs plain docxtpl, same reminders.
        out = tmp / "word"
        renderer = Renderer(data, out, NoticeOptions(kinds=(ctx.REMINDER,), formats=("docx",)))
        t = time.perf_counter()
        renderer.run()
        fast_s = time.perf_counter() - t
        fast_rate = len(contexts) / fast_s

        template = find_template("reminder.docx")
        plain_dir = tmp / "plain"
        plain_dir.mkdir()
        env = docx_environment()
        t = time.perf_counter()
        for i, context in enumerate(contexts):
            doc = DocxTemplate(str(template))
            doc.render(context, env, autoescape=True)
            doc.save(str(plain_dir / f"{i}.docx"))
        plain_s = time.perf_counter() - t
        plain_rate = len(contexts) / plain_s
        print(f"Word: healthbook {len(contexts)} documents (+ combined file) in {fast_s:.2f} s = "
              f"{fast_rate:.1f}/s; plain docxtpl {plain_s:.2f} s = {plain_rate:.1f}/s; "
              f"ratio {fast_rate / plain_rate:.1f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
