"""Outbound HTTP for connectors: timeouts, error classes, ``Retry-After`` and rate limits.

Every remote answer is sorted once, here: a timeout, a refused connection, 5xx and 429 are
:class:`RemoteUnavailable` (retried later, never sooner than the remote asked); other 4xx are
:class:`RemoteRejected`. A short wait the remote asks for (up to ``max_inline_wait`` seconds)
is slept through in place; a longer one ends the run and the job is retried after it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.exceptions import RemoteRejected, RemoteUnavailable

USER_AGENT = "contact-hub-connector/1"


class RemoteClient:
    """A ``requests`` session bound to one remote base URL, with the hub's error rules.

    ``limit_headers`` names the (remaining, reset) headers of a per-minute rate limit; when a
    response says nothing remains, the next request waits for the reset (reset given in epoch
    milliseconds, as Exact Online sends it).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        max_inline_wait: float = 5.0,
        limit_headers: tuple[str, str] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.max_inline_wait = max_inline_wait
        self.limit_headers = limit_headers
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self._sleep = sleep
        self._blocked_until: float | None = None  # epoch seconds
        self.requests_made = 0

    def url(self, path: str) -> str:
        """``path`` resolved against the base URL; an absolute URL (a next-page link) is kept as is.

        A connector that follows links from an answer checks where they point before sending its
        credentials there.
        """
        return path if urlsplit(path).scheme else urljoin(self.base_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> requests.Response:
        """Send one request; sleep through short waits; raise the hub's error classes."""
        url = self.url(path)
        label = f"{method} {urlsplit(url).path}"
        for _ in range(4):
            self._wait_for_limit(label)
            try:
                self.requests_made += 1
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    headers=dict(headers or {}),
                    data=data,
                    json=json,
                    timeout=self.timeout,
                )
            except requests.Timeout:
                raise RemoteUnavailable(f"{label}: no answer within {self.timeout:g}s") from None
            except requests.ConnectionError as exc:
                raise RemoteUnavailable(f"{label}: cannot connect ({type(exc).__name__})") from None
            self._note_limit(resp)
            if resp.status_code == 429:
                wait = retry_after(resp) or self._limit_wait()
                if wait is not None and wait <= self.max_inline_wait:
                    self._sleep(max(wait, 0.0))
                    continue
                raise RemoteUnavailable(f"{label}: rate limited (HTTP 429)", retry_after=wait)
            if resp.status_code >= 500:
                raise RemoteUnavailable(
                    f"{label}: HTTP {resp.status_code} {_snippet(resp)}",
                    retry_after=retry_after(resp),
                )
            if resp.status_code >= 400:
                raise RemoteRejected(
                    f"{label}: HTTP {resp.status_code} {_snippet(resp)}", status=resp.status_code
                )
            return resp
        raise RemoteUnavailable(f"{label}: still rate limited after waiting", retry_after=60)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET ``path`` and parse the answer; :class:`RemoteRejected` if it is not JSON."""
        resp = self.request("GET", path, **kwargs)
        try:
            return resp.json()
        except ValueError:
            raise RemoteRejected(f"GET {urlsplit(resp.url).path}: answer is not JSON") from None

    def _note_limit(self, resp: requests.Response) -> None:
        if not self.limit_headers:
            return
        remaining, reset = (resp.headers.get(h) for h in self.limit_headers)
        if remaining is None or reset is None:
            return
        try:
            if int(remaining) <= 0:
                self._blocked_until = int(reset) / 1000.0
            else:
                self._blocked_until = None
        except ValueError:
            return

    def _limit_wait(self) -> float | None:
        if self._blocked_until is None:
            return None
        return max(self._blocked_until - time.time(), 0.0)

    def _wait_for_limit(self, label: str) -> None:
        wait = self._limit_wait()
        if wait is None or wait <= 0:
            return
        if wait > self.max_inline_wait:
            raise RemoteUnavailable(f"{label}: rate limit reached", retry_after=wait)
        self._sleep(wait)
        self._blocked_until = None


def retry_after(resp: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _snippet(resp: requests.Response) -> str:
    text = resp.text.strip().replace("\n", " ")
    return text[:200]
