"""KEY=VALUE files (config/airflow/airflow.env): comments and blank lines skipped."""

from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}
