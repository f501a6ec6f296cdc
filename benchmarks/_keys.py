"""An API key pair made for one run: the simulator is told the public half, the router signs.

key = BenchKey.generate("ed25519")
spec = key_spec(key)            # to a contender's child, on its stdin
key = child_key(spec)           # in the child
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kalshi_router.wire.signer import Signer, generate_key, load_private_key

KeyKind = Literal["rsa", "ed25519"]
KEYS: tuple[KeyKind, ...] = ("rsa", "ed25519")


@dataclass(frozen=True, slots=True)
class BenchKey:
    """One key pair, registered in the sim under ``key_id``."""

    key_id: str
    kind: KeyKind
    private_pem: bytes
    public_pem: bytes

    @classmethod
    def generate(cls, kind: KeyKind = "rsa", key_id: str = "bench-key") -> BenchKey:
        private_pem, public_pem = generate_key(kind)
        return cls(key_id, kind, private_pem, public_pem)

    def signer(self) -> Signer:
        return Signer(self.key_id, load_private_key(self.private_pem))


def key_spec(key: BenchKey) -> dict[str, str]:
    return {
        "key_id": key.key_id,
        "kind": key.kind,
        "private_pem": key.private_pem.decode(),
        "public_pem": key.public_pem.decode(),
    }


def child_key(spec: Mapping[str, Any]) -> BenchKey:
    """The parent's key, as ``key_spec`` passed it (one key per run, registered in the sim)."""
    return BenchKey(
        spec["key_id"], spec["kind"], spec["private_pem"].encode(), spec["public_pem"].encode()
    )
