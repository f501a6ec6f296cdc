"""Logging for the service: plain text or JSON lines, one object per record.

A record about orders carries their ids in ``extra={"client_order_id": ...}`` (or
``order_id``); the JSON form puts them at the top level so that a log search by id finds every
line. Nothing here formats keys or request headers, and nothing in the library logs them.
"""

from __future__ import annotations

import logging
import sys
import time

import msgspec

# A field of a type msgspec cannot encode is written as its str: a log line must never fail
# (logging would print a traceback to stderr instead, breaking the one-object-per-line form).
_encoder = msgspec.json.Encoder(enc_hook=str)
_FIELDS = ("client_order_id", "client_order_ids", "order_id", "order_ids", "path", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def setup_logging(level: str = "info", *, json_lines: bool = False) -> None:
    """Configure the root logger once, for the ``serve`` and ``sim`` commands."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log line per request would drown the router's own lines at load.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
