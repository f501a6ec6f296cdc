"""``[budget]``: where the write budget lives, and how a shared one is modelled.

``backend = "local"`` (the default) keeps the bucket in this process: one router alone on its
account, no Redis. ``backend = "redis"`` shares one bucket among every router of the account
through a Redis server (``kalshi_router.redis_budget.shared``); the numbers below size that
model. Every router sharing the key must have the same model: a router whose view differs is
refused at start.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import msgspec

from kalshi_router.errors import ConfigError


class BudgetConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    backend: Literal["local", "redis"] = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    """``redis://[user:password@]host:port/db`` or ``rediss://`` for TLS. Its password is
    never logged: errors name the host and port only."""
    namespace: str = ""
    """The account's keys are ``<namespace>:write``; empty: ``kalshi-router:<API key id>``.
    Routers of one account that sign with different API keys must set the same one."""
    routers: int = 4
    """The most routers that will share the account; each has ``cancel_credit`` set aside."""
    cancel_credit: int = 0
    """Tokens each router may spend on cancels while Redis is unreachable, carved out of the
    shared bucket beforehand and repaid when Redis answers again; 0: five cancels' worth."""
    cancel_reserve: int = 0
    """Tokens of the bucket that creates leave to cancels, so that no router's creates make
    another router's cancels wait; 0: five cancels plus what creates may book ahead."""
    create_horizon_ms: float = 20.0
    """How far ahead a create batch may book tokens; later, it is told when to ask again."""
    max_late_ms: float = 50.0
    """A booking not used within this long of its time is forfeited, never sent late; at
    most ``limits.headroom_s``, which is the lateness the model absorbs. Lateness counts from
    when the booking was asked, so a Redis whose answers take longer than this cannot be used:
    creates are blocked (and cancels go on credit) until it answers faster."""
    refill_margin: float = 0.995
    """The modelled refill rate is the exchange's times this (clock rates differ a little)."""
    redis_timeout_ms: float = 250.0

    def __post_init__(self) -> None:
        if self.backend == "redis":
            scheme = urlsplit(self.redis_url).scheme
            if scheme not in ("redis", "rediss", "unix"):
                raise ConfigError(
                    "budget.redis_url: must start with redis://, rediss:// or unix://"
                )
        if any(c.isspace() for c in self.namespace):
            raise ConfigError("budget.namespace: must not contain spaces")
        if self.routers < 1:
            raise ConfigError("budget.routers: must be >= 1")
        for name in ("cancel_credit", "cancel_reserve"):
            if getattr(self, name) < 0:
                raise ConfigError(f"budget.{name}: must be >= 0 (0 = automatic)")
        for name in ("create_horizon_ms", "max_late_ms", "redis_timeout_ms"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"budget.{name}: must be > 0")
        if not 0.5 <= self.refill_margin <= 1:
            raise ConfigError("budget.refill_margin: must be between 0.5 and 1")
