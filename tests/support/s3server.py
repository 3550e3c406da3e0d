"""A real S3 server for tests: moto's server app over HTTP on loopback, in its own process.

It counts every S3 request it serves (so tests count requests server-side, not in
the client) and can inject faults. Control endpoints, never counted:

    GET  /_test/requests   -> {"requests": [[method, path, query, status], ...],
                               "bytes_in": request bodies, "bytes_out": response bodies}
    POST /_test/reset      -> forget the counted requests and faults
    POST /_test/faults     <- {"method": "GET", "contains": "objects/", "times": 3,
                               "status": 500 | "delay": 2.5 | "truncate": true | "trickle": 8}

Run: python tests/support/s3server.py --port 0 --ready-file FILE (FILE receives the port).
"""

import argparse
import json
import threading
import time
from pathlib import Path

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class Recorder:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.requests: list[list] = []
        self.faults: list[dict] = []
        self.bytes_in = 0
        self.bytes_out = 0

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_test/"):
            return self.control(environ, start_response, path)
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        query = environ.get("QUERY_STRING", "")
        fault = self.take_fault(method, f"{path}?{query}")
        record = [method, path, query, None]
        with self.lock:
            self.requests.append(record)
            self.bytes_in += int(environ.get("CONTENT_LENGTH") or 0)
        if fault and "status" in fault:
            record[3] = fault["status"]
            body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
            start_response(
                f"{fault['status']} Injected",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if fault and "delay" in fault:
            time.sleep(fault["delay"])

        def recording_start(status, headers, exc_info=None):
            record[3] = int(status.split()[0])
            length = next((value for name, value in headers if name.lower() == "content-length"), "0")
            with self.lock:
                self.bytes_out += int(length) if method != "HEAD" else 0
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start)
        if fault and fault.get("truncate"):
            return self.truncated(result)
        if fault and fault.get("trickle"):
            return self.trickled(result, fault["trickle"])
        return result

    @staticmethod
    def trickled(result, seconds: float, pieces: int = 40):
        """The whole body, but spread over `seconds` in `pieces` (a slow link)."""
        body = b"".join(result)
        step = max(1, -(-len(body) // pieces))
        for start in range(0, len(body), step):
            yield body[start : start + step]
            time.sleep(seconds / pieces)

    @staticmethod
    def truncated(result):
        body = b"".join(result)
        yield body[: len(body) // 2]
        raise ConnectionAbortedError("injected truncation")  # the server drops the connection

    def take_fault(self, method: str, target: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("method", method) != method or fault.get("contains", "") not in target:
                    continue
                if fault["times"] <= 0:
                    continue
                fault["times"] -= 1
                return fault
        return None

    def control(self, environ, start_response, path):
        if path == "/_test/requests":
            with self.lock:
                payload = json.dumps(
                    {"requests": self.requests, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}
                ).encode()
        elif path == "/_test/reset":
            with self.lock:
                self.requests.clear()
                self.faults.clear()
                self.bytes_in = self.bytes_out = 0
            payload = b"{}"
        elif path == "/_test/faults":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            fault = json.loads(environ["wsgi.input"].read(length))
            fault.setdefault("times", 1)
            with self.lock:
                self.faults.append(fault)
            payload = b"{}"
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        )
        return [payload]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    app = Recorder(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=QuietHandler)
    args.ready_file.write_text(str(server.server_address[1]))
    server.serve_forever()


class QuietHandler(MotoRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass

    def log_error(self, *args, **kwargs) -> None:
        pass


if __name__ == "__main__":
    main()
