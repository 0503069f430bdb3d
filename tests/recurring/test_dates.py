"""The schedule's date arithmetic: anchored to the start (31 Jan → 28/29 Feb → 31 Mar),
weekly and fortnightly by days, in the organisation's time zone."""
from __future__ import annotations

import calendar
import datetime as dt
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.recurring import (
    add_months, next_schedule_date, organisation_today, plan_first_date_on_or_after, plan_next_date, schedule_date,
)

FREQUENCIES = ["WEEKLY", "FORTNIGHTLY", "MONTHLY", "QUARTERLY", "ANNUALLY"]
MONTHS = {"MONTHLY": 1, "QUARTERLY": 3, "ANNUALLY": 12}
DAYS = {"WEEKLY": 7, "FORTNIGHTLY": 14}
dates = st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2090, 12, 31))


def plan(start: dt.date, frequency: str, anchor: dt.date | None = None):
    return SimpleNamespace(start_date=start, frequency=frequency, anchor_date=anchor)


def run(start: dt.date, frequency: str, count: int) -> list[dt.date]:
    out, day = [start], start
    for _ in range(count - 1):
        day = plan_next_date(plan(start, frequency), day)
        out.append(day)
    return out


def test_month_ends_are_anchored_to_the_start_day():
    assert run(dt.date(2027, 1, 31), "MONTHLY", 6) == [
        dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31), dt.date(2027, 4, 30), dt.date(2027, 5, 31),
        dt.date(2027, 6, 30)]
    # A leap year: 29 February, then back to the 31st.
    assert run(dt.date(2028, 1, 31), "MONTHLY", 3) == [dt.date(2028, 1, 31), dt.date(2028, 2, 29), dt.date(2028, 3, 31)]
    assert run(dt.date(2027, 1, 30), "MONTHLY", 3) == [dt.date(2027, 1, 30), dt.date(2027, 2, 28), dt.date(2027, 3, 30)]
    assert run(dt.date(2027, 11, 30), "QUARTERLY", 4) == [
        dt.date(2027, 11, 30), dt.date(2028, 2, 29), dt.date(2028, 5, 30), dt.date(2028, 8, 30)]


def test_29_february_annually_is_28_february_until_the_next_leap_year():
    assert run(dt.date(2028, 2, 29), "ANNUALLY", 5) == [
        dt.date(2028, 2, 29), dt.date(2029, 2, 28), dt.date(2030, 2, 28), dt.date(2031, 2, 28), dt.date(2032, 2, 29)]


def test_weekly_and_fortnightly_count_days_across_months_and_years():
    assert run(dt.date(2027, 12, 24), "WEEKLY", 3) == [dt.date(2027, 12, 24), dt.date(2027, 12, 31), dt.date(2028, 1, 7)]
    assert run(dt.date(2028, 2, 22), "FORTNIGHTLY", 3) == [dt.date(2028, 2, 22), dt.date(2028, 3, 7), dt.date(2028, 3, 21)]


def test_the_next_date_after_any_day_and_the_first_on_or_after():
    monthly = plan(dt.date(2027, 1, 31), "MONTHLY")
    assert plan_next_date(monthly, dt.date(2026, 12, 1)) == dt.date(2027, 1, 31)  # before the start: the start
    assert plan_next_date(monthly, dt.date(2027, 2, 27)) == dt.date(2027, 2, 28)
    assert plan_next_date(monthly, dt.date(2027, 2, 28)) == dt.date(2027, 3, 31)
    assert plan_first_date_on_or_after(monthly, dt.date(2027, 2, 28)) == dt.date(2027, 2, 28)
    # A re-anchored plan (its next date moved) counts from the new anchor.
    moved = plan(dt.date(2027, 1, 31), "MONTHLY", anchor=dt.date(2027, 3, 15))
    assert plan_next_date(moved, dt.date(2027, 3, 15)) == dt.date(2027, 4, 15)


@given(start=dates, index=st.integers(min_value=0, max_value=400), frequency=st.sampled_from(FREQUENCIES))
def test_every_schedule_date_is_a_whole_number_of_steps_from_the_anchor(start, index, frequency):
    day = schedule_date(start, frequency, index)
    if frequency in DAYS:
        assert (day - start).days == DAYS[frequency] * index
    else:
        months = (day.year - start.year) * 12 + day.month - start.month
        assert months == MONTHS[frequency] * index
        # The start's day where the month has it, else the month's last day: never drifting.
        assert day.day == min(start.day, calendar.monthrange(day.year, day.month)[1])


@given(start=dates, after=dates, frequency=st.sampled_from(FREQUENCIES))
def test_the_next_date_is_the_first_schedule_date_after(start, after, frequency):
    nxt = next_schedule_date(start, frequency, after)
    assert nxt > after and nxt >= start
    # It is on the schedule, and the schedule date before it (if any) is not after `after`.
    index = 0
    while schedule_date(start, frequency, index) < nxt:
        index += 1
    assert schedule_date(start, frequency, index) == nxt
    if index > 0:
        assert schedule_date(start, frequency, index - 1) <= after


@given(day=dates, months=st.integers(min_value=0, max_value=240))
def test_adding_months_then_the_day_is_clamped_not_carried(day, months):
    moved = add_months(day, months)
    assert moved.day <= day.day
    assert moved.day == day.day or moved.day == calendar.monthrange(moved.year, moved.month)[1]


@pytest.mark.parametrize(("utc", "local"), [
    # 1 Feb 2027 01:00 in Sydney (summer time, UTC+11) is still 31 Jan in UTC.
    (dt.datetime(2027, 1, 31, 14, 0, tzinfo=dt.timezone.utc), dt.date(2027, 2, 1)),
    (dt.datetime(2027, 1, 31, 12, 59, tzinfo=dt.timezone.utc), dt.date(2027, 1, 31)),
    # Winter (UTC+10).
    (dt.datetime(2027, 6, 30, 14, 0, tzinfo=dt.timezone.utc), dt.date(2027, 7, 1)),
    (dt.datetime(2027, 6, 30, 13, 59, tzinfo=dt.timezone.utc), dt.date(2027, 6, 30)),
])
def test_today_is_the_organisations_day(utc, local):
    assert organisation_today(SimpleNamespace(), utc) == local
    # An organisation of its own time zone one day: its own day.
    assert organisation_today(SimpleNamespace(time_zone="Australia/Perth"), utc) == (utc + dt.timedelta(hours=8)).date()
