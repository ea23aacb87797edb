"""What each notice template receives: plain dicts built from the frames, 设置 and the roll-up.

Values stay raw (numbers, dates, text; blanks become ''): templates format them with the filters
``cn_date``, ``weekday``, ``num``, ``pct`` and ``cn_numeral``. ``VARIABLES`` names the top-level
variables of each kind — templates/README.md documents exactly these (a test checks it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..normalise import setting_value, units_text
from ..rollup import COMMITTEE_PERCENT_RULE, PERCENT_CAP
from . import fmt, pictures

PROGRESS, REMINDER, MEETING, BULLETIN = "progress", "reminder", "meeting", "bulletin"
KIND_NAMES = {PROGRESS: "进度通报", REMINDER: "催办通知", MEETING: "会议通知", BULLETIN: "工作简报"}
KINDS_BY_NAME = {v: k for k, v in KIND_NAMES.items()}
BEHIND = ("滞后", "严重滞后")
REPLY_DAYS = 7  # a reminder asks for the overdue work within a week

COMMON = ("street", "pilot_name", "issuer", "contact", "phone", "as_of", "date", "kind")
VARIABLES: dict[str, tuple[str, ...]] = {
    PROGRESS: (*COMMON, "doc_number", "summary", "categories", "projects", "committees",
               "lagging_committees", "severe_committees", "overdue_projects", "upcoming", "chart",
               "percent_rule"),
    REMINDER: (*COMMON, "doc_number", "committee", "reasons", "overdue_items", "upcoming_items",
               "reply_by", "percent_rule"),
    MEETING: (*COMMON, "doc_number", "meeting"),
    BULLETIN: (*COMMON, "bulletin_name", "issue", "articles", "progress", "link_title",
               "link_categories"),
}


@dataclass
class NoticeInput:
    """Everything notices are made from."""

    frames: dict[str, pd.DataFrame]
    settings: dict[str, Any]
    as_of: date
    rollup: Any | None = None  # macros.rollup.Rollup
    base_dir: Path | None = None  # the workbook's folder: article pictures are relative to it
    warnings: list[str] = field(default_factory=list)
    cache: dict[str, list[dict]] = field(default_factory=dict, repr=False)
    # Why no notice may be made from this workbook (``validate.notice_blockers``): a 年度 the date
    # reported for is not in, no projects… every letter would be false.
    blockers: list[str] = field(default_factory=list)


def remaining(target: object, achieved: object) -> int | str:
    """What is still to be done, in whole units: a shared target of 3.08 场 leaves 4 场, not 3.08;
    '' (shown blank) without a target: "尚差 0" would say the work is done."""
    if clean(target) == "":
        return ""
    gap = number(target) - number(achieved)
    return max(math.ceil(round(gap, 6)), 0)


def clean(value: object) -> object:
    """A cell value for a template: blanks → '', numpy scalars → Python, Timestamps → date."""
    if fmt.blank(value):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def records(frame: pd.DataFrame | None) -> list[dict]:
    """Frame rows as template-ready dicts (columns starting with '_' dropped)."""
    if frame is None or frame.empty:
        return []
    cols = [c for c in frame.columns if not str(c).startswith("_")]
    columns = []
    for col in cols:  # whole columns at once: this runs over every committee × project pair
        series = frame[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = [d.date() if not pd.isna(d) else "" for d in series]
        elif pd.api.types.is_bool_dtype(series):
            values = series.tolist()
        elif pd.api.types.is_numeric_dtype(series):
            values = [("" if v != v else v) for v in series.astype(float).tolist()]
        else:
            values = [v if type(v) is str else clean(v) for v in series.tolist()]
        columns.append(values)
    return [dict(zip(cols, row)) for row in zip(*columns)]


def cached_records(data: NoticeInput, key: str, frame: pd.DataFrame | None) -> list[dict]:
    """``records(frame)`` computed once per NoticeInput; callers get their own copies to change."""
    if key not in data.cache:
        data.cache[key] = records(frame)
    return [dict(r) for r in data.cache[key]]


def number(value: object, default: float = 0.0) -> float:
    value = clean(value)
    try:
        return float(value) if value != "" else default
    except (TypeError, ValueError):
        return default


def truthy(value: object) -> bool:
    value = clean(value)
    if isinstance(value, str):
        return value in ("是", "逾期", "True", "true", "1")
    return bool(value)


def common(data: NoticeInput, kind: str) -> dict:
    s = data.settings
    return {
        "street": fmt.text(s.get("street")), "pilot_name": fmt.text(s.get("pilot_name")),
        "issuer": fmt.text(s.get("issuer")), "contact": fmt.text(s.get("contact")),
        "phone": fmt.text(s.get("phone")), "as_of": data.as_of, "date": data.as_of,
        "kind": KIND_NAMES[kind],
    }


def doc_number(data: NoticeInput, offset: int = 0) -> str:
    """发文字号: the 设置 序号 for the 通报, the next for 催办通知, then one per 会议通知."""
    base = int(setting_value(data.settings, "doc_number"))
    return fmt.doc_number(fmt.text(data.settings.get("doc_prefix")), data.as_of.year, base + offset)


# ---- roll-up views ---------------------------------------------------------------------------

def _projects_info(data: NoticeInput) -> dict[str, dict]:
    """The roll-up's 项目进度 rows by 项目编号: a notice names a project (its 责任单位 as split,
    indicator unit, deadline) as the sheets do."""
    return {r["project_id"]: r for r in cached_records(data, "project_progress", data.rollup.projects)}


def committee_rows(data: NoticeInput) -> list[dict]:
    """居委会进度 rows; a blank 居委会名称 (an error in 校验结果) shows as the 居委会编号, not as nothing;
    a committee without any target has the status 暂无目标 (its 完成率 reads so too: ``fmt.pct``)."""
    rows = cached_records(data, "committee_progress", data.rollup.committees)
    for r in rows:
        r["committee_name"] = r.get("committee_name") or r["committee_id"]
        r["status"] = r.get("status") or fmt.NO_TARGET
    return rows


def project_rows(data: NoticeInput) -> list[dict]:
    """项目进度 rows with what remains; 完成率 as the sheet shows it (at most 100 %)."""
    rows = cached_records(data, "project_progress", data.rollup.projects)
    for r in rows:
        r["remaining"] = remaining(r.get("target"), r.get("achieved"))
        r["is_overdue"] = truthy(r.get("overdue"))
        if r["percent"] != "":
            r["percent"] = min(r["percent"], PERCENT_CAP)
    return rows


def category_rows(data: NoticeInput) -> list[dict]:
    """The roll-up's 类别 rows (单位进度's category block, one computation): project count, mean
    completion (each project capped at 100 %; '' when none has a target), overdue count."""
    return [
        {"category": r["category"], "projects": int(r["projects"]), "percent": r["average_percent"],
         "overdue": int(r["overdue"])}
        for r in cached_records(data, "categories", data.rollup.categories)
    ]


def summary(data: NoticeInput, projects: list[dict], committees: list[dict]) -> dict:
    meta = data.rollup.meta
    statuses = [c.get("status") for c in committees]
    return {
        "projects": len(projects), "committees": len(committees),
        "entries": int(meta["rows_used"]), "unverified": int(meta["rows_unverified"]),
        # The roll-up's figure; '' when no project has a target (shown 暂无目标, never 0 %).
        "percent": clean(meta["average_percent"]),
        # A committee without any target has no status: it is not "正常" either.
        "on_track": statuses.count(schema.PROGRESS_OK),
        "lagging": statuses.count("滞后"), "severe": statuses.count("严重滞后"),
        "no_target": statuses.count(fmt.NO_TARGET),
        "overdue_projects": sum(p["is_overdue"] for p in projects),
    }


def overdue_projects(projects: list[dict]) -> list[dict]:
    """Projects past their deadline that some committee has not finished (the roll-up's 是否逾期),
    earliest deadline first: the notice names every one it counts."""
    late = [p for p in projects if p["is_overdue"]]
    return sorted(late, key=lambda p: (fmt.as_date(p.get("deadline")) or date.max, p["project_id"]))


def upcoming(projects: list[dict], as_of: date) -> list[dict]:
    """Unfinished projects whose deadline is still ahead, soonest first: all of them (the project
    furthest behind but due last was the one a limit of five left out, and the list read complete)."""
    # A project without a usable 目标值 has no percent: "目标幢，已完成28幢（）" says nothing.
    ahead = [p for p in projects if fmt.as_date(p.get("deadline")) and fmt.as_date(p["deadline"]) >= as_of
             and p.get("percent") != "" and number(p.get("percent")) < 1.0]
    return sorted(ahead, key=lambda p: (fmt.as_date(p["deadline"]), p["project_id"]))


def progress_context(data: NoticeInput, chart: object = "") -> dict:
    projects = project_rows(data)
    committees = committee_rows(data)
    return {
        **common(data, PROGRESS), "doc_number": doc_number(data),
        "summary": summary(data, projects, committees),
        "categories": category_rows(data), "projects": projects, "committees": committees,
        "lagging_committees": [c for c in committees if c.get("status") == "滞后"],
        "severe_committees": [c for c in committees if c.get("status") == "严重滞后"],
        "overdue_projects": overdue_projects(projects),
        "upcoming": upcoming(projects, data.as_of), "chart": chart, "percent_rule": COMMITTEE_PERCENT_RULE,
    }


def silence_days(data: NoticeInput) -> int:
    return int(setting_value(data.settings, "silence_days"))


def reminder_reasons(committee: dict, overdue_count: int, silence: int) -> list[str]:
    """Why a committee gets a 催办通知 (empty: it does not)."""
    reasons = []
    status = committee.get("status")
    if status in BEHIND:
        # The roll-up's expectation, from its projects' deadlines: the letter says what "behind" means.
        due = "" if clean(committee.get("expected")) == "" else f"，应完成{fmt.pct(committee['expected'])}"
        reasons.append(f"进度{status}（完成率{fmt.pct(committee.get('percent'))}{due}）")
    if overdue_count:
        reasons.append(f"有{overdue_count}项工作已过截止日期仍未完成")
    days = committee.get("days_since_report")
    if committee.get("last_report") == "":
        wrong = int(number(committee.get("unverified")))
        # Every row it filed has an error: "尚未填报台账" would tell it that it never filed.
        reasons.append(f"填报的{wrong}条台账有误，尚待核实（见“校验结果”表）" if wrong else "尚未填报台账")
    elif days != "" and number(days) > silence:
        reasons.append(f"已{int(number(days))}天未填报台账（超过{silence}天）")
    return reasons


def reminder_contexts(data: NoticeInput) -> list[dict]:
    """One context per committee that is behind, has overdue items, or has been silent too long."""
    info = _projects_info(data)
    silence = silence_days(data)
    pairs = data.rollup.committee_projects
    chosen = []
    for committee in committee_rows(data):
        # The roll-up's count (居委会进度 逾期), not a recount of the pairs.
        reasons = reminder_reasons(committee, int(number(committee.get("overdue"))), silence)
        if reasons:
            chosen.append((committee, reasons))
    if not chosen:
        return []
    # Only the chosen committees' pairs become dicts (a district has thousands of pairs).
    wanted = pairs[pairs["committee_id"].isin([c["committee_id"] for c, _ in chosen])]
    by_committee: dict[str, list[dict]] = {}
    for item in records(wanted):
        project = info.get(item["project_id"], {})
        item.update(
            name=project.get("name", item["project_id"]), units=project.get("units", ""),
            indicator_unit=project.get("indicator_unit", ""), deadline=project.get("deadline", ""),
            remaining=remaining(item.get("target"), item.get("achieved")),
        )
        by_committee.setdefault(item["committee_id"], []).append(item)
    base = {**common(data, REMINDER), "doc_number": doc_number(data, 1),
            "reply_by": data.as_of + timedelta(days=REPLY_DAYS), "percent_rule": COMMITTEE_PERCENT_RULE}
    contexts = []
    for committee, reasons in chosen:
        items = by_committee.get(committee["committee_id"], [])
        overdue = [i for i in items if truthy(i.get("overdue"))]
        # Still to do as the roll-up decides it: a pair marked 已完成 is done though short of its
        # target (it is never overdue), so it is not asked for again.
        ahead = [i for i in items if not truthy(i.get("done")) and not truthy(i.get("overdue"))
                 and i["remaining"] != "" and i["remaining"] > 0 and fmt.as_date(i["deadline"]) and fmt.as_date(i["deadline"]) >= data.as_of]
        ahead.sort(key=lambda i: (fmt.as_date(i["deadline"]), i["project_id"]))
        contexts.append({**base, "committee": committee, "reasons": reasons,
                         "overdue_items": overdue, "upcoming_items": ahead})
    return contexts


# ---- configuration-only notices -------------------------------------------------------------

def _rows(frame: pd.DataFrame | None) -> list:
    """The Excel row of each of ``records(frame)`` (for messages naming where to look)."""
    if frame is None or frame.empty:
        return []
    return frame["_row"].tolist() if "_row" in frame else ["?"] * len(frame)


_AGENDA_SPLIT = re.compile(r"[；;\r\n]+")
# "1、通报进度" / "（2）部署" typed by staff would print as "（一）1、通报进度": the template numbers items.
_ITEM_NUMBER = re.compile(r"^(?:[（(][0-9一二三四五六七八九十]+[)）]|[0-9一二三四五六七八九十]+[、.．](?!\d))\s*")


def meeting_contexts(data: NoticeInput, meeting_id: str | None = None) -> list[dict]:
    """One context per 会议 row still to come (on or after ``as_of``), or only ``meeting_id`` (past
    or not); dated ``as_of`` but not after the meeting."""
    contexts = []
    frame = data.frames.get(schema.MEETINGS.name)
    for m, row in zip(records(frame), _rows(frame)):
        if meeting_id and str(m.get("meeting_id")) != meeting_id:
            continue
        when = fmt.as_date(m.get("date"))
        if when is not None and when < data.as_of and not meeting_id:
            continue  # held already: its notice went out then; a new one each night would be noise
        if when is None:  # "定于召开…会议" with no day helps nobody; the 日期 error is in 校验结果
            data.warnings.append(
                f"{schema.MEETINGS.name}表第{row}行（{fmt.text(m.get('meeting_id'))}）"
                f"的“{schema.MEETINGS.header_of('date')}”未填或无法识别，未生成会议通知。")
            continue
        issued = min(data.as_of, when - timedelta(days=1))
        agenda = [a for a in (_ITEM_NUMBER.sub("", a.strip()) for a in _AGENDA_SPLIT.split(str(m.get("agenda") or ""))) if a]
        present = {"place": bool(fmt.text(m.get("place"))), "chair": bool(fmt.text(m.get("chair"))),
                   "attendees": bool(fmt.text(m.get("attendees"))), "agenda": bool(agenda)}
        blank = [schema.MEETINGS.header_of(k) for k, there in present.items() if not there]
        if blank:  # a notice printing headings with nothing under them goes out looking official
            data.warnings.append(f"{schema.MEETINGS.name}表第{row}行（{fmt.text(m.get('meeting_id'))}）的"
                                 f"{''.join(f'“{b}”' for b in blank)}未填，会议通知中略去了这几项；"
                                 "请填写后重新生成。")
        # The sections printed, numbered in turn (一、会议时间 … 有关要求): a blank one is left out.
        shown = ["time", *(k for k, there in present.items() if there), "requirements"]
        meeting = {**m, "date": when, "agenda_items": agenda,
                   "numbers": {k: fmt.cn_numeral(n) for n, k in enumerate(shown, 1)},
                   "start_time": fmt.clock(m.get("start_time")),
                   "issuer": m.get("issuer") or fmt.text(data.settings.get("issuer")),
                   # "联系人：，联系电话：。" when the row leaves them blank: the office's own apply.
                   "contact": m.get("contact") or fmt.text(data.settings.get("contact")),
                   "phone": m.get("phone") or fmt.text(data.settings.get("phone"))}
        # Numbered in turn: a meeting held already takes no 文号 (none left unused between notices).
        contexts.append({**common(data, MEETING), "date": issued, "doc_number": doc_number(data, 2 + len(contexts)),
                         "meeting": meeting})
    return contexts


def link_categories(projects: list[dict]) -> list[dict]:
    """项目 rows by category, as the bulletin's 【链接】 lists them: 项目一、项目二… within each category."""
    order = [c for c in schema.CATEGORIES if any(p.get("category") == c for p in projects)]
    order += [c for c in dict.fromkeys(p.get("category") for p in projects) if c not in order and c]
    result = []
    for category in order:
        group = [p for p in projects if p.get("category") == category]
        result.append({"category": category, "projects": [
            {"numeral": fmt.cn_numeral(n), "name": p.get("name", ""), "units": units_text(p.get("units")) or "",
             "project_id": p.get("project_id", "")}
            for n, p in enumerate(group, 1)]})
    return result


def latest_issue(frame: pd.DataFrame | None) -> int | None:
    values = [int(number(v)) for v in (frame["issue"] if frame is not None and not frame.empty else [])
              if clean(v) != ""]
    return max(values) if values else None


def picture_problem(path: Path) -> str:
    """Why an article's picture cannot go into the bulletin ('' when it can): decided by
    ``pictures.picture_problem``, the rule the picture is then embedded by."""
    return pictures.picture_problem(path, pictures.BULLETIN_PICTURE_MM)


def bulletin_context(data: NoticeInput, issue: int | None = None) -> dict | None:
    """The 工作简报 for ``issue`` (default: the latest 期号 in 简报稿件); None without articles."""
    frame = data.frames.get(schema.ARTICLES.name)
    issue = issue if issue is not None else latest_issue(frame)
    if issue is None:
        return None
    articles = []
    for a, row in zip(records(frame), _rows(frame)):
        if a.get("issue") == "":  # "第6期" typed: an error in 校验结果, and the lead article would vanish
            data.warnings.append(f"{schema.ARTICLES.name}表第{row}行（{fmt.text(a.get('article_id'))}）的"
                                 f"“{schema.ARTICLES.header_of('issue')}”未填或无法识别，未编入简报。")
            continue
        if int(number(a.get("issue"))) != int(issue):
            continue
        body = str(a.get("body") or "")
        a["paragraphs"] = [p.strip() for p in body.replace("\r", "\n").split("\n") if p.strip()]
        a["picture"] = ""
        a["picture_path"] = ""
        if a.get("image"):
            # pics\\photo.jpg typed on Windows must also work where the report runs on Linux.
            path = (data.base_dir or Path(".")) / str(a["image"]).strip().replace("\\", "/")
            problem = picture_problem(path)
            if problem:
                data.warnings.append(f"{schema.ARTICLES.name}表第{row}行（{fmt.text(a.get('article_id'))}）的"
                                     f"“{schema.ARTICLES.header_of('image')}”“{a['image']}”{problem}，"
                                     "简报中已略去这张图片。")
            else:
                a["picture_path"] = str(path)
        articles.append(a)
    if not articles:
        return None
    progress = ""
    if data.rollup is not None:
        projects = project_rows(data)
        committees = committee_rows(data)
        progress = {**summary(data, projects, committees), "categories": category_rows(data)}
    pilot = fmt.text(data.settings.get("pilot_name"))
    return {
        **common(data, BULLETIN), "bulletin_name": fmt.text(data.settings.get("bulletin_name")) or "工作简报",
        "issue": int(issue), "articles": articles, "progress": progress,
        "link_title": f"街道创建{pilot}建设工作项目", "link_categories": link_categories(
            cached_records(data, "projects", data.frames.get(schema.PROJECTS.name))),
    }
