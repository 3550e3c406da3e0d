"""The ECS agent's task-protection endpoint (PUT/GET $ECS_AGENT_URI/task-protection/v1/state)
on loopback, answering as the agent does: the protection state, an ECS refusal inside a 200
(`failure`), or an HTTP error; every request it received is kept."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeAgent:
    def __init__(self):
        self.requests: list[dict] = []
        self.answer: tuple[int, dict] | None = None  # None: accept
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/v1/ecs-task"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self) -> list[bool]:
        with self.lock:
            return [request["ProtectionEnabled"] for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(agent: FakeAgent):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_PUT(self) -> None:
            if not self.path.endswith("/task-protection/v1/state"):
                return self.reply(404, {"error": {"Code": "NotFound", "Message": self.path}})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with agent.lock:
                agent.requests.append(body)
                answer = agent.answer
            if answer is not None:
                return self.reply(*answer)
            protection = {"ProtectionEnabled": body["ProtectionEnabled"], "TaskArn": "arn:aws:ecs:::task/c/t"}
            self.reply(200, {"protection": protection})

        def reply(self, status: int, document: dict) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
