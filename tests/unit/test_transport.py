"""TLS flags and failures: a process needs certificates or an explicit --insecure, and a failed
handshake is explained in one line."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator import certs, transport
from orchestrator.transport import ClientTLS

# What gRPC reports (its details) for each failure, as seen on this machine's grpcio.
WRONG_CA = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.9.1:40473: Tls handshake failed "
    "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
    "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate: OK"
)
WRONG_NAME = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.9.5:43445: Custom verification "
    "check failed with error: UNAUTHENTICATED: Hostname Verification Check failed."
)
PLAINTEXT_SERVER = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.9.2:40575: Tls handshake failed "
    "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER"
)
REFUSED = "failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.9.1:1: Connection refused"


def parse(argv: list[str], serves: str = "x") -> argparse.Namespace:
    p = argparse.ArgumentParser()
    transport.add_flags(p, serves=serves)
    return p.parse_args(argv)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return certs.ensure_cluster_pki(
        tmp_path_factory.mktemp("pki"), names={"m1": ["127.0.9.1"]}, now=datetime.now(UTC)
    )


def test_a_failed_handshake_is_explained() -> None:
    tls = ClientTLS(b"-----BEGIN CERTIFICATE-----", "/x/ca.crt")
    assert tls.explain(WRONG_CA) == "TLS: the server's certificate is not signed by the CA in /x/ca.crt"
    assert tls.explain(WRONG_NAME) == "TLS: the server's certificate does not name the address dialled"
    assert (
        tls.explain(PLAINTEXT_SERVER) == "TLS: the server does not speak TLS (is it running with --insecure?)"
    )
    assert tls.explain(REFUSED) is None  # not a TLS matter: the client fails over as before
    assert ClientTLS.insecure().explain(WRONG_CA) is None


def test_neither_certificates_nor_insecure_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"--tls-cert-file and --tls-key-file are required \(or --insecure"):
        transport.server_tls(parse([]))
    with pytest.raises(ValueError, match=r"--ca-file is required \(or --insecure"):
        transport.client_tls(parse([]))
    insecure = parse(["--insecure"])
    assert transport.server_tls(insecure) is None
    assert transport.client_tls(insecure).plaintext


def test_flags_name_unreadable_files(tmp_path: Path, pki: dict[str, Path]) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(ValueError, match=f"--ca-file {missing}: No such file"):
        transport.client_tls(parse(["--ca-file", str(missing)]))
    junk = tmp_path / "junk"
    junk.write_text("hello")
    with pytest.raises(ValueError, match="--tls-key-file .*: not a PEM file"):
        transport.server_tls(parse(["--tls-cert-file", str(pki["m1.crt"]), "--tls-key-file", str(junk)]))
    tls = transport.server_tls(
        parse(["--tls-cert-file", str(pki["m1.crt"]), "--tls-key-file", str(pki["m1.key"])])
    )
    assert tls is not None and tls.cert == pki["m1.crt"].read_bytes()
    client = transport.client_tls(parse(["--ca-file", str(pki["ca.crt"])]))
    assert client.ca == pki["ca.crt"].read_bytes() and client.scheme == "TLS"


def test_a_pure_client_has_no_certificate_flags() -> None:
    p = argparse.ArgumentParser()
    transport.add_flags(p)
    args = p.parse_args(["--ca-file", "ca.crt"])
    assert not hasattr(args, "tls_cert_file")
