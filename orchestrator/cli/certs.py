"""`skiff certs`: a cluster CA and certificates for hosts that `skiff up` does not start.

    skiff certs --dir pki m1=10.0.0.1 m2=10.0.0.2 worker-1=10.0.0.11,worker-1.lan lb=10.0.0.5

makes pki/ca.crt and ca.key once (later runs reuse them), then pki/<name>.crt and <name>.key for
each NAME=ADDRESS[,ADDRESS...]: a server certificate naming those IPs and DNS names. A certificate
that already names exactly those addresses and is far from expiry is left as it is. Copy ca.crt to
every host and each host's own pair to it; keys are 0600 and the directory 0700.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from orchestrator import certs
from orchestrator.cli.parser import Subcommands, UsageError


def parse_names(words: list[str]) -> dict[str, list[str]]:
    """["m1=10.0.0.1,m1.lan", ...] -> {"m1": ["10.0.0.1", "m1.lan"]}; UsageError names a bad word."""
    names: dict[str, list[str]] = {}
    for word in words:
        name, sep, addresses = word.partition("=")
        parts = [a.strip() for a in addresses.split(",") if a.strip()]
        if not sep or not name or not parts:
            raise UsageError(f"{word!r}: expected NAME=ADDRESS[,ADDRESS...], e.g. m1=10.0.0.1")
        if name in names:
            raise UsageError(f"{name!r} is named twice")
        names[name] = parts
    return names


def cmd_certs(args: argparse.Namespace) -> int:
    names = parse_names(args.names)
    directory = Path(args.dir).expanduser()
    try:
        paths = certs.ensure_cluster_pki(directory, names=names, now=datetime.now(UTC))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"CA: {paths['ca.crt']} (copy it to every host; keep ca.key off them)")
    for name in names:
        cert = certs.read_pair(paths[f"{name}.crt"], paths[f"{name}.key"]).cert
        ips, dns = certs.subject_alt_names(cert)
        valid = ", ".join([*sorted(str(ip) for ip in ips), *sorted(dns)])
        print(f"{name}: {paths[f'{name}.crt']} and {paths[f'{name}.key']} (for {valid})")
    return 0


def register(sub: Subcommands) -> None:
    p = sub.add("certs", "Make the cluster CA and server certificates for named hosts", local=cmd_certs)
    p.add_argument("--dir", default="pki", help="where the CA and the certificates live (default ./pki)")
    p.add_argument("names", nargs="+", metavar="NAME=ADDRESS[,ADDRESS...]", help="a host and its addresses")
