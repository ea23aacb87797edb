"""The pure merge: keys, updates with audit, numbering, idempotence, nothing deleted."""

from __future__ import annotations

from datetime import date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from macros import schema
from macros.merge import ADDED, UNCHANGED, UPDATED, LedgerMerge, comparable, record_number

NOW = datetime(2020, 11, 20, 9, 30)
ALL = set(schema.LEDGER.keys)


def row(record_id=None, committee="C01", quantity=3, **kw) -> dict:
    base = {k: None for k in schema.LEDGER.keys}
    base.update(record_id=record_id, date=date(2020, 6, 22), committee_id=committee, project_id="P01",
                activity="健康讲座进楼宇", participants=20, quantity=quantity, status="进行中",
                reporter="周敏", in_bulletin="否", source=schema.MANUAL_SOURCE)
    base.update(kw)
    return base


def master() -> list[dict]:
    # as read: every row has the same keys, the master's own extra column included
    rows = [row("C01-0001"), row("C01-0007", quantity=5), row("C02-0003", committee="C02"), row("C01-0002")]
    for r in rows:
        r["自己加的列"] = None
    rows[3]["自己加的列"] = "保留"
    return rows


def test_new_changed_and_same_rows():
    merge = LedgerMerge(master())
    result = merge.merge([
        (2, row("C01-0001")),                       # same
        (3, row("C01-0007", quantity=6, note="补报")),  # two fields changed
        (4, row("C01-0100")),                       # new key
    ], ALL, "填报表-C01.xlsx", NOW)
    assert [o.action for o in result.outcomes] == [UNCHANGED, UPDATED, ADDED]
    assert len(merge.rows) == 5
    updated = merge.rows[1]
    assert updated["quantity"] == 6 and updated["note"] == "补报" and updated["source"] == "填报表-C01.xlsx"
    audit = [(c.record_id, c.action, c.column, c.old, c.new) for c in result.changes]
    assert ("C01-0007", UPDATED, "完成数量", 5, 6) in audit
    assert ("C01-0007", UPDATED, "备注", None, "补报") in audit
    assert audit[-1][:2] == ("C01-0100", ADDED)
    # the master's extra column survives, and is blank on the added row
    assert merge.rows[3]["自己加的列"] == "保留" and merge.rows[4]["自己加的列"] is None


def test_blank_key_gets_next_free_number_of_its_committee():
    merge = LedgerMerge(master())
    result = merge.merge([(2, row(quantity=9)), (3, row(quantity=10))], ALL, "f.xlsx", NOW)
    assert [o.record_id for o in result.outcomes] == ["C01-0008", "C01-0009"]
    assert all(o.assigned for o in result.outcomes)
    other = merge.merge([(2, row(committee="C02", quantity=1))], ALL, "g.xlsx", NOW)
    assert other.outcomes[0].record_id == "C02-0004"


def test_rerun_of_blank_key_rows_adds_nothing_even_when_identical_rows_repeat():
    merge = LedgerMerge(master())
    rows = [(2, row(quantity=9)), (3, row(quantity=9)), (4, row(quantity=11))]
    first = merge.merge(rows, ALL, "f.xlsx", NOW)
    assert first.count(ADDED) == 3  # two identical rows in one file are both kept
    size = len(merge.rows)
    again = merge.merge(rows, ALL, "f.xlsx", NOW)
    assert again.count(UNCHANGED) == 3 and not again.changes and len(merge.rows) == size
    assert [o.record_id for o in again.outcomes] == [o.record_id for o in first.outcomes]


def test_columns_a_file_lacks_are_left_alone():
    merge = LedgerMerge(master())
    partial = {k: v for k, v in row("C01-0001", reporter=None).items()}
    result = merge.merge([(2, partial)], ALL - {"reporter"}, "hand.xlsx", NOW)
    assert result.outcomes[0].action == UNCHANGED
    assert merge.rows[0]["reporter"] == "周敏"


