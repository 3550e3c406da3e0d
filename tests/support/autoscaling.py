"""Replays a DesiredWorkers series through rendered autoscaling documents, minute by minute,
as CloudWatch and Application Auto Scaling evaluate them:

- each alarm sees one datapoint per Period (its Statistic over the readings in it), and is in
  ALARM when DatapointsToAlarm of its last EvaluationPeriods datapoints breach; missing data
  is treated as its TreatMissingData says (notBreaching; missing: judged on what is there,
  no state change when nothing is);
- while an alarm is in ALARM its step policy runs every period (step scaling keeps adjusting
  until the alarm returns to OK); ExactCapacity sets the count the step names, clamped to
  the target's min and max; a scale-in waits for the policy's Cooldown;
- a scheduled action sets min and max when its cron (six fields, in its Timezone) matches.

It models the documented behaviour, not AWS's internals: alarm evaluation delays and task
start times are not in it.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DAYS = {name: index for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
MONTHS = {
    name: index
    for index, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}


@dataclass
class Alarm:
    document: dict
    policy: dict
    datapoints: list[float | None] = field(default_factory=list)
    state: str = "INSUFFICIENT_DATA"

    def observe(self, readings: list[float]) -> None:
        statistic = self.document["Statistic"]
        if not readings:
            self.datapoints.append(None)
        elif statistic == "Maximum":
            self.datapoints.append(max(readings))
        elif statistic == "Minimum":
            self.datapoints.append(min(readings))
        else:
            self.datapoints.append(sum(readings) / len(readings))
        window = self.datapoints[-self.document["EvaluationPeriods"] :]
        treat = self.document.get("TreatMissingData", "missing")
        present = [point for point in window if point is not None]
        if not present and treat in ("missing", "ignore"):
            return  # nothing to judge on: the state stays
        breaching = sum(self.breaches(point) for point in present)
        if treat == "breaching":
            breaching += len(window) - len(present)
        self.state = "ALARM" if breaching >= self.document["DatapointsToAlarm"] else "OK"

    def breaches(self, value: float) -> bool:
        threshold, operator = self.document["Threshold"], self.document["ComparisonOperator"]
        return {
            "GreaterThanOrEqualToThreshold": value >= threshold,
            "GreaterThanThreshold": value > threshold,
            "LessThanThreshold": value < threshold,
            "LessThanOrEqualToThreshold": value <= threshold,
        }[operator]

    def latest(self) -> float | None:
        return next((point for point in reversed(self.datapoints) if point is not None), None)


@dataclass
class Simulation:
    minimum: int
    maximum: int
    alarms: list[Alarm]
    schedules: list[dict]
    capacity: int = 0
    last_scale_in: dict[str, datetime] = field(default_factory=dict)
    timeline: list[tuple[datetime, int]] = field(default_factory=list)

    @classmethod
    def from_documents(cls, target: dict, policies: dict[str, dict], alarms: dict[str, dict], schedules):
        """`alarms` maps an alarm name to the policy name it runs."""
        by_policy = {policy["PolicyName"]: policy for policy in policies.values()}
        return cls(
            target["MinCapacity"],
            target["MaxCapacity"],
            [Alarm(alarm, by_policy[policy]) for alarm, policy in alarms.values()],
            list(schedules),
            capacity=target["MinCapacity"],
        )

    def run(self, readings: list[tuple[datetime, float]], start: datetime, end: datetime) -> list:
        """Readings are (time, DesiredWorkers); returns [(minute end, task count)]."""
        minute = start
        while minute < end:
            following = minute + timedelta(minutes=1)
            self._schedules(following)
            in_period = [value for at, value in readings if minute <= at < following]
            for alarm in self.alarms:
                alarm.observe(in_period)
            for alarm in self.alarms:
                if alarm.state == "ALARM":
                    self._apply(alarm, following)
            self.timeline.append((following, self.capacity))
            minute = following
        return self.timeline

    def _schedules(self, at: datetime) -> None:
        for action in self.schedules:
            if cron_matches(action["Schedule"], at.astimezone(ZoneInfo(action.get("Timezone", "UTC")))):
                limits = action["ScalableTargetAction"]
                self.minimum = limits.get("MinCapacity", self.minimum)
                self.maximum = limits.get("MaxCapacity", self.maximum)
        self.capacity = min(max(self.capacity, self.minimum), self.maximum)

    def _apply(self, alarm: Alarm, at: datetime) -> None:
        config = alarm.policy["StepScalingPolicyConfiguration"]
        value = alarm.latest()
        if value is None:
            return
        relative = value - alarm.document["Threshold"]
        for step in config["StepAdjustments"]:
            low = step.get("MetricIntervalLowerBound", float("-inf"))
            high = step.get("MetricIntervalUpperBound", float("inf"))
            if low <= relative < high:
                break
        else:
            return
        assert config["AdjustmentType"] == "ExactCapacity", "the simulation models ExactCapacity only"
        wanted = min(max(step["ScalingAdjustment"], self.minimum), self.maximum)
        name = alarm.policy["PolicyName"]
        if wanted < self.capacity:
            since = self.last_scale_in.get(name)
            if since is not None and (at - since).total_seconds() < config.get("Cooldown", 300):
                return
            self.last_scale_in[name] = at
        self.capacity = wanted


def from_rendered(out: Path) -> Simulation:
    """The simulation of what `taskdefs render` wrote into `out`. Each alarm runs its own
    policy (at deployment its AlarmActions is that policy's ARN)."""

    def load(name: str) -> dict:
        return json.loads((out / name).read_text())

    policies = {name: load(f"worker-{name}.scaling-policy.json") for name in ("follow-backlog", "idle")}
    alarms = {
        "backlog": (load("worker-backlog.alarm.json"), policies["follow-backlog"]["PolicyName"]),
        "idle": (load("worker-idle.alarm.json"), policies["idle"]["PolicyName"]),
    }
    schedules = [load(path.name) for path in sorted(out.glob("*.scheduled-action.json"))]
    return Simulation.from_documents(load("worker.scalable-target.json"), policies, alarms, schedules)


def cron_matches(schedule: str, at: datetime) -> bool:
    """Application Auto Scaling's cron(min hour day-of-month month day-of-week year) at `at`."""
    fields = re.fullmatch(r"cron\((.*)\)", schedule)[1].split()
    minute, hour, day, month, weekday, year = fields
    iso_weekday = at.isoweekday() % 7 + 1  # cron counts SUN=1 .. SAT=7
    return (
        _field(minute, at.minute, {})
        and _field(hour, at.hour, {})
        and _field(day, at.day, {})
        and _field(month, at.month, MONTHS)
        and _field(weekday, iso_weekday, DAYS)
        and _field(year, at.year, {})
    )


def _field(spec: str, value: int, names: dict[str, int]) -> bool:
    if spec in ("*", "?"):
        return True
    for part in spec.split(","):
        low, _, high = part.partition("-")
        first, last = _number(low, names), _number(high or low, names)
        if first <= value <= last:
            return True
    return False


def _number(text: str, names: dict[str, int]) -> int:
    return names[text.upper()] if text.upper() in names else int(text)


def at_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
