"""TLS is verified, and plain HTTP refused, for every host but loopback; redirects are not
followed. Checked where the setting is read (``ExchangeConfig``) and where it is used
(``HttpTransport``, which ``OrderRouter.connect`` builds with a base URL that may not come from
the config), and on the wire: a self-signed certificate is refused unless verification is off.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kalshi_router.config import Config, ExchangeConfig
from kalshi_router.errors import ConfigError, TransportError
from kalshi_router.outcome import Rejected
from kalshi_router.router import OrderRouter
from kalshi_router.wire.hosts import is_loopback
from kalshi_router.wire.http import HttpTransport
from kalshi_router.wire.signer import Signer, generate_key, load_private_key
from kalshi_router.wire.v2 import V2Dialect

PRIVATE, _ = generate_key("ed25519")
REAL = "https://external-api.kalshi.com/trade-api/v2"


def signer() -> Signer:
    return Signer("key-1", load_private_key(PRIVATE))


LOOPBACK = ["127.0.0.1", "127.5.6.7", "[::1]", "localhost", "LOCALHOST"]
# Names that are not loopback literals, however they resolve today.
NOT_LOOPBACK = [
    "external-api.kalshi.com",
    "foo.localhost",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "0.0.0.0",
    "10.0.0.1",
    "[::]",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host.strip("[]"))


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host.strip("[]"))


@pytest.mark.parametrize("host", NOT_LOOPBACK)
@pytest.mark.parametrize("target", ["sim", "url"])
def test_config_refuses_unverified_tls_to_a_real_host(host: str, target: str) -> None:
    with pytest.raises(ConfigError, match=r"^exchange\.verify_tls: .*loopback") as info:
        ExchangeConfig(
            target=target,  # type: ignore[arg-type]
            base_url=f"https://{host}/trade-api/v2",
            verify_tls=False,
        )
    assert host.strip("[]") in str(info.value)


@pytest.mark.parametrize("verify_tls", [True, False])
@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_config_refuses_plain_http_to_a_real_host(host: str, verify_tls: bool) -> None:
    with pytest.raises(ConfigError, match=r"^exchange\.base_url: must use https"):
        ExchangeConfig(base_url=f"http://{host}/trade-api/v2", verify_tls=verify_tls)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", LOOPBACK)
def test_config_allows_the_simulator_on_loopback(host: str, scheme: str) -> None:
    base_url = f"{scheme}://{host}:8080/trade-api/v2"
    assert ExchangeConfig(target="url", base_url=base_url, verify_tls=False).verify_tls is False


def test_transport_refuses_what_the_config_refuses() -> None:
    with pytest.raises(ConfigError, match=r"^verify_tls: "):
        HttpTransport(REAL, signer(), verify_tls=False)
    with pytest.raises(ConfigError, match=r"^base_url: must use https"):
        HttpTransport("http://external-api.kalshi.com/trade-api/v2", signer())
    for host in LOOPBACK:
        HttpTransport(f"http://{host}:1/trade-api/v2", signer(), verify_tls=False)


def test_connect_checks_a_base_url_that_bypassed_the_config() -> None:
    # The config is fine; the base URL handed to connect (serve and the demo pass the sim's)
    # is checked by the transport.
    with pytest.raises(ConfigError, match=r"^base_url: must use https"):
        OrderRouter.connect(Config(), signer(), "http://external-api.kalshi.com/trade-api/v2")


# --- on the wire ---------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context whose certificate (for 127.0.0.1) no CA vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class Recorder:
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        if request.path.endswith("/moved"):
            # A redirect to where the signed request was not addressed.
            raise web.HTTPTemporaryRedirect("/trade-api/v2/elsewhere")
        return web.json_response({"orders": []}, status=201)


@asynccontextmanager
async def serving(recorder: Recorder, context: ssl.SSLContext | None) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{runner.addresses[0][1]}/trade-api/v2"
    finally:
        await runner.cleanup()


@pytest.fixture
async def tls_url(tmp_path: Path) -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    async with serving(recorder, self_signed(tmp_path)) as url:
        yield url, recorder


async def test_a_certificate_nobody_vouches_for_is_refused(tls_url: tuple[str, Recorder]) -> None:
    url, recorder = tls_url
    async with HttpTransport(url, signer()) as transport:
        with pytest.raises(TransportError, match="certificate") as info:
            await transport.request("GET", "/portfolio/orders")
    # Refused in the handshake: nothing was sent, and the server saw no request.
    assert info.value.sent is False
    assert recorder.paths == []


async def test_verification_off_reaches_the_loopback_simulator(
    tls_url: tuple[str, Recorder],
) -> None:
    url, recorder = tls_url
    async with HttpTransport(url, signer(), verify_tls=False) as transport:
        response = await transport.request("GET", "/portfolio/orders")
    assert response.status == 201
    assert recorder.paths == ["/trade-api/v2/portfolio/orders"]


async def test_redirects_are_not_followed() -> None:
    recorder = Recorder()
    async with serving(recorder, None) as url, HttpTransport(url, signer()) as transport:
        response = await transport.request("POST", "/moved", body=b'{"orders": []}')
    # The signed request went where it was addressed and nowhere else...
    assert recorder.paths == ["/trade-api/v2/moved"]
    assert response.status == 307
    # ...and the redirect refuses the batch (nothing was placed there), it is not followed.
    reply = V2Dialect().decode_create(response.status, response.body, ["k1"])
    assert (reply.disposition, reply.http_status) == ("rejected", 307)
    assert isinstance(reply.outcomes["k1"], Rejected)
