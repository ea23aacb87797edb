"""The demo's projects and 责任单位 are exactly the seed bulletin's 【链接】 list."""

from __future__ import annotations

import re

import pytest

from macros import schema
from macros.book.read import read_workbook

from .conftest import SEED

# As the issue lists them; the seed file is checked too when it is beside the checkout.
EXPECTED = {
    "健康社会类": ["楼宇白领健康干预项目", "康健工程项目", "健康促进机关创建"],
    "健康人群类": ["楼宇控烟项目", "社区养老护理员健康技能培训项目"],
    "健康服务类": ["社区老年人健康体检项目", "健康服务进校园"],
}


def bulletin_projects(text: str) -> list[tuple[str, str, str]]:
    """(category, project name, 责任单位) in the order the bulletin's 【链接】 lists them."""
    found, category = [], None
    section = text[text.index("【链接】"):]
    for line in section.splitlines():
        line = line.strip()
        if m := re.match(r"#+\s*■\s*(\S+)", line):
            category = m.group(1)
        elif m := re.match(r"项目[一二三四五六七八九十]+：(.+)", line):
            found.append([category, m.group(1).strip(), None])
        elif line.startswith("责任单位：") and found and found[-1][2] is None:
            found[-1][2] = line.removeprefix("责任单位：")
        elif line.startswith("（") and found:
            break
    return [tuple(f) for f in found]


def test_projects_match_the_issue_list(demo_master):
    projects = read_workbook(demo_master)[schema.PROJECTS.name]
    for category, names in EXPECTED.items():
        assert projects.loc[projects["category"] == category, "name"].tolist() == names


def test_projects_and_units_match_the_seed_bulletin(demo_master):
    if not SEED.exists():
        pytest.skip(f"seed bulletin not beside the checkout: {SEED}")
    expected = bulletin_projects(SEED.read_text(encoding="utf-8"))
    assert len(expected) == 7
    projects = read_workbook(demo_master)[schema.PROJECTS.name]
    got = list(zip(projects["category"], projects["name"], projects["units"]))
    assert got == expected
