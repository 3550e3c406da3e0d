"""A first DAG: edit it, or drop more files next to it, and watch them go live.

Files in ./dags are published to the local S3 and pulled into the DAG volume by the
s3sync sidecar, exactly as on ECS.
"""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG("example_hello", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["example"]):

    @task
    def hello():
        print("hello from airflow-ecs")

    hello()
