"""The client's address: the peer's, or X-Forwarded-For's when the peer is one of our trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The address a request came from. X-Forwarded-For is anyone's to write, so it is read only when
    the peer is a trusted proxy, and then from the right: each trusted hop appends the address it saw,
    and the first address that is not a trusted proxy is the client's. Anything unparsable there is
    not believed: the last trusted hop's address stands instead."""
    if peer is None:
        return "unknown"
    networks = _networks(trusted)
    if not forwarded_for or not _trusted(peer, networks):
        return peer
    address = peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address
        if not _trusted(hop, networks):
            return hop
        address = hop
    return address
