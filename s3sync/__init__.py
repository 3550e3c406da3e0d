"""s3sync: pull immutable DAG releases from S3 and swap them in atomically."""

__version__ = "0.1.0"
