"""run.py's summary: each script's JSON as tables with the ratio to the router, and the goals.

    tables = ADAPTERS["throughput"](raw)      # raw: bench_throughput.py --json's document
    print(render(tables[0]))
    print("\n".join(goals({"throughput": raw})))

Pure functions of the scripts' JSON (tested without running a benchmark). A table is
``{"name", "title", "metric", "reference", "rows"}``; its rows are what run.py's ``--json``
records and the chart draws from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from _data import BATCH
from _report import (
    ADDED_LATENCY_US,
    BUDGET_USED,
    NO_429,
    OVER_BEST_PEER,
    OVER_NAIVE,
    Check,
    added_median_us,
    budget_met,
    cell,
    format_ratio,
    table,
    throughput_checks,
    verdict,
)
from bench_journal import goal_lines as journal_goals
from bench_journal import summary_rows as journal_rows
from bench_wire import SECTIONS
from chart import quantile

Row = dict[str, Any]
Column = tuple[str, Callable[[Mapping[str, Any]], str]]


# -- from each script's JSON to rows with ratios (pure: tested) --------------------------------


def _table(name: str, title: str, metric: str, reference: str, rows: list[Row]) -> dict[str, Any]:
    return {"name": name, "title": title, "metric": metric, "reference": reference, "rows": rows}


def wire_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """bench_wire already puts ``vs_router`` on its rows (time over the router's)."""
    return [
        _table(f"wire/{section}", f"wire: {title}", "us_per_batch", ref, raw["results"][section])
        for section, title, ref in SECTIONS
    ]


def _not_accepted(outcomes: Mapping[str, int] | None) -> int | None:
    if outcomes is None:
        return None
    return sum(n for label, n in outcomes.items() if label != "accepted")


def _label(row: Mapping[str, Any]) -> str:
    """A contender's name with the variant it ran (key, loop) where the row says."""
    variant = [str(row[k]) for k in ("key", "loop") if row.get(k)]
    return str(row["contender"]) + (f" ({', '.join(variant)})" if variant else "")


def throughput_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per run, with bench_throughput's ratios: orders/s (and CPU per order) over the
    router's with the same key, loop and in-flight limit at a batch of 20."""
    rows: list[Row] = []
    for r in raw["results"]:
        status = r.get("status", "ok")
        if status != "ok":  # a peer that did not run is listed with why, never left out
            rows.append({"contender": _label(r), "skipped": status})
            continue
        rows.append(
            {
                "contender": _label(r),
                "key": r.get("key"),
                "loop": r.get("loop"),
                "in_flight": r["in_flight"],
                "batch": r["batch"],
                "orders_per_s": r["orders_per_s"],
                "cpu_us_per_order": r["cpu_us_per_order"],
                "sim_cpu_us_per_order": r.get("sim_cpu_us_per_order"),
                "not_accepted": _not_accepted(r.get("outcomes")),
                "vs_router": r.get("vs_router"),
                "cpu_vs_router": r.get("cpu_vs_router"),
            }
        )
    title = (
        f"throughput, limits off ({raw['settings']['orders']} orders per run): x router = "
        f"over the router with the same key, loop and in-flight at batch {BATCH}"
    )
    return [_table("throughput", title, "orders_per_s", "router", rows)]


def saturation_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per tier (the router is the only contender: its ratio is the budget used)."""
    rows: list[Row] = []
    for tier, r in raw["saturation"].items():
        latency = r["submit_to_outcome_ms"]
        rows.append(
            {
                "contender": tier,
                "utilization": r["utilization"],
                "utilization_incl_burst": r["utilization_incl_burst"],
                "orders_per_s": r["orders_per_s"],
                "ideal_orders_per_s": r["ideal_orders_per_s"],
                "window_s": r["window_s"],
                "http_429_router": r["http_429_router_run"],
                "http_429_sim": r["sim_rate_limited_run"],
                "p50_ms": latency["p50"],
                "p99_ms": latency["p99"],
                "p99.9_ms": latency["p99.9"],
                "cpu_us_per_order": r["router_cpu_us_per_order"],
                "average_batch_fill": r["average_batch_fill"],
                "batch_limit": r["batch_limit"],
            }
        )
    mode = "side by side" if raw.get("parallel") else "one after the other"
    title = (
        f"saturation at each tier's write budget ({raw['settings']['seconds']:g} s window, "
        f"tiers {mode}): budget used = tokens the sim accepted / refill x window"
    )
    return [_table("saturation", title, "utilization", "-", rows)]


def latency_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per contender with bench_latency's ``p50_vs_router``; ``added_us`` is the
    router's median minus the row's (for the floor: what the router adds)."""
    results = raw["results"]
    router_p50 = next(
        (r["p50"] for r in results if r["contender"] == "router" and "p50" in r), None
    )
    rows: list[Row] = []
    for r in results:
        if r.get("status", "ok") != "ok":
            rows.append({"contender": _label(r), "skipped": r["status"]})
            continue
        quantiles = {k: v for k, v in r.items() if quantile(k) is not None}
        rows.append(
            {
                "contender": _label(r),
                "endpoint": r.get("endpoint"),
                "count": r["count"],
                **quantiles,
                "vs_router": r.get("p50_vs_router"),
                "added_us": None if router_p50 is None else router_p50 - r["p50"],
                "samples_us": r.get("samples_us"),
            }
        )
    settings = raw["settings"]
    title = (
        f"latency at low load ({settings['samples']} samples each, mean gap "
        f"{settings['mean_ms']:g} ms): submit to outcome, µs; x router = p50 over the "
        f"router's; router adds = router p50 - row p50"
    )
    return [_table("latency", title, "p50", "router", rows)]


def updates_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """bench_order_updates: one row, the router (nothing to compare it with)."""
    latency, flood = raw["latency"], raw["flood"]
    lag = latency["match_to_fill_event_us"]
    row: Row = {
        "contender": "router",
        "p50_us": lag["p50"],
        "p99_us": lag["p99"],
        "adds_p50_us": raw["router_adds_us"]["p50"],
        "updates_per_s": flood["updates_per_s"],
        "client_busy": flood["client_busy"],
        "cpu_us_per_update": flood["cpu_us_per_update"],
        "ceiling_updates_per_s": flood["ceiling_updates_per_s"],
    }
    settings = raw["settings"]
    title = (
        f"order updates ([orders] track): match to FillEvent over {latency['count']} fills "
        f"~{settings['gap_ms']:g} ms apart; {flood['fills']:,} fills flooded, "
        f"{settings['per_order']} to an order (adds: p50 over a bare read of the frame; "
        f"ceiling: updates/s on one core of CPU)"
    )
    return [_table("updates", title, "updates_per_s", "-", [row])]


def journal_tables(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Journal off and on, burst and sustained; "x off" is orders/s over journal off's."""
    title = (
        f"journal: on vs off, limits off, all orders at once (medians of "
        f"{raw['settings']['rounds']} rounds; x off: orders/s)"
    )
    return [_table("journal", title, "orders_per_s", "journal off", journal_rows(raw))]


ADAPTERS: dict[str, Callable[[Mapping[str, Any]], list[dict[str, Any]]]] = {
    "wire": wire_tables,
    "throughput": throughput_tables,
    "saturation": saturation_tables,
    "latency": latency_tables,
    "updates": updates_tables,
    "journal": journal_tables,
}


def merge_tiers(parts: Sequence[Mapping[str, Any]], parallel: bool) -> dict[str, Any]:
    """One bench_saturation JSON from several runs of a tier each, tiers in the given order."""
    merged: dict[str, Any] = {
        "settings": dict(parts[0]["settings"]),
        "definition": parts[0].get("definition"),
        "parallel": parallel,
        "saturation": {},
        "burst": {},
    }
    for part in parts:
        merged["saturation"].update(part.get("saturation", {}))
        merged["burst"].update(part.get("burst", {}))
    merged["settings"]["tiers"] = list(merged["saturation"])
    return merged


# -- tables --------------------------------------------------------------------------------------


def _fmt(key: str, spec: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: cell(row.get(key), spec)


def _ratio_of(key: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: format_ratio(row.get(key))


COLUMNS: dict[str, list[Column]] = {
    "wire": [
        ("µs/batch", _fmt("us_per_batch", ".2f")),
        ("µs/order", _fmt("us_per_order", ".2f")),
        ("x router", _ratio_of("vs_router")),
    ],
    "throughput": [
        ("in-flight", _fmt("in_flight", "d")),
        ("batch", _fmt("batch", "d")),
        ("orders/s", _fmt("orders_per_s", ",.0f")),
        ("x router", _ratio_of("vs_router")),
        ("CPU µs/order", _fmt("cpu_us_per_order", ".1f")),
        ("CPU x router", _ratio_of("cpu_vs_router")),
        ("sim µs/order", _fmt("sim_cpu_us_per_order", ".1f")),
        ("not accepted", _fmt("not_accepted", "d")),
    ],
    "saturation": [
        ("budget used", _fmt("utilization", ".2%")),
        ("incl. burst", _fmt("utilization_incl_burst", ".2%")),
        ("orders/s", _fmt("orders_per_s", ".1f")),
        ("ideal", _fmt("ideal_orders_per_s", "g")),
        ("429 router/sim", lambda r: f"{r['http_429_router']} / {r['http_429_sim']}"),
        ("p50 ms", _fmt("p50_ms", ".0f")),
        ("p99 ms", _fmt("p99_ms", ".0f")),
        ("p99.9 ms", _fmt("p99.9_ms", ".0f")),
        ("batch fill", _fmt("average_batch_fill", ".1f")),
        ("CPU µs/order", _fmt("cpu_us_per_order", ".0f")),
    ],
    "latency": [
        ("endpoint", lambda r: str(r.get("endpoint") or "-")),
        ("n", _fmt("count", "d")),
        ("p50 µs", _fmt("p50", ",.0f")),
        ("p90 µs", _fmt("p90", ",.0f")),
        ("p99 µs", _fmt("p99", ",.0f")),
        ("max µs", _fmt("max", ",.0f")),
        ("x router", _ratio_of("vs_router")),
        ("router adds µs", _fmt("added_us", "+,.0f")),
    ],
    "updates": [
        ("p50 µs", _fmt("p50_us", ",.0f")),
        ("p99 µs", _fmt("p99_us", ",.0f")),
        ("adds µs", _fmt("adds_p50_us", "+,.0f")),
        ("updates/s", _fmt("updates_per_s", ",.0f")),
        ("client busy", _fmt("client_busy", ".0%")),
        ("CPU µs/update", _fmt("cpu_us_per_update", ".1f")),
        ("ceiling/s", _fmt("ceiling_updates_per_s", ",.0f")),
    ],
    "journal": [
        ("orders/s", _fmt("orders_per_s", ",.0f")),
        ("x off", _ratio_of("vs_off")),
        ("CPU µs/order", _fmt("cpu_us_per_order", ".1f")),
        ("CPU added", _fmt("cpu_added_us", "+.1f")),
        ("fold µs/order", _fmt("fold_cpu_us_per_order", ".1f")),
        ("commits", _fmt("commits", ",.0f")),
    ],
}


def render(tab: Mapping[str, Any]) -> str:
    """A table's rows as text; a skipped row shows why in a last "note" column."""
    columns = COLUMNS[tab["name"].split("/")[0]]
    skipped = any("skipped" in r for r in tab["rows"])
    lines = []
    for r in tab["rows"]:
        if "skipped" in r:
            lines.append([r["contender"], *("-" for _ in columns), r["skipped"]])
        else:
            lines.append([r["contender"], *(cell(r) for _, cell in columns)] + [""] * skipped)
    headers = ["contender", *(h for h, _ in columns)] + ["note"] * skipped
    return table(tab["title"], headers, lines)


# -- goals (``_report`` defines them; these are run.py's words for them) -------------------------


def _throughput_subject(check: Check) -> str:
    r = check.row
    if check.goal is OVER_NAIVE:
        return f" at {r['in_flight']} in flight"
    if check.goal is OVER_BEST_PEER:
        return f" at {r['in_flight']} in flight ({_label(r)})"
    return f", {_label(r)} at {r['in_flight']} in flight"


def _throughput_goals(raw: Mapping[str, Any]) -> list[str]:
    checks = throughput_checks(raw["results"])
    lines = [c.line(_throughput_subject(c)) for c in checks]
    if not any(c.goal is OVER_BEST_PEER for c in checks):
        lines.append(f"{OVER_BEST_PEER.text}: no peer measured")
    return lines


def _saturation_goals(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    for tier, r in raw["saturation"].items():
        router_429, sim_429 = r["http_429_router_run"], r["sim_rate_limited_run"]
        ok = all(budget_met(r["utilization"], router_429, sim_429).values())
        lines.append(
            f"{tier}: >= {BUDGET_USED.limit * 100:g} % of the write budget, {NO_429.text}: "
            f"{r['utilization']:.2%}, {router_429} / {sim_429} 429s, {verdict(ok)}"
        )
    return lines


def _latency_goals(raw: Mapping[str, Any]) -> list[str]:
    measured = {r["contender"] for r in raw["results"] if "p50" in r}
    if not {"router", "floor"} <= measured:
        return []
    added = added_median_us(raw["results"])
    return [f"{ADDED_LATENCY_US.text}: {added:.0f} µs, {verdict(ADDED_LATENCY_US.met(added))}"]


GOALS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "throughput": _throughput_goals,
    "saturation": _saturation_goals,
    "latency": _latency_goals,
    "journal": journal_goals,
}


def goals(raws: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The goals against what ran (reported, never asserted); ``raws``: each scenario's JSON."""
    return [line for name, check in GOALS.items() if name in raws for line in check(raws[name])]
