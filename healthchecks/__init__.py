"""One cheap probe per Airflow role. Never imports Airflow: stdlib plus the drivers in the image."""

from dataclasses import dataclass

HEALTHY, UNHEALTHY, MISCONFIGURED = 0, 1, 2


@dataclass(frozen=True)
class Verdict:
    code: int  # HEALTHY, UNHEALTHY or MISCONFIGURED
    line: str  # what was checked and, if it failed, why


class Misconfigured(Exception):
    """The probe cannot tell: its settings are missing or wrong."""
