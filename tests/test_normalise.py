"""The normalisers: property tests (never crash, formatted dates and numbers round-trip) and edge cells."""

from __future__ import annotations

from datetime import date, datetime

import cn2an
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macros import schema
from macros.normalise import (
    normalise_frames,
    parse_date_text,
    parse_number_text,
    read_date_number,
)

YEAR = 2020
CN = "〇一二三四五六七八九"
dates = st.dates(min_value=date(1901, 1, 1), max_value=date(2199, 12, 31))


def _small(n: int) -> str:
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else CN[tens]) + "十" if tens else "") + (CN[ones] if ones else "")


FORMATS = {
    "iso": lambda d: d.isoformat(),
    "cn": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "cn_hao": lambda d: f"{d.year}年{d.month}月{d.day}号",
    "dots": lambda d: f"{d.year}.{d.month}.{d.day}",
    "slashes": lambda d: f"{d.year}/{d.month}/{d.day}",
    "dashes": lambda d: f"{d.year}-{d.month}-{d.day}",
    "padded_dots": lambda d: f"{d.year}.{d.month:02d}.{d.day:02d}",
    "hanzi": lambda d: "".join(CN[int(c)] for c in str(d.year)) + f"年{_small(d.month)}月{_small(d.day)}日",
    "fullwidth": lambda d: f"{d.year}年{d.month}月{d.day}日".translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
    "compact": lambda d: d.strftime("%Y%m%d"),
    "with_time": lambda d: f"{d.isoformat()} 08:30",
    "spaced": lambda d: f" {d.year} 年 {d.month} 月 {d.day} 日\u3000",
}


@pytest.mark.parametrize("fmt", list(FORMATS))
@given(day=dates)
@settings(max_examples=60, deadline=None)
def test_formatted_dates_round_trip(fmt, day):
    reading = parse_date_text(FORMATS[fmt](day), YEAR)
    assert reading.value == day, reading.reason


@given(day=st.dates(min_value=date(YEAR, 1, 1), max_value=date(YEAR, 12, 31)))
@settings(max_examples=60, deadline=None)
def test_month_day_dates_take_the_programme_year(day):
    for text in (f"{day.month}月{day.day}日", f"{_small(day.month)}月{_small(day.day)}日", f"{day.month}.{day.day}"):
        assert parse_date_text(text, YEAR).value == day, text
    assert parse_date_text(f"{day.month}月{day.day}日", None).value is None


@given(text=st.text(max_size=30))
@settings(max_examples=400, deadline=None)
def test_date_parser_never_crashes(text):
    reading = parse_date_text(text, YEAR)
    assert (reading.value is None) == bool(reading.reason)
    if reading.value is not None:
        assert 1900 <= reading.value.year <= 2200


@given(value=st.floats(allow_nan=True, allow_infinity=True))
@settings(max_examples=300, deadline=None)
def test_date_numbers_never_crash(value):
    reading = read_date_number(value, YEAR)
    assert (reading.value is None) == bool(reading.reason)


@given(text=st.text(alphabet=st.sampled_from("0123456789.,约余多万千百十一二三四五六七八九零两人次元 -%左右"),
                    max_size=12) | st.text(max_size=20))
@settings(max_examples=400, deadline=None)
def test_number_parser_never_crashes(text):
    reading = parse_number_text(text)
    assert (reading.value is None) == bool(reading.reason)


@given(n=st.integers(min_value=0, max_value=10**9))
@settings(max_examples=200, deadline=None)
def test_formatted_numbers_round_trip(n):
    assert parse_number_text(f"{n:,}").value == n
    assert parse_number_text(str(n).translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})).value == n
    assert parse_number_text(cn2an.an2cn(n)).value == n
    approx = parse_number_text(f"约{n}人")
    assert approx.value == n and approx.approximate


@pytest.mark.parametrize("text, value, approximate", [
    ("1,200", 1200, False), ("１２００", 1200, False), ("三十", 30, False), ("30万", 300_000, False),
    ("三十万", 300_000, False), ("1.2万", 12_000, False), ("30万元", 300_000, False),
    ("800余次", 800, True), ("约200人", 200, True), ("200多人", 200, True), ("二百人左右", 200, True),
    ("15%", 0.15, False), ("1200", 1200, False),
])
def test_number_examples(text, value, approximate):
    reading = parse_number_text(text)
    assert reading.value == pytest.approx(value) and reading.approximate is approximate
    assert reading.changed is (text != "1200")


@pytest.mark.parametrize("text, value", [("1,200", 1200), ("12 000", 12_000), ("1，200人", 1200), ("1, 200", 1200),
                                         ("2,000,000元", 2_000_000), (" 35 ", 35), ("约 200 人", 200)])
def test_thousands_separators_and_spaces_around_a_number(text, value):
    assert parse_number_text(text).value == value


