"""An HTTP proxy on loopback that damages a seeded fraction of the responses it relays.

Put it between a client and the S3 test server. Each request is relayed upstream; then,
with probability `rate`, the answer is replaced by one fault, drawn from a seeded RNG:

    500       an S3 InternalError
    503       an S3 SlowDown
    stall     nothing at all until `stall` seconds have passed, then the connection drops
    truncate  the real status and headers, half the body, then the connection drops
    flip      the real answer with one byte of its body inverted

A response without a body (HEAD, 304) cannot be flipped or truncated; it gets a 503.
`counts` records what was done, by kind, and "ok" for answers relayed untouched.
`force()` aims a fault at the next answers for a path instead, including "edit": the
real answer with some bytes replaced (a damage that still parses).
"""

import http.client
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("500", "503", "stall", "truncate", "flip")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
_ERRORS = {"500": ("InternalError", "Internal Error"), "503": ("SlowDown", "Slow Down")}


class FaultProxy:
    def __init__(self, upstream: str, seed: int, rate: float = 0.0, stall: float = 2.0):
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        self.rng = random.Random(seed)
        self.rate = rate
        self.stall = stall
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.forced: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self.rate = rate

    def force(self, kind: str, contains: str, times: int = 1, edit: tuple[bytes, bytes] = (b"", b"")) -> None:
        with self.lock:
            self.forced.append({"kind": kind, "contains": contains, "times": times, "edit": edit})

    def draw(self, path: str, has_body: bool) -> tuple[str, tuple[bytes, bytes]]:
        """The fault for the next answer to `path` ("ok" for none), and the edit it makes."""
        with self.lock:
            for rule in self.forced:
                if rule["times"] > 0 and rule["contains"] in path:
                    rule["times"] -= 1
                    self.counts[rule["kind"]] += 1
                    return rule["kind"], rule["edit"]
            kind = self.rng.choice(KINDS) if self.rng.random() < self.rate else "ok"
            if kind in ("truncate", "flip") and not has_body:
                kind = "503"
            self.counts[kind] += 1
            return kind, (b"", b"")

    def flip_position(self, length: int) -> int:
        with self.lock:
            return self.rng.randrange(length)

    def faults(self) -> int:
        with self.lock:
            return sum(count for kind, count in self.counts.items() if kind != "ok")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_for(proxy: FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.relay()

        do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

        def relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request_body = self.rfile.read(length) if length else None
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                upstream.request(self.command, self.path, body=request_body, headers=dict(self.headers))
                response = upstream.getresponse()
                body = response.read()
                status, headers = response.status, response.getheaders()
            finally:
                upstream.close()
            has_body = self.command != "HEAD" and bool(body)
            kind, (old, new) = proxy.draw(self.path, has_body)
            if kind in _ERRORS:
                self.send_error_answer(int(kind), *_ERRORS[kind])
            elif kind == "stall":
                threading.Event().wait(proxy.stall)
                self.close_connection = True
            elif kind == "truncate":
                self.send_answer(status, headers, body, len(body) // 2)
                self.close_connection = True
            elif kind == "edit":
                self.send_answer(status, headers, body.replace(old, new))
            elif kind == "flip":
                damaged = bytearray(body)
                damaged[proxy.flip_position(len(body))] ^= 0xFF
                self.send_answer(status, headers, bytes(damaged))
            else:
                self.send_answer(status, headers, body)

        def send_answer(self, status: int, headers, body: bytes, send: int | None = None) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if self.command == "HEAD":  # the size of what a GET would send
                length = next((value for name, value in headers if name.lower() == "content-length"), "0")
            else:
                length = str(len(body))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body[:send] if send is not None else body)
            self.wfile.flush()

        def send_error_answer(self, status: int, code: str, message: str) -> None:
            body = f"<Error><Code>{code}</Code><Message>{message} (injected)</Message></Error>".encode()
            self.send_answer(status, [("Content-Type", "application/xml")], body)

    return Handler
