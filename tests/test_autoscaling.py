"""The rendered autoscaling documents, replayed minute by minute against a DesiredWorkers
series (tests/support/autoscaling.py): 0 -> 1 within one metric period, the count the
backlog needs up to the maximum, 0 again after the idle minutes, nothing off-hours."""

import math
from datetime import timedelta
from pathlib import Path

import pytest

from taskdefs.cli import main
from tests.support.autoscaling import at_utc, cron_matches, from_rendered

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "ecs" / "settings.example.toml"
CONCURRENCY, MAXIMUM, IDLE_MINUTES = 8, 10, 15  # the example's [workers]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    assert main(["render", "--settings", str(EXAMPLE), "--out", str(out)]) == 0
    return out


def desired(backlog: int) -> int:
    """What scaling-metrics prints for this backlog."""
    return min(math.ceil(backlog / CONCURRENCY), MAXIMUM)


def readings(start: str, phases: list[tuple[int, int]], every: int = 15) -> list:
    """(minutes, backlog) phases from `start` (UTC), one reading every `every` seconds."""
    at, series = at_utc(start), []
    for minutes, backlog in phases:
        for _ in range(minutes * 60 // every):
            series.append((at, desired(backlog)))
            at += timedelta(seconds=every)
    return series


def first(timeline, predicate):
    return next(at for at, count in timeline if predicate(count))


def test_a_burst_scales_from_zero_within_a_period_follows_the_backlog_and_sleeps_again(rendered):
    # Tuesday 24 November 2026, 09:00 in Dublin (UTC in winter); the burst starts 09:10:20.
    series = readings("2026-11-24T09:00:20", [(10, 0), (6, 50), (4, 20), (5, 500), (40, 0)])
    start, end = at_utc("2026-11-24T09:00:00"), at_utc("2026-11-24T10:10:00")
    timeline = from_rendered(rendered).run(series, start, end)
    counts = dict(timeline)
    first_work = next(at for at, value in series if value > 0)
    first_worker = first(timeline, lambda count: count > 0)
    assert (first_worker - first_work).total_seconds() <= 60  # 0 -> 1 within one metric period
    assert counts[at_utc("2026-11-24T09:12:00")] == desired(50) == 7  # ceil(50 / 8)
    assert counts[at_utc("2026-11-24T09:18:00")] == desired(20) == 3  # in again as the backlog shrinks
    assert counts[at_utc("2026-11-24T09:24:00")] == MAXIMUM  # 500 queued: capped at max
    last_work = max(at for at, value in series if value > 0)
    asleep = first([(at, c) for at, c in timeline if at > last_work], lambda count: count == 0)
    idle_for = (asleep - last_work).total_seconds() / 60
    assert IDLE_MINUTES <= idle_for <= IDLE_MINUTES + 1, idle_for  # back to 0 after the idle minutes
    assert all(count > 0 for at, count in timeline if first_worker <= at < asleep)


def test_off_hours_hold_the_workers_at_zero_until_on_hours(rendered):
    # Friday 27 November 2026: work from 19:50 until Saturday 01:00; off-hours from 20:00 Friday
    # to 07:00 Monday in Dublin, so nothing runs until then.
    series = readings("2026-11-27T19:50:00", [(310, 32)])
    monday = readings("2026-11-30T06:50:00", [(30, 32)])
    timeline = from_rendered(rendered).run(
        series + monday, at_utc("2026-11-27T19:45:00"), at_utc("2026-11-30T07:30:00")
    )
    counts = dict(timeline)
    assert counts[at_utc("2026-11-27T19:55:00")] == 4  # ceil(32 / 8)
    off, on = at_utc("2026-11-27T20:00:00"), at_utc("2026-11-30T07:00:00")
    assert all(count == 0 for at, count in timeline if off <= at < on)
    assert counts[at_utc("2026-11-30T07:02:00")] == 4


@pytest.mark.parametrize(
    "schedule, at, matches",
    [
        ("cron(0 20 ? * MON-FRI *)", "2026-11-27T20:00:00", True),  # a Friday
        ("cron(0 20 ? * MON-FRI *)", "2026-11-28T20:00:00", False),  # a Saturday
        ("cron(0 20 ? * MON-FRI *)", "2026-11-27T20:01:00", False),
        ("cron(30 7 1 JAN,JUL ? 2027)", "2027-07-01T07:30:00", True),
    ],
)
def test_the_replay_reads_cron_as_application_auto_scaling_does(schedule, at, matches):
    assert cron_matches(schedule, at_utc(at)) is matches
