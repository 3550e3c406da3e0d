"""The templates of config/ecs/ are JSON with two additions:

  "${a.b}"             a string that is one placeholder becomes the value at a.b, of any type;
  "x-${a.b}-y"         a placeholder inside a longer string is replaced by the value's text;
  {"$if": "a.b", ...}  an object in a list is kept only when the value at a.b is set
                       (not null, false or empty); the "$if" key itself is dropped.

A placeholder the context does not have is an error, never an empty string.
"""

import re

from taskdefs import TaskdefsError

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
CONDITION = "$if"


def fill(node, context: dict, where: str):
    """`node` with every placeholder replaced from `context`; `where` names the template in errors."""
    if isinstance(node, str):
        return _fill_string(node, context, where)
    if isinstance(node, list):
        return [fill(item, context, where) for item in _kept(node, context, where)]
    if isinstance(node, dict):
        if CONDITION in node:
            raise TaskdefsError(f"{where}: {CONDITION} is allowed only on an object inside a list")
        return {key: fill(value, context, where) for key, value in node.items()}
    return node


def lookup(context: dict, path: str, where: str):
    node = context
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise TaskdefsError(f"{where}: unknown placeholder ${{{path}}}")
        node = node[part]
    return node


def _fill_string(text: str, context: dict, where: str):
    whole = PLACEHOLDER.fullmatch(text)
    if whole:
        return lookup(context, whole[1], where)

    def substitute(match: re.Match) -> str:
        value = lookup(context, match[1], where)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TaskdefsError(f"{where}: ${{{match[1]}}} is not text and cannot stand inside {text!r}")
        return str(value)

    return PLACEHOLDER.sub(substitute, text)


def _kept(items: list, context: dict, where: str) -> list:
    """The items of a list whose condition holds, without their condition key."""
    kept = []
    for item in items:
        if isinstance(item, dict) and CONDITION in item:
            if not lookup(context, item[CONDITION], where):
                continue
            item = {key: value for key, value in item.items() if key != CONDITION}
        kept.append(item)
    return kept
