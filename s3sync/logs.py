"""structlog set-up: JSON lines on stdout, readable columns on a terminal."""

import logging
import sys

import structlog


def configure(level: str = "info", json_output: bool | None = None) -> None:
    if json_output is None:
        json_output = not sys.stdout.isatty()
    renderer = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),  # sys.stdout as it is when a logger is made
        cache_logger_on_first_use=False,
    )


def get_logger(**bound):
    return structlog.get_logger("s3sync").bind(**bound)
