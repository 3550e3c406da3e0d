"""`healthcheck ROLE`: exit 0 healthy, 1 unhealthy, 2 misconfigured; one line on stdout."""

import argparse
import os
import signal
from functools import partial

from healthchecks import MISCONFIGURED, UNHEALTHY, Misconfigured, Verdict, heartbeat, http_probe, worker


def _s3sync(timeout: float) -> Verdict:
    from pathlib import Path

    from s3sync.status import judge

    status_file = Path(os.environ.get("S3SYNC_STATUS_FILE", "/tmp/s3sync/status.json"))
    healthy, line = judge(status_file, float(os.environ.get("S3SYNC_HEALTH_MAX_AGE", "300")))
    return Verdict(0 if healthy else UNHEALTHY, line)


def probes(hostname: str | None) -> dict:
    return {
        "api-server": http_probe.api_server,
        "scheduler": http_probe.scheduler,
        "dag-processor": partial(heartbeat.check, "dag-processor", hostname=hostname),
        "triggerer": partial(heartbeat.check, "triggerer", hostname=hostname),
        "worker": worker.check,
        "s3sync": _s3sync,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__)
    parser.add_argument("role", choices=list(probes(None)))
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("HEALTHCHECK_TIMEOUT", "10")),
        help="seconds before the probe gives up [env HEALTHCHECK_TIMEOUT; default 10]",
    )
    parser.add_argument(
        "--hostname",
        default=os.environ.get("HEALTHCHECK_HOSTNAME"),
        help="the host whose heartbeat counts [env HEALTHCHECK_HOSTNAME; default: as Airflow]",
    )
    args = parser.parse_args(argv)
    verdict = run(probes(args.hostname)[args.role], args.timeout)
    print(verdict.line, flush=True)
    return verdict.code


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
