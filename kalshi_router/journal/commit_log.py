"""The journal's commit log: the file the loop thread writes, one row per commit.

A commit is one JSON array, ``[taken, sending, settled, resolved]``, of what the router told the
journal since the last one (``Commit``); the folder (``fold``) later applies commits, oldest
first, to the journal's ``intents`` table, which readers query. A commit costs one row insert,
whatever it holds: no index of the journal's is touched on the loop thread, where a row per
intent and per state kept a dozen random index pages dirty per batch.

The log is a SQLite file of its own beside the journal (``journal.sqlite3-log``), in WAL mode, so
that the folder writing the journal never holds a lock the loop waits for. Its ``seq`` is given by
the writer and only grows, past the journal's ``folded`` mark, so a commit is applied exactly
once even after rows were deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

# "kalshi-router journal commits", folded into PRAGMA application_id's 32 bits.
APPLICATION_ID = 0x4B524A43
VERSION = 1
SCHEMA = "CREATE TABLE IF NOT EXISTS commits (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)"
SCHEMA_NAME = "log"
"""The log's name where a connection to the journal attaches it."""


def log_path(path: Path) -> Path:
    return path.with_name(path.name + "-log")


class Commit(msgspec.Struct, array_like=True, frozen=True):
    """One commit as read back. Payloads and outcomes stay the JSON the writer made (``Raw``):
    the journal's columns hold exactly those bytes."""

    taken: list[tuple[int, str, str, str, msgspec.Raw, float]]
    """Row id, kind, key, ticker, the intent, when it was taken (Unix seconds)."""
    sending: list[tuple[int, float, list[int]]]
    """Attempt number, when it was written, the row ids of the batch."""
    settled: list[tuple[int, str, msgspec.Raw, float]]
    """Row id, outcome kind, the outcome, when."""
    resolved: list[tuple[int, str, msgspec.Raw, float]]
    """A row settled unknown, proven later: as ``settled``."""


# The writer encodes its lists as they are (intents and outcomes as Structs), in one call.
_encode = msgspec.json.Encoder(decimal_format="string").encode
decode = msgspec.json.Decoder(Commit).decode


def encode(taken: list[Any], sending: list[Any], settled: list[Any], resolved: list[Any]) -> bytes:
    return _encode((taken, sending, settled, resolved))
