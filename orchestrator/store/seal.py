"""Sealing Raft messages with the cluster's secret: AES-256-GCM in place of PySyncObj's Fernet.

PySyncObj hands every message (a zlib'd pickle) to an "encryptor" with Fernet's interface:
`encrypt_at_time(data, ts)` when sending; `extract_timestamp(token)` then `decrypt(token)` when
receiving, and any exception drops the connection before anything is unpickled. Fernet costs 25-60 us
a message here (AES-CBC, a separate HMAC, base64 both ways, and the receiver checks the HMAC twice,
once per call); under the API bench's load it was a tenth of the leader's CPU (py-spy, 2026-12-02).
`Seal` keeps the interface and does one AEAD pass instead (2-4 us), and closes Fernet's replay gap:

    token = VERSION (1) | sender (16) | seq (8, big-endian) | AES-256-GCM(data) with its tag (16)

- The key: PBKDF2-HMAC-SHA256 of the secret (100,000 rounds, Skiff's own salt), once per process.
  Each sending process draws a random 16-byte `sender` id at start and seals under its own subkey,
  HKDF(key, salt=sender), with `seq` (a counter from 0) as the nonce: a nonce is never reused under
  one key, whatever the number of masters or restarts, and the header is authenticated as AAD.
- Replays: the receiver keeps the last `seq` it accepted from each sender and refuses any that is not
  larger, so a message cannot be replayed, not even into the same TCP stream (Fernet's timestamps
  have one-second resolution). PySyncObj's per-connection random keys still stop a message recorded
  on one connection from being replayed on another after a receiver restarts.
- `extract_timestamp` authenticates and decrypts; `decrypt` right after it returns that result.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

VERSION = b"\x53"  # "S": a Skiff seal; a Fernet token starts with 0x80, base64'd as "gAAAAA"
SALT = b"skiff raft seal v1 / pbkdf2 salt"
ROUNDS = 100_000
_HEADER = struct.Struct(">c16sQ")
HEADER_SIZE = _HEADER.size  # 25
TAG_SIZE = 16
MAX_SENDERS = 64  # senders remembered by a receiver; a master restart makes a new one


class Refused(Exception):
    """A token that is not ours: wrong key, tampered, truncated, or replayed."""


def master_key(secret: str | bytes) -> bytes:
    raw = secret.encode() if isinstance(secret, str) else secret
    return PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=SALT, iterations=ROUNDS).derive(raw)


def _subkey(key: bytes, sender: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=sender, info=b"skiff raft seal v1")
    return AESGCM(hkdf.derive(key))


class Seal:
    """Seals and opens Raft messages under one cluster secret. Used from PySyncObj's tick thread;
    the counters are guarded anyway, for a caller on another thread."""

    rejected = 0  # tokens refused by any Seal in this process

    def __init__(self, secret: str | bytes) -> None:
        self._key = master_key(secret)
        self._sender = os.urandom(16)
        self._aead = _subkey(self._key, self._sender)
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._peers: OrderedDict[bytes, tuple[AESGCM, int]] = OrderedDict()  # sender -> (aead, last seq)
        self._opened: tuple[object, bytes] | None = None  # (token, data) of the last extract_timestamp

    # -------------------------------------------------------------- sending

    def seal(self, data: bytes) -> bytes:
        with self._lock:
            seq = next(self._seq)
        header = _HEADER.pack(VERSION, self._sender, seq)
        return header + self._aead.encrypt(_nonce(seq), data, header)

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:
        return self.seal(data)

    def encrypt(self, data: bytes) -> bytes:
        return self.seal(data)

    # -------------------------------------------------------------- receiving

    def open(self, token: bytes) -> tuple[int, bytes]:
        """(seq, data) of a genuine token not seen before; Refused otherwise."""
        try:
            return self._open(bytes(token))
        except Refused:
            with self._lock:
                Seal.rejected += 1
            raise

    def _open(self, token: bytes) -> tuple[int, bytes]:
        if len(token) < HEADER_SIZE + TAG_SIZE or token[:1] != VERSION:
            raise Refused("not a sealed Raft message")
        header = token[:HEADER_SIZE]
        _, sender, seq = _HEADER.unpack(header)
        with self._lock:
            known = self._peers.get(sender)
        aead = known[0] if known else _subkey(self._key, sender)
        try:
            data = aead.decrypt(_nonce(seq), token[HEADER_SIZE:], header)
        except InvalidTag:
            raise Refused("the message fails authentication (another secret, or altered)") from None
        with self._lock:
            known = self._peers.get(sender)
            if known is not None and seq <= known[1]:
                raise Refused(f"replayed message (seq {seq}, last accepted {known[1]})")
            self._peers[sender] = (aead, seq)
            self._peers.move_to_end(sender)
            while len(self._peers) > MAX_SENDERS:
                self._peers.popitem(last=False)
        return seq, data

    def extract_timestamp(self, token: bytes) -> int:
        seq, data = self.open(token)
        self._opened = (token, data)
        return seq  # increases per sender, so PySyncObj's per-connection ">= last" check holds

    def decrypt(self, token: bytes, ttl: int | None = None) -> bytes:
        opened, self._opened = self._opened, None
        if opened is not None and opened[0] is token:
            return opened[1]
        return self.open(token)[1]


def _nonce(seq: int) -> bytes:
    return seq.to_bytes(12, "big")
