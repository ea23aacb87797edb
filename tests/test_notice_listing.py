"""index.html and 通知清单 list every notice current in the folder, and count them alike.

A run of some kinds (``notices --kind 工作简报``) used to rewrite index.html with only its own notices,
while the folder still held the day's 进度通报 and 催办通知: the 目录 the summary points to lost them.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from urllib.parse import unquote

import python_calamine

from macros import schema
from macros.cli import main

AS_OF = date(2020, 6, 22)


def listed(index: Path) -> set[str]:
    """The files index.html links to."""
    return {unquote(h) for h in re.findall(r'href="([^"]+)"', index.read_text(encoding="utf-8"))}


def count_said(text: str) -> tuple[int, int]:
    """(notices, merged print files) as a listing says them."""
    m = re.search(r"共 (\d+) 份(?:，另有 (\d+) 个合并打印文件)?", text)
    assert m, text
    return int(m.group(1)), int(m.group(2) or 0)


def notices_sheet(master: Path) -> tuple[list[list], str]:
    grid = python_calamine.CalamineWorkbook.from_path(str(master)).get_sheet_by_name(
        schema.NOTICES.name).to_python()
    width = len(schema.NOTICES.keys)
    return [r[:width] for r in grid[1:] if any(c != "" for c in r[:width])], str(grid[0][width + 1])


def files_of(out: Path, prefix: str) -> set[str]:
    return {p.name for p in out.glob(f"{prefix}*") if p.suffix in (".docx", ".html")}


def test_a_run_of_one_kind_keeps_the_other_kinds_in_the_index(master_copy, tmp_path):
    out = tmp_path / "通知"
    assert main(["report", str(master_copy), "--as-of", AS_OF.isoformat(), "--out", str(out)]) in (0, 1)
    progress, reminders = files_of(out, "进度通报"), files_of(out, "催办通知")
    assert progress and len(reminders) > 2
    index = out / "index.html"
    after_report = listed(index)
    assert progress | reminders <= after_report

    # The two listings of one run count alike, and say what they count.
    rows, note = notices_sheet(master_copy)
    page = index.read_text(encoding="utf-8")
    assert count_said(note) == count_said(page)
    notices, merged = count_said(page)
    assert merged == 1 and len(rows) == notices + merged  # a row per file listed, the print file too

    assert main(["notices", str(master_copy), "--as-of", AS_OF.isoformat(), "--out", str(out),
                 "--kind", "工作简报"]) == 0
    now = listed(index)
    assert progress | reminders <= now  # still listed: they are still in the folder
    assert files_of(out, "工作简报") <= now
    assert now == after_report and count_said(index.read_text(encoding="utf-8")) == (notices, merged)


def test_the_listing_follows_the_folder(master_copy, tmp_path):
    out = tmp_path / "通知"
    main(["report", str(master_copy), "--as-of", AS_OF.isoformat(), "--out", str(out)])
    meetings = sorted(files_of(out, "会议通知"))
    assert len(meetings) == 4  # two meetings, Word and web page each
    # Staff delete one reminder; a run for one meeting replaces that meeting only.
    gone = sorted(files_of(out, "催办通知_C"))[:2]
    assert Path(gone[0]).stem == Path(gone[1]).stem
    for name in gone:
        (out / name).unlink()
    before = count_said((out / "index.html").read_text(encoding="utf-8"))
    assert main(["notices", str(master_copy), "--as-of", AS_OF.isoformat(), "--out", str(out),
                 "--kind", "会议通知", "--meeting", "M02"]) == 0
    now = listed(out / "index.html")
    assert set(meetings) <= now
    assert not set(gone) & now
    assert count_said((out / "index.html").read_text(encoding="utf-8")) == (before[0] - 1, before[1])
