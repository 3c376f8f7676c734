"""``hub.outbound``: webhooks reach public addresses and those allowed, checked on what is dialled.

Real HTTP servers on loopback (127.0.0.1 and 127.0.0.2, both loopback on Linux) stand in for
the hub's own network; nothing is mocked: the guard is what the request goes through.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hub.config import from_env
from hub.exceptions import ConfigError
from hub.outbound import AllowList, Refused, is_public, send


class Server:
    """A loopback HTTP server that records requests and answers from ``routes``."""

    def __init__(self, host: str) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.routes: dict[str, tuple[int, dict[str, str]]] = {}
        state = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                state.requests.append((self.command, self.path, dict(self.headers)))
                status, headers = state.routes.get(self.path, (200, {}))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[Server]:
    """The server a webhook must not reach unless allowed (127.0.0.1)."""
    server = Server("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def relay() -> Iterator[Server]:
    """A second loopback server (127.0.0.2), allowed in the redirect tests, that redirects."""
    server = Server("127.0.0.2")
    yield server
    server.close()


NOTHING = AllowList.parse([])  # the default: HUB_WEBHOOK_ALLOW unset


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",  # a name: checked on the address it resolves to
        "http://127.1:{port}/",
        "http://2130706433:{port}/",  # 127.0.0.1 as one number
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        "http://0.0.0.0:{port}/",
        "http://10.0.0.1:{port}/",
        "http://172.16.0.1:{port}/",
        "http://192.168.1.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",  # a cloud's metadata address (link-local)
        "http://[fe80::1]:{port}/",
        "http://[fd00::1]:{port}/",
        "http://100.64.0.1:{port}/",  # carrier-grade NAT
        "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 of 127.0.0.1
    ],
)
def test_loopback_private_and_link_local_addresses_are_refused_by_default(
    target: Server, url: str
) -> None:
    port = target.url.rsplit(":", 1)[1]
    with pytest.raises(Refused, match="not a public address"):
        send("POST", url.format(port=port), NOTHING, data="{}", timeout=2)
    assert target.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "http:///x"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(Refused):
        send("GET", url, NOTHING)


@pytest.mark.parametrize("entries", [["127.0.0.0/8"], ["127.0.0.1"], ["localhost"]])
def test_an_allowed_network_or_host_is_reached(target: Server, entries: list[str]) -> None:
    host = "localhost" if entries == ["localhost"] else "127.0.0.1"
    url = target.url.replace("127.0.0.1", host) + "/in"
    response = send("PUT", url, AllowList.parse(entries), data="{}", timeout=5)
    assert response.status_code == 200
    assert [(m, p) for m, p, _ in target.requests] == [("PUT", "/in")]


def test_allowing_one_address_does_not_allow_its_neighbour(target: Server) -> None:
    with pytest.raises(Refused, match=r"127\.0\.0\.1"):
        send("GET", target.url, AllowList.parse(["127.0.0.2/32"]), timeout=2)
    assert target.requests == []


@pytest.mark.parametrize(
    "location",
    ["{target}/secret", "http://localhost:{port}/secret", "http://169.254.169.254/latest/"],
)
def test_a_redirect_to_an_address_not_allowed_is_refused(
    relay: Server, target: Server, location: str
) -> None:
    """The first hop is allowed (127.0.0.2); where it redirects to is checked again."""
    port = target.url.rsplit(":", 1)[1]
    relay.routes["/hook"] = (302, {"Location": location.format(target=target.url, port=port)})
    with pytest.raises(Refused, match="not a public address"):
        send("POST", relay.url + "/hook", AllowList.parse(["127.0.0.2"]), data="{}", timeout=2)
    assert [p for _, p, _ in relay.requests] == ["/hook"]
    assert target.requests == []


def test_an_allowed_redirect_is_followed_without_the_callers_credentials(
    relay: Server, target: Server
) -> None:
    relay.routes["/hook"] = (307, {"Location": target.url + "/moved"})
    allow = AllowList.parse(["127.0.0.0/8"])
    headers = {"Authorization": "Bearer t0ken", "X-Id": "7"}
    response = send("POST", relay.url + "/hook", allow, headers=headers, data="{}", timeout=5)
    assert response.status_code == 200
    ((method, path, got),) = target.requests
    assert (method, path, got.get("X-Id"), "Authorization" in got) == ("POST", "/moved", "7", False)
    assert relay.requests[0][2]["Authorization"] == "Bearer t0ken"


def test_redirects_are_followed_a_bounded_number_of_times(target: Server) -> None:
    target.routes["/loop"] = (302, {"Location": "/loop"})
    with pytest.raises(Refused, match="more than 5 redirects"):
        send("GET", target.url + "/loop", AllowList.parse(["127.0.0.1"]), timeout=5)
    assert len(target.requests) == 6


def test_proxies_of_the_environment_are_not_used(
    target: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would connect where the guard cannot check; the request goes direct."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    response = send("GET", target.url, AllowList.parse(["127.0.0.1"]), timeout=5)
    assert response.status_code == 200 and len(target.requests) == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("224.0.0.1", False),
        ("255.255.255.255", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_hub_webhook_allow_is_parsed_strictly() -> None:
    settings = from_env({"HUB_WEBHOOK_ALLOW": " 10.0.0.0/8, ::1 ,crm.internal,"})
    assert settings.webhook_allow == ("10.0.0.0/8", "::1/128", "crm.internal")
    assert from_env({}).webhook_allow == ()
    for bad in ("10.0.0.1/8", "not a host", "300.1.1.1"):
        with pytest.raises(ConfigError, match="HUB_WEBHOOK_ALLOW"):
            from_env({"HUB_WEBHOOK_ALLOW": bad})
