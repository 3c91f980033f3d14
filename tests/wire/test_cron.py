"""Function schedules (wire/cron.py): what parses and what is refused (with the field named),
the Vixie day rule, next_after on fixed cases and, by property, against an independent
minute-by-minute oracle, and the tier preflight's minimum gap (§1.10)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

import pytest

from run402_cli.wire import cron
from run402_cli.wire.cron import CronError, min_interval_minutes, parse

UTC = timezone.utc


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, minutes, hours, doms, months, dows", [
    ("* * * * *", range(60), range(24), range(1, 32), range(1, 13), range(7)),
    ("*/15 * * * *", [0, 15, 30, 45], range(24), range(1, 32), range(1, 13), range(7)),
    ("0 9-17 * * MON-FRI", [0], range(9, 18), range(1, 32), range(1, 13), range(1, 6)),
    ("5,10-12 0 1 JAN,jun,Dec sun", [5, 10, 11, 12], [0], [1], [1, 6, 12], [0]),
    ("0-30/10 */6 1-31/10 */3 *", [0, 10, 20, 30], [0, 6, 12, 18], [1, 11, 21, 31], [1, 4, 7, 10], range(7)),
    ("5/20 1/12 * * *", [5, 25, 45], [1, 13], range(1, 32), range(1, 13), range(7)),  # a/n: a to max
    ("0 0 * * 7", [0], [0], range(1, 32), range(1, 13), [0]),  # 7 is Sunday
    ("0 0 * * 5-7", [0], [0], range(1, 32), range(1, 13), [0, 5, 6]),
    ("0 0 * * 0,7", [0], [0], range(1, 32), range(1, 13), [0]),
    ("0 0 * * */2", [0], [0], range(1, 32), range(1, 13), [0, 2, 4, 6]),
    ("00 05 * * *", [0], [5], range(1, 32), range(1, 13), range(7)),  # leading zeros
    ("  0\t0   *  * *  ", [0], [0], range(1, 32), range(1, 13), range(7)),  # any whitespace
    ("0 0 * Jan-Mar Mon-Wed", [0], [0], range(1, 32), [1, 2, 3], [1, 2, 3]),
    ("59 23 31 12 6", [59], [23], [31], [12], [6]),
])
def test_fields_expand(expr, minutes, hours, doms, months, dows):
    s = parse(expr)
    assert (s.minutes, s.hours, s.days_of_month, s.months, s.days_of_week) == tuple(
        tuple(x) for x in (minutes, hours, doms, months, dows))
    assert s.expression == expr and cron.is_valid(expr)


@pytest.mark.parametrize("expr, field, words", [
    ("", None, "empty"),
    ("   ", None, "empty"),
    ("* * * *", None, "got 4"),
    ("* * * * * *", None, "got 6"),
    ("@daily", None, "macros"),
    ("@reboot", None, "macros"),
    ("60 * * * *", "minute", "out of range 0-59"),
    ("* 24 * * *", "hour", "out of range 0-23"),
    ("* * 0 * *", "day-of-month", "out of range 1-31"),
    ("* * 32 * *", "day-of-month", "out of range 1-31"),
    ("* * * 13 *", "month", "out of range 1-12"),
    ("* * * 0 *", "month", "out of range 1-12"),
    ("* * * * 8", "day-of-week", "out of range 0-7"),
    ("*/0 * * * *", "minute", "step 0"),
    ("*/60 * * * *", "minute", "step 60"),
    ("*/x * * * *", "minute", "not a whole number"),
    ("*/ * * * *", "minute", "not a whole number"),
    ("1/2/3 * * * *", "minute", "not a whole number"),
    ("30-10 * * * *", "minute", "low to high"),
    ("* * * * FRI-SUN", "day-of-week", "use 7"),
    ("1,,2 * * * *", "minute", "empty item"),
    (",1 * * * *", "minute", "empty item"),
    ("1- * * * *", "minute", "missing end"),
    ("-1 * * * *", "minute", "missing end"),
    ("JAN * * * *", "minute", "not a number 0-59"),
    ("* * * JANUARY *", "month", "JAN-DEC"),
    ("* * * * MONDAY", "day-of-week", "SUN-SAT"),
    ("? * * * *", "minute", "not a number"),
    ("* * L * *", "day-of-month", "not a number"),
    ("* * * * 5#3", "day-of-week", "not a number"),
    ("* * 15W * *", "day-of-month", "not a number"),
    ("１ * * * *", "minute", "not a number"),  # a full-width digit is not ASCII
    ("² * * * *", "minute", "not a number"),
    ("0 0 31 2 *", "day-of-month", "never runs"),
    ("0 0 30,31 FEB *", "day-of-month", "never runs"),
    ("0 0 31 4,6,9,11 *", "day-of-month", "never runs"),
])
def test_refused_with_a_precise_message(expr, field, words):
    with pytest.raises(CronError) as info:
        parse(expr)
    assert info.value.field == field
    assert words in info.value.message, info.value.message
    assert not cron.is_valid(expr) and min_interval_minutes(expr) is None


@pytest.mark.parametrize("value", [None, 5, ["* * * * *"], b"* * * * *"])
def test_only_strings_parse(value):
    with pytest.raises(CronError):
        parse(value)
    assert min_interval_minutes(value) is None


def test_long_input_is_refused_cheaply():
    with pytest.raises(CronError, match="at most"):
        parse("1," * 5000 + "1 * * * *")
    with pytest.raises(CronError, match="not a number"):
        parse("9" * 50 + " * * * *")


def test_feb_29_and_dow_rescue_are_reachable():
    assert parse("0 0 29 2 *").next_after(at(2026, 1, 1)) == at(2028, 2, 29)
    # both restricted: either matches, so "31 Feb or a Monday" runs every Monday of February
    assert parse("0 0 31 2 1").next_after(at(2026, 1, 1)) == at(2026, 2, 2)


# --- the day rule -----------------------------------------------------------------------------


def test_vixie_day_rule():
    friday_13 = parse("0 0 13 * 5")  # both restricted: the 13th OR any Friday
    assert friday_13.dom_restricted and friday_13.dow_restricted
    assert friday_13.matches(at(2026, 3, 13)) and friday_13.matches(at(2026, 3, 20))  # Fri 13, Fri 20
    assert friday_13.matches(at(2026, 5, 13))  # a Wednesday, but the 13th
    assert not friday_13.matches(at(2026, 3, 14))
    # a field that starts with '*' is unrestricted, even with a step (Vixie, cronie): AND
    odd_mondays = parse("0 0 */2 * 1")
    assert not odd_mondays.dom_restricted
    assert odd_mondays.matches(at(2026, 3, 9)) and not odd_mondays.matches(at(2026, 3, 16))
    assert not odd_mondays.matches(at(2026, 3, 11))  # odd, a Wednesday
    only_dom = parse("0 0 1 * *")
    assert only_dom.matches(at(2026, 4, 1)) and not only_dom.matches(at(2026, 4, 6))  # a Monday
    only_dow = parse("0 0 * * 1")
    assert only_dow.matches(at(2026, 4, 6)) and not only_dow.matches(at(2026, 4, 1))


def test_matches_ignores_seconds_and_takes_naive_as_utc():
    s = parse("30 12 * * *")
    assert s.matches(datetime(2026, 1, 1, 12, 30, 59, 999999))
    assert s.matches(datetime(2026, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=1))))
    assert not s.matches(at(2026, 1, 1, 12, 31))


# --- next_after -------------------------------------------------------------------------------


@pytest.mark.parametrize("expr, after, want", [
    ("* * * * *", at(2026, 3, 29, 14, 7, 30), at(2026, 3, 29, 14, 8)),
    ("* * * * *", at(2026, 3, 29, 14, 7), at(2026, 3, 29, 14, 8)),  # strictly after
    ("*/15 * * * *", at(2026, 3, 29, 14, 7), at(2026, 3, 29, 14, 15)),
    ("*/15 * * * *", at(2026, 3, 29, 14, 45), at(2026, 3, 29, 15, 0)),
    ("0 0 * * *", at(2026, 12, 31, 0, 0), at(2027, 1, 1)),
    ("59 23 31 12 *", at(2026, 12, 31, 23, 59), at(2027, 12, 31, 23, 59)),
    ("0 9-17 * * MON-FRI", at(2026, 3, 27, 17, 0), at(2026, 3, 30, 9, 0)),  # Fri 17:00 -> Mon
    ("0 0 1 * *", at(2026, 1, 31, 12), at(2026, 2, 1)),
    ("0 0 31 * *", at(2026, 1, 31, 1), at(2026, 3, 31)),  # February and its 28 days skipped
    ("0 0 30 * *", at(2026, 1, 30, 1), at(2026, 3, 30)),
    ("0 12 * 6 *", at(2026, 7, 1), at(2027, 6, 1, 12)),
    ("0 0 29 2 *", at(2028, 2, 29), at(2032, 2, 29)),
    ("0 0 29 2 *", at(2096, 3, 1), at(2104, 2, 29)),  # 2100 is not a leap year
    ("0 0 29 2 */7", at(2026, 1, 1), at(2032, 2, 29)),  # Feb 29 AND a Sunday: 2032
    ("30 * * * *", datetime(2026, 1, 1, 10, 45), at(2026, 1, 1, 11, 30)),  # naive = UTC
])
def test_next_after(expr, after, want):
    got = parse(expr).next_after(after)
    assert got == want and got.tzinfo == UTC


def test_next_after_converts_other_zones_to_utc():
    # 10:20 at +02:00 is 08:20 UTC: the next "0 9 * * *" is 09:00 UTC that day
    after = datetime(2026, 5, 1, 10, 20, tzinfo=timezone(timedelta(hours=2)))
    assert parse("0 9 * * *").next_after(after) == at(2026, 5, 1, 9, 0)


def test_next_after_near_the_end_of_time():
    assert parse("* * * * *").next_after(at(9999, 12, 31, 23, 58)) == at(9999, 12, 31, 23, 59)
    with pytest.raises(CronError, match="before the year 10000"):
        parse("* * * * *").next_after(at(9999, 12, 31, 23, 59))
    with pytest.raises(CronError, match="before the year 10000"):
        parse("0 0 1 1 *").next_after(at(9999, 6, 1))


def test_next_after_is_cheap_for_sparse_schedules(monkeypatch):
    calls = {"n": 0}
    real = cron.CronSchedule.day_matches

    def counting(self, y, m, d):
        calls["n"] += 1
        return real(self, y, m, d)

    monkeypatch.setattr(cron.CronSchedule, "day_matches", counting)
    assert parse("0 0 29 2 1").next_after(at(2026, 3, 1)).month == 2  # OR rule: next Feb Monday
    assert parse("0 0 29 2 */7").next_after(at(2033, 1, 1)) == at(2060, 2, 29)
    assert calls["n"] < 5000, calls  # days inside candidate months only, never minute by minute


def test_next_after_needs_a_datetime():
    with pytest.raises(TypeError):
        parse("* * * * *").next_after("2026-01-01")  # type: ignore[arg-type]


# --- min_interval_minutes (§1.10) -------------------------------------------------------------


@pytest.mark.parametrize("expr, gap", [
    ("* * * * *", 1),
    ("*/5 * * * *", 5),
    ("*/15 * * * *", 15),
    ("0 * * * *", 60),
    ("0 */4 * * *", 240),
    ("0 0 * * *", 1440),  # once a day
    ("0 0 * * 1", 1440),  # the day fields are not looked at
    ("0 0 1 1 *", 1440),
    ("0,50 * * * *", 10),  # 00:50 -> 01:00
    ("0 0,23 * * *", 60),  # 23:00 -> 00:00 the next day (wraps at 24 h)
    ("0 1,23 * * *", 120),  # 23:00 -> 01:00
    ("5 3,4 * * *", 60),
    ("*/7 * * * *", 4),  # 56 -> 60: the hour wraps inside the day
    ("10-12 9 * * *", 1),
    ("30 9-17/2 * * MON-FRI", 120),
])
def test_min_interval(expr, gap):
    assert min_interval_minutes(expr) == gap
    assert parse(expr).min_interval_minutes == gap


# --- properties -------------------------------------------------------------------------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

# Each field is drawn as items the test renders AND expands on its own (the oracle never
# calls the parser), so a parser bug cannot hide behind a matching oracle.
_BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def _show(index: int, value: int, named: bool) -> str:
    if named and index == 3:
        return _MONTH_NAMES[value - 1].lower() if value % 2 else _MONTH_NAMES[value - 1]
    if named and index == 4 and value < 7:
        return _DAY_NAMES[value]
    return str(value)


@st.composite
def _item(draw, index: int) -> tuple[str, set[int]]:
    lo, hi = _BOUNDS[index]
    kind = draw(st.sampled_from(["star", "star_step", "value", "range", "range_step", "open_step"]))
    named = index >= 3 and draw(st.booleans())
    step = draw(st.integers(1, max(1, min(hi, 13))))
    if kind == "star":
        return "*", set(range(lo, hi + 1))
    if kind == "star_step":
        return f"*/{step}", set(range(lo, hi + 1, step))
    a = draw(st.integers(lo, hi))
    if kind == "value":
        return _show(index, a, named), {a}
    if kind == "open_step":
        return f"{a}/{step}", set(range(a, hi + 1, step))
    b = draw(st.integers(a, hi))
    if kind == "range":
        return f"{_show(index, a, named)}-{_show(index, b, named)}", set(range(a, b + 1))
    return f"{_show(index, a, named)}-{_show(index, b, named)}/{step}", set(range(a, b + 1, step))


@st.composite
def _field(draw, index: int) -> tuple[str, set[int]]:
    items = draw(st.lists(_item(index), min_size=1, max_size=3))
    text = ",".join(t for t, _ in items)
    values = set().union(*(v for _, v in items))
    if index == 4:
        values = {v % 7 for v in values}
    return text, values


@st.composite
def _expression(draw):
    # minute and hour dense enough that most draws run within the brute-force window
    fields = [draw(_field(i)) for i in range(5)]
    return " ".join(t for t, _ in fields), [v for _, v in fields], [t.startswith("*") for t, _ in fields]


def _oracle_matches(t: datetime, sets: list[set[int]], stars: list[bool]) -> bool:
    minute, hour, dom, month, dow = sets
    if t.minute not in minute or t.hour not in hour or t.month not in month:
        return False
    in_dom = t.day in dom
    in_dow = (t.weekday() + 1) % 7 in dow
    if not stars[2] and not stars[4]:
        return in_dom or in_dow
    return in_dom and in_dow


_WINDOW_MIN = 3 * 24 * 60
_starts = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2101, 1, 1),
                       timezones=st.just(UTC))


def _reachable(sets: list[set[int]], stars: list[bool]) -> bool:
    if not stars[2] and not stars[4]:
        return True
    longest = {m: calendar.monthrange(2024, m)[1] for m in range(1, 13)}
    return any(d <= longest[m] for m in sets[3] for d in sets[2])


@settings(max_examples=300, deadline=None)
@given(_expression(), _starts)
def test_parse_agrees_with_the_oracle_on_every_field(drawn, _start):
    expr, sets, stars = drawn
    if not _reachable(sets, stars):
        with pytest.raises(CronError, match="never runs"):
            parse(expr)
        return
    s = parse(expr)
    assert [set(s.minutes), set(s.hours), set(s.days_of_month), set(s.months), set(s.days_of_week)] == sets
    assert (s.dom_restricted, s.dow_restricted) == (not stars[2], not stars[4])


@settings(max_examples=300, deadline=None)
@given(_expression(), _starts)
def test_next_after_is_the_first_match_strictly_later(drawn, start):
    expr, sets, stars = drawn
    if not _reachable(sets, stars):
        return
    got = parse(expr).next_after(start)
    assert got > start and got.tzinfo == UTC and got.second == 0 and got.microsecond == 0
    assert _oracle_matches(got, sets, stars)
    # brute force, minute by minute, over a bounded window: nothing matches in between
    t = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(_WINDOW_MIN):
        if t >= got:
            break
        assert not _oracle_matches(t, sets, stars), (expr, start, t, got)
        t += timedelta(minutes=1)


@settings(max_examples=200, deadline=None)
@given(_expression())
def test_min_interval_is_the_smallest_daily_gap(drawn):
    expr, sets, stars = drawn
    if not _reachable(sets, stars):
        return
    times = sorted(h * 60 + m for h in sets[1] for m in sets[0])
    # brute force: for each run, the minutes until the next run (tomorrow's first wraps)
    expected = min(((times[(i + 1) % len(times)] - t) % 1440 or 1440) for i, t in enumerate(times))
    assert min_interval_minutes(expr) == expected
