"""Outbound HTTP to URLs that templates yield: only to addresses the configuration allows.

A webhook's URL is a template an analyst writes, filled with data a caller sent; left alone it
can reach the hub's own network (server-side request forgery): loopback, private ranges, a
cloud's metadata address. :func:`send` refuses every address that is not global unless
``HUB_WEBHOOK_ALLOW`` lists it (a network or a host name), and it checks the address it
actually connects to: the host name is resolved once, inside the connection, and the socket
is opened to the address that was checked, so a name that resolves differently the second
time (DNS rebinding) gains nothing. TLS still verifies the certificate for the name (SNI and
hostname check use the name, not the address). Redirects are followed here, not by requests,
a bounded number of times, each hop through the same checked connections.

Environment proxies (``HTTP_PROXY``, ``HTTPS_PROXY``) are not used: behind a proxy the hub
could not tell where a request goes.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util import connection as urllib3_connection

from hub.exceptions import FatalError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5
# NAT64 (RFC 6052): the IPv4 address is the last 32 bits, and the gateway connects to it
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$"
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# sent to the first host only: a redirect elsewhere must not carry the caller's credentials
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")


class Refused(FatalError):
    """The URL is not one the hub may call (its address, its scheme, too many redirects)."""


def parse_entry(entry: str) -> IPNetwork | str:
    """One entry of ``HUB_WEBHOOK_ALLOW``: a network, or a host name lower-cased.

    ``ValueError`` says what is wrong with it.

    An entry is a network (``10.0.0.0/8``, ``fd00::/8``), an address (``127.0.0.1``, a
    network of one) or a host name (``localhost``, ``crm.internal``), allowed whatever it
    resolves to.
    """
    value = entry.strip().lower()
    if not value:
        raise ValueError("empty entry")
    if "/" in value or ":" in value or value.replace(".", "").isdigit():
        try:
            return ipaddress.ip_network(value.strip("[]"), strict=True)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a network or address: {exc}") from None
    host = value.rstrip(".")
    if not _HOST.match(host):
        raise ValueError(f"{entry!r} is neither a network, an address nor a host name")
    return host


@dataclass(frozen=True)
class AllowList:
    """Networks and host names reachable although they are not global."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """The allow list of ``entries`` (see :func:`parse_entry`); ``ValueError`` if one is bad."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            value = parse_entry(entry)
            if isinstance(value, str):
                hosts.add(value)
            else:
                networks.append(value)
        return cls(tuple(networks), frozenset(hosts))

    def permits(self, host: str, address: IPAddress) -> bool:
        """Whether the hub may connect to ``address``, which ``host`` resolved to."""
        if host.rstrip(".").lower() in self.hosts:
            return True
        effective = _effective(address)
        if any(effective in net or address in net for net in self.networks):
            return True
        return is_public(address)


@functools.lru_cache(maxsize=32)
def allow_list(entries: tuple[str, ...]) -> AllowList:
    """The :class:`AllowList` of a setting's entries, parsed once per process."""
    return AllowList.parse(entries)


def is_public(address: IPAddress) -> bool:
    """Whether an address is globally routable.

    Not private, loopback, link-local, multicast, reserved or unspecified, also when it hides
    an IPv4 address (mapped, 6to4, NAT64).
    """
    effective = _effective(address)
    for a in {address, effective}:
        if (
            not a.is_global
            or a.is_private
            or a.is_loopback
            or a.is_link_local
            or a.is_multicast
            or a.is_reserved
            or a.is_unspecified
        ):
            return False
    return True


def _effective(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def check_url(url: str) -> tuple[str, str]:
    """``(scheme, host)`` of an http(s) URL with a host; :class:`Refused` otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused(f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if not host:
        raise Refused("the URL has no host")
    return parts.scheme, host


def send(
    method: str,
    url: str,
    allow: AllowList,
    *,
    headers: Mapping[str, str] | None = None,
    data: str | bytes | None = None,
    timeout: float = 10.0,
    verify: bool | str = True,
    max_redirects: int = MAX_REDIRECTS,
) -> requests.Response:
    """Send one request, following redirects only to allowed addresses.

    Args:
        method: the HTTP method.
        url: where to; each redirect's target is checked like it.
        allow: what may be reached although it is not global (``HUB_WEBHOOK_ALLOW``).
        headers: the request's headers; ``Authorization`` and ``Cookie`` are dropped on a
            redirect to another host.
        data: the body; a 303 (or a 301/302 answering a POST) turns the request into a GET
            without it, as browsers and requests do.
        timeout: seconds to connect and between bytes read, per hop.
        verify: TLS verification: True (the certifi bundle) or a CA bundle's path.
        max_redirects: hops followed before giving up.

    Raises:
        Refused: the URL, or a redirect's, is not allowed (a fatal outcome: retrying cannot
            help until the configuration changes).
        requests.RequestException: the network failed (timeouts, refused connections).
    """
    hop_headers = dict(headers or {})
    with requests.Session() as session:
        session.trust_env = False  # no environment proxies, no .netrc credentials
        adapter = GuardedAdapter(allow)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        for _hop in range(max_redirects + 1):
            check_url(url)
            response = session.request(
                method,
                url,
                headers=hop_headers,
                data=data,
                timeout=timeout,
                verify=verify,
                allow_redirects=False,
            )
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                hop_headers = {
                    k: v for k, v in hop_headers.items() if k.lower() not in _CREDENTIAL_HEADERS
                }
            code = response.status_code
            if (code == 303 and method != "HEAD") or (code in (301, 302) and method == "POST"):
                method, data = "GET", None
                hop_headers = {
                    k: v
                    for k, v in hop_headers.items()
                    if k.lower() not in ("content-type", "content-length")
                }
            url = target
    raise Refused(f"more than {max_redirects} redirects")


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections open only to addresses ``allow`` permits."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        super().__init__(max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """A pool manager whose pools make guarded connections."""
        self.poolmanager = PoolManager(
            num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
        )
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_GuardedHTTPPool, allow=self.allow),
            "https": functools.partial(_GuardedHTTPSPool, allow=self.allow),
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Never used: a proxy would resolve and connect where the hub cannot check."""
        raise Refused("webhooks are not sent through a proxy")


class _GuardedConnection:
    """The part of a connection that resolves its host and connects to a checked address."""

    allow: AllowList
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self.allow.permits(self.host, _address(a))]
        if not allowed:
            shown = ", ".join(addresses)
            raise Refused(
                f"{self.host} resolves to {shown}, not a public address; "
                "allow it with HUB_WEBHOOK_ALLOW"
            )
        error: OSError | None = None
        for address in allowed:  # the addresses just checked, never a new look-up
            try:
                return urllib3_connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"connection to {self.host} timed out ({self.timeout} s)"
                ) from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(self, f"failed to connect to {self.host}: {error}")  # type: ignore[arg-type]


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)


class _GuardedHTTPConnection(_GuardedConnection, HTTPConnection):
    def __init__(self, *args: Any, allow: AllowList, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow = allow


class _GuardedHTTPSConnection(_GuardedConnection, HTTPSConnection):
    def __init__(self, *args: Any, allow: AllowList, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow = allow


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection
