"""A labelled STAND-IN for the hosted Run402 API, for differential tests: a real HTTP server on
127.0.0.1 that records every request it gets and answers from a small table of canned
responses. It knows nothing about Run402's semantics (no auth, no payments, no state): it
exists so two CLIs can be compared on what they SEND, given the same answers.

    with RecordingServer({("GET", "/tiers/v1/status"): Reply(200, {"tier": "prototype"})}) as srv:
        ... RUN402_API_BASE=srv.url ...
        srv.requests      # [Recorded(method, path, query, headers, body), ...]
        srv.take()        # the requests so far, and forget them

Routes are keyed (method, path pattern): an exact path wins, else the longest matching
`fnmatch` pattern (`*` spans "/" too: "/apply/v1/operations/*/events"); method "*" matches
any method. Anything unmatched gets `default` (200 `{}`).
"""

from __future__ import annotations

import json
import threading
from fnmatch import fnmatchcase
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

__all__ = ["Recorded", "RecordingServer", "Reply"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # JSON-encoded unless bytes/str
    headers: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


# A route's answer: a fixed Reply, or a function of the recorded request (for echoes).
Answer = Reply | Callable[["Recorded"], Reply]


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class RecordingServer:
    def __init__(self, routes: Mapping[tuple[str, str], Answer] | None = None,
                 default: Reply | None = None) -> None:
        self.routes: dict[tuple[str, str], Answer] = dict(routes or {})
        self.default = default or Reply()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # a short poll: shutdown() waits up to one interval, and every case stops a server
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- the record --------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def take(self) -> list[Recorded]:
        with self._lock:
            taken, self._requests = self._requests, []
        return taken

    # --- answering ---------------------------------------------------------------------

    def answer_for(self, req: Recorded) -> Reply:
        answer = self.routes.get((req.method, req.path)) or self.routes.get(("*", req.path))
        if answer is None:
            matches = [(len(p), a) for (m, p), a in self.routes.items()
                       if m in (req.method, "*") and "*" in p and fnmatchcase(req.path, p)]
            answer = max(matches, key=lambda t: t[0])[1] if matches else self.default
        return answer(req) if callable(answer) else answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                # not urlsplit: it would read a path starting "//" as a host
                path, _, query = self.path.partition("?")
                req = Recorded(self.command, path, query,
                               {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server._requests.append(req)
                reply = server.answer_for(req)
                payload, ctype = reply.encoded()
                self.send_response(reply.status)
                headers = {"Content-Type": ctype, **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        return Handler
