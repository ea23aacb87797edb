"""Notices list every unfinished project ahead: a limit of five left an eighth project at 0 % out
of the 进度通报's 下一步工作安排 and of every 催办通知's 工作要求, and the lists read complete (walk3 F9)."""

from __future__ import annotations

from datetime import date

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
