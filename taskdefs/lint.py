"""Run every rule over a set of documents."""

from taskdefs import endpoints, rules_iam, rules_services, rules_tasks  # noqa: F401  (they register the rules)
from taskdefs.documents import Document
from taskdefs.ruleset import RULES, Finding, Inputs


def run(documents: list[Document], vpc_endpoints: set[str] | None = None) -> list[Finding]:
    inputs = Inputs(documents, vpc_endpoints)
    return [
        Finding(path, rule.name, message) for rule in RULES.values() for path, message in rule.check(inputs)
    ]
