"""One WebSocket connection's subscriptions: commands in, answer and data frames out.

Pure and synchronous: ``command`` takes a client text frame, ``on_event`` an engine event, and
both return the frames to send, in order. Error codes are the spec's (AsyncAPI 2.0.0
``errorResponse``); where it names no code for a case, a sim assumption says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from msgspec import UNSET

from kalshi_router.sim import ws_feed
from kalshi_router.sim.events import Event, GroupChanged, OrderChanged
from kalshi_router.sim.ws_schema import (
    Error,
    ErrorMsg,
    Frame,
    ListSubscriptions,
    Ok,
    OkMsg,
    Subscribed,
    SubscribedMsg,
    Unsubscribed,
)

# The order channels the sim serves, of the spec's thirteen.
CHANNELS = ("user_orders", "fill", "market_positions", "order_group_updates")
_MESSAGES = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
}


class _Refused(Exception):
    def __init__(self, code: int, sid: int | None = None) -> None:
        super().__init__(_MESSAGES[code])
        self.code = code
        self.sid = sid


@dataclass(slots=True)
class Subscription:
    """One channel subscription; ``tickers`` None means every market."""

    sid: int
    channel: str
    tickers: set[str] | None
    skip_ticker_ack: bool = False
    seq: int = 0

    def wants(self, ticker: str) -> bool:
        return self.tickers is None or ticker in self.tickers


def _tickers(params: dict[str, Any]) -> list[str] | None:
    """The market specification, or None when there is none (code 11 when malformed)."""
    single, many = params.get("market_ticker"), params.get("market_tickers")
    if single is not None and many is not None:
        # The spec calls the two "mutually exclusive" but names no code: sim assumption, 11.
        raise _Refused(11)
    if single is not None:
        if not isinstance(single, str) or not single:
            raise _Refused(11)
        return [single]
    if many is None:
        return None
    if not isinstance(many, list) or not many or not all(isinstance(t, str) for t in many):
        raise _Refused(11)
    return many


@dataclass(slots=True)
class Session:
    """The subscriptions of one connection acting for ``user_id``."""

    user_id: str
    positions: ws_feed.Positions
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    _next_sid: int = 1

    def command(self, text: str | bytes) -> list[Frame]:
        """Answer one client command."""
        try:
            raw = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raw = None
        if not isinstance(raw, dict):
            return [_error(UNSET, _Refused(1))]
        cid = raw.get("id")
        if not (isinstance(cid, int) and not isinstance(cid, bool) and cid >= 0):
            # Sim assumption: a missing or malformed id is answered with code 1, without id.
            return [_error(UNSET, _Refused(1))]
        # "If the id is set to 0, the server treats it the same way as if there was no id."
        id_: int | msgspec.UnsetType = cid or UNSET
        cmd = raw.get("cmd")
        handler = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "update_subscription": self._update,
            "list_subscriptions": self._list,
        }.get(str(cmd))
        if handler is None:
            return [_error(id_, _Refused(5))]
        params = raw.get("params")
        if cmd != "list_subscriptions" and not isinstance(params, dict):
            return [_error(id_, _Refused(2))]
        try:
            return handler(id_, params or {})
        except _Refused as exc:
            return [_error(id_, exc)]

    def _subscribe(self, id_: int | msgspec.UnsetType, params: dict[str, Any]) -> list[Frame]:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            raise _Refused(3)
        # Sim assumption: a channel of the spec that the sim does not serve is unknown too.
        if not all(isinstance(c, str) and c in CHANNELS for c in channels):
            raise _Refused(8)
        tickers = _tickers(params)
        skip = params.get("skip_ticker_ack") is True
        # Sim assumption: one `subscribed` per channel, each with the command's id.
        frames: list[Frame] = []
        for channel in dict.fromkeys(channels):
            sid, self._next_sid = self._next_sid, self._next_sid + 1
            chosen = None if tickers is None else set(tickers)
            self.subscriptions[sid] = Subscription(sid, channel, chosen, skip)
            frames.append(Subscribed(id=id_, msg=SubscribedMsg(channel=channel, sid=sid)))
        return frames

    def _unsubscribe(self, id_: int | msgspec.UnsetType, params: dict[str, Any]) -> list[Frame]:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            raise _Refused(4)
        # Sim assumption: one answer per sid, in order; an unknown sid gets code 7 alone.
        frames: list[Frame] = []
        for sid in sids:
            sub = self.subscriptions.pop(sid, None) if isinstance(sid, int) else None
            if sub is None:
                frames.append(_error(id_, _Refused(7)))
                continue
            sub.seq += 1
            frames.append(Unsubscribed(id=id_, sid=sub.sid, seq=sub.seq))
        return frames

    def _update(self, id_: int | msgspec.UnsetType, params: dict[str, Any]) -> list[Frame]:
        action = params.get("action")
        if action is None:
            raise _Refused(15)
        if action not in ("add_markets", "delete_markets"):
            raise _Refused(13)
        sid, sids = params.get("sid"), params.get("sids")
        if (sid is None) == (sids is None):
            raise _Refused(12)
        if sids is not None:
            if not isinstance(sids, list) or len(sids) != 1:
                raise _Refused(12)
            sid = sids[0]
        sub = self.subscriptions.get(sid) if isinstance(sid, int) else None
        if sub is None:
            raise _Refused(7)
        tickers = _tickers(params)
        if tickers is None:
            raise _Refused(14, sub.sid)
        if sub.tickers is None:
            # Sim assumption (the spec is silent): a subscription to every market has no
            # list to change, so updating it is an invalid parameter.
            raise _Refused(11, sub.sid)
        if action == "add_markets":
            sub.tickers.update(tickers)
        else:
            sub.tickers.difference_update(tickers)
        sub.seq += 1
        listed = UNSET if sub.skip_ticker_ack else sorted(sub.tickers)
        return [Ok(id=id_, sid=sub.sid, seq=sub.seq, msg=OkMsg(market_tickers=listed))]

    def _list(self, id_: int | msgspec.UnsetType, params: dict[str, Any]) -> list[Frame]:
        subs = [SubscribedMsg(channel=s.channel, sid=s.sid) for s in self.subscriptions.values()]
        return [ListSubscriptions(id=id_, msg=subs)]

    def on_event(self, event: Event) -> list[Frame]:
        """The data frames ``event`` gives this connection's subscriptions."""
        if isinstance(event, GroupChanged):
            return self._group_frames(event)
        order = event.order
        if order.user_id != self.user_id:
            return []
        frames: list[Frame] = []
        for sub in self.subscriptions.values():
            if not sub.wants(order.ticker):
                continue
            if isinstance(event, OrderChanged):
                if sub.channel == "user_orders":
                    frames.append(ws_feed.user_order(sub.sid, order, event))
            elif sub.channel == "fill":
                frames.append(ws_feed.fill(sub.sid, event))
            elif sub.channel == "market_positions":
                frames.append(self.positions.frame(sub.sid, event))
        return frames

    def _group_frames(self, event: GroupChanged) -> list[Frame]:
        if event.user_id != self.user_id:
            return []
        frames: list[Frame] = []
        # "Market specification ignored": a market list given for it is never consulted.
        for sub in self.subscriptions.values():
            if sub.channel == "order_group_updates":
                # The channel is sequenced: one count per sid, shared with its ok/unsubscribed.
                sub.seq += 1
                frames.append(ws_feed.order_group_update(sub.sid, sub.seq, event))
        return frames


def _error(id_: int | msgspec.UnsetType, exc: _Refused) -> Error:
    sid = UNSET if exc.sid is None else exc.sid
    return Error(id=id_, sid=sid, msg=ErrorMsg(code=exc.code, msg=_MESSAGES[exc.code]))
