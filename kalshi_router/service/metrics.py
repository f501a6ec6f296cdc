"""Prometheus metrics for the service, fed by the router as one of its observers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from kalshi_router.outcome import Outcome, Rejected, outcome_name
from kalshi_router.risk.config import STATES
from kalshi_router.risk.gate import RiskFigures
from kalshi_router.risk.kill import KillReport
from kalshi_router.stats import ClientFigures
from kalshi_router.wire.presign import SignatureFigures

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_FILL = (1, 2, 5, 10, 20, 50, 100, 200, 400, 800)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per service (not the global one), so tests and embedders can run several."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.outcomes = Counter(
            "kalshi_router_outcomes",
            "Intents settled, by lane, outcome and (for rejections) Kalshi's code.",
            ["lane", "outcome", "code"],
            registry=r,
        )
        self.batches = Counter(
            "kalshi_router_batches", "Requests sent to the exchange, by lane.", ["lane"], registry=r
        )
        self.batch_fill = Histogram(
            "kalshi_router_batch_fill", "Intents per request.", ["lane"], buckets=_FILL, registry=r
        )
        self.http_429 = Counter(
            "kalshi_router_http_429", "429 answers from the exchange.", registry=r
        )
        self.retries = Counter("kalshi_router_retries", "Intents sent again.", registry=r)
        self.reconciliations = Counter(
            "kalshi_router_reconciliations",
            "Intents looked up after an ambiguous answer.",
            registry=r,
        )

        def latency(name: str, text: str) -> Histogram:
            return Histogram(name, text, buckets=_LATENCY, registry=r)

        self.queue_wait = latency("kalshi_router_queue_wait_seconds", "Submit to batch cut.")
        self.limiter_wait = latency(
            "kalshi_router_limiter_wait_seconds", "Time a request waited for write tokens."
        )
        self.round_trip = latency("kalshi_router_round_trip_seconds", "Request to answer.")
        self.submit_to_outcome = latency(
            "kalshi_router_submit_to_outcome_seconds", "Submit to the intent's outcome."
        )
        self.tokens = Gauge("kalshi_router_tokens_spent", "Write tokens spent.", registry=r)
        self.queue_depth = Gauge("kalshi_router_queue_depth", "Intents waiting.", registry=r)
        self.in_flight = Gauge("kalshi_router_in_flight", "Requests in flight.", registry=r)
        self.kills = Counter(
            "kalshi_router_kills",
            "Kill switch runs, by whether every resting order was confirmed cancelled.",
            ["done"],
            registry=r,
        )
        self.clients = _PerClient()
        r.register(self.clients)
        self.risk = _Risk()
        r.register(self.risk)
        self.signatures = _Signatures()
        r.register(self.signatures)

    def bind(
        self,
        *,
        tokens: Callable[[], float],
        queue_depth: Callable[[], float],
        in_flight: Callable[[], float],
    ) -> None:
        """Gauges read at scrape time from the running router."""
        self.tokens.set_function(tokens)
        self.queue_depth.set_function(queue_depth)
        self.in_flight.set_function(in_flight)

    def bind_clients(self, figures: Callable[[], Mapping[str, ClientFigures]]) -> None:
        """The service's figures per client, read at scrape time."""
        self.clients.figures = figures

    def bind_risk(self, figures: Callable[[], RiskFigures | None]) -> None:
        """The risk gate's figures (trading state, refusals), read at scrape time."""
        self.risk.figures = figures

    def bind_signatures(self, figures: Callable[[], SignatureFigures | None]) -> None:
        """Batch requests by where their signature came from, read at scrape time."""
        self.signatures.figures = figures

    def killed(self, report: KillReport) -> None:
        self.kills.labels("true" if report.done else "false").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # RouterObserver

    def sent(self, kind: str, size: int, queue_waits: Sequence[float], limiter_wait: float) -> None:
        for wait in queue_waits:
            self.queue_wait.observe(wait)
        self.limiter_wait.observe(limiter_wait)

    def answered(self, kind: str, size: int, round_trip: float) -> None:
        self.batches.labels(kind).inc()
        self.batch_fill.labels(kind).observe(size)
        self.round_trip.observe(round_trip)

    def rate_limited(self) -> None:
        self.http_429.inc()

    def retried(self, count: int) -> None:
        self.retries.inc(count)

    def reconciling(self, count: int) -> None:
        self.reconciliations.inc(count)

    def settled(self, kind: str, outcome: Outcome, seconds: float) -> None:
        code = outcome.code if isinstance(outcome, Rejected) else ""
        self.outcomes.labels(kind, outcome_name(outcome), code).inc()
        self.submit_to_outcome.observe(seconds)


