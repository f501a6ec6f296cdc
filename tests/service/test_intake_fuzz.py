"""Fuzzing the service's intake (HTTP bodies and stream frames, JSON and msgpack) over a real
router and the simulator: every bad item gets an error naming its field or the problem, the
good ones around it get their outcomes, and the service never fails (no 500, no dead stream).

The expected error for an item is what decoding that item *alone* gives: so an item's answer
depends on nothing else in its request or stream.
"""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi_router.config import ServiceConfig
from kalshi_router.outcome import Accepted, Rejected
from kalshi_router.service.context import PATHS, ROUTES
from kalshi_router.service.orders import ORDERS_OFF
from kalshi_router.service.protocol import (
    Codec,
    IntentsBody,
    ItemError,
    StreamAck,
    StreamError,
    StreamOutcome,
    StreamReply,
    StreamRequest,
    Verb,
    item_error,
)
from kalshi_router.sim import SimConfig
from tests.service.conftest import AUTH, TICKER, MakeService, Running, resting

T = TypeVar("T")
MSGPACK = "application/msgpack"
MAX_ITEMS = 8
# The exchange is not what is tested here: a bucket that never makes an order wait.
SIM = SimConfig(tier="premier", write_refill=100_000, write_capacity=100_000)
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_unique = itertools.count()

# Values of every type each format carries, at and beyond every limit.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["nan", "-Infinity", "1e999999999", "0.5", "0.30", "-0", "1", "bid", "ask"]),
    st.from_regex(r"-?[0-9]{0,3}(\.[0-9]{0,6})?([eE]-?[0-9]{1,10})?", fullmatch=True),
)
JUNK = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_REF = {"order_id": "fuzz-order", "ticker": TICKER}
VALID: dict[Verb, dict[str, Any]] = {
    "submit": resting(),
    "cancel": _REF,
    "amend": _REF | {"side": "bid", "price": "0.20", "count": "2"},
    "decrease": _REF | {"reduce_by": "1"},
}


@st.composite
def mutated(draw: st.DrawFn, verb: Verb) -> Any:
    """A good item with one thing wrong (or not): a field changed, dropped or added; or junk."""
    item = dict(VALID[verb])
    how = draw(st.sampled_from(["change", "drop", "add", "junk"]))
    names = sorted(ROUTES[verb].kind.__struct_fields__)
    if how == "change":
        item[draw(st.sampled_from(names))] = draw(JUNK)
    elif how == "drop":
        item.pop(draw(st.sampled_from(sorted(item))))
    elif how == "add":
        item[draw(st.sampled_from([*names, "extra", ""]))] = draw(JUNK)
    else:
        return draw(JUNK)
    return item


def fresh(item: Any, verb: Verb) -> Any:
    """Ids made unique, so that no item is refused for repeating an earlier one."""
    if not isinstance(item, dict):
        return item
    name = "client_order_id" if verb == "submit" else "order_id"
    if name == "client_order_id" and name not in item:
        item = item | {name: "fz"}
    if isinstance(item.get(name), str):
        item = item | {name: f"{item[name][:40]}-{next(_unique)}"}
    return item