@pytest.mark.parametrize("text", ["30，40", "30 40", "1,2", "12,5", "3,5人", "1,20", "1,2000", "1 2"])
def test_several_numbers_or_a_decimal_comma_are_not_one_number(text):
    """The separators were dropped: "30，40" (30 to 40, or two sessions) became 3040 and "1,2" 12,
    accepted with the routine "按…处理" warning."""
    reading = parse_number_text(text)
    assert reading.value is None and "几个数字" in reading.reason


@pytest.mark.parametrize("text", ["很多", "一些", "三楼", "12abc", "", "约", "1.2.3"])
def test_non_numbers_are_unreadable(text):
    assert parse_number_text(text).value is None


def test_6_22_is_a_date_never_a_time():
    assert parse_date_text("6.22", YEAR).value == date(YEAR, 6, 22)
    assert read_date_number(6.22, YEAR).value == date(YEAR, 6, 22)
    assert read_date_number(6.1, YEAR).value is None  # 6月1日 or 6月10日: ask
    assert read_date_number(43999.0, YEAR).value == date(2020, 6, 17)
    assert read_date_number(20200622.0, YEAR).value == date(2020, 6, 22)
    assert read_date_number(622.0, YEAR).value is None


def _frames(**ledger_values) -> dict[str, pd.DataFrame]:
    row = {c.key: None for c in schema.LEDGER.columns}
    row.update(record_id="C01-0001", committee_id="C01", project_id="P01", status="进行中",
               activity="健康讲座", quantity=1, date=date(2020, 6, 1))
    rows = []
    for i, (key, value) in enumerate(ledger_values.items()):
        rows.append({**row, "record_id": f"C01-{i + 1:04d}", key.split("__")[0]: value})
    frame = pd.DataFrame(rows, columns=schema.LEDGER.keys, dtype=object)
    frame["_row"] = range(2, len(frame) + 2)
    return {schema.LEDGER.name: frame}


def _cell(problems, row, column):
    return {(p.code, p.level) for p in problems if p.row == row and p.column == column}


def test_number_and_odd_cells_in_a_date_column():
    frames = _frames(date__1=43999, date__2=True, date__3=datetime(1900, 1, 6, 5, 16, 48),
                     date__4=date(2999, 1, 1), date__5=3.5, date__6=pd.Timestamp(2020, 6, 22, 9, 30))
    typed, problems = normalise_frames(frames, {"year": YEAR})
    dates = typed[schema.LEDGER.name]["date"]
    assert str(dates.dtype) == "datetime64[ns]"
    assert dates.iloc[0] == pd.Timestamp(2020, 6, 17)
    assert _cell(problems, 2, "日期") == {("normalised", schema.LEVEL_WARNING)}
    assert _cell(problems, 3, "日期") == {("bad_date", schema.LEVEL_ERROR)}
    assert dates.iloc[2] == pd.Timestamp(2020, 6, 22)  # 6.22 typed into a date cell
    assert _cell(problems, 5, "日期") == {("bad_date", schema.LEVEL_ERROR)}
    assert _cell(problems, 6, "日期") == {("bad_date", schema.LEVEL_ERROR)}
    assert dates.iloc[5] == pd.Timestamp(2020, 6, 22) and not _cell(problems, 7, "日期")


def test_odd_cells_in_a_number_column():
    frames = _frames(quantity__1=True, quantity__2=date(2020, 6, 1), quantity__3=12.5)
    typed, problems = normalise_frames(frames, {"year": YEAR})
    quantity = typed[schema.LEDGER.name]["quantity"]
    assert quantity.dtype == "float64" and quantity.iloc[2] == 12.5
    assert _cell(problems, 2, "完成数量") == {("bad_number", schema.LEVEL_ERROR)}
    assert _cell(problems, 3, "完成数量") == {("bad_number", schema.LEVEL_ERROR)}


def test_free_text_keeps_chinese_punctuation_codes_are_nfkc():
    frames = _frames(activity="\u3000第１２场健康讲座（社区卫生服务中心）：控烟 ", committee_id="ｃ０１")
    typed, problems = normalise_frames(frames, {"year": YEAR})
    ledger = typed[schema.LEDGER.name]
    assert ledger["activity"].iloc[0] == "第12场健康讲座（社区卫生服务中心）：控烟"
    assert ledger["committee_id"].iloc[1] == "C01"
    assert _cell(problems, 3, "居委会编号") == {("normalised", schema.LEVEL_WARNING)}
    assert not _cell(problems, 2, "活动内容")
    assert ledger["note"].iloc[0] is None


def test_raw_frames_are_never_changed():
    frames = _frames(date="6月22日", quantity="800余次")
    before = {k: v.copy(deep=True) for k, v in frames.items()}
    normalise_frames(frames, {"year": YEAR})
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_blank_strings_from_a_live_book_are_blanks():
    from macros.validate import validate

    frames = _frames(date="  ", quantity="")
    typed, problems = normalise_frames(frames, {"year": YEAR})
    assert not problems
    result = validate(frames, {"year": YEAR}, date(2020, 11, 15))
    assert _cell(result.problems, 2, "日期") == {("required", schema.LEVEL_ERROR)}
    assert _cell(result.problems, 3, "完成数量") == {("required", schema.LEVEL_ERROR)}
