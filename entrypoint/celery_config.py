"""The Celery configuration a worker loads (AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=
entrypoint.celery_config.CELERY_CONFIG): Airflow's own, plus two hooks on the running
worker: the liveness file the `worker` health check reads (healthchecks/celery_liveness.py)
and ECS task scale-in protection while tasks run (scaling/celery_protection.py)."""

from healthchecks.celery_liveness import CELERY_CONFIG
from scaling import celery_protection  # noqa: F401  (connects its signal handler)

__all__ = ["CELERY_CONFIG"]
