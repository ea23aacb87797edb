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

    python bench/bench_notices.py --part folder

What writing into the notices folder safely costs (manifest, temporary file + rename; see
macros/render/outfiles.py) against plain overwriting, every kind rendered, in one run.

    python bench/bench_notices.py --part photos

The 工作简报 with phone photos: six 4032 × 3024 JPEGs at quality 92 (one stored sideways with an
EXIF orientation, as a phone held upright saves it) and a PNG screenshot, typed into 简报稿件.
Reports the .docx and .html sizes and the render time, with the pictures fitted to the page (what
healthbook does) and embedded as they are (what it did before), in one run.
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


def phone_photo(path: Path, seed: int, width: int = 4032, height: int = 3024, orientation: int = 1) -> None:
    """A photo-like JPEG (smooth shapes plus sensor-like noise) at quality 92, as a phone saves it."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height // 4, 0:width // 4].astype(np.float32)
    base = np.stack([x / x.max() * 190 + 30, y / y.max() * 170 + 40, (x + y) / (x + y).max() * 140 + 60], -1)
    base += 40 * np.sin(x[..., None] / 24.0 + seed) * np.cos(y[..., None] / 15.0)
    small = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    noise = rng.normal(0, 14, (height, width, 3)).astype(np.int16)
    pixels = np.clip(np.asarray(small, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=92, exif=exif.tobytes())


def screenshot(path: Path, width: int = 1920, height: int = 1080) -> None:
    """A PNG screenshot: flat panels, rules and text-like marks in a handful of colours."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), (246, 246, 246))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, width, 60), fill=(33, 115, 70))
    for row in range(40):
        top = 90 + row * 24
        draw.line((0, top, width, top), fill=(210, 210, 210))
        for col in range(12):
            left = 20 + col * 158
            draw.text((left, top + 5), f"C{row:02d}-{col:04d} 12.5%", fill=(20, 20, 20))
    im.save(path)


def bulletin_photos() -> None:
    """The bulletin with seven pictures: fitted (healthbook) against as typed (before), one run."""
    from macros.book.read import read_workbook
    from macros.render import notices

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_workbook(tmp / "hb.xlsx", demo.demo_rows())
        (tmp / "照片").mkdir()
        names = []
        for i in range(6):
            name = f"照片/IMG_{i:04d}.jpg"
            phone_photo(tmp / name, i, orientation=6 if i == 1 else 1)
            names.append(name)
        screenshot(tmp / "照片/截图.png")
        names.append("照片/截图.png")
        sources = sum((tmp / n).stat().st_size for n in names)
        print(f"Bulletin photos: {len(names)} pictures, {sources / 1e6:.1f} MB on disk "
              f"(six 4032x3024 JPEG q92, one with EXIF orientation 6, one 1920x1080 PNG)")
        book = read_workbook(tmp / "hb.xlsx")
        from macros.render import titles

        t = time.perf_counter()
        titles._jieba()  # long titles load the word dictionary once a process: timed on its own
        print(f"  word dictionary for title breaks: {time.perf_counter() - t:.2f} s, once a process")

        def run(folder: str) -> tuple[float, int, int]:
            frames = {k: v.copy() for k, v in book.frames.items()}
            articles = frames[schema.ARTICLES.name]
            while len(articles) < len(names):  # one picture an article: copy articles to make room
                articles.loc[len(articles)] = articles.iloc[len(articles) % 5].to_dict()
            articles["image"] = names + [""] * (len(articles) - len(names))
            data = ctx.NoticeInput(frames, book.settings, demo.DEMO_AS_OF, None, tmp)
            t = time.perf_counter()
            result = Renderer(data, tmp / folder, NoticeOptions(kinds=(ctx.BULLETIN,))).run()
            seconds = time.perf_counter() - t
            [notice] = result.notices
            return (seconds, (tmp / folder / notice.docx).stat().st_size,
                    (tmp / folder / notice.html).stat().st_size)

        runs = {"fitted": run("fitted")}
        if hasattr(notices, "fit_picture"):  # the same bulletin with every picture embedded as typed
            fit = notices.fit_picture
            from macros.render.pictures import picture_as_is

            notices.fit_picture = picture_as_is
            try:
                runs["as typed"] = run("as-typed")
            finally:
                notices.fit_picture = fit
        for label, (seconds, docx, html) in runs.items():
            print(f"  {label:9s}: .docx {docx / 1e6:6.2f} MB, .html {html / 1e6:6.2f} MB, "
                  f"rendered in {seconds:.2f} s")
        if len(runs) == 2:
            (fs, fd, fh), (rs, rd, rh) = runs["fitted"], runs["as typed"]
            print(f"  .docx {rd / fd:.0f}x smaller, .html {rh / fh:.0f}x smaller, rendered {rs / fs:.1f}x faster")


def safe_folder(committees: int, rounds: int = 5) -> None:
    """What the notices folder's safety costs: every kind, Word and HTML, written (a) plainly, as
    healthbook did before (``Path.write_bytes``, overwriting), (b) by ``OutputFolder`` into an empty
    folder (temporary file + rename, manifest), (c) by ``OutputFolder`` again over (b)'s files, as
    a nightly run finds them. Rounds interleaved, medians, in one run (the disk here is shared)."""
    import statistics

    from macros.render import outfiles
    from macros.report import analyse

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "district.xlsx"
        build_workbook(path, district_rows(committees))
        book = read_workbook(path)
        as_of = demo.DEMO_AS_OF
        validation, result = analyse(book, as_of)
        safe_put = outfiles.OutputFolder.put

        def plain_put(self, name: str, data: bytes) -> outfiles.Written:
            (self.folder / name).write_bytes(data)
            return outfiles.Written(name)

        def run(folder: Path, put, formats: tuple[str, ...]) -> tuple[float, int]:
            outfiles.OutputFolder.put = put
            try:
                data = ctx.NoticeInput(validation.frames, book.settings, as_of, result, tmp)
                renderer = Renderer(data, folder, NoticeOptions(formats=formats))
                renderer._chart = lambda _committees: None  # the chart is the same work either way
                t = time.perf_counter()
                done = renderer.run()
                return time.perf_counter() - t, sum(bool(n.docx) + bool(n.html) for n in done.notices)
            finally:
                outfiles.OutputFolder.put = safe_put

        for formats in (("docx", "html"), ("html",)):
            times: dict[str, list[float]] = {"plain": [], "safe, empty folder": [], "safe, again": []}
            for r in range(rounds):
                where = tmp / "-".join(formats)
                s, files = run(where / f"plain{r}", plain_put, formats)
                times["plain"].append(s)
                times["safe, empty folder"].append(run(where / f"safe{r}", safe_put, formats)[0])
                times["safe, again"].append(run(where / f"safe{r}", safe_put, formats)[0])
            base = statistics.median(times["plain"])
            print(f"Notices folder safety, {' + '.join(formats)}: {files} files (every kind), "
                  f"median of {rounds} interleaved rounds")
            for label, values in times.items():
                m = statistics.median(values)
                print(f"  {label:18s}: {m:.3f} s = {files / m:,.0f} files/s, {m / base:.2f}x plain")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--committees", type=int, default=300)
    parser.add_argument("--part", choices=("all", "district", "photos", "folder"), default="all")
    args = parser.parse_args()
    if args.part == "folder":
        safe_folder(args.committees)
        return
    if args.part in ("all", "photos"):
        bulletin_photos()
    if args.part == "photos":
        return
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
