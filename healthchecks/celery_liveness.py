"""Loaded INSIDE the Celery worker (not by the probe) through
AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=entrypoint.celery_config.CELERY_CONFIG.

Airflow's default Celery config, plus a timer on the worker's own event loop that touches
the liveness file the `worker` probe reads. A hung or stopped loop stops touching it.
"""

import os

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery import signals

from healthchecks.worker import TOUCH_EVERY, liveness_file

CELERY_CONFIG = DEFAULT_CELERY_CONFIG


@signals.worker_ready.connect
def _touch_from_the_event_loop(sender, **_kwargs) -> None:
    path = liveness_file()

    def touch() -> None:
        with open(path, "a"):
            os.utime(path)

    touch()
    sender.timer.call_repeatedly(TOUCH_EVERY, touch)
