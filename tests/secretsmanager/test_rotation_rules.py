"""RotationRules: AWS's rate() and cron() syntax and limits, Duration, and the next rotation
window, computed from given times (no clock, no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openkms.secretsmanager.rotation.rules import ScheduleError, parse_rules


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(expression: str | None, last: str, *, days: int | None = None,
           duration: str | None = None) -> tuple[str, str]:
    start, end = parse_rules(days, expression, duration).window_after(at(last))
    return start.isoformat()[:16], end.isoformat()[:16]


@pytest.mark.parametrize(
    ("expression", "last", "expected"),
    [
        # rate in days: the window opens at midnight of the day it is due, to the end of the day
        ("rate(10 days)", "2026-12-06T15:20", ("2026-12-16T00:00", "2026-12-17T00:00")),
        ("rate(1 day)", "2026-12-31T23:59", ("2027-01-01T00:00", "2027-01-02T00:00")),
        # rate in hours: on the hour, one hour long by default
        ("rate(4 hours)", "2026-12-06T15:20", ("2026-12-06T19:00", "2026-12-06T20:00")),
        ("rate(23 hours)", "2026-12-06T15:20", ("2026-12-07T14:00", "2026-12-07T15:00")),
        # cron: every day at 10:00, to the end of the day
        ("cron(0 10 * * ? *)", "2026-12-06T09:59", ("2026-12-06T10:00", "2026-12-07T00:00")),
        ("cron(0 10 * * ? *)", "2026-12-06T10:00", ("2026-12-07T10:00", "2026-12-08T00:00")),
        # hours in steps reset every day: 4:00 and 16:00
        ("cron(0 4/12 * * ? *)", "2026-12-06T16:30", ("2026-12-07T04:00", "2026-12-07T05:00")),
        ("cron(0 */6 * * ? *)", "2026-12-06T13:00", ("2026-12-06T18:00", "2026-12-06T19:00")),
        # the last day of the month; the first Sunday; the last Friday; weekdays by name
        ("cron(0 16 L * ? *)", "2027-02-01T00:00", ("2027-02-28T16:00", "2027-03-01T00:00")),
        ("cron(0 16 L * ? *)", "2028-02-01T00:00", ("2028-02-29T16:00", "2028-03-01T00:00")),
        ("cron(0 0 ? * SUN#1 *)", "2026-12-06T00:00", ("2027-01-03T00:00", "2027-01-04T00:00")),
        ("cron(0 8 ? * 6L *)", "2026-12-01T00:00", ("2026-12-25T08:00", "2026-12-26T00:00")),
        ("cron(0 8 ? * MON-FRI *)", "2026-12-05T09:00", ("2026-12-07T08:00", "2026-12-08T00:00")),
        ("cron(0 8 1/7 * ? *)", "2026-12-02T00:00", ("2026-12-08T08:00", "2026-12-09T00:00")),
        ("cron(0 0 1 JAN,JUL ? *)", "2026-12-06T00:00", ("2027-01-01T00:00", "2027-01-02T00:00")),
    ],
)
def test_next_window(expression: str, last: str, expected: tuple[str, str]) -> None:
    assert window(expression, last) == expected


def test_automatically_after_days_is_rate_in_days() -> None:
    assert window(None, "2026-12-06T15:20", days=30) == ("2027-01-05T00:00", "2027-01-06T00:00")


def test_duration_shortens_the_window() -> None:
    assert window("cron(0 10 * * ? *)", "2026-12-06T00:00", duration="3h") == (
        "2026-12-06T10:00",
        "2026-12-06T13:00",
    )
    assert window("rate(6 hours)", "2026-12-06T00:30", duration="6h")[1] == "2026-12-06T12:00"


def test_next_rotation_date_is_the_last_second_of_the_window() -> None:
    rules = parse_rules(7, None, None)
    assert rules.next_rotation_date(at("2026-12-06T15:20")).isoformat() == (
        "2026-12-13T23:59:59+00:00"
    )


@pytest.mark.parametrize(
    ("days", "expression", "duration", "why"),
    [
        (7, "rate(7 days)", None, "both"),
        (None, None, None, "must specify"),
        (0, None, None, "AutomaticallyAfterDays"),
        (1001, None, None, "AutomaticallyAfterDays"),
        (None, "rate(3 hours)", None, "4 to 23"),
        (None, "rate(24 hours)", None, "4 to 23"),
        (None, "rate(0 days)", None, "1 to 999"),
        (None, "rate(1000 days)", None, "1 to 999"),
        (None, "rate(5 minutes)", None, "neither"),
        (None, "every day", None, "neither"),
        (None, "cron(30 10 * * ? *)", None, "Minutes"),
        (None, "cron(0 10 * * ? 2027)", None, "Year"),
        (None, "cron(0 10 * * *)", None, "six fields"),
        (None, "cron(0 10 * * * *)", None, "only one"),
        (None, "cron(0 10 ? * ? *)", None, "only one"),
        (None, "cron(0 24 * * ? *)", None, "0 to 23"),
        (None, "cron(0 10 32 * ? *)", None, "1 to 31"),
        (None, "cron(0 10 ? * 8 *)", None, "1 to 7"),
        (None, "cron(0 10 ? * FOO *)", None, "valid"),
        (None, "cron(0 10 ? * 2#6 *)", None, "1 to 5"),
        (None, "cron(0 10 30 2 ? *)", None, "never"),
        (None, "cron(0 * * * ? *)", None, "four hours"),
        (None, "cron(0 1,3 * * ? *)", None, "four hours"),
        (None, "cron(0 10/0 * * ? *)", None, "increment"),
        (None, "cron(0 20-10 * * ? *)", None, "backwards"),
        (None, "cron(0 10 * * ? *)", "15h", "next UTC day"),
        (None, "rate(4 hours)", "5h", "next rotation window"),
        (None, "rate(1 day)", "0h", "Duration"),
        (None, "rate(1 day)", "25h", "Duration"),
    ],
)
def test_refused_as_aws_refuses(
    days: int | None, expression: str | None, duration: str | None, why: str
) -> None:
    with pytest.raises(ScheduleError, match=why):
        parse_rules(days, expression, duration)


def test_a_schedule_keeps_what_was_given() -> None:
    rules = parse_rules(None, "cron(0 4/12 * * ? *)", "2h")
    given = (rules.expression, rules.duration, rules.after_days)
    assert given == ("cron(0 4/12 * * ? *)", "2h", None)
    assert rules.in_hours and rules.interval_hours == 12
