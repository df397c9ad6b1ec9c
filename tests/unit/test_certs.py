"""The cluster CA and its certificates: extensions, chains, files, reuse, and real TLS handshakes."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from orchestrator import certs
from orchestrator.certs import KeyPair

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


# EC keys take about a millisecond to make, so the shared CAs are built at import.
CA = certs.new_ca("test-ca", NOW)
OTHER_CA = certs.new_ca("other-ca", NOW)


@pytest.fixture
def ca() -> KeyPair:
    return CA


@pytest.fixture
def other_ca() -> KeyPair:
    return OTHER_CA


def ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[Any]:
    return cert.extensions.get_extension_for_class(kind)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------------------------
# The CA and leaf certificates


def test_ca_is_a_self_signed_leaf_only_ca(ca: KeyPair) -> None:
    cert = ca.cert
    basic = ext(cert, x509.BasicConstraints)
    usage = ext(cert, x509.KeyUsage)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        ca.key.public_key()
    )
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey) and ca.key.curve.name == "secp256r1"
    assert cert.subject == cert.issuer and certs.common_name_of(cert) == "test-ca"
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_before_utc == NOW - certs.BACKDATE
    assert cert.not_valid_after_utc == NOW + timedelta(days=3650)


@dataclass(frozen=True)
class LeafCase:
    id: str
    kwargs: dict[str, Any]
    ips: set[str]
    dns: set[str]
    usages: set[x509.ObjectIdentifier]
    subject: str


LEAF_CASES = [
    LeafCase("server-ip", {"ips": ["127.0.31.1"]}, {"127.0.31.1"}, set(), {SERVER}, "CN=m1"),
    LeafCase(
        "server-ips-and-dns",
        {"ips": ["127.0.33.1", "::1"], "dns": ["localhost", "lb.skiff"]},
        {"127.0.33.1", "::1"},
        {"localhost", "lb.skiff"},
        {SERVER},
        "CN=m1",
    ),
    LeafCase(
        "client-node-identity",
        {"server": False, "client": True, "organization": "node"},
        set(),
        set(),
        {CLIENT},
        "CN=m1,O=node",
    ),
    LeafCase(
        "server-and-client",
        {"ips": ["127.0.0.1"], "client": True},
        {"127.0.0.1"},
        set(),
        {SERVER, CLIENT},
        "CN=m1",
    ),
]


@pytest.mark.parametrize("case", LEAF_CASES, ids=[c.id for c in LEAF_CASES])
def test_issue_sets_names_usages_and_chain(ca: KeyPair, case: LeafCase) -> None:
    leaf = certs.issue(ca, "m1", now=NOW, **case.kwargs).cert
    ips, dns = certs.subject_alt_names(leaf)
    assert ({str(ip) for ip in ips}, dns) == (case.ips, case.dns)
    assert set(ext(leaf, x509.ExtendedKeyUsage).value) == case.usages
    assert leaf.subject.rfc4514_string() == case.subject
    basic = ext(leaf, x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = ext(leaf, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    ca_ski = ext(ca.cert, x509.SubjectKeyIdentifier).value.digest
    assert ext(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    assert leaf.issuer == ca.cert.subject
    leaf.verify_directly_issued_by(ca.cert)
    assert (leaf.not_valid_before_utc, leaf.not_valid_after_utc) == (
        NOW - certs.BACKDATE,
        NOW + timedelta(days=825),
    )


def test_a_leaf_of_another_ca_does_not_verify(ca: KeyPair, other_ca: KeyPair) -> None:
    stranger = certs.issue(other_ca, "m1", ips=["127.0.0.1"], now=NOW).cert
    with pytest.raises((ValueError, InvalidSignature)):
        stranger.verify_directly_issued_by(ca.cert)
    assert not certs.issued_by(stranger, ca.cert)
    assert certs.issued_by(stranger, other_ca.cert)


def test_a_leaf_never_outlives_its_ca() -> None:
    short_ca = certs.new_ca("short", NOW, days=10)
    leaf = certs.issue(short_ca, "m1", ips=["127.0.0.1"], now=NOW, days=825)
    assert leaf.cert.not_valid_after_utc == short_ca.cert.not_valid_after_utc == NOW + timedelta(days=10)


def test_the_same_key_and_time_give_the_same_certificate(ca: KeyPair) -> None:
    key = certs.new_key()
    first = certs.issue(ca, "m1", ips=["127.0.0.1"], now=NOW, key=key)
    again = certs.issue(ca, "m1", ips=["127.0.0.1"], now=NOW, key=key)
    other = certs.issue(ca, "m1", ips=["127.0.0.1"], now=NOW)
    assert first.cert_pem() == again.cert_pem()
    assert first.cert.serial_number != other.cert.serial_number
    assert 0 < first.cert.serial_number < 2**159


BAD_ISSUES: list[tuple[str, dict[str, Any], str]] = [
    ("no-usage", {"server": False, "ips": ["127.0.0.1"]}, "server or client"),
    ("server-without-names", {}, "at least one IP or DNS name"),
    ("bad-ip", {"ips": ["127.0.0.300"]}, "does not appear to be an IPv4 or IPv6 address"),
    ("naive-now", {"ips": ["127.0.0.1"], "now": datetime(2026, 3, 1)}, "timezone-aware"),
]


@pytest.mark.parametrize(("kwargs", "message"), [c[1:] for c in BAD_ISSUES], ids=[c[0] for c in BAD_ISSUES])
def test_issue_rejects(ca: KeyPair, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        certs.issue(ca, "m1", **{"now": NOW, **kwargs})


# ---------------------------------------------------------------------------------------------------
# PEM and files


def test_pem_round_trip(ca: KeyPair) -> None:
    leaf = certs.issue(ca, "m1", ips=["127.0.0.1"], now=NOW)
    loaded = KeyPair.load(leaf.cert_pem(), leaf.key_pem())
    assert loaded.cert == leaf.cert and loaded.key_pem() == leaf.key_pem()
    assert leaf.key_pem().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_load_rejects_a_key_of_another_certificate(ca: KeyPair) -> None:
    leaf = certs.issue(ca, "m1", ips=["127.0.0.1"], now=NOW)
    with pytest.raises(ValueError, match="does not match"):
        KeyPair.load(leaf.cert_pem(), ca.key_pem())


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
def test_write_pair_modes(ca: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: int) -> None:
    # Record the mode each file has while its bytes are being flushed, before any rename or chmod.
    modes_while_written: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        modes_while_written.append(stat.S_IMODE(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(certs.os, "fsync", spy)
    crt, key = tmp_path / "m1.crt", tmp_path / "m1.key"
    key.write_text("an older, world-readable key")
    key.chmod(0o644)
    old = os.umask(umask)
    try:
        certs.write_pair(ca, crt, key)
    finally:
        os.umask(old)
    assert (mode(key), mode(crt)) == (0o600, 0o644)
    assert modes_while_written == [0o600, 0o600]
    assert certs.read_pair(crt, key).cert == ca.cert
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.crt", "m1.key"]  # no temporary left


def test_a_failed_write_leaves_the_old_file(
    ca: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crt, key = tmp_path / "m1.crt", tmp_path / "m1.key"
    certs.write_pair(ca, crt, key)
    before = key.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(certs.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        certs.write_pair(certs.new_ca("new", NOW), crt, key)
    assert key.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.crt", "m1.key"]


# ---------------------------------------------------------------------------------------------------
# Pure decisions of ensure_cluster_pki

SERVER_NAMES = [
    ("loopback-adds-local", ["127.0.31.1"], ["127.0.31.1", "127.0.0.1"], ["localhost"]),
    ("already-local", ["127.0.0.1", "localhost"], ["127.0.0.1"], ["localhost"]),
    ("routable-stays-exact", ["10.0.0.5", "m1.example"], ["10.0.0.5"], ["m1.example"]),
    ("mixed-not-all-loopback", ["127.0.31.1", "10.0.0.5"], ["127.0.31.1", "10.0.0.5"], []),
    ("dns-only", ["m1.example"], [], ["m1.example"]),
    ("ipv6-loopback", ["::1"], ["::1", "127.0.0.1"], ["localhost"]),
]


@pytest.mark.parametrize(
    ("addresses", "ips", "dns"), [c[1:] for c in SERVER_NAMES], ids=[c[0] for c in SERVER_NAMES]
)
def test_server_names(addresses: list[str], ips: list[str], dns: list[str]) -> None:
    assert certs.server_names(addresses) == (ips, dns)


REISSUE_IPS, REISSUE_DNS = ["127.0.31.1", "127.0.0.1"], ["localhost"]
GOOD = certs.issue(CA, "m1", ips=REISSUE_IPS, dns=REISSUE_DNS, now=NOW)
RENEW_AT = GOOD.cert.not_valid_after_utc - certs.RENEW_BEFORE
REISSUES: list[tuple[str, KeyPair | None, datetime, str | None]] = [
    ("up-to-date", GOOD, NOW, None),
    ("missing", None, NOW, "missing"),
    (
        "other-ca",
        certs.issue(OTHER_CA, "m1", ips=REISSUE_IPS, dns=REISSUE_DNS, now=NOW),
        NOW,
        "not issued by the current CA",
    ),
    (
        "ip-changed",
        certs.issue(CA, "m1", ips=["127.0.31.9", "127.0.0.1"], dns=REISSUE_DNS, now=NOW),
        NOW,
        "names",
    ),
    ("dns-dropped", certs.issue(CA, "m1", ips=REISSUE_IPS, now=NOW), NOW, "names"),
    (
        "ip-added",
        certs.issue(CA, "m1", ips=[*REISSUE_IPS, "127.0.31.2"], dns=REISSUE_DNS, now=NOW),
        NOW,
        "names",
    ),
    ("expiring", GOOD, RENEW_AT, "expires"),
    ("not-yet-expiring", GOOD, RENEW_AT - timedelta(seconds=1), None),
]


@pytest.mark.parametrize(("leaf", "now", "want"), [c[1:] for c in REISSUES], ids=[c[0] for c in REISSUES])
def test_reissue_reason(leaf: KeyPair | None, now: datetime, want: str | None) -> None:
    reason = certs.reissue_reason(leaf, CA, REISSUE_IPS, REISSUE_DNS, now)
    if want is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(want), reason


# ---------------------------------------------------------------------------------------------------
# ensure_cluster_pki on disk

NAMES = {"m1": ["127.0.31.1"], "apiserver-lb": ["127.0.33.1"]}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_ensure_creates_the_ca_and_leaves(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    paths = certs.ensure_cluster_pki(directory, names=NAMES, now=NOW)
    assert set(paths) == {"ca.crt", "ca.key", "m1.crt", "m1.key", "apiserver-lb.crt", "apiserver-lb.key"}
    assert all(p.parent == directory and p.name == k for k, p in paths.items())
    assert mode(directory) == 0o700
    assert {k: mode(p) for k, p in paths.items()} == {
        k: 0o600 if k.endswith(".key") else 0o644 for k in paths
    }
    ca = certs.read_pair(paths["ca.crt"], paths["ca.key"])
    for name, addresses in NAMES.items():
        leaf = certs.read_pair(paths[f"{name}.crt"], paths[f"{name}.key"]).cert
        leaf.verify_directly_issued_by(ca.cert)
        ips, dns = certs.subject_alt_names(leaf)
        assert ips == {ipaddress.ip_address(a) for a in [*addresses, "127.0.0.1"]} and dns == {"localhost"}
        assert certs.common_name_of(leaf) == name
        assert list(ext(leaf, x509.ExtendedKeyUsage).value) == [SERVER]
    assert sorted(p.name for p in directory.iterdir()) == sorted(paths)


def test_ensure_again_changes_nothing(tmp_path: Path) -> None:
    certs.ensure_cluster_pki(tmp_path, names=NAMES, now=NOW)
    before = snapshot(tmp_path)
    certs.ensure_cluster_pki(tmp_path, names=NAMES, now=NOW + timedelta(days=1))
    assert snapshot(tmp_path) == before


def test_ensure_reuses_an_existing_ca(tmp_path: Path, ca: KeyPair) -> None:
    certs.write_pair(ca, tmp_path / "ca.crt", tmp_path / "ca.key")
    paths = certs.ensure_cluster_pki(tmp_path, names={"m1": ["127.0.31.1"]}, now=NOW)
    assert paths["ca.crt"].read_bytes() == ca.cert_pem()
    assert certs.read_pair(paths["m1.crt"], paths["m1.key"]).cert.issuer == ca.cert.subject
    certs.read_pair(paths["m1.crt"], paths["m1.key"]).cert.verify_directly_issued_by(ca.cert)


def test_ensure_reissues_only_the_leaf_whose_names_changed(tmp_path: Path) -> None:
    certs.ensure_cluster_pki(tmp_path, names=NAMES, now=NOW)
    before = snapshot(tmp_path)
    moved = {**NAMES, "m1": ["127.0.31.7"]}
    certs.ensure_cluster_pki(tmp_path, names=moved, now=NOW)
    after = snapshot(tmp_path)
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["m1.crt", "m1.key"]
    ips, _ = certs.subject_alt_names(x509.load_pem_x509_certificate(after["m1.crt"]))
    assert ips == {ipaddress.ip_address("127.0.31.7"), ipaddress.ip_address("127.0.0.1")}


def test_ensure_replaces_a_leaf_with_a_mismatched_key(tmp_path: Path) -> None:
    paths = certs.ensure_cluster_pki(tmp_path, names={"m1": ["127.0.31.1"]}, now=NOW)
    paths["m1.key"].write_bytes(certs.new_ca("x", NOW).key_pem())  # as if a crash split the pair
    certs.ensure_cluster_pki(tmp_path, names={"m1": ["127.0.31.1"]}, now=NOW)
    certs.read_pair(paths["m1.crt"], paths["m1.key"])  # raises if still mismatched


BROKEN_CA: list[tuple[str, Callable[[Path], None], str]] = [
    ("key-missing", lambda d: (d / "ca.key").unlink(), "unusable"),
    (
        "not-a-ca",
        lambda d: certs.write_pair(
            certs.issue(certs.read_pair(d / "ca.crt", d / "ca.key"), "x", ips=["127.0.0.1"], now=NOW),
            d / "ca.crt",
            d / "ca.key",
        ),
        "not a CA",
    ),
    (
        "expired",
        lambda d: certs.write_pair(
            certs.new_ca("old", NOW - timedelta(days=20), days=10), d / "ca.crt", d / "ca.key"
        ),
        "expired",
    ),
]


@pytest.mark.parametrize(("breaks", "message"), [c[1:] for c in BROKEN_CA], ids=[c[0] for c in BROKEN_CA])
def test_ensure_refuses_to_replace_an_unusable_ca(
    tmp_path: Path, breaks: Callable[[Path], None], message: str
) -> None:
    certs.ensure_cluster_pki(tmp_path, names={}, now=NOW)
    breaks(tmp_path)
    ca_before = (tmp_path / "ca.crt").read_bytes()
    with pytest.raises(ValueError, match=message):
        certs.ensure_cluster_pki(tmp_path, names={"m1": ["127.0.31.1"]}, now=NOW)
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert not (tmp_path / "m1.crt").exists()


def test_ensure_makes_a_new_ca_when_only_a_stray_key_is_left(tmp_path: Path) -> None:
    (tmp_path / "ca.key").write_bytes(b"half-written")
    paths = certs.ensure_cluster_pki(tmp_path, names={}, now=NOW)
    assert (
        certs.read_pair(paths["ca.crt"], paths["ca.key"])
        .cert.extensions.get_extension_for_class(x509.BasicConstraints)
        .value.ca
    )


@pytest.mark.parametrize("name", ["", "ca", "../m1", ".hidden"], ids=["empty", "ca", "path", "hidden"])
def test_ensure_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="bad certificate name"):
        certs.ensure_cluster_pki(tmp_path, names={name: ["127.0.0.1"]}, now=NOW)


# ---------------------------------------------------------------------------------------------------
# Real TLS handshakes on 127.0.0.1


@pytest.fixture
def files(tmp_path: Path) -> Iterator[Callable[[KeyPair], tuple[Path, Path]]]:
    """Writes a pair to fresh files and returns (cert, key) paths."""
    count = iter(range(1000))

    def write(pair: KeyPair) -> tuple[Path, Path]:
        n = next(count)
        cert, key = tmp_path / f"{n}.crt", tmp_path / f"{n}.key"
        certs.write_pair(pair, cert, key)
        return cert, key

    yield write


def client_context(ca_file: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    # Strict RFC 5280 checks (Python 3.13's default): AKI in leaves, SKI and critical constraints in CAs.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def server_context(cert: tuple[Path, Path], client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        context.load_verify_locations(cafile=str(client_ca))
    return context


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "127.0.0.1"
) -> tuple[bytes | BaseException, dict[str, Any] | BaseException]:
    """Connect once over 127.0.0.1; returns (what the client read or its error, the server's peer cert or error)."""
    with socket.create_server(("127.0.0.1", 0)) as listener, ThreadPoolExecutor(1) as pool:
        listener.settimeout(5)

        def serve() -> dict[str, Any]:
            conn, _ = listener.accept()
            conn.settimeout(5)
            with server.wrap_socket(conn, server_side=True) as tls:
                peer = tls.getpeercert() or {}
                tls.sendall(b"ok")
                return dict(peer)

        served = pool.submit(serve)
        client_result: bytes | BaseException
        try:
            with socket.create_connection(listener.getsockname(), timeout=5) as raw:
                with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    client_result = tls.recv(2)
        except (OSError, ssl.SSLError) as e:
            client_result = e
        server_result: dict[str, Any] | BaseException
        try:
            server_result = served.result(timeout=10)
        except (OSError, ssl.SSLError) as e:
            server_result = e
    return client_result, server_result


@dataclass(frozen=True)
class ServerCase:
    id: str
    signer: str  # "ca" or "other"
    kwargs: dict[str, Any]
    server_hostname: str
    error: str | None  # a piece of the client's verify_message, None for success


SERVER_CASES = [
    ServerCase("ip-in-san", "ca", {"ips": ["127.0.0.1"]}, "127.0.0.1", None),
    ServerCase("localhost-dns", "ca", {"ips": ["127.0.31.1"], "dns": ["localhost"]}, "localhost", None),
    ServerCase("other-ip", "ca", {"ips": ["127.0.0.2"]}, "127.0.0.1", "IP address mismatch"),
    ServerCase("other-name", "ca", {"dns": ["m1.skiff"]}, "localhost", "Hostname mismatch"),
    ServerCase("other-ca", "other", {"ips": ["127.0.0.1"]}, "127.0.0.1", "unable to get local issuer"),
    ServerCase(
        "client-only-cert",
        "ca",
        {"ips": ["127.0.0.1"], "server": False, "client": True},
        "127.0.0.1",
        "unsuitable certificate purpose",
    ),
]


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.id for c in SERVER_CASES])
def test_tls_client_verifies_the_server(
    ca: KeyPair, other_ca: KeyPair, files: Callable[[KeyPair], tuple[Path, Path]], case: ServerCase
) -> None:
    signer = ca if case.signer == "ca" else other_ca
    leaf = files(certs.issue(signer, "m1", now=datetime.now(UTC), **case.kwargs))
    ca_file, _ = files(ca)
    client_result, _ = handshake(server_context(leaf), client_context(ca_file), case.server_hostname)
    if case.error is None:
        assert client_result == b"ok"
    else:
        assert isinstance(client_result, ssl.SSLCertVerificationError), client_result
        assert case.error in client_result.verify_message


