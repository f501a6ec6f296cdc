"""The service's bearer token: where a token generated for a run is published to local clients,
how a client finds it, and the one check of what a client sent.

The default file is named for the service's address (``token-<host>-<port>``), so two services
never share one: a second service on the same address cannot bind it, and it writes its file
only once it has bound. The service and its clients derive the path from the same ``[service]``
settings with :func:`token_path`.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import quote

from kalshi_router.config import ServiceConfig
from kalshi_router.errors import ConfigError

_DIRECTORY = "~/.cache/kalshi-router"


def token_path(settings: ServiceConfig, port: int | None = None) -> Path:
    """``service.token_file`` when set; else ``~/.cache/kalshi-router/token-<host>-<port>``.

    ``port`` is the port the service actually bound, when ``service.port`` is 0. The host is
    percent-encoded (``::1`` -> ``%3A%3A1``), so that every address has a name of its own."""
    if settings.token_file:
        return Path(settings.token_file).expanduser()
    bound = settings.port if port is None else port
    return Path(_DIRECTORY, f"token-{quote(settings.host, safe='')}-{bound}").expanduser()


def resolve_token(settings: ServiceConfig, environ: Mapping[str, str]) -> tuple[str | None, bool]:
    """The token TCP clients must send, and whether it was generated for this run (and so must
    be published with :func:`published` once the service has bound its address).

    ``$token_env`` when set; None on a Unix socket (its 0600 mode guards it); else a new random
    one. ``serve.check_bind`` has already refused a non-loopback bind without a configured one.
    """
    if settings.unix_socket:
        return None, False
    configured = environ.get(settings.token_env, "")
    if configured:
        return configured, False
    return secrets.token_urlsafe(32), True


def read_token(settings: ServiceConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """What a client of the service at ``settings`` sends: ``$token_env``, else what the
    service's token file holds now (a restarted service writes a new one), else None."""
    configured = (os.environ if environ is None else environ).get(settings.token_env)
    if configured:
        return configured
    try:
        return token_path(settings).read_text().strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def published(path: Path, token: str) -> Iterator[None]:
    """Write ``token`` to ``path`` (0600, whatever the umask) for as long as the block runs, then
    remove the file, unless another service has replaced it since."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written beside the file and renamed over it: a client never reads half a token.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".token-")
    except OSError as exc:
        raise ConfigError(f"service.token_file: cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if hmac.compare_digest(path.read_bytes(), token.encode()):
                path.unlink()


def authorized(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (constant time)."""
    # aiohttp keeps undecodable header bytes as surrogates: encode them back, not fail.
    sent = header.encode(errors="surrogateescape")
    return hmac.compare_digest(sent, f"Bearer {token}".encode())
