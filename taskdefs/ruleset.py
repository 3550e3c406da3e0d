"""What a lint rule is, what it reads, and what it reports."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from taskdefs.documents import Document, short_endpoint_name


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}: {self.message}"


@dataclass
class Inputs:
    documents: list[Document]
    # Short names (ecr.api, s3, ...); None when no endpoint list was given.
    vpc_endpoints: set[str] | None = None
    by_kind: dict[str, list[Document]] = field(init=False)

    def __post_init__(self):
        self.by_kind = {}
        for document in self.documents:
            self.by_kind.setdefault(document.kind, []).append(document)
        listed = [
            short_endpoint_name(name)
            for document in self.by_kind.get("endpoints", [])
            for name in document.body.get("vpcEndpoints", [])
        ]
        if listed:
            self.vpc_endpoints = (self.vpc_endpoints or set()) | set(listed)

    def of(self, kind: str) -> list[Document]:
        return self.by_kind.get(kind, [])


# A rule yields (document path, message) for every place it finds wrong.
Check = Callable[[Inputs], Iterator[tuple[str, str]]]


@dataclass(frozen=True)
class Rule:
    name: str
    summary: str
    check: Check


RULES: dict[str, Rule] = {}


def rule(name: str, summary: str) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        RULES[name] = Rule(name, summary, check)
        return check

    return register
