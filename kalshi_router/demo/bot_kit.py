"""``kalshi-router sim --new-key DIR``: what your own bot needs to trade on the simulator, in one
step: a fresh key pair that the running simulator accepts, a bot config pointing at it, and the
environment to set.

The private key is written mode 0600 and never printed; the key id is not a secret and is.
"""

from __future__ import annotations

import os
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from kalshi_router.wire.signer import KeyAlgorithm, generate_key

PRIVATE_KEY_FILE = "kalshi-sim.key"
PUBLIC_KEY_FILE = "kalshi-sim.pub"
CONFIG_FILE = "bot.toml"


@dataclass(frozen=True, slots=True)
class BotKit:
    key_id: str
    public_pem: bytes
    private_key_path: Path
    config_path: Path

    def environment(self) -> dict[str, str]:
        """The variables a bot sets (``Signer.from_env`` reads them)."""
        return {
            "KALSHI_API_KEY_ID": self.key_id,
            "KALSHI_PRIVATE_KEY_PATH": str(self.private_key_path),
        }

    def describe(self) -> list[str]:
        """What to tell the user: the environment and the config, never the private key."""
        variables = self.environment().items()
        env = [f"  export {name}={shlex.quote(value)}" for name, value in variables]
        return [
            f"new API key for your bot (its private key: {self.private_key_path}, mode 0600)",
            "set in the bot's environment:",
            *env,
            f"bot config: {self.config_path}",
        ]


def bot_config(base_url: str, environment: dict[str, str]) -> str:
    """The TOML of a bot's config for the simulator at ``base_url``."""
    # JSON string syntax is valid TOML basic-string syntax.
    url = msgspec.json.encode(base_url).decode()
    lines = [
        f"# A bot's config for the simulator at {base_url},",
        "# written by `kalshi-router sim --new-key`. Its key comes from the environment:",
        *(f"#   {name}={shlex.quote(value)}" for name, value in environment.items()),
        "# Keys not set here take the defaults documented in config/default.toml.",
        "",
        "[exchange]",
        'target = "url"',
        f"base_url = {url}",
        "# Plain http, allowed for loopback only (the simulator).",
        "verify_tls = false",
    ]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600, never chmod-ed after: between the two another user could open it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        # A file that was already there keeps its mode through O_CREAT: set it.
        os.fchmod(file.fileno(), 0o600)
        file.write(data)


def write_bot_kit(directory: Path, base_url: str, key_type: KeyAlgorithm = "rsa") -> BotKit:
    """Make a key pair and the bot's config in ``directory`` (created 0700 if missing; files of
    an earlier run are replaced). Raises ``OSError`` when they cannot be written."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = directory.resolve()
    # Kalshi's key ids are UUIDs.
    key_id = str(uuid.uuid4())
    private_pem, public_pem = generate_key(key_type)
    private_path = directory / PRIVATE_KEY_FILE
    _write_private(private_path, private_pem)
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem)
    kit = BotKit(key_id, public_pem, private_path, directory / CONFIG_FILE)
    kit.config_path.write_text(bot_config(base_url, kit.environment()), encoding="utf-8")
    return kit
