# Windows Task Scheduler wrapper (see README, 定时汇总). Action:
#   Program:   powershell.exe
#   Arguments: -NoProfile -ExecutionPolicy Bypass -File "C:\healthbook\scripts\consolidate_nightly.ps1" "D:\jiankang\jiankang.xlsm"
# Output is appended to ..\logs\task.log (UTF-8); consolidate.log beside the master has one line per file.
# $env:HEALTHBOOK_PYTHON may name the interpreter (default: python on PATH).
# Python writes the log itself (--log): Windows PowerShell 5.1's *>> would write UTF-16 and turn
# every stderr line into an error record. This file starts with a BOM: without one, PowerShell 5.1
# reads it in the ANSI code page and the Chinese text below comes out garbled.
param([Parameter(Mandatory = $true)][string]$Master, [int]$MinAge = 60)
$ErrorActionPreference = "Stop"
# PowerShell 7.3+ could otherwise throw on exit status 1 or 3, which are answers, not failures to start.
$PSNativeCommandUseErrorActionPreference = $false
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$logs = Join-Path $here "..\logs"
New-Item -ItemType Directory -Force -Path $logs | Out-Null
$log = Join-Path $logs "task.log"
$python = if ($env:HEALTHBOOK_PYTHON) { $env:HEALTHBOOK_PYTHON } else { "python" }
function Write-Log([string]$Text) {
    $line = "[{0:yyyy-MM-dd HH:mm:ss}] {1}" -f (Get-Date), $Text
    [System.IO.File]::AppendAllText($log, $line + [Environment]::NewLine, (New-Object System.Text.UTF8Encoding $false))
}
$cannotStart = "错误：无法启动 Python（$($python)）。请为运行任务的账户安装 Python 3.11+，或设置系统环境变量 HEALTHBOOK_PYTHON 指向 python.exe。"
try {
    & $python (Join-Path $here "consolidate_nightly.py") $Master --min-age $MinAge --log $log
    $status = $LASTEXITCODE
} catch {
    Write-Log "$cannotStart $($_.Exception.Message)"
    exit 2
}
# 9009: the Microsoft Store's python.exe placeholder, which only offers to install Python.
if ($status -eq 9009) { Write-Log $cannotStart; exit 2 }
# 3 = master open in Excel or being written: the next run retries; report success to the scheduler.
# (Open for over a day, the script exits 2 instead, which is passed on: see consolidate_nightly.py.)
if ($status -eq 3) { exit 0 }
exit $status
