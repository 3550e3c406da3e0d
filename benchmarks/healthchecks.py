"""Our probes against the standard ones, per role, on a running local stack.

For each role: median wall seconds, CPU seconds (user + system, children included) and
max RSS of `healthcheck ROLE` and of the usual command (`airflow jobs check --local`,
`celery inspect ping`), over several runs, printed as a table with the CPU ratio.

    .venv/bin/python -m benchmarks.healthchecks [--runs 5]     (needs GNU time: apt-get install time)
"""

import argparse
import os
import socket
import statistics
import tempfile
import time

from tests.e2e.stack import BIN, LocalStack

CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"
GNU_TIME = "/usr/bin/time"  # Debian package `time`


def measure(command: list[str], env: dict) -> tuple[float, float, float, int]:
    """(wall s, CPU s, max RSS MB, exit code) of one run.

    Run under GNU time, whose own few MB are all that a forked child inherits: a child
    forked from this (large) Python process would report this process's RSS as its own.
    """
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
        pid = os.posix_spawn(
            GNU_TIME, [GNU_TIME, "-f", "%M", "-o", rss.name, *command], env, file_actions=devnull
        )
        _, status, usage = os.wait4(pid, 0)  # includes the command, which time waited for
        wall = time.perf_counter() - started
        max_rss_kb = int(rss.read().strip().splitlines()[-1])
    return wall, usage.ru_utime + usage.ru_stime, max_rss_kb / 1024, os.waitstatus_to_exitcode(status)


def medians(command: list[str], env: dict, runs: int) -> tuple[float, float, float]:
    samples = [measure(command, env) for _ in range(runs)]
    failed = [s for s in samples if s[3] != 0]
    if failed:
        raise SystemExit(f"{' '.join(command)} failed (exit {failed[0][3]})")
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    stack = LocalStack().start()
    try:
        env = stack.process_env()
        host = socket.gethostname()
        probe = [str(BIN / "python"), "-m", "healthchecks"]  # what the image's HEALTHCHECK runs
        jobs_check = [str(BIN / "airflow"), "jobs", "check", "--local", "--job-type"]
        standard = {  # role -> the usual probe
            "scheduler": [*jobs_check, "SchedulerJob"],
            "dag-processor": [*jobs_check, "DagProcessorJob"],
            "triggerer": [*jobs_check, "TriggererJob"],
            "worker": [str(BIN / "celery"), "--app", CELERY_APP, "inspect", "ping", "-d", f"celery@{host}"],
        }
        roles = ("api-server", "scheduler", "dag-processor", "triggerer", "worker")
        rows = [(role, [*probe, role], standard.get(role)) for role in roles]
        time.sleep(15)  # let every component heartbeat at least once
        print(f"\nmedians of {args.runs} runs; CPU = user + system seconds\n")
        print(
            f"{'role':<14}{'ours wall':>10}{'CPU':>7}{'RSS MB':>8}{'std wall':>10}{'CPU':>7}{'RSS MB':>8}"
            f"{'CPU x':>8}"
        )
        for role, ours, standard in rows:
            wall, cpu, rss = medians(ours, env, args.runs)
            line = f"{role:<14}{wall:>10.3f}{cpu:>7.3f}{rss:>8.1f}"
            if standard:
                s_wall, s_cpu, s_rss = medians(standard, env, args.runs)
                line += f"{s_wall:>10.2f}{s_cpu:>7.2f}{s_rss:>8.1f}{s_cpu / cpu:>8.0f}"
            print(line)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
