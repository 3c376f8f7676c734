"""Mail delivery through a real SMTP server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import config
from hub.exceptions import ConfigError, FatalError, RetriableError
from hub.mail import delivery
from hub.mail.delivery import DeliveryUnknown, clean_header, compose, deliver, outbox_path
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


def test_a_relay_answering_late_gets_the_mail_once(
    smtp: SMTPSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer to DATA may come later than the per-command timeout: the hub waits for it."""
    monkeypatch.setattr(delivery, "SMTP_TIMEOUT", 0.5)
    monkeypatch.setattr(delivery, "DATA_REPLY_TIMEOUT", 5)
    smtp.answer_after = 1.5
    deliver(message(), smtp.url, tmp_path)  # no exception: delivered
    assert [m["Message-ID"] for m in smtp.messages] == ["<m1@test>"]


def test_no_answer_after_the_content_is_unknown_not_retriable(
    smtp: SMTPSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay has the mail once its content arrived: a later failure must not resend it."""
    monkeypatch.setattr(delivery, "DATA_REPLY_TIMEOUT", 0.5)
    smtp.answer_after = 3
    with pytest.raises(DeliveryUnknown, match="after the content"):
        deliver(message(), smtp.url, tmp_path)
    assert len(smtp.messages) == 1


def test_a_line_starting_with_a_dot_arrives_intact(smtp: SMTPSink, tmp_path: Path) -> None:
    msg = compose(
        sender="hub@example.com",
        to="ann@example.com",
        subject="Dots",
        html=None,
        text="first\n.\n.hidden\nlast\n",
        message_id="<dots@test>",
    )
    deliver(msg, smtp.url, tmp_path)
    (received,) = smtp.wait_for(1)
    assert received.get_content().replace("\r\n", "\n") == "first\n.\n.hidden\nlast\n"


def test_credentials_are_never_sent_without_tls(smtp: SMTPSink, tmp_path: Path) -> None:
    url = f"smtp://ann:secret@127.0.0.1:{smtp.port}"
    with pytest.raises(FatalError, match="without TLS") as refused:
        deliver(message(), url, tmp_path)
    assert "secret" not in str(refused.value)
    assert smtp.messages == []
    with pytest.raises(ConfigError, match="HUB_SMTP_URL.*without TLS"):
        config.from_env({"HUB_HOME": str(tmp_path), "HUB_SMTP_URL": url})


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("smtp://relay.example.com:25", None),  # no credentials
        ("smtps://u:p@relay.example.com", None),
        ("smtp://u:p@relay.example.com:587?starttls=true", None),
        ("smtp://u:p@127.0.0.1:2525?plain_auth=true", None),
        ("smtp://u:p@[::1]:2525?plain_auth=true", None),
        ("smtp://u:p@localhost:2525?plain_auth=true", None),
        ("smtp://u:p@relay.example.com:25", "without TLS"),
        ("smtp://u:p@relay.example.com:25?plain_auth=true", "only for a relay on a loopback"),
        ("smtp://u:p@10.0.0.5:25?plain_auth=true", "only for a relay on a loopback"),
    ],
)
def test_plain_auth_is_allowed_only_to_loopback_and_only_when_asked(
    url: str, refused: str | None
) -> None:
    why = config.plain_auth_refusal(url)
    assert (why is None) if refused is None else (why is not None and refused in why)


def test_clean_header_puts_a_value_on_one_line() -> None:
    assert clean_header("Hello Eve\r\nBcc: x@example.com") == "Hello Eve Bcc: x@example.com"
    assert clean_header("a\n\n  b\rc\u2028d") == "a b c d"
    assert clean_header("plain") == "plain"
