"""RotationRules: ``AutomaticallyAfterDays``, ``ScheduleExpression`` (``rate()`` and AWS's
six-field ``cron()``) and ``Duration``, validated as Secrets Manager documents them, and the next
rotation window computed from a given time (no clock here: the caller passes it).

What AWS documents and this module enforces (Secrets Manager User Guide, "Schedule expressions in
Secrets Manager rotation"):

- ``rate(N hour|hours|day|days)``: at least every four hours, at most every 999 days; the window
  of a rate in days opens at midnight UTC of the day the rotation is due.
- ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: minutes must be ``0`` (windows open
  on the hour), the year must be ``*``; one of the two day fields is ``?``; wildcards
  ``, - * /`` everywhere, ``L`` in both day fields, ``#`` in the day of the week; no two
  rotations closer than four hours.
- ``Duration`` (``Nh``): at least one hour; a window must not run into the next UTC day (schedules
  in days) nor into the next window (schedules in hours). Without it, a window closes after one
  hour (schedules in hours) or at the end of the UTC day (schedules in days).
- ``AutomaticallyAfterDays``: 1 to 1000, the same as ``rate(N days)``; not together with
  ``ScheduleExpression``.

AWS rotates at a random moment inside the window; openkms rotates when the window opens (the
scheduler runs every ``scheduler_interval_seconds``), which docs/compatibility.md notes.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MIN_INTERVAL_HOURS = 4
MAX_RATE_DAYS = 999
MAX_AFTER_DAYS = 1000
# A cron schedule whose next match lies further than this is refused (``cron(0 0 30 2 ? *)``
# never matches; Feb 29 does every four years: AWS supports no schedules more than a year apart).
_SEARCH_DAYS = 366 * 4 + 1

_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_MONTHS = {k.upper(): v for k, v in _MONTHS.items()}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_DURATION = re.compile(r"(\d+)h")


class ScheduleError(ValueError):
    """RotationRules that AWS would refuse; the message says why (InvalidParameterException)."""


# --- cron fields ---------------------------------------------------------------------------------
def _number(text: str, low: int, high: int, names: dict[str, int] | None, field: str) -> int:
    upper = text.upper()
    if names is not None and upper in names:
        return names[upper]
    if not text.isdigit():
        raise ScheduleError(f"cron(): {text!r} is not a valid {field} value")
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"cron(): {field} values go from {low} to {high}, not {value}")
    return value


def _values(
    spec: str, low: int, high: int, field: str, names: dict[str, int] | None = None
) -> frozenset[int]:
    """The values a field of ``,``-separated items (``*``, ``a``, ``a-b``, ``a/n``, ``a-b/n``,
    ``*/n``) selects."""
    found: set[int] = set()
    for item in spec.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"cron(): {item!r} has an invalid increment in {field}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _number(first, low, high, names, field)
            end = _number(last, low, high, names, field)
            if end < start:
                raise ScheduleError(f"cron(): the range {base!r} in {field} runs backwards")
        else:
            start = _number(base, low, high, names, field)
            end = high if slash else start
        found.update(range(start, end + 1, step))
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class _DaySpec:
    """A day-of-month or day-of-week field: plain values, or one of the special forms."""

    any: bool = False  # ``?`` (or ``*``)
    values: frozenset[int] = frozenset()
    last: bool = False  # ``L`` (dom: last day of the month; dow: Saturday)
    last_weekday: int | None = None  # dow ``nL``: the last such weekday of the month
    nth: tuple[int, int] | None = None  # dow ``d#n``: the n-th such weekday of the month


def _dom(spec: str) -> _DaySpec:
    if spec in ("?", "*"):
        return _DaySpec(any=True)
    if spec == "L":
        return _DaySpec(last=True)
    return _DaySpec(values=_values(spec, 1, 31, "Day-of-month"))


def _dow(spec: str) -> _DaySpec:
    if spec in ("?", "*"):
        return _DaySpec(any=True)
    if spec == "L":
        return _DaySpec(values=frozenset({7}))
    if spec.endswith("L"):
        return _DaySpec(last_weekday=_number(spec[:-1], 1, 7, _DAYS, "Day-of-week"))
    if "#" in spec:
        day, _, nth = spec.partition("#")
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleError(f"cron(): {spec!r}: the week after # goes from 1 to 5")
        return _DaySpec(nth=(_number(day, 1, 7, _DAYS, "Day-of-week"), int(nth)))
    return _DaySpec(values=_values(spec, 1, 7, "Day-of-week", _DAYS))


def _cron_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday, as cron() counts."""
    return (day.weekday() + 1) % 7 + 1


