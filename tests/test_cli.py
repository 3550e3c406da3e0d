"""The command line: every flag documented with its environment variable, and wired to it."""

import argparse
import re
from pathlib import Path

from s3sync.flags import build_parser

DOCS = Path(__file__).resolve().parent.parent / "docs" / "s3sync.md"


def subcommand_options() -> dict[str, tuple[str, str]]:
    """flag -> (env var, subcommand) for every flag of every subcommand."""
    found = {}
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            for flag in action.option_strings:
                if flag in ("-h", "--help", "--dry-run", "--allow-empty", "--watch", "--once"):
                    continue
                env = re.search(r"\[env (S3SYNC_\w+)", action.help or "")
                assert env, f"{name} {flag} names no environment variable"
                found[flag] = (env.group(1), name)
    return found


def test_every_flag_is_documented_with_its_env_var():
    rows = dict(re.findall(r"^\| `(--[\w-]+)` \| `(S3SYNC_\w+)` \|", DOCS.read_text(), re.M))
    for flag, (env, command) in subcommand_options().items():
        assert rows.get(flag) == env, f"docs/s3sync.md lacks {flag} / {env} ({command})"


def test_env_vars_set_defaults_and_flags_win(monkeypatch):
    monkeypatch.setenv("S3SYNC_INTERVAL", "2.5")
    monkeypatch.setenv("S3SYNC_EXCLUDE", "tests,*.md")
    monkeypatch.setenv("S3SYNC_NO_METRICS", "true")
    args = build_parser().parse_args(["run", "--target", "/x"])
    assert args.interval == 2.5 and args.no_metrics is True and args.target == Path("/x")
    assert build_parser().parse_args(["run", "--interval", "7"]).interval == 7.0
    publish = build_parser().parse_args(["publish", "d", "s3://b/p"])
    assert publish.exclude == ["tests,*.md"]  # split on commas when used
