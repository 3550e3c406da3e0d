"""One cheap probe per Airflow role. Never imports Airflow: stdlib plus the drivers in the image.

Import cost is the probe's cost, so these modules avoid heavy stdlib imports (dataclasses,
http.client, argparse, pathlib) and load drivers only in the probe that needs them.
"""

HEALTHY, UNHEALTHY, MISCONFIGURED = 0, 1, 2


class Verdict:
    __slots__ = ("code", "line")

    def __init__(self, code: int, line: str):
        self.code = code  # HEALTHY, UNHEALTHY or MISCONFIGURED
        self.line = line  # what was checked and, if it failed, why


class Misconfigured(Exception):
    """The probe cannot tell: its settings are missing or wrong."""
