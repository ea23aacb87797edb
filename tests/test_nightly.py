"""The scheduled entry runs from a checkout; while the master is open it stages, keeps the inbox, exits 3."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import macros.consolidate as consolidation
from macros.forms import build_forms

from .conftest import ROOT
from .test_consolidate import fill_form, new_row


def test_nightly_script_waits_for_an_open_master_then_merges(master_copy, tmp_path):
    [blank] = build_forms(master_copy, tmp_path / "forms", ["C01"]).written
    inbox = master_copy.parent / "收件箱"
    inbox.mkdir()
    fill_form(blank, inbox / "C01.xlsx", [new_row()])
    owner = master_copy.with_name("~$" + master_copy.name)
    owner.write_bytes(b"\x04zhou")
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py"), str(master_copy), "--min-age", "0"]

    busy = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert busy.returncode == 3, busy.stderr
    assert "收件箱保持原样" in busy.stdout and [p.name for p in inbox.iterdir()] == ["C01.xlsx"]
    # the counts that follow are not taken for a merge done
    assert "以下结果未写入" in next(line for line in busy.stdout.splitlines() if "处理填报表" in line)
    logged = (master_copy.parent / consolidation.LOG_NAME).read_text(encoding="utf-8").splitlines()
    assert "\t已接受（暂存，未并入，下次重试）\t新增 1" in next(line for line in logged if "\tC01.xlsx\t" in line)

    owner.unlink()
    done = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "共新增 1 行" in done.stdout and not any(inbox.iterdir())
    merged = (master_copy.parent / consolidation.LOG_NAME).read_text(encoding="utf-8").splitlines()[len(logged):]
    assert "\t已接受\t新增 1" in next(line for line in merged if "\tC01.xlsx\t" in line)
    # the result staged while the master was open is out of date: removed, and the summary says so
    assert not list(master_copy.parent.glob(f"{master_copy.stem}-待合并-*"))
    staged = next(line for line in busy.stdout.splitlines() if "本次结果已暂存为" in line)
    assert Path(staged.split("暂存为 ")[1].split("；")[0]).name in done.stdout and "已删除" in done.stdout
    # the scheduler's log shows each step with its time (a night that hangs shows where)
    steps = [line.split("] ", 1)[1] for line in done.stdout.splitlines() if line.startswith("[") and "] 正在" in line]
    assert steps == [consolidation.READING, consolidation.REFRESHING, consolidation.WRITING, consolidation.FINISHING]


def test_log_option_appends_everything_in_utf8_even_errors(master_copy, tmp_path):
    # The Windows wrapper relies on it: PowerShell 5.1's own redirection would write UTF-16.
    log = tmp_path / "logs" / "task.log"
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py")]

    first = subprocess.run([*script, str(master_copy), "--min-age", "0", "--log", str(log)],
                           capture_output=True, timeout=300)
    assert first.returncode == 0 and first.stdout == b"" and first.stderr == b""
    text = log.read_bytes().decode("utf-8")  # UTF-8, no BOM, nothing else
    assert text.count("汇总 " + str(master_copy)) == 1 and consolidation.READING in text

    missing = master_copy.with_name("没有这个文件.xlsx")
    second = subprocess.run([*script, str(missing), "--log", str(log)], capture_output=True, timeout=300)
    assert second.returncode == 2 and second.stdout == b"" and second.stderr == b""
    appended = log.read_bytes().decode("utf-8")
    assert appended.startswith(text) and "错误：" in appended[len(text):] and "没有这个文件.xlsx" in appended[len(text):]

    # a usage error (the scheduler's arguments mistyped) reaches the log as well
    third = subprocess.run([*script, "--min-age", "soon", "--log", str(log)], capture_output=True, timeout=300)
    assert third.returncode == 2 and third.stderr == b""
    usage = log.read_bytes().decode("utf-8")[len(appended):]
    assert "--min-age" in usage
    # in Chinese, as the healthbook command's own: the office reads the task's log
    assert "用法：" in usage and "错误：" in usage and "usage:" not in usage and "invalid" not in usage


def test_windows_wrapper_reads_as_utf8_and_lets_python_write_the_log():
    wrapper = (ROOT / "scripts" / "consolidate_nightly.ps1").read_bytes()
    # Windows PowerShell 5.1 reads a script without a BOM in the ANSI code page: its Chinese garbled.
    assert wrapper.startswith(b"\xef\xbb\xbf")
    text = wrapper.decode("utf-8-sig")
    code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert any("--log $log" in line for line in code) and not any(">>" in line for line in code)


def test_a_log_option_without_its_file_is_said_in_chinese(master_copy):
    script = [sys.executable, str(ROOT / "scripts" / "consolidate_nightly.py"), str(master_copy), "--log"]
    done = subprocess.run(script, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert done.returncode == 2 and "--log" in done.stderr
    assert "usage" not in done.stderr and "expected one argument" not in done.stderr, done.stderr


def run_wrapper(master: Path, tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """scripts/consolidate_nightly.sh as cron runs it: another working folder, a bare environment."""
    logs = tmp_path / "logs"
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HEALTHBOOK_LOGS": str(logs), **env}
    done = subprocess.run(["sh", str(ROOT / "scripts" / "consolidate_nightly.sh"), str(master), "--min-age", "0"],
                          capture_output=True, text=True, encoding="utf-8", timeout=300, cwd="/", env=bare)
    return done, logs / "cron.log"


def test_the_cron_wrapper_logs_a_run_in_order(master_copy, tmp_path):
    done, log = run_wrapper(master_copy, tmp_path, PYTHON=sys.executable)
    assert done.returncode == 0, (done.stdout, done.stderr, log.read_text(encoding="utf-8"))
    text = log.read_text(encoding="utf-8")
    assert text.index("汇总 ") < text.index(consolidation.READING) < text.index("处理填报表 0 份")


def test_a_python_without_healthbook_s_libraries_is_said_in_chinese(master_copy, tmp_path):
    """cron's PATH finds the system's python3, not the one healthbook was installed into: a
    Chinese line in the log saying what to do, exit 2 — not an English traceback and 1 ("data")."""
    bare_python = tmp_path / "python-without-libraries"
    bare_python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n', encoding="utf-8")
    bare_python.chmod(0o755)
    done, log = run_wrapper(master_copy, tmp_path, PYTHON=str(bare_python))
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 2, text
    assert "没有安装 healthbook 需要的库" in text and "Traceback" not in text
    # First what fixes it under cron: PYTHON= naming the virtualenv's Python. Not pip install into
    # this one: the system's python3 refuses it on Debian 12 (externally managed).
    advice = text.split("本次没有汇总。", 1)[1]
    assert advice.startswith("请在 crontab 中用 PYTHON=") and "/opt/healthbook/.venv/bin/python" in advice
    assert "请用这个 Python" not in advice and "不要往系统自带的 Python" in advice


def test_a_python_without_the_libraries_on_windows_is_told_of_healthbook_python():
    """The Task Scheduler's wrapper takes its Python from HEALTHBOOK_PYTHON (no PYTHON= there)."""
    text = runpy.run_path(str(ROOT / "scripts" / "consolidate_nightly.py"))["missing_library_text"](
        "pandas", windows=True)
    advice = text.split("本次没有汇总。", 1)[1]
    assert "缺少 pandas" in text and advice.startswith("请在系统环境变量中设 HEALTHBOOK_PYTHON")
    assert "PYTHON=" not in advice.replace("HEALTHBOOK_PYTHON", "")


def test_a_python_not_found_or_an_unwritable_log_folder_is_said_in_chinese(master_copy, tmp_path):
    done, log = run_wrapper(master_copy, tmp_path, PYTHON="/opt/healthbook/.venv/bin/python-missing")
    assert done.returncode == 2 and "找不到 Python" in log.read_text(encoding="utf-8")
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    done, _ = run_wrapper(master_copy, tmp_path, PYTHON=sys.executable, HEALTHBOOK_LOGS=str(blocked / "logs"))
    assert done.returncode == 2 and "无法写入日志文件夹" in done.stderr
