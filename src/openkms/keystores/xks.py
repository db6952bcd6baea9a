"""A client of AWS's External Key Store (XKS) proxy API, version 1.

Every call is ``POST {UriEndpoint}{UriPath}/...`` with a JSON body, signed with SigV4 (service
``kms-xks-proxy``, the KMS Region, the store's XksProxyAuthenticationCredential), over HTTPS
verified against ``xks_proxy_ca_file`` or the system trust store:

    /health                              GetHealthStatus
    /keys/{externalKeyId}/metadata       GetKeyMetadata
    /keys/{externalKeyId}/encrypt        Encrypt (AES_GCM, AAD; the proxy picks the IV)
    /keys/{externalKeyId}/decrypt        Decrypt

Failures become ``XksError`` (the proxy answered with an ``errorName``),
``StoreConnectionError`` (unreachable, timed out, bad TLS, not the XKS API) — callers map both
to the KMS errors of the operation at hand.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from openkms.keystores import DEFAULT_XKS_TIMEOUT_SECONDS, StoreConnectionError

SERVICE = "kms-xks-proxy"
AES_GCM = "AES_GCM"


class XksError(Exception):
    """The proxy answered with an error: ``name`` is its errorName (AuthenticationFailedException,
    KeyNotFoundException, InvalidCiphertextException, ...)."""

    def __init__(self, name: str, message: str, status: int) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Encrypted:
    ciphertext: bytes
    iv: bytes
    tag: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(doc: dict[str, Any], name: str) -> bytes:
    value = doc.get(name)
    if not isinstance(value, str):
        raise StoreConnectionError(
            "XKS_PROXY_INVALID_RESPONSE", f"The proxy's answer has no {name}."
        )
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise StoreConnectionError(
            "XKS_PROXY_INVALID_RESPONSE", f"The proxy's {name} is not base64."
        ) from None


@dataclass(frozen=True)
class XksClient:
    uri_endpoint: str  # https://host
    uri_path: str  # /.../kms/xks/v1
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    ca_file: str | None = None
    timeout: float = DEFAULT_XKS_TIMEOUT_SECONDS

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _post(self, suffix: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.uri_endpoint}{self.uri_path}{suffix}"
        data = json.dumps(body, separators=(",", ":")).encode()
        request = AWSRequest(
            method="POST", url=url, data=data, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(
            Credentials(self.access_key_id, self.secret_access_key), SERVICE, self.region
        ).add_auth(request)
        prepared = urllib.request.Request(  # noqa: S310 - https only (the model's pattern)
            url, data=data, headers=dict(request.headers.items()), method="POST"
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                prepared, timeout=self.timeout, context=self._context()
            ) as response:
                raw = response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        except TimeoutError:
            raise StoreConnectionError(
                "XKS_PROXY_TIMED_OUT", "The external key store proxy did not answer in time."
            ) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLError):
                raise StoreConnectionError(
                    "XKS_PROXY_INVALID_TLS_CONFIGURATION",
                    "The external key store proxy's TLS certificate is not trusted.",
                ) from None
            if isinstance(reason, TimeoutError):
                raise StoreConnectionError(
                    "XKS_PROXY_TIMED_OUT", "The external key store proxy did not answer in time."
                ) from None
            raise StoreConnectionError(
                "XKS_PROXY_NOT_REACHABLE", "The external key store proxy is not reachable."
            ) from None
        except (OSError, http.client.HTTPException):
            raise StoreConnectionError(
                "XKS_PROXY_NOT_REACHABLE", "The external key store proxy is not reachable."
            ) from None
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise StoreConnectionError(
                "XKS_PROXY_INVALID_RESPONSE", "The external key store proxy's answer is not JSON."
            )
        if status >= 300:
            name = doc.get("errorName")
            if not isinstance(name, str):
                raise StoreConnectionError(
                    "XKS_PROXY_INVALID_RESPONSE",
                    f"The external key store proxy answered HTTP {status} without an errorName.",
                )
            raise XksError(name, str(doc.get("errorMessage", "")), status)
        return doc

    @staticmethod
    def _metadata(operation: str, request_id: str, **more: str) -> dict[str, str]:
        meta = {"kmsOperation": operation, "kmsRequestId": request_id}
        meta.update({k: v for k, v in more.items() if v})
        return meta

    def health(self, operation: str, request_id: str) -> dict[str, Any]:
        doc = self._post("/health", {"requestMetadata": self._metadata(operation, request_id)})
        if not isinstance(doc.get("ekmFleetDetails"), list):
            raise StoreConnectionError(
                "XKS_PROXY_INVALID_RESPONSE",
                "The external key store proxy's health status has no ekmFleetDetails.",
            )
        return doc

    def key_metadata(
        self, key_id: str, operation: str, request_id: str, principal: str, key_arn: str = ""
    ) -> dict[str, Any]:
        meta = self._metadata(operation, request_id, awsPrincipalArn=principal, kmsKeyArn=key_arn)
        return self._post(f"/keys/{key_id}/metadata", {"requestMetadata": meta})

    def encrypt(
        self,
        key_id: str,
        plaintext: bytes,
        aad: bytes,
        *,
        operation: str,
        request_id: str,
        principal: str,
        key_arn: str,
    ) -> Encrypted:
        meta = self._metadata(operation, request_id, awsPrincipalArn=principal, kmsKeyArn=key_arn)
        doc = self._post(
            f"/keys/{key_id}/encrypt",
            {
                "requestMetadata": meta,
                "plaintext": _b64(plaintext),
                "encryptionAlgorithm": AES_GCM,
                "additionalAuthenticatedData": _b64(aad),
            },
        )
        return Encrypted(
            _unb64(doc, "ciphertext"),
            _unb64(doc, "initializationVector"),
            _unb64(doc, "authenticationTag"),
        )

    def decrypt(
        self,
        key_id: str,
        sealed: Encrypted,
        aad: bytes,
        *,
        operation: str,
        request_id: str,
        principal: str,
        key_arn: str,
    ) -> bytes:
        meta = self._metadata(operation, request_id, awsPrincipalArn=principal, kmsKeyArn=key_arn)
        doc = self._post(
            f"/keys/{key_id}/decrypt",
            {
                "requestMetadata": meta,
                "ciphertext": _b64(sealed.ciphertext),
                "encryptionAlgorithm": AES_GCM,
                "initializationVector": _b64(sealed.iv),
                "authenticationTag": _b64(sealed.tag),
                "additionalAuthenticatedData": _b64(aad),
            },
        )
        return _unb64(doc, "plaintext")
