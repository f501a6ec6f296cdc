"""The three ``KALSHI-ACCESS-*`` headers, and private-key loading that never leaks key material.

Kalshi signs ``timestamp_ms + METHOD + path`` where ``path`` is the full path from the root
(``/trade-api/v2/...``) without the query string; the body is not signed. RSA keys sign with
RSA-PSS, SHA-256, MGF1(SHA-256) and salt length = digest length (32 bytes); Ed25519 keys sign
the same text as is. The signature is sent in standard base64.

No error, ``repr`` or log line produced here ever contains key bytes, and a ``Signer`` refuses
to be pickled, so a key cannot leave the process by accident.
"""

from __future__ import annotations

import binascii
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NoReturn, Self, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from kalshi_router.errors import KeyLoadError

__all__ = [
    "KeyAlgorithm",
    "KeyFileWarning",
    "PrivateKey",
    "Signer",
    "generate_key",
    "load_private_key",
]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KeyAlgorithm: TypeAlias = Literal["rsa", "ed25519"]

MIN_RSA_BITS = 2048

# Both objects are immutable and stateless, so one instance serves every signature.
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_SHA256 = hashes.SHA256()


class KeyFileWarning(UserWarning):
    """The private key file can be read by users other than its owner."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_key(key: object) -> PrivateKey:
    """Return ``key`` if Kalshi accepts its type and size; no key bytes in the error."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyLoadError(
                f"RSA key is {key.key_size} bits; at least {MIN_RSA_BITS} bits are required"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    # By class name: touching cryptography's ``dsa`` module warns (DSA is deprecated there).
    kind = "EC" if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
    kind = kind.removesuffix("PrivateKey")
    raise KeyLoadError(f"unsupported key type {kind}: Kalshi accepts RSA or Ed25519 keys only")


def load_private_key(pem: bytes) -> PrivateKey:
    """Load an unencrypted PKCS#1 or PKCS#8 PEM private key (RSA >= 2048 bits, or Ed25519)."""
    if b"-----BEGIN" not in pem:
        raise KeyLoadError("not a PEM private key: no '-----BEGIN' line found")
    problem: str
    # The raise happens after the ``try`` so the new error has no ``__context__`` at all: the
    # cryptography exception (and anything it might quote from the input) is dropped, not chained.
    try:
        # Loading a key of a type cryptography deprecates (DSA) warns; we refuse such a key
        # below with our own error, so the warning would only say it twice (or, under
        # ``-W error``, replace our error with its own).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        problem = "private key is passphrase-protected; decrypt it first (no passphrase support)"
    except (ValueError, UnsupportedAlgorithm):
        problem = "could not parse the PEM private key (corrupt, mislabelled or unsupported format)"
    else:
        return _check_key(key)
    raise KeyLoadError(problem) from None


def generate_key(kind: KeyAlgorithm, *, rsa_bits: int = MIN_RSA_BITS) -> tuple[bytes, bytes]:
    """Make a fresh key pair as ``(private PEM, public PEM)``, in the formats Kalshi issues.

    RSA private keys come as PKCS#1 (``BEGIN RSA PRIVATE KEY``), Ed25519 as PKCS#8; the public
    key is SubjectPublicKeyInfo (``BEGIN PUBLIC KEY``), what Kalshi's key upload takes.
    """
    key: PrivateKey
    if kind == "rsa":
        if rsa_bits < MIN_RSA_BITS:
            raise ValueError(f"rsa_bits must be >= {MIN_RSA_BITS}, got {rsa_bits}")
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        private_format = serialization.PrivateFormat.TraditionalOpenSSL
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        private_format = serialization.PrivateFormat.PKCS8
    else:
        raise ValueError(f"kind must be 'rsa' or 'ed25519', got {kind!r}")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


# A run this long of base64 in a "path" is a key's body pasted in its place.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{40,}")


def _shown_path(path: str) -> str:
    """``path`` for a message, unless it is key material given where a path goes (the PEM in
    the path variable, say): such a value is not echoed."""
    if "-----" in path or "\n" in path or _BASE64_RUN.search(path):
        return "(a value that looks like key material, not a path: not shown)"
    return path


# Shorter ids could match a key's base64 by chance; a PEM line is 64 characters.
_MIN_KEY_PIECE = 16


