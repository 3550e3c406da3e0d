"""Render the ECS task definitions, services and IAM policies of config/ecs/ from one
settings file, and lint any such files against the guardrails."""


class TaskdefsError(Exception):
    """Bad input: the message is one line that says what is wrong and where."""
