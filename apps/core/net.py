"""The client's address, as far as it can be known: the one answer used by the audit trail, the API's
audit context and django-axes (``AXES_CLIENT_IP_CALLABLE``).

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the direct peer
(``REMOTE_ADDR``) is one of our own reverse proxies (``PDS_TRUSTED_PROXIES``, CIDR networks; none by
default). Then the header is read from the right, skipping our proxies, and the first address that is not
one of them is the client: everything to its left was written by the client itself and proves nothing.
Every value is parsed with :mod:`ipaddress`; anything that is not a plain IP address (``not-an-ip<script>``,
a port, an IPv6 zone) is ignored rather than stored, since PostgreSQL's ``inet`` column would refuse it and
turn every audited request into a 500.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: object) -> IPAddress | None:
    """A plain IPv4/IPv6 address, or None for anything else (ports, zones, names, markup)."""
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id is not None:  # fe80::1%eth0: PostgreSQL's inet has no zones
            return None
        if ip.ipv4_mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1 (a dual-stack socket's view)
            return ip.ipv4_mapped
    return ip


def normalised_ip(value: object) -> str | None:
    """The canonical text of an IP address (as PostgreSQL's inet gives it back), or None."""
    ip = parse_ip(value)
    return None if ip is None else str(ip)


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in spec if cidr.strip())


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """``PDS_TRUSTED_PROXIES`` parsed (settings already refused a malformed value at start)."""
    return _networks(tuple(getattr(settings, "PDS_TRUSTED_PROXIES", ())))


def _is_trusted(ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The address to audit and to key lockouts on (see the module docstring)."""
    peer = parse_ip(request.META.get("REMOTE_ADDR"))
    if peer is None:
        return None
    networks = trusted_proxies()
    if not networks or not _is_trusted(peer, networks):
        return str(peer)
    # Several X-Forwarded-For headers arrive joined by ", " (WSGI), in the order the proxies appended them.
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    nearest_trusted = peer
    for hop in reversed(hops):
        ip = parse_ip(hop)
        if ip is None:
            # Our proxies write valid addresses: this hop was written by someone else. Nothing in the
            # header is believed then; the direct peer is what we know.
            return str(peer)
        if not _is_trusted(ip, networks):
            return str(ip)
        nearest_trusted = ip
    # Every hop is one of our proxies (a health check from the proxy itself): the left-most is the origin.
    return str(nearest_trusted)