class _PerClient:
    """Per-client families, made from the service's figures at each scrape (its labels are
    bounded: ``[service] max_client_names`` names, ``other`` and ``unnamed``)."""

    def __init__(self) -> None:
        self.figures: Callable[[], Mapping[str, ClientFigures]] = dict

    def describe(self) -> Iterator[Metric]:
        return self._families({})

    def collect(self) -> Iterator[Metric]:
        return self._families(self.figures())

    def _families(self, figures: Mapping[str, ClientFigures]) -> Iterator[Metric]:
        submitted = CounterMetricFamily(
            "kalshi_router_client_submitted",
            "Intents taken from each client.",
            labels=["client"],
        )
        outcomes = CounterMetricFamily(
            "kalshi_router_client_outcomes",
            "Intents of each client settled, by outcome.",
            labels=["client", "outcome"],
        )
        disconnect_cancels = CounterMetricFamily(
            "kalshi_router_client_disconnect_cancels",
            "Cancels sent for each client because it went (cancel_on_disconnect).",
            labels=["client"],
        )
        queued = GaugeMetricFamily(
            "kalshi_router_client_queue_depth",
            "Intents of each client waiting to be sent.",
            labels=["client"],
        )
        for client, figure in figures.items():
            submitted.add_metric([client], figure.submitted)
            for outcome, count in figure.outcomes.items():
                outcomes.add_metric([client, outcome], count)
            queued.add_metric([client], figure.queued)
            disconnect_cancels.add_metric([client], figure.disconnect_cancels)
        yield from (submitted, outcomes, queued, disconnect_cancels)


class _Risk:
    """The trading state (one gauge per state, 1 for the current one) and the risk gate's
    refusals by code, read from the router at each scrape."""

    def __init__(self) -> None:
        self.figures: Callable[[], RiskFigures | None] = lambda: None

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.figures())

    def _families(self, figures: RiskFigures | None) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "kalshi_router_trading_state",
            "The trading state: 1 for the current one (active, reducing or halted), 0 for the "
            "others.",
            labels=["state"],
        )
        refusals = CounterMetricFamily(
            "kalshi_router_risk_refusals",
            "Intents the risk gate refused before the wire, by code (risk.max_position...).",
            labels=["code"],
        )
        if figures is not None:
            for name in STATES:
                state.add_metric([name], 1.0 if figures.state == name else 0.0)
            for code, count in sorted(figures.refusals.items()):
                refusals.add_metric([code], count)
        yield from (state, refusals)


class _Signatures:
    """Batch requests sent with a signature made ahead (``premade``) or signed as they went out
    (``inline``), read from the router at each scrape; nothing while ``[exchange] presign`` is
    off."""

    def __init__(self) -> None:
        self.figures: Callable[[], SignatureFigures | None] = lambda: None

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        return self._families(self.figures())

    def _families(self, figures: SignatureFigures | None) -> Iterator[Metric]:
        signatures = CounterMetricFamily(
            "kalshi_router_batch_signatures",
            "Batch requests by where their signature came from: premade (made ahead by the "
            "signing thread) or inline.",
            labels=["source"],
        )
        if figures is not None:
            signatures.add_metric(["premade"], figures.premade)
            signatures.add_metric(["inline"], figures.inline)
        yield signatures
