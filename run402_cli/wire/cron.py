"""Function schedules: the 5-field cron expressions the CLI checks before it sends one and the
gateway's scheduler runs, parsed once, here.

    minute  hour  day-of-month  month  day-of-week
    0-59    0-23  1-31          1-12   0-7 (0 and 7 are Sunday)
                                JAN-DEC SUN-SAT (names in any case)

Each field is a comma list of items: `*`, `n`, `a-b`, `*/s`, `a-b/s`, or `a/s` (from a to the
field's maximum, every s). Steps are 1 up to the field's maximum; a range runs low to high.
Macros (`@daily`), `?`, `L`, `W` and `#` are not cron as the API takes it (five fields) and
are refused. The day rule is Vixie cron's: when day-of-month and day-of-week are both
restricted, a day matches if either matches; a field counts as unrestricted when it starts
with `*` (so `*/2` is unrestricted, as in Vixie cron and cronie). Times are UTC.

    parse("*/15 9-17 * * MON-FRI")              -> CronSchedule (or CronError, naming the field)
    schedule.next_after(datetime(...))          -> the next matching minute, strictly later
    min_interval_minutes("*/15 * * * *") == 15  -> the tier preflight's gap (§1.10), or None
"""

from __future__ import annotations

import bisect
import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["FIELD_NAMES", "CronError", "CronSchedule", "is_valid", "min_interval_minutes", "parse"]

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
# (lowest, highest) value of each field; day-of-week takes 7 for Sunday and folds it to 0
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = {n: i for i, n in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_WEEKDAYS = {n: i for i, n in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_NAMES = (None, None, None, _MONTHS, _WEEKDAYS)
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() also takes '²' and '٣'
_MAX_LENGTH = 1024
_DAY = 24 * 60
_LAST_YEAR = 9999
_LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


class CronError(ValueError):
    """An expression that is not a valid schedule. `field` names the cron field at fault
    ("minute" ... "day-of-week") when one is; `message` says what is wrong, precisely."""

    def __init__(self, message: str, *, field: str | None = None, part: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.part = part


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the sorted values each field allows (day-of-week 0-6, Sunday 0) and
    whether day-of-month / day-of-week are restricted (for the Vixie day rule)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    dom_restricted: bool
    dow_restricted: bool

    def day_matches(self, year: int, month: int, day: int) -> bool:
        """Whether the date (month aside) is one the schedule runs on."""
        dom = day in self.days_of_month
        dow = (calendar.weekday(year, month, day) + 1) % 7 in self.days_of_week  # Sunday = 0
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def matches(self, dt: datetime) -> bool:
        """Whether the minute `dt` falls in (seconds ignored; a naive dt is taken as UTC) runs."""
        t = _utc(dt)
        return (t.minute in self.minutes and t.hour in self.hours and t.month in self.months
                and self.day_matches(t.year, t.month, t.day))

    def next_after(self, dt: datetime) -> datetime:
        """The first matching minute strictly after `dt`, as an aware UTC datetime (a naive `dt`
        is taken as UTC). Skips whole months, days and hours that cannot match, so even a
        schedule that runs once in years costs a few hundred steps. CronError past year 9999."""
        t = _utc(dt).replace(second=0, microsecond=0)
        if t.year == _LAST_YEAR and (t.month, t.day, t.hour, t.minute) == (12, 31, 23, 59):
            raise CronError(f"No run of {self.expression!r} before the year {_LAST_YEAR + 1}")
        t += timedelta(minutes=1)
        y, mo, d, h, mi = t.year, t.month, t.day, t.hour, t.minute
        while y <= _LAST_YEAR:
            if mo not in self.months:
                i = bisect.bisect_right(self.months, mo)
                if i == len(self.months):
                    y, mo = y + 1, self.months[0]
                else:
                    mo = self.months[i]
                d, h, mi = 1, 0, 0
                continue
            last = calendar.monthrange(y, mo)[1]
            day = next((x for x in range(d, last + 1) if self.day_matches(y, mo, x)), None)
            if day is None:
                y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
                d, h, mi = 1, 0, 0
                continue
            if day != d:
                d, h, mi = day, 0, 0
            i = bisect.bisect_left(self.hours, h)
            if i == len(self.hours):  # no hour left today
                y, mo, d = _next_day(y, mo, d, last)
                h, mi = 0, 0
                continue
            if self.hours[i] != h:
                h, mi = self.hours[i], 0
            j = bisect.bisect_left(self.minutes, mi)
            if j == len(self.minutes):  # no minute left this hour
                h, mi = h + 1, 0
                if h == 24:
                    y, mo, d = _next_day(y, mo, d, last)
                    h = 0
                continue
            return datetime(y, mo, d, h, self.minutes[j], tzinfo=timezone.utc)
        raise CronError(f"No run of {self.expression!r} before the year {_LAST_YEAR + 1}")

    @property
    def min_interval_minutes(self) -> int:
        """The shortest gap between two runs within a day, from the minute and hour fields
        only, wrapping at 24 h (the last run of a day to the first of the next); 1440 when the
        schedule runs once a day or less. The day fields are ignored: this is the tier
        preflight's estimate, not the gap between actual runs."""
        times = [h * 60 + m for h in self.hours for m in self.minutes]  # sorted: both are
        if len(times) <= 1:
            return _DAY
        gaps = (b - a for a, b in zip(times, times[1:]))
        return min(min(gaps), _DAY - times[-1] + times[0])


def parse(expression: str) -> CronSchedule:
    """A CronSchedule, or CronError with a message naming the field and the part at fault."""
    if not isinstance(expression, str):
        raise CronError(f"A schedule must be a string, not {type(expression).__name__}")
    if len(expression) > _MAX_LENGTH:
        raise CronError(f"A schedule is at most {_MAX_LENGTH} characters long")
    parts = expression.split()
    if not parts:
        raise CronError("A schedule is empty: give 5 fields (minute hour day-of-month month day-of-week)")
    if parts[0].startswith("@"):
        raise CronError(f"Cron macros such as {parts[0][:20]!r} are not supported: give 5 fields "
                        "(minute hour day-of-month month day-of-week), e.g. '0 0 * * *' for daily",
                        part=parts[0][:20])
    if len(parts) != 5:
        raise CronError(f"A schedule has 5 fields (minute hour day-of-month month day-of-week), "
                        f"got {len(parts)}: {expression.strip()[:100]!r}")
    sets = [_field(text, i) for i, text in enumerate(parts)]
    dow = tuple(sorted({v % 7 for v in sets[4]}))
    schedule = CronSchedule(
        expression=expression, minutes=tuple(sorted(sets[0])), hours=tuple(sorted(sets[1])),
        days_of_month=tuple(sorted(sets[2])), months=tuple(sorted(sets[3])), days_of_week=dow,
        dom_restricted=not parts[2].startswith("*"), dow_restricted=not parts[4].startswith("*"))
    _check_reachable(schedule, parts)
    return schedule


def is_valid(expression: object) -> bool:
    try:
        parse(expression)  # type: ignore[arg-type]
    except CronError:
        return False
    return True


def min_interval_minutes(expression: object) -> int | None:
    """The tier preflight's cron gap in minutes (see CronSchedule.min_interval_minutes), or
    None when `expression` is not a valid schedule (the preflight skips it; the API refuses it)."""
    try:
        return parse(expression).min_interval_minutes  # type: ignore[arg-type]
    except CronError:
        return None


# --- the parts ------------------------------------------------------------------------------


def _utc(dt: datetime) -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"expected a datetime, got {type(dt).__name__}")
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _next_day(y: int, mo: int, d: int, last: int) -> tuple[int, int, int]:
    if d < last:
        return y, mo, d + 1
    return (y + 1, 1, 1) if mo == 12 else (y, mo + 1, 1)


def _field(text: str, index: int) -> set[int]:
    name = FIELD_NAMES[index]
    lo, hi = _BOUNDS[index]
    values: set[int] = set()
    for item in text.split(","):
        if item == "":
            raise CronError(f"{name} field {text[:40]!r}: empty item in a list", field=name, part=text[:40])
        values.update(_item(item, index))
    return values


def _item(item: str, index: int) -> range:
    name = FIELD_NAMES[index]
    lo, hi = _BOUNDS[index]
    shown = item[:40]

    def bad(why: str) -> CronError:
        return CronError(f"{name} field: {shown!r} {why}", field=name, part=shown)

    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not _DIGITS.fullmatch(step_text):
            raise bad("has a step that is not a whole number (use */n or a-b/n)")
        step = int(step_text)
        if not 1 <= step <= hi:
            raise bad(f"has step {step}: a step is 1-{hi}")
    if base == "*":
        return range(lo, hi + 1, step)
    if "-" in base:
        first_text, _, last_text = base.partition("-")
        first, last = _value(first_text, index, bad), _value(last_text, index, bad)
        if first > last:
            hint = " (for a range ending on Sunday use 7, e.g. 5-7)" if index == 4 and last == 0 else ""
            raise bad(f"is a range from {first} down to {last}: a range runs from low to high{hint}")
        return range(first, last + 1, step)
    first = _value(base, index, bad)
    return range(first, (hi if slash else first) + 1, step)


def _value(text: str, index: int, bad) -> int:  # type: ignore[no-untyped-def]
    lo, hi = _BOUNDS[index]
    names = _NAMES[index]
    if names is not None and text.upper() in names:
        return names[text.upper()]
    if not _DIGITS.fullmatch(text):
        if text == "":
            raise bad("has a range with a missing end")
        if names is not None:
            kind = "JAN-DEC" if index == 3 else "SUN-SAT"
            raise bad(f"is not a number {lo}-{hi} or a name {kind}")
        raise bad(f"is not a number {lo}-{hi}")
    value = int(text)
    if not lo <= value <= hi:
        raise bad(f"is out of range {lo}-{hi}")
    return value


def _check_reachable(s: CronSchedule, parts: list[str]) -> None:
    """A schedule whose days exist in none of its months (`0 0 31 2 *`, `0 0 30 FEB *`) would
    never run: refuse it now rather than accept a function that silently never fires. Only the
    day-of-month-alone case can be empty: any real date falls on every weekday in some year,
    and an either-or day rule always has some weekday."""
    if s.dom_restricted and s.dow_restricted:
        return
    if any(d <= _LONGEST_MONTH[m] for m in s.months for d in s.days_of_month):
        return
    raise CronError(f"{' '.join(parts)!r} never runs: no month in its month field has the days "
                    f"of its day-of-month field", field="day-of-month", part=parts[2][:40])
