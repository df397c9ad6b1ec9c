"""Bearer-token authentication and role-based authorization for the gRPC services."""

from __future__ import annotations

import json
from collections.abc import Iterable

from orchestrator import errors

ROLES = ("admin", "viewer", "node")

# What each role may do: "read" (get, list, watch, status, logs), "write", "node" (the agent stream).
PERMISSIONS = {
    "admin": {"read", "write", "node"},
    "viewer": {"read"},
    "node": {"read", "node"},
}


class Authenticator:
    """Maps tokens (from the tokens file: {"token": "role"}) to roles and checks permissions."""

    def __init__(self, tokens: dict[str, str]) -> None:
        bad = {r for r in tokens.values() if r not in ROLES}
        if bad:
            raise ValueError(f"unknown role(s) in tokens file: {', '.join(sorted(bad))}")
        self.tokens = dict(tokens)

    @classmethod
    def from_file(cls, path: str) -> Authenticator:
        with open(path) as f:
            return cls(json.load(f))

    def role(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """The caller's role; raises Unauthenticated for a missing or unknown token."""
        for key, value in metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                scheme, _, token = text.partition(" ")
                if scheme.lower() == "bearer" and token in self.tokens:
                    return self.tokens[token]
                raise errors.Unauthenticated("invalid bearer token")
        raise errors.Unauthenticated("no bearer token in the request (authorization metadata)")

    def require(self, metadata: Iterable[tuple[str, str | bytes]] | None, permission: str) -> str:
        role = self.role(metadata)
        if permission not in PERMISSIONS[role]:
            raise errors.PermissionDenied(f'role "{role}" may not {permission}')
        return role

    def token_for(self, role: str) -> str:
        for token, r in self.tokens.items():
            if r == role:
                return token
        raise KeyError(role)
