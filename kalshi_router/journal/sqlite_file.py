"""The journal's SQLite files: the journal's schema, the lock beside it, opening and checking it
and its commit log (``commit_log``), and attaching the log to a connection.

A file is refused, never repaired or written into, when it is not a regular file, damaged, made
by another program, of another schema version, in use by another process, or holds intents
still open at another exchange than the one it is opened for; and a journal whose commit log
went missing while it may have held commits is refused too. ``store.SqliteJournal`` opens its
files through these; the module docstring of ``store`` says when it commits and folds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from pathlib import Path

from kalshi_router.errors import JournalError
from kalshi_router.journal import commit_log

# "kalshi-router journal" in ASCII, folded into PRAGMA application_id's 32 bits: a database some
# other program made is refused rather than written into.
APPLICATION_ID = 0x4B524A4C
# 2: the journal has a commit log beside it, which may hold commits not yet in ``intents``.
# Version 1 files (no log) are read as they are and become version 2 when a writer opens them;
# code that knows only version 1 refuses a version 2 file rather than miss the log's commits.
SCHEMA_VERSION = 2
_VERSIONS = (1, 2)
_SCHEMA = """
CREATE TABLE intents (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    ticker TEXT NOT NULL,
    payload BLOB NOT NULL,
    submitted REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sent REAL,
    result TEXT,
    outcome BLOB,
    settled_at REAL
);
CREATE INDEX intents_key ON intents (key);
CREATE INDEX intents_open ON intents (state) WHERE state != 'settled';
CREATE INDEX intents_settled ON intents (settled_at) WHERE state = 'settled';
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Prepared statements each connection keeps (the journal's multi-row texts are a bounded set).
_CACHED_STATEMENTS = 256
# 40 MB of 4 KiB pages: a WAL file grows at most to about this size (the checkpointer's thread
# copies it into its database long before, unless commits never pause for it to catch up).
WAL_BACKSTOP = 10_000


def lock(path: Path) -> int:
    """An exclusive lock beside the file: two services on one journal would settle each
    other's in-flight intents at start."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"journal {path}: cannot create its lock file: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise JournalError(f"journal {path}: in use by another process") from None
    return fd


def connect(
    path: Path, *, create: bool, readonly: bool = False, threaded: bool = False
) -> sqlite3.Connection:
    if path.exists() and not path.is_file():
        raise JournalError(f"journal {path}: not a regular file")
    if create and not path.exists():
        # Created here, 0600, so that sqlite never makes it with the umask's wider mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        # mode=rw: never create (or recreate) a file that vanished after the check above.
        mode = "ro" if readonly else "rw"
        return sqlite3.connect(
            f"{path.absolute().as_uri()}?mode={mode}",
            uri=True,
            isolation_level=None,
            cached_statements=_CACHED_STATEMENTS,
            check_same_thread=not threaded,
        )
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot open: {exc}") from None


def check(
    conn: sqlite3.Connection,
    path: Path,
    *,
    application_id: int = APPLICATION_ID,
    versions: tuple[int, ...] = _VERSIONS,
) -> bool:
    """Refuse a damaged or foreign file (the journal, or its log with the log's id and
    versions); True when it is new and empty."""
    try:
        # One row per b-tree, one line per problem inside a row: the first three problems,
        # whichever rows they are in, keep the error to one line.
        rows = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        problems = [line for row in rows for line in row.splitlines() if line.strip()]
        if problems != ["ok"]:
            raise JournalError(
                f"journal {path}: damaged (quick_check: {'; '.join(problems[:3])}); "
                "move it aside to start a new one"
            )
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as exc:
        raise JournalError(
            f"journal {path}: not a readable SQLite journal ({exc}); move it aside to start a "
            "new one"
        ) from None
    if app_id == 0 and tables == 0:
        return True
    if app_id != application_id:
        raise JournalError(f"journal {path}: not a kalshi-router journal (another database)")
    if version not in versions:
        expected = " or ".join(str(v) for v in versions)
        raise JournalError(f"journal {path}: schema version {version}, expected {expected}")
    return False


# The create that made an order, by the order id in its outcome (``GET /v1/orders/{order_id}``
# after a restart): about 1.5 us of CPU per accepted create settled; a scan would hold the loop
# for ~2 ms per thousand intents journaled.
PLACED_INDEX = (
    "CREATE INDEX IF NOT EXISTS intents_placed ON intents "
    "(json_extract(CAST(outcome AS TEXT), '$.order_id')) "
    "WHERE kind = 'create' AND result = 'accepted'"
)


# An intent settled unknown and resolved later (``store.SqliteJournal.resolve_later``): its row
# in intents takes the outcome found, and its unknown settlement moves here, so the journal
# keeps that it was unknown first.
RESOLVED_TABLE = (
    "CREATE TABLE IF NOT EXISTS resolved (id INTEGER PRIMARY KEY, result TEXT NOT NULL, "
    "outcome BLOB NOT NULL, settled_at REAL NOT NULL)"
)


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the file has the table (a reader may open one made before it existed)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _wal(conn: sqlite3.Connection, path: Path, schema: str = "main") -> None:
    (mode,) = conn.execute(f"PRAGMA {schema}.journal_mode = WAL").fetchone()
    if mode != "wal":
        raise JournalError(f"journal {path}: cannot use WAL mode (got {mode!r})")
    # Enough for a process crash in WAL mode; see ``store``'s module docstring.
    conn.execute(f"PRAGMA {schema}.synchronous = NORMAL")


def set_up(conn: sqlite3.Connection, path: Path) -> None:
    fresh = check(conn, path)
    try:
        _wal(conn, path)
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BACKSTOP}")
        if fresh:
            conn.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA application_id = {APPLICATION_ID}; "
                f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
        # Not in _SCHEMA: journals made before them get them too (and SQLite keeps the index
        # up to date for any version of this code that writes them).
        conn.execute(PLACED_INDEX)
        conn.execute(RESOLVED_TABLE)
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot set up: {exc}") from None


def meta(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM main.meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def prepare_log(conn: sqlite3.Connection, path: Path, *, writer: bool) -> bool:
    """Check the commit log beside the journal ``conn`` is open on; whether there is one.

    A writer makes the log when there is none (a new journal, or one made before logs were). A
    journal marked as having had one (``meta.log = 'open'``, see ``mark_log``) whose log is gone
    is refused: the log may have held commits that are nowhere else."""
    log = commit_log.log_path(path)
    if not log.exists():
        if meta(conn, "log") == "open":
            raise JournalError(
                f"journal {path}: its commit log {log} is missing, and may have held intents "
                "that are not in the journal: restore it beside the journal, or move both aside "
                "to start a new journal"
            )
        if not writer:
            return False
    with contextlib.closing(connect(log, create=writer, readonly=not writer)) as own:
        fresh = check(own, log, application_id=commit_log.APPLICATION_ID, versions=(1,))
        if fresh and not writer:
            return False
        if fresh:
            try:
                _wal(own, log)
                own.executescript(
                    f"BEGIN; {commit_log.SCHEMA}; "
                    f"PRAGMA application_id = {commit_log.APPLICATION_ID}; "
                    f"PRAGMA user_version = {commit_log.VERSION}; COMMIT;"
                )
            except sqlite3.Error as exc:
                raise JournalError(f"journal {log}: cannot set up: {exc}") from None
    return True


def attach_log(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    """Attach the journal's commit log (``prepare_log``) to ``conn`` as ``log``."""
    log = commit_log.log_path(path)
    mode = "ro" if readonly else "rw"
    name = commit_log.SCHEMA_NAME
    try:
        conn.execute(f"ATTACH DATABASE ? AS {name}", (f"{log.absolute().as_uri()}?mode={mode}",))
        if not readonly:
            _wal(conn, log, name)
            conn.execute(f"PRAGMA {name}.wal_autocheckpoint = {WAL_BACKSTOP}")
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: cannot open its commit log {log}: {exc}") from None


def mark_log(conn: sqlite3.Connection, state: str) -> None:
    """``open``: the log may hold commits not in the journal (a writer has it); ``closed``: it
    holds none (``close`` folded them all in)."""
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute("INSERT OR REPLACE INTO main.meta VALUES ('log', ?)", (state,))


def claim(conn: sqlite3.Connection, path: Path, exchange: str) -> None:
    """Record which exchange the journal's orders go to; refuse another one while intents
    sent to the first are still open."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'exchange'").fetchone()
    if row is not None and row[0] != exchange:
        (open_,) = conn.execute("SELECT count(*) FROM intents WHERE state != 'settled'").fetchone()
        if open_:
            raise JournalError(
                f"journal {path}: {open_} intents still open at {row[0]}, but this service "
                f"targets {exchange}; start it against {row[0]} to reconcile them, or use "
                "another journal.path"
            )
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('exchange', ?)", (exchange,))


class Checkpointer:
    """Runs ``wal_checkpoint(PASSIVE)`` on its own thread whenever woken, for the journal and
    its log (attached to ``conn``): it copies what each WAL holds into its database file without
    blocking the writer, fsyncs and all, and holds no GIL meanwhile. A WAL starts over at the
    next commit after a checkpoint that caught up with it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._woken = threading.Event()
        self._closing = False
        self.passes = 0
        # A daemon: a journal nobody closed must not keep the interpreter from exiting.
        self._thread = threading.Thread(target=self._run, name="journal-checkpoint", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def close(self) -> None:
        """One last checkpoint, then the thread ends and its connection closes."""
        self._closing = True
        self._woken.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._woken.wait()
            self._woken.clear()
            # A failed checkpoint loses nothing (the WAL still holds it all): the next one, or
            # the writer's connection at WAL_BACKSTOP pages, copies it.
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.passes += 1
            if self._closing:
                return
