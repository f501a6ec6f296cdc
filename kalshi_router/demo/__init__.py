"""``kalshi-router demo`` and what helps a bot try the simulator: the demo run (``run``), its
market maker, its terminal output, and the key-and-config kit for a bot (``bot_kit``)."""

from kalshi_router.demo.run import require_simulator, run_demo

__all__ = ["require_simulator", "run_demo"]
