"""A small threaded HTTP server on loopback, with failure injection and a request log."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a timeout, seen from the client)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class StandIn:
    """Base class: subclasses implement :meth:`handle`; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failures: deque[tuple[str, Answer]] = deque()
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    dict(self.headers.items()),
                    self.rfile.read(length) if length else b"",
                )
                answer = stand_in._dispatch(req)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.encoded()
                try:
                    self.send_response(answer.status)
                    if (
                        answer.body is not None
                        and not isinstance(answer.body, bytes)
                        and "Content-Type" not in answer.headers
                    ):
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer to

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, path_part: str, *answers: Answer) -> None:
        """The next requests whose path contains ``path_part`` get these answers, in order."""
        with self._lock:
            self.failures.extend((path_part, a) for a in answers)

    def _dispatch(self, req: Request) -> Answer:
        with self._lock:
            self.requests.append(req)
            for i, (part, answer) in enumerate(self.failures):
                if part in req.path:
                    del self.failures[i]
                    return answer
        try:
            return self.handle(req)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug shows as a 500 with its cause
            return Answer(500, {"message": f"stand-in error: {type(exc).__name__}: {exc}"})

    def handle(self, req: Request) -> Answer:
        raise NotImplementedError

    def hits(self, path_part: str) -> int:
        return sum(1 for r in self.requests if path_part in r.path)
