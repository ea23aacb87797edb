"""What a user walk-through met at the command line: backups listed with the run each came before,
month-day dates for --as-of, output piped into head, and the order of the commands in --help."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from macros import demo, schema
from macros.book.backup import LABELS, backup_dir, backup_file, list_backups
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.cli import build_parser, main
from macros.consolidate import folders
from macros.forms import build_forms

from .conftest import ROOT, cli_json
from .test_consolidate import fill_form, form_c01, new_row


@pytest.fixture(scope="module")
def blank_forms(demo_master, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("blank-forms")
    build_forms(demo_master, out, ["C01"])
    return out


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


def test_restore_list_says_which_run_each_backup_came_before_and_what_it_changed(master_copy, blank_forms):
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(form_c01(blank_forms), inbox / "C01-11月.xlsx",
              [new_row(activity="体检第一批"), new_row(activity="体检第二批")])
    assert run_cli("consolidate", str(master_copy))[0] == 0
    assert run_cli("rollup", str(master_copy), "--as-of", "2020-11-20")[0] == 0
    oldest = list_backups(master_copy)[-1]
    assert run_cli("restore", str(master_copy), "--backup", oldest.name)[0] == 0
    # A backup nobody labelled (the Excel button of an older healthbook): listed all the same.
    unlabelled = backup_file(master_copy)

    code, data = cli_json("restore", str(master_copy), "--list")
    listed = {b["name"]: b for b in data["backups"]}
    assert code == 0 and len(listed) == 4
    assert listed[unlabelled.name]["run"] is None and listed[unlabelled.name]["label"] is None
    runs = [b["run"] for b in data["backups"] if b["run"]]
    assert runs == ["restore", "rollup", "consolidate"]  # newest first
    consolidated = data["backups"][-1]
    assert consolidated["name"] == oldest.name and consolidated["label"] == "汇总填报表前"
    assert consolidated["changed"] == "1 个文件，新增 2 行，更新 0 条记录"
    restored = next(b for b in data["backups"] if b["run"] == "restore")
    assert oldest.name in restored["changed"]

    code, text = run_cli("restore", str(master_copy), "--list")
    line = next(line for line in text.splitlines() if line.startswith(oldest.name))
    assert line.endswith("汇总填报表前（consolidate）：1 个文件，新增 2 行，更新 0 条记录")
    assert next(line for line in text.splitlines() if line.startswith(unlabelled.name)).endswith("字节")


def test_a_damaged_label_file_loses_labels_not_the_listing(master_copy):
    assert run_cli("rollup", str(master_copy), "--as-of", "2020-11-20")[0] == 0
    labels = backup_dir(master_copy) / LABELS
    labels.write_text(labels.read_text(encoding="utf-8") + '{"backup": "cut sho\n', encoding="utf-8")
    code, data = cli_json("restore", str(master_copy), "--list")
    assert code == 0 and [b["run"] for b in data["backups"]] == ["rollup"]
    labels.write_bytes(b"\xff\xfe not json at all")
    code, data = cli_json("restore", str(master_copy), "--list")
    assert code == 0 and len(data["backups"]) == 1 and data["backups"][0]["label"] is None


def test_forms_replaced_with_force_are_labelled(demo_master, tmp_path):
    out = tmp_path / "forms"
    assert run_cli("forms", str(demo_master), "--out", str(out), "--committee", "C01")[0] == 0
    assert run_cli("forms", str(demo_master), "--out", str(out), "--committee", "C01", "--force")[0] == 0
    [form] = out.glob("填报表-C01-*.xlsx")
    code, data = cli_json("restore", str(form), "--list")
    assert [(b["run"], b["label"]) for b in data["backups"]] == [("forms --force", "重新生成填报表前")]


def test_as_of_takes_a_month_and_day_in_the_workbook_s_year(master_copy, tmp_path):
    args = build_parser().parse_args(["rollup", str(master_copy), "--as-of", "11月15日"])
    assert args.as_of == date(date.today().year, 11, 15)  # until the workbook is read
    code, data = cli_json("rollup", str(master_copy), "--as-of", "6月22日")  # the demo's 年度 is 2020
    assert code in (0, 1) and data["meta"]["as_of"] == "2020-06-22"
    # A 年度 left blank: this year's.
    rows = demo.demo_rows()
    for row in rows[schema.SETTINGS.name]:
        if row["item"] == schema.SETTINGS_BY_KEY["year"].item:
            row["value"] = ""
    build_workbook(tmp_path / "no-year.xlsx", rows)
    code, data = cli_json("rollup", str(tmp_path / "no-year.xlsx"), "--as-of", "6月22日")
    assert data["meta"]["as_of"] == f"{date.today().year}-06-22"


@pytest.mark.parametrize("typed", ["明天吧", "2月30日", "13月1日"])
def test_as_of_still_refuses_what_is_not_a_date(master_copy, typed, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(master_copy), "--as-of", typed])
    assert exit_.value.code == 2
    assert f"无法识别日期“{typed}”，请写成 2020-11-15" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["restore", "{path}", "--list", "--json"], ["info", "{path}"], ["--help"]])
def test_output_into_a_closed_pipe_ends_quietly(master_copy, argv):
    """``healthbook … | head -1``: the reader gone before the output is written (closed here at once,
    while the command still starts up)."""
    backup_file(master_copy)
    argv = [a.replace("{path}", str(master_copy)) for a in argv]
    child = subprocess.Popen([sys.executable, "-m", "macros", *argv], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read().decode("utf-8", "replace")
    child.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert child.returncode in (0, 141)


def test_help_lists_the_everyday_commands_first_and_serve_last():
    text = build_parser().format_help()
    everyday = ["report", "consolidate", "validate", "forms", "notices", "rollup", "restore", "init", "info",
                "serve"]
    lines = [line.split()[0] for line in text.splitlines() if line.startswith("    ") and line.split()]
    assert [name for name in lines if name in everyday] == everyday


def test_restore_list_json_is_one_document(master_copy):
    """The fields --json gives each backup, all of them (``head`` reads the first line of this)."""
    backup_file(master_copy)
    code, text = run_cli("restore", str(master_copy), "--list", "--json")
    [entry] = json.loads(text)["backups"]
    assert set(entry) == {"name", "time", "size", "run", "label", "changed"}


def test_a_button_s_backup_is_labelled_with_the_button(master_copy, tmp_path):
    from macros import excel

    from .test_live_backup import saved_book

    assert excel.rollup(saved_book(master_copy), as_of=date(2020, 11, 15)) is not None
    code, text = run_cli("restore", str(master_copy), "--list")
    [line] = [line for line in text.splitlines() if line.startswith(master_copy.stem)]
    # The button a clerk clicked, by its caption: not the Python function behind it.
    assert line.endswith("汇总进度前（Excel 按钮“校验并汇总进度”）")
    said = line.split("字节", 1)[1]  # after the file's name, time and size: what a person reads
    assert not re.search(r"[A-Za-z_]+", said.replace("Excel", "")), line
    assert set(excel.BUTTON_NAMES) == set(excel.BUTTON_LABELS)  # every button named, not only this one


def test_the_nightly_run_labels_its_backup(master_copy, blank_forms):
    inbox = folders(master_copy, read_workbook(master_copy).settings).inbox
    inbox.mkdir()
    fill_form(form_c01(blank_forms), inbox / "C01-11月.xlsx", [new_row()])
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py"), str(master_copy), "--min-age", "0"]
    done = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    code, data = cli_json("restore", str(master_copy), "--list")
    [backup] = data["backups"]
    assert (backup["run"], backup["label"]) == ("定时汇总", "汇总填报表前")
    assert backup["changed"] == "1 个文件，新增 1 行，更新 0 条记录"


def test_a_run_labels_its_own_backups_not_those_another_run_made_meanwhile(master_copy):
    """The nightly consolidation waits for the lock while a clerk's report writes: the backup the
    report made appears in the folder during the consolidation's run, and is not its."""
    from macros.book.backup import labelling

    with labelling(master_copy, "consolidate", "汇总填报表前"):
        # Another process (the other run) backs the master up meanwhile.
        other = subprocess.run([sys.executable, "-c", "import sys; from macros.book.backup import backup_file; "
                                "print(backup_file(sys.argv[1]))", str(master_copy)],
                               capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        ours = backup_file(master_copy)
    code, data = cli_json("restore", str(master_copy), "--list")
    labels = {b["name"]: b["label"] for b in data["backups"]}
    assert labels == {Path(other).name: None, ours.name: "汇总填报表前"}
