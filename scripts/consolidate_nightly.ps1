# Windows Task Scheduler wrapper (see README, 定时汇总). Action:
#   Program:   powershell.exe
#   Arguments: -NoProfile -ExecutionPolicy Bypass -File "C:\healthbook\scripts\consolidate_nightly.ps1" "D:\健康街道\healthbook.xlsm"
# Output is appended to ..\logs\task.log; consolidate.log beside the master has one line per file.
# $env:HEALTHBOOK_PYTHON may name the interpreter (default: python on PATH).
param([Parameter(Mandatory = $true)][string]$Master, [int]$MinAge = 60)
$ErrorActionPreference = "Continue"
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
$env:PYTHONIOENCODING = "utf-8"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$logs = Join-Path $here "..\logs"
New-Item -ItemType Directory -Force -Path $logs | Out-Null
$python = if ($env:HEALTHBOOK_PYTHON) { $env:HEALTHBOOK_PYTHON } else { "python" }
& $python (Join-Path $here "consolidate_nightly.py") $Master --min-age $MinAge *>> (Join-Path $logs "task.log")
$status = $LASTEXITCODE
# 3 = master open in Excel or being written: the next run retries; report success to the scheduler.
if ($status -eq 3) { exit 0 }
exit $status
