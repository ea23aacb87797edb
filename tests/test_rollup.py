"""Roll-ups on small hand-made normalised frames, checked against a plain-Python computation."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pandas as pd
import pytest

from macros import schema
from macros.book.write_types import FILLS
from macros.problems import Problem, Validation
from macros.rollup import elapsed_fraction, progress_status, rollup, rollup_sheets

AS_OF = date(2020, 11, 15)
SETTINGS = {"year": 2020, "lag_threshold": 0.15, "severe_lag_threshold": 0.30}


def typed_frame(sheet: schema.Sheet, rows: list[dict]) -> pd.DataFrame:
    """A frame as the normaliser returns it: dates datetime64, numbers float64, text str/None."""
    data = {}
    for col in sheet.columns:
        values = [row.get(col.key) for row in rows]
        if col.type == "date":
            data[col.key] = pd.to_datetime(pd.Series(values, dtype=object)).astype("datetime64[ns]")
        elif col.type in ("number", "integer"):
            data[col.key] = pd.Series(values, dtype=object).astype(float)
        else:
            data[col.key] = pd.Series(values, dtype=object)
    frame = pd.DataFrame(data)
    frame["_row"] = list(range(2, len(rows) + 2))
    return frame


def project(pid, category, units, target, deadline, name=None):
    return {"project_id": pid, "category": category, "name": name or f"项目{pid}", "units": units,
            "target": target, "deadline": deadline, "indicator_unit": "人次"}


def entry(day, cid, pid, qty, status="进行中"):
    return {"date": day, "committee_id": cid, "project_id": pid, "activity": "活动", "quantity": qty,
            "status": status}


# C03 has no entries; P02 has no 目标 rows; 发展办 leads P01, P02 and P03; P01 has a 目标 row for C01 only.
PROJECTS = [
    project("P01", "健康社会类", "发展办、党建办", 300, date(2020, 12, 15)),
    project("P02", "健康社会类", "发展办", 90, date(2020, 10, 31)),
    project("P03", "健康人群类", "社区卫生服务中心、发展办", 30, date(2020, 11, 30)),
]
COMMITTEES = [{"committee_id": c, "name": f"{c}居委会"} for c in ("C01", "C02", "C03")]
TARGETS = [{"project_id": "P01", "committee_id": "C01", "target": 150},
           {"project_id": "P03", "committee_id": "C02", "target": 12}]
LEDGER = [
    entry(date(2020, 3, 1), "C01", "P01", 60),
    entry(date(2020, 9, 1), "C01", "P01", 70),
    entry(date(2020, 5, 1), "C01", "P02", 25, "已完成"),        # done by status though short of 30
    entry(date(2020, 6, 1), "C02", "P02", 20),
    entry(date(2020, 7, 1), "C02", "P02", 15),                  # reached its share (30) without 已完成
    entry(date(2020, 8, 1), "C02", "P01", 999),                 # carries an error: left out
    entry(date(2020, 8, 2), "C02", "P01", 40),                  # carries a warning: counted
    entry(date(2020, 11, 1), "C02", "P03", 12, "已完成"),
    entry(date(2020, 11, 20), "C01", "P03", 5),                 # after AS_OF: not counted
    entry(date(2020, 10, 1), "C09", "P01", 5),                  # unknown committee: 待核实
]
ERROR_ROW = 2 + 5
WARNING_ROW = 2 + 6


def validation(ledger=LEDGER, projects=PROJECTS, targets=TARGETS, problems=None) -> Validation:
    frames = {
        schema.PROJECTS.name: typed_frame(schema.PROJECTS, projects),
        schema.COMMITTEES.name: typed_frame(schema.COMMITTEES, COMMITTEES),
        schema.TARGETS.name: typed_frame(schema.TARGETS, targets),
        schema.LEDGER.name: typed_frame(schema.LEDGER, ledger),
    }
    if problems is None:
        problems = [
            Problem(schema.LEDGER.name, ERROR_ROW, "完成数量", None, schema.LEVEL_ERROR, "bad_number", "无法识别"),
            Problem(schema.LEDGER.name, WARNING_ROW, "日期", None, schema.LEVEL_WARNING, "guessed", "按…处理"),
        ]
    return Validation(frames, problems)


def due_by(as_of, deadline, year=2020):
    """What share of a project should be done by the end of ``as_of``: days from 1 January to
    the deadline (the year's last day without one, or when it is later), counted the long way."""
    days = [date(year, 1, 1) + timedelta(n) for n in range(800)]
    window = [d for d in days if d <= min(deadline or date(year, 12, 31), date(year, 12, 31))]
    if not window:  # a deadline before the year began
        return 1.0 if as_of >= deadline else 0.0
    return sum(d <= as_of for d in window) / len(window)


def light(percent, expected, overdue, lag=0.15, severe=0.30):
    if percent is None:
        return None
    short = round(expected - percent, 9)
    if short >= severe:
        return "严重滞后"
    return "滞后" if short >= lag or overdue else "正常"


def reference(projects, committees, targets, ledger, error_rows, as_of):
    """Plain-Python roll-up: the definitions of macros.rollup, written the long way."""
    cids = [c["committee_id"] for c in committees]
    pids = [p["project_id"] for p in projects]
    used, unverified = [], []
    for row_number, row in enumerate(ledger, start=2):
        row = {**row, "_row": row_number}
        placeable = row["committee_id"] in cids and row["project_id"] in pids and row["date"]
        if row_number in error_rows or not placeable:
            unverified.append(row)
        elif row["date"] <= as_of:
            used.append(row)
    explicit = {(t["project_id"], t["committee_id"]): t["target"] for t in targets}
    pairs = {}
    for p in projects:
        pid = p["project_id"]
        given = sum(v for (tp, _c), v in explicit.items() if tp == pid)
        without = [c for c in cids if (pid, c) not in explicit]
        left = max(p["target"] - given, 0)
        for c in cids:
            if (pid, c) in explicit:
                target = explicit[(pid, c)]
            elif left == int(left):
                target = left // len(without) + (without.index(c) < left % len(without))
            else:
                target = left / len(without)
            rows = [r for r in used if r["committee_id"] == c and r["project_id"] == pid]
            achieved = sum(r["quantity"] for r in rows)
            latest = max(rows, key=lambda r: (r["date"], r["_row"]))["status"] if rows else None
            done = latest == "已完成" or achieved >= target
            pairs[(c, pid)] = {"target": target, "achieved": achieved,
                               "overdue": p["deadline"] < as_of and not done,
                               "expected": due_by(as_of, p["deadline"])}
    committees_out = {}
    for c in cids:
        mine = [v for (cc, _p), v in pairs.items() if cc == c]
        rows = [r for r in used if r["committee_id"] == c]
        target = sum(v["target"] for v in mine)
        achieved = sum(v["achieved"] for v in mine)
        capped = sum(min(v["achieved"], v["target"]) for v in mine)
        last = max((r["date"] for r in rows), default=None)
        percent = capped / target if target else None
        expected = sum(v["target"] * v["expected"] for v in mine) / target if target else None
        overdue = sum(v["overdue"] for v in mine)
        same_unit = len({p.get("indicator_unit") or "" for p in projects}) == 1  # 人次 + 场 is no total: None
        committees_out[c] = {
            "entries": len(rows), "target": target if same_unit else None,
            "achieved": achieved if same_unit else None,
            "percent": percent, "expected": expected, "status": light(percent, expected, overdue),
            "overdue": overdue,
            "last_report": last, "days_since_report": (as_of - last).days if last else None,
            "unverified": sum(1 for r in unverified if r["committee_id"] == c),
        }
    projects_out = {}
    for p in projects:
        pid = p["project_id"]
        rows = [r for r in used if r["project_id"] == pid]
        achieved = sum(r["quantity"] for r in rows)
        late = sum(v["overdue"] for (_c, pp), v in pairs.items() if pp == pid)
        expected = due_by(as_of, p["deadline"])
        projects_out[pid] = {
            "achieved": achieved, "percent": achieved / p["target"], "expected": expected,
            "status": light(achieved / p["target"], expected, late > 0),
            "committees_reported": len({r["committee_id"] for r in rows}),
            "overdue": late > 0, "overdue_committees": late,
            "unverified": sum(1 for r in unverified if r["project_id"] == pid),
        }
    units_out = {}
    for p in projects:
        for unit in p["units"].split("、"):
            units_out.setdefault(unit, []).append(p["project_id"])
    units_out = {
        u: {"projects": len(ps),
            "average_percent": sum(min(projects_out[q]["percent"], 1) for q in ps) / len(ps),
            "expected": sum(projects_out[q]["expected"] for q in ps) / len(ps),
            "overdue": sum(projects_out[q]["overdue"] for q in ps)}
        for u, ps in units_out.items()
    }
    for unit in units_out.values():
        unit["status"] = light(unit["average_percent"], unit["expected"], unit["overdue"])
    return {"pairs": pairs, "committees": committees_out, "projects": projects_out, "units": units_out,
            "used": len(used), "unverified": len(unverified)}


def assert_close(actual, expected, what):
    if isinstance(expected, str):
        assert actual == expected, what
    elif expected is None:
        assert actual is None or (isinstance(actual, float) and math.isnan(actual)), what
    else:
        assert actual == pytest.approx(expected), what


def check_against_reference(result, ref):
    committees = result.committees.set_index("committee_id")
    for cid, want in ref["committees"].items():
        got = committees.loc[cid]
        for key in ("entries", "target", "achieved", "percent", "expected", "status", "overdue", "unverified"):
            assert_close(got[key], want[key], f"{cid} {key}")
        if want["last_report"] is None:
            assert pd.isna(got["last_report"]) and pd.isna(got["days_since_report"])
        else:
            assert got["last_report"].date() == want["last_report"]
            assert got["days_since_report"] == want["days_since_report"]
    projects = result.projects.set_index("project_id")
    for pid, want in ref["projects"].items():
        for key, value in want.items():
            assert_close(projects.loc[pid, key], value, f"{pid} {key}")
    pairs = result.committee_projects.set_index(["committee_id", "project_id"])
    for (cid, pid), want in ref["pairs"].items():
        for key, value in want.items():
            assert_close(pairs.loc[(cid, pid), key], value, f"{cid}×{pid} {key}")
    units = result.units.set_index("unit")
    assert set(units.index) == set(ref["units"])
    for unit, want in ref["units"].items():
        for key, value in want.items():
            assert_close(units.loc[unit, key], value, f"{unit} {key}")
    assert result.meta["rows_used"] == ref["used"]
    assert result.meta["rows_unverified"] == ref["unverified"]


def test_small_case_matches_the_plain_computation():
    result = rollup(validation(), SETTINGS, AS_OF)
    ref = reference(PROJECTS, COMMITTEES, TARGETS, LEDGER, {ERROR_ROW}, AS_OF)
    check_against_reference(result, ref)


def test_the_edge_cases_come_out_as_defined():
    result = rollup(validation(), SETTINGS, AS_OF)
    committees = result.committees.set_index("committee_id")
    pairs = result.committee_projects.set_index(["committee_id", "project_id"])
    # A committee with no entries: zero achieved against its targets, no report date, overdue on P02.
    c03 = committees.loc["C03"]
    assert c03["entries"] == 0 and c03["achieved"] == 0 and c03["percent"] == 0
    assert pd.isna(c03["last_report"]) and pd.isna(c03["days_since_report"])
    assert c03["status"] == schema.PROGRESS_SEVERE
    assert pairs.loc[("C03", "P02"), "overdue"]
    # A project with no 目标 rows is shared equally; a partial one shares what the 目标 rows leave.
    assert pairs.xs("P02", level="project_id")["target"].tolist() == [30.0, 30.0, 30.0]
    assert pairs.loc[("C01", "P01"), ["target", "target_source"]].tolist() == [150.0, "目标"]
    assert pairs.loc[("C02", "P01"), ["target", "target_source"]].tolist() == [75.0, "分摊"]
    assert pairs.loc[("C01", "P03"), "target"] == pytest.approx(9.0)
    # Done by 已完成 although short; done by reaching the target without 已完成.
    assert not pairs.loc[("C01", "P02"), "overdue"] and not pairs.loc[("C02", "P02"), "overdue"]
    # The error row is out (C02 P01 = 40 only), the warning row in, the unknown committee 待核实.
    assert pairs.loc[("C02", "P01"), "achieved"] == 40
    assert committees.loc["C02", "unverified"] == 1
    assert result.meta["rows_unverified"] == 2 and result.meta["rows_after_as_of"] == 1
    assert result.meta["rows_used"] + 2 + 1 == len(LEDGER)
    # A unit leading three projects counts each; its percent is the plain mean of theirs.
    units = result.units.set_index("unit")
    projects = result.projects.set_index("project_id")
    assert units.loc["发展办", "projects"] == 3
    assert units.loc["发展办", "project_ids"] == "P01、P02、P03"
    assert units.loc["发展办", "average_percent"] == pytest.approx(projects["percent"].mean())
    assert units.loc["党建办", "projects"] == 1


def test_as_of_date_moves_overdue_flags():
    def overdue(as_of):
        pairs = rollup(validation(), SETTINGS, as_of).committee_projects
        return set(pairs.loc[pairs["overdue"], ["committee_id", "project_id"]].itertuples(index=False))

    assert overdue(date(2020, 10, 31)) == set()  # the deadline day itself is not late
    assert overdue(date(2020, 11, 1)) == {("C03", "P02")}
    assert overdue(date(2020, 12, 1)) == {("C03", "P02"), ("C01", "P03"), ("C03", "P03")}
    late = rollup(validation(), SETTINGS, date(2020, 12, 16))
    assert late.projects.set_index("project_id")["overdue"].tolist() == [True, True, True]
    # Rolling up as of a later date counts the row dated 2020-11-20, which changes C01's P03 total.
    for as_of in (date(2020, 10, 31), date(2020, 11, 1), date(2020, 12, 16)):
        ref = reference(PROJECTS, COMMITTEES, TARGETS, LEDGER, {ERROR_ROW}, as_of)
        check_against_reference(rollup(validation(), SETTINGS, as_of), ref)


def test_traffic_light_thresholds_come_from_settings():
    expected = elapsed_fraction(AS_OF, 2020)
    assert expected == pytest.approx(320 / 366)
    percent = pd.Series([expected, expected - 0.15, expected - 0.149, expected - 0.30, None])
    assert progress_status(percent, expected, 0.15, 0.30).tolist() == [
        "正常", "滞后", "正常", "严重滞后", None]
    lenient = rollup(validation(), {**SETTINGS, "lag_threshold": 0.9, "severe_lag_threshold": 0.95}, AS_OF)
    strict = rollup(validation(), SETTINGS, AS_OF)
    # However lenient the thresholds, C03 (overdue on P02) is not 正常: green beside 逾期 1 项.
    assert lenient.committees.set_index("committee_id")["status"].to_dict() == {
        "C01": "正常", "C02": "正常", "C03": "滞后"}
    assert strict.committees.set_index("committee_id").loc["C03", "status"] == "严重滞后"
    # Outside the programme year: nothing expected before it, everything after it.
    assert elapsed_fraction(date(2019, 12, 31), 2020) == 0
    assert elapsed_fraction(date(2021, 1, 5), 2020) == 1


@pytest.mark.parametrize("as_of, deadline, fraction", [
    (date(2020, 11, 15), date(2020, 10, 31), 1.0),            # past its deadline: all of it
    (date(2020, 10, 31), date(2020, 10, 31), 1.0),            # the deadline day: all of it, not yet late
    (date(2020, 6, 30), date(2020, 10, 31), 182 / 305),       # 182 of the 305 days to 31 October
    (date(2020, 11, 15), None, 320 / 366),                    # no deadline: the year's end
    # after the year ends: the year's end (its rows after 31 December are not counted: stretching
    # past it drove such projects to 严重滞后 on work done in time — review)
    (date(2020, 12, 31), date(2021, 6, 30), 1.0),
    (date(2020, 6, 30), date(2021, 6, 30), 182 / 366),
    (date(2020, 3, 1), date(2019, 12, 31), 1.0),              # before the year began: past already
    (date(2019, 12, 1), date(2019, 12, 31), 0.0),             # before the year starts: nothing yet
    (date(2019, 12, 31), date(2020, 10, 31), 0.0),
])
def test_expected_progress_runs_to_the_projects_own_deadline(as_of, deadline, fraction):
    assert elapsed_fraction(as_of, 2020, deadline) == pytest.approx(fraction)
    assert elapsed_fraction(as_of, 2020, deadline) == pytest.approx(due_by(as_of, deadline))


def test_past_deadline_and_unfinished_is_never_green():
    """P02 (deadline 10-31) at 90 % with one committee short, as of 11-15: the calendar year
    (87.4 % gone) would call it 正常; its own deadline expects 100 %, and it is overdue."""
    ledger = [entry(date(2020, 10, 1), c, "P02", q) for c, q in (("C01", 30), ("C02", 30), ("C03", 21))]
    result = rollup(validation(ledger=ledger, problems=[]), SETTINGS, AS_OF)
    p02 = result.projects.set_index("project_id").loc["P02"]
    assert p02["percent"] == pytest.approx(0.9) and p02["expected"] == 1.0 and p02["overdue"]
    assert p02["status"] == "滞后"  # 10 points short (< 15), lifted by the overdue floor
    assert result.committees.set_index("committee_id").loc["C03", "status"] == "严重滞后"  # 70 % of P02
    # Done by 已完成 though short: not overdue, and judged by its shortfall alone.
    done = [*ledger[:2], entry(date(2020, 10, 2), "C03", "P02", 21, "已完成")]
    p02 = rollup(validation(ledger=done, problems=[]), SETTINGS, AS_OF).projects.set_index("project_id").loc["P02"]
    assert not p02["overdue"] and p02["status"] == "正常"
    # Far short past the deadline: 严重滞后 by the same threshold (100 % expected, 30 points short).
    short = [entry(date(2020, 10, 1), c, "P02", 20) for c in ("C01", "C02", "C03")]
    p02 = rollup(validation(ledger=short, problems=[]), SETTINGS, AS_OF).projects.set_index("project_id").loc["P02"]
    assert p02["percent"] == pytest.approx(2 / 3) and p02["status"] == "严重滞后"


def test_a_blank_or_unreadable_deadline_runs_to_the_years_end():
    projects = [{**p, "deadline": None} if p["project_id"] == "P02" else p for p in PROJECTS]
    result = rollup(validation(projects=projects), SETTINGS, AS_OF)
    p02 = result.projects.set_index("project_id").loc["P02"]
    assert p02["expected"] == pytest.approx(320 / 366) and not p02["overdue"]
    assert result.meta["expected"] == pytest.approx(320 / 366)


def test_committee_and_unit_expect_as_their_percents_are_averaged():
    result = rollup(validation(), SETTINGS, AS_OF)
    pairs = result.committee_projects
    c01 = pairs[pairs["committee_id"] == "C01"]
    weighted = (c01["target"] * c01["expected"]).sum() / c01["target"].sum()
    assert result.committees.set_index("committee_id").loc["C01", "expected"] == pytest.approx(weighted)
    projects = result.projects.set_index("project_id")
    units = result.units.set_index("unit")
    assert units.loc["发展办", "expected"] == pytest.approx(projects["expected"].mean())
    assert units.loc["党建办", "expected"] == pytest.approx(projects.loc["P01", "expected"])
    categories = result.categories.set_index("category")
    assert categories.loc["健康社会类", "expected"] == pytest.approx(projects.loc[["P01", "P02"], "expected"].mean())


def test_empty_ledger_and_no_target_sheet():
    result = rollup(validation(ledger=[], targets=[], problems=[]), SETTINGS, AS_OF)
    assert result.committees["entries"].tolist() == [0, 0, 0]
    assert result.committees["target"].tolist() == pytest.approx([140.0, 140.0, 140.0])
    assert (result.committees["percent"] == 0).all()
    assert result.meta["rows_used"] == result.meta["rows_unverified"] == 0


def test_sheets_carry_note_fills_and_the_category_block():
    result = rollup(validation(), SETTINGS, AS_OF)
    sheets = {s.sheet.name: s for s in rollup_sheets(result)}
    assert list(sheets) == [schema.COMMITTEE_PROGRESS.name, schema.PROJECT_PROGRESS.name,
                            schema.UNIT_PROGRESS.name]
    for write in sheets.values():
        assert "截至 2020-11-15 由 7 条台账计算（待核实 2 条）" in write.note
        assert "1 条晚于截至日期" in write.note
        assert set(write.fills.values()) <= set(FILLS)
        for row in write.rows:
            assert set(row) <= set(write.sheet.keys)
            assert all(not isinstance(v, float) or not math.isnan(v) for v in row.values())

    committees = sheets[schema.COMMITTEE_PROGRESS.name]
    c03 = next(i for i, r in enumerate(committees.rows) if r["committee_id"] == "C03")
    assert committees.rows[c03]["last_report"] is None
    assert committees.fills[(c03, "status")] == committees.fills[(c03, "percent")] == "严重滞后"
    assert committees.fills[(c03, "overdue")] == "严重滞后"
    c01 = next(i for i, r in enumerate(committees.rows) if r["committee_id"] == "C01")
    assert committees.rows[c01]["last_report"] == date(2020, 9, 1)

    projects = sheets[schema.PROJECT_PROGRESS.name]
    assert [r["overdue"] for r in projects.rows] == ["否", "是", "否"]

    units = sheets[schema.UNIT_PROGRESS.name]
    n = len(result.units)
    assert units.rows[n] == {}
    assert list(units.rows[n + 1].values()) == schema.CATEGORY_BLOCK.headers
    block = units.rows[n + 2:]
    assert [r["unit"] for r in block] == ["健康社会类", "健康人群类"]
    assert block[0]["projects"] == 2
    assert units.fills[(n + 2, "status")] == block[0]["status"]


def test_percent_columns_display_capped_and_blocks_line_up():
    for sheet in (schema.COMMITTEE_PROGRESS, schema.PROJECT_PROGRESS):
        assert sheet.column("percent").number_format == schema.PERCENT_CAPPED_FORMAT
    assert len(schema.CATEGORY_BLOCK.columns) == len(schema.UNIT_PROGRESS.columns)
    for block_col, unit_col in zip(schema.CATEGORY_BLOCK.columns, schema.UNIT_PROGRESS.columns):
        assert block_col.type == unit_col.type and block_col.number_format == unit_col.number_format


def test_chart_and_json_data():
    result = rollup(validation(), SETTINGS, AS_OF)
    chart = result.committee_chart()
    assert chart["committee_id"].tolist() == ["C01", "C02", "C03"]
    assert (chart["percent_display"] <= 1).all()
    # Each committee's own expectation (its projects' deadlines), not the calendar year's.
    assert chart["expected"].tolist() == pytest.approx(result.committees["expected"].tolist())
    assert chart["expected"].iloc[0] > result.meta["expected"]
    data = result.to_dict()
    assert data["meta"]["as_of"] == "2020-11-15"
    c03 = next(r for r in data["committees"] if r["committee_id"] == "C03")
    assert c03["last_report"] is None and c03["days_since_report"] is None
    assert {r["deadline"] for r in data["projects"]} == {"2020-12-15", "2020-10-31", "2020-11-30"}
