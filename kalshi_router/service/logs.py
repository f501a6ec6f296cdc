"""Logging for the service: plain text or JSON lines, one object per record.

A record about orders carries their ids in ``extra={"client_order_id": ...}`` (or
``order_id``); the JSON form puts them at the top level so that a log search by id finds every
line. Nothing here formats keys or request headers, and nothing in the library logs them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

import msgspec

from kalshi_router.outcome import Accepted, Amended, Cancelled, Outcome, Rejected, Unknown

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


class OutcomeLog:
    """A router observer that logs one line per intent that did not succeed, with its ids as
    fields (``client_order_id``, ``order_id``), so an operator can search the log for an order
    a bot asks about. Successes are logged at debug: at load they would be most of the log."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("kalshi_router.outcomes")

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        ids = {
            "client_order_id": outcome.client_order_id,
            "order_id": getattr(outcome, "order_id", None),
        }
        name = type(outcome).__name__.lower()
        if isinstance(outcome, Accepted | Cancelled | Amended):
            self._log.debug("%s %s after %.3f s", kind, name, seconds, extra=ids)
        elif isinstance(outcome, Rejected):
            self._log.info(
                "%s rejected: %s: %s", kind, outcome.code, outcome.message or "-", extra=ids
            )
        elif isinstance(outcome, Unknown):
            # The one outcome that needs a human (or a reconciler) to look at the exchange.
            self._log.warning("%s outcome unknown: %s", kind, outcome.reason, extra=ids)
        else:
            self._log.info("%s %s: %s", kind, name, outcome.reason, extra=ids)

    # The rest of RouterObserver: batches are what the metrics are for.

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        pass

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        pass

    def rate_limited(self) -> None:
        pass

    def retried(self, count: int) -> None:
        pass

    def reconciling(self, count: int) -> None:
        pass
