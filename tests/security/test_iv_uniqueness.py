"""An AES-GCM nonce used twice under one key gives away the XOR of the two plaintexts and the
key's authentication subkey. The symmetric keys' IVs come from os.urandom in batches
(crypto/aead.py); here a caller drives Encrypt and GenerateDataKey through several
connections on a server with two worker processes and looks for a repeated IV."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from openkms.domain import ciphertext
from tests.conftest import ServerFactory

REQUESTS_PER_THREAD = 300
THREADS = 8


def test_no_iv_repeats_across_workers_connections_and_operations(
    server_factory: ServerFactory,
) -> None:
    managed = server_factory.start(extra_args=["--workers", "2"])
    key_id = managed.client().create_key()["KeyMetadata"]["KeyId"]

    def work(n: int) -> list[bytes]:
        kms = managed.client()  # connections of its own: the kernel spreads them over workers
        blobs = []
        for i in range(REQUESTS_PER_THREAD):
            if i % 2:
                blobs.append(kms.encrypt(KeyId=key_id, Plaintext=b"same")["CiphertextBlob"])
            else:
                found = kms.generate_data_key(KeyId=key_id, NumberOfBytes=16)
                blobs.append(found["CiphertextBlob"])
        return blobs

    with ThreadPoolExecutor(THREADS) as pool:
        blobs = [b for part in pool.map(work, range(THREADS)) for b in part]
    assert len(blobs) == THREADS * REQUESTS_PER_THREAD
    ivs = [ciphertext.decode(blob).iv for blob in blobs]
    assert len(set(ivs)) == len(ivs), "an IV was used twice under one key"
    # And they are real ciphertexts of this key.
    kms = managed.client()
    for blob in blobs[1:40:2]:
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"same"
