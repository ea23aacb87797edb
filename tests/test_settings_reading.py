"""A 设置 value means one thing to the reader, the validator, the roll-up and the notices.

Each case types the settings the way staff do ("20%", "０．２", 15 as points, "100%", blank, "十",
"2019年", "十五天") into a real workbook; the reader's ``Workbook.settings``, the validator's
findings, the roll-up's thresholds and year, the normaliser's programme year and the notices'
未填报提醒天数 and 发文序号 must all agree — a value the validator rejects is the default everywhere.
"""

from __future__ import annotations

from datetime import date

import pytest

from macros import demo, schema
from macros.book.build import build_workbook
from macros.book.read import read_workbook
from macros.normalise import programme_year
from macros.render import context as ctx
from macros.rollup import rollup
from macros.validate import validate

# Another year than the typed 年度 (2019), in the quarter its final report is made (validate's
# year_ended warning, not year_mismatch: a later date makes no notice): a roll-up ignoring 年度 would show
AS_OF = date(2020, 3, 1)
KEYS = ("lag_threshold", "silence_days", "year", "doc_number")
DEFAULTS = {"lag_threshold": 0.15, "silence_days": 30, "year": None, "doc_number": 1}
BAD, POINTS, ORDER = "bad_setting", "normalised", "threshold_order"

# (typed, meant, problem code on that row or None): meant None = unusable, the default applies.
CASES = {
    "percent text":      [("20%", 0.2, None), ("十五", 15, None), ("2019年", 2019, None), ("３", 3, None)],
    "full-width":        [("０．２", 0.2, None), ("15天", 15, None), ("二〇一九", 2019, None), (4, 4, None)],
    "points as text":    [("15", 0.15, POINTS), ("３０", 30, None), ("２０１９", 2019, None), ("7", 7, None)],
    "points as number":  [(15, 0.15, POINTS), (None, None, None), (2019, 2019, None), (None, None, None)],
    "hanzi points":      [("十", 0.1, POINTS), ("十", 10, None), ("2019", 2019, None), ("十二", 12, None)],
    "unusable":          [("一些", None, BAD), ("3.5", None, BAD), (20, None, BAD), ("第3号", None, BAD)],
    "negative":          [("-0.1", None, BAD), ("-5", None, BAD), ("明年", None, BAD), ("3.5", None, BAD)],
    "blank threshold":   [(None, None, None), (12, 12, None), (" 2019 ", 2019, None), (2, 2, None)],
}


def _book(tmp_path, values: dict):
    data = demo.demo_rows(with_ledger=False)
    data[schema.SETTINGS.name] = demo.settings_rows({**demo.SETTINGS, **values})
    data[schema.LEDGER.name] = [{
        "record_id": "C01-0001", "date": "6月22日", "committee_id": "C01", "project_id": "P01",
        "activity": "健康讲座一场", "quantity": 1, "status": "进行中",
    }]
    path = tmp_path / "settings.xlsx"
    build_workbook(path, data)
    return read_workbook(path)


@pytest.mark.parametrize("case", list(CASES))
def test_reader_validator_rollup_and_notices_read_a_setting_alike(tmp_path, case):
    typed = dict(zip(KEYS, CASES[case]))
    book = _book(tmp_path, {k: t[0] for k, t in typed.items()})
    meant = {k: (m if m is not None else DEFAULTS[k]) for k, (_, m, _) in typed.items()}

    # The reader.
    assert {k: book.settings[k] for k in KEYS} == pytest.approx(meant)

    # The validator: a problem exactly where the table says, naming the value the others use.
    validation = validate(book.frames, book.settings, AS_OF)
    frame = book[schema.SETTINGS.name]
    key_of_row = {int(r): schema.SETTINGS_BY_ITEM[i].key for i, r in zip(frame["item"], frame["_row"])
                  if i in schema.SETTINGS_BY_ITEM}
    found = {(key_of_row[p.row], p.code) for p in validation.problems
             if p.sheet == schema.SETTINGS.name and p.row in key_of_row and p.code != "year_ended"}
    wanted = {(k, code) for k, (_, _, code) in typed.items() if code}
    if typed["doc_number"][0] is None:  # blank, the notices' 文号 start at 1 again: said
        wanted.add(("doc_number", "blank_setting"))
    if meant["lag_threshold"] >= schema_default("severe_lag_threshold"):
        wanted.add(("severe_lag_threshold", ORDER))
    assert found == wanted
    for p in validation.problems:
        if p.code == POINTS and p.sheet == schema.SETTINGS.name:
            assert f"（{meant['lag_threshold']:g}）处理" in p.message

    # The normaliser's programme year (it completes "6月22日") and the roll-up.
    assert programme_year(book.settings) == meant["year"]
    day = validation.frames[schema.LEDGER.name]["date"].iloc[0]
    assert (day.year if meant["year"] else None) == meant["year"]
    result = rollup(validation, book.settings, AS_OF)
    assert result.meta["lag_threshold"] == pytest.approx(meant["lag_threshold"])
    assert result.meta["year"] == (meant["year"] or AS_OF.year)

    # The notices.
    data = ctx.NoticeInput(validation.frames, book.settings, AS_OF, result)
    assert ctx.silence_days(data) == meant["silence_days"]
    assert ctx.doc_number(data) == f"石二街道〔{AS_OF.year}〕{meant['doc_number']}号"


def schema_default(key: str) -> float:
    return float(schema.SETTINGS_BY_KEY[key].default)


def test_a_hundred_percent_stays_a_hundred_percent_when_read_again(tmp_path):
    """"100%" is 1.0 in ``Workbook.settings``; the roll-up must not read that 1.0 as 1 point."""
    book = _book(tmp_path, {"lag_threshold": "100%", "severe_lag_threshold": "120%"})
    assert book.settings["lag_threshold"] == 1.0
    validation = validate(book.frames, book.settings, AS_OF)
    result = rollup(validation, book.settings, AS_OF)
    assert (result.meta["lag_threshold"], result.meta["severe_lag_threshold"]) == (1.0, 1.2)
    assert not [p for p in validation.problems if p.sheet == schema.SETTINGS.name]
