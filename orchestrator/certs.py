"""A per-cluster certificate authority and the TLS certificates it issues.

Keys are EC P-256 (ECDSA with SHA-256). Generating one takes well under a millisecond where RSA 2048
takes tens of milliseconds, the certificates are a third of the size, and every peer Skiff meets
(Go's crypto/tls in kubectl, OpenSSL under Python's `ssl` and gRPC) verifies P-256 out of the box;
kubeadm offers the same choice (`encryptionAlgorithm: ECDSA-P256`).

The building blocks are pure: time is the `now` argument and the only randomness is key generation,
which a caller may do itself and pass in as `key=`. Serial numbers derive from the certificate's own
public key, and signatures are deterministic (RFC 6979), so a given key, name and `now` always give
the same certificate. Only `write_pair`, `read_pair` and `ensure_cluster_pki` touch the disk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Certificates start this long before `now`, so a peer whose clock lags a little still accepts them.
BACKDATE = timedelta(minutes=5)
# ensure_cluster_pki reissues a leaf that expires within this window.
RENEW_BEFORE = timedelta(days=30)
LOCAL_DNS = "localhost"
LOCAL_IP = "127.0.0.1"


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key. `load` guarantees the two belong together."""

    cert: x509.Certificate
    key: PrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): keep it 0600."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> KeyPair:
        """Parse PEM; raises ValueError for bad PEM, a key that is not EC or RSA, or a key of another cert."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"unsupported private key type {type(key).__name__}: want EC or RSA")
        if _spki(key.public_key()) != _spki(cert.public_key()):
            raise ValueError(f"the private key does not match the certificate for {common_name_of(cert)!r}")
        return cls(cert, key)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh EC P-256 private key: the one source of randomness in this module."""
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(common_name: str, now: datetime, days: int = 3650, *, key: PrivateKey | None = None) -> KeyPair:
    """A self-signed CA that may sign leaves only (path_length=0), valid from `now` for `days` days.

    `now` must be timezone-aware. A new P-256 key is generated unless `key` is given.
    """
    key = key if key is not None else new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial_for(key))
        .not_valid_before(_aware(now) - BACKDATE)
        .not_valid_after(_aware(now) + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return KeyPair(_sign(builder, key), key)


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    ips: Iterable[str] = (),
    dns: Iterable[str] = (),
    server: bool = True,
    client: bool = False,
    organization: str | None = None,
    now: datetime,
    days: int = 825,
    key: PrivateKey | None = None,
) -> KeyPair:
    """A leaf certificate for `common_name` signed by `ca`, valid from `now` for `days` days.

    The validity is cut short so it never outlasts the CA. `server` adds the serverAuth extended key
    usage, `client` clientAuth; `organization` becomes the subject's O (a client cert's CN and O are
    its user name and group). `ips` and `dns` become the SubjectAlternativeName, which a server
    certificate needs at least one of: TLS clients match the address they dialled against it and
    ignore the CN. Raises ValueError for a bad IP, no usage, or a server cert without names.
    """
    addresses = [ipaddress.ip_address(ip) for ip in ips]
    names = list(dns)
    if not (server or client):
        raise ValueError("a certificate needs server or client usage (or both)")
    if server and not (addresses or names):
        raise ValueError(f"server certificate {common_name!r} needs at least one IP or DNS name")
    key = key if key is not None else new_key()
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial_for(key))
        .not_valid_before(_aware(now) - BACKDATE)
        .not_valid_after(min(_aware(now) + timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(rsa_key=isinstance(key, rsa.RSAPrivateKey)), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca.cert), critical=False)
    )
    if addresses or names:
        general: list[x509.GeneralName] = [x509.IPAddress(a) for a in addresses]
        general += [x509.DNSName(n) for n in names]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return KeyPair(_sign(builder, ca.key), key)


