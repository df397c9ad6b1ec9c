"""Sealing Raft messages: what a receiver accepts, and what it refuses before anything is unpickled."""

from __future__ import annotations

import os

import pytest
from pysyncobj import syncobj

from orchestrator.store import seal as seal_mod
from orchestrator.store.seal import HEADER_SIZE, Refused, Seal


@pytest.fixture(scope="module")
def pair() -> tuple[Seal, Seal]:
    return Seal("cluster-secret"), Seal("cluster-secret")  # two masters of one cluster


def test_a_sealed_message_opens_on_another_master(pair: tuple[Seal, Seal]) -> None:
    a, b = pair
    for size in (0, 1, 300, 70_000):
        data = os.urandom(size)
        token = a.encrypt_at_time(data, 12)
        assert data not in token or size < 8  # sealed, not in clear
        assert b.decrypt(token) == data


def test_pysyncobjs_two_step_receive_opens_once_and_returns_the_same_data(pair: tuple[Seal, Seal]) -> None:
    a, b = pair
    first, second = a.encrypt(b"one"), a.encrypt(b"two")
    s1 = b.extract_timestamp(first)
    assert b.decrypt(first) == b"one"
    s2 = b.extract_timestamp(second)
    assert s2 > s1  # PySyncObj refuses a "timestamp" below the last one on a connection
    assert b.decrypt(second) == b"two"


def test_another_secret_is_refused_and_counted(pair: tuple[Seal, Seal]) -> None:
    a, _ = pair
    stranger = Seal("another-secret")
    before = Seal.rejected
    with pytest.raises(Refused, match="fails authentication"):
        a.decrypt(stranger.encrypt(b"x"))
    assert Seal.rejected == before + 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],  # truncated
        lambda t: t[:HEADER_SIZE] + bytes([t[HEADER_SIZE] ^ 1]) + t[HEADER_SIZE + 1 :],  # body flipped
        lambda t: t[:20] + bytes([t[20] ^ 1]) + t[21:],  # the sequence number flipped (it is AAD)
        lambda t: b"\x80" + t[1:],  # a Fernet-looking version byte
        lambda t: b"",
        lambda t: os.urandom(len(t)),
    ],
)
def test_an_altered_token_is_refused(pair: tuple[Seal, Seal], mangle) -> None:
    a, b = pair
    with pytest.raises(Refused):
        b.decrypt(mangle(a.encrypt(b"payload that matters")))


def test_a_replay_is_refused_even_in_order(pair: tuple[Seal, Seal]) -> None:
    a, b = pair
    token = a.encrypt(b"append entries")
    assert b.decrypt(token) == b"append entries"
    with pytest.raises(Refused, match="replayed"):
        b.decrypt(token)
    older, newer = a.encrypt(b"1"), a.encrypt(b"2")
    assert b.decrypt(newer) == b"2"
    with pytest.raises(Refused, match="replayed"):
        b.decrypt(older)


def test_each_sender_has_its_own_nonce_space() -> None:
    # Two fresh processes both start their counters at 0; their tokens differ because their subkeys do.
    x, y = Seal("s"), Seal("s")
    tx, ty = x.encrypt(b"same"), y.encrypt(b"same")
    assert tx[HEADER_SIZE - 8 : HEADER_SIZE] == ty[HEADER_SIZE - 8 : HEADER_SIZE]  # both seq 0
    assert tx[HEADER_SIZE:] != ty[HEADER_SIZE:]
    receiver = Seal("s")
    assert receiver.decrypt(tx) == receiver.decrypt(ty) == b"same"


def test_a_receiver_remembers_a_bounded_number_of_senders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seal_mod, "MAX_SENDERS", 3)
    receiver = Seal("s")
    for _ in range(10):
        receiver.decrypt(Seal("s").encrypt(b"hi"))
    assert len(receiver._peers) == 3


def test_pysyncobj_builds_its_encryptor_with_it() -> None:
    import orchestrator.store.raft  # noqa: F401  (installs the seal)

    assert syncobj.getEncryptor is Seal
