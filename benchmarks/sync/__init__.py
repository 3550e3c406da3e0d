"""s3sync against the tools users would pick instead, side by side on one S3 server.

    .venv/bin/python -m benchmarks.sync [--files 1000,10000] [--runs 5]

See benchmarks/sync/README.md for what is measured and how to install the other tools.
"""
