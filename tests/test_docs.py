"""Docs that cannot drift: every command has help and is in the README; CI runs the README's tests."""

from __future__ import annotations

import argparse
import re

from macros.cli import COMMANDS, build_parser
from macros.excel import BUTTON_NAMES

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_has_help_and_is_in_the_readme():
    subs = _subcommands()
    assert set(subs) == set(COMMANDS)
    for name, sub in subs.items():
        assert sub.description, name
        assert f"healthbook {name}" in README, name


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    assert "healthbook" in block[0] and "pytest" in block[1]
    assert block[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_clerks_guide_and_the_bas_name_the_buttons_as_restore_lists_them():
    """``restore --list`` says which button a backup was taken before (``BUTTON_NAMES``): the guide's
    file table, its step naming the buttons and the .bas comments use those names, not others."""
    guide = (ROOT / "workbook" / "README.md").read_text(encoding="utf-8")
    steps = [BUTTON_NAMES[f] for f in ("validate", "rollup", "notices")]
    row = next(line for line in guide.splitlines() if line.startswith("| `healthbook.bas`"))
    assert "、".join(steps) in row
    assert "".join(f"“{name}”" for name in steps) in guide
    bas = (ROOT / "workbook" / "healthbook.bas").read_bytes().decode("gbk")  # VBA imports it as ANSI
    for name in BUTTON_NAMES.values():
        assert f"' {name}：" in bas, name
