"""Every error openkms can answer, one class per AWS ``__type``.

The tree::

    OpenKMSError                      (abstract; code, status, server_fault)
    ├── client faults (HTTP 400)       every KMS modelled exception that is not a server fault,
    │                                  plus the protocol ones: ValidationException,
    │                                  SerializationException, UnknownOperationException,
    │                                  AccessDeniedException, ThrottlingException,
    │                                  the SigV4 ones (MissingAuthenticationToken, ...)
    ├── RequestEntityTooLarge (413)
    └── server faults (HTTP 500)       KMSInternalException, DependencyTimeoutException,
                                       KeyUnavailableException

Errors become HTTP in exactly one place (``protocol.errors``) by reading ``code`` and
``status``, never message text.
"""

from __future__ import annotations

from typing import ClassVar


class OpenKMSError(Exception):
    """Base of every error that is answered to a client. An empty ``message`` means AWS sends
    none: the body then has no ``message`` member (``protocol.errors``)."""

    code: ClassVar[str] = "KMSInternalException"
    status: ClassVar[int] = 400
    server_fault: ClassVar[bool] = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ClientError(OpenKMSError):
    status = 400


class ServerError(OpenKMSError):
    status = 500
    server_fault = True


# --- Protocol and authentication -----------------------------------------------------------
class ValidationException(ClientError):
    code = "ValidationException"


class SerializationException(ClientError):
    code = "SerializationException"


class UnknownOperationException(ClientError):
    code = "UnknownOperationException"


class AccessDeniedException(ClientError):
    code = "AccessDeniedException"


class ThrottlingException(ClientError):
    code = "ThrottlingException"


class MissingAuthenticationTokenException(ClientError):
    code = "MissingAuthenticationTokenException"


class IncompleteSignatureException(ClientError):
    code = "IncompleteSignatureException"


class UnrecognizedClientException(ClientError):
    code = "UnrecognizedClientException"


class InvalidSignatureException(ClientError):
    code = "InvalidSignatureException"


class ExpiredTokenException(ClientError):
    code = "ExpiredTokenException"


class InvalidClientTokenId(ClientError):
    code = "InvalidClientTokenId"
    status = 403


class RequestEntityTooLarge(ClientError):
    code = "RequestEntityTooLarge"
    status = 413


class OperationNotImplementedException(ClientError):
    """An operation of the model that this build does not implement yet (named in the message)."""

    code = "UnsupportedOperationException"


# --- KMS modelled exceptions (client faults) ------------------------------------------------
class AlreadyExistsException(ClientError):
    code = "AlreadyExistsException"


class CloudHsmClusterInUseException(ClientError):
    code = "CloudHsmClusterInUseException"


class CloudHsmClusterInvalidConfigurationException(ClientError):
    code = "CloudHsmClusterInvalidConfigurationException"


class CloudHsmClusterNotActiveException(ClientError):
    code = "CloudHsmClusterNotActiveException"


class CloudHsmClusterNotFoundException(ClientError):
    code = "CloudHsmClusterNotFoundException"


class CloudHsmClusterNotRelatedException(ClientError):
    code = "CloudHsmClusterNotRelatedException"


class ConflictException(ClientError):
    code = "ConflictException"


class CustomKeyStoreHasCMKsException(ClientError):
    code = "CustomKeyStoreHasCMKsException"


class CustomKeyStoreInvalidStateException(ClientError):
    code = "CustomKeyStoreInvalidStateException"


class CustomKeyStoreNameInUseException(ClientError):
    code = "CustomKeyStoreNameInUseException"


class CustomKeyStoreNotFoundException(ClientError):
    code = "CustomKeyStoreNotFoundException"


class DisabledException(ClientError):
    code = "DisabledException"


class DryRunOperationException(ClientError):
    code = "DryRunOperationException"


class ExpiredImportTokenException(ClientError):
    code = "ExpiredImportTokenException"


class IncorrectKeyException(ClientError):
    code = "IncorrectKeyException"


class IncorrectKeyMaterialException(ClientError):
    code = "IncorrectKeyMaterialException"


