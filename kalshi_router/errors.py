"""The one exception tree: every error the library raises derives from ``KalshiRouterError``.

Every one is defined here and exported from ``kalshi_router`` (``tests/test_errors.py`` checks
both). The simulator (``kalshi_router.sim``) keeps its own exceptions (``AuthError``,
``SimError``, ``OrderRejected``, ``RateLimited``): they are its control flow, turned into Kalshi's
HTTP answers inside the simulator, and never reach a caller of the library.
"""

from __future__ import annotations


class KalshiRouterError(Exception):
    """Base of every error raised by kalshi_router: catch it to handle them all; each subclass
    says what went wrong and what to do."""


class IntentError(KalshiRouterError, ValueError):
    """An intent broke a rule; ``field`` names the field and ``rule`` says which rule.

    Nothing was sent: fix the intent; the same intent again fails the same way."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class DialectError(IntentError):
    """The intent is valid but the selected wire dialect cannot express one of its fields.

    Nothing was sent: drop the field ``field`` names, or choose the dialect that has it
    (``exchange.dialect``)."""


class ConfigError(KalshiRouterError, ValueError):
    """The configuration is invalid; the message names the key (or the option, or the file).

    Fix that setting and start again."""


class KeyLoadError(KalshiRouterError):
    """The private key could not be loaded (unreadable, not PEM, encrypted, too small, or of a
    type Kalshi does not accept). Never carries key material.

    Point the config at an unencrypted RSA (at least 2048 bits) or Ed25519 PEM key."""


class WireError(KalshiRouterError):
    """Talking to the exchange failed: its answer did not fit the protocol (malformed, truncated,
    wrong shape), it answered a read with an error (:class:`ExchangeError`), or no answer came
    (:class:`TransportError`).

    Raised by reads (the account's limits at start, order look-ups); orders sent in batches get
    outcomes instead. The message says which request: check the exchange's URL, the key and the
    network."""


class ExchangeError(WireError):
    """A read answered with an error status; carries Kalshi's code (``status``, ``code``,
    ``details``).

    A 401 or 403 means the key or its signature was refused (check the key id and the key); a
    5xx may pass: read again later."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.details = details


class TransportError(WireError):
    """No answer was read. ``sent`` says whether the exchange may have acted on the request.

    ``sent=False`` (cannot connect): it certainly did not; check the URL and the network, and
    retry. ``sent=True`` (timeout, reset): it may have; look the orders up before sending again."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class QueueFull(KalshiRouterError):
    """The router's intake queue is full; wait (``submit_wait``) or shed load."""


class RouterClosed(KalshiRouterError):
    """The router is shutting down or closed and takes no new intents.

    Open a new router (or client) to send more."""


class UpdatesOverflow(KalshiRouterError):
    """A reader of order updates (``router.orders.updates()`` or a handle's ``updates()``) fell
    so far behind that its stream's buffer filled; the stream ended with this after the updates
    it had kept, so the router neither blocks nor grows without bound for one slow reader.

    Nothing was lost at the router: read ``get()`` / ``open_orders()`` / ``positions()`` to
    catch up, then call ``updates()`` again (and read faster, or hand updates off)."""


class RouterCrashed(KalshiRouterError):
    """The router's dispatcher died; every intent still pending fails with this, loudly.

    The message carries the cause. Intents that were on the wire may still be at the exchange:
    look them up (by ``client_order_id``) before placing them again."""


class IllegalTransition(KalshiRouterError):
    """An intent was asked to move between two states its transition table does not link
    (``kalshi_router.pending``): a bug in the router, never the caller's doing. ``key`` names the
    intent (its client_order_id or order id), ``from_state`` and ``to_state`` the move.

    The router fails loudly rather than give an intent a second outcome; please report it."""

    def __init__(self, key: str, from_state: str, to_state: str) -> None:
        super().__init__(f"intent {key!r}: illegal transition {from_state} -> {to_state}")
        self.key = key
        self.from_state = from_state
        self.to_state = to_state


class JournalError(KalshiRouterError):
    """The journal cannot be used: the message names its path and what is wrong.

    Damaged, foreign or locked files are refused rather than repaired or shared: stop the other
    process, or move the file aside to start a new journal (its open intents are then not
    reconciled at start). A batch that could not be journaled was not sent."""


class ServiceError(KalshiRouterError):
    """The service (``kalshi-router serve``) refused a request, or cannot be reached.

    The message says which; check that it runs at the configured address and the token."""


class BodyRefused(ServiceError):
    """The service cannot take a request body as it was sent (a ``Content-Encoding`` it does
    not accept, a body that does not decode, or one too large once decoded): ``status`` is the
    HTTP status it answers, ``headers`` any it adds (``Accept-Encoding``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


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
