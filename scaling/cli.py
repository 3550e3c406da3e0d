"""scaling-metrics: the Celery workers' backlog as CloudWatch EMF lines on stdout, every interval.

The metadata DB and broker URLs are Airflow's own settings ([database] sql_alchemy_conn,
[celery] broker_url), read without importing Airflow; started through airflow-entrypoint
they are built from the AIRFLOW_DB_* / AIRFLOW_REDIS_* parts like every role's.
Exit codes: 0 after SIGTERM, 2 bad configuration (one line on stderr).
"""

import argparse
import signal
import sys

from healthchecks import Misconfigured
from healthchecks.airflow_config import required, setting
from healthchecks.heartbeat import connect_args
from s3sync import logs
from s3sync.flags import POSITIVE_FLOAT, POSITIVE_INT, Flag
from scaling.loop import LoopSettings, MetricsLoop, broker_source, database_source

FLAGS = (
    Flag("--deployment", "SCALING_DEPLOYMENT", "the Deployment dimension of every metric", "airflow"),
    Flag("--interval", "SCALING_INTERVAL", "seconds between readings", "15", POSITIVE_FLOAT),
    Flag(
        "--concurrency",
        "SCALING_WORKER_CONCURRENCY",
        "tasks one worker runs at once (default: [celery] worker_concurrency)",
        type=POSITIVE_INT,
    ),
    Flag("--max-workers", "SCALING_MAX_WORKERS", "cap for DesiredWorkers", type=POSITIVE_INT),
    Flag(
        "--queues",
        "SCALING_QUEUES",
        "Celery queues the workers serve, comma-separated (default: [operators] default_queue)",
    ),
    Flag(
        "--timeout", "SCALING_TIMEOUT", "seconds for each DB or broker connect and query", "5", POSITIVE_FLOAT
    ),
    Flag(
        "--log-level", "SCALING_LOG_LEVEL", "log level", "info", choices=("debug", "info", "warning", "error")
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scaling-metrics", description=__doc__.split("\n")[0])
    for flag in FLAGS:
        flag.add_to(parser)
    return parser


def settings_from(args) -> LoopSettings:
    concurrency = args.concurrency or _positive_setting("celery", "worker_concurrency", "16")
    queues = args.queues or setting("operators", "default_queue", "default")
    names = tuple(name.strip() for name in queues.split(",") if name.strip())
    if not names:
        raise Misconfigured(f"no queue named in {queues!r}")
    return LoopSettings(args.deployment, concurrency, names, args.interval, args.max_workers)


def _positive_setting(section: str, key: str, default: str) -> int:
    text = setting(section, key, default) or default
    try:
        return POSITIVE_INT(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise Misconfigured(f"[{section}] {key} must be a positive integer: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, json_output=True)
    log = logs.get_logger(deployment=args.deployment)
    try:
        settings = settings_from(args)
        database = database_source(connect_args(required("database", "sql_alchemy_conn"), args.timeout))
        broker = broker_source(required("celery", "broker_url"), settings.queues, args.timeout)
    except Misconfigured as exc:
        print(f"scaling-metrics: configuration error: {exc}", file=sys.stderr)
        return 2
    loop = MetricsLoop(settings, database, broker, log)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.stop.set())
    return loop.run()


if __name__ == "__main__":
    sys.exit(main())
