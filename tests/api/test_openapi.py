"""Property-based robustness: schemathesis against /openapi.json of a real uvicorn server.

Every documented operation is exercised with generated requests under an admin token: no
response may be a 5xx, and every response must match its documented status code, content
type and schema. Examples per operation are bounded so the run stays well under a minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from novacron.store.tokens import Role

from .servers import served

_EXAMPLES = 30


def test_no_server_errors_and_no_schema_violations(tmp_path: Path) -> None:
    with served(tmp_path) as (base, _controller, tokens):
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        headers = {"Authorization": f"Bearer {tokens[Role.ADMIN]}"}
        failures: list[str] = []
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) >= 17
        for op in operations:

            @given(case=op.as_strategy())
            @settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case: schemathesis.Case[Any]) -> None:
                # Schema-valid but semantically refused requests (a webhook alert without any
                # target label, a rollback with nothing to roll back to) are a documented 4xx.
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{op.method.upper()} {op.path}: {exc}")
        assert not failures, "\n\n".join(failures)
