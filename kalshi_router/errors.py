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


class OptionError(ConfigError):
    """A command-line option is invalid; the message names the option."""


class CredentialsRefused(KalshiRouterError):
    """The exchange answered a signed request with 401 or 403: a wrong key id, a private key
    that is not that id's, a key made for the other exchange (demo or production), or (403) a
    key without the scope. Fatal at start, since every order would be refused the same way.

    The message says what to check and names the environment variables, never their values.
    """

    def __init__(
        self,
        status: int,
        request: str,
        exchange: str,
        said: str = "",
        variables: tuple[str, str, str] | None = None,
    ) -> None:
        # The default names (credentials.* in the config can rename them).
        key_id, pem, path = variables or (
            "KALSHI_API_KEY_ID",
            "KALSHI_PRIVATE_KEY",
            "KALSHI_PRIVATE_KEY_PATH",
        )
        scope = (
            "this key may not make that request (a read-only key is refused with 403: trading "
            "needs a key with write scope); also check"
            if status == 403
            else "the exchange does not accept this API key; check"
        )
        super().__init__(
            f"{request}: HTTP {status}{f' ({said})' if said else ''} from {exchange}: {scope} "
            f"the key id ({key_id}), that the private key ({pem} or {path}) is the one made "
            "with that key id, and that the key was made for this exchange: demo and "
            "production keys are not interchangeable (exchange.base_url says which is used)"
        )
        self.status = status
        self.request = request
