"""Which hosts may be reached without verified TLS: this machine only (the simulator).

Signed requests carry the key id and a signature that the exchange accepts for seconds, and
answers say what happened to real orders: anything that could be read or forged on the way
(plain HTTP, a certificate not checked) is refused for every host but the loopback one.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from kalshi_router.errors import ConfigError

LOOPBACK_HINT = "127.0.0.1, ::1 or localhost"


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address literal (127.0.0.0/8, ::1).

    Other names are not trusted even when they resolve to loopback today (``*.localhost``
    included): resolution can change, the literal cannot.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport_security(base_url: str, verify_tls: bool, *, prefix: str = "") -> None:
    """Refuse plain ``http`` or unverified TLS to any host but loopback.

    The :class:`ConfigError` names the setting, ``prefix`` + ``base_url`` or ``verify_tls``.
    """
    url = urlsplit(base_url)
    host = url.hostname or ""
    if is_loopback(host):
        return
    if url.scheme != "https":
        raise ConfigError(
            f"{prefix}base_url: must use https for a non-loopback host ({host!r}); plain "
            f"http is allowed only to {LOOPBACK_HINT} (the simulator)"
        )
    if not verify_tls:
        raise ConfigError(
            f"{prefix}verify_tls: may be false only for a loopback host ({LOOPBACK_HINT}); "
            f"TLS is always verified for {host!r}"
        )


def describe_exchange(base_url: str) -> str:
    """Which exchange ``base_url`` is, for messages: Kalshi's demo or production exchange (by
    host), a simulator (loopback), or the URL itself; the URL follows in every case."""
    host = (urlsplit(base_url).hostname or "").lower()
    # kalshi.co hosts the demo exchange, kalshi.com production (kalshi_api.md, section 2).
    if host == "kalshi.co" or host.endswith(".kalshi.co"):
        return f"Kalshi's demo exchange ({base_url})"
    if host == "kalshi.com" or host.endswith(".kalshi.com"):
        return f"Kalshi's production exchange ({base_url})"
    if is_loopback(host):
        return f"a simulator on this machine ({base_url})"
    return base_url
