"""The dialect a name stands for. Apart from ``dialect``, which both dialects import, so that
neither ``dialect`` nor the dialects reach back to the other."""

from __future__ import annotations

from kalshi_router.wire.dialect import Dialect, DialectName
from kalshi_router.wire.v1 import V1Dialect
from kalshi_router.wire.v2 import V2Dialect


def dialect_for(name: DialectName) -> Dialect:
    return V2Dialect() if name == "v2" else V1Dialect()
