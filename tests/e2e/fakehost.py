"""A `[core] hostname_callable` for a second component that must look like another ECS task."""

import os


def name() -> str:
    return os.environ["E2E_FAKE_HOSTNAME"]
