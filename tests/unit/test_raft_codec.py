"""The Raft wire codec: PySyncObj's zlib framing with stored blocks (no compression)."""

from __future__ import annotations

import os
import pickle
import zlib

import pytest
from pysyncobj import tcp_connection

from orchestrator.store.raft import _StoredZlib


@pytest.mark.parametrize("size", [0, 1, 500, 0xFFFF, 0x10000, 3 * 0xFFFF + 7])
def test_stored_stream_is_valid_zlib(size: int) -> None:
    data = os.urandom(size)
    assert zlib.decompress(_StoredZlib.compress(data, 3)) == data


def test_pysyncobj_uses_it_and_old_peers_still_decode() -> None:
    assert tcp_connection.zlib is _StoredZlib
    message = {"type": "append_entries", "entries": [(b"x" * 100, 7, 2)]}
    # What an unpatched peer sends (level-3 deflate) still decodes, and what we send decodes there.
    assert pickle.loads(_StoredZlib.decompress(zlib.compress(pickle.dumps(message), 3))) == message
    assert pickle.loads(zlib.decompress(_StoredZlib.compress(pickle.dumps(message)))) == message
