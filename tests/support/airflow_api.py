"""Airflow's REST API as one user: a bearer token from POST /auth/token (simple or FAB auth manager)."""

import json
import urllib.error
import urllib.request


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str):
        self.base_url = base_url
        self.credentials = {"username": username, "password": password}
        self._token: str | None = None

    def __call__(self, method: str, path: str, body: dict | None = None, missing_ok: bool = False):
        """The decoded JSON answer; with missing_ok, None for a 404."""
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.token()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise

    def token(self) -> str:
        if self._token is None:
            request = urllib.request.Request(
                f"{self.base_url}/auth/token",
                method="POST",
                data=json.dumps(self.credentials).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                self._token = json.loads(response.read())["access_token"]
        return self._token
