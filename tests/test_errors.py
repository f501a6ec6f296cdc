"""The one exception tree: every exception the library defines is in ``kalshi_router.errors``,
derives from ``KalshiRouterError`` and is exported, so a caller can catch and name them all.

The simulator (``kalshi_router.sim``) is left out: its exceptions are its own control flow,
turned into HTTP answers, and never reach a caller of the library.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType
from typing import TypeGuard

import kalshi_router
from kalshi_router import errors
from kalshi_router.errors import KalshiRouterError

# Not the simulator; not __main__, which runs the command line when imported.
_SKIPPED = ("kalshi_router.sim", "kalshi_router.__main__")


def _library_modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.walk_packages(kalshi_router.__path__, "kalshi_router.")
        if not any(info.name == s or info.name.startswith(f"{s}.") for s in _SKIPPED)
    ]
    return [kalshi_router, *(importlib.import_module(name) for name in names)]


def _is_error(value: object) -> TypeGuard[type[BaseException]]:
    """Warning categories (``wire.signer.KeyFileWarning``) are not errors: they are never raised
    at a caller, only filtered by one."""
    return (
        inspect.isclass(value)
        and issubclass(value, BaseException)
        and not issubclass(value, Warning)
    )


def _defined_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined (not imported) at the top of a library module, but for
    private ones (``check._Stop``): control flow inside their module, caught there, never
    raised at a caller."""
    found: dict[str, type[BaseException]] = {}
    for module in _library_modules():
        for name, value in vars(module).items():
            if (
                _is_error(value)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_the_walk_sees_the_whole_library() -> None:
    """Guards the test below against a walk that silently finds nothing."""
    names = {module.__name__ for module in _library_modules()}
    assert {
        "kalshi_router.errors",
        "kalshi_router.journal.store",
        "kalshi_router.wire.http",
    } < names
    assert not any(
        name == "kalshi_router.sim" or name.startswith("kalshi_router.sim.") for name in names
    )
    assert "kalshi_router.errors.JournalError" in _defined_exceptions()


def test_every_exception_is_defined_in_errors_and_exported() -> None:
    misplaced = [
        where
        for where, cls in _defined_exceptions().items()
        if cls.__module__ != errors.__name__
        or cls.__name__ not in kalshi_router.__all__
        or getattr(kalshi_router, cls.__name__) is not cls
    ]
    assert misplaced == []


def test_every_exported_exception_derives_from_the_base() -> None:
    exported = {name: getattr(kalshi_router, name) for name in kalshi_router.__all__}
    exceptions = {name: value for name, value in exported.items() if _is_error(value)}
    assert "KalshiRouterError" in exceptions
    outside = [name for name, cls in exceptions.items() if not issubclass(cls, KalshiRouterError)]
    assert outside == []
