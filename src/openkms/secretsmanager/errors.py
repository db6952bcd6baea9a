"""Secrets Manager's error codes (the exceptions of its model), as ``OpenKMSError``s so that the
HTTP layer answers them like every other error: by ``code`` and ``status``, never by text.

Secrets Manager words its modelled errors with a capital ``Message`` member; the protocol-level
ones (ValidationException, SerializationException, the SigV4 ones) keep ``message``
(``dispatch.error_body``)."""

from __future__ import annotations

from openkms.errors import ClientError, ServerError

NOT_FOUND = "Secrets Manager can't find the specified secret."
NOT_FOUND_VERSION = "Secrets Manager can't find the specified secret value for staging label: {}"


class SecretsError(ClientError):
    """A modelled Secrets Manager client error."""


class ResourceNotFoundException(SecretsError):
    code = "ResourceNotFoundException"

    def __init__(self, message: str = NOT_FOUND) -> None:
        super().__init__(message)


class InvalidParameterException(SecretsError):
    code = "InvalidParameterException"


class InvalidRequestException(SecretsError):
    code = "InvalidRequestException"


class InvalidNextTokenException(SecretsError):
    code = "InvalidNextTokenException"


class ResourceExistsException(SecretsError):
    code = "ResourceExistsException"


class LimitExceededException(SecretsError):
    code = "LimitExceededException"


class EncryptionFailure(SecretsError):
    code = "EncryptionFailure"


class DecryptionFailure(SecretsError):
    code = "DecryptionFailure"


class MalformedPolicyDocumentException(SecretsError):
    code = "MalformedPolicyDocumentException"


class PreconditionNotMetException(SecretsError):
    code = "PreconditionNotMetException"


class PublicPolicyException(SecretsError):
    code = "PublicPolicyException"


class InternalServiceError(ServerError):
    code = "InternalServiceError"


class NotImplementedHere(InvalidRequestException):
    """An operation of the model that this server does not (yet) perform: answered as
    Secrets Manager answers a request it cannot carry out (InvalidRequestException), naming the
    operation, never as a 500."""
