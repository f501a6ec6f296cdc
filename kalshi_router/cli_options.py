"""Command-line options, checked as strictly as config keys.

A bad option is an ``OptionError`` naming it, which the CLI prints as one line and exits 2 with,
never a traceback. Values are checked twice over: by their type here as argparse reads them
(a port, a count, a finite number of seconds, a file that exists), and, where an option
overrides a config key, by the config's own rules (``override``), so that ``--tier`` and
``tier =`` are refused for the same reasons.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import NoReturn, TypeVar

import msgspec

from kalshi_router.errors import OptionError
from kalshi_router.intent import MAX_SUBACCOUNT
from kalshi_router.sim import FaultConfig

S = TypeVar("S", bound=msgspec.Struct)

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_KILL_TIMEOUT_S = 600.0
MAX_REASON = 200
# sun_path holds 108 bytes on Linux, the terminating NUL included (104 on the BSDs).
_MAX_SOCKET_PATH = 107


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is an ``OptionError`` (one line, exit 2 in ``main``) rather
    than a usage dump and ``SystemExit`` from inside the parser."""

    def error(self, message: str) -> NoReturn:
        # "argument --orders: ..." -> "--orders: ..."
        raise OptionError(message.removeprefix("argument "))


def override(section: S, option: str, **changes: object) -> S:
    """``section`` with ``changes``, checked by the section's own rules; a refusal names the
    option."""
    try:
        return msgspec.structs.replace(section, **changes)
    except (ValueError, msgspec.ValidationError) as exc:  # ConfigError is a ValueError
        raise OptionError(f"{option}: {exc}") from None


def _refuse(problem: str) -> NoReturn:
    raise argparse.ArgumentTypeError(problem)


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        _refuse(f"must be a whole number, got {text!r}")


def count(text: str) -> int:
    """A whole number >= 0."""
    value = whole_number(text)
    if value < 0:
        _refuse(f"must be 0 or more, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 (any free port) to 65535."""
    value = whole_number(text)
    if not 0 <= value <= 65535:
        # Checked here: the OS would bind 99999 as 99999 - 65536 without a word.
        _refuse(f"must be a port number from 0 to 65535, got {value}")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds > 0 (NaN and infinity refused)."""
    try:
        value = float(text)
    except ValueError:
        _refuse(f"must be a number of seconds, got {text!r}")
    if not 0 < value < math.inf:
        _refuse(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def subaccount(text: str) -> int:
    """A subaccount number, 0 (the primary) to ``MAX_SUBACCOUNT``."""
    value = whole_number(text)
    if not 0 <= value <= MAX_SUBACCOUNT:
        _refuse(f"must be a subaccount number from 0 to {MAX_SUBACCOUNT}, got {value}")
    return value


def kill_timeout(text: str) -> float:
    """How long the kill switch tries: seconds > 0, at most the service's 600."""
    value = seconds(text)
    if value > MAX_KILL_TIMEOUT_S:
        _refuse(f"must be at most {MAX_KILL_TIMEOUT_S:g} seconds, got {text}")
    return value


def reason(text: str) -> str:
    """A kill's reason, for the logs and the report: one printable line."""
    if not 0 < len(text) <= MAX_REASON:
        _refuse(f"must be 1 to {MAX_REASON} characters")
    if not text.isprintable():
        _refuse("printable characters only (no line breaks)")
    return text


def host(text: str) -> str:
    """An IP address or a host name (RFC 1123), as a bind address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        labels = text.removesuffix(".").split(".")
        if not (len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)):
            _refuse(f"must be an IP address or a host name, got {text!r}")
    return text


def existing_file(text: str) -> str:
    path = Path(text)
    if not path.exists():
        _refuse(f"no such file: {text}")
    if not path.is_file():
        _refuse(f"not a file: {text}")
    if not os.access(path, os.R_OK):
        _refuse(f"cannot be read: {text}")
    return text


def socket_path(text: str) -> str:
    """Where a Unix socket can be made: a directory that exists, a path short enough."""
    if not text:
        _refuse("must be a path")
    path = Path(text)
    if not path.parent.is_dir():
        _refuse(f"no such directory: {path.parent}")
    if len(os.fsencode(text)) > _MAX_SOCKET_PATH:
        _refuse(f"longer than a Unix socket path may be ({_MAX_SOCKET_PATH} bytes): {text}")
    if path.exists() and not path.is_socket():
        _refuse(f"exists and is not a socket: {text}")
    return text


def directory(text: str) -> Path:
    """A directory, made if missing; an existing non-directory is refused."""
    if not text:
        _refuse("must be a directory path")
    path = Path(text)
    if path.exists() and not path.is_dir():
        _refuse(f"exists and is not a directory: {text}")
    return path


def faults(base: FaultConfig, settings: list[str]) -> FaultConfig:
    """``--fault error_503_rate=0.1 --fault hang_s=2 --fault ws.drop_frame_rate=0.05``: numeric
    FaultConfig fields, the WebSocket's (``FaultConfig.ws``) named with ``ws.``."""
    raw = msgspec.to_builtins(base)
    for setting in settings:
        name, sep, value = setting.partition("=")
        prefix, dot, field = name.rpartition(".")
        table = raw if not dot else raw["ws"] if prefix == "ws" else {}
        if not sep or not isinstance(table.get(field), int | float):
            numeric = sorted(k for k, v in raw.items() if isinstance(v, int | float))
            numeric += sorted(f"ws.{k}" for k, v in raw["ws"].items() if isinstance(v, int | float))
            raise OptionError(f"--fault {setting!r}: expected NAME=NUMBER, NAME one of {numeric}")
        whole = isinstance(table[field], int)
        try:
            number = int(value) if whole else float(value)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise OptionError(f"--fault {setting!r}: {value!r} is not {kind}") from None
        if not math.isfinite(number):
            raise OptionError(f"--fault {setting!r}: must be finite")
        table[field] = number
    try:
        return msgspec.convert(raw, FaultConfig)
    except msgspec.ValidationError as exc:
        raise OptionError(f"--fault: {exc}") from None
