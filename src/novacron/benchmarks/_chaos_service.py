"""A service for the chaos benchmark: answers ``GET /health`` and records every start.

Run as ``python _chaos_service.py PORT STARTS_FILE``. Before binding it appends
``<pid> <port> <unix time>`` to STARTS_FILE in one write, so the benchmark counts every
spawn, including one that then fails to bind. Free of project imports so it starts fast.
"""

from __future__ import annotations

import http.server
import os
import sys
import time


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark reads no request log."""


def main() -> None:
    """Record the start, then serve until killed."""
    port, starts = int(sys.argv[1]), sys.argv[2]
    fd = os.open(starts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{os.getpid()} {port} {time.time():.6f}\n".encode())
    os.close(fd)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health).serve_forever()


if __name__ == "__main__":
    main()