def test_values_compare_as_data_not_as_cell_types():
    assert comparable(datetime(2020, 6, 22)) == date(2020, 6, 22)
    assert comparable(5.0) == 5 and comparable("  ") is None and comparable(float("nan")) is None
    merge = LedgerMerge(master())
    same = row("C01-0001", date=datetime(2020, 6, 22), quantity=3.0, activity=" 健康讲座进楼宇 ")
    assert merge.merge([(2, same)], ALL, "f.xlsx", NOW).outcomes[0].action == UNCHANGED


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([None, "C01-0001", "C01-0007", "C01-0050"]),
                          st.integers(0, 3)), max_size=12))
def test_merging_twice_is_idempotent_and_never_deletes(spec):
    merge = LedgerMerge(master())
    before = {r["record_id"] for r in merge.rows}
    # a file holds each key once (duplicate keys are the validator's errors)
    seen, rows = set(), []
    for i, (key, qty) in enumerate(spec):
        if key in seen:
            continue
        if key:
            seen.add(key)
        rows.append((i + 2, row(key, quantity=qty)))
    merge.merge(rows, ALL, "f.xlsx", NOW)
    snapshot = [dict(r) for r in merge.rows]
    again = merge.merge(rows, ALL, "f.xlsx", NOW)
    assert not again.changes
    assert merge.rows == snapshot
    assert before <= {r["record_id"] for r in merge.rows}


@given(st.text(alphabet="C01-23４５ x\u0660", max_size=10), st.sampled_from(["C01", "C1", "C01-"]))
def test_record_number_reads_what_the_key_pattern_matches(text, committee):
    import re

    match = re.fullmatch(rf"{re.escape(committee)}-(\d+)", text.strip())
    assert record_number(text, committee) == (int(match.group(1)) if match else None)


def test_a_correction_sent_again_without_its_key_is_added_and_named_as_a_look_alike():
    merge = LedgerMerge(master())  # C01-0001: 2020-06-22, P01, 健康讲座进楼宇, quantity 3
    result = merge.merge([
        (2, row(quantity=4)),                                   # corrected, key left blank
        (3, row(quantity=4, date=datetime(2020, 6, 22, 0, 0))),  # the same day read as a datetime
        (4, row(activity="  健康讲座进楼宇 ", quantity=8)),       # stray spaces: the same activity
        (5, row(activity="健康讲座进社区", quantity=4)),          # another activity: no look-alike
        (6, row("C01-0200", quantity=4)),                      # its own new key: not a resend
        (7, row(committee="C02", quantity=4)),                 # C02's own look-alike
        (8, row(committee="C03", quantity=4)),                 # a committee without one
    ], ALL, "f.xlsx", NOW)
    assert [o.action for o in result.outcomes] == [ADDED] * 7
    assert [o.similar for o in result.outcomes] == ["C01-0001"] * 3 + [None, None, "C02-0003", None]
    # What this file added counts for the next one (and an identical resend is unchanged, not flagged).
    later = merge.merge([(2, row(activity="健康讲座进社区", quantity=5)), (3, row(quantity=4))], ALL, "g.xlsx", NOW)
    assert [(o.action, o.similar) for o in later.outcomes] == [(ADDED, result.outcomes[3].record_id),
                                                                (UNCHANGED, None)]


