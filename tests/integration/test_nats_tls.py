"""NATS over TLS: a ``tls://`` URL with ``IPAAS_NATS_TLS_CA_FILE`` verifies the server against a private CA.

A real ``nats-server`` with ``tls {}`` and a certificate from a CA made here: the bus
connects and does request/reply and JetStream through it; a client that does not trust
that CA (the system's CAs, or an impostor's CA) is refused, as is a plaintext client.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nats.aio.msg import Msg

from deploy.local.infra import NatsServer, free_port
from libs.common.bus import Bus, BusMisconfigured, BusUnavailable
from libs.common.settings import NatsSettings


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    cn: str, signer: tuple[ec.EllipticCurvePrivateKey, x509.Name] | None, *extensions: tuple[x509.ExtensionType, bool]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and its certificate for ``cn``, valid now, with ``extensions`` (each with its critical flag);
    self-signed unless ``signer`` (a key and its certificate's subject) is given."""
    key = ec.generate_private_key(ec.SECP256R1())
    signing_key, issuer = signer or (key, _name(cn))
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return key, builder.sign(signing_key, hashes.SHA256())


def make_ca(directory: Path, cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    key, cert = _certificate(cn, None, (x509.BasicConstraints(ca=True, path_length=None), True), (usage, True))
    path = directory / f"{cn}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_server_cert(directory: Path, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[Path, Path]:
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    key, cert = _certificate("nats", (ca_key, ca.subject), (names, False))
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[tuple[NatsServer, Path, Path]]:
    """A TLS-only nats-server; returns it, the CA that signed its certificate, and an impostor's CA."""
    ca_key, ca, ca_path = make_ca(tmp_path, "ipaas-test-ca")
    _, _, impostor_path = make_ca(tmp_path, "impostor-ca")
    cert, key = make_server_cert(tmp_path, ca_key, ca)
    config = tmp_path / "tls.conf"
    config.write_text(f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n  timeout: 2\n}}\n')
    server = NatsServer(tmp_path / "nats", free_port(), config_file=config)
    server.start()
    yield server, ca_path, impostor_path
    server.kill()


@pytest.mark.slow
async def test_the_bus_connects_over_tls_with_the_ca_it_is_given_and_refuses_any_other(
    tls_nats: tuple[NatsServer, Path, Path],
) -> None:
    server, ca, impostor = tls_nats
    url = f"tls://127.0.0.1:{server.port}"
    settings = NatsSettings(NATS_URL=url, tls_ca_file=str(ca), provision=True)
    bus = await Bus.connect(settings, name="tls-test", connect_deadline_seconds=10)
    try:
        assert bus.nc.connected_url is not None and bus.nc.connected_url.scheme == "tls"

        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data.upper())

        responder = await bus.nc.subscribe("svc.echo", cb=echo)
        assert (await bus.nc.request("svc.echo", b"over tls", timeout=5)).data == b"OVER TLS"
        await responder.unsubscribe()
        await bus.ensure_streams()
        ack = await bus.publish("events.t.w", b"{}", msg_id="tls-1")
        assert ack.stream == "EVENTS" and not ack.duplicate
    finally:
        await bus.drain()

    # The system's CAs do not know the private CA, and an impostor's CA does not match: both refused.
    for refused in (NatsSettings(NATS_URL=url), NatsSettings(NATS_URL=url, tls_ca_file=str(impostor))):
        with pytest.raises(BusUnavailable):
            await Bus.connect(refused, name="tls-test", connect_deadline_seconds=1.5)
    # Nor does a nats:// client without the CA (the server requires TLS, which it cannot verify).
    with pytest.raises((nats.errors.NoServersError, OSError, asyncio.TimeoutError)):
        nc = await nats.connect(
            f"nats://127.0.0.1:{server.port}", allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0
        )
        await nc.close()
    with pytest.raises(BusMisconfigured, match="IPAAS_NATS_TLS_CA_FILE"):
        await Bus.connect(
            NatsSettings(NATS_URL=url, tls_ca_file=str(ca.parent / "missing.crt")), connect_deadline_seconds=1
        )
