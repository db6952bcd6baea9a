"""Issue 3 acceptance: interoperability with the ``openssl`` command line.

* signatures made by openkms verify with ``openssl dgst -verify`` (RAW messages) and
  ``openssl pkeyutl -verify`` (DIGEST messages, Ed25519) using the DER public key from
  GetPublicKey;
* RSA-OAEP ciphertexts made by ``openssl pkeyutl -encrypt`` with that public key decrypt in
  openkms;
* signatures made outside, by openssl, with the private key of an IMPORTED pair (openssl genpkey,
  imported through GetParametersForImport/ImportKeyMaterial with RSA_AES_KEY_WRAP_SHA_256 done with
  openssl as AWS documents it) verify in openkms with Verify.

Skipped, with a reason saying so, when ``openssl`` is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conformance import expect_error
from tests.integration.test_import_e2e import (
    external_key,
    generate_private_key,
    import_material,
    needs_openssl,
    openssl,
    openssl_ok,
    public_key_of,
)

pytestmark = needs_openssl

MESSAGE = b"openkms and openssl agree on what a signature is"
DIGEST_LENGTH = {"sha256": 32, "sha384": 48, "sha512": 64}


def _hash_of(algorithm: str) -> str:
    return "sha" + algorithm.rsplit("_", 1)[1]


def _rsa_options(algorithm: str, flag: str) -> list[str]:
    """openssl options selecting the RSA padding KMS uses (PSS: MGF1 with the message hash, salt
    as long as the digest)."""
    if "_PSS_" not in algorithm:
        return []
    salt = DIGEST_LENGTH[_hash_of(algorithm)]
    return [flag, "rsa_padding_mode:pss", flag, f"rsa_pss_saltlen:{salt}"]


@pytest.fixture(scope="module")
def signing_key(kms: BaseClient) -> Callable[[str], tuple[str, bytes]]:
    """``signing_key(spec)``: (key id, DER public key) of a SIGN_VERIFY key, made once."""
    made: dict[str, tuple[str, bytes]] = {}

    def get(spec: str) -> tuple[str, bytes]:
        if spec not in made:
            key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
            made[spec] = (key_id, kms.get_public_key(KeyId=key_id)["PublicKey"])
        return made[spec]

    return get


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512"),
        ("RSA_2048", "RSASSA_PSS_SHA_256"),
        ("RSA_2048", "RSASSA_PSS_SHA_384"),
        ("RSA_2048", "RSASSA_PSS_SHA_512"),
        ("RSA_3072", "RSASSA_PSS_SHA_384"),
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_NIST_P384", "ECDSA_SHA_384"),
        ("ECC_NIST_P521", "ECDSA_SHA_512"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
    ],
    ids=lambda v: str(v),
)
def test_openssl_verifies_openkms_signatures(
    kms: BaseClient,
    signing_key: Callable[[str], tuple[str, bytes]],
    tmp_path: Path,
    spec: str,
    algorithm: str,
) -> None:
    key_id, public = signing_key(spec)
    hash_name = _hash_of(algorithm)
    (tmp_path / "pub.der").write_bytes(public)
    (tmp_path / "msg.bin").write_bytes(MESSAGE)

    # RAW: openssl dgst hashes the message as KMS did.
    raw_sig = kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
    (tmp_path / "raw.sig").write_bytes(raw_sig)
    out = openssl(
        "dgst", f"-{hash_name}", *_rsa_options(algorithm, "-sigopt"),
        "-verify", "pub.der", "-keyform", "DER", "-signature", "raw.sig", "msg.bin",
        cwd=tmp_path,
    )  # fmt: skip
    assert b"Verified OK" in out

    # DIGEST: openssl pkeyutl verifies a signature over a digest computed by openssl.
    openssl("dgst", f"-{hash_name}", "-binary", "-out", "digest.bin", "msg.bin", cwd=tmp_path)
    digest = (tmp_path / "digest.bin").read_bytes()
    digest_sig = kms.sign(
        KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )["Signature"]
    (tmp_path / "digest.sig").write_bytes(digest_sig)
    verify_digest = [
        "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-in", "digest.bin", "-sigfile", "digest.sig",
        "-pkeyopt", f"digest:{hash_name}", *_rsa_options(algorithm, "-pkeyopt"),
    ]  # fmt: skip
    assert b"Signature Verified Successfully" in openssl(*verify_digest, cwd=tmp_path)

    # And openssl says no to a tampered one.
    (tmp_path / "digest.sig").write_bytes(digest_sig[:-1] + bytes([digest_sig[-1] ^ 0x01]))
    ok, output = openssl_ok(*verify_digest, cwd=tmp_path)
    assert not ok, output
    (tmp_path / "raw.sig").write_bytes(raw_sig[:8] + bytes([raw_sig[8] ^ 0x80]) + raw_sig[9:])
    ok, output = openssl_ok(
        "dgst", f"-{hash_name}", *_rsa_options(algorithm, "-sigopt"),
        "-verify", "pub.der", "-keyform", "DER", "-signature", "raw.sig", "msg.bin",
        cwd=tmp_path,
    )  # fmt: skip
    assert not ok, output


def test_openssl_verifies_openkms_ed25519_signatures(
    kms: BaseClient, signing_key: Callable[[str], tuple[str, bytes]], tmp_path: Path
) -> None:
    key_id, public = signing_key("ECC_NIST_EDWARDS25519")
    (tmp_path / "pub.der").write_bytes(public)
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    signature = kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm="ED25519_SHA_512")[
        "Signature"
    ]
    assert len(signature) == 64
    (tmp_path / "msg.sig").write_bytes(signature)
    verify = [
        "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-rawin", "-in", "msg.bin", "-sigfile", "msg.sig",
    ]  # fmt: skip
    assert b"Signature Verified Successfully" in openssl(*verify, cwd=tmp_path)
    (tmp_path / "msg.sig").write_bytes(bytes([signature[0] ^ 0x01]) + signature[1:])
    ok, output = openssl_ok(*verify, cwd=tmp_path)
    assert not ok, output


@pytest.mark.parametrize(
    ("spec", "algorithm", "size"),
    [
        ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
        ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
        ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
        ("RSA_3072", "RSAES_OAEP_SHA_1", 1),
    ],
    ids=lambda v: str(v),
)
def test_openssl_oaep_ciphertexts_decrypt_in_openkms(
    kms: BaseClient, tmp_path: Path, spec: str, algorithm: str, size: int
) -> None:
    meta = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    (tmp_path / "pub.der").write_bytes(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
    plaintext = bytes((i * 7 + 3) % 256 for i in range(size))
    (tmp_path / "plain.bin").write_bytes(plaintext)
    md = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-in", "plain.bin", "-out", "ct.bin",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
        "-pkeyopt", f"rsa_mgf1_md:{md}",
        cwd=tmp_path,
    )  # fmt: skip
    ciphertext = (tmp_path / "ct.bin").read_bytes()
    decrypted = kms.decrypt(
        KeyId=meta["KeyId"], CiphertextBlob=ciphertext, EncryptionAlgorithm=algorithm
    )
    assert decrypted["Plaintext"] == plaintext
    assert decrypted["EncryptionAlgorithm"] == algorithm
    assert decrypted["KeyId"] == meta["Arn"]
    # An openssl OAEP ciphertext with the other hash is not one of this algorithm.
    other_md = "sha256" if md == "sha1" else "sha1"
    (tmp_path / "short.bin").write_bytes(plaintext[:100])
    openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-in", "short.bin", "-out", "ct2.bin",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{other_md}",
        "-pkeyopt", f"rsa_mgf1_md:{other_md}",
        cwd=tmp_path,
    )  # fmt: skip
    expect_error(
        "InvalidCiphertextException",
        kms.decrypt,
        KeyId=meta["KeyId"],
        CiphertextBlob=(tmp_path / "ct2.bin").read_bytes(),
        EncryptionAlgorithm=algorithm,
    )
    # PKCS #1 v1.5 encryption is not an algorithm KMS offers: not decryptable as OAEP.
    openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-in", "short.bin", "-out", "ct3.bin", "-pkeyopt", "rsa_padding_mode:pkcs1",
        cwd=tmp_path,
    )  # fmt: skip
    expect_error(
        "InvalidCiphertextException",
        kms.decrypt,
        KeyId=meta["KeyId"],
        CiphertextBlob=(tmp_path / "ct3.bin").read_bytes(),
        EncryptionAlgorithm=algorithm,
    )


IMPORTED_SIGNERS: list[tuple[str, list[tuple[str, list[str], bool]]]] = [
    # (key spec, [(KMS algorithm, openssl signing command tail, signs a digest)])
    (
        "RSA_2048",
        [
            ("RSASSA_PKCS1_V1_5_SHA_256", ["dgst", "-sha256"], False),
            ("RSASSA_PKCS1_V1_5_SHA_512", ["dgst", "-sha512"], False),
            (
                "RSASSA_PSS_SHA_256",
                ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                 "-sigopt", "rsa_pss_saltlen:32"],
                False,
            ),
            (
                "RSASSA_PSS_SHA_384",
                ["pkeyutl", "-pkeyopt", "digest:sha384", "-pkeyopt", "rsa_padding_mode:pss",
                 "-pkeyopt", "rsa_pss_saltlen:48"],
                True,
            ),
        ],
    ),
    (
        "ECC_NIST_P256",
        [
            ("ECDSA_SHA_256", ["dgst", "-sha256"], False),
            ("ECDSA_SHA_256", ["pkeyutl", "-pkeyopt", "digest:sha256"], True),
        ],
    ),
    ("ECC_NIST_P384", [("ECDSA_SHA_384", ["dgst", "-sha384"], False)]),
    ("ECC_NIST_P521", [("ECDSA_SHA_512", ["dgst", "-sha512"], False)]),
    ("ECC_SECG_P256K1", [("ECDSA_SHA_256", ["dgst", "-sha256"], False)]),
    ("ECC_NIST_EDWARDS25519", [("ED25519_SHA_512", ["pkeyutl", "-rawin"], False)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "signers"), IMPORTED_SIGNERS, ids=[spec for spec, _ in IMPORTED_SIGNERS]
)
def test_signatures_made_outside_with_an_imported_key_verify_in_openkms(
    kms: BaseClient,
    tmp_path: Path,
    spec: str,
    signers: list[tuple[str, list[str], bool]],
) -> None:
    private = generate_private_key(tmp_path, spec)
    public = public_key_of(tmp_path, private)
    meta = external_key(kms, spec, "SIGN_VERIFY")
    import_material(
        kms,
        meta["KeyId"],
        private,
        tmp_path,
        algorithm="RSA_AES_KEY_WRAP_SHA_256",
        wrapping_spec="RSA_2048",
    )
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["Origin"] == "EXTERNAL"
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == public

    (tmp_path / "priv.der").write_bytes(private)
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    for algorithm, command, digest in signers:
        message = MESSAGE
        if digest:
            hash_name = _hash_of(algorithm)
            openssl("dgst", f"-{hash_name}", "-binary", "-out", "in.bin", "msg.bin", cwd=tmp_path)
            message = (tmp_path / "in.bin").read_bytes()
        else:
            (tmp_path / "in.bin").write_bytes(MESSAGE)
        if command[0] == "dgst":
            args = [*command, "-sign", "priv.der", "-keyform", "DER", "-out", "sig.bin", "in.bin"]
        else:
            args = [
                "pkeyutl", "-sign", "-inkey", "priv.der", "-keyform", "DER",
                "-in", "in.bin", "-out", "sig.bin", *command[1:],
            ]  # fmt: skip
        openssl(*args, cwd=tmp_path)
        signature = (tmp_path / "sig.bin").read_bytes()
        params: dict[str, Any] = {
            "KeyId": meta["KeyId"],
            "Message": message,
            "MessageType": "DIGEST" if digest else "RAW",
            "Signature": signature,
            "SigningAlgorithm": algorithm,
        }
        verified = kms.verify(**params)
        assert verified["SignatureValid"] is True, (algorithm, command)
        assert verified["KeyId"] == meta["Arn"]
        tampered = signature[:-2] + bytes([signature[-2] ^ 0x04]) + signature[-1:]
        expect_error(
            "KMSInvalidSignatureException", kms.verify, **{**params, "Signature": tampered}
        )

        # The other direction: openkms signs with the imported key, openssl verifies.
        ours = kms.sign(
            KeyId=meta["KeyId"],
            Message=message,
            MessageType="DIGEST" if digest else "RAW",
            SigningAlgorithm=algorithm,
        )["Signature"]
        (tmp_path / "ours.sig").write_bytes(ours)
        (tmp_path / "pub.der").write_bytes(public)
        if command[0] == "dgst":
            out = openssl(
                *command, "-verify", "pub.der", "-keyform", "DER", "-signature", "ours.sig",
                "in.bin", cwd=tmp_path,
            )  # fmt: skip
            assert b"Verified OK" in out
        else:
            out = openssl(
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
                "-in", "in.bin", "-sigfile", "ours.sig", *command[1:], cwd=tmp_path,
            )  # fmt: skip
            assert b"Signature Verified Successfully" in out
