"""Mail delivery through a real SMTP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.exceptions import FatalError, RetriableError
from hub.mail.delivery import compose, deliver, outbox_path
from tests.conftest import SMTPSink, free_port


def message(mid: str = "<m1@test>") -> object:
    return compose(
        sender="hub@example.com",
        to="ann@example.com",
        subject="Hi",
        html="<p>Hi</p>",
        text="Hi",
        message_id=mid,
    )


def test_smtp_delivery(smtp: SMTPSink, tmp_path: Path) -> None:
    deliver(message(), smtp.url, tmp_path)
    (received,) = smtp.wait_for(1)
    assert received["Message-ID"] == "<m1@test>"
    assert received.get_body(("plain",)).get_content().strip() == "Hi"
    assert list(tmp_path.iterdir()) == []


def test_outbox_when_no_relay(tmp_path: Path) -> None:
    deliver(message(), None, tmp_path)
    path = outbox_path(tmp_path, "<m1@test>")
    assert path.read_text().count("Subject: Hi") == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_temporary_refusal_is_retriable(smtp: SMTPSink, tmp_path: Path) -> None:
    smtp.refuse_with = "451 try again later"
    with pytest.raises(RetriableError, match="451"):
        deliver(message(), smtp.url, tmp_path)


def test_permanent_refusal_is_fatal(smtp: SMTPSink, tmp_path: Path) -> None:
    smtp.refuse_with = "554 no thanks"
    with pytest.raises(FatalError, match="554"):
        deliver(message(), smtp.url, tmp_path)


def test_unreachable_relay_is_retriable(tmp_path: Path) -> None:
    with pytest.raises(RetriableError):
        deliver(message(), f"smtp://127.0.0.1:{free_port()}", tmp_path)
