"""``python -m kalshi_router``: the same as the ``kalshi-router`` command."""

import sys

from kalshi_router.cli import main

sys.exit(main())
