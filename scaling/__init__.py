"""Celery worker autoscaling: the backlog as EMF metrics, and what the policies need."""
