"""Settings, read from ``HUB_*`` environment variables by strict parsers.

Settings are read when the app or a command starts, never at import time, so tests build a
:class:`Settings` directly instead of patching the environment.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from hub.exceptions import ConfigError
from hub.outbound import parse_entry

MAX_FACTS_PER_REQUEST = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything the hub needs to know about where it runs."""

    home: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "hub@localhost"
    rules_dir: Path = Path("./rules")
    secret_key: str = field(default="", repr=False)
    max_facts_per_request: int = MAX_FACTS_PER_REQUEST
    max_body_bytes: int = MAX_BODY_BYTES
    redis_prefix: str = "hub"
    fact_batch_size: int = 500
    sweep_interval_seconds: int = 30
    pull_retry_delays: tuple[int, ...] = (30, 120, 600)  # connector pull retries, seconds
    # networks and hosts webhooks may reach although not public (hub/outbound.py)
    webhook_allow: tuple[str, ...] = ()
    # where contacts reach the hub: unsubscribe, tracking and form links in mails
    public_url: str = "http://127.0.0.1:8000"
    # the address bounces come back to: ``bounces+<message token>@<domain>`` (VERP); by
    # default the domain of ``mail_from``
    bounce_address: str | None = None
    list_id: str | None = None  # the List-Id of marketing mail; default from mail_from's domain

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hub.sqlite3').resolve()}"

    @property
    def outbox_dir(self) -> Path:
        """Where mail goes when no SMTP relay is configured: one ``.eml`` file per message."""
        return self.home / "outbox"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the settings named as keywords changed; settings are immutable."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    scheme = urlsplit(value).scheme.split("+", 1)[0]
    if scheme not in schemes:
        raise ConfigError(name, f"scheme {scheme!r} is not one of {', '.join(schemes)}")
    return value


def plain_auth_refusal(smtp_url: str) -> str | None:
    """Why a relay URL would send its credentials in the clear, or None if it would not.

    Credentials on ``smtp://`` need ``?starttls=true``; ``?plain_auth=true`` allows them
    without TLS to a relay on a loopback address only.
    """
    parts = urlsplit(smtp_url)
    query = parse_qs(parts.query)

    def flag(name: str) -> bool:
        return query.get(name, ["false"])[0].lower() in ("1", "true", "yes")

    if parts.scheme == "smtps" or not parts.username or flag("starttls"):
        return None
    if not flag("plain_auth"):
        return (
            "credentials would be sent without TLS: use smtps:// or add ?starttls=true "
            "(?plain_auth=true allows it for a relay on a loopback address)"
        )
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return f"plain_auth=true is allowed only for a relay on a loopback address, not {host!r}"
    return None


def _smtp_url(env: Mapping[str, str]) -> str | None:
    value = _url(env, "HUB_SMTP_URL", ("smtp", "smtps"))
    refused = plain_auth_refusal(value) if value else None
    if refused:
        raise ConfigError("HUB_SMTP_URL", refused)
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, f"expected a number above 0, got {value}")
    return value


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables; raise :class:`ConfigError` naming the variable."""
    env = os.environ if env is None else env
    home = Path(env.get("HUB_HOME", "").strip() or "./var")
    secret = env.get("HUB_SECRET_KEY", "")
    if not secret:
        secret = _embedded_secret(home)
    elif len(secret) < 16:
        raise ConfigError("HUB_SECRET_KEY", "must be at least 16 characters long")
    return Settings(
        home=home,
        database_url=_url(env, "HUB_DATABASE_URL", ("sqlite", "postgresql")),
        redis_url=_url(env, "HUB_REDIS_URL", ("redis", "rediss", "unix")),
        smtp_url=_smtp_url(env),
        mail_from=env.get("HUB_MAIL_FROM", "").strip() or "hub@localhost",
        rules_dir=Path(env.get("HUB_RULES_DIR", "").strip() or "./rules"),
        secret_key=secret,
        max_facts_per_request=_positive_int(
            env, "HUB_MAX_FACTS_PER_REQUEST", MAX_FACTS_PER_REQUEST
        ),
        fact_batch_size=_positive_int(env, "HUB_FACT_BATCH_SIZE", 500),
        sweep_interval_seconds=_positive_int(env, "HUB_SWEEP_INTERVAL_SECONDS", 30),
        pull_retry_delays=_delays(env, "HUB_PULL_RETRY_DELAYS", (30, 120, 600)),
        webhook_allow=_allow_list(env, "HUB_WEBHOOK_ALLOW"),
        public_url=(
            _url(env, "HUB_PUBLIC_URL", ("http", "https")) or "http://127.0.0.1:8000"
        ).rstrip("/"),
        bounce_address=_address(env, "HUB_BOUNCE_ADDRESS"),
        list_id=env.get("HUB_LIST_ID", "").strip() or None,
    )


def _address(env: Mapping[str, str], name: str) -> str | None:
    """An address ``local@domain`` (no display name), or None when not set."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    local, at, domain = raw.rpartition("@")
    if not at or not local or "." not in domain or any(c in raw for c in " <>,;\r\n"):
        raise ConfigError(name, f"expected an address such as bounces@example.com, got {raw!r}")
    return raw


def _allow_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated networks and host names, such as ``127.0.0.0/8,::1,crm.internal``."""
    entries = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    try:
        return tuple(str(parse_entry(entry)) for entry in entries)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def _delays(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated seconds between retries, such as ``30,120,600`` (empty: no retry)."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        values = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(name, f"expected comma-separated whole seconds, got {raw!r}") from None
    if any(v < 0 for v in values):
        raise ConfigError(name, "seconds cannot be negative")
    return values


def _embedded_secret(home: Path) -> str:
    """A per-installation secret kept in ``home`` so an embedded hub needs no setup."""
    path = home / "secret_key"
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the same installation made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
