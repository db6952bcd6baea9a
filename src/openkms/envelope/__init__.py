"""Envelope encryption for applications, in the AWS Encryption SDK message format.

Messages made here decrypt with the AWS Encryption SDK (and its CLI) and the other way round:
version 2 messages with key commitment (suites 0x0478 and, signed with ECDSA P-384, 0x0578),
and version 1 messages are read. Data keys come from any KMS endpoint through boto3 (openkms
or AWS KMS). This package imports nothing of the openkms server.

Top layer::

    from openkms.envelope import encrypt, decrypt, EnvelopeClient
    blob = encrypt(b"data", "alias/app", {"tenant": "a"})
    data = decrypt(blob, required_context={"tenant": "a"})

Streams: :meth:`EnvelopeClient.open_encrypt` (a writer), :meth:`EnvelopeClient.open_decrypt`
(a reader), :meth:`EnvelopeClient.encrypt_stream` / :meth:`EnvelopeClient.decrypt_stream`.
The format is summarised in ``docs/formats/envelope.md``.
"""

from openkms.envelope.api import Decrypted, EnvelopeClient, decrypt, encrypt
from openkms.envelope.cache import CacheLimits, CachingMaterialsManager, LocalCache
from openkms.envelope.errors import (
    AuthenticationError,
    CommitmentPolicyError,
    EncryptionContextError,
    EnvelopeError,
    KeyAccessError,
    KMSCallError,
    MalformedMessageError,
    NoDecryptableKeyError,
    TruncatedMessageError,
    UnsupportedSuiteError,
)
from openkms.envelope.keyrings import KmsKeyring
from openkms.envelope.materials import DefaultMaterialsManager
from openkms.envelope.message import EncryptedDataKey, MessageHeader
from openkms.envelope.stream import DecryptingReader, EncryptingReader, EncryptingWriter
from openkms.envelope.suites import (
    DEFAULT_SUITE,
    SUITES,
    UNSIGNED_SUITE,
    AlgorithmSuite,
    CommitmentPolicy,
    suite_by_id,
    suite_by_name,
)

__all__ = [
    "DEFAULT_SUITE",
    "SUITES",
    "UNSIGNED_SUITE",
    "AlgorithmSuite",
    "AuthenticationError",
    "CacheLimits",
    "CachingMaterialsManager",
    "CommitmentPolicy",
    "CommitmentPolicyError",
    "Decrypted",
    "DecryptingReader",
    "DefaultMaterialsManager",
    "EncryptedDataKey",
    "EncryptingReader",
    "EncryptingWriter",
    "EncryptionContextError",
    "EnvelopeClient",
    "EnvelopeError",
    "KMSCallError",
    "KeyAccessError",
    "KmsKeyring",
    "LocalCache",
    "MalformedMessageError",
    "MessageHeader",
    "NoDecryptableKeyError",
    "TruncatedMessageError",
    "UnsupportedSuiteError",
    "decrypt",
    "encrypt",
    "suite_by_id",
    "suite_by_name",
]
