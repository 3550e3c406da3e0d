"""Run every rule over a set of documents."""

from taskdefs import endpoints, rules_iam, rules_services, rules_tasks  # noqa: F401  (they register the rules)
from taskdefs.documents import Document
from taskdefs.ruleset import RULES, Finding, Inputs

API_MODEL = "api-model"


def run(documents: list[Document], vpc_endpoints: set[str] | None = None) -> list[Finding]:
    """The API model first: a document it refuses is reported by it alone, since the other
    rules read fields whose shape only the model guarantees."""
    refused = _findings(RULES[API_MODEL], Inputs(documents, vpc_endpoints))
    rejected = {finding.path for finding in refused}
    accepted = Inputs([d for d in documents if d.path not in rejected], vpc_endpoints)
    return refused + [
        finding for rule in RULES.values() if rule.name != API_MODEL for finding in _findings(rule, accepted)
    ]


def _findings(rule, inputs: Inputs) -> list[Finding]:
    return [Finding(path, rule.name, message) for path, message in rule.check(inputs)]
