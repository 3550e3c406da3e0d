"""What gives a secret away: a name that says secret, a value that is a credential, a command
line that carries one. Every answer says what was found and where, never the secret itself."""

import json
import re
import shlex
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

# (A secrets backend is a class name, not a secret.)
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET(?!S?_BACKEND)|TOKEN(?!IZ)|FERNET|PRIVATE_KEY|ACCESS_KEY|API_KEY"
    r"|CREDENTIAL|(?:^|_)PASS(?:$|_(?!THROUGH))|_PW$"  # DB_PASS, PASS_B64, DB_PW; not PASS_THROUGH
    r"|(?<=[A-Z0-9])(?<!BY)(?<!COM)(?<!SUR)(?<!TRES)(?<!OVER)(?<!UNDER)PASS$"  # DBPASS; not BYPASS
    r"|(?<=[A-Z0-9_])(?<!OLD)PWD(?:_|$)",  # MYSQL_PWD, DBPWD; not the shell's PWD or OLDPWD
    re.I,
)
# Where a secret is kept, a switch about one, or a setting of one is no secret:
# DB_PASSWORD_FILE, --no-password, --password-stdin, TOKEN_TTL, TOKEN_URL.
SECRET_REFERENCE = re.compile(
    r"^(?:NO|ASK)_|_(?:FILE|PATH|DIR|CMD|COMMAND|ARN|STDIN|PROMPT|TTL|EXPIRY|EXPIRATION|LENGTH|TIMEOUT"
    r"|TYPE|URL|URI|ENDPOINT|HEADER)$",
    re.I,
)
# Airflow reads AIRFLOW__SECTION__KEY_CMD / _SECRET as a command or a secrets-backend name,
# not as the value; jwt_secret is the one setting whose own name ends in _SECRET.
AIRFLOW_REFERENCE = re.compile(r"AIRFLOW__[A-Z0-9_]+__[A-Z0-9_]+_(?:CMD|SECRET)")
AIRFLOW_SETTINGS_ENDING_IN_SECRET = ("AIRFLOW__API_AUTH__JWT_SECRET",)

AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# 40 characters of base64's alphabet standing alone, as an AWS secret access key is.
AWS_SECRET_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# $VAR, ${VAR:-x}, $(command): a shell fills these in when the container starts.
SHELL_REFERENCE = re.compile(r"\$(?:\w+|\{[^}]*\}|\(.*\))", re.S)
ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)", re.S)
PORTS = re.compile(r"\d+(?:[:-]\d+)*(?:/[a-z]+)?")
SHELL_OPERATOR = re.compile(r"[();<>|&]+")
# Programs run through another: `exec mysql ...` is mysql's command line.
WRAPPERS = frozenset({"exec", "env", "nohup", "time", "command", "nice"})
# Programs whose -p is no password (parents, preserve, prompt, plugin, ...).
P_IS_NO_PASSWORD = frozenset(
    {"mkdir", "cp", "install", "rsync", "scp", "tar", "ls", "read", "xargs", "unzip", "sudo", "su"}
    | {"export", "declare", "pytest", "patch"}
)
# Clients that take the password glued to -p: -pPASSWORD.
GLUED_P_PASSWORD = frozenset({"mysql", "mysqldump", "mysqladmin", "mysqlimport", "mariadb", "mariadb-dump"})
# Short options that are a password for one program, and options that take USER:PASSWORD.
PASSWORD_OPTIONS = {"redis-cli": ("-a",)}
USER_PASSWORD_OPTIONS = {"curl": ("-u", "--user"), "wget": ("--user",)}
PYTHONS = re.compile(r"python[0-9.]*")


def names_a_secret(name: str) -> bool:
    key = _setting_key(name)
    return bool(SECRET_NAME.search(key)) and not SECRET_REFERENCE.search(key) and not _airflow_reference(name)


def is_literal(value: str) -> bool:
    """A value written out, not empty and not a shell reference to one set elsewhere."""
    value = value.strip()
    return bool(value) and not SHELL_REFERENCE.fullmatch(value)


def credentials_in(value: str) -> list[str]:
    """What credentials `value` holds, each as a phrase ("a URL with a password", ...)."""
    found = []
    if AWS_ACCESS_KEY_ID.search(value):
        found.append("an AWS access key id")
    if any(_mixes_cases_and_digits(match[0]) for match in AWS_SECRET_ACCESS_KEY.finditer(value)):
        found.append("an AWS secret access key")
    if PRIVATE_KEY.search(value):
        found.append("a private key")
    found += [phrase for url in URL.findall(value) for phrase in _url_credentials(url)]
    found += _json_credentials(value)
    return list(dict.fromkeys(found))


def command_line_secrets(words: list[str]) -> list[tuple[int, str]]:
    """(index of the word, what it gives away) for an argv and any shell script in its words."""
    return list(dict.fromkeys(_simple_command_secrets(words)))


def _setting_key(name: str) -> str:
    """KEY of AIRFLOW__SECTION__KEY (the section, e.g. SECRETS, says nothing); else the name."""
    parts = name.split("__")
    return parts[2] if len(parts) == 3 and parts[0] == "AIRFLOW" else name


def _airflow_reference(name: str) -> bool:
    return bool(AIRFLOW_REFERENCE.fullmatch(name)) and name not in AIRFLOW_SETTINGS_ENDING_IN_SECRET


