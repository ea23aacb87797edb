#!/bin/sh
# cron wrapper: `crontab -e`, then e.g.
#   */10 7-20 * * 1-5  /opt/healthbook/scripts/consolidate_nightly.sh /srv/healthbook/healthbook.xlsx
#   30 22 * * *        /opt/healthbook/scripts/consolidate_nightly.sh /srv/healthbook/healthbook.xlsx
# Output goes to scripts/../logs/cron.log; consolidate.log beside the master has one line per file.
# PYTHON may name the interpreter of a virtualenv (default: python3 on PATH).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
logs="$here/../logs"
mkdir -p "$logs"
export PYTHONIOENCODING=utf-8 LANG="${LANG:-C.UTF-8}"
"${PYTHON:-python3}" "$here/consolidate_nightly.py" "$@" >>"$logs/cron.log" 2>&1
status=$?
# 3 = master open in Excel or being written: the next run retries; not an error for cron mail.
# (Open for over a day, the script exits 2 instead, which is passed on: see consolidate_nightly.py.)
[ "$status" -eq 3 ] && exit 0
exit "$status"
