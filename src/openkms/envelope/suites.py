"""The AWS Encryption SDK algorithm suites, and the commitment policy that restricts them.

Every suite is AES-GCM with a 12-byte IV and a 16-byte tag. Version-2 message suites (0x0478,
0x0578) commit to the data key; version-1 suites do not. See ``docs/formats/envelope.md``.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from openkms.envelope.errors import CommitmentPolicyError, UnsupportedSuiteError

__all__ = [
    "DEFAULT_SUITE",
    "SUITES",
    "AlgorithmSuite",
    "CommitmentPolicy",
    "suite_by_id",
    "suite_by_name",
]

IV_LENGTH = 12
TAG_LENGTH = 16
COMMIT_KEY_LENGTH = 32
_DERIVE_KEY_LABEL = b"DERIVEKEY"
_COMMIT_KEY_LABEL = b"COMMITKEY"


@dataclass(frozen=True)
class AlgorithmSuite:
    """One algorithm suite: its wire id and the algorithms it names."""

    suite_id: int
    name: str
    message_version: int
    key_length: int  # bytes of the AES key; the data key has the same length
    kdf_hash: str | None  # "sha256" / "sha384" / "sha512", None for the identity KDF
    committing: bool
    curve: str | None  # "secp256r1" / "secp384r1", None when unsigned

    @property
    def id_bytes(self) -> bytes:
        return self.suite_id.to_bytes(2, "big")

    @property
    def message_id_length(self) -> int:
        return 32 if self.message_version == 2 else 16

    @property
    def data_key_length(self) -> int:
        return self.key_length

    @property
    def suite_data_length(self) -> int:
        return COMMIT_KEY_LENGTH if self.committing else 0

    @property
    def signed(self) -> bool:
        return self.curve is not None

    @property
    def signature_hash(self) -> str:
        """hashlib name of the signature's hash (only meaningful when ``signed``)."""
        return "sha256" if self.curve == "secp256r1" else "sha384"

    def signature_curve(self) -> ec.EllipticCurve:
        if self.curve == "secp256r1":
            return ec.SECP256R1()
        if self.curve == "secp384r1":
            return ec.SECP384R1()
        raise UnsupportedSuiteError(f"suite {self.name} has no signature algorithm")

    def signature_hash_algorithm(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self.curve == "secp256r1" else hashes.SHA384()

    def derive_keys(self, data_key: bytes, message_id: bytes) -> tuple[bytes, bytes | None]:
        """(encryption key, commit key or None) for ``data_key`` and ``message_id``."""
        if len(data_key) != self.data_key_length:
            raise UnsupportedSuiteError(
                f"data key of {len(data_key)} bytes for suite {self.name} "
                f"(expects {self.data_key_length})"
            )
        if self.kdf_hash is None:
            return data_key, None
        algorithm = _hash(self.kdf_hash)
        if not self.committing:
            # HKDF, no salt (zeros), info = suite id || message id.
            hkdf = HKDF(algorithm, self.key_length, salt=None, info=self.id_bytes + message_id)
            return hkdf.derive(data_key), None
        # Committing suites: one extract with the message id as salt, two expands.
        prk = hmac.new(message_id, data_key, self.kdf_hash).digest()
        key = HKDFExpand(_hash(self.kdf_hash), self.key_length, self.id_bytes + _DERIVE_KEY_LABEL)
        commit = HKDFExpand(_hash(self.kdf_hash), COMMIT_KEY_LENGTH, _COMMIT_KEY_LABEL)
        return key.derive(prk), commit.derive(prk)


def _hash(name: str) -> hashes.HashAlgorithm:
    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[name]


def _suite(
    suite_id: int,
    name: str,
    key_bits: int,
    kdf: str | None,
    curve: str | None = None,
    committing: bool = False,
) -> AlgorithmSuite:
    return AlgorithmSuite(
        suite_id=suite_id,
        name=name,
        message_version=2 if committing else 1,
        key_length=key_bits // 8,
        kdf_hash=kdf,
        committing=committing,
        curve=curve,
    )


SUITES: dict[int, AlgorithmSuite] = {
    s.suite_id: s
    for s in (
        _suite(
            0x0578,
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
            256,
            "sha512",
            "secp384r1",
            committing=True,
        ),
        _suite(0x0478, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 256, "sha512", committing=True),
        _suite(0x0378, "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 256, "sha384", "secp384r1"),
        _suite(0x0346, "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 192, "sha384", "secp384r1"),
        _suite(0x0214, "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 128, "sha256", "secp256r1"),
        _suite(0x0178, "AES_256_GCM_IV12_TAG16_HKDF_SHA256", 256, "sha256"),
        _suite(0x0146, "AES_192_GCM_IV12_TAG16_HKDF_SHA256", 192, "sha256"),
        _suite(0x0114, "AES_128_GCM_IV12_TAG16_HKDF_SHA256", 128, "sha256"),
        _suite(0x0078, "AES_256_GCM_IV12_TAG16_NO_KDF", 256, None),
        _suite(0x0046, "AES_192_GCM_IV12_TAG16_NO_KDF", 192, None),
        _suite(0x0014, "AES_128_GCM_IV12_TAG16_NO_KDF", 128, None),
    )
}

DEFAULT_SUITE = SUITES[0x0578]
UNSIGNED_SUITE = SUITES[0x0478]


def suite_by_id(suite_id: int) -> AlgorithmSuite:
    try:
        return SUITES[suite_id]
    except KeyError:
        raise UnsupportedSuiteError(f"unknown algorithm suite 0x{suite_id:04x}") from None


def suite_by_name(name: str) -> AlgorithmSuite:
    """A suite by its ESDK name (``AES_256_GCM_HKDF_SHA512_COMMIT_KEY``) or hex id
    (``0x0478``, ``0478``)."""
    wanted = name.strip()
    for suite in SUITES.values():
        if suite.name.lower() == wanted.lower():
            return suite
    try:
        return suite_by_id(int(wanted, 16))
    except ValueError:
        pass
    raise UnsupportedSuiteError(f"unknown algorithm suite {name!r}")


class CommitmentPolicy(enum.Enum):
    """As the AWS Encryption SDK's: whether encryption must commit, and decryption may read
    non-committing (version 1) messages."""

    FORBID_ENCRYPT_ALLOW_DECRYPT = "forbid-encrypt-allow-decrypt"
    REQUIRE_ENCRYPT_ALLOW_DECRYPT = "require-encrypt-allow-decrypt"
    REQUIRE_ENCRYPT_REQUIRE_DECRYPT = "require-encrypt-require-decrypt"

    def check_encrypt(self, suite: AlgorithmSuite) -> None:
        if self is CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT and suite.committing:
            raise CommitmentPolicyError(
                f"commitment policy {self.value} forbids the committing suite {suite.name}"
            )
        if self is not CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT and not suite.committing:
            raise CommitmentPolicyError(
                f"commitment policy {self.value} requires a committing suite, not {suite.name}"
            )

    def check_decrypt(self, suite: AlgorithmSuite) -> None:
        if self is CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT and not suite.committing:
            raise CommitmentPolicyError(
                f"commitment policy {self.value} refuses the non-committing suite {suite.name} "
                "(a version 1 message); use require-encrypt-allow-decrypt to read it"
            )

    def default_suite(self) -> AlgorithmSuite:
        if self is CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT:
            return SUITES[0x0378]
        return DEFAULT_SUITE


DEFAULT_COMMITMENT_POLICY = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
