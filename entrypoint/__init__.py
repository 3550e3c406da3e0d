"""The Airflow image's entrypoint: `airflow-entrypoint ROLE [ARGS...]`.

One job per module: connections.py builds the database and broker URLs from the parts
ECS injects, required.py refuses to start without the shared secrets, database.py waits
for the metadata DB, roles.py says what each role runs, worker.py bounds the Celery
worker's warm shutdown, cli.py ties them together. Airflow itself is never imported.
"""


class ConfigError(Exception):
    """The container's configuration is wrong: exit 2, one line, nothing started."""


class StartupError(Exception):
    """Something the role needs is not there (the database): exit 1, one line."""
