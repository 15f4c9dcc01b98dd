"""A threaded HTTP server on 127.0.0.1 with a request log and scripted faults.

Tests start it in a ``with`` block; it answers from a handler function, unless a :class:`Fault`
matches the request first (an error status with headers and body, a slow answer, a dropped
connection). Every request is logged with its wall-clock time, so tests can count requests and
check rate limits across processes.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    at: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    query_string: str = ""


@dataclass
class Response:
    status: int = 200
    body: bytes | str | object = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    """The next ``times`` requests whose path contains ``path`` get ``status`` (with
    ``headers``/``body``), or are answered after ``delay`` seconds, or have their connection
    dropped (``reset``). Faults form a queue: each applies once those before it (for the same
    path) are used up; a fault with no status, delay or reset lets its requests through."""

    path: str
    status: int | None = None
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | object = b""
    content_type: str = "application/json"
    delay: float = 0.0
    reset: bool = False
    hits: int = 0


HTML_503 = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
    "<center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center>"
    "</body></html>"
)


class FakeServer:
    def __init__(self, handle: Callable[[Request], Response]):
        self.handle = handle
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                server._serve(self, "GET")

            def do_POST(self):
                server._serve(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def paths(self, contains: str = "") -> list[str]:
        return [r.path for r in self.requests if contains in r.path]

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        request = Request(
            at=time.time(),
            method=method,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in handler.headers.items()},
            query_string=parts.query,
        )
        with self._lock:
            self.requests.append(request)
            fault = self._fault_for(request)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.reset:
            # SO_LINGER 0: close with a TCP reset, as a dropped connection looks to the client.
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            handler.close_connection = True
            handler.connection.close()
            return
        if fault is not None and fault.status is not None:
            response = Response(fault.status, fault.body, fault.headers, fault.content_type)
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a bug in a fake must show, not hang the client
                response = Response(500, {"fake_error": repr(exc)})
        body = response.encoded()
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(body)))
            for key, value in response.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the slow answer came

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if fault.path in request.path and fault.hits < fault.times:
                fault.hits += 1
                return fault
        return None