def subject_alt_names(cert: x509.Certificate) -> tuple[set[IPAddress], set[str]]:
    """The IP addresses and DNS names a certificate is valid for (both empty without a SAN)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    ips = {ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IPAddress)}
    return ips, set(san.get_values_for_type(x509.DNSName))


def issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca` signed `cert` (issuer name and signature both checked)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def common_name_of(cert: x509.Certificate) -> str:
    """The subject's CN, or "" when it has none."""
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def server_names(addresses: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split a node's addresses into (IPs, DNS names) for its server certificate, in a stable order.

    When every IP is a loopback address the process is local, so 127.0.0.1 and "localhost" are
    added too: a client on this machine may dial either.
    """
    ips: list[str] = []
    dns: list[str] = []
    for address in addresses:
        try:
            ips.append(str(ipaddress.ip_address(address)))
        except ValueError:
            dns.append(address)
    if ips and all(ipaddress.ip_address(ip).is_loopback for ip in ips):
        ips.append(LOCAL_IP)
        dns.append(LOCAL_DNS)
    return _unique(ips), _unique(dns)


def reissue_reason(
    leaf: KeyPair | None, ca: KeyPair, ips: Iterable[str], dns: Iterable[str], now: datetime
) -> str | None:
    """Why `leaf` must be replaced by a server cert for exactly `ips` and `dns`, or None if it is fine.

    A leaf is replaced when it is missing or unreadable (None), was signed by another CA, expires
    within RENEW_BEFORE, or names other addresses than wanted.
    """
    if leaf is None:
        return "missing or unreadable"
    if not issued_by(leaf.cert, ca.cert):
        return "not issued by the current CA"
    if leaf.cert.not_valid_after_utc - RENEW_BEFORE <= _aware(now):
        return f"expires {leaf.cert.not_valid_after_utc.isoformat()}"
    have = subject_alt_names(leaf.cert)
    want = ({ipaddress.ip_address(ip) for ip in ips}, set(dns))
    if have != want:
        return f"names {_describe(have)}, want {_describe(want)}"
    return None


def write_pair(pair: KeyPair, cert_path: Path, key_path: Path) -> None:
    """Write the key (mode 0600, from its creation on) and then the certificate (0644).

    Each file is replaced atomically (a temporary file in the same directory, then a rename), so a
    reader sees the old file or the new one, never a torn one; a crash between the two renames leaves
    a key without its certificate, which `KeyPair.load` rejects.
    """
    _write_atomically(key_path, pair.key_pem(), 0o600)
    _write_atomically(cert_path, pair.cert_pem(), 0o644)


def read_pair(cert_path: Path, key_path: Path) -> KeyPair:
    """Load a pair written by `write_pair`; raises OSError or ValueError."""
    return KeyPair.load(Path(cert_path).read_bytes(), Path(key_path).read_bytes())


def ensure_cluster_pki(directory: Path, *, names: dict[str, list[str]], now: datetime) -> dict[str, Path]:
    """Make sure `directory` holds the cluster CA and one valid server certificate per name.

    `names` maps a certificate's name (its CN and file name) to its addresses: IPs and DNS names,
    completed by `server_names`. The CA (`ca.crt`, `ca.key`) is made once and then reused; a leaf
    (`<name>.crt`, `<name>.key`) is (re)issued when `reissue_reason` gives a reason, and otherwise left
    untouched, so calling this again is cheap and changes nothing. The directory is created 0700.

    Returns the paths keyed by file name: "ca.crt", "ca.key", then "<name>.crt" and "<name>.key" for
    every name. Raises ValueError when ca.crt exists but the CA cannot be used (no matching ca.key,
    not a CA, or expired): replacing it would silently invalidate every copy handed out, so that is
    left to a person (delete the directory to start a new cluster PKI).
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {"ca.crt": directory / "ca.crt", "ca.key": directory / "ca.key"}
    ca = _ensure_ca(paths["ca.crt"], paths["ca.key"], now)
    for name, addresses in names.items():
        if not name or "/" in name or name.startswith(".") or name == "ca":
            raise ValueError(f"bad certificate name {name!r}")
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        ips, dns = server_names(addresses)
        reason = reissue_reason(_try_read(cert_path, key_path), ca, ips, dns, now)
        if reason is not None:
            log.info("issuing server certificate name=%s ips=%s dns=%s reason=%r", name, ips, dns, reason)
            write_pair(issue(ca, name, ips=ips, dns=dns, now=now), cert_path, key_path)
        paths[f"{name}.crt"], paths[f"{name}.key"] = cert_path, key_path
    return paths


def _ensure_ca(cert_path: Path, key_path: Path, now: datetime) -> KeyPair:
    # ca.crt is written last, so its presence marks a complete CA; a lone ca.key is a crashed attempt.
    if not cert_path.exists():
        ca = new_ca(f"skiff-ca@{_aware(now):%Y%m%dT%H%M%SZ}", now)
        log.info("created cluster CA path=%s subject=%s", cert_path, ca.cert.subject.rfc4514_string())
        write_pair(ca, cert_path, key_path)
        return ca
    try:
        ca = read_pair(cert_path, key_path)
    except (OSError, ValueError) as e:
        raise ValueError(f"cluster CA {cert_path} is unusable: {e}") from e
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise ValueError(f"{cert_path} is not a CA certificate")
    if ca.cert.not_valid_after_utc <= _aware(now):
        raise ValueError(f"cluster CA {cert_path} expired {ca.cert.not_valid_after_utc.isoformat()}")
    return ca


def _try_read(cert_path: Path, key_path: Path) -> KeyPair | None:
    try:
        return read_pair(cert_path, key_path)
    except (OSError, ValueError):
        return None


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    path = Path(path)
    # mkstemp creates the file O_CREAT|O_EXCL with mode 0600, so a key is never readable by others.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return builder.sign(key, hashes.SHA256())


def _serial_for(key: PrivateKey) -> int:
    # Unique per certificate because every certificate gets a fresh key; 159 bits keeps it positive
    # and within RFC 5280's 20 octets.
    return (int.from_bytes(hashlib.sha256(_spki(key.public_key())).digest(), "big") >> 97) | 1


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_usage(*, cert_sign: bool = False, rsa_key: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=rsa_key and not cert_sign,  # RSA key transport; meaningless for EC
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (for example datetime.now(timezone.utc))")
    return now


def _describe(names: tuple[set[IPAddress], set[str]]) -> str:
    return "[" + ", ".join(sorted(str(ip) for ip in names[0]) + sorted(names[1])) + "]"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
