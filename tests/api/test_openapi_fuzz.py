"""The REST API against its own served OpenAPI description, fuzzed with schemathesis.

Every operation of ``GET /api/v1/openapi.json`` gets requests generated from its schema (valid
and, through Hypothesis, edge values: huge integers, odd strings, wrong types), sent to the
app with a real key, on PostgreSQL and Redis. What must hold: no answer is a 5xx (bad input is
a 4xx naming the field, issue 11), and every answer's status is one the description documents.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import status_code_conformance

from hub.runtime import Runtime

EXAMPLES = 25  # per operation: the whole API in well under a minute


def not_a_server_error(ctx: Any, response: Any, case: Any) -> bool:
    """A 5xx means the hub failed on input it should have refused (or taken).

    ``/healthz`` answers 503 by design when facts wait and no worker runs (none does here).
    """
    if case.formatted_path == "/healthz" and response.status_code == 503:
        return True
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}: "
        f"{response.text[:300]}"
    )
    return True


@pytest.mark.parametrize("backend", ["production"], indirect=True)
def test_no_operation_answers_a_server_error(app: Any, api_key: str, hub_runtime: Runtime) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {api_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(app=app, headers=headers)
            case.validate_response(response, checks=(not_a_server_error, status_code_conformance))

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - gather every operation's failure
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
