"""Progress roll-ups: who is behind, per committee, project, responsible unit and category.

Pure: takes the validator's normalised frames and returns DataFrames (no files, no Excel).

Definitions (the numbers leaders read, stated once):

- **Counted rows.** A 台账 row counts when it has no validation error, names a known 居委会 and
  项目, and is dated on or before ``as_of`` and — when 设置 年度 is filled in — within that year.
  Rows with an error — or whose committee/project/date cannot be placed — are *待核实* (counted,
  never summed). Warnings do not exclude a row. Rows dated after ``as_of`` are neither: a roll-up
  as of a past date reproduces what was known then. Nor are rows of another year: switching 年度
  to 2021 must not count 2020's work toward 2021's targets (the validator warns on each).
- **Committee target for a project.** The 目标 sheet's value when it has a row for the pair (rows
  with an error are ignored); otherwise an equal share of what the project's street-wide 目标值
  leaves after the 目标 rows (never below zero) among the committees without a row — in whole
  units when that is a whole number, the remainder going one each to the first committees in
  sheet order. A project
  without any 目标 rows is thus split equally among all committees.
- **Percent** is achieved / target as a raw fraction (1.25 = 125 %); empty when the target is
  missing or zero. Display caps at 100 % happen in rendering (and in the sheets' number format).
- **Done / overdue (per committee × project).** The pair is *done* when its latest counted entry
  (by 日期, then row) has 状态 已完成, or when achieved ≥ its target. It is *overdue* when the
  project's 截止日期 is before ``as_of`` (the deadline day itself is not late) and it is not done —
  a committee that never reported on a project past its deadline is overdue on it.
- **Committee overall percent** is the plain mean of its projects' percents, each capped at 100 %,
  over its projects that have a target: every project counts once, whatever its unit (weighting by
  target numbers let 1,000 人次 outweigh 4 场), and running far ahead on one project does not hide
  lag on another (目标合计 and 完成合计 in the sheet are plain sums, shown only when the projects
  share one 指标单位).
- **Project** overdue when any committee is overdue on it; **unit**, **category** and the street's
  overall percent (``meta["average_percent"]``) is the mean of their projects' percents, each
  capped at 100 % (one project at 543 % must not make a category whose other projects are at 1 %
  look done), over the projects that have one — none when none has a target (shown blank in the
  sheets, 暂无目标 in the notices, which take these figures rather than computing their own); their
  overdue count is the number of overdue projects.
- **Expected progress** (应完成) of a project is the share of its work due by the end of
  ``as_of`` when it runs evenly, day by day, from 1 January of the programme year (设置 年度) to
  its own 截止日期: 100 % from the deadline day on (a deadline before the year began is past too),
  0 before the year starts; a project without a usable 截止日期 runs to the year's last day (the
  validator reports the blank or unreadable date), and so does one whose deadline is after the
  year (the validator warns): only the year's rows count (above), so the year's work is all it can
  be judged on. ``elapsed_fraction`` is the only place this is computed. A **committee** expects the
  plain mean of its projects' (over the projects its percent averages); a **unit**, a **category**
  the plain mean over their projects that have a percent (as their average is taken).
- **Traffic light.** shortfall = expected − percent; 严重滞后 when shortfall ≥ 严重滞后阈值, 滞后
  when ≥ 滞后阈值, else 正常 — but anything with overdue work (逾期 above) is at least 滞后: past
  its deadline a project expects 100 %, so the shortfall is all the work still missing and 严重滞后
  follows from the same threshold (no escalation by days overdue: the thresholds keep one meaning,
  points short of where the work should be, and the 逾期 columns show lateness). None when there
  is no percent. ``progress_status`` is the only place this is decided.
- **Wrong year.** A date reported for outside 设置 年度 (before it starts, or after the first quarter
  of the next year: ``reported_in_year``) rolls up nothing true: every expectation, lag and overdue
  would be the wrong year's. The roll-up says why (``Rollup.blocked``) and gives no sheet to write:
  the progress sheets keep what they showed (the validator's 校验结果 names the setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from . import schema
from .book.read import ROW
from .book.write_types import SheetWrite
from .normalise import programme_year, setting_value, split_units, units_text
from .problems import Validation
from .render.fmt import NO_TARGET

TARGET_FROM_SHEET = "目标"
TARGET_SHARED = "分摊"


@dataclass
class Rollup:
    """Progress tables; columns are the output sheets' column keys plus the extras documented below.

    - ``committees``: COMMITTEE_PROGRESS keys (last_report datetime64, percent raw fraction;
      target and achieved NaN where its projects' 指标单位 differ) + ``indicator_unit`` (the unit
      they share; None when they differ or none is typed).
    - ``projects``: PROJECT_PROGRESS keys (overdue bool) + ``indicator_unit``.
    - ``units``: UNIT_PROGRESS keys + ``project_ids`` (、-joined).
    - ``categories``: CATEGORY_BLOCK keys + ``project_ids``, ``unverified``.
    - ``committee_projects``: one row per committee × project: committee_id, committee_name,
      project_id, project_name, target, target_source (目标/分摊), achieved, percent, entries,
      last_report, latest_status, deadline, done, overdue, expected.
    - every table also has ``expected`` (raw fraction: what should be done by now, see the module
      docstring; in ``committee_projects`` the project's).
    - ``meta``: as_of (date), year, expected (elapsed fraction of the programme year: the
      expectation of a project without a deadline), lag_threshold,
      severe_lag_threshold, rows_total, rows_used, rows_unverified, rows_after_as_of, rows_other_year,
      average_percent (all projects, as categories average; None when no project has a target).
    """

    committees: pd.DataFrame
    projects: pd.DataFrame
    units: pd.DataFrame
    categories: pd.DataFrame
    committee_projects: pd.DataFrame
    meta: dict = field(default_factory=dict)
    # Why these figures must not be shown (the date reported for is not in 设置 年度), else "":
    # ``rollup_sheets`` then gives nothing to write and ``who_is_behind`` nothing to tell.
    blocked: str = ""

    def committee_chart(self) -> pd.DataFrame:
        """Data for the per-committee progress chart: one bar per committee, expected as a line.

        Columns: committee_id, committee_name, percent (raw), percent_display (capped at 1,
        0 when there is no target), status, expected (each committee's own: its projects'
        deadlines differ).
        """
        chart = self.committees[["committee_id", "committee_name", "percent", "status", "expected"]].copy()
        chart.insert(3, "percent_display", capped(chart["percent"]).fillna(0.0))
        return chart.reset_index(drop=True)

    def to_dict(self) -> dict:
        """Plain data for ``--json`` and for renderers: tables as lists of records (dates ISO); a
        ``blocked`` roll-up's tables are None (the wrong year's figures are not given)."""
        tables = {
            name: None if self.blocked else _records(getattr(self, name), iso=True)
            for name in ("committees", "projects", "units", "categories", "committee_projects")
        }
        meta = {**self.meta, "as_of": self.meta["as_of"].isoformat()}
        return {"meta": meta, "blocked": self.blocked, **tables}


# What each 完成率 is, said where it is shown (the sheets' banners, the 催办通知): exactly what
# ``_committee_table`` and ``_group_projects`` compute.
COMMITTEE_PERCENT_RULE = "为各项目完成率的平均，每个项目同等计入，单项超过100%的按100%计，没有目标的项目不计"
AVERAGE_PERCENT_RULE = "平均完成率为所列项目完成率的平均（单项超过100%的按100%计，没有目标的项目不计）"
COMMITTEE_TOTALS_RULE = ("目标合计、完成合计只在该居委会各项目指标单位相同时给出；单位不同（如人次、场、幢）"
                         f"不能相加，留空，各项目的数量见“{schema.PROJECT_PROGRESS.name}”表")

# A 完成率 counts and shows as at most 100 % (the sheets' PERCENT_CAPPED_FORMAT, the averages,
# the notices): 543 % of one project must not hide another's 20 %.
PERCENT_CAP = 1.0


def capped(percent: pd.Series) -> pd.Series:
    """Percent as displayed: at most 1 (100 %); missing stays missing."""
    return percent.clip(upper=PERCENT_CAP)


def progress_status(percent: pd.Series, expected: float | pd.Series, lag: float, severe: float,
                    overdue: pd.Series | None = None) -> pd.Series:
    """正常 / 滞后 / 严重滞后 by how far ``percent`` falls short of ``expected`` (a fraction, or one
    per row); a row with ``overdue`` work (a true flag or a count above 0) is at least 滞后: green
    beside 是否逾期 是 would contradict itself. None without a percent."""
    shortfall = (expected - percent.astype(float)).round(9)  # 0.15 must stay 0.15, not 0.1499999
    late = np.zeros(len(percent), dtype=bool) if overdue is None else (overdue.to_numpy() > 0)
    status = np.select(
        [(shortfall >= severe).to_numpy(), (shortfall >= lag).to_numpy() | late],
        [schema.PROGRESS_SEVERE, schema.PROGRESS_LAG],
        schema.PROGRESS_OK,
    ).astype(object)
    status[percent.isna().to_numpy()] = None
    return pd.Series(status, index=percent.index, dtype=object)


# (month, day) of the next year: the last day a year's final standing is reported on.
FINAL_REPORTS_UNTIL = (3, 31)


def reported_in_year(as_of: date, year: int) -> bool:
    """Whether ``as_of`` is a date programme year ``year`` is reported for: in the year, or in the
    next year's first quarter (the year's final standing, its last rows counted)."""
    return date(year, 1, 1) <= as_of <= date(year + 1, *FINAL_REPORTS_UNTIL)


def year_mismatch_text(as_of: date, year: int) -> str:
    """The words the validator and a blocked roll-up both say (``reported_in_year`` false)."""
    return f"统计截止日期 {as_of.isoformat()} 不在试点年度 {year} 年内"


def elapsed_fraction(as_of: date, year: int, deadline: date | None = None) -> float:
    """Share of the work due by the end of ``as_of`` when it runs evenly from 1 January of ``year``
    to ``deadline`` (the year's last day without one): 0 before the year starts, 1 from the
    deadline day on — a deadline before the year began is past as well, one after it is the
    year's last day."""
    start, year_end = date(year, 1, 1), date(year, 12, 31)
    end = min(deadline, year_end) if deadline else year_end  # rows after the year are not counted
    if as_of >= end:
        return 1.0
    if as_of < start:
        return 0.0
    return ((as_of - start).days + 1) / ((end - start).days + 1)


def thresholds(settings: dict) -> tuple[float, float]:
    """(滞后阈值, 严重滞后阈值) from 设置 as ``normalise.read_setting`` reads them (blank or unusable:
    the contract's defaults)."""
    lag, severe = (float(setting_value(settings, key)) for key in THRESHOLDS)
    return lag, severe


def rollup(validation: Validation, settings: dict, as_of: date) -> Rollup:
    """Roll the validated workbook up as of ``as_of`` (see the module docstring for definitions)."""
    frames = validation.frames
    asof = pd.Timestamp(as_of)
    year = _setting_year(settings, as_of)
    lag, severe = thresholds(settings)
    expected = elapsed_fraction(as_of, year)

    def status(table: pd.DataFrame, percent: str = "percent") -> pd.Series:
        return progress_status(table[percent], table["expected"], lag, severe, table["overdue"])

    committees = _committees(frames[schema.COMMITTEES.name])
    projects = _projects(frames[schema.PROJECTS.name])
    projects["expected"] = [elapsed_fraction(as_of, year, None if pd.isna(d) else d.date())
                            for d in projects["deadline"]]
    explicit = _explicit_targets(
        frames.get(schema.TARGETS.name), validation.error_rows(schema.TARGETS.name), committees, projects
    )
    ledger = _ledger(frames[schema.LEDGER.name])

    is_error = ledger["row"].isin(validation.error_rows(schema.LEDGER.name))
    placed = (
        ledger["committee_id"].isin(committees["committee_id"])
        & ledger["project_id"].isin(projects["project_id"])
        & ledger["date"].notna()
    ).fillna(False).astype(bool)
    after = ~is_error & placed & (ledger["date"] > asof)
    typed_year = programme_year(settings)  # None when 年度 is blank (the validator warns): all years count
    other_year = ~is_error & placed & ~after & (ledger["date"].dt.year != typed_year if typed_year else False)
    used = ledger[~is_error & placed & ~after & ~other_year]
    unverified = ledger[is_error | ~placed]

    pairs = _committee_projects(committees, projects, explicit, used, asof)
    units = pairs["project_id"].map(projects.set_index("project_id")["indicator_unit"])
    by_committee = _committee_table(committees, pairs, units, used, unverified, asof, status)
    by_project = _project_table(projects, pairs, used, unverified, status)
    by_unit = _unit_table(by_project, status)
    by_category = _category_table(by_project, status)

    meta = {
        "as_of": as_of,
        "year": year,
        "expected": expected,
        "lag_threshold": lag,
        "severe_lag_threshold": severe,
        "rows_total": len(ledger),
        "rows_used": len(used),
        "rows_unverified": len(unverified),
        "rows_after_as_of": int(after.sum()),
        "rows_other_year": int(other_year.sum()),
        "average_percent": _mean_capped(by_project["percent"]),
    }
    blocked = "" if typed_year is None or reported_in_year(as_of, typed_year) else (
        f"{year_mismatch_text(as_of, typed_year)}"
        f"（{typed_year} 年 1 月 1 日至 {typed_year + 1} 年 {FINAL_REPORTS_UNTIL[0]} 月 {FINAL_REPORTS_UNTIL[1]} 日）")
    return Rollup(by_committee, by_project, by_unit, by_category, pairs, meta, blocked)


# --- inputs -------------------------------------------------------------------------------------

def _key(series: pd.Series) -> pd.Series:
    """Keys and short texts as strings (NA when blank), so merges match whatever the cell held."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def _committees(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"committee_id": _key(frame["committee_id"]), "committee_name": _key(frame["name"])})
    return out.dropna(subset=["committee_id"]).drop_duplicates("committee_id").reset_index(drop=True)


def _projects(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "project_id": _key(frame["project_id"]),
        "category": _key(frame["category"]),
        "name": _key(frame["name"]),
        # As every sheet and notice shows them: the units read by ``split_units``, joined by 、.
        "units": _key(frame["units"].map(units_text, na_action="ignore")),
        "indicator_unit": _key(frame["indicator_unit"]),
        "target": pd.to_numeric(frame["target"], errors="coerce").astype(float),
        "deadline": _dates(frame["deadline"]),
    })
    return out.dropna(subset=["project_id"]).drop_duplicates("project_id").reset_index(drop=True)


def _explicit_targets(
    frame: pd.DataFrame | None, error_rows: set[int], committees: pd.DataFrame, projects: pd.DataFrame
) -> pd.DataFrame:
    columns = ["committee_id", "project_id", "explicit_target"]
    if frame is None or frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="string" if c != "explicit_target" else float)
                             for c in columns})
    out = pd.DataFrame({
        "committee_id": _key(frame["committee_id"]),
        "project_id": _key(frame["project_id"]),
        "explicit_target": pd.to_numeric(frame["target"], errors="coerce").astype(float),
    })
    keep = (
        ~frame[ROW].isin(error_rows)
        & out["committee_id"].isin(committees["committee_id"])
        & out["project_id"].isin(projects["project_id"])
        & out["explicit_target"].notna()
    ).fillna(False).astype(bool)
    return out[keep].drop_duplicates(["committee_id", "project_id"])[columns]


def _ledger(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "row": frame[ROW].astype(int),
        "date": _dates(frame["date"]),
        "committee_id": _key(frame["committee_id"]),
        "project_id": _key(frame["project_id"]),
        "quantity": pd.to_numeric(frame["quantity"], errors="coerce").astype(float),
        "status": _key(frame["status"]),
    })


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, errors="coerce").astype("datetime64[ns]").dt.normalize()


# --- tables -------------------------------------------------------------------------------------

def _committee_projects(
    committees: pd.DataFrame, projects: pd.DataFrame, explicit: pd.DataFrame, used: pd.DataFrame,
    asof: pd.Timestamp,
) -> pd.DataFrame:
    grid = committees.merge(
        projects[["project_id", "name", "target", "deadline", "expected"]].rename(
            columns={"name": "project_name", "target": "project_target"}),
        how="cross",
    ).merge(explicit, on=["committee_id", "project_id"], how="left")

    has_row = grid["explicit_target"].notna()
    per_project = (
        grid.assign(given=grid["explicit_target"].fillna(0.0), missing=~has_row)
        .groupby("project_id", sort=False)
        .agg(given=("given", "sum"), missing=("missing", "sum"))
    )
    left = (projects.set_index("project_id")["target"] - per_project["given"]).clip(lower=0.0)
    count = per_project["missing"].where(per_project["missing"] > 0)
    # Whole targets are shared out in whole units (40 场 among 13: 4 × 1 + 9 × 3), the extra
    # units going to the first committees in sheet order; fractional targets are split evenly.
    whole = np.isclose(left, np.round(left))
    base = pd.Series(np.where(whole, np.floor(left / count), left / count), index=left.index)
    extra = pd.Series(np.where(whole, np.round(left - base * count), 0.0), index=left.index)
    rank = grid.assign(missing=~has_row).groupby("project_id", sort=False)["missing"].cumsum() - 1
    grid["share"] = grid["project_id"].map(base) + (rank < grid["project_id"].map(extra)).astype(float)
    grid["target"] = grid["explicit_target"].where(has_row, grid["share"])
    grid["target_source"] = np.where(has_row, TARGET_FROM_SHEET, TARGET_SHARED)

    ordered = used.sort_values(["date", "row"])
    activity = ordered.groupby(["committee_id", "project_id"], sort=False).agg(
        entries=("row", "size"),
        achieved=("quantity", "sum"),
        last_report=("date", "max"),
        latest_status=("status", "last"),
    )
    grid = grid.merge(activity, left_on=["committee_id", "project_id"], right_index=True, how="left")
    grid["entries"] = grid["entries"].fillna(0).astype(int)
    grid["achieved"] = grid["achieved"].fillna(0.0)
    grid["percent"] = _ratio(grid["achieved"], grid["target"])
    grid["done"] = (
        grid["latest_status"].eq(schema.DONE_STATUS).fillna(False).astype(bool)
        | (grid["target"].notna() & (grid["achieved"] >= grid["target"]))
    )
    grid["overdue"] = (grid["deadline"].notna() & (grid["deadline"] < asof) & ~grid["done"]).astype(bool)
    return grid[[
        "committee_id", "committee_name", "project_id", "project_name", "target", "target_source",
        "achieved", "percent", "entries", "last_report", "latest_status", "deadline", "done", "overdue",
        "expected",
    ]].reset_index(drop=True)


def _committee_table(committees, pairs, units, used, unverified, asof, status) -> pd.DataFrame:
    with_target = pairs["target"].notna()
    totals = (
        pairs.assign(
            # The 指标单位 of each project counted in the totals; a blank one is unknown, so unlike
            # any other, another blank too (人次 and 场 both left blank are no total either).
            unit=units.fillna("").mask(units.fillna("") == "", [f"\x00{i}" for i in range(len(units))]).where(with_target),
            t=pairs["target"].where(with_target),
            a=pairs["achieved"].where(with_target, 0.0),
            # Each project counts once, whatever its unit (1,000 人次 must not outweigh 4 场), and
            # over-achieving one must not hide lag on another: its percent capped at 100 %.
            share=(pairs["achieved"] / pairs["target"]).clip(upper=PERCENT_CAP).where(with_target & (pairs["target"] > 0)),
            # Expected is averaged as the percent is, over the same projects.
            due=pairs["expected"].where(with_target & (pairs["target"] > 0)),
        )
        .groupby("committee_id", sort=False)
        .agg(target=("t", "sum"), achieved=("a", "sum"), percent=("share", "mean"),
             expected=("due", "mean"), overdue=("overdue", "sum"),
             units=("unit", "nunique"), unit=("unit", "first"))
    )
    reports = used.groupby("committee_id").agg(entries=("row", "size"), last_report=("date", "max"))
    out = (
        committees.merge(reports, left_on="committee_id", right_index=True, how="left")
        .merge(totals, left_on="committee_id", right_index=True, how="left")
        .merge(_counts(unverified, "committee_id"), left_on="committee_id", right_index=True, how="left")
    )
    out["entries"] = out["entries"].fillna(0).astype(int)
    out["days_since_report"] = (asof - out["last_report"]).dt.days.astype("Int64")
    out["target"] = out["target"].fillna(0.0)
    out["achieved"] = out["achieved"].fillna(0.0)
    out["percent"] = out["percent"].astype(float)
    out["expected"] = out["expected"].astype(float)
    # 人次 + 场 + 幢 is no total: shown blank (the percent above weighs them as documented).
    mixed = (out["units"] > 1).fillna(False).to_numpy(dtype=bool)
    out.loc[mixed, ["target", "achieved"]] = np.nan
    out["indicator_unit"] = [u if not m and isinstance(u, str) and u and not u.startswith("\x00") else None
                             for u, m in zip(out["unit"], mixed)]
    out["overdue"] = out["overdue"].fillna(0).astype(int)
    out["unverified"] = out["unverified"].fillna(0).astype(int)
    out["status"] = status(out)
    return out[[*schema.COMMITTEE_PROGRESS.keys, "indicator_unit", "expected"]].reset_index(drop=True)


def _project_table(projects, pairs, used, unverified, status) -> pd.DataFrame:
    done = used.groupby("project_id").agg(
        achieved=("quantity", "sum"), committees_reported=("committee_id", "nunique"))
    late = pairs.groupby("project_id").agg(overdue_committees=("overdue", "sum"))
    out = (
        projects.merge(done, left_on="project_id", right_index=True, how="left")
        .merge(late, left_on="project_id", right_index=True, how="left")
        .merge(_counts(unverified, "project_id"), left_on="project_id", right_index=True, how="left")
    )
    out["achieved"] = out["achieved"].fillna(0.0)
    out["percent"] = _ratio(out["achieved"], out["target"])
    for col in ("committees_reported", "overdue_committees", "unverified"):
        out[col] = out[col].fillna(0).astype(int)
    out["overdue"] = out["overdue_committees"] > 0
    out["status"] = status(out)
    return out[[*schema.PROJECT_PROGRESS.keys, "indicator_unit", "expected"]].reset_index(drop=True)


def _unit_table(projects: pd.DataFrame, status) -> pd.DataFrame:
    led = projects.assign(unit=projects["units"].map(split_units, na_action="ignore")).explode("unit")
    led["unit"] = _key(led["unit"])
    led = led.dropna(subset=["unit"]).drop_duplicates(["unit", "project_id"])
    out = _group_projects(led, "unit")
    out["status"] = status(out, "average_percent")
    return out[[*schema.UNIT_PROGRESS.keys, "project_ids", "expected"]]


def _category_table(projects: pd.DataFrame, status) -> pd.DataFrame:
    known = [c for c in schema.CATEGORIES if c in set(projects["category"].dropna())]
    others = [c for c in projects["category"].dropna().unique() if c not in schema.CATEGORIES]
    out = _group_projects(projects.dropna(subset=["category"]), "category")
    out = out.set_index("category").loc[[*known, *others]].reset_index()
    out["status"] = status(out, "average_percent")
    return out[[*schema.CATEGORY_BLOCK.keys, "project_ids", "unverified", "expected"]]


def _group_projects(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    # Expected is averaged over the projects whose percent is: a project without a target adds none.
    frame = frame.assign(expected=frame["expected"].where(frame["percent"].notna()))
    out = frame.groupby(by, sort=False).agg(
        projects=("project_id", "size"),
        project_names=("name", lambda names: "、".join(names.fillna(""))),
        project_ids=("project_id", "、".join),
        average_percent=("percent", _mean_capped),
        expected=("expected", "mean"),
        overdue=("overdue", "sum"),
        unverified=("unverified", "sum"),
    ).reset_index()
    out["overdue"] = out["overdue"].astype(int)
    return out


def _mean_capped(percent: pd.Series) -> float | None:
    """Mean of the percents there are, each capped at 100 % (units, categories, the whole street);
    None when none has one — no target is not 0 % done."""
    mean = capped(percent).mean()
    return None if pd.isna(mean) else float(mean)


def _counts(rows: pd.DataFrame, by: str) -> pd.DataFrame:
    return rows.groupby(by).size().rename("unverified").to_frame()


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype(float)


THRESHOLDS = ("lag_threshold", "severe_lag_threshold")


def _setting_year(settings: dict, as_of: date) -> int:
    return programme_year(settings) or as_of.year


# --- output sheets ------------------------------------------------------------------------------

def rollup_note(result: Rollup) -> str:
    """The banner each output sheet carries: when, from how many rows, and the thresholds."""
    meta = result.meta
    note = (
        f"截至 {meta['as_of']:%Y-%m-%d} 由 {meta['rows_used']} 条台账计算（待核实 {meta['rows_unverified']} 条）"
    )
    if meta["rows_after_as_of"]:
        note += f"，另有 {meta['rows_after_as_of']} 条晚于截至日期未计入"
    if meta.get("rows_other_year"):
        note += f"，{meta['rows_other_year']} 条不在 {meta['year']} 年度内未计入"
    return note + (
        f"。应完成比例按各项目截止日期计算：自 {meta['year']} 年 1 月 1 日起按天推进，到截止日期为 100%"
        f"（未填截止日期的到年底，本年度已过 {meta['expected']:.1%}）；完成率低于应完成比例 "
        f"{meta['lag_threshold'] * 100:g} 个百分点为滞后、{meta['severe_lag_threshold'] * 100:g} 个百分点为严重滞后，"
        "有逾期未完成事项的至少为滞后。完成率超过 100% 时显示为 100%，单元格保留实际值。"
    )


def rollup_sheets(result: Rollup) -> list[SheetWrite]:
    """居委会进度, 项目进度 and 单位进度 (with the category block below) for a writer; each banner
    says what its 完成率 is. None for a ``blocked`` roll-up: the sheets keep what they showed
    (``not_refreshed_text`` says why), rather than the wrong year's figures."""
    if result.blocked:
        return []
    note = rollup_note(result)
    committee_note = f"{note}居委会的完成率{COMMITTEE_PERCENT_RULE}。{COMMITTEE_TOTALS_RULE}。"
    project_note = f"{note}完成率为完成数量除以目标值。"
    unit_note = f"{note}{AVERAGE_PERCENT_RULE}。"

    committees = _records(result.committees[schema.COMMITTEE_PROGRESS.keys])
    committee_fills = _status_fills(committees)

    project_frame = result.projects[schema.PROJECT_PROGRESS.keys].copy()
    project_frame["overdue"] = np.where(project_frame["overdue"], "是", "否")
    projects = _records(project_frame)
    project_fills = _status_fills(projects)

    units = _records(result.units[schema.UNIT_PROGRESS.keys])
    categories = _records(result.categories[schema.CATEGORY_BLOCK.keys])
    unit_fills = _status_fills(units, percent="average_percent")
    block_start = len(units) + 2  # a blank row, then the block's own header row
    position = dict(zip(schema.CATEGORY_BLOCK.keys, schema.UNIT_PROGRESS.keys))
    block_header = dict(zip(schema.UNIT_PROGRESS.keys, schema.CATEGORY_BLOCK.headers))
    block = [{position[k]: v for k, v in row.items()} for row in categories]
    unit_fills.update({
        (block_start + i, position[col]): level
        for (i, col), level in _status_fills(categories, percent="average_percent").items()
    })
    unit_rows = [*units, {}, block_header, *block] if block else units

    return [
        SheetWrite(schema.COMMITTEE_PROGRESS, committees, committee_note, committee_fills),
        SheetWrite(schema.PROJECT_PROGRESS, projects, project_note, project_fills),
        SheetWrite(schema.UNIT_PROGRESS, unit_rows, unit_note, unit_fills),
    ]


def _status_fills(rows: list[dict], percent: str = "percent") -> dict[tuple[int, str], str]:
    # Percent and status cells take the status colour; overdue counts red, 待核实 counts yellow.
    fills: dict[tuple[int, str], str] = {}
    for i, row in enumerate(rows):
        if row.get("status"):
            fills[(i, "status")] = fills[(i, percent)] = row["status"]
        if row.get("overdue") and row["overdue"] not in (0, "否"):
            fills[(i, "overdue")] = schema.PROGRESS_SEVERE
        if row.get("unverified"):
            fills[(i, "unverified")] = schema.LEVEL_WARNING
    return fills


def _records(frame: pd.DataFrame, iso: bool = False) -> list[dict]:
    """Rows as plain Python values: dates as ``date`` (or ISO text), NaN/NA as None."""
    plain = frame.copy()
    for col in plain.columns:
        if pd.api.types.is_datetime64_any_dtype(plain[col]):
            dates = plain[col].dt.strftime("%Y-%m-%d") if iso else plain[col].dt.date
            plain[col] = dates.astype(object).where(plain[col].notna(), None)
    plain = plain.astype(object)
    return plain.where(plain.notna(), None).to_dict("records")


PROGRESS_SHEETS = (schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS, schema.UNIT_PROGRESS)


def not_refreshed_text(result: Rollup) -> str:
    """Why a ``blocked`` roll-up wrote no progress sheet, in Chinese ("" when it is not blocked)."""
    if not result.blocked:
        return ""
    names = "".join(f"“{s.name}”" for s in PROGRESS_SHEETS)
    return (f"进度表未更新：{result.blocked}，按这一年度算出的应完成比例、滞后和逾期都不对，"
            f"{names}保持上次的内容。请按“{schema.ISSUES.name}”表改正“{schema.SETTINGS_BY_KEY['year'].item}”"
            "或统计截止日期后重新生成。")


def rollup_text(result: Rollup) -> str:
    """A few Chinese lines for the terminal: the banner, then each committee and who is behind
    (for a ``blocked`` roll-up, why no figure is shown)."""
    if result.blocked:
        return not_refreshed_text(result)
    lines = [rollup_note(result), f"项目平均完成率 {_percent_text(result.meta['average_percent'])}", "居委会进度："]
    for row in _records(result.committees):
        lines.append(
            f"  {row['committee_id']} {row['committee_name'] or ''}　完成率 {_percent_text(row['percent'])}"
            + (f"（应完成 {row['expected']:.1%}）" if row["percent"] is not None else "")
            + f"　逾期 {row['overdue']} 项　"
            + (f"{row['days_since_report']} 天未填报" if row["last_report"] else "尚未填报")
            + (f"　{row['status']}" if row["status"] else "")
        )
    return "\n".join(lines + who_is_behind(result))


def who_is_behind(result: Rollup) -> list[str]:
    """Who is behind and which projects are overdue, a line each: what a clerk wants from a run
    without opening three sheets (the terminal, the Excel buttons' boxes). Nothing for a
    ``blocked`` roll-up: its figures are the wrong year's."""
    if result.blocked:
        return []
    behind = result.committees[result.committees["status"].isin(schema.PROGRESS_STATUSES[1:])]
    lines = [
        f"居委会滞后 {int((behind['status'] == schema.PROGRESS_LAG).sum())} 个、"
        f"严重滞后 {int((behind['status'] == schema.PROGRESS_SEVERE).sum())} 个"
        + (f"：{'、'.join(behind['committee_name'].fillna(behind['committee_id']))}。" if len(behind) else "。")
    ]
    late = result.projects[result.projects["overdue"]]
    if len(late):
        lines.append("逾期项目：" + "、".join(
            f"{p} {n}（{c} 个居委会）" for p, n, c in zip(late["project_id"], late["name"],
                                                    late["overdue_committees"])))
    return lines


def _percent_text(value: float | None) -> str:
    if value is None:
        return NO_TARGET
    return f"{value:.1%}" if value <= 1 else f"100.0%（实际 {value:.1%}）"
