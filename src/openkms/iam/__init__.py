"""IAM and STS over the AWS Query protocol: identities, their policies, temporary credentials.

The HTTP app routes every request whose credential scope names ``iam`` or ``sts`` to
``openkms.iam.dispatch.handle_query``. Entities live as JSON documents in the storage document
store (``openkms.iam.store``); authorization goes through one adapter (``openkms.iam.authz``).

The errors below are IAM's and STS's own codes (``NoSuchEntity``, ``EntityAlreadyExists`` ...).
They are not ``OpenKMSError``s on purpose: that tree is KMS's ``__type`` list. They become XML
in exactly one place, ``openkms.iam.query.error_xml``.
"""

from __future__ import annotations

from typing import ClassVar


class IamError(Exception):
    """An error answered by the IAM or STS endpoint: ``code`` is the XML ``<Code>``."""

    code: ClassVar[str] = "ServiceFailure"
    status: ClassVar[int] = 400
    sender_fault: ClassVar[bool] = True

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class NoSuchEntity(IamError):
    code = "NoSuchEntity"
    status = 404


class EntityAlreadyExists(IamError):
    code = "EntityAlreadyExists"
    status = 409


class MalformedPolicyDocument(IamError):
    code = "MalformedPolicyDocument"
    status = 400


class LimitExceeded(IamError):
    code = "LimitExceeded"
    status = 409


class DeleteConflict(IamError):
    code = "DeleteConflict"
    status = 409


class ValidationError(IamError):
    code = "ValidationError"
    status = 400


class InvalidInput(IamError):
    code = "InvalidInput"
    status = 400


class AccessDenied(IamError):
    code = "AccessDenied"
    status = 403


class InvalidAction(IamError):
    code = "InvalidAction"
    status = 400


class PackedPolicyTooLarge(IamError):
    code = "PackedPolicyTooLarge"
    status = 400


class NotImplementedOperation(IamError):
    """An operation of the model that openkms does not serve (named in the message)."""

    code = "NotImplemented"
    status = 501


class ServiceFailure(IamError):
    code = "ServiceFailure"
    status = 500
    sender_fault = False


__all__ = [
    "AccessDenied",
    "DeleteConflict",
    "EntityAlreadyExists",
    "IamError",
    "InvalidAction",
    "InvalidInput",
    "LimitExceeded",
    "MalformedPolicyDocument",
    "NoSuchEntity",
    "NotImplementedOperation",
    "PackedPolicyTooLarge",
    "ServiceFailure",
    "ValidationError",
]
