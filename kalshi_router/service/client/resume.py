"""What becomes of an intent that was sent on a stream that broke before its outcome came.

Once a new stream is open, the client asks the service for the intent by its key
(``GET /v1/orders/{key}``) and ``after_reconnect`` decides: the outcome the service settled it
with; wait and ask again while the service still has it pending; or, when the service does not
know the key, send it again with the same client_order_id, which is safe only when that proves
the service never took it:

- the service journals (``StreamState.journal``): it commits an intent's row before it
  acknowledges it, and before any request carrying it is written to the exchange, and answers
  lookups from the journal after a restart. A key it does not know was never sent anywhere.
- or it is the same run the intent was sent to (no restart): a service keeps every intent it
  took by key while pending, and its last ``service.keep_outcomes`` settled ones.

Otherwise (a restart without a journal) the intent may be at the exchange and nobody here can
tell: ``Unknown``, with its key, to look it up at the exchange.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Literal

import aiohttp
import msgspec
import yarl

from kalshi_router.errors import ServiceError
from kalshi_router.outcome import Accepted, Amended, Cancelled, Outcome, Unknown, outcome_name
from kalshi_router.service.protocol import OrderStatus, Verb

_status = msgspec.json.Decoder(OrderStatus)
# Lookups in flight at once after a reconnect (each is one GET to the service).
LOOKUPS_AT_ONCE = 16
# The outcome kinds only some verbs can have; the others (rejected, expired, ...) fit any.
_VERBS: dict[type, set[Verb]] = {
    Accepted: {"submit"},
    Cancelled: {"cancel"},
    Amended: {"amend", "decrease"},
}


def after_reconnect(
    verb: Verb, key: str, found: OrderStatus | None, *, absence_proves_unsent: bool
) -> Outcome | Literal["resend", "wait"]:
    """The outcome to settle with, ``"resend"`` or ``"wait"`` (ask again later)."""
    ids = {"client_order_id" if verb == "submit" else "order_id": key}
    if found is None:
        if absence_proves_unsent:
            return "resend"
        reason = (
            "sent to the service, which restarted without a journal before answering and does "
            "not know it: it may be at the exchange; look it up there"
        )
        return Unknown(reason=reason, **ids)
    if found.status != "settled" or found.outcome is None:
        return "wait"
    outcome = found.outcome
    if verb not in _VERBS.get(type(outcome), {verb}):
        # Cancels, amends and decreases share the order id as key: the service's last intent
        # under it was another one than this.
        reason = (
            f"the service's last intent under {key!r} was another one ({outcome_name(outcome)}); "
            "look the order up at the exchange"
        )
        return Unknown(reason=reason, **ids)
    return outcome


async def look_up(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], keys: Sequence[str]
) -> dict[str, OrderStatus | None]:
    """Each key's status at the service (None: it does not know the key); ``ServiceError``
    when the service cannot be asked."""
    found: dict[str, OrderStatus | None] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), LOOKUPS_AT_ONCE):
        part = unique[start : start + LOOKUPS_AT_ONCE]
        # Every lookup finishes before any failure is raised: none is left running unowned.
        answers = await asyncio.gather(
            *(_look_up(session, url, headers, key) for key in part), return_exceptions=True
        )
        for key, answer in zip(part, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer
            found[key] = answer
    return found


async def _look_up(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str], key: str
) -> OrderStatus | None:
    # Keys may hold "/" (client_order_id allows it): quoted whole, so the route sees one segment.
    target = yarl.URL(f"{url}/v1/orders/{urllib.parse.quote(key, safe='')}", encoded=True)
    try:
        async with session.get(target, headers=headers) as response:
            body = await response.read()
            if response.status == 404:
                return None
            if response.status != 200:
                raise ServiceError(f"GET /v1/orders/{{key}}: HTTP {response.status}")
            return _status.decode(body)
    except (aiohttp.ClientError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ServiceError(f"cannot look up an intent at the service: {exc}") from None
