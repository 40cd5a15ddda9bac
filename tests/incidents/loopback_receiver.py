"""A real HTTP receiver on loopback that records requests and answers with scripted statuses."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers with ``script`` statuses in order, then 200."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"


def _handler(rx: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rx.lock:
                rx.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = rx.script.pop(0) if rx.script else 200
            self.send_response(status)
            for k, v in rx.extra_headers.items():
                self.send_header(k, v)
            payload = b"ok" if status < 400 else b"nope"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def start_receiver(port: int = 0) -> Receiver:
    server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    rx = Receiver(server)
    server.RequestHandlerClass = _handler(rx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return rx


def stop_receiver(rx: Receiver) -> None:
    rx.server.shutdown()
    rx.server.server_close()
