"""The one exception tree: every error the library raises derives from ``KalshiRouterError``."""

from __future__ import annotations


class KalshiRouterError(Exception):
    """Base of every error raised by kalshi_router."""


class IntentError(KalshiRouterError, ValueError):
    """An intent broke a rule; ``field`` names the field and ``rule`` says which rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class DialectError(IntentError):
    """The intent is valid but the selected wire dialect cannot express one of its fields."""


class ConfigError(KalshiRouterError, ValueError):
    """The configuration is invalid; the message names the key."""


class KeyLoadError(KalshiRouterError):
    """The private key could not be loaded. Never carries key material."""


class WireError(KalshiRouterError):
    """An answer from the exchange did not fit the protocol (malformed, truncated, wrong shape)."""


class QueueFull(KalshiRouterError):
    """The router's intake queue is full; wait (``submit_wait``) or shed load."""


class RouterClosed(KalshiRouterError):
    """The router is shutting down or closed and takes no new intents."""


class RouterCrashed(KalshiRouterError):
    """The router's dispatcher died; every intent still pending fails with this, loudly."""


class ServiceError(KalshiRouterError):
    """The service (``kalshi-router serve``) refused a request, or cannot be reached."""
