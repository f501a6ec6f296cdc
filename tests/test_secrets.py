"""The private key never shows: not in a log line (every logger at DEBUG, plain and JSON), a
traceback (a crash's included, with every frame's locals), a repr, an error, a metric, an HTTP
answer of the service, or anything printed, over a session of the router and the service
against the simulator, for an RSA and an Ed25519 key.

Key material is searched in every form it could take: the PEM's body, the DER in base64 (both
alphabets) and hex, and the private numbers (RSA d, p, q and the CRT values, in hex and
decimal; the Ed25519 seed in hex and base64), as text and as raw bytes (``find_leaks`` takes
``bytes`` too, for files such as a journal). A leak of any 32 consecutive characters (or bytes)
of any form is found.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import os
import pickle
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import AnyStr

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from kalshi_router.config import Config, LimitsConfig, ServiceConfig
from kalshi_router.errors import KalshiRouterError
from kalshi_router.intent import CancelIntent, OrderIntent
from kalshi_router.journal import SqliteJournal
from kalshi_router.outcome import Accepted
from kalshi_router.router import OrderRouter
from kalshi_router.service import Metrics, build_service_app
from kalshi_router.service.logs import JsonFormatter
from kalshi_router.sim import FaultConfig, SimConfig, SimServer
from kalshi_router.wire.client import ExchangeClient
from kalshi_router.wire.dialects import dialect_for
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import (
    KeyAlgorithm,
    KeyFileWarning,
    Signer,
    generate_key,
    load_private_key,
)

KEY_ID = "secrets-test-key"
TOKEN = "intake-token-for-this-test"
TICKER = "KXSECRET-26DEC31-T50"
# Fragments this long of every form are searched: a leak of twice as many characters cannot
# hide between them. 16 hex digits are 64 bits, 16 decimal digits 53: no accidental matches.
FRAGMENT = 16


# --- key material and the search ----------------------------------------------------------------


@dataclass(frozen=True)
class KeyMaterial:
    pem: bytes
    public_pem: bytes
    forms: dict[str, str]
    """Text forms, by name (hex forms in lower case: they are searched without case)."""
    raw: dict[str, bytes]


def _b64(data: bytes) -> list[str]:
    return [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()]


def key_material(kind: KeyAlgorithm) -> KeyMaterial:
    pem, public_pem = generate_key(kind)
    key = load_private_key(pem)
    body = "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))
    forms: dict[str, str] = {"pem-body": body}
    raw: dict[str, bytes] = {}
    ders = {
        "pkcs8": key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    }
    if isinstance(key, rsa.RSAPrivateKey):
        ders["pkcs1"] = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        numbers = key.private_numbers()
        for name, value in {
            "d": numbers.d,
            "p": numbers.p,
            "q": numbers.q,
            "dmp1": numbers.dmp1,
            "dmq1": numbers.dmq1,
            "iqmp": numbers.iqmp,
        }.items():
            forms[f"{name}-hex"] = f"{value:x}"
            forms[f"{name}-decimal"] = str(value)
            raw[name] = value.to_bytes((value.bit_length() + 7) // 8, "big")
    else:
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        forms["seed-hex"] = seed.hex()
        for i, text in enumerate(_b64(seed)):
            forms[f"seed-b64-{i}"] = text
        raw["seed"] = seed
    for name, der in ders.items():
        raw[f"der-{name}"] = der
        forms[f"der-{name}-hex"] = der.hex()
        for i, text in enumerate(_b64(der)):
            forms[f"der-{name}-b64-{i}"] = text
    return KeyMaterial(pem, public_pem, forms, raw)


def _fragments(form: AnyStr) -> Iterator[AnyStr]:
    for start in range(0, len(form) - FRAGMENT + 1, FRAGMENT):
        yield form[start : start + FRAGMENT]


def find_leaks(material: KeyMaterial, haystack: str | bytes) -> list[str]:
    """The names of the forms of which some fragment appears in ``haystack``."""
    if isinstance(haystack, bytes):
        text = haystack.decode("latin-1")
        found = [
            name
            for name, form in material.raw.items()
            if any(f in haystack for f in _fragments(form))
        ]
    else:
        text, found = haystack, []
    folded = text.lower()
    for name, form in material.forms.items():
        where = folded if name.endswith("-hex") else text
        if any(fragment in where for fragment in _fragments(form)):
            found.append(name)
    return found


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def material(request: pytest.FixtureRequest) -> KeyMaterial:
    kind: KeyAlgorithm = request.param
    return key_material(kind)


@pytest.mark.parametrize(
    "planted",
    [
        pytest.param(lambda m: m.pem.decode(), id="pem"),
        pytest.param(lambda m: repr(m.pem), id="pem-repr"),
        pytest.param(lambda m: f"x={m.forms['der-pkcs8-hex'].upper()[40:80]}", id="hex-upper"),
        pytest.param(lambda m: m.pem.decode().splitlines()[1], id="one-pem-line"),
        pytest.param(lambda m: b"\x00" + m.raw["der-pkcs8"][12:44] + b"\x00", id="der-bytes"),
        pytest.param(lambda m: next(iter(m.raw.values()))[:40], id="private-number-bytes"),
    ],
)
def test_the_search_finds_planted_key_material(
    material: KeyMaterial, planted: Callable[[KeyMaterial], str | bytes]
) -> None:
    # Proof that a leak would fail the test below, for each form of leak.
    haystack = planted(material)
    assert find_leaks(material, haystack)
    assert find_leaks(material, "nothing to see here " * 100) == []


# --- what a session shows ----------------------------------------------------------------------


class Shown:
    """Everything a run made visible, as text or bytes."""

    def __init__(self) -> None:
        self.items: list[str | bytes] = []

    def add(self, *items: str | bytes) -> None:
        self.items.extend(items)

    def error(self, exc: BaseException, *, with_locals: bool = True) -> None:
        """An error as a user sees it: str, repr, its traceback, and (``with_locals``) the
        traceback with every frame's locals, as error trackers show it.

        Not for errors about a key handed over wrongly: the loader's own frame holds the PEM it
        was given, and so does the caller's.
        """
        self.add(str(exc), repr(exc), "".join(traceback.format_exception(exc)))
        if with_locals:
            summary = traceback.TracebackException.from_exception(exc, capture_locals=True)
            self.add(*summary.format())

    def objects(self, *objects: object) -> None:
        for obj in objects:
            self.add(repr(obj), str(obj))


def key_errors(material: KeyMaterial, tmp_path: Path, shown: Shown) -> None:
    """Every way of handing over a key wrongly: the error must not quote what it was given."""
    pem = material.pem.decode()
    lines = pem.splitlines()
    middle = len(lines) // 2
    corrupt = "\n".join([*lines[:middle], lines[middle][::-1], *lines[middle + 1 :]])
    key = load_private_key(material.pem)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    as_certificate = pem.replace("PRIVATE KEY", "CERTIFICATE")
    attempts: list[Callable[[], object]] = [
        lambda: load_private_key(corrupt.encode()),
        lambda: load_private_key(material.pem[: len(material.pem) // 2]),
        lambda: load_private_key(as_certificate.encode()),
        lambda: load_private_key(encrypted),
        lambda: load_private_key(material.pem.replace(b"-----BEGIN", b"-----NIGEB")),
        lambda: load_private_key(material.public_pem),
        lambda: Signer(pem, key),  # the PEM pasted where the key id goes
        lambda: Signer(lines[1], key),
        lambda: Signer.from_env(environ={"KALSHI_API_KEY_ID": pem, "KALSHI_PRIVATE_KEY": pem}),
        lambda: Signer.from_env(
            environ={"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": corrupt}
        ),
        lambda: Signer.from_env(
            environ={"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY_PATH": pem}
        ),
        lambda: Signer.from_file(KEY_ID, tmp_path),  # a directory
    ]
    for attempt in attempts:
        with pytest.raises(KalshiRouterError) as info:
            attempt()
        shown.error(info.value, with_locals=False)
    signer = Signer(KEY_ID, key)
    with pytest.raises(TypeError) as pickled:
        pickle.dumps(signer)
    shown.error(pickled.value, with_locals=False)
    assert copy.deepcopy(signer) is signer


def signers(material: KeyMaterial, tmp_path: Path, shown: Shown) -> Signer:
    """The key loaded every supported way; the one from a file too readable warns."""
    path = tmp_path / "key.pem"
    path.write_bytes(material.pem)
    os.chmod(path, 0o644)
    with pytest.warns(KeyFileWarning) as warned:
        from_file = Signer.from_file(KEY_ID, path)
    shown.add(*(str(w.message) for w in warned))
    escaped = material.pem.decode().strip().replace("\n", "\\n")
    from_env = Signer.from_env(environ={"KALSHI_API_KEY_ID": KEY_ID, "KALSHI_PRIVATE_KEY": escaped})
    shown.objects(from_file, from_env)
    return from_env


class ExplodingTransport(HttpTransport):
    """The real transport, until ``armed``: then every order write fails with a bug of ours,
    after signing, so the crash's traceback runs through the signed request."""

    armed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self.armed:
            raise RuntimeError("injected transport failure")
        return super()._get_session()


