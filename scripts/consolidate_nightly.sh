#!/bin/sh
# cron wrapper: `crontab -e`, then e.g.
#   */10 7-20 * * 1-5  /opt/healthbook/scripts/consolidate_nightly.sh /srv/healthbook/healthbook.xlsx
#   30 22 * * *        /opt/healthbook/scripts/consolidate_nightly.sh /srv/healthbook/healthbook.xlsx
# Output goes to scripts/../logs/cron.log (HEALTHBOOK_LOGS: another folder); consolidate.log beside the
# master has one line per file. PYTHON may name the interpreter of a virtualenv (default: python3 on
# PATH; cron's PATH is short: give the full path of the Python healthbook was installed into).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
logs="${HEALTHBOOK_LOGS:-$here/../logs}"
python="${PYTHON:-python3}"
if ! mkdir -p "$logs" 2>/dev/null || ! touch "$logs/cron.log" 2>/dev/null; then
  echo "错误：无法写入日志文件夹 $logs（运行计划任务的用户没有写入权限？）。本次没有汇总。请让该用户可以写入它，或用 HEALTHBOOK_LOGS 指定另一个文件夹。" >&2
  exit 2
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "$(date '+%Y-%m-%d %H:%M:%S') 错误：找不到 Python：$python。本次没有汇总。请在计划任务中用 PYTHON= 写出装好 healthbook 的 Python 的完整路径（如 /opt/healthbook/.venv/bin/python）。" >>"$logs/cron.log"
  exit 2
fi
export PYTHONIOENCODING=utf-8 LANG="${LANG:-C.UTF-8}"
# --log: Python writes stdout and stderr to the log itself, line by line in order (redirected by
# the shell, stdout is block-buffered and an error would land before the lines printed above it).
"$python" "$here/consolidate_nightly.py" "$@" --log "$logs/cron.log" >>"$logs/cron.log" 2>&1
status=$?
# 3 = master open in Excel or being written: the next run retries; not an error for cron mail.
# (Open for over a day, the script exits 2 instead, which is passed on: see consolidate_nightly.py.)
[ "$status" -eq 3 ] && exit 0
exit "$status"
