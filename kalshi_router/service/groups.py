"""``[service] client_order_group_limit``: each named client's creates in an order group of its
own, Kalshi's fill limiter on the exchange's side, so that one runaway bot trips only itself.

A client's group is made (``router.order_groups.group_for``) at its first create, before that
create is admitted; each of its creates that names no group is then stamped with the group's
id. When the client's orders match the limit within 15 s, the exchange cancels them all and
refuses its creates in the group (``order_group_triggered``) until the group is reset; other
clients trade on.

Not stamped: unnamed clients (a connection's key never comes back, so its group would be
abandoned with it), creates that name a group of their own, and creates in a subaccount other
than 0 (a group lives in one subaccount). If the group cannot be made, the client's creates are
refused with the reason (field ``order_group_id``) rather than sent outside it; the service
tries again at the next create, no sooner than ``RETRY_S`` later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec

from kalshi_router.client_names import is_named
from kalshi_router.errors import IntentError, KalshiRouterError
from kalshi_router.intent import OrderIntent
from kalshi_router.order_groups import OrderGroups

__all__ = ["RETRY_S", "ClientGroups"]

log = logging.getLogger("kalshi_router.service")
RETRY_S = 1.0
"""After a group could not be made: the client's creates are refused this long, not each one
paying for another attempt."""
_KEEP_FAILURES = 1000


class ClientGroups:
    """A group per named client, ``limit`` contracts per rolling 15 s; see the module
    docstring."""

    def __init__(
        self,
        groups: Callable[[], OrderGroups],
        limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._groups = groups
        self.limit = limit
        self._clock = clock
        self._failed: dict[str, tuple[str, float]] = {}
        """Why a client's group could not be made, and when to try again."""

    def needs_group(self, client: str) -> bool:
        """``client``'s next create must wait for :meth:`make` (its group is not made yet)."""
        if not is_named(client) or client in self._groups().by_client:
            return False
        failed = self._failed.get(client)
        return failed is None or self._clock() >= failed[1]

    async def make(self, client: str) -> None:
        """Make ``client``'s group; a failure is remembered and refuses its creates."""
        try:
            group_id = await self._groups().group_for(client, self.limit)
        except (KalshiRouterError, OSError) as exc:
            if len(self._failed) >= _KEEP_FAILURES:
                self._failed.clear()
            self._failed[client] = (str(exc) or type(exc).__name__, self._clock() + RETRY_S)
            log.error("client %s: could not make its order group: %s", client, exc)
            return
        self._failed.pop(client, None)
        log.info("client %s: order group %s (%d contracts per 15 s)", client, group_id, self.limit)

    def stamp(self, client: str, intent: OrderIntent) -> OrderIntent:
        """``intent`` in ``client``'s group (as it is when the module docstring says so);
        ``IntentError`` naming ``order_group_id`` when the group could not be made."""
        if (
            intent.order_group_id is not None
            or intent.subaccount not in (None, 0)
            or not is_named(client)
        ):
            return intent
        group_id = self._groups().by_client.get(client)
        if group_id is None:
            failed = self._failed.get(client)
            why = failed[0] if failed is not None else "it is not made yet"
            raise IntentError(
                "order_group_id",
                f"client {client}'s order group could not be made ({why}); the create was not sent",
            )
        return msgspec.structs.replace(intent, order_group_id=group_id)