def _is_part_of(key_id: str, key: PrivateKey) -> bool:
    """Whether ``key_id`` is a piece of the key's PEM text (a PEM line pasted as the id)."""
    if len(key_id) < _MIN_KEY_PIECE:
        return False
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8
        if isinstance(key, ed25519.Ed25519PrivateKey)
        else serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_id.encode() in pem


def _read_key_file(path: str | os.PathLike[str]) -> PrivateKey:
    """The key in the PEM file at ``path``; warns when the file is readable by group or
    others (pointing at the caller of ``Signer.from_file`` or ``from_env``)."""
    key_path = Path(path)
    shown = _shown_path(str(key_path))
    try:
        with key_path.open("rb") as file:
            # fstat on the open file, so the mode checked is that of the bytes read.
            mode = os.fstat(file.fileno()).st_mode
            pem = file.read()
    except FileNotFoundError:
        raise KeyLoadError(f"private key file not found: {shown}") from None
    except OSError as exc:
        raise KeyLoadError(
            f"cannot read private key file {shown}: {exc.strerror or type(exc).__name__}"
        ) from None
    # POSIX only: Windows reports synthetic permission bits that say nothing about access.
    if os.name == "posix" and mode & 0o077:
        message = (
            f"private key file {shown} is accessible by group or others "
            f"(mode {mode & 0o777:o}); restrict it with: chmod 600 {shown}"
        )
        # One channel only (a log line as well printed it twice); the CLI shows warnings
        # as log lines.
        warnings.warn(message, KeyFileWarning, stacklevel=3)
    try:
        key = load_private_key(pem)
    except KeyLoadError as exc:
        raise KeyLoadError(f"{shown}: {exc}") from None
    return key


def _key_id_problem(key_id: str, key: PrivateKey | None = None) -> str:
    """What is wrong with ``key_id`` ("" if nothing), in words that do not quote it. The key id
    is sent on every request and shown in reprs and logs, so key material must not pass."""
    if "-----BEGIN" in key_id:
        return _KEY_AS_ID
    if not key_id or not key_id.isprintable() or key_id != key_id.strip():
        return "key id must be a non-empty printable string without surrounding whitespace"
    if key is not None and _is_part_of(key_id, key):
        return "key id is a piece of the private key; use the API key's id"
    if _BASE64_RUN.search(key_id):
        return _KEY_AS_ID
    return ""


_KEY_AS_ID = "key id looks like key material (a PEM or a line of one), not an API key id"


