"""Request bodies sent with a ``Content-Encoding``: decoded here rather than by aiohttp.

aiohttp's own decoding (turned off for the intake's server) answers a gzip or deflate body that
does not decode with a plain-text 500 and a traceback in the log, refuses ``br`` and ``zstd``
before any middleware runs when an optional package is missing, and passes any other coding
through undecoded. Here: ``gzip`` (``x-gzip``) and ``deflate`` are accepted, alone or in
sequence; a body that does not decode as its coding says is a 400; any other coding is a 415
whose ``Accept-Encoding`` lists the ones accepted (RFC 9110, 15.5.16); the decoded body is held
to the same size limit as a plain one (413).
"""

from __future__ import annotations

import zlib

from kalshi_router.errors import BodyRefused

ACCEPTED = "gzip, deflate"
# zlib's window bits: 16 + 15 for a gzip member; deflate is the zlib format (RFC 1950).
_GZIP = 31
_ZLIB = 15
# Some clients send deflate without the zlib wrapper (as aiohttp and browsers accept it).
_RAW = -15
_CODINGS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": _ZLIB}


def decode_body(data: bytes, content_encoding: str, limit: int) -> bytes:
    """``data`` with the codings named in ``content_encoding`` undone (last applied, first
    undone); raises :class:`BodyRefused` for a coding not accepted (415), a body that does not
    decode (400), or one larger than ``limit`` once decoded (413)."""
    codings = [name.strip().lower() for name in content_encoding.split(",") if name.strip()]
    for name in codings:
        if name != "identity" and name not in _CODINGS:
            raise BodyRefused(
                415,
                f"Content-Encoding {name!r} is not accepted; send {ACCEPTED}, or none",
                {"Accept-Encoding": ACCEPTED},
            )
    for name in reversed(codings):
        if name != "identity" and data:
            data = _inflate(data, name, limit)
    return data


def _inflate(data: bytes, name: str, limit: int) -> bytes:
    wbits = _CODINGS[name]
    if wbits == _ZLIB and data[0] & 0x0F != zlib.DEFLATED:
        wbits = _RAW
    parts: list[bytes] = []
    size = 0
    # A gzip body may hold several members, one after the other.
    while data:
        inflater = zlib.decompressobj(wbits)
        try:
            # At most one byte over the limit is ever inflated: a small bomb stays small.
            part = inflater.decompress(data, limit + 1 - size)
        except zlib.error:
            raise BodyRefused(400, f"body is not valid {name} data") from None
        size += len(part)
        if size > limit:
            raise BodyRefused(413, f"request body larger than {limit} bytes")
        if not inflater.eof:
            raise BodyRefused(400, f"body is not valid {name} data: it ends early")
        parts.append(part)
        data = inflater.unused_data
        if data and wbits != _GZIP:
            raise BodyRefused(400, f"body is not valid {name} data: bytes after its end")
    return b"".join(parts)
