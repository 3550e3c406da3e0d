"""DAG files the end-to-end tests publish, written out per release."""

from pathlib import Path

HEADER = "from datetime import datetime\n\nfrom airflow.sdk import DAG, BaseHook, task\n"


def manual_dag(dag_id: str, description: str, body: str = 'print("ok")', imports: str = "") -> str:
    return f'''{HEADER}{imports}
with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="{description}"):

    @task
    def work():
        {body}

    work()
'''


def once_dag(dag_id: str) -> str:
    """Runs by itself as soon as it is parsed: measures publish-to-success latency."""
    return f'''{HEADER}
with DAG("{dag_id}", schedule="@once", start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=False):

    @task
    def work():
        print("{dag_id} ran")

    work()
'''


SECRET_READER = manual_dag(
    "e2e_hello",
    "reads a connection from Secrets Manager",
    body='conn = BaseHook.get_connection("e2e_secret")\n        print(f"connection host is {conn.host}")',
)


def write(folder: Path, files: dict[str, str]) -> Path:
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    for rel, text in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


def two_step_dag(dag_id: str, code: str, signals: Path, results: Path) -> str:
    """Task 1 runs at once; task 2, a sensor in reschedule mode (a fresh task process on every
    poke), waits for the file signals/<run_id>, then writes `code` to results/<run_id>: which
    release's code a poke loaded is on record. The description is part of the serialized DAG,
    so a release that changes `code` also makes a new DAG version."""
    return f'''{HEADER}from pathlib import Path

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         description="task 2 runs code {code}"):

    @task
    def first():
        print("first step")

    @task.sensor(poke_interval=1, timeout=900, mode="reschedule")
    def second(run_id=None):
        if not Path({str(signals)!r}, run_id).exists():
            return False
        Path({str(results)!r}, run_id).write_text("{code}")
        return True

    first() >> second()
'''
