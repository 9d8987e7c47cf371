"""The node's TLS identity: one key and self-signed certificate per node, shared by its
peer-facing listeners (lobby and DHT), and channels pinned to another node's certificate.

A node's certificate reaches its peers inside what the node signs (its DHT node info; its
agents' agent infos), so a channel to a peer trusts exactly the certificate that signed
info names: it is the channel's only root, and every certificate names the same host,
`SERVER_NAME`, which the channel expects in place of the address it dials. The
fingerprint, for people and logs, is the SHA-256 of the certificate's DER bytes.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kizuna_node.common.errors import InvalidArgument, PermissionDenied, Unavailable

SERVER_NAME = "kizuna.node"
KEY_FILE = "node.key"
CERT_FILE = "node.crt"
VALID_DAYS = 3650
FINGERPRINT_BYTES = 32


def fingerprint(certificate_der: bytes) -> str:
    """The certificate's SHA-256 as hex: what a person compares and a bootstrap pin names."""
    return hashlib.sha256(certificate_der).hexdigest()


def der_to_pem(certificate_der: bytes) -> bytes:
    return x509.load_der_x509_certificate(certificate_der).public_bytes(serialization.Encoding.PEM)


def check_certificate(certificate_der: bytes, what: str = "certificate") -> None:
    """Refuses bytes that are no X.509 certificate (a signed info naming garbage)."""
    try:
        x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise InvalidArgument(f"{what} is not a DER X.509 certificate") from None


@dataclass(frozen=True)
class NodeTls:
    """The node's TLS key and certificate, as PEM for gRPC and the certificate as DER for
    the signed infos."""

    key_pem: bytes
    certificate_pem: bytes
    certificate_der: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate_der)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key_pem, self.certificate_pem)])


def _make(key_path: Path, cert_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    key_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another service of the node made it a moment ago
        return
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    tmp = cert_path.with_suffix(".tmp")
    tmp.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, cert_path)


def load_or_create(directory) -> NodeTls:
    """The node's TLS identity in `directory` (node.key, node.crt), made when missing; the
    key is readable by its owner only."""
    directory = Path(directory)
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    if not key_path.exists():
        _make(key_path, cert_path)
    for _ in range(50):  # a sibling service may be writing the certificate right now
        if cert_path.exists():
            break
        time.sleep(0.05)
    return load(directory)


def load(directory) -> NodeTls:
    directory = Path(directory)
    key_pem = (directory / KEY_FILE).read_bytes()
    certificate_pem = (directory / CERT_FILE).read_bytes()
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    return NodeTls(key_pem, certificate_pem, certificate.public_bytes(serialization.Encoding.DER))


def pinned_credentials(certificate_der: bytes) -> grpc.ChannelCredentials:
    """Channel credentials that accept one server certificate: `certificate_der`."""
    return grpc.ssl_channel_credentials(root_certificates=der_to_pem(certificate_der))


PINNED_CHANNEL_OPTIONS = [("grpc.ssl_target_name_override", SERVER_NAME), ("grpc.default_authority", SERVER_NAME)]


def split_pin(address: str) -> tuple[str, str]:
    """`HOST:PORT` or `HOST:PORT#FINGERPRINT` as (address, fingerprint or "")."""
    address, _, pin = address.partition("#")
    pin = pin.strip().lower().removeprefix("sha256:")
    if pin and (len(pin) != 2 * FINGERPRINT_BYTES or any(c not in "0123456789abcdef" for c in pin)):
        raise InvalidArgument(f"{pin!r} is not a SHA-256 certificate fingerprint (64 hex digits)")
    return address.strip(), pin


async def fetch_certificate(address: str, expected_fingerprint: str = "", timeout: float = 5.0,
                            retry_every: float = 0.1) -> bytes:
    """The certificate the TLS server at `address` presents, as DER. With
    `expected_fingerprint` it must be that one (PermissionDenied otherwise); without, the
    caller trusts it on first use. A refused connection is tried again every `retry_every`
    seconds (the peer may be starting) until `timeout`; then Unavailable."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # we pin below; the certificate is self-signed
    context.set_alpn_protocols(["h2"])
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(
                host.strip("[]"), int(port), ssl=context, server_hostname=SERVER_NAME),
                max(0.01, deadline - time.monotonic()))
            break
        except (OSError, ValueError, asyncio.TimeoutError, ssl.SSLError) as exc:
            if not isinstance(exc, ValueError) and time.monotonic() + retry_every < deadline:
                await asyncio.sleep(retry_every)
                continue
            raise Unavailable(f"no TLS server answered at {address}: {exc or type(exc).__name__}") from None
    try:
        certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        # Not close(): an orderly TLS shutdown waits (up to 30 s) for the server's
        # close_notify, which a gRPC server waiting for its HTTP/2 preface never sends.
        writer.transport.abort()
    if expected_fingerprint and fingerprint(certificate) != expected_fingerprint:
        raise PermissionDenied(f"the node at {address} presents certificate {fingerprint(certificate)},"
                               f" not the pinned {expected_fingerprint}")
    return certificate
