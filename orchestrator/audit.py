"""The audit log of a master: one line per write, whichever API it came through.

    2026-12-01T23:40:00.123Z api=rest role=admin verb=create kind=Deployment ns=default name=demo result=201

Written by the stdlib's RotatingFileHandler (rotated by size, a few files kept), off unless a master
is started with --audit-log; `skiff up` turns it on. Values are quoted when they hold a space, so
every line stays one line whatever a client sends.
"""

from __future__ import annotations

import logging
import logging.handlers
import time
from pathlib import Path

from orchestrator.auth import Identity

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3


def _value(v: object) -> str:
    text = str(v).replace("\n", "\\n").replace("\r", "\\r")
    return repr(text) if (not text or " " in text or '"' in text or "=" in text) else text


def line(
    when: float, api: str, who: Identity, verb: str, kind: str, namespace: str, name: str, result: object
) -> str:
    """One audit line (pure): UTC time with milliseconds, then key=value pairs."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}Z"
    fields = {
        "api": api,
        "role": who.role,
        **({"node": who.node} if who.node else {}),
        "verb": verb,
        "kind": kind,
        "ns": namespace,
        "name": name,
        "result": result,
    }
    return stamp + " " + " ".join(f"{k}={_value(v)}" for k, v in fields.items())


class AuditLog:
    """Appends audit lines to `path`, rotating at `max_bytes` and keeping `backups` old files."""

    def __init__(self, path: str | Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self._log = logging.getLogger(f"skiff.audit.{path}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._log.handlers[:] = [handler]

    def record(
        self, api: str, who: Identity, verb: str, kind: str, namespace: str, name: str, result: object
    ) -> None:
        self._log.info(line(time.time(), api, who, verb, kind, namespace, name, result))

    def close(self) -> None:
        for h in self._log.handlers:
            h.close()