def test_tls_with_the_files_of_ensure_cluster_pki(tmp_path: Path) -> None:
    paths = certs.ensure_cluster_pki(tmp_path / "pki", names={"m1": ["127.0.31.1"]}, now=datetime.now(UTC))
    server = server_context((paths["m1.crt"], paths["m1.key"]))
    for hostname in ["127.0.0.1", "localhost"]:
        assert handshake(server, client_context(paths["ca.crt"]), hostname)[0] == b"ok"


@pytest.mark.parametrize(
    ("kwargs", "accepted"),
    [
        ({"server": False, "client": True, "organization": "node"}, True),
        ({"server": True, "client": False, "ips": ["127.0.0.1"], "organization": "node"}, False),
    ],
    ids=["client-cert-accepted", "server-only-cert-refused-as-client"],
)
def test_tls_server_verifies_a_client_cert(
    ca: KeyPair, files: Callable[[KeyPair], tuple[Path, Path]], kwargs: dict[str, Any], accepted: bool
) -> None:
    ca_file, _ = files(ca)
    server_cert = files(certs.issue(ca, "m1", ips=["127.0.0.1"], now=datetime.now(UTC)))
    client_cert = files(certs.issue(ca, "w1", now=datetime.now(UTC), **kwargs))
    client_result, server_result = handshake(
        server_context(server_cert, client_ca=ca_file), client_context(ca_file, client_cert)
    )
    if accepted:
        assert client_result == b"ok"
        assert isinstance(server_result, dict)
        subject = {k: v for rdn in server_result["subject"] for k, v in rdn}
        assert subject == {"commonName": "w1", "organizationName": "node"}
    else:
        assert isinstance(server_result, ssl.SSLCertVerificationError), server_result
        assert "unsuitable certificate purpose" in server_result.verify_message
        assert not isinstance(client_result, bytes) or client_result == b""
