"""An optional model provider: any OpenAI-compatible chat endpoint proposes more candidates.

Configured from the environment (read by the CLI): ``NOVACRON_FIX_LLM_URL`` (base URL,
``…/v1``), ``NOVACRON_FIX_LLM_KEY`` and ``NOVACRON_FIX_LLM_MODEL``. The model sees the
traceback and the suspicious file and answers with the whole corrected file in a fenced
block; its proposals are validated exactly like the templates' — a model never decides
on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from novacron.codegen.candidates import Candidate
from novacron.codegen.localise import Suspect
from novacron.codegen.traceback import ParsedTraceback
from novacron.errors import InputError, TemporaryError
from novacron.telemetry import get_logger

__all__ = ["ChatProvider"]

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
_SYSTEM = (
    "You repair Python bugs. Answer with the complete corrected file in one ```python fenced block, "
    "changing as little as possible. Never change tests."
)


class ChatProvider:
    """Asks a chat-completions endpoint for whole-file repairs."""

    def __init__(
        self,
        url: str,
        *,
        key: str = "",
        model: str = "default",
        timeout_s: float = 60.0,
        choices: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InputError("must be an http(s) URL", where="NOVACRON_FIX_LLM_URL")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.choices = choices
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ChatProvider | None:
        """A provider when ``NOVACRON_FIX_LLM_URL`` is set, else None."""
        url = env.get("NOVACRON_FIX_LLM_URL", "").strip()
        if not url:
            return None
        return cls(url, key=env.get("NOVACRON_FIX_LLM_KEY", ""), model=env.get("NOVACRON_FIX_LLM_MODEL", "default"))

    def ask(self, prompt: str) -> list[str]:
        """The fenced code blocks of every choice in the reply."""
        body = {
            "model": self.model,
            "n": self.choices,
            "temperature": 0.2,
            "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
        }
        try:
            resp = self._client.post(self.url, json=body)
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TemporaryError(f"chat endpoint {self.url} failed: {exc}", delay=5.0) from exc
        texts = [str(c.get("message", {}).get("content", "")) for c in data.get("choices", [])]
        return [m.group(1) for t in texts for m in [_FENCE.search(t)] if m is not None]

    def candidates(self, root: Path, suspects: Sequence[Suspect], tb: ParsedTraceback | None) -> list[Candidate]:
        """Whole-file proposals for the most suspicious file; failures of the endpoint are logged, not fatal."""
        if not suspects:
            return []
        top = suspects[0]
        source = (root / top.file).read_text(encoding="utf-8")
        crash = f"{tb.exc_type}: {tb.message}" if tb else "failing tests"
        lines = ", ".join(str(s.line) for s in suspects if s.file == top.file)
        prompt = f"Crash: {crash}\nSuspicious lines of {top.file}: {lines}\n\n```python\n{source}```"
        try:
            replies = self.ask(prompt)
        except TemporaryError as exc:
            get_logger(component="fixer").warning("llm provider unavailable", error=str(exc))
            return []
        out: list[Candidate] = []
        for i, code in enumerate(replies):
            try:
                compile(code, top.file, "exec")
            except (SyntaxError, ValueError):
                continue
            if code != source:
                out.append(Candidate(top.file, code, "llm", f"model proposal {i + 1}", top.line, top.score + 0.5))
        return out

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
