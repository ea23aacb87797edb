"""Notices list every unfinished project ahead: a limit of five left an eighth project at 0 % out
of the 进度通报's 下一步工作安排 and of every 催办通知's 工作要求, and the lists read complete (walk3 F9)."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.cli import main


def test_every_unfinished_project_ahead_is_in_the_progress_notice_and_the_reminders(tmp_path):
    rows = demo.demo_rows()
    projects = rows[schema.PROJECTS.name]
    added = [f"新增项目{n}" for n in range(1, 4)]
    for n, name in enumerate(added, start=8):
        projects.append({**projects[0], "project_id": f"P{n:02d}", "name": name, "target": 26,
                         "indicator_unit": "个", "deadline": date(2020, 12, 31)})
    path = tmp_path / "m.xlsx"
    build_workbook(path, rows)
    assert main(["notices", str(path), "--out", str(tmp_path / "通知"), "--as-of", "2020-11-15",
                 "--kind", "进度通报", "催办通知"]) == 0
    [progress] = (tmp_path / "通知").glob("进度通报*.html")
    plan = progress.read_text(encoding="utf-8").split("下一步工作安排")[1]
    assert all(f"{name}：截止日期2020年12月31日" in plan for name in added)
    reminders = list((tmp_path / "通知").glob("催办通知_C*.html"))
    assert reminders
    for reminder in reminders:  # nobody has done any of them: every letter asks for all three
        asks = reminder.read_text(encoding="utf-8").split("工作要求")[1]
        assert all(f"{name}：截止日期2020年12月31日" in asks for name in added), reminder.name


def test_the_pdfs_healthbook_makes_use_serif_chinese_faces_for_the_body(tmp_path, monkeypatch):
    """``--pdf`` on Linux set every character in Noto Sans CJK JP: LibreOffice knows no 仿宋 or
    小标宋, and only the tests gave it a map (walk3 F15). The product now gives it the same one."""
    import shutil
    import subprocess

    from .conftest import libreoffice

    libreoffice()
    if not shutil.which("pdffonts"):
        pytest.skip("poppler-utils 未安装")
    monkeypatch.delenv("FONTCONFIG_FILE", raising=False)
    path = tmp_path / "m.xlsx"
    build_workbook(path, demo.demo_rows())
    out = tmp_path / "通知"
    assert main(["notices", str(path), "--out", str(out), "--as-of", "2020-11-15", "--kind", "进度通报", "--pdf"]) == 0
    [pdf] = out.glob("进度通报*.pdf")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "NotoSerifCJK" in fonts, fonts  # 仿宋 / 小标宋 mapped to the serif face


def test_a_bulletin_issue_made_on_an_earlier_day_is_not_made_again_by_every_report(tmp_path, capsys):
    """Every report (and nightly refresh) wrote 工作简报_第6期 again under its own date and figures:
    two different 第6期 in circulation (walk3 F5). Asked for by name, it is made again."""
    path = tmp_path / "m.xlsx"
    build_workbook(path, demo.demo_rows())
    out = tmp_path / "通知"
    assert main(["report", str(path), "--out", str(out), "--as-of", "2020-11-15"]) == 0
    assert [p.name for p in out.glob("工作简报_*.docx")] == ["工作简报_第6期_2020-11-15.docx"]
    capsys.readouterr()
    assert main(["report", str(path), "--out", str(out), "--as-of", "2020-11-20"]) == 0
    said = capsys.readouterr().out
    assert [p.name for p in out.glob("工作简报_*.docx")] == ["工作简报_第6期_2020-11-15.docx"]
    assert "第6期已生成过（工作简报_第6期_2020-11-15.docx），本次未重新生成" in said
    assert quote("工作简报_第6期_2020-11-15.html") in (out / "index.html").read_text(encoding="utf-8")  # still listed
    assert main(["notices", str(path), "--out", str(out), "--as-of", "2020-11-20", "--kind", "工作简报"]) == 0
    assert (out / "工作简报_第6期_2020-11-20.docx").is_file()


def test_a_bulletin_issue_is_known_by_its_files_when_the_folders_record_is_gone(tmp_path):
    """A folder from before the record kept its listing, or one whose hidden record was lost in a
    copy: the issue's own files under another date still say it was made (review)."""
    from macros.render.outfiles import MANIFEST

    path = tmp_path / "m.xlsx"
    build_workbook(path, demo.demo_rows())
    out = tmp_path / "通知"
    assert main(["report", str(path), "--out", str(out), "--as-of", "2020-11-15"]) == 0
    (out / MANIFEST).unlink()
    assert main(["report", str(path), "--out", str(out), "--as-of", "2020-11-16"]) == 0
    assert [p.name for p in out.glob("工作简报_*.docx")] == ["工作简报_第6期_2020-11-15.docx"]
