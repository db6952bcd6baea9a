"""The AES-GCM IVs of symmetric keys: drawn from os.urandom in batches (crypto/aead.py), each
handed out once, in every thread and in a forked child."""

from __future__ import annotations

import os
import threading

import pytest

from openkms.crypto import aead
from openkms.crypto.aead import IV_LEN, SymmetricKey


def test_each_seal_has_its_own_iv_across_many_batches() -> None:
    key = SymmetricKey(os.urandom(32))
    ivs = [key.seal(b"x", b"aad")[0] for _ in range(10 * aead._IV_BATCH + 7)]
    assert all(len(iv) == IV_LEN for iv in ivs)
    assert len(set(ivs)) == len(ivs)


def test_sealed_text_opens_with_its_iv() -> None:
    key = SymmetricKey(os.urandom(32))
    iv, sealed = key.seal(b"secret", b"aad")
    assert key.open(iv, sealed, b"aad") == b"secret"


def test_threads_never_share_an_iv() -> None:
    key = SymmetricKey(os.urandom(32))
    seen: list[list[bytes]] = [[] for _ in range(8)]

    def work(out: list[bytes]) -> None:
        for _ in range(2000):
            out.append(key.seal(b"", b"")[0])

    threads = [threading.Thread(target=work, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [iv for out in seen for iv in out]
    assert len(every) == 16000
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_reuse_the_parents_batch() -> None:
    key = SymmetricKey(os.urandom(32))
    key.seal(b"", b"")  # a batch is now pending in this process
    pending = set(aead._ivs)
    assert pending, "the parent should hold IVs not yet handed out"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it would use next
        try:
            os.close(read_end)
            left = len(aead._ivs)
            ivs = b"".join(key.seal(b"", b"")[0] for _ in range(2 * aead._IV_BATCH))
            os.write(write_end, left.to_bytes(4, "big") + ivs)
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    assert int.from_bytes(data[:4], "big") == 0  # the inherited batch was dropped
    child_ivs = {data[i : i + IV_LEN] for i in range(4, len(data), IV_LEN)}
    assert len(child_ivs) == 2 * aead._IV_BATCH
    assert not child_ivs & pending
