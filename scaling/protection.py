"""ECS task scale-in protection for a busy worker.

While a worker runs tasks it asks the ECS agent (ECS_AGENT_URI, inside every ECS task) to
protect its task: a scale-in by Application Auto Scaling, or a deployment, then stops other
workers instead. When it is idle again it drops the protection. Protection expires by
itself (ExpiresInMinutes), so a worker that dies never pins its task.
"""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

PATH = "/task-protection/v1/state"
MAX_EXPIRY_MINUTES = 2880  # the agent's limit


class TaskProtection:
    """The agent's task-protection endpoint. set() returns None, or one line why it failed."""

    def __init__(self, agent_uri: str, expires_minutes: int = 60, timeout: float = 5.0):
        if not 1 <= expires_minutes <= MAX_EXPIRY_MINUTES:
            raise ValueError(f"expires_minutes must be 1 to {MAX_EXPIRY_MINUTES}: {expires_minutes}")
        self.url = agent_uri.rstrip("/") + PATH
        self.expires_minutes = expires_minutes
        self.timeout = timeout

    def set(self, enabled: bool) -> str | None:
        body = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.expires_minutes
        request = urllib.request.Request(
            self.url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="PUT"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return f"task protection: HTTP {exc.code}: {_reason(exc.read())}"
        except (OSError, ValueError) as exc:
            return f"task protection: {exc}"
        if "failure" in answer:  # the agent answers 200 with the ECS API's refusal inside
            return f"task protection: {_reason(json.dumps(answer).encode())}"
        return None


def _reason(raw: bytes) -> str:
    try:
        answer = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200]
    detail = answer.get("failure") or answer.get("error") or answer
    if isinstance(detail, dict):
        parts = (detail.get(key) for key in ("Code", "Reason", "Message", "Detail"))
        return " ".join(str(part) for part in parts if part)
    return str(detail)[:200]


@dataclass
class ProtectionKeeper:
    """Told every few seconds how many tasks run: protect when busy (renewed well before it
    expires), unprotect when idle. A failed call is logged once and tried at the next tick."""

    protection: TaskProtection
    log: object
    protected: bool = False
    renewed_at: float = 0.0
    error: str | None = None

    def update(self, busy: int, now: float) -> None:
        renew_every = self.protection.expires_minutes * 60 / 2
        if busy and (not self.protected or now - self.renewed_at >= renew_every):
            if self._set(True):
                self.protected, self.renewed_at = True, now
        elif not busy and self.protected and self._set(False):
            self.protected = False

    def _set(self, enabled: bool) -> bool:
        error = self.protection.set(enabled)
        if error is None:
            if self.error is not None or enabled != self.protected:
                self.log.info("task protection " + ("on" if enabled else "off"))
            self.error = None
            return True
        if error != self.error:
            self.log.warning("task protection not changed", error=error, wanted=enabled)
        self.error = error
        return False