@dataclass(frozen=True, slots=True)
class Cron:
    hours: tuple[int, ...]
    dom: _DaySpec
    months: frozenset[int]
    dow: _DaySpec

    @classmethod
    def parse(cls, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleError(
                "cron(): six fields are required (Minutes Hours Day-of-month Month "
                f"Day-of-week Year), not {len(fields)}"
            )
        minutes, hours, dom, month, dow, year = fields
        if minutes != "0":
            raise ScheduleError("cron(): the Minutes field must be 0 (windows open on the hour)")
        if year != "*":
            raise ScheduleError("cron(): the Year field must be *")
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(
                "cron(): one of Day-of-month and Day-of-week must be ?, and only one"
            )
        cron = cls(
            hours=tuple(sorted(_values(hours, 0, 23, "Hours"))),
            dom=_dom(dom),
            months=_values(month, 1, 12, "Month", _MONTHS),
            dow=_dow(dow),
        )
        return cron

    def matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        last_day = calendar.monthrange(day.year, day.month)[1]
        if not self.dom.any:
            if self.dom.last:
                return day.day == last_day
            return day.day in self.dom.values
        spec, weekday = self.dow, _cron_weekday(day)
        if spec.any:
            return True
        if spec.last_weekday is not None:
            return weekday == spec.last_weekday and day.day + 7 > last_day
        if spec.nth is not None:
            return weekday == spec.nth[0] and (day.day - 1) // 7 + 1 == spec.nth[1]
        return weekday in spec.values

    def next_after(self, moment: datetime) -> datetime | None:
        """The first hour this schedule names strictly after ``moment``."""
        day = moment.date()
        for _ in range(_SEARCH_DAYS):
            if self.matches(day):
                for hour in self.hours:
                    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
                    if start > moment:
                        return start
            day += timedelta(days=1)
        return None


# --- rules ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RotationSchedule:
    """Validated RotationRules. ``expression`` and ``after_days`` are what the caller gave (for
    DescribeSecret); ``duration`` is the ``Nh`` text or None."""

    after_days: int | None
    expression: str | None
    duration: str | None
    interval_hours: int  # for rate(): the interval; for cron(): the smallest gap between runs
    cron: Cron | None
    window_hours: int | None  # the Duration, parsed

    @property
    def in_hours(self) -> bool:
        """A schedule in hours (rate(N hours), or a cron that runs more than once a day)."""
        return self.interval_hours < 24

    def window_after(self, last: datetime) -> tuple[datetime, datetime]:
        """The next rotation window (start, end) after a rotation (or the configuration of
        rotation) at ``last``."""
        if self.cron is not None:
            start = self.cron.next_after(last)
            if start is None:  # cannot happen for a schedule parse() accepted
                raise ScheduleError("cron(): the schedule never runs")
        elif self.in_hours:
            start = (last + timedelta(hours=self.interval_hours)).replace(
                minute=0, second=0, microsecond=0
            )
        else:
            day = last.date() + timedelta(days=self.interval_hours // 24)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if self.window_hours is not None:
            length = timedelta(hours=self.window_hours)
        elif self.in_hours:
            length = timedelta(hours=1)
        else:  # to the end of the UTC day
            length = timedelta(hours=24 - start.hour)
        return start, start + length

    def next_rotation_date(self, last: datetime) -> datetime:
        """DescribeSecret's NextRotationDate: the last second of the next window, as AWS shows
        it."""
        return self.window_after(last)[1] - timedelta(seconds=1)


def parse_duration(text: str) -> int:
    match = _DURATION.fullmatch(text)
    if match is None or not 1 <= int(match.group(1)) <= 24:
        raise ScheduleError(
            f"Duration: {text!r} is not a window length from 1h to 24h (for example 3h)"
        )
    return int(match.group(1))


def _min_gap_hours(cron: Cron) -> int:
    """The smallest number of hours between two runs of ``cron`` over a sample of 400 days
    (a leap year and the months around it), or 24 * 400 when it runs once in the sample."""
    moment = datetime(2027, 12, 1, tzinfo=UTC)
    end = moment + timedelta(days=400)
    gap: int | None = None
    previous: datetime | None = None
    while True:
        nxt = cron.next_after(moment)
        if nxt is None or nxt > end:
            break
        if previous is not None:
            hours = int((nxt - previous).total_seconds() // 3600)
            gap = hours if gap is None else min(gap, hours)
        previous = moment = nxt
    return gap if gap is not None else 24 * 400


def parse_rules(
    after_days: int | None, expression: str | None, duration: str | None
) -> RotationSchedule:
    """RotationRules as given to RotateSecret; ScheduleError when AWS would refuse them."""
    if after_days is not None and expression is not None:
        raise ScheduleError(
            "You can't specify both AutomaticallyAfterDays and ScheduleExpression."
        )
    if after_days is None and expression is None:
        raise ScheduleError(
            "RotationRules must specify AutomaticallyAfterDays or ScheduleExpression."
        )
    window = parse_duration(duration) if duration is not None else None
    cron: Cron | None = None
    if after_days is not None:
        if not 1 <= after_days <= MAX_AFTER_DAYS:
            raise ScheduleError(
                f"AutomaticallyAfterDays: from 1 to {MAX_AFTER_DAYS}, not {after_days}"
            )
        interval = after_days * 24
    else:
        assert expression is not None
        text = expression.strip()
        rate = _RATE.fullmatch(text)
        cron_match = _CRON.fullmatch(text)
        if rate is not None:
            value, unit = int(rate.group(1)), rate.group(2)
            if unit.startswith("hour"):
                if not MIN_INTERVAL_HOURS <= value <= 23:
                    raise ScheduleError(
                        "rate(): a rate in hours goes from 4 to 23 hours (use days beyond)"
                    )
                interval = value
            else:
                if not 1 <= value <= MAX_RATE_DAYS:
                    raise ScheduleError(f"rate(): a rate in days goes from 1 to {MAX_RATE_DAYS}")
                interval = value * 24
        elif cron_match is not None:
            cron = Cron.parse(cron_match.group(1))
            if cron.next_after(datetime(2027, 1, 1, tzinfo=UTC)) is None:
                raise ScheduleError("cron(): the schedule never runs")
            interval = _min_gap_hours(cron)
            if interval < MIN_INTERVAL_HOURS:
                raise ScheduleError(
                    "cron(): rotations must be at least four hours apart "
                    f"(this schedule runs {interval} hour(s) apart)"
                )
        else:
            raise ScheduleError(
                f"ScheduleExpression: {expression!r} is neither a rate() nor a cron() expression"
            )
    schedule = RotationSchedule(after_days, expression, duration, interval, cron, window)
    _check_window(schedule)
    return schedule


def _check_window(schedule: RotationSchedule) -> None:
    if schedule.window_hours is None:
        return
    if schedule.in_hours:
        if schedule.window_hours > schedule.interval_hours:
            raise ScheduleError(
                "Duration: the rotation window must not extend into the next rotation window"
            )
        return
    start_hours = schedule.cron.hours if schedule.cron is not None else (0,)
    if max(start_hours) + schedule.window_hours > 24:
        raise ScheduleError("Duration: the rotation window must not extend into the next UTC day")


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
