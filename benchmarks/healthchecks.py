"""Our probes against the standard ones, per role, on a running local stack.

For each role: median wall seconds, CPU seconds (user + system, children included) and
max RSS of `healthcheck ROLE` and of the usual command (`airflow jobs check --local`,
`celery inspect ping`), over several runs, printed as a table with the CPU ratio.

    .venv/bin/python -m benchmarks.healthchecks [--runs 5]
"""

import argparse
import os
import socket
import statistics
import subprocess
import time

from tests.e2e.stack import BIN, LocalStack

CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def measure(command: list[str], env: dict) -> tuple[float, float, float, int]:
    """(wall s, CPU s, max RSS MB, exit code) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


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
        probe = [str(BIN / "healthcheck")]
        airflow = [str(BIN / "airflow")]
        rows = [
            ("api-server", [*probe, "api-server"], None),
            (
                "scheduler",
                [*probe, "scheduler"],
                [*airflow, "jobs", "check", "--job-type", "SchedulerJob", "--local"],
            ),
            (
                "dag-processor",
                [*probe, "dag-processor"],
                [*airflow, "jobs", "check", "--job-type", "DagProcessorJob", "--local"],
            ),
            (
                "triggerer",
                [*probe, "triggerer"],
                [*airflow, "jobs", "check", "--job-type", "TriggererJob", "--local"],
            ),
            (
                "worker",
                [*probe, "worker"],
                [str(BIN / "celery"), "--app", CELERY_APP, "inspect", "ping", "-d", f"celery@{host}"],
            ),
        ]
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