def _mixes_cases_and_digits(text: str) -> bool:
    """A random key has both cases and digits or symbols; a hex digest, a word or an id has not."""
    return (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() or c in "/+" for c in text)
    )


def _url_credentials(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = ["a URL with a password"] if password and is_literal(password) else []
    for name, value in parse_qsl(parts.query):
        if names_a_secret(name) and is_literal(value):
            found.append(f"a URL with a {name} parameter")
        else:
            found += credentials_in(value)  # an Airflow connection's __extra__ is JSON in the query
    return found


def _json_credentials(value: str) -> list[str]:
    try:
        document = _json_document(value)
        return list(_credentials_in_json(document)) if document is not None else []
    except RecursionError:
        return ["JSON nested too deep to check"]


def _json_document(value: str) -> dict | list | None:
    """The JSON object or array `value` is, if it is one."""
    text = value.strip()
    if not text.startswith(("{", "[")):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def _credentials_in_json(node) -> Iterator[str]:
    if isinstance(node, dict):
        for key, item in node.items():
            if names_a_secret(str(key)) and _is_scalar_value(item):
                yield f"a JSON {str(key)!r} field"
            else:
                yield from _credentials_in_json(item)
    elif isinstance(node, list):
        for item in node:
            yield from _credentials_in_json(item)
    elif isinstance(node, str):
        yield from credentials_in(node)  # an extra given as a JSON string


def _is_scalar_value(item) -> bool:
    return isinstance(item, str | int | float) and not isinstance(item, bool) and is_literal(str(item))


def _simple_command_secrets(words: list[str]) -> Iterator[tuple[int, str]]:
    program = _program(words)
    taken = set()
    for index, word in enumerate(words):
        if index in taken:
            continue
        script = _shell_commands(word)
        if script is not None:
            yield from ((index, what) for command in script for _, what in _simple_command_secrets(command))
            continue
        following = words[index + 1] if index + 1 < len(words) else ""
        option = _secret_option(word, following, program)
        if option is not None:
            what, takes_following = option
            if takes_following:
                taken.add(index + 1)
            yield index, what
            continue
        yield from ((index, what) for what in credentials_in(word))


def _secret_option(word: str, following: str, program: str) -> tuple[str, bool] | None:
    """(what it gives away, whether its value is the following word) for a word that passes a
    secret: --password=X, --password X, -p X, -pX (mysql), NAME=X with a secret name."""
    user_password = _user_password_secret(word, following, program)
    if user_password is not None:
        return user_password
    if word.startswith("--") and len(word) > 2:
        return _long_option_secret(word, following)
    if word == "-p" and program not in P_IS_NO_PASSWORD and _may_be_a_password(following):
        return "a password after -p", True
    if word in PASSWORD_OPTIONS.get(program, ()) and is_literal(following):
        return f"a password after {word}", True
    if word.startswith("-p") and len(word) > 2 and program in GLUED_P_PASSWORD and is_literal(word[2:]):
        return "a password glued to -p", False
    assignment = ASSIGNMENT.fullmatch(word)
    if assignment and names_a_secret(assignment["name"]) and is_literal(assignment["value"]):
        return f"the value of {assignment['name']}, whose name says secret", False
    return None


def _long_option_secret(word: str, following: str) -> tuple[str, bool] | None:
    name, has_value, value = word[2:].partition("=")
    takes_following = not has_value and not following.startswith("-")
    if takes_following:
        value = following
    if names_a_secret(name.replace("-", "_")) and is_literal(value):
        return f"the value of option --{name}", takes_following
    return None


def _user_password_secret(word: str, following: str, program: str) -> tuple[str, bool] | None:
    """curl -u USER:PASSWORD, --user=USER:PASSWORD."""
    for option in USER_PASSWORD_OPTIONS.get(program, ()):
        name, glued, value = word.partition("=")
        if name != option:
            continue
        if not glued:
            value = following
        if is_literal(value.partition(":")[2]):
            return f"a password in {option} USER:PASSWORD", not glued
    return None


def _may_be_a_password(value: str) -> bool:
    """What follows -p when it is no port, path or option."""
    return is_literal(value) and not value.startswith(("-", "/", ".", "~")) and not PORTS.fullmatch(value)


def _program(words: list[str]) -> str:
    """The program a simple command runs: past VAR=x and wrappers; python -m MODULE runs MODULE."""
    for index, word in enumerate(words):
        if ASSIGNMENT.fullmatch(word) or word in WRAPPERS:
            continue
        program = word.rsplit("/", 1)[-1]
        if PYTHONS.fullmatch(program) and words[index + 1 : index + 2] == ["-m"] and index + 2 < len(words):
            return words[index + 2]
        return program
    return ""


def _shell_commands(word: str) -> list[list[str]] | None:
    """The simple commands of a word that is a shell script (sh -c "..."); None for any other word."""
    if not any(c.isspace() for c in word) or _is_json(word):
        return None  # a JSON document is a value, not a script
    try:
        lexer = shlex.shlex(word, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    if len(tokens) < 2:
        return None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if SHELL_OPERATOR.fullmatch(token):
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _is_json(word: str) -> bool:
    try:
        return _json_document(word) is not None
    except RecursionError:
        return True
