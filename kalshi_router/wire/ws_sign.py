"""The signed headers of the WebSocket handshake.

Kalshi authenticates the connection, not each frame: the HTTP upgrade carries the same three
``KALSHI-ACCESS-*`` headers as a REST request, signing ``timestamp_ms + "GET" + WS_PATH``
(Kalshi's docs; the AsyncAPI spec names no headers). Sign right before each connection attempt,
reconnects included: the timestamp is part of the signed text.
"""

from __future__ import annotations

from kalshi_router.wire.signer import Signer

__all__ = ["WS_PATH", "handshake_headers"]

WS_PATH = "/trade-api/ws/v2"
"""The path of the WebSocket endpoint on every Kalshi host, and the path its handshake signs."""


def handshake_headers(signer: Signer) -> dict[str, str]:
    """The three auth headers for a WebSocket upgrade made now."""
    return signer.headers("GET", WS_PATH)
