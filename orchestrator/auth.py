"""Bearer-token authentication and role-based authorization for the gRPC and REST APIs.

The tokens file maps each token to a role: "admin", "viewer", "node", or "node:<name>" for a node's
own credential (Kubernetes' Node authorizer: that credential may act only as that node). The file is
re-read when it changes, so removing a node's token revokes it without touching the others.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator import errors

ROLES = ("admin", "viewer", "node")
NODE_PREFIX = "node:"

# What each role may do: "read" (get, list, watch, status, logs), "write", "node" (the agent stream).
PERMISSIONS = {
    "admin": {"read", "write", "node"},
    "viewer": {"read"},
    "node": {"read", "node"},
}

Metadata = Iterable[tuple[str, str | bytes]] | None
RELOAD_INTERVAL = 1.0  # seconds between looks at the tokens file's mtime


@dataclass(frozen=True)
class Identity:
    """Who a token is: its role and, for a node's own credential, the node's name."""

    role: str
    node: str = ""  # "" for every role but a named node credential

    @property
    def credential(self) -> str:
        """The name limits count by: "node/<name>" for a node's own credential, else the role."""
        return f"node/{self.node}" if self.node else self.role


def _identity(value: str) -> Identity:
    if value.startswith(NODE_PREFIX) and len(value) > len(NODE_PREFIX):
        return Identity("node", value[len(NODE_PREFIX) :])
    if value not in ROLES:
        raise ValueError(f"unknown role in tokens file: {value!r}")
    return Identity(value)


def bearer(metadata: Metadata) -> str | None:
    """The bearer token of request metadata (None when there is no authorization entry)."""
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            return token if scheme.lower() == "bearer" else ""
    return None


class Authenticator:
    """Maps tokens to identities and checks permissions; `from_file` keeps following the file."""

    def __init__(self, tokens: dict[str, str], path: str | None = None) -> None:
        self.identities = {token: _identity(value) for token, value in tokens.items()}
        self.path = path
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()

    @classmethod
    def from_file(cls, path: str) -> Authenticator:
        with open(path) as f:
            return cls(json.load(f), path)

    def _file_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        """Re-read the tokens file if it changed; True when it did. A file that cannot be read or
        parsed leaves the current tokens in force (and is retried at the next call)."""
        stamp = self._file_stamp()
        if self.path is None or stamp == self._stamp:
            return False
        try:
            with open(self.path) as f:
                identities = {token: _identity(value) for token, value in json.load(f).items()}
        except (OSError, ValueError):
            return False
        self.identities, self._stamp = identities, stamp
        return True

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked >= RELOAD_INTERVAL:
            self._checked = now
            self.reload()

    def identity(self, metadata: Metadata) -> Identity:
        """The caller's identity; raises Unauthenticated for a missing or unknown token."""
        self._fresh()
        token = bearer(metadata)
        if token is None:
            raise errors.Unauthenticated("no bearer token in the request (authorization metadata)")
        found = self.identities.get(token)
        if found is None:
            raise errors.Unauthenticated("invalid bearer token")
        return found

    def role(self, metadata: Metadata) -> str:
        """The caller's role; raises Unauthenticated for a missing or unknown token."""
        return self.identity(metadata).role

    def require(self, metadata: Metadata, permission: str) -> str:
        role = self.role(metadata)
        if permission not in PERMISSIONS[role]:
            raise errors.PermissionDenied(f'role "{role}" may not {permission}')
        return role

    def valid(self, token: str) -> bool:
        """Whether `token` is (still) known: a revoked node's stream checks this."""
        self._fresh()
        return token in self.identities

    def token_for(self, role: str) -> str:
        for token, ident in self.identities.items():
            if ident.role == role and not ident.node:
                return token
        raise KeyError(role)

    def token_for_node(self, node: str) -> str:
        """The credential a master shows a node's agent (its logs server): the node's own token,
        else the shared node token."""
        for token, ident in self.identities.items():
            if ident.node == node:
                return token
        return self.token_for("node")
