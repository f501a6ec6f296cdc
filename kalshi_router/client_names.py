"""Who a service client is: the name a bot gives (``X-Client-Name``), or its connection.

Clients take turns in the router's lanes, each under its own key: a named bot's key is its name
(shared by all its connections), an unnamed one's is its connection. Figures are kept per
*label*, a bounded set: the first ``max_names`` names each get their own, later ones share
``other``, and every unnamed connection counts as ``unnamed``.
"""

from __future__ import annotations

import re

HEADER = "X-Client-Name"
OTHER = "other"
UNNAMED = "unnamed"
# Safe as a metric label value and in a log line; the two shared labels cannot be taken.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_UNNAMED_KEY = "#"
"""Starts an unnamed connection's key: no name can."""


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a client name, or None if nothing is."""
    if not _NAME.fullmatch(name):
        return (
            "a client name is 1 to 64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name in (OTHER, UNNAMED):
        return f"{name!r} is reserved"
    return None


def is_named(key: str) -> bool:
    """``key`` (a ``ClientNames.key``) is a bot's name, not a connection's."""
    return not key.startswith(_UNNAMED_KEY)


class ClientNames:
    """Keys for fairness, labels for figures."""

    def __init__(self, max_names: int = 32) -> None:
        self._max = max_names
        self._labelled: set[str] = set()

    def key(self, name: str | None, connection: object) -> str:
        """The client key of a request from ``connection`` (a transport) named ``name``
        (already checked with ``name_problem``)."""
        return name if name is not None else f"{_UNNAMED_KEY}{id(connection):x}"

    def label(self, key: str | None) -> str:
        """The label ``key``'s figures go under (None: an embedder's own intents)."""
        if key is None or key.startswith(_UNNAMED_KEY):
            return UNNAMED
        if key in self._labelled:
            return key
        if len(self._labelled) < self._max:
            self._labelled.add(key)
            return key
        return OTHER