def decoded(codec: Codec, data: bytes, kind: type[T]) -> T | ItemError:
    """``data`` decoded, or the error the service gives for it."""
    try:
        return codec.decode(data, kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return item_error(exc)


def expected(codec: Codec, verb: Verb, encoded: bytes) -> ItemError | None:
    """The error for one item decoded alone; None when it decodes."""
    found = decoded(codec, encoded, ROUTES[verb].kind)
    return found if isinstance(found, ItemError) else None


def check_error(error: ItemError, verb: Verb, item: Any) -> None:
    """An error names a field of the intent, a key of the item that is none, or the item as a
    whole ("body"); and says something."""
    if error.message == "unknown field":
        assert isinstance(item, dict)
        assert error.field in item
        assert error.field not in ROUTES[verb].kind.__struct_fields__
    else:
        assert error.field in {*ROUTES[verb].kind.__struct_fields__, "body"}, error
    assert error.message
    assert "Traceback" not in error.message


def encoder(binary: bool) -> Any:
    return msgspec.msgpack.encode if binary else msgspec.json.encode


@pytest.fixture
async def fuzzed(make_service: MakeService) -> Running:
    return await make_service(ServiceConfig(max_items=MAX_ITEMS), sim=SIM)


# --- HTTP --------------------------------------------------------------------------------------


@FUZZ
@given(
    verb=st.sampled_from(list(PATHS.values())),
    binary=st.booleans(),
    items=st.lists(st.tuples(st.booleans(), st.data()), max_size=MAX_ITEMS + 1),
    extra=st.one_of(
        st.just({}),
        st.dictionaries(st.sampled_from(["wait", "deadline_s", "itemz"]), JUNK, max_size=2),
    ),
)
async def test_each_item_of_a_request_is_answered_alone(
    fuzzed: Running,
    verb: Verb,
    binary: bool,
    items: list[tuple[bool, st.DataObject]],
    extra: dict[str, Any],
) -> None:
    codec, encode = Codec(binary), encoder(binary)
    drawn = [
        (good, fresh(VALID[verb] if good else data.draw(mutated(verb)), verb))
        for good, data in items
    ]
    body = encode({"items": [item for _, item in drawn], **extra})
    path = next(p for p, v in PATHS.items() if v == verb)
    headers = AUTH | {"Content-Type": MSGPACK if binary else "application/json"}
    async with fuzzed.http.post(path, data=body, headers=headers) as response:
        status, answer = response.status, codec.decode(await response.read(), dict[str, Any])
    envelope = decoded(codec, body, IntentsBody)
    if isinstance(envelope, ItemError):
        assert (status, answer["field"]) == (400, envelope.field)
        assert answer["error"] == f"malformed body: {envelope.message}"
        return
    if len(drawn) > MAX_ITEMS:
        assert (status, answer["field"]) == (413, "items")
        return
    assert status == (200 if envelope.wait else 202)
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(drawn)))
    for (good, item), result in zip(drawn, results, strict=True):
        error = expected(codec, verb, encode(item))
        if error is not None:
            assert ItemError(**result["error"]) == error
            check_error(error, verb, item)
            assert "key" not in result
            continue
        assert "error" not in result, (item, result)
        assert result["key"]
        if not envelope.wait:
            continue
        outcome = result["outcome"]
        # A cancel, amend or decrease of an order that never existed: refused by the exchange.
        kinds = {"accepted", "rejected", "expired"} if good or verb == "submit" else {"rejected"}
        assert outcome["type"] in kinds
        if good and verb == "submit":
            assert outcome["type"] == "accepted"


_bodies = st.one_of(
    st.binary(max_size=64),
    # A good body cut short or with a byte changed.
    st.tuples(st.booleans(), st.integers(0, 200), st.integers(0, 255)),
    st.sampled_from(
        [
            b"[" * 100_000,  # nesting beyond the decoder's limit
            b'{"items": [' + b"[" * 100_000,
            b'{"items": [{"ticker": "\xff\xfe"}]}',  # not UTF-8
            b"\x81\xa5items\x91\x81\xa6ticker\xa2\xff\xfe",  # the same in msgpack
            b"\x81\xa5items\x91" + b"\x91" * 100_000,
            b'{"items": [], "items": [1]}',
            b"\xef\xbb\xbf{}",  # a byte-order mark
            b"",
        ]
    ),
)


@FUZZ
@given(body=_bodies, binary=st.booleans(), verb=st.sampled_from(list(PATHS.values())))
async def test_any_bytes_as_a_body_get_an_answer_not_a_500(
    fuzzed: Running, body: bytes | tuple[bool, int, int], binary: bool, verb: Verb
) -> None:
    if isinstance(body, tuple):
        cut, at, byte = body
        whole = encoder(binary)({"items": [resting(), resting(price="2")]})
        at %= len(whole)
        body = whole[:at] if cut else whole[:at] + bytes([byte]) + whole[at + 1 :]
    path = next(p for p, v in PATHS.items() if v == verb)
    headers = AUTH | {"Content-Type": MSGPACK if binary else "application/json"}
    async with fuzzed.http.post(path, data=body, headers=headers) as response:
        assert response.status in (200, 400), await response.read()
        answer = Codec(binary).decode(await response.read(), dict[str, Any])
    if response.status == 400:
        assert answer["error"].startswith("malformed body: ")
        assert answer["field"]
    else:
        assert all(("error" in r) != ("outcome" in r) for r in answer["results"])
    # Still serving.
    async with fuzzed.http.get("/readyz") as ready:
        assert ready.status == 200


# --- the stream --------------------------------------------------------------------------------

_VERBS: list[Verb] = ["submit", "cancel", "amend", "decrease"]
ODD: list[bytes | str] = [
    b"[" * 100_000,
    b"\x91" * 100_000 + b"\xc0",
    '{"type": "submit", "id": "odd", "item": ' + "[" * 100_000,
    b'{"type": "submit", "id": "odd", "item": {"ticker": "\xff"}}',
    b"\x83\xa4type\xa6submit\xa2id\xa3odd\xa4item\x81\xa6ticker\xa1\xff",
]


