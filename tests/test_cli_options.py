"""Every option of every subcommand is checked like a config key: a bad value is one line on
stderr naming the option, exit 2, no traceback (issue 11: ``demo --tier premeir`` ended in a
traceback, ``--orders -5`` and ``--seconds nan`` were taken, ``sim --port 99999`` listened on
port 34463)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kalshi_router.cli import main

LONG = "/tmp/" + "s" * 120 + ".sock"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a plain file and a directory in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "adir").mkdir()
    return tmp_path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI expecting a refusal; return its one line."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith("kalshi-router: ")
    return err.removeprefix("kalshi-router: ").rstrip("\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # demo
        (["demo", "--tier", "premeir"], "--tier: unknown tier 'premeir'; known tiers: basic,"),
        (["demo", "--orders", "-5"], "--orders: must be 0 or more, got -5"),
        (["demo", "--orders", "5x"], "--orders: must be a whole number, got '5x'"),
        (["demo", "--orders", "6000"], "--orders: at most 5000 (half of router.queue_size)"),
        (["demo", "--seconds", "-1"], "--seconds: must be a finite number of seconds > 0"),
        (["demo", "--seconds", "0"], "--seconds: must be a finite number of seconds > 0"),
        (["demo", "--seconds", "nan"], "--seconds: must be a finite number of seconds > 0"),
        (["demo", "--seconds", "inf"], "--seconds: must be a finite number of seconds > 0"),
        (["demo", "--seconds", "soon"], "--seconds: must be a number of seconds, got 'soon'"),
        (["demo", "--dialect", "v3"], "--dialect: invalid choice: 'v3'"),
        (["demo", "--config", "missing.toml"], "--config: no such file: missing.toml"),
        (["demo", "--config", "adir"], "--config: not a file: adir"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        # serve
        (["serve", "--port", "65536"], "--port: must be a port number from 0 to 65535, got 65536"),
        (["serve", "--port", "-1"], "--port: must be a port number from 0 to 65535, got -1"),
        (["serve", "--host", "bad host"], "--host: must be an IP address or a host name"),
        (["serve", "--host", ""], "--host: must be an IP address or a host name"),
        (["serve", "--unix-socket", "nodir/s.sock"], "--unix-socket: no such directory: nodir"),
        (["serve", "--unix-socket", "plain.txt"], "--unix-socket: exists and is not a socket"),
        (["serve", "--unix-socket", LONG], "--unix-socket: longer than a Unix socket path"),
        (["serve", "--log-format", "xml"], "--log-format: invalid choice: 'xml'"),
        (["serve", "--config", "missing.toml"], "--config: no such file: missing.toml"),
        # sim
        (["sim", "--tier", "Premier"], "--tier: unknown tier 'Premier'; known tiers: basic,"),
        (["sim", "--port", "99999"], "--port: must be a port number from 0 to 65535, got 99999"),
        (["sim", "--port", "http"], "--port: must be a whole number, got 'http'"),
        (["sim", "--host", "a..b"], "--host: must be an IP address or a host name, got 'a..b'"),
        (["sim", "--seed", "1.5"], "--seed: must be a whole number, got '1.5'"),
        (["sim", "--v1", "maybe"], "--v1: invalid choice: 'maybe'"),
        (["sim", "--fault", "hang_s=nan"], "--fault 'hang_s=nan': must be finite"),
        (["sim", "--fault", "hang_s=-1"], "--fault: hang_s must not be negative"),
        (["sim", "--new-key", "plain.txt"], "--new-key: exists and is not a directory"),
        (
            ["sim", "--new-key", "kit", "--host", "0.0.0.0"],
            "--new-key: needs a loopback --host",
        ),
        (["sim", "--config", "missing.toml"], "--config: no such file: missing.toml"),
        # check
        (["check"], "the following arguments are required: --config"),
        (["check", "--config", "missing.toml"], "--config: no such file: missing.toml"),
        # journal
        (["journal", "--path", "missing.sqlite3"], "--path: no such file: missing.sqlite3"),
        (["journal", "--config", "adir"], "--config: not a file: adir"),
        # no command, or a wrong one
        ([], "the following arguments are required: command"),
        (["sever"], "command: invalid choice: 'sever'"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(
    here: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused(argv, capsys).startswith(message)


def test_a_port_already_taken_is_one_line(
    taken_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(["sim", "--port", str(taken_port)], capsys)
    assert line.startswith(f"--host/--port: cannot listen on 127.0.0.1:{taken_port}: ")


def test_a_tier_is_refused_for_the_same_reason_as_in_a_config_file(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "tier.toml").write_text('[sim]\ntier = "premeir"\n')
    from_file = refused(["demo", "--config", "tier.toml"], capsys)
    from_option = refused(["demo", "--tier", "premeir"], capsys)
    assert from_option.removeprefix("--tier: ") in from_file
