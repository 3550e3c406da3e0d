"""The Celery worker with a bounded warm shutdown.

On SIGTERM (ECS stopping the task, a Fargate Spot interruption) Celery's warm shutdown
stops taking tasks and waits for the running ones, however long they take; ECS kills
everything at its stopTimeout (at most 120 s), and the tasks die mid-write. This runs the
worker as a child, passes SIGTERM on, and if the worker is still busy after
AIRFLOW_WORKER_STOP_TIMEOUT seconds (default 100, below ECS's 120 s) sends SIGQUIT:
Celery's cold shutdown, which cancels what is left so its messages are redelivered
(Airflow acks late) to another worker, instead of SIGKILL landing first.
"""

import signal
import subprocess
import time

DEFAULT_STOP_TIMEOUT = 100.0
COLD_SHUTDOWN_GRACE = 10.0  # after SIGQUIT, before SIGKILL
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def run_worker(command: list[str], timeout: float, say=print) -> int:
    child = subprocess.Popen(command)
    deadline: float | None = None

    def forward(signum, _frame) -> None:
        nonlocal deadline
        if child.poll() is None:
            child.send_signal(signum)
        if signum == signal.SIGTERM and deadline is None:
            deadline = time.monotonic() + timeout
            say(f"SIGTERM: warm shutdown, running tasks get up to {timeout:g}s (AIRFLOW_WORKER_STOP_TIMEOUT)")

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:  # short waits: a signal handler may set the deadline at any moment
        try:
            return child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                break
    say(f"tasks still running after {timeout:g}s: cold shutdown (SIGQUIT), they will be redelivered")
    child.send_signal(signal.SIGQUIT)
    try:
        return child.wait(timeout=COLD_SHUTDOWN_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()