class IncorrectTrustAnchorException(ClientError):
    code = "IncorrectTrustAnchorException"


class InvalidAliasNameException(ClientError):
    code = "InvalidAliasNameException"


class InvalidArnException(ClientError):
    code = "InvalidArnException"


class InvalidCiphertextException(ClientError):
    code = "InvalidCiphertextException"


class InvalidGrantIdException(ClientError):
    code = "InvalidGrantIdException"


class InvalidGrantTokenException(ClientError):
    code = "InvalidGrantTokenException"


class InvalidImportTokenException(ClientError):
    code = "InvalidImportTokenException"


class InvalidKeyUsageException(ClientError):
    code = "InvalidKeyUsageException"


class InvalidMarkerException(ClientError):
    code = "InvalidMarkerException"


class KMSInvalidMacException(ClientError):
    code = "KMSInvalidMacException"


class KMSInvalidSignatureException(ClientError):
    code = "KMSInvalidSignatureException"


class KMSInvalidStateException(ClientError):
    code = "KMSInvalidStateException"


class LimitExceededException(ClientError):
    code = "LimitExceededException"


class MalformedPolicyDocumentException(ClientError):
    code = "MalformedPolicyDocumentException"


class NotFoundException(ClientError):
    code = "NotFoundException"


class TagException(ClientError):
    code = "TagException"


class UnsupportedOperationException(ClientError):
    code = "UnsupportedOperationException"


class XksKeyAlreadyInUseException(ClientError):
    code = "XksKeyAlreadyInUseException"


class XksKeyInvalidConfigurationException(ClientError):
    code = "XksKeyInvalidConfigurationException"


class XksKeyNotFoundException(ClientError):
    code = "XksKeyNotFoundException"


class XksProxyIncorrectAuthenticationCredentialException(ClientError):
    code = "XksProxyIncorrectAuthenticationCredentialException"


class XksProxyInvalidConfigurationException(ClientError):
    code = "XksProxyInvalidConfigurationException"


class XksProxyInvalidResponseException(ClientError):
    code = "XksProxyInvalidResponseException"


class XksProxyUriEndpointInUseException(ClientError):
    code = "XksProxyUriEndpointInUseException"


class XksProxyUriInUseException(ClientError):
    code = "XksProxyUriInUseException"


class XksProxyUriUnreachableException(ClientError):
    code = "XksProxyUriUnreachableException"


class XksProxyVpcEndpointServiceInUseException(ClientError):
    code = "XksProxyVpcEndpointServiceInUseException"


class XksProxyVpcEndpointServiceInvalidConfigurationException(ClientError):
    code = "XksProxyVpcEndpointServiceInvalidConfigurationException"


class XksProxyVpcEndpointServiceNotFoundException(ClientError):
    code = "XksProxyVpcEndpointServiceNotFoundException"


# --- Server faults ---------------------------------------------------------------------------
class KMSInternalException(ServerError):
    code = "KMSInternalException"


class DependencyTimeoutException(ServerError):
    code = "DependencyTimeoutException"


class KeyUnavailableException(ServerError):
    code = "KeyUnavailableException"


class ServiceUnavailableException(ServerError):
    """The server is sealed or shutting down; retry later."""

    code = "ServiceUnavailableException"
    status = 503


# One fixed message for every cryptographic failure, so that nothing about the cause leaks: none
# at all, as AWS answers ``{"__type":"InvalidCiphertextException"}``.
INVALID_CIPHERTEXT_MESSAGE = ""


def invalid_ciphertext() -> InvalidCiphertextException:
    return InvalidCiphertextException(INVALID_CIPHERTEXT_MESSAGE)


def all_error_classes() -> dict[str, type[OpenKMSError]]:
    """Every concrete error class by its AWS ``__type``."""
    found: dict[str, type[OpenKMSError]] = {}
    stack: list[type[OpenKMSError]] = [OpenKMSError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls not in (OpenKMSError, ClientError, ServerError, OperationNotImplementedException):
            found.setdefault(cls.code, cls)
    return found