def test_a_prefilled_record_applies_only_what_the_committee_edited():
    # The form was given C01-0007 with quantity 5 and C01-0001 with 3; since then the office
    # corrected C01-0007's quantity to 6 in the master, and removed C01-0002.
    merge = LedgerMerge([r for r in master() if r["record_id"] != "C01-0002"])
    merge.rows[1]["quantity"] = 6
    base = {"C01-0007": row("C01-0007", quantity=5), "C01-0001": row("C01-0001"),
            "C01-0002": row("C01-0002"), "C01-0003": row("C01-0003")}
    result = merge.merge([
        (2, row("C01-0007", quantity=5, note="补报")),  # note edited, quantity as given
        (3, row("C01-0001", participants=25)),           # edited: applied
        (4, row("C01-0002")),                            # as given, gone from the master: not back
        (5, row("C01-0003", quantity=4)),                # not in the master, edited: added
        (6, row("C01-0100")),                            # typed by the committee, no base: added
    ], ALL, "f.xlsx", NOW, base)
    outcomes = [(o.record_id, o.action, o.columns, o.kept, o.gone) for o in result.outcomes]
    assert outcomes == [
        ("C01-0007", UPDATED, ("备注",), ("完成数量",), False),
        ("C01-0001", UPDATED, ("参与人数",), (), False),
        ("C01-0002", UNCHANGED, (), (), True),
        ("C01-0003", ADDED, (), (), False),
        ("C01-0100", ADDED, (), (), False),
    ]
    assert merge.rows[1]["quantity"] == 6 and merge.rows[1]["note"] == "补报"  # the office's value stays
    assert "C01-0002" not in {r["record_id"] for r in merge.rows}
    # Without a base (a form typed by hand), the submitted values win as before.
    again = merge.merge([(2, row("C01-0007", quantity=5, note="补报"))], ALL, "g.xlsx", NOW)
    assert [(o.action, o.columns) for o in again.outcomes] == [(UPDATED, ("完成数量",))]


def test_a_row_differing_from_one_record_in_one_column_is_named_with_that_column():
    # C01-0001 and C01-0002 are twins (2020-06-22, P01, 健康讲座进楼宇, 20, 3); C01-0007 has quantity 5.
    merge = LedgerMerge(master())
    result = merge.merge([
        (2, row(quantity=5, activity="健康讲座进楼道")),     # C01-0007 with another activity: named
        (3, row(quantity=5, date=date(2020, 6, 29))),       # C01-0007 another day: named
        (4, row(quantity=5, participants=21, note="补")),    # two columns off C01-0007: the look-alike rule
        (5, row(quantity=4)),                               # one column off the twins: two records, a series
        (6, row(committee="C02", quantity=5)),              # another committee's: its own C02-0003 (quantity 3)
    ], ALL, "f.xlsx", NOW)
    named = [(o.similar, o.differs) for o in result.outcomes]
    assert named == [
        ("C01-0007", ("活动内容", "健康讲座进楼宇", "健康讲座进楼道")),
        ("C01-0007", ("日期", date(2020, 6, 22), date(2020, 6, 29))),
        ("C01-0001", None),
        ("C01-0001", None),
        ("C02-0003", ("完成数量", 3, 5)),
    ]
    # A column the file does not carry is not compared: without 备注 the row matches C01-0007 but for 状态
    # (and each row the first file added in two columns).
    later = merge.merge([(2, row(quantity=5, status="已完成", note="这份表没有备注列"))], ALL - {"note"}, "g.xlsx", NOW)
    assert [(o.similar, o.differs and o.differs[0]) for o in later.outcomes] == [("C01-0007", "状态")]


def test_a_keyless_row_found_as_a_record_keyed_loosely_is_remembered_under_its_key_as_read():
    """A master row keyed "c01-0001" (typed so by staff) and a keyless row identical to it: what the
    committee sent was remembered under "c01-0001", which the file beside the master then dropped
    (it keeps the keys the merge's index holds, read as "C01-0001") — so the next resend after an
    office correction was a new record (review)."""
    from macros.merge import SentValues

    rows = master()
    rows[0]["record_id"] = "c01-0001"
    sent = SentValues()
    merge = LedgerMerge(rows, sent=sent)
    [outcome] = merge.merge([(2, row())], ALL, "C01.xlsx", datetime(2020, 11, 20)).outcomes
    assert (outcome.action, outcome.record_id) == (UNCHANGED, "C01-0001")
    assert set(sent.entries) == {"C01-0001"} and "C01-0001" in merge.index
