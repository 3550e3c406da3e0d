"""CloudWatch Embedded Metric Format lines on stdout.

The awslogs driver ships them with the logs and CloudWatch extracts the metrics,
so no PutMetricData call (and no monitoring VPC endpoint) is needed.
"""

import json
import sys
import threading
import time

NAMESPACE = "airflow-ecs/s3sync"
_write_lock = threading.Lock()


def emit(
    metrics: dict[str, tuple[float, str]], dimensions: dict[str, str], out=None, namespace: str = NAMESPACE
) -> None:
    """One EMF document: `metrics` maps name -> (value, CloudWatch unit)."""
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
                }
            ],
        },
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }
    stream = out or sys.stdout
    with _write_lock:
        stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()
