"""Credentials from the environment: each mistake blamed on the variable that holds it, no
value echoed, and a key file readable by others warned about once (issue 11)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kalshi_router.errors import KeyLoadError
from kalshi_router.wire.signer import KeyFileWarning, Signer, generate_key, load_private_key

PRIVATE_PEM = generate_key("ed25519")[0]
OTHER_PEM = generate_key("rsa")[0]
KEY_ID = "4f1c7a52-9a0e-4f43-b1a2-0c6f4b7d2e11"


def key_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "kalshi.key"
    path.write_bytes(PRIVATE_PEM)
    path.chmod(mode)
    return path


def where_the_key_is(tmp_path: Path, source: str) -> dict[str, str]:
    if source == "pem":
        return {"KALSHI_PRIVATE_KEY": PRIVATE_PEM.decode()}
    if source == "path":
        return {"KALSHI_PRIVATE_KEY_PATH": str(key_file(tmp_path))}
    return {}


def pasted(pem: bytes, form: str) -> str:
    text = pem.decode()
    if form == "escaped":
        # One line with literal "\n" escapes, as .env files carry it: printable, so it passed
        # every check and would have been sent as the KALSHI-ACCESS-KEY header.
        return text.strip().replace("\n", "\\n")
    if form == "line":
        return text.splitlines()[1]
    return text


@pytest.mark.parametrize("source", ["pem", "path", "none"])
@pytest.mark.parametrize("form", ["pem", "escaped", "line"])
def test_a_pem_in_the_key_id_variable_is_blamed_on_it(
    tmp_path: Path, source: str, form: str
) -> None:
    value = pasted(OTHER_PEM, form)
    environ = {"KALSHI_API_KEY_ID": value, **where_the_key_is(tmp_path, source)}
    with pytest.raises(KeyLoadError) as raised:
        Signer.from_env(environ=environ)
    message = str(raised.value)
    assert message.startswith("environment variable KALSHI_API_KEY_ID: key id looks like key")
    assert message.endswith(
        "the private key goes in KALSHI_PRIVATE_KEY (PEM) or KALSHI_PRIVATE_KEY_PATH (a path)"
    )
    for line in OTHER_PEM.decode().splitlines()[1:-1]:
        assert line not in message


@pytest.mark.parametrize("source", ["pem", "path"])
def test_a_piece_of_the_key_itself_as_key_id_is_blamed_on_the_key_id(
    tmp_path: Path, source: str
) -> None:
    # Short enough to pass the pattern check; only the key itself shows it is a piece of it.
    piece = PRIVATE_PEM.decode().splitlines()[1][:30]
    environ = {"KALSHI_API_KEY_ID": piece, **where_the_key_is(tmp_path, source)}
    with pytest.raises(KeyLoadError) as raised:
        Signer.from_env(environ=environ)
    assert str(raised.value) == (
        "environment variable KALSHI_API_KEY_ID: key id is a piece of the private key; "
        "use the API key's id"
    )


def test_the_signer_itself_refuses_a_one_line_pem_as_key_id() -> None:
    with pytest.raises(KeyLoadError, match="looks like key material"):
        Signer(pasted(OTHER_PEM, "escaped"), load_private_key(PRIVATE_PEM))


@pytest.mark.parametrize("source", ["pem", "path"])
def test_a_real_key_id_still_loads(tmp_path: Path, source: str) -> None:
    environ = {"KALSHI_API_KEY_ID": KEY_ID, **where_the_key_is(tmp_path, source)}
    assert Signer.from_env(environ=environ).key_id == KEY_ID


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_key_file_readable_by_others_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {
        "KALSHI_API_KEY_ID": KEY_ID,
        "KALSHI_PRIVATE_KEY_PATH": str(key_file(tmp_path, 0o644)),
    }
    with caplog.at_level(logging.DEBUG), pytest.warns(KeyFileWarning) as warned:
        Signer.from_env(environ=environ)
    assert len(warned) == 1
    assert "accessible by group or others (mode 644)" in str(warned[0].message)
    # The warning points at the caller, not at the signer's insides.
    assert warned[0].filename == __file__
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
