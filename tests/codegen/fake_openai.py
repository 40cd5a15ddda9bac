"""A loopback fake of an OpenAI-compatible chat-completions endpoint (the project's own fake).

It answers ``POST /v1/chat/completions`` with the replies it was given, records every
request, and checks the bearer token, so the fixer's provider is tested over real HTTP.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeChatServer"]


class FakeChatServer:
    """Serve canned chat completions on 127.0.0.1 until :meth:`close`."""

    def __init__(self, replies: list[str], *, key: str = "test-key") -> None:
        self.replies = replies
        self.key = key
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if self.path != "/v1/chat/completions" or self.headers.get("Authorization") != f"Bearer {outer.key}":
                    self.send_response(401 if self.path == "/v1/chat/completions" else 404)
                    self.end_headers()
                    return
                choices = [
                    {"index": i, "message": {"role": "assistant", "content": r}} for i, r in enumerate(outer.replies)
                ]
                data = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The base URL to put in NOVACRON_FIX_LLM_URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
