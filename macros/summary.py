"""What a workbook holds, as data (the CLI renders it)."""

from __future__ import annotations

from datetime import date, datetime

from . import schema
from .book.read import Workbook


def describe(book: Workbook) -> dict:
    """Counts per sheet, projects per category, and the ledger's date range."""
    ledger = book[schema.LEDGER.name]
    projects = book[schema.PROJECTS.name]
    dates = [d.date() if isinstance(d, datetime) else d for d in ledger["date"]]
    dates = [d for d in dates if isinstance(d, date)]
    settings = book.settings
    return {
        "file": str(book.path),
        "street": settings.get("street") or "",
        "year": settings.get("year") or "",
        "sheets": {s.name: len(book[s.name]) for s in schema.INPUT_SHEETS if s.name in book.frames},
        "categories": {
            category: projects.loc[projects["category"] == category, "name"].tolist()
            for category in schema.CATEGORIES
        },
        "ledger_first": min(dates).isoformat() if dates else None,
        "ledger_last": max(dates).isoformat() if dates else None,
        "committees_reporting": int(ledger["committee_id"].nunique()),
    }


def describe_text(info: dict) -> str:
    """The summary in Chinese, a few lines."""
    sheets = info["sheets"]
    lines = [f"工作簿：{info['file']}"]
    if info["street"]:
        lines.append(f"街道：{info['street']}　年度：{info['year']}")
    lines.append(
        f"项目 {sheets.get(schema.PROJECTS.name, 0)} 个，居委会 {sheets.get(schema.COMMITTEES.name, 0)} 个，"
        f"会议 {sheets.get(schema.MEETINGS.name, 0)} 个，简报稿件 {sheets.get(schema.ARTICLES.name, 0)} 篇。"
    )
    for category, names in info["categories"].items():
        if names:
            lines.append(f"  {category}：{'、'.join(names)}")
    count = sheets.get(schema.LEDGER.name, 0)
    if count:
        lines.append(
            f"台账 {count} 条（{info['ledger_first']} 至 {info['ledger_last']}，"
            f"{info['committees_reporting']} 个居委会填报）。"
        )
    else:
        lines.append("台账暂无记录。")
    return "\n".join(lines)