class Signer:
    """Makes the ``KALSHI-ACCESS-*`` headers for one API key.

    Immutable and safe to share between tasks and threads. Sign immediately before each send
    attempt (retries included): the timestamp is part of the signed text.
    """

    __slots__ = ("_algorithm", "_clock_ms", "_key_id", "_key_type", "_sign_bytes")

    _algorithm: KeyAlgorithm
    _key_type: str
    _sign_bytes: Callable[[bytes], bytes]

    def __init__(
        self,
        key_id: str,
        private_key: PrivateKey,
        *,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        key = _check_key(private_key)
        problem = _key_id_problem(key_id, key)
        if problem:
            # The value is not echoed: a PEM pasted into the wrong variable would end up here.
            raise KeyLoadError(problem)
        self._key_id = key_id
        self._clock_ms = clock_ms
        if isinstance(key, rsa.RSAPrivateKey):
            rsa_sign = key.sign
            self._algorithm = "rsa"
            self._key_type = f"RSA {key.key_size}-bit"
            self._sign_bytes = lambda data: rsa_sign(data, _PSS, _SHA256)
        else:
            self._algorithm = "ed25519"
            self._key_type = "Ed25519"
            self._sign_bytes = key.sign

    @property
    def key_id(self) -> str:
        """The API key id sent as ``KALSHI-ACCESS-KEY``."""
        return self._key_id

    @property
    def algorithm(self) -> KeyAlgorithm:
        """``"rsa"`` or ``"ed25519"``."""
        return self._algorithm

    @property
    def key_type(self) -> str:
        """The key's type and size, for people: ``"RSA 2048-bit"`` or ``"Ed25519"``."""
        return self._key_type

    def sign(self, timestamp_ms: int, method: str, path: str) -> str:
        """Base64 signature of ``timestamp_ms + METHOD + path`` (query stripped)."""
        return self._signature(str(timestamp_ms), method, path)

    def now_ms(self) -> int:
        """The timestamp a request signed now carries (this signer's clock, epoch ms)."""
        return self._clock_ms()

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The three auth headers for a request made now; ``path`` starts at ``/trade-api/``."""
        return self.headers_at(self._clock_ms(), method, path)

    def headers_at(self, timestamp_ms: int, method: str, path: str) -> dict[str, str]:
        """The three auth headers with ``timestamp_ms`` (from :meth:`now_ms`): how the
        signature pool signs ahead with the same clock as ``headers``."""
        timestamp = str(timestamp_ms)
        return {
            "KALSHI-ACCESS-KEY": self._key_id,
            "KALSHI-ACCESS-TIMESTAMP": timestamp,
            "KALSHI-ACCESS-SIGNATURE": self._signature(timestamp, method, path),
        }

    def _signature(self, timestamp: str, method: str, path: str) -> str:
        # Kalshi verifies against the path without its query string ("for
        # /portfolio/orders?limit=5, sign only /trade-api/v2/portfolio/orders"), so signing
        # the query would make every request with parameters fail with 401.
        text = timestamp + method.upper() + path.partition("?")[0]
        return binascii.b2a_base64(self._sign_bytes(text.encode()), newline=False).decode("ascii")

    @classmethod
    def from_file(
        cls,
        key_id: str,
        path: str | os.PathLike[str],
        *,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> Self:
        """Load the PEM key at ``path``; warns when the file is readable by group or others."""
        return cls(key_id, _read_key_file(path), clock_ms=clock_ms)

    @classmethod
    def from_env(
        cls,
        key_id_var: str = "KALSHI_API_KEY_ID",
        key_pem_var: str = "KALSHI_PRIVATE_KEY",
        key_path_var: str = "KALSHI_PRIVATE_KEY_PATH",
        environ: Mapping[str, str] = os.environ,
        *,
        clock_ms: Callable[[], int] = _wall_clock_ms,
    ) -> Self:
        """Key id from ``key_id_var``; key from the PEM in ``key_pem_var``, else the file named
        by ``key_path_var``. Errors name the variables, never their values."""
        key_id = environ.get(key_id_var, "").strip()
        if not key_id:
            raise KeyLoadError(f"environment variable {key_id_var} (the API key id) is not set")
        # Before the key is looked for: a PEM pasted here is this variable's fault, whatever
        # the others hold.
        problem = _key_id_problem(key_id)
        if problem == _KEY_AS_ID:
            problem += f"; the private key goes in {key_pem_var} (PEM) or {key_path_var} (a path)"
        if problem:
            raise KeyLoadError(f"environment variable {key_id_var}: {problem}")
        pem = environ.get(key_pem_var, "").strip()
        key_path = environ.get(key_path_var, "").strip()
        key: PrivateKey
        if pem:
            # .env files and container secrets often carry the PEM on one line with literal
            # "\n" escapes; PEM parsing needs real line breaks.
            if "\n" not in pem:
                pem = pem.replace("\\n", "\n")
            try:
                key = load_private_key(pem.encode())
            except KeyLoadError as exc:
                raise KeyLoadError(f"environment variable {key_pem_var}: {exc}") from None
        elif key_path:
            try:
                key = _read_key_file(key_path)
            except KeyLoadError as exc:
                raise KeyLoadError(f"environment variable {key_path_var}: {exc}") from None
        else:
            raise KeyLoadError(
                f"no private key: set environment variable {key_pem_var} (PEM text) "
                f"or {key_path_var} (path to a PEM file)"
            )
        try:
            return cls(key_id, key, clock_ms=clock_ms)
        except KeyLoadError as exc:
            # Only the key id can be wrong here: the key was checked as it was loaded.
            raise KeyLoadError(f"environment variable {key_id_var}: {exc}") from None

    def __repr__(self) -> str:
        # getattr: a Signer whose __init__ refused its arguments still appears in the locals of
        # that error's traceback, and error trackers repr it.
        key_id = getattr(self, "_key_id", None)
        return f"Signer(key_id={key_id!r}, algorithm={getattr(self, '_algorithm', None)!r})"

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("Signer cannot be pickled: it holds a private key that must stay in memory")

    # A Signer is immutable, so a copy can be the same object: no second copy of the key.
    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self
