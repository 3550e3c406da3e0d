"""Task scale-in protection: on while busy, renewed before it expires, off when idle; the
agent's refusals and absence are one log line each and never stop the worker."""

import json

import pytest

from s3sync import logs
from scaling.protection import ProtectionKeeper, TaskProtection
from tests.support.ecsagent import FakeAgent


@pytest.fixture
def agent():
    running = FakeAgent()
    yield running
    running.close()


def keeper(uri: str, capsys) -> ProtectionKeeper:
    logs.configure("info", json_output=True)
    capsys.readouterr()
    return ProtectionKeeper(TaskProtection(uri, expires_minutes=10, timeout=2), logs.get_logger())


def events(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_on_while_busy_renewed_before_expiry_off_when_idle(agent, capsys):
    watch = keeper(agent.uri, capsys)
    for now, busy in ((0, 0), (5, 2), (10, 3), (304, 1), (305, 1), (306, 0), (310, 0)):
        watch.update(busy, now)
    assert agent.states() == [True, True, False]  # on, renewed at half the 10 minutes, off
    assert agent.requests[0] == {"ProtectionEnabled": True, "ExpiresInMinutes": 10}
    assert agent.requests[2] == {"ProtectionEnabled": False}
    assert [e["event"] for e in events(capsys)] == ["task protection on", "task protection off"]


def test_a_refusal_is_logged_once_and_tried_again(agent, capsys):
    watch = keeper(agent.uri, capsys)
    agent.answer = (200, {"failure": {"Arn": "t", "Reason": "DEPLOYMENT_BLOCKED", "Detail": "scaling in"}})
    watch.update(1, 0)
    watch.update(1, 5)
    assert not watch.protected
    agent.answer = None
    watch.update(1, 10)
    assert watch.protected and agent.states() == [True, True, True]
    logged = events(capsys)
    assert [e["event"] for e in logged] == ["task protection not changed", "task protection on"]
    assert "DEPLOYMENT_BLOCKED" in logged[0]["error"]


def test_an_http_error_and_an_absent_agent_are_one_line_each(agent, capsys):
    watch = keeper(agent.uri, capsys)
    agent.answer = (403, {"error": {"Code": "AccessDeniedException", "Message": "no task IAM role"}})
    watch.update(1, 0)
    gone = keeper("http://127.0.0.1:9", capsys)  # nothing listens on the discard port
    gone.update(1, 0)
    gone.update(1, 5)
    errors = [e["error"] for e in events(capsys)]
    assert len(errors) == 1 and "connection refused" in errors[0].lower()
    assert watch.error == "task protection: HTTP 403: AccessDeniedException no task IAM role"


def test_expiry_is_the_agents_range():
    with pytest.raises(ValueError, match="1 to 2880"):
        TaskProtection("http://127.0.0.1:1", expires_minutes=3000)
