"""Endpoint choice: which ready endpoint of a backend gets the next connection.

Pure: no clock, no I/O. Time (`now`) is an argument and randomness is an injected `random.Random`, so
tests drive both. A `Picker` keeps the per-backend state that a policy needs between picks (the
round-robin cursor, the ClientIP session table); the proxy keeps one per backend across table changes.

Policies: round-robin (default), least-connections (fewest active connections, ties in round-robin
order), power-of-two-choices (two random candidates, the less loaded wins). Any of them can be combined
with ClientIP session affinity (Service `sessionAffinity: ClientIP`): a client address sticks to the
endpoint it got while that endpoint stays usable and the session is younger than the timeout since its
last use. A new session's endpoint is chosen by rendezvous hashing of the client address, not by the
policy, so that every worker process (each with its own Picker and no shared state) sends one client to
the same endpoint. Ejected (recent connect failure) and draining endpoints are never picked.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

ROUND_ROBIN = "round-robin"
LEAST_CONN = "least-conn"
P2C = "p2c"
POLICIES = (ROUND_ROBIN, LEAST_CONN, P2C)

# Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds.
DEFAULT_AFFINITY_TIMEOUT = 10800.0
# The session table is swept for expired entries once it grows past this many.
_AFFINITY_SWEEP_AT = 4096


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ready address of a backend: `ip:port` of a pod's host port. `key` is "ip:port"."""

    ip: str
    port: int
    pod: str = ""  # "namespace/name" of the pod behind it, for logs
    key: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.ip}:{self.port}")


class Ejections:
    """Endpoints whose connect failed recently (passive health, like Envoy's outlier detection).

    An endpoint is ejected for `duration` seconds after a failed connect; a successful connect
    clears it early (another backend sharing the endpoint may have got through).
    """

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self._until: dict[str, float] = {}

    def __bool__(self) -> bool:
        """True while any endpoint may be ejected (expired entries go on their next lookup)."""
        return bool(self._until)

    def eject(self, key: str, now: float) -> None:
        self._until[key] = now + self.duration

    def clear(self, key: str) -> None:
        if self._until:
            self._until.pop(key, None)

    def is_ejected(self, key: str, now: float) -> bool:
        if not self._until:
            return False
        until = self._until.get(key)
        if until is None:
            return False
        if until <= now:
            del self._until[key]
            return False
        return True

    def ejected(self, now: float) -> list[str]:
        return sorted(k for k, t in self._until.items() if t > now)


def _by_client_hash(
    endpoints: Sequence[Endpoint], client_ip: str, excluded: Callable[[str], bool]
) -> Endpoint | None:
    """The usable endpoint with the highest hash of (client, endpoint): the same in every process
    (hashlib, not the per-process salted hash()), and only the clients of a departed endpoint move."""
    best: Endpoint | None = None
    best_score = b""
    for ep in endpoints:
        if excluded(ep.key):
            continue
        score = hashlib.blake2b(f"{client_ip}|{ep.key}".encode(), digest_size=8).digest()
        if best is None or score > best_score:
            best, best_score = ep, score
    return best


def never(_key: str) -> bool:
    """The `excluded` of a pick where nothing is excluded."""
    return False


_NO_ACTIVE: Mapping[str, int] = {}