async def crash(sim: SimServer, signer: Signer, shown: Shown) -> None:
    """A router whose dispatcher dies: it logs the traceback and fails every pending intent."""
    transport = ExplodingTransport(sim.url, signer)
    client = ExchangeClient(transport, dialect_for("v2"))
    router = OrderRouter(client, None, LimitsConfig(), owns_transport=True)
    async with router:
        transport.armed = True
        futures = router.submit_many([OrderIntent.bid(TICKER, "0.30", 1) for _ in range(3)])
        await asyncio.wait(futures)
        for future in futures:
            error = future.exception()
            assert error is not None
            shown.error(error)
        shown.objects(router, transport, client)
    assert "dispatcher crashed" in "".join(str(i) for i in shown.items)


async def session(material: KeyMaterial, signer: Signer, shown: Shown, journal_path: Path) -> None:
    """Orders of every kind through the service app and the router (with its journal), some
    faults included."""
    config = Config()
    async with SimServer(SimConfig(tier="premier")) as sim:
        sim.register_key(KEY_ID, material.public_pem)
        metrics = Metrics()
        journal = SqliteJournal.open(journal_path, exchange=sim.url)
        async with OrderRouter.connect(
            config, signer, sim.url, observers=[metrics], journal=journal
        ) as router:
            metrics.bind(
                tokens=lambda: router.budget.spent,
                queue_depth=lambda: router.queue_depth,
                in_flight=lambda: router.in_flight,
            )
            app = build_service_app(router, ServiceConfig(), metrics, TOKEN, journal)
            async with TestClient(TestServer(app)) as http:
                auth = {"Authorization": f"Bearer {TOKEN}"}
                items = [
                    {"ticker": TICKER, "side": "bid", "price": "0.30", "count": "2"},
                    {"ticker": TICKER, "side": "bid", "price": "1.50", "count": "1"},
                    {
                        "ticker": TICKER,
                        "side": "bid",
                        "price": "0.30",
                        "count": "1",
                        "client_order_id": "svc-dup",
                    },
                    {
                        "ticker": TICKER,
                        "side": "bid",
                        "price": "0.30",
                        "count": "1",
                        "client_order_id": "svc-dup",
                    },
                ]
                body = msgspec.json.encode({"items": items, "wait": True})
                async with http.post("/v1/orders", data=body, headers=auth) as response:
                    shown.add(await response.read())
                async with http.post("/v1/orders", data=b"{", headers=auth) as response:
                    shown.add(await response.read())
                async with http.post("/v1/orders", data=body, headers={}) as response:
                    assert response.status == 401
                    shown.add(await response.read())
                # Ambiguous and unreadable answers: looked up, their ids logged.
                sim.state.faults.configure(FaultConfig(error_500_rate=0.5, malformed_rate=0.5))
                placed = await asyncio.gather(
                    *(router.place(OrderIntent.bid(TICKER, "0.30", 1)) for _ in range(4))
                )
                sim.state.faults.configure(FaultConfig())
                resting = [o for o in placed if isinstance(o, Accepted)]
                assert resting
                cancelled = await router.cancel(resting[0].order_id, TICKER)
                shown.objects(*placed, cancelled, CancelIntent(order_id="x", ticker=TICKER))
                for path in ("/metrics", "/v1/stats", "/readyz"):
                    async with http.get(path, headers=auth) as response:
                        shown.add(await response.read())
            shown.add(metrics.render())
            shown.objects(router, router.stats(), router._client.transport, config, signer)
        journal.close()
        # Every byte the journal wrote: the database, and its WAL if a checkpoint left one.
        written = [f for f in journal_path.parent.iterdir() if f.name.startswith(journal_path.name)]
        assert journal_path in written
        journaled = [f.read_bytes() for f in written]
        assert any(b"svc-dup" in data for data in journaled), "the journal recorded nothing"
        shown.add(*journaled)
        await crash(sim, signer, shown)


async def test_no_key_material_anywhere(
    material: KeyMaterial,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    shown = Shown()
    key_errors(material, tmp_path, shown)
    signer = signers(material, tmp_path, shown)
    await session(material, signer, shown, tmp_path / "journal.sqlite3")

    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    as_json = JsonFormatter()
    for record in caplog.records:
        shown.add(plain.format(record), as_json.format(record), repr(vars(record)))
        if record.exc_info and record.exc_info[1] is not None:
            shown.error(record.exc_info[1])
    out, err = capfd.readouterr()
    shown.add(out, err, caplog.text)

    everything = "\n".join(i if isinstance(i, str) else i.decode("latin-1") for i in shown.items)
    # The run did show what it should: debug lines, the crash, the metrics, the reprs.
    for expected in (
        "dispatcher crashed",
        "injected transport failure",
        "Traceback",
        "reconciling",
        "kalshi_router_",
        f"Signer(key_id={KEY_ID!r}",
        "accessible by group or others",
    ):
        assert expected in everything, expected
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    leaks = {name for item in shown.items for name in find_leaks(material, item)}
    assert leaks == set()
