"""Instructions per order, counted by valgrind: the router against the naive sequential batches.

    python benchmarks/bench_instructions.py [--orders N] [--warmup N] [--key rsa,ed25519]
        [--loop uvloop|asyncio] [--contenders router,naive-batch] [--presign off,on]
        [--keep DIR] [--json FILE]

CPU time per order wobbles by a tenth or more between runs on a shared 2-core VM; the
instructions a process executes do not (two runs of one contender agree within about 0.1 %).
This counts them for the throughput goal's pair, at batch 20 with one request in flight: the
router (``OrderRouter.place_many`` of all the orders) and ``naive-batch`` (sequential signed
POSTs of 20, stdlib json), for each key.

How: each contender runs in bench_throughput's child setup (the same ``SENDERS``, spec,
seeded orders and ``_peers.measure``), in a child interpreter under ``valgrind
--tool=callgrind --instr-atstart=no``, against a fresh simulator in a process of its own that
valgrind never sees. Instrumentation is off through start-up, imports, making the intents and
the warm-up. ``measure`` marks the timed span: at each mark the child blocks on a pipe while
this script switches instrumentation on (``callgrind_control -i on PID``) or off, and only
then lets it go on. So what is counted is exactly the timed span, from the first submit to
the last outcome label, in every thread of the process; the marks' own pipe reads and writes
are inside it (a few thousand instructions, either contender). "instr/order" is that count
over the timed orders; the breakdown splits it by the shared object the instructions ran in
(``callgrind_annotate``): the interpreter is where Python code, ours or aiohttp's, runs.

Presign (``[exchange] presign``, the router's default): a thread signs each batch request
ahead, and re-signs a pair that has gone unused for ``presign_max_age_ms``. Under callgrind
the process runs some fifty times slower, so that clock-driven re-signing, a fraction of a
percent of the signatures in real time, becomes a large share of them (an RSA-2048 signature
is about six million instructions). So the router runs with presign off by default: one
signature per request made inline, as the naive loop makes its own; ``--presign off,on`` adds
a row with it on, for its per-request bookkeeping, with that distortion. The clock-skew
check's parse of a new ``Date`` header (once a second of wall time) is inflated the same way,
against the router: about 450 instructions an order at this rate.

``--json FILE`` writes ``{"machine", "settings", "results"}``; ``results`` has one row per
run: contender, key, presign (None for the naive loop), orders, instructions,
instr_per_order, by_object (group -> instructions per order), outcomes, and vs_naive
(instr/order over the naive loop's with the same key).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _peers
from _contenders import SENDERS
from _data import BATCH, make_intents
from _keys import KEYS, BenchKey, KeyKind, child_key, key_spec
from _machine import describe_machine, format_machine
from _options import comma_list
from _report import NAIVE_BATCH, ROUTER, cell, format_ratio, ratio, table
from _runner import CHILD_TIMEOUT_S, LOOPS, default_loop, read_child_spec, run_on
from _sim import UNLIMITED_WRITES, SimProcess
from _throughput_runs import ORDER_TAG

SCRIPT = Path(__file__).resolve()
PRESIGN = ("off", "on")
CONTENDERS = (ROUTER, NAIVE_BATCH)
# Shared objects by what runs in them; the first match names an object, the rest is "other".
GROUPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("interpreter", re.compile(r"libpython|/python3[\d.]*$")),
    ("crypto", re.compile(r"libcrypto|libssl|cryptography")),
    ("msgspec", re.compile(r"msgspec")),
    ("event loop", re.compile(r"uvloop|_asyncio")),
    ("aiohttp", re.compile(r"aiohttp|multidict|yarl|frozenlist|propcache")),
    ("libc", re.compile(r"libc\.so|libm\.so|ld-linux")),
)
_CPYTHON_SOURCE = re.compile(r"/Python-3[\d.]+/|/include/python3")
_ANNOTATED = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[(.+)\])?\s*$")


# -- the child ------------------------------------------------------------------------------------


def pipe_marks(read_fd: int, write_fd: int) -> Callable[[str], None]:
    """``measure``'s marks: say the mark on ``write_fd``, then wait for the parent's line on
    ``read_fd`` (it has switched instrumentation by then)."""

    def mark(name: str) -> None:
        os.write(write_fd, f"{name}\n".encode())
        got = b""
        while not got.endswith(b"\n"):
            chunk = os.read(read_fd, 64)
            if not chunk:
                raise RuntimeError("bench_instructions: the parent went away")
            got += chunk

    return mark


def child_main(name: str, loop: str) -> int:
    spec = read_child_spec()
    intents = make_intents(spec["warmup"] + spec["orders"], spec["seed"], ORDER_TAG)
    warm, timed = intents[: spec["warmup"]], intents[spec["warmup"] :]
    sender = SENDERS[name](spec, child_key(spec))
    mark = pipe_marks(spec["mark_read_fd"], spec["mark_write_fd"])
    json.dump(run_on(_peers.measure(sender, warm, timed, mark), loop), sys.stdout)
    return 0


# -- the parent -----------------------------------------------------------------------------------


def by_object(annotated: str) -> dict[str, int]:
    """Instructions per group of shared objects, from ``callgrind_annotate --inclusive=no``.
    A line without an object is code inlined from a header (CPython's own, mostly): it goes
    with its function's object where another line names one, else by its file's path."""
    totals = dict.fromkeys([name for name, _ in GROUPS] + ["other"], 0)
    lines: list[tuple[int, str, str | None]] = []
    in_functions = False
    for line in annotated.splitlines():
        if "file:function" in line:
            in_functions = True
        elif in_functions and (found := _ANNOTATED.match(line)):
            lines.append((int(found[1].replace(",", "")), found[2], found[3]))
    objects = {where.rpartition(":")[2]: obj for _, where, obj in lines if obj}
    for count, where, obj in lines:
        obj = obj or objects.get(where.rpartition(":")[2])
        if obj is None and _CPYTHON_SOURCE.search(where):
            obj = "libpython"
        group = next((name for name, pattern in GROUPS if obj and pattern.search(obj)), "other")
        totals[group] += count
    return totals


def total_instructions(out_file: Path) -> int:
    for line in out_file.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}")


def _switch(pid: int, on: bool) -> None:
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(pid)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def run_counted(
    contender: str, spec: dict[str, Any], loop: str, workdir: Path
) -> tuple[dict[str, Any], Path]:
    """Run ``contender``'s child under callgrind, instrumented over its timed span only; its
    JSON and callgrind's output file."""
    out_file = workdir / f"{contender}-{spec['kind']}-{spec['presign']}.callgrind"
    child_reads, to_child = os.pipe()
    from_child, child_writes = os.pipe()
    spec = {**spec, "mark_read_fd": child_reads, "mark_write_fd": child_writes}
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        str(SCRIPT),
        "--loop",
        loop,
        "--contender",
        contender,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    stdout, stderr = out_file.with_suffix(".json"), out_file.with_suffix(".log")
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            pass_fds=(child_reads, child_writes),
            env=env,
        )
    os.close(child_reads)
    os.close(child_writes)
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(spec).encode())
        proc.stdin.close()
        with os.fdopen(from_child, "rb") as marks, os.fdopen(to_child, "wb") as answer:
            for line in marks:  # until the child exits
                _switch(proc.pid, on=line.strip() == b"start")
                answer.write(b"go\n")
                answer.flush()
        code = proc.wait(CHILD_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        tail = stderr.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{contender} under callgrind exited {code}:\n{tail}")
    result: dict[str, Any] = json.loads(stdout.read_text())
    return result, out_file


async def run_one(
    contender: str, key: BenchKey, presign: bool | None, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    async with SimProcess("basic", [key], seed=args.seed, sim_options=UNLIMITED_WRITES) as sim:
        spec: dict[str, Any] = {
            **key_spec(key),
            "url": sim.url,
            "orders": args.orders,
            "warmup": args.warmup,
            "seed": args.seed,
            "in_flight": 1,
            "batch": args.batch,
            "presign": presign,
        }
        result, out_file = await asyncio.to_thread(run_counted, contender, spec, args.loop, workdir)
    annotated = await asyncio.to_thread(
        subprocess.run,
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    instructions = total_instructions(out_file)
    orders = result["orders"]
    return {
        "contender": contender,
        "key": key.kind,
        "presign": presign,
        "orders": orders,
        "instructions": instructions,
        "instr_per_order": instructions / orders,
        "by_object": {g: n / orders for g, n in by_object(annotated.stdout).items()},
        "outcomes": result["outcomes"],
        "vs_naive": None,
    }


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    runs: list[tuple[str, KeyKind, bool | None]] = []
    for kind in args.key:
        if ROUTER in args.contenders:
            runs += [(ROUTER, kind, p == "on") for p in args.presign]
        if NAIVE_BATCH in args.contenders:
            runs.append((NAIVE_BATCH, kind, None))
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        workdir = Path(args.keep or tmp)
        keys = {kind: BenchKey.generate(kind, key_id=f"bench-{kind}") for kind in args.key}
        for contender, kind, presign in runs:
            row = await run_one(contender, keys[kind], presign, args, workdir)
            print(f"  counted: {contender} {kind} presign {presign}", file=sys.stderr)
            results.append(row)
    add_ratios(results)
    return results


def add_ratios(results: Sequence[dict[str, Any]]) -> None:
    naive = {r["key"]: r["instr_per_order"] for r in results if r["contender"] == NAIVE_BATCH}
    for r in results:
        r["vs_naive"] = ratio(r["instr_per_order"], naive.get(r["key"]))


def render(results: Sequence[dict[str, Any]], args: argparse.Namespace) -> str:
    groups = [name for name, _ in GROUPS] + ["other"]
    rows = [
        [
            r["contender"]
            + ("" if r["presign"] is None else f", presign {'on' if r['presign'] else 'off'}"),
            r["key"],
            cell(r["instr_per_order"], ",.0f"),
            format_ratio(r["vs_naive"]),
            *(cell(r["by_object"][g], ",.0f") for g in groups),
            ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items())),
        ]
        for r in results
    ]
    title = (
        f"instructions per order (callgrind), batch {args.batch}, one request in flight, "
        f"{args.orders} orders counted after {args.warmup} uncounted, {args.loop}\n"
        "(vs naive: over naive-batch with the same key; then by where they ran, per order)"
    )
    columns = ["contender", "key", "instr/order", "vs naive", *groups, "outcomes"]
    return table(title, columns, rows) + "\n" + goals(results)


def goals(results: Sequence[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        if r["contender"] == ROUTER and r["vs_naive"] is not None and not r["presign"]:
            verdict = "met" if r["vs_naive"] < 1 else "MISSED"
            lines.append(
                f"goal: router instructions per order below naive-batch ({r['key']}): "
                f"{r['vs_naive']:.3f}x, {verdict}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000, help="counted orders per run")
    parser.add_argument("--warmup", type=int, default=200, help="uncounted orders first")
    parser.add_argument("--key", type=comma_list(KEYS), default=list(KEYS), help="e.g. rsa,ed25519")
    parser.add_argument("--loop", choices=LOOPS, default=default_loop())
    parser.add_argument(
        "--contenders",
        type=comma_list(CONTENDERS),
        default=list(CONTENDERS),
        help="router,naive-batch",
    )
    parser.add_argument(
        "--presign", type=comma_list(PRESIGN), default=["off"], help="router rows: off,on"
    )
    parser.add_argument("--batch", type=int, default=BATCH, help="orders per request")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep", metavar="DIR", help="keep callgrind's files here (for callgrind_annotate)"
    )
    parser.add_argument("--json", help="also write everything to this file")
    parser.add_argument("--contender", choices=sorted(SENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contender:
        return child_main(args.contender, args.loop)
    if args.orders < 1 or args.warmup < 0:
        parser.error("need --orders >= 1 and --warmup >= 0")
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        parser.error(f"needs {' and '.join(missing)} on PATH (valgrind)")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    machine = describe_machine(args.loop)
    print(format_machine(machine), flush=True)
    results = run_on(run_all(args), args.loop)
    print("\n" + render(results, args))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "contender")}
        document = {"machine": machine, "settings": settings, "results": results}
        Path(args.json).write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
