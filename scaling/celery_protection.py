"""Loaded INSIDE the Celery worker (entrypoint/celery_config.py): keeps the ECS task's
scale-in protection on while the worker runs tasks (scaling/protection.py).

Outside ECS (no ECS_AGENT_URI) it does nothing. A thread, not the worker's event loop,
talks to the agent, so a slow agent never stalls the worker.
"""

import os
import threading
import time

from celery import signals
from celery.worker import state

from s3sync import logs
from scaling.protection import ProtectionKeeper, TaskProtection

CHECK_EVERY = 5.0  # seconds between looks at how many tasks run


def busy() -> int:
    """Tasks this worker has accepted and not finished (kept in the main process, prefork too)."""
    return len(state.active_requests)


@signals.worker_ready.connect
def _keep_protected_while_busy(**_kwargs) -> None:
    agent = os.environ.get("ECS_AGENT_URI")
    if not agent:
        return
    keeper = ProtectionKeeper(TaskProtection(agent), logs.get_logger(component="task-protection"))

    def watch() -> None:
        while True:
            keeper.update(busy(), time.monotonic())
            time.sleep(CHECK_EVERY)

    threading.Thread(target=watch, name="task-protection", daemon=True).start()
