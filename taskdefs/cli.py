"""taskdefs render | lint | rules. Every flag can also be set by its environment variable.

  taskdefs render --settings FILE --out DIR [--templates DIR]
      Fill config/ecs/ from the settings; write the inputs of register-task-definition,
      create-service, create-target-group and the IAM policies to DIR. Nothing is written
      unless every document passes botocore's API model and every lint rule.
      --settings   the settings file, TOML (or JSON by suffix) [env TASKDEFS_SETTINGS]
      --out        where the JSON goes [env TASKDEFS_OUT]
      --templates  the templates [env TASKDEFS_TEMPLATES; default config/ecs of this repository]
  taskdefs lint [--vpc-endpoints LIST] FILE...
      Check task definitions, services, target groups, IAM policies and endpoint lists
      (each file recognised by its content) against every rule.
      --vpc-endpoints  comma-separated endpoint names the subnets have (ecr.api,s3,...), in
                       addition to any vpc-endpoints.json among the files [env TASKDEFS_VPC_ENDPOINTS]
  taskdefs rules
      List the rules.

Exit codes: 0 clean, 1 lint findings, 2 bad input (settings, templates, unreadable files).
"""

import argparse
import sys
from pathlib import Path

from s3sync.flags import Flag
from taskdefs import TaskdefsError, documents, lint, render, settings
from taskdefs.documents import short_endpoint_name
from taskdefs.ruleset import RULES

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2

RENDER = (
    Flag("--settings", "TASKDEFS_SETTINGS", "the settings file, TOML (or JSON by suffix)", type=Path),
    Flag("--out", "TASKDEFS_OUT", "where the JSON goes", type=Path),
    Flag("--templates", "TASKDEFS_TEMPLATES", "the templates", str(render.TEMPLATES), Path),
)
LINT = (
    Flag(
        "--vpc-endpoints",
        "TASKDEFS_VPC_ENDPOINTS",
        "comma-separated VPC endpoint names the subnets have (ecr.api,s3,...)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskdefs", description="Render and lint the ECS templates.")
    commands = parser.add_subparsers(dest="command", required=True)
    render_parser = commands.add_parser("render", help="fill config/ecs/ from a settings file")
    for flag in RENDER:
        flag.add_to(render_parser)
    lint_parser = commands.add_parser("lint", help="check ECS / IAM JSON files against the guardrails")
    for flag in LINT:
        flag.add_to(lint_parser)
    lint_parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    commands.add_parser("rules", help="list the lint rules")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            return _render(parser, args)
        if args.command == "lint":
            return _lint(args)
        for rule in RULES.values():
            print(f"{rule.name:24} {rule.summary}")
        return EXIT_OK
    except TaskdefsError as exc:
        for line in str(exc).splitlines():
            print(f"taskdefs: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _render(parser: argparse.ArgumentParser, args) -> int:
    for flag in ("settings", "out"):
        if getattr(args, flag) is None:
            parser.error(f"render needs --{flag} (or {'TASKDEFS_' + flag.upper()})")
    values = settings.load(args.settings)
    rendered = render.render(values, args.templates)
    render.check(rendered, args.settings)
    render.write(rendered, args.out)
    for output in rendered.outputs:
        print(args.out / output.filename)
    for filename, why in rendered.skipped.items():
        print(f"taskdefs: not rendered: {filename}: {why}", file=sys.stderr)
    return EXIT_OK


def _lint(args) -> int:
    loaded = [documents.load(path) for path in args.files]
    endpoints = None
    if args.vpc_endpoints:
        endpoints = {
            short_endpoint_name(name.strip()) for name in args.vpc_endpoints.split(",") if name.strip()
        }
    findings = lint.run(loaded, endpoints)
    for finding in findings:
        print(finding)
    rules = len({finding.rule for finding in findings})
    summary = f"{len(findings)} finding(s) from {rules} rule(s)" if findings else "clean"
    print(f"taskdefs: {len(loaded)} file(s), {len(RULES)} rules: {summary}", file=sys.stderr)
    return EXIT_FINDINGS if findings else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
