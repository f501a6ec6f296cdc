"""The write budget ``[budget]`` asks for: the local bucket (the default, no server), or one
bucket shared through Redis by every router of the account."""

from __future__ import annotations

from kalshi_router.budget.discover import Budget
from kalshi_router.budget.local import LocalBudget
from kalshi_router.budget.protocol import WriteBudget
from kalshi_router.config import BudgetConfig, LimitsConfig
from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.script import Model


async def open_budget(
    config: BudgetConfig, found: Budget, limits: LimitsConfig, key_id: str
) -> WriteBudget:
    """The budget, started; ``ConfigError`` when the shared one cannot be used as configured
    (the ``redis`` package missing, or the routers of the account disagree on the model)."""
    headroom_s = limits.headroom_s
    if config.backend == "local":
        return LocalBudget(
            refill_rate=found.write_rate,
            capacity=found.write_capacity,
            create_cost=found.costs["create"],
            cancel_cost=found.costs["cancel"],
            single_cost=found.costs["single"],
            headroom=found.write_rate * headroom_s,
        )
    try:
        # Here, not at the top: only a router on this backend needs the redis package.
        from kalshi_router.redis_budget.shared import RedisBudget
    except ImportError:
        raise ConfigError(
            "budget.backend = \"redis\" needs the redis package: pip install 'kalshi-router[redis]'"
        ) from None
    model = Model.of(
        config,
        rate=found.write_rate,
        capacity=found.write_capacity,
        headroom_s=headroom_s,
        create_cost=found.costs["create"],
        cancel_cost=found.costs["cancel"],
    )
    budget = RedisBudget.connect(config, model, dict(found.costs), key_id)
    try:
        await budget.start()
    except BaseException:
        await budget.aclose()
        raise
    return budget
