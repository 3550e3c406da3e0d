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
  taskdefs settings --from-stack NAME --base FILE --out FILE
      Write settings whose network, stores, secrets, cluster and endpoint list are the outputs
      of a stack of infra/airflow-ecs.yaml (region and account: the stack's), and everything
      else (images, sizes, workers, tags) from the base settings. Checked like render's input;
      nothing is written unless they pass. The stack is looked up in its ARN's region, else
      AWS_REGION, else the AWS configuration's region.
      --from-stack  the stack's name or id [env TASKDEFS_STACK]
      --base        settings to start from, e.g. config/ecs/settings.example.toml [env TASKDEFS_BASE]
      --out         the settings file to write, *.toml [env TASKDEFS_SETTINGS_OUT]
  taskdefs posture --settings FILE [--endpoint-gb N] [--s3-gb N] [--price-... USD]
      Read the live account (read-only calls) and report, as named findings, what breaks the
      NAT-free design for these settings, then what the network costs a month next to NAT
      gateways. The endpoints required are those lint requires of the rendered tasks.
      --settings             [env TASKDEFS_SETTINGS]
      --endpoint-gb          GB a month through the interface endpoints [env TASKDEFS_ENDPOINT_GB; 50]
      --s3-gb                GB a month to S3 [env TASKDEFS_S3_GB; 200]
      --price-endpoint-hour  USD per interface endpoint per AZ-hour [env TASKDEFS_PRICE_ENDPOINT_HOUR; 0.01]
      --price-endpoint-gb    USD per GB through interface endpoints [env TASKDEFS_PRICE_ENDPOINT_GB; 0.01]
      --price-nat-hour       USD per NAT gateway hour [env TASKDEFS_PRICE_NAT_HOUR; 0.045]
      --price-nat-gb         USD per GB through a NAT gateway [env TASKDEFS_PRICE_NAT_GB; 0.045]
  taskdefs rules
      List the rules.

Exit codes: 0 clean, 1 lint or posture findings, 2 bad input (settings, templates, unreadable
files, a stack or account that cannot be read).
"""

import argparse
import sys
from pathlib import Path

import boto3
import botocore.exceptions

from s3sync.flags import NON_NEGATIVE_FLOAT, Flag
from taskdefs import TaskdefsError, documents, lint, render, settings, stack
from taskdefs.documents import short_endpoint_name
from taskdefs.posture import check as posture
from taskdefs.posture import cost
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

FROM_STACK = (
    Flag("--from-stack", "TASKDEFS_STACK", "the stack's name or id"),
    Flag("--base", "TASKDEFS_BASE", "settings to start from (images, sizes, workers, tags)", type=Path),
    Flag("--out", "TASKDEFS_SETTINGS_OUT", "the settings file to write, *.toml", type=Path),
)
PRICES = cost.Prices()
POSTURE = (
    Flag("--settings", "TASKDEFS_SETTINGS", "the deployment's settings file", type=Path),
    Flag(
        "--endpoint-gb",
        "TASKDEFS_ENDPOINT_GB",
        "GB a month through the interface endpoints",
        "50",
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--s3-gb",
        "TASKDEFS_S3_GB",
        "GB a month to S3 (image layers, DAGs, task logs)",
        "200",
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--price-endpoint-hour",
        "TASKDEFS_PRICE_ENDPOINT_HOUR",
        "USD per interface endpoint per AZ-hour",
        str(PRICES.endpoint_hour),
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--price-endpoint-gb",
        "TASKDEFS_PRICE_ENDPOINT_GB",
        "USD per GB through interface endpoints",
        str(PRICES.endpoint_gb),
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--price-nat-hour",
        "TASKDEFS_PRICE_NAT_HOUR",
        "USD per NAT gateway hour",
        str(PRICES.nat_hour),
        NON_NEGATIVE_FLOAT,
    ),
    Flag(
        "--price-nat-gb",
        "TASKDEFS_PRICE_NAT_GB",
        "USD per GB through a NAT gateway",
        str(PRICES.nat_gb),
        NON_NEGATIVE_FLOAT,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskdefs", description="Render and lint the ECS templates.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary, flags in (
        ("render", "fill config/ecs/ from a settings file", RENDER),
        ("lint", "check ECS / IAM JSON files against the guardrails", LINT),
        ("settings", "write settings from a stack of infra/", FROM_STACK),
        ("posture", "check a live account against the NAT-free design", POSTURE),
        ("rules", "list the lint rules", ()),
    ):
        command = commands.add_parser(name, help=summary)
        for flag in flags:
            flag.add_to(command)
        if name == "lint":
            command.add_argument("files", nargs="+", type=Path, metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "render":
            return _render(parser, args)
        if args.command == "lint":
            return _lint(args)
        if args.command == "settings":
            return _settings(parser, args)
        if args.command == "posture":
            return _posture(parser, args)
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


def _settings(parser: argparse.ArgumentParser, args) -> int:
    for flag in FROM_STACK:
        if getattr(args, flag.name[2:].replace("-", "_")) is None:
            parser.error(f"settings needs {flag.name} (or {flag.env})")
    base = settings.parse(args.base)
    try:
        cloudformation = boto3.client("cloudformation", region_name=stack.region_of(args.from_stack))
    except botocore.exceptions.BotoCoreError as exc:
        raise TaskdefsError(f"cannot ask CloudFormation: {exc}") from None
    outputs, region, account = stack.read_outputs(cloudformation, args.from_stack)
    stack.write(stack.merge(base, outputs, region, account, args.from_stack), args.out)
    print(args.out)
    return EXIT_OK


def _posture(parser: argparse.ArgumentParser, args) -> int:
    if args.settings is None:
        parser.error("posture needs --settings (or TASKDEFS_SETTINGS)")
    values = settings.load(args.settings)
    traffic = cost.Traffic(args.endpoint_gb, args.s3_gb)
    prices = cost.Prices(
        args.price_endpoint_hour, args.price_endpoint_gb, args.price_nat_hour, args.price_nat_gb
    )
    findings, estimate = posture.run(values, traffic, prices)
    for finding in findings:
        print(finding)
    names = sorted({finding.name for finding in findings})
    summary = f"{len(findings)} finding(s): {', '.join(names)}" if findings else "clean"
    print(f"taskdefs posture: {values['network']['vpc_id']} in {values['region']}: {summary}")
    for line in estimate.lines() if estimate else []:
        print(line)
    return EXIT_FINDINGS if findings else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
