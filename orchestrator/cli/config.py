"""The CLI's client configuration: which masters to call, with which token, trusting which CA.

Lookup order (first wins): --config FILE, $SKIFF_CONFIG, ~/.skiff/config.json. Then --server A,B (or
$SKIFF_SERVER) replaces the masters, --token (or $SKIFF_TOKEN) the token and --ca-file (or
$SKIFF_CA_FILE) the CA file; --insecure (or "insecure": true) dials the masters in plaintext.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.transport import ClientTLS


class ConfigError(Exception):
    """The configuration cannot be read or has no masters/token; the message is one line."""


def default_config_path() -> Path:
    return Path.home() / ".skiff" / "config.json"


@dataclass
class ClientConfig:
    masters: list[str]
    token: str
    path: str = ""
    lb: dict[str, Any] = field(default_factory=dict)
    state_dir: str = ""
    ca_file: str = ""
    insecure: bool = False

    def tls(self) -> ClientTLS:
        """How to dial the masters; raises ConfigError (one line) when neither a CA nor --insecure is set."""
        if self.insecure:
            return ClientTLS.insecure()
        if not self.ca_file:
            raise ConfigError("no CA to check the masters' certificates: pass --ca-file FILE (or --insecure)")
        try:
            return ClientTLS.from_file(self.ca_file)
        except ValueError as e:
            raise ConfigError(str(e).replace("--ca-file", "CA file", 1)) from None

    @property
    def lb_http_address(self) -> str:
        """'127.0.0.1:8080' — where a user can curl the balancer's HTTP (ingress) port; '' if none."""
        if not self.lb or not self.lb.get("address"):
            return ""
        port = self.lb.get("httpPort")
        return f"{self.lb['address']}:{port}" if port else str(self.lb["address"])


def config_path(flag: str | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """(path, explicit): explicit when given by flag or environment (then it must exist)."""
    if flag:
        return Path(flag).expanduser(), True
    if env.get("SKIFF_CONFIG"):
        return Path(env["SKIFF_CONFIG"]).expanduser(), True
    return default_config_path(), False


def load_config(
    config: str | None = None,
    server: str | None = None,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    ca_file: str | None = None,
    insecure: bool = False,
) -> ClientConfig:
    """Resolve the client configuration with the precedence described in the module docstring."""
    env = os.environ if env is None else env
    path, explicit = config_path(config, env)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"cannot read config {path}: not a JSON object")
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")
    masters = list(data.get("masters") or [])
    server = server or env.get("SKIFF_SERVER")
    if server:
        masters = [s.strip() for s in server.split(",") if s.strip()]
    if token is not None:  # an explicit --token, even "", wins
        tok = token
    else:
        tok = env.get("SKIFF_TOKEN") or data.get("token") or ""
    if not masters:
        raise ConfigError(
            f"no masters configured: run 'skiff up', or pass --server HOST:PORT (no config at {path})"
        )
    return ClientConfig(
        masters=masters,
        token=tok,
        path=str(path) if path.exists() else "",
        lb=dict(data.get("lb") or {}),
        state_dir=str(data.get("stateDir") or ""),
        ca_file=ca_file or env.get("SKIFF_CA_FILE") or str(data.get("caFile") or ""),
        insecure=insecure or data.get("insecure") is True,
    )
