"""URLs that cross our boundary, checked at the edge.

Coming in (recording and stream URLs in Exotel's deliveries, relay URLs typed by tenants): only a
web scheme may be stored, and only a checked URL reaches `href`/`src`, so `javascript:` and `data:`
never become a link. Going out (`check_outbound`): a URL a tenant typed is fetched or connected to
only when its host is allowed by OUTBOUND_HOSTS and it resolves to no private, loopback or
link-local address (the request would otherwise reach our own network: SSRF), unless
OUTBOUND_ALLOW_LOOPBACK lets the simulator on this machine be reached.
"""

import ipaddress
import socket
from fnmatch import fnmatch
from urllib.parse import urlsplit

from django.conf import settings

WEB = ("https", "http")
STREAM = ("wss", "ws")


def has_scheme(url: str, schemes: tuple[str, ...] = WEB) -> bool:
    """Whether `url` is an absolute URL with a host and one of `schemes`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in schemes and bool(parts.hostname)


class Refused(ValueError):
    """The URL may not be requested; the message says why and is safe to show to its tenant."""


def check_outbound(url: str, schemes: tuple[str, ...] = WEB, *, hosts: list[str] | None = None,
                   resolve: bool = True) -> tuple[str, int]:
    """The (address, port) to connect to for `url`, or Refused.

    The scheme must be one of `schemes` and the host match one of `hosts` (fnmatch patterns; None:
    any host); every address the name resolves to must be public. Loopback is allowed only with
    OUTBOUND_ALLOW_LOOPBACK (the simulator on this machine). `resolve=False` checks what can be
    checked without DNS (a form). Connect to the address returned, not the name, so that a second
    lookup cannot answer differently (DNS rebinding).
    """
    if not has_scheme(url, schemes):
        raise Refused(f"Only {' and '.join(f'{scheme}://' for scheme in schemes)} addresses are allowed.")
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme.lower() in ("https", "wss") else 80)
    except ValueError:
        raise Refused("The port is not a number from 0 to 65535.") from None
    if not resolve:
        addresses = [host] if _is_address(host) else []
    else:
        try:
            addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
        except (OSError, UnicodeError):
            raise Refused(f"{host} cannot be resolved.") from None
    ips = [ipaddress.ip_address(address.split("%")[0]) for address in addresses]
    if ips and settings.OUTBOUND_ALLOW_LOOPBACK and all(ip.is_loopback for ip in ips):
        return addresses[0], port
    if hosts is not None and not any(fnmatch(host, pattern) for pattern in hosts):
        raise Refused(f"{host} is not an allowed host.")
    for ip in ips:
        if not ip.is_global:
            raise Refused(f"{host} is a private, loopback or link-local address ({ip}).")
    return (addresses[0] if addresses else host), port


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