class Picker:
    """The endpoint choice for one backend; holds the policy's state between picks."""

    __slots__ = ("policy", "rng", "affinity_timeout", "_cursor", "_sessions")

    def __init__(
        self,
        policy: str = ROUND_ROBIN,
        *,
        rng: random.Random | None = None,
        affinity_timeout: float | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown balancing policy {policy!r} (known: {', '.join(POLICIES)})")
        self.policy = policy
        self.rng = rng or random.Random()
        self.affinity_timeout = affinity_timeout
        self._cursor = 0
        # client ip -> (endpoint key, last use)
        self._sessions: dict[str, tuple[str, float]] = {}

    def pick(
        self,
        endpoints: Sequence[Endpoint],
        *,
        now: float = 0.0,
        client_ip: str = "",
        active: Mapping[str, int] = _NO_ACTIVE,
        excluded: Callable[[str], bool] = never,
    ) -> Endpoint | None:
        """The endpoint for the next connection, or None when no endpoint is usable.

        `excluded(key)` is true for an endpoint that must not get it (ejected, draining, or already
        tried by this connection); `active` counts open connections per endpoint key.
        """
        n = len(endpoints)
        if n == 0:
            return None
        if self.affinity_timeout is not None and client_ip:
            ep = self._sticky(endpoints, client_ip, now, excluded)
            if ep is None:
                ep = _by_client_hash(endpoints, client_ip, excluded)
                if ep is not None:
                    self._remember(client_ip, ep.key, now)
            return ep
        if self.policy == ROUND_ROBIN:
            ep = self._round_robin(endpoints, n, excluded)
        elif self.policy == LEAST_CONN:
            ep = self._least_conn(endpoints, n, active, excluded)
        else:
            ep = self._p2c(endpoints, active, excluded)
        return ep

    # ------------------------------------------------------------ policies

    def _round_robin(
        self, endpoints: Sequence[Endpoint], n: int, excluded: Callable[[str], bool]
    ) -> Endpoint | None:
        start = self._cursor % n
        for i in range(n):
            j = (start + i) % n
            ep = endpoints[j]
            if not excluded(ep.key):
                self._cursor = j + 1
                return ep
        return None

    def _least_conn(
        self,
        endpoints: Sequence[Endpoint],
        n: int,
        active: Mapping[str, int],
        excluded: Callable[[str], bool],
    ) -> Endpoint | None:
        start = self._cursor % n
        best: Endpoint | None = None
        best_load = 0
        best_j = 0
        for i in range(n):
            j = (start + i) % n
            ep = endpoints[j]
            if excluded(ep.key):
                continue
            load = active.get(ep.key, 0)
            if best is None or load < best_load:
                best, best_load, best_j = ep, load, j
        if best is not None:
            self._cursor = best_j + 1
        return best

    def _p2c(
        self, endpoints: Sequence[Endpoint], active: Mapping[str, int], excluded: Callable[[str], bool]
    ) -> Endpoint | None:
        usable = [ep for ep in endpoints if not excluded(ep.key)]
        if len(usable) <= 1:
            return usable[0] if usable else None
        a, b = self.rng.sample(range(len(usable)), 2)
        ea, eb = usable[a], usable[b]
        return eb if active.get(eb.key, 0) < active.get(ea.key, 0) else ea

    # ------------------------------------------------------------ ClientIP affinity

    def _sticky(
        self, endpoints: Sequence[Endpoint], client_ip: str, now: float, excluded: Callable[[str], bool]
    ) -> Endpoint | None:
        session = self._sessions.get(client_ip)
        if session is None:
            return None
        key, last = session
        assert self.affinity_timeout is not None
        if now - last > self.affinity_timeout or excluded(key):
            del self._sessions[client_ip]
            return None
        for ep in endpoints:
            if ep.key == key:
                self._sessions[client_ip] = (key, now)
                return ep
        del self._sessions[client_ip]
        return None

    def _remember(self, client_ip: str, key: str, now: float) -> None:
        sessions = self._sessions
        if len(sessions) >= _AFFINITY_SWEEP_AT and client_ip not in sessions:
            timeout = self.affinity_timeout or 0.0
            for ip in [ip for ip, (_, last) in sessions.items() if now - last > timeout]:
                del sessions[ip]
        sessions[client_ip] = (key, now)

    def sessions(self) -> dict[str, str]:
        """client ip -> endpoint key of the current sessions (for tests and debugging)."""
        return {ip: key for ip, (key, _) in self._sessions.items()}
