"""One write budget shared by every router of an account, on Redis (``[budget] backend =
"redis"``). Only ``config`` is imported here: the ``redis`` package is needed only by a router
that uses this backend (``kalshi_router.redis_budget.shared``)."""

from kalshi_router.redis_budget.config import BudgetConfig

__all__ = ["BudgetConfig"]
