"""Typed configuration, decoded from TOML with msgspec.

Every section is a frozen Struct that forbids unknown fields, so a misspelt key is an error
rather than a silently ignored setting. Every key has a default: an empty file is valid and
targets the embedded simulator. Range errors name the key as ``section.key``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from kalshi_router.client_names import name_problem
from kalshi_router.errors import ConfigError
from kalshi_router.redis_budget.config import BudgetConfig
from kalshi_router.risk.config import RiskConfig
from kalshi_router.sim.config import SimConfig
from kalshi_router.wire.hosts import check_transport_security

__all__ = [
    "BudgetConfig",
    "Config",
    "CredentialsConfig",
    "ExchangeConfig",
    "JournalConfig",
    "LimitsConfig",
    "RiskConfig",
    "RouterConfig",
    "ServiceConfig",
    "load_config",
]

API_PATH_SUFFIX = "/trade-api/v2"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_GROUP_LIMIT = 1_000_000_000
_MIN_PRESIGN_AGE_MS = 100


class ExchangeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Where orders go and how to talk to it."""

    target: Literal["sim", "url", "service"] = "sim"
    base_url: str = "https://external-api.demo.kalshi.co/trade-api/v2"
    dialect: Literal["v2", "v1"] = "v2"
    request_timeout_s: float = 10.0
    verify_tls: bool = True
    max_clock_skew_s: float = 5.0
    """Warn when the exchange's clock (its ``Date`` header) is further than this from ours."""
    presign: bool = True
    """Make the signatures of batch creates and cancels ahead, on a thread (``wire.presign``):
    Kalshi does not sign the body, so a batch need not wait for its signature (an RSA-2048 one
    is ~250 µs). Off: each is signed as it goes out, as every other request is."""
    presign_max_age_ms: int = 500
    """The oldest pre-made signature sent. Its timestamp is that much behind when it goes out,
    which adds to the clock skew the exchange sees (Kalshi documents no window), so it may be
    at most half of ``max_clock_skew_s``; the thread re-signs about once per this at idle."""

    def __post_init__(self) -> None:
        for name in ("request_timeout_s", "max_clock_skew_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"exchange.{name}: must be > 0")
        if self.presign_max_age_ms < _MIN_PRESIGN_AGE_MS:
            # Any lower and the idle thread re-signs more often than it saves anything.
            raise ConfigError(f"exchange.presign_max_age_ms: must be >= {_MIN_PRESIGN_AGE_MS}")
        if self.presign and self.presign_max_age_ms > self.max_clock_skew_s * 500:
            raise ConfigError(
                "exchange.presign_max_age_ms: must be at most half of exchange.max_clock_skew_s "
                f"({self.max_clock_skew_s * 500:g} ms), or set exchange.presign = false"
            )
        url = urlsplit(self.base_url)
        # The signed path is "/trade-api/v2" + endpoint, so the base URL must end exactly there
        # (a trailing slash would make every request path, and so every signature, wrong).
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError("exchange.base_url: must be an absolute http(s) URL")
        if url.query or url.fragment or not url.path.endswith(API_PATH_SUFFIX):
            raise ConfigError(
                f"exchange.base_url: must end with {API_PATH_SUFFIX} (no trailing slash or query)"
            )
        # Whatever the target: with target = "sim", OrderRouter.connect without a base_url
        # still goes to this one.
        check_transport_security(self.base_url, self.verify_tls, prefix="exchange.")


class CredentialsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Names of the environment variables that hold the credentials; never the secrets."""

    key_id_env: str = "KALSHI_API_KEY_ID"
    private_key_env: str = "KALSHI_PRIVATE_KEY"
    private_key_path_env: str = "KALSHI_PRIVATE_KEY_PATH"
    key_type: Literal["rsa", "ed25519"] = "rsa"

    def __post_init__(self) -> None:
        for name in ("key_id_env", "private_key_env", "private_key_path_env"):
            # The value is not quoted: if it fails, it may be a secret pasted in by mistake.
            if not _ENV_NAME.fullmatch(getattr(self, name)):
                raise ConfigError(
                    f"credentials.{name}: must be an environment variable name "
                    "(letters, digits, underscore), not a value"
                )


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Write-bucket overrides, in tokens; 0 means use what the exchange reports at start.

    ``headroom_s`` keeps that many seconds of the exchange's bucket unspent, to absorb network
    jitter at full speed (see ``kalshi_router.budget.local``). On Basic, whose bucket holds one
    second, it also sets the batch size: 0.25 gives batches of 7, which absorb 250 ms of delay
    variation (0.05 would give 9 orders and only 100 ms; measured: 429s at 10-250 ms jitter).
    """

    write_refill_rate: int = 0
    write_bucket_capacity: int = 0
    create_cost: int = 0
    cancel_cost: int = 0
    headroom_s: float = 0.25

    def __post_init__(self) -> None:
        for name in ("write_refill_rate", "write_bucket_capacity"):
            if getattr(self, name) < 0:
                raise ConfigError(f"limits.{name}: must be >= 0 (0 = read from the exchange)")
        for name in ("create_cost", "cancel_cost"):
            if getattr(self, name) < 0:
                raise ConfigError(f"limits.{name}: must be >= 0 (0 = from the exchange)")
        if not 0 <= self.headroom_s <= 1:
            raise ConfigError("limits.headroom_s: must be between 0 and 1")
        # A bucket smaller than one request's cost could never admit that request (0 costs are
        # read from the exchange later; Kalshi's create cost is 10).
        largest = max(self.create_cost or 10, self.cancel_cost)
        if 0 < self.write_bucket_capacity < largest:
            raise ConfigError(
                f"limits.write_bucket_capacity: must be >= the largest cost ({largest}) or 0"
            )


class RouterConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Batching, concurrency, back-pressure and time limits of the router."""

    max_batch_size: int = 20
    # Throughput is at most max_in_flight / round trip batches per second: 4 covers round
    # trips up to 200 ms at Prime's budget (20 batches/s) and 800 ms at Premier's.
    max_in_flight: int = 4
    queue_size: int = 10_000
    linger_ms: float = 0.0
    deadline_s: float = 5.0
    drain_timeout_s: float = 5.0
    backoff_base_s: float = 0.05
    backoff_cap_s: float = 2.0
    idle_fast_path: bool = True
    """``place()`` on an idle router (nothing queued, a slot free, the local bucket holding the
    tokens, no linger) sends in the caller's own turn instead of waking the dispatcher."""

    def __post_init__(self) -> None:
        if not 0 < self.backoff_base_s <= self.backoff_cap_s:
            raise ConfigError("router.backoff_base_s: must be > 0 and <= router.backoff_cap_s")
        for name in ("max_batch_size", "max_in_flight", "queue_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"router.{name}: must be >= 1")
        for name in ("linger_ms", "drain_timeout_s"):
            # "not >= 0" rather than "< 0" so that NaN is refused too.
            if not getattr(self, name) >= 0:
                raise ConfigError(f"router.{name}: must be >= 0")
        if not self.deadline_s > 0:
            raise ConfigError("router.deadline_s: must be > 0")


class ServiceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``kalshi-router serve``: where it listens, who may talk to it, what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8088
    unix_socket: str = ""
    """A path: listen there (mode 0600, no token needed) instead of on TCP."""
    token_env: str = "KALSHI_ROUTER_TOKEN"  # noqa: S105 - the variable's name, not a secret
    token_file: str = ""
    """Where a token generated for a loopback bind is written (0600) once the service has
    bound; default ~/.cache/kalshi-router/token-<host>-<port> (see ``service.token``)."""
    metrics_port: int | None = None
    """Also serve ``GET /metrics`` here, for Prometheus: no token on loopback (0: any free
    port). Unset: only the intake's ``/metrics``, behind its token."""
    metrics_host: str = "127.0.0.1"
    """Beyond loopback, the metrics listener needs (and asks for) the token in ``token_env``."""
    max_body_bytes: int = 1_048_576
    """The largest request body, and the largest stream frame."""
    max_items: int = 1000
    """The most intents in one request."""
    body_timeout_s: float = 10.0
    """A request's whole body must arrive within this long of its headers (else 408)."""
    idle_timeout_s: float = 30.0
    """A connection that has not sent a whole request head this long after it opened, or after
    its last answer, is closed."""
    stream_heartbeat_s: float = 20.0
    """A stream is pinged after this long without a frame; no pong within half of it closes it."""
    keep_outcomes: int = 100_000
    max_client_names: int = 32
    """Client names (``X-Client-Name``) with figures of their own; later ones share "other"."""
    client_name: str = ""
    """The name ``open_router``'s client gives the service (none: its connection is its name)."""
    client_cancel_on_disconnect_s: float = 0.0
    """``open_router``'s client asks the service to cancel its resting orders once it has had
    no stream for this long (0: it does not ask; needs ``client_name``)."""
    cancel_on_shutdown: bool = False
    """``serve`` on SIGTERM/SIGINT: cancel every open order the router follows before exiting
    (needs ``[orders] track``). Off by default: an upgrade's restart must not pull quotes."""
    client_order_group_limit: int = 0
    """Contracts each named client's orders may match per rolling 15 s: the service gives each
    one an order group of its own (made at its first create) and puts its creates that name no
    group in it; the exchange cancels a client's orders when it reaches this (0: off)."""
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("service.port: must be between 0 and 65535")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError("service.metrics_port: must be between 0 and 65535")
        for name in ("max_body_bytes", "max_items", "keep_outcomes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"service.{name}: must be >= 1")
        for name in ("body_timeout_s", "idle_timeout_s", "stream_heartbeat_s"):
            # Written so that NaN fails it too.
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"service.{name}: must be a finite number > 0")
        if not _ENV_NAME.fullmatch(self.token_env):
            raise ConfigError("service.token_env: must be an environment variable name")
        if self.max_client_names < 0:
            raise ConfigError("service.max_client_names: must be >= 0")
        if not 0 <= self.client_order_group_limit <= _MAX_GROUP_LIMIT:
            raise ConfigError(
                f"service.client_order_group_limit: must be between 0 (off) and {_MAX_GROUP_LIMIT}"
            )
        if self.client_name and (problem := name_problem(self.client_name)):
            raise ConfigError(f"service.client_name: {problem}")
        if not 0 <= self.client_cancel_on_disconnect_s <= 86_400:
            raise ConfigError("service.client_cancel_on_disconnect_s: must be between 0 and 86400")
        if self.client_cancel_on_disconnect_s and not self.client_name:
            raise ConfigError(
                "service.client_cancel_on_disconnect_s: needs service.client_name (the service "
                "keeps the orders of a bot that reconnects under the same name)"
            )


class JournalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """``kalshi-router serve``'s crash-safe intent journal (SQLite): what was on the wire when
    the process died, reconciled with the exchange at the next start."""

    enabled: bool = True
    path: str = ""
    """Default ~/.local/state/kalshi-router/journal.sqlite3."""
    keep_settled_h: float = 24.0
    """Settled intents older than this are deleted (at start, then every ``compact_every_s``)."""
    compact_every_s: float = 300.0
    landing_grace_s: float = 10.0
    """How long after it was written a request lost in a crash may still reach the exchange;
    an intent sent more recently than this is not called absent until that much has passed."""
    lookup_timeout_s: float = 30.0
    """How long recovery keeps retrying failed lookups before settling an intent unknown."""

    def journal_path(self) -> Path:
        return Path(self.path or "~/.local/state/kalshi-router/journal.sqlite3").expanduser()

    def __post_init__(self) -> None:
        for name in ("keep_settled_h", "compact_every_s", "lookup_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"journal.{name}: must be > 0")
        if not self.landing_grace_s >= 0:
            raise ConfigError("journal.landing_grace_s: must be >= 0")


class OrdersConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Following orders after acceptance (``router.orders``): Kalshi's WebSocket order channels,
    reconciled through REST. Off by default: it costs nothing then (no socket, no reads)."""

    track: bool = False
    reconcile_every_s: float = 10.0
    """REST reconciliation runs after every reconnect and at least this often, so a frame the
    WebSocket lost is found within about this long (each run costs a few reads)."""
    landing_grace_s: float = 10.0
    """An order (or an unknown create) missing from REST is called absent only this long after
    it was sent: Kalshi's reads lag its events a little."""
    reconnect_base_s: float = 0.1
    reconnect_cap_s: float = 10.0
    keep_final: int = 10_000
    """Orders in a final state kept in memory (the oldest are forgotten first)."""

    def __post_init__(self) -> None:
        if not 0 < self.reconnect_base_s <= self.reconnect_cap_s:
            raise ConfigError("orders.reconnect_base_s: must be > 0 and <= orders.reconnect_cap_s")
        if not self.reconcile_every_s > 0:
            raise ConfigError("orders.reconcile_every_s: must be > 0")
        if not self.landing_grace_s >= 0:
            raise ConfigError("orders.landing_grace_s: must be >= 0")
        if self.keep_final < 0:
            raise ConfigError("orders.keep_final: must be >= 0")


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The whole configuration file."""

    exchange: ExchangeConfig = msgspec.field(default_factory=ExchangeConfig)
    credentials: CredentialsConfig = msgspec.field(default_factory=CredentialsConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    router: RouterConfig = msgspec.field(default_factory=RouterConfig)
    sim: SimConfig = msgspec.field(default_factory=SimConfig)
    service: ServiceConfig = msgspec.field(default_factory=ServiceConfig)
    journal: JournalConfig = msgspec.field(default_factory=JournalConfig)
    orders: OrdersConfig = msgspec.field(default_factory=OrdersConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    budget: BudgetConfig = msgspec.field(default_factory=BudgetConfig)

    def __post_init__(self) -> None:
        # Limits on what the account holds are checked against the tracker's view: without it
        # no fill or cancel is seen, so every accepted order would count at its full size for
        # ever and the limit would fill up and refuse everything.
        if (
            self.budget.backend == "redis"
            and self.budget.max_late_ms > self.limits.headroom_s * 1000
        ):
            # A booking used late by more than the model absorbs could meet another router's
            # on time at the exchange: the lateness allowed must fit in the headroom.
            raise ConfigError("budget.max_late_ms: must be <= limits.headroom_s in milliseconds")
        needing = self.risk.exposure_limits()
        if needing and not self.orders.track:
            raise ConfigError(f"{needing[0]}: needs [orders] track = true (fills and cancels)")


def load_config(path: str | Path) -> Config:
    """Read and validate the TOML file at ``path``; any problem is a ``ConfigError``."""
    config_path = Path(path)
    try:
        data = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_path}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {config_path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        return msgspec.toml.decode(data, type=Config)
    except msgspec.ValidationError as exc:
        # msgspec's text already names the key path, e.g. "... - at `$.router`"; range checks
        # raised in __post_init__ arrive here too, wrapped with their path.
        raise ConfigError(f"{config_path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML: {exc}") from None
