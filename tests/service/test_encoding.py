"""Bodies sent with a Content-Encoding: gzip and deflate decoded; a body that does not decode is a
400 and a coding not accepted a 415, both in the service's error shape, with no traceback in the
log; the decoded size is limited as a plain body's is."""

from __future__ import annotations

import gzip
import logging
import zlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi_router.errors import BodyRefused
from kalshi_router.service.encoding import decode_body
from tests.service.conftest import AUTH, Running, resting

PLAIN = msgspec.json.encode({"items": [resting()]})
LIMIT = 1000


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


GOOD = [
    pytest.param("gzip", gzip.compress(PLAIN), id="gzip"),
    pytest.param("x-gzip", gzip.compress(PLAIN), id="x-gzip"),
    pytest.param("GZIP", gzip.compress(PLAIN), id="upper-case"),
    pytest.param("deflate", zlib.compress(PLAIN), id="deflate"),
    pytest.param("deflate", raw_deflate(PLAIN), id="deflate-without-zlib-wrapper"),
    pytest.param("identity", PLAIN, id="identity"),
    pytest.param("deflate, gzip", gzip.compress(zlib.compress(PLAIN)), id="deflate-then-gzip"),
    pytest.param("gzip", gzip.compress(PLAIN[:20]) + gzip.compress(PLAIN[20:]), id="two-members"),
]
CORRUPT = [
    pytest.param("gzip", b"not gzip at all", "body is not valid gzip data", id="gzip-garbage"),
    pytest.param(
        "gzip",
        gzip.compress(PLAIN)[:-12],
        "body is not valid gzip data: it ends early",
        id="gzip-truncated",
    ),
    pytest.param(
        "gzip", gzip.compress(PLAIN) + b"junk", "body is not valid gzip data", id="gzip-trailing"
    ),
    pytest.param("deflate", b"\x78garbage", "body is not valid deflate data", id="deflate-garbage"),
    pytest.param("deflate", b"\xffgarbage", "body is not valid deflate data", id="raw-garbage"),
    pytest.param(
        "deflate",
        zlib.compress(PLAIN) + b"junk",
        "body is not valid deflate data: bytes after its end",
        id="deflate-trailing",
    ),
]
REFUSED = ["br", "zstd", "compress", "gzip, br", "x-unknown"]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(("coding", "body"), GOOD)
async def test_an_encoded_body_is_decoded(
    running: Running, coding: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": coding}
    async with running.http.post("/v1/orders", data=body, headers=headers) as response:
        assert response.status == 200
        (result,) = (await response.json())["results"]
    assert result["outcome"]["type"] == "accepted"
    no_traceback(caplog)


@pytest.mark.parametrize(("coding", "body", "message"), CORRUPT)
async def test_a_body_that_does_not_decode_is_a_400(
    running: Running, coding: str, body: bytes, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": coding}
    async with running.http.post("/v1/orders", data=body, headers=headers) as response:
        assert response.status == 400
        assert response.content_type == "application/json"
        assert await response.json() == {"error": message, "field": "Content-Encoding"}
    no_traceback(caplog)
    assert running.router.stats().items_sent == 0


@pytest.mark.parametrize("coding", REFUSED)
async def test_a_coding_not_accepted_is_a_415_saying_which_are(
    running: Running, coding: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": coding}
    async with running.http.post(
        "/v1/orders", data=b"\x00\x01 not json", headers=headers
    ) as response:
        assert response.status == 415
        assert response.headers["Accept-Encoding"] == "gzip, deflate"
        assert response.content_type == "application/json"
        refused = coding.split(", ")[-1]
        assert await response.json() == {
            "error": f"Content-Encoding {refused!r} is not accepted; send gzip, deflate, or none",
            "field": "Content-Encoding",
        }
    no_traceback(caplog)
    # The connection is still good for the next request.
    async with running.http.get("/v1/stats", headers=AUTH) as response:
        assert response.status == 200


async def test_a_msgpack_client_gets_its_error_in_msgpack(running: Running) -> None:
    headers = {**AUTH, "Content-Type": "application/msgpack", "Content-Encoding": "gzip"}
    async with running.http.post("/v1/orders", data=b"nope", headers=headers) as response:
        assert response.status == 400
        assert msgspec.msgpack.decode(await response.read()) == {
            "error": "body is not valid gzip data",
            "field": "Content-Encoding",
        }


def test_the_decoded_size_is_limited() -> None:
    bomb = gzip.compress(b" " * 10_000_000)
    with pytest.raises(BodyRefused) as refused:
        decode_body(bomb, "gzip", LIMIT)
    assert (refused.value.status, refused.value.message) == (
        413,
        f"request body larger than {LIMIT} bytes",
    )
    # Exactly the limit is fine, in one member or over several.
    assert decode_body(gzip.compress(b"x" * LIMIT), "gzip", LIMIT) == b"x" * LIMIT
    halves = gzip.compress(b"x" * 500) + gzip.compress(b"x" * 500)
    assert decode_body(halves, "gzip", LIMIT) == b"x" * LIMIT
    with pytest.raises(BodyRefused, match="larger than"):
        decode_body(halves + gzip.compress(b"x"), "gzip", LIMIT)


def test_no_coding_and_an_empty_body_pass_as_they_are() -> None:
    assert decode_body(PLAIN, "", LIMIT) == PLAIN
    assert decode_body(b"", "gzip", LIMIT) == b""


@given(st.binary(max_size=200), st.sampled_from(["gzip", "deflate", "gzip, deflate"]))
def test_any_bytes_decode_or_are_refused_with_a_status(data: bytes, coding: str) -> None:
    try:
        decoded = decode_body(data, coding, LIMIT)
    except BodyRefused as refused:
        status = refused.status
    else:
        status = 200
        assert len(decoded) <= LIMIT
    assert status in (200, 400, 413)
