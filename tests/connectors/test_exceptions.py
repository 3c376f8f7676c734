"""Connector errors: how the hub treats each (retry, fail the run) and what they say."""

from __future__ import annotations

import pytest

from connectors.exceptions import (
    ConfigInvalid,
    ConfigProblem,
    PayloadInvalid,
    RemoteRejected,
    RemoteUnavailable,
)
from hub.exceptions import FatalError, RetriableError


@pytest.mark.parametrize(
    ("error", "retriable"),
    [(RemoteUnavailable("down", retry_after=3), True), (RemoteRejected("no", status=403), False)],
)
def test_remote_errors_are_retried_or_fatal(error: Exception, retriable: bool) -> None:
    assert isinstance(error, RetriableError) is retriable
    assert isinstance(error, FatalError) is not retriable


def test_config_invalid_lists_every_problem_by_field() -> None:
    error = ConfigInvalid(
        "exact", [ConfigProblem("division", "expected a whole number"), ConfigProblem("x", "y")]
    )
    assert str(error) == "exact configuration: division: expected a whole number; x: y"
    assert [p.field for p in error.problems] == ["division", "x"]


@pytest.mark.parametrize(
    ("field", "text"), [("items[0].email", "items[0].email: missing"), ("", "missing")]
)
def test_payload_invalid_names_the_field(field: str, text: str) -> None:
    error = PayloadInvalid(field, "missing")
    assert str(error) == text and error.field == field
