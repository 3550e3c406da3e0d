"""healthcheck ROLE [--timeout SECONDS] [--hostname NAME]

Exit 0 healthy, 1 unhealthy, 2 misconfigured; always one line on stdout.
ROLE: api-server, scheduler, dag-processor, triggerer, worker, s3sync, or auto: the role
the image's entrypoint wrote to $AIRFLOW_ROLE_FILE (default /tmp/airflow-role; empty
for a one-off or pass-through command, which is healthy).
--timeout   seconds before the probe gives up [env HEALTHCHECK_TIMEOUT; default 10]
--hostname  whose heartbeat counts (dag-processor, triggerer) [env HEALTHCHECK_HOSTNAME;
            default: what Airflow's default hostname_callable returns here]
"""

import os
import signal
import sys

from healthchecks import HEALTHY, MISCONFIGURED, UNHEALTHY, Misconfigured, Verdict

ROLES = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "s3sync")
ROLE_FILE = "AIRFLOW_ROLE_FILE"
DEFAULT_ROLE_FILE = "/tmp/airflow-role"


def probe_for(role: str, hostname: str | None):
    """The probe function for `role`, importing only that probe's module."""
    if role in ("api-server", "scheduler"):
        from healthchecks import http_probe

        return http_probe.api_server if role == "api-server" else http_probe.scheduler
    if role in ("dag-processor", "triggerer"):
        from healthchecks import heartbeat

        return lambda timeout: heartbeat.check(role, timeout, hostname)
    if role == "worker":
        from healthchecks import worker

        return worker.check
    return _s3sync


def _s3sync(timeout: float) -> Verdict:
    """`s3sync health` with the same settings: the sidecar's status file."""
    from pathlib import Path

    from s3sync.status import DEFAULT_MAX_AGE, DEFAULT_STATUS_FILE, judge

    status_file = Path(os.environ.get("S3SYNC_STATUS_FILE", DEFAULT_STATUS_FILE))
    healthy, line = judge(status_file, float(os.environ.get("S3SYNC_HEALTH_MAX_AGE", DEFAULT_MAX_AGE)))
    return Verdict(HEALTHY if healthy else UNHEALTHY, line)


def parse(argv: list[str]) -> tuple[str, float, str | None]:
    """Hand-rolled: argparse would cost more to import than most probes take."""
    role, hostname = None, os.environ.get("HEALTHCHECK_HOSTNAME")
    timeout = os.environ.get("HEALTHCHECK_TIMEOUT", "10")
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            raise SystemExit(__doc__)
        if arg in ("--timeout", "--hostname") and not args:
            raise Misconfigured(f"{arg} needs a value")
        if arg == "--timeout":
            timeout = args.pop(0)
        elif arg == "--hostname":
            hostname = args.pop(0)
        elif role is None and (arg in ROLES or arg == "auto"):
            role = arg
        else:
            raise Misconfigured(f"unexpected argument {arg!r} (roles: {', '.join(ROLES)})")
    if role is None:
        raise Misconfigured(f"name a role: {', '.join(ROLES)}")
    try:
        seconds = float(timeout)
    except ValueError:
        raise Misconfigured(f"--timeout is not a number: {timeout!r}") from None
    if seconds <= 0:
        raise Misconfigured(f"--timeout must be > 0: {timeout!r}")
    return role, seconds, hostname


def main(argv: list[str] | None = None) -> int:
    try:
        role, timeout, hostname = parse(sys.argv[1:] if argv is None else argv)
        role = role_from_file() if role == "auto" else role
        use_settings_from_parts()
        if role:
            verdict = run(probe_for(role, hostname), timeout)
        else:
            verdict = Verdict(HEALTHY, "healthy: a one-off or pass-through command, nothing to probe")
    except Misconfigured as exc:
        verdict = Verdict(MISCONFIGURED, f"misconfigured: {exc}")
    print(verdict.line, flush=True)
    return verdict.code


def use_settings_from_parts() -> None:
    """The image's entrypoint builds the database and broker URLs from the parts ECS injects
    (AIRFLOW_DB_*, AIRFLOW_REDIS_*); a probe runs beside it with the container's environment,
    so it builds the same URLs the same way."""
    if not any(name.startswith(("AIRFLOW_DB_", "AIRFLOW_REDIS_")) for name in os.environ):
        return
    from entrypoint import ConfigError
    from entrypoint.connections import apply_settings_from_parts

    try:
        apply_settings_from_parts(os.environ)
    except ConfigError as exc:
        raise Misconfigured(str(exc)) from None


def role_from_file() -> str:
    path = os.environ.get(ROLE_FILE, DEFAULT_ROLE_FILE)
    try:
        with open(path) as file:
            role = file.read().strip()
    except FileNotFoundError:
        raise Misconfigured(f"no role file {path}: not started by airflow-entrypoint") from None
    if role and role not in ROLES:
        raise Misconfigured(f"{path} names no role: {role!r}")
    return role


def run(probe, timeout: float) -> Verdict:
    """Run a probe; past `timeout` (plus a second for the probe's own timeouts) it is unhealthy."""

    def expired(*_args):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout + 1)
    try:
        return probe(timeout)
    except Misconfigured as exc:
        return Verdict(MISCONFIGURED, f"misconfigured: {exc}")
    except TimeoutError:
        return Verdict(UNHEALTHY, f"unhealthy: no answer within {timeout:g}s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
