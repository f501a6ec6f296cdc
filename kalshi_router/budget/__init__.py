"""The write budget: its protocol (``WriteBudget``, read-only ``BudgetView``), the local bucket
that implements it for one router (``LocalBudget``), and what the account allows
(``discover_budget``). Only the dispatcher spends it."""

from kalshi_router.budget.discover import Budget, discover_budget
from kalshi_router.budget.local import LocalBudget
from kalshi_router.budget.protocol import BudgetView, WriteBudget

__all__ = ["Budget", "BudgetView", "LocalBudget", "WriteBudget", "discover_budget"]