@st.composite
def frames(draw: st.DrawFn, binary: bool, frame_id: int) -> tuple[str, bytes | str]:
    """One frame: ("good", a good request), ("item", a request with a fuzzed item),
    ("envelope", a request with its envelope fuzzed) or ("raw", any bytes or text)."""
    kind = draw(st.sampled_from(["good", "item", "envelope", "raw"]))
    if kind == "raw":
        return kind, draw(st.binary(max_size=40) | st.text(max_size=40) | st.sampled_from(ODD))
    verb = draw(st.sampled_from(_VERBS))
    item = VALID[verb] if kind == "good" else draw(mutated(verb)) if kind == "item" else None
    request: dict[str, Any] = {"type": verb, "id": frame_id, "item": fresh(item, verb)}
    if kind == "envelope":
        request["item"] = fresh(VALID[verb], verb)
        change = draw(st.sampled_from(["type", "item", "deadline_s", "extra", "drop"]))
        if change == "drop":
            request.pop(draw(st.sampled_from(["type", "item"])))
        else:
            request[change] = draw(JUNK)
    return kind, encoder(binary)(request)


def replies_for(codec: Codec, frame: bytes | str) -> tuple[int, ItemError | None]:
    """How many replies a frame gets (ack and outcome, or one error) and the expected error."""
    request = decoded(codec, frame if isinstance(frame, bytes) else frame.encode(), StreamRequest)
    if isinstance(request, ItemError):
        return 1, request
    if request.type == "view":
        # Only when the junk drawn is that word: this service does not follow orders.
        return 1, ItemError("orders.track", ORDERS_OFF)
    # Never drawn: junk text is at most 12 characters (the state requests are tested apart).
    assert request.type != "trading_state"
    error = expected(codec, request.type, bytes(request.item))
    return (1, error) if error is not None else (2, None)


@FUZZ
@given(binary=st.booleans(), data=st.data(), count=st.integers(1, 8))
async def test_each_frame_of_a_stream_is_answered_alone(
    fuzzed: Running, binary: bool, data: st.DataObject, count: int
) -> None:
    codec, encode = Codec(binary), encoder(binary)
    socket = await fuzzed.http.ws_connect(
        "/v1/stream?format=msgpack" if binary else "/v1/stream", headers=AUTH
    )
    decoder = (msgspec.msgpack.Decoder if binary else msgspec.json.Decoder)(StreamReply)

    async def send(frame: bytes | str, raw: bool = False) -> None:
        """A request in the stream's own kind of frame; a raw one as it is."""
        if isinstance(frame, str):
            await socket.send_str(frame)
        elif binary or raw:
            await socket.send_bytes(frame)
        else:
            await socket.send_str(frame.decode())

    async def receive(n: int) -> list[StreamReply]:
        replies = []
        for _ in range(n):
            message = await socket.receive(timeout=10)
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), message
            replies.append(decoder.decode(message.data))
        return replies

    sent = [data.draw(frames(binary, frame_id)) for frame_id in range(count)]
    for kind, frame in sent:
        await send(frame, raw=kind == "raw")
    plan = [replies_for(codec, frame) for _, frame in sent]
    received = await receive(sum(n for n, _ in plan))
    by_id: dict[Any, list[StreamReply]] = {}
    for reply in received:
        by_id.setdefault(reply.id, []).append(reply)
    for frame_id, ((kind, _), (_, error)) in enumerate(zip(sent, plan, strict=True)):
        if kind == "raw":
            continue  # whatever id it carries (usually none): counted in the total
        replies = by_id.pop(frame_id)
        if error is not None:
            assert replies == [StreamError(frame_id, error.field, error.message)]
            continue
        ack, outcome = replies
        assert isinstance(ack, StreamAck)
        assert isinstance(outcome, StreamOutcome)
        if kind == "good":
            # A good order ("fz-" key) rests; the good references name orders that do not exist.
            wanted = Accepted if ack.key.startswith("fz-") else Rejected
            assert isinstance(outcome.outcome, wanted), outcome
    # What is left came from raw frames: an error each.
    assert all(isinstance(r, StreamError) for rest in by_id.values() for r in rest)
    # Nothing more is on its way, and the stream still takes intents.
    await send(encode({"type": "submit", "id": "last", "item": fresh(resting(), "submit")}))
    ack, outcome = await receive(2)
    assert isinstance(ack, StreamAck)
    assert ack.id == "last"
    assert isinstance(outcome, StreamOutcome)
    assert isinstance(outcome.outcome, Accepted)
    await socket.close()
