"""Errors of the envelope library. Messages never contain plaintext or key material."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationError",
    "CommitmentPolicyError",
    "EncryptionContextError",
    "EnvelopeError",
    "KMSCallError",
    "KeyAccessError",
    "MalformedMessageError",
    "NoDecryptableKeyError",
    "TruncatedMessageError",
    "UnsupportedSuiteError",
]


class EnvelopeError(Exception):
    """Base class of every error raised by :mod:`openkms.envelope`."""


class MalformedMessageError(EnvelopeError):
    """The bytes are not a well-formed AWS Encryption SDK message."""


class TruncatedMessageError(MalformedMessageError):
    """The message ends before its final frame (or its footer): it was cut short."""


class AuthenticationError(EnvelopeError):
    """A header tag, frame tag, key commitment or signature did not verify: the message was
    altered, or it was not made with the key it names."""


class UnsupportedSuiteError(EnvelopeError):
    """An algorithm suite id this library does not know, or may not use here."""


class CommitmentPolicyError(EnvelopeError):
    """The commitment policy forbids this algorithm suite."""


class EncryptionContextError(EnvelopeError):
    """The encryption context is invalid, or does not hold what the caller requires."""


@dataclass(frozen=True)
class KeyAccessError:
    """Why one encrypted data key could not be used: the KMS key (ARN), the AWS error code
    (``AccessDeniedException``, ``IncorrectKeyException``, ...) and its message."""

    key_id: str
    code: str
    message: str

    def describe(self) -> str:
        return (
            f"{self.key_id}: {self.code}: {self.message}"
            if self.message
            else (f"{self.key_id}: {self.code}")
        )


ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)
WRONG_KEY_CODES = frozenset(
    {"IncorrectKeyException", "InvalidCiphertextException", "NotFoundException", "NoMatchingKey"}
)


class KMSCallError(EnvelopeError):
    """A KMS call failed (GenerateDataKey, Encrypt, Decrypt, DescribeKey)."""

    def __init__(self, operation: str, failure: KeyAccessError) -> None:
        super().__init__(f"KMS {operation} failed for {failure.describe()}")
        self.operation = operation
        self.failure = failure

    @property
    def access_denied(self) -> bool:
        return self.failure.code in ACCESS_DENIED_CODES


class NoDecryptableKeyError(EnvelopeError):
    """None of the message's encrypted data keys could be decrypted. ``failures`` lists what
    KMS said for each key that was tried; ``message_keys`` names every key in the message."""

    def __init__(
        self,
        reason: str,
        failures: tuple[KeyAccessError, ...] = (),
        message_keys: tuple[str, ...] = (),
    ) -> None:
        detail = "".join(f"\n  {f.describe()}" for f in failures)
        super().__init__(reason + detail)
        self.reason = reason
        self.failures = failures
        self.message_keys = message_keys

    @property
    def access_denied(self) -> bool:
        """True when every key that was tried failed for lack of permission."""
        return bool(self.failures) and all(f.code in ACCESS_DENIED_CODES for f in self.failures)
