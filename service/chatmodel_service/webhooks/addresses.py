"""Which URLs a webhook may be sent to: the SSRF stance.

The server makes these requests on a user's behalf, from inside its own network, so it
refuses every address that is not a public one (loopback, private, link-local, carrier
NAT, multicast, reserved, unspecified...) unless the settings' ``webhook_allowed_hosts``
names the host, its address or a network holding it. A URL is checked when it is
registered (its form, and its host when that is an IP address), and again at every
delivery against the addresses its host resolves to then: the request then goes to the
address that was checked (``PinnedTarget``), so a name that resolves elsewhere a moment
later (DNS rebinding) cannot lead it astray.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from chatmodel_service.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class RefusedAddress(Exception):
    """A delivery's host is, or resolves to, an address webhooks may not be sent to."""


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host.split("%")[0])  # an IPv6 zone is no part of it
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 is 10.0.0.1
    return mapped if mapped is not None else address


def is_public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """The allow-list: host names (exact, lower case) and networks."""

    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def from_settings(cls, allowed: list[str]) -> AddressPolicy:
        names, networks = set(), []
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower())
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def allows(self, address: IPAddress) -> bool:
        return is_public(address) or any(address in network for network in self.networks)


def check_url(url: str, policy: AddressPolicy) -> str:
    """The URL an endpoint is registered with, or InvalidInput naming ``url``."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is no number or out of range
    except ValueError as exc:
        raise InvalidInput(f"The URL cannot be read: {exc}.", field="url") from None
    if parts.scheme not in ("https", "http"):
        raise InvalidInput("A webhook URL is https:// (or http://).", field="url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "A webhook URL carries no user:password; receivers check the signature instead.",
            field="url",
        )
    if parts.fragment or url.endswith("#"):
        raise InvalidInput("A webhook URL has no #fragment.", field="url")
    host = parts.hostname
    if not host:
        raise InvalidInput("A webhook URL names a host.", field="url")
    if any(c.isspace() for c in url) or not url.isprintable():
        raise InvalidInput("A webhook URL has no spaces or control characters.", field="url")
    del port
    if policy.allows_name(host):
        return url
    address = _address(host)
    local = host.lower().rstrip(".") in LOCAL_NAMES or host.lower().endswith(".localhost")
    if local or (address is not None and not policy.allows(address)):
        raise InvalidInput(
            f"{host} is not a public address: webhooks are not sent to loopback, private "
            "or link-local addresses unless the server's webhook_allowed_hosts names them.",
            field="url",
        )
    return url


@dataclass(frozen=True)
class PinnedTarget:
    """Where one delivery connects: the checked address of the URL's host."""

    address: str
    host: str  # for the Host header and TLS (SNI, certificate)


async def resolve(url: str, policy: AddressPolicy) -> PinnedTarget:
    """The address to send ``url``'s delivery to; RefusedAddress when its host resolves to
    any address the policy refuses (OSError when it does not resolve)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _address(host)
    if literal is not None:
        found = [literal]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [a for a in (_address(str(info[4][0])) for info in infos) if a is not None]
        if not found:
            raise RefusedAddress(f"{host} resolves to no IP address")
    if not policy.allows_name(host):
        refused = [str(a) for a in found if not policy.allows(a)]
        if refused:
            raise RefusedAddress(
                f"{host} resolves to {', '.join(refused)}, which is not a public address "
                "(webhook_allowed_hosts does not name it)"
            )
    return PinnedTarget(str(found[0]), host)
