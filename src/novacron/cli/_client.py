"""Finding the store and the running controller's API, and calling it with a token.

Operator commands steer the controller only through its API (the same executor, gate and
audit trail as every other caller). They find it the way ``supervisorctl`` finds
supervisord: the controller records its API address and the path of its local admin
token in the store (:mod:`novacron.store.presence`). ``--api URL``, ``--token-file`` and
``NOVACRON_TOKEN`` override what the store says.

Exit codes of every command: 0 ok, 1 failed, 2 bad input, 3 controller (or store) not
reachable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from novacron.errors import InputError, NotFoundError, NovacronError, TemporaryError

if TYPE_CHECKING:
    from novacron.store import Store

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_UNREACHABLE",
    "ApiOpt",
    "ConfigOpt",
    "ControllerApi",
    "StoreOpt",
    "TokenFileOpt",
    "UnreachableError",
    "no_store",
    "open_store",
    "store_url_for",
]

EXIT_FAILED, EXIT_INPUT, EXIT_UNREACHABLE = 1, 2, 3
TOKEN_ENV = "NOVACRON_TOKEN"  # noqa: S105 - the variable's name, not a secret

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Fleet spec (YAML): its store, where the controller is.")
]
StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Database URL (default: the spec's, or .novacron/novacron.db).")
]
ApiOpt = Annotated[str | None, typer.Option("--api", help="The controller's API URL (default: from the store).")]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--token-file", help=f"File holding an API token (default: ${TOKEN_ENV}, else the controller's local token)."
    ),
]


class UnreachableError(TemporaryError):
    """The controller (or its store) cannot be reached: exit code 3."""


def store_url_for(store: str | None, config: Path | None) -> str:
    """The store URL from --store, else the spec's, else the default."""
    from novacron.settings import ControllerSettings, load_spec

    if store:
        return store
    if config is not None:
        return load_spec(config).controller.store_url
    return ControllerSettings().store_url


def open_store(store: str | None, config: Path | None) -> Store:
    """The existing store; never creates one (an empty folder is "nothing ran here", exit 3)."""
    from novacron.store import Store

    url = store_url_for(store, config)
    try:
        return Store.open(url, create=False)
    except NotFoundError as exc:
        raise no_store(exc) from exc


def no_store(exc: NotFoundError) -> UnreachableError:
    """The error (exit 3) for a store that does not exist, saying what to do about it."""
    return UnreachableError(
        f"{exc}: no controller has run here (start one with `novacron run -c fleet.yaml`, "
        "or point at its store with -c/--store)"
    )


@dataclass(frozen=True, slots=True)
class ControllerApi:
    """The running controller's API and the token to call it with."""

    url: str
    token: str
    token_source: str

    @classmethod
    def locate(
        cls, *, config: Path | None, store: str | None, api: str | None, token_file: Path | None
    ) -> ControllerApi:
        """From the flags, the environment and the controller's record in the store."""
        recorded_token: str | None = None
        if api is None:
            api, recorded_token = _from_store(store, config)
        if token_file is not None:
            return cls(api, _read_token(token_file, "--token-file"), f"--token-file {token_file}")
        if os.environ.get(TOKEN_ENV, "").strip():
            return cls(api, os.environ[TOKEN_ENV].strip(), f"${TOKEN_ENV}")
        if recorded_token is None:
            raise InputError(
                f"no token: set ${TOKEN_ENV} or pass --token-file (with --api there is no local token to use)",
                where="--token-file",
            )
        return cls(api, _read_token(Path(recorded_token), "the controller's local token"), recorded_token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, wait_s: float = 0.0) -> Any:
        """One API call; the answer's JSON, or the error that maps to the right exit code."""
        import httpx

        try:
            res = httpx.request(
                method,
                self.url.rstrip("/") + path,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(wait_s + 10.0, connect=3.0),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
            raise UnreachableError(f"controller not reachable at {self.url}: {exc}") from exc
        except httpx.TransportError as exc:
            if method == "GET":
                raise UnreachableError(f"controller not reachable at {self.url}: {exc}") from exc
            # Sent, unanswered: a hung controller that resumes still carries it out, so "nothing
            # happened" would invite a second, duplicate request.
            raise UnreachableError(
                f"controller at {self.url} did not answer ({exc or type(exc).__name__}); the request was sent "
                "and may still be carried out if it resumes: check `novacron status` and GET /audit "
                "before repeating it"
            ) from exc
        if res.status_code < 300:
            return res.json()
        raise _error(res.status_code, _detail(res), self.token_source)


def controller_api(config: Path | None, store: str | None, api: str | None, token_file: Path | None) -> ControllerApi:
    """The running controller's API from the steering commands' ``-c``, ``--store``, ``--api``, ``--token-file``."""
    return ControllerApi.locate(config=config, store=store, api=api, token_file=token_file)


def _from_store(store: str | None, config: Path | None) -> tuple[str, str | None]:
    from novacron.store.presence import presence

    db = open_store(store, config)
    try:
        rec = presence(db).record
    finally:
        db.close()
    if rec is None:
        raise UnreachableError("no controller has run on this store: start one with `novacron run -c fleet.yaml`")
    if rec.stopped_at is not None:
        raise UnreachableError(f"the controller (pid {rec.pid}) has stopped: start it with `novacron run -c …`")
    if not rec.api_url:
        raise UnreachableError(f"the controller (pid {rec.pid}) recorded no API address")
    return rec.api_url, rec.token_file


def _read_token(path: Path, what: str) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", where=str(path)) from exc
    if not token:
        raise InputError(f"{what} is empty", where=str(path))
    return token


def _detail(res: Any) -> tuple[str, str | None]:
    try:
        body = res.json()
    except ValueError:
        return res.text[:200] or res.reason_phrase, None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail:  # FastAPI's 422: [{"loc": [...], "msg": ...}]
        first = detail[0]
        return str(first.get("msg", first)), ".".join(str(p) for p in first.get("loc", [])[1:]) or None
    return str(detail or res.reason_phrase), (body.get("field") if isinstance(body, dict) else None)


def _error(status: int, detail: tuple[str, str | None], token_source: str) -> NovacronError:
    reason, field = detail
    if status in (400, 404, 409, 422):
        return InputError(reason, where=field or "")
    if status in (401, 403):
        return NovacronError(f"refused ({status}): {reason} (token from {token_source})")
    if status == 503:
        return NovacronError(f"the API cannot do this ({status}): {reason}")
    return NovacronError(f"the API answered {status}: {reason}")
