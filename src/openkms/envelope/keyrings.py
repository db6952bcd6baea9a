"""The AWS KMS keyring, over any boto3 KMS client (openkms or AWS itself).

Encrypt: ``GenerateDataKey`` under the first key with the encryption context, then ``Encrypt``
of the same data key under each further key. Every encrypted data key has provider id
``aws-kms`` and, as provider info, the key ARN KMS returned. Decrypt: each ``aws-kms`` key whose
ARN the keyring accepts is tried with ``Decrypt(KeyId=<provider info>)`` until one succeeds, as
the AWS Encryption SDK's strict keyring does. Without key ids the keyring is in discovery mode
and tries every ``aws-kms`` key of the message.

Nothing here imports boto3 at module level: a client is anything with the boto3 methods.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from openkms.envelope.errors import (
    KeyAccessError,
    KMSCallError,
    NoDecryptableKeyError,
)
from openkms.envelope.message import EncryptedDataKey
from openkms.envelope.suites import AlgorithmSuite

__all__ = [
    "PROVIDER_ID",
    "ClientSupplier",
    "KMSClient",
    "KmsKeyring",
    "default_client_supplier",
    "is_key_arn",
    "region_of",
]

PROVIDER_ID = "aws-kms"


class KMSClient(Protocol):
    """The part of a boto3 KMS client the keyring uses."""

    def generate_data_key(self, **kwargs: Any) -> Any: ...

    def encrypt(self, **kwargs: Any) -> Any: ...

    def decrypt(self, **kwargs: Any) -> Any: ...

    def describe_key(self, **kwargs: Any) -> Any: ...


ClientSupplier = Callable[[str | None], KMSClient]
"""Returns the KMS client for a region (None: the default region)."""


def _arn_parts(value: str) -> list[str] | None:
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms" or not parts[3]:
        return None
    return parts


def is_key_arn(value: str) -> bool:
    parts = _arn_parts(value)
    return parts is not None and parts[5].startswith("key/") and len(parts[5]) > 4


def region_of(key_id: str) -> str | None:
    parts = _arn_parts(key_id)
    return parts[3] if parts else None


def default_client_supplier(
    session: Any = None, *, endpoint_url: str | None = None, region: str | None = None
) -> ClientSupplier:
    """boto3 clients from ``session`` (a ``boto3.session.Session``; a new one when None), one
    per region, created on first use. The endpoint comes from ``endpoint_url`` or, as boto3
    does, ``AWS_ENDPOINT_URL_KMS`` / ``AWS_ENDPOINT_URL``."""
    boto3 = importlib.import_module("boto3")
    config_module = importlib.import_module("botocore.config")
    own_session = session if session is not None else boto3.session.Session(region_name=region)
    clients: dict[str | None, KMSClient] = {}
    lock = threading.Lock()

    def supply(wanted: str | None) -> KMSClient:
        key = wanted or region
        with lock:
            client = clients.get(key)
            if client is None:
                options: dict[str, Any] = {
                    "config": config_module.Config(
                        retries={"max_attempts": 3, "mode": "standard"},
                        user_agent_extra="openkms-envelope",
                    )
                }
                if key:
                    options["region_name"] = key
                if endpoint_url:
                    options["endpoint_url"] = endpoint_url
                client = own_session.client("kms", **options)
                clients[key] = client
            return client

    return supply


def _failure(key_id: str, exc: Exception) -> KeyAccessError:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code = str(error.get("Code") or type(exc).__name__)
        message = str(error.get("Message") or "")
        return KeyAccessError(key_id, code, message)
    return KeyAccessError(key_id, type(exc).__name__, str(exc))


class KmsKeyring:
    """A keyring of KMS keys (ids, ARNs or aliases; ARNs for decryption in strict mode).

    ``client`` is one KMS client for every key; otherwise ``client_supplier`` gives a client
    per region (the region of each key ARN), by default boto3's from the environment.
    """

    def __init__(
        self,
        key_ids: Sequence[str] = (),
        *,
        client: KMSClient | None = None,
        client_supplier: ClientSupplier | None = None,
        grant_tokens: Sequence[str] = (),
        discovery: bool | None = None,
    ) -> None:
        self.key_ids = tuple(key_ids)
        self.discovery = (not self.key_ids) if discovery is None else discovery
        if not self.discovery and not self.key_ids:
            raise ValueError("a strict KMS keyring needs at least one key id")
        if client is not None:
            fixed = client
            self._supplier: ClientSupplier = lambda _region: fixed
        else:
            self._supplier = client_supplier or default_client_supplier()
        self.grant_tokens = list(grant_tokens)
        self._resolved: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- encrypt ---------------------------------------------------------------------------------
    def on_encrypt(
        self, suite: AlgorithmSuite, encryption_context: Mapping[str, str]
    ) -> tuple[bytes, tuple[EncryptedDataKey, ...]]:
        if not self.key_ids:
            raise ValueError("encryption needs at least one KMS key id")
        generator, *others = self.key_ids
        extra = {"GrantTokens": self.grant_tokens} if self.grant_tokens else {}
        try:
            response = self._supplier(region_of(generator)).generate_data_key(
                KeyId=generator,
                NumberOfBytes=suite.data_key_length,
                EncryptionContext=dict(encryption_context),
                **extra,
            )
        except Exception as exc:
            raise KMSCallError("GenerateDataKey", _failure(generator, exc)) from None
        data_key = bytes(response["Plaintext"])
        arn = str(response["KeyId"])
        if len(data_key) != suite.data_key_length or not is_key_arn(arn):
            raise KMSCallError(
                "GenerateDataKey",
                KeyAccessError(generator, "InvalidResponse", "unexpected key id or key length"),
            )
        edks = [EncryptedDataKey(PROVIDER_ID, arn.encode(), bytes(response["CiphertextBlob"]))]
        for key_id in others:
            try:
                wrapped = self._supplier(region_of(key_id)).encrypt(
                    KeyId=key_id,
                    Plaintext=data_key,
                    EncryptionContext=dict(encryption_context),
                    **extra,
                )
            except Exception as exc:
                raise KMSCallError("Encrypt", _failure(key_id, exc)) from None
            arn = str(wrapped["KeyId"])
            if not is_key_arn(arn):
                raise KMSCallError(
                    "Encrypt", KeyAccessError(key_id, "InvalidResponse", "unexpected key id")
                )
            edks.append(
                EncryptedDataKey(PROVIDER_ID, arn.encode(), bytes(wrapped["CiphertextBlob"]))
            )
        return data_key, tuple(edks)

    # --- decrypt ---------------------------------------------------------------------------------
    def _allowed_arns(self) -> set[str] | None:
        """Key ARNs this keyring may decrypt with (None: discovery, any)."""
        if self.discovery:
            return None
        allowed: set[str] = set()
        for key_id in self.key_ids:
            if is_key_arn(key_id):
                allowed.add(key_id)
                continue
            allowed.add(self._resolve(key_id))
        return allowed

    def _resolve(self, key_id: str) -> str:
        """The key ARN behind a key id or alias (DescribeKey, remembered)."""
        with self._lock:
            known = self._resolved.get(key_id)
        if known is not None:
            return known
        try:
            response = self._supplier(region_of(key_id)).describe_key(KeyId=key_id)
        except Exception as exc:
            raise KMSCallError("DescribeKey", _failure(key_id, exc)) from None
        arn = str(response["KeyMetadata"]["Arn"])
        with self._lock:
            self._resolved[key_id] = arn
        return arn

    def on_decrypt(
        self,
        suite: AlgorithmSuite,
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        encryption_context: Mapping[str, str],
    ) -> bytes:
        allowed = self._allowed_arns()
        message_keys: list[str] = []
        candidates: list[tuple[str, EncryptedDataKey]] = []
        for edk in encrypted_data_keys:
            if edk.provider_id != PROVIDER_ID:
                continue
            try:
                arn = edk.provider_info.decode("utf-8")
            except UnicodeDecodeError:
                continue
            message_keys.append(arn)
            if not is_key_arn(arn):
                continue
            if allowed is None or arn in allowed:
                candidates.append((arn, edk))
        if not candidates:
            if not message_keys:
                reason = "the message has no AWS KMS encrypted data keys"
            else:
                reason = (
                    "the message was not encrypted under any of the given keys; it can be "
                    "decrypted with: " + ", ".join(message_keys)
                )
            raise NoDecryptableKeyError(reason, (), tuple(message_keys))
        failures: list[KeyAccessError] = []
        extra = {"GrantTokens": self.grant_tokens} if self.grant_tokens else {}
        for arn, edk in candidates:
            try:
                response = self._supplier(region_of(arn)).decrypt(
                    KeyId=arn,
                    CiphertextBlob=edk.ciphertext,
                    EncryptionContext=dict(encryption_context),
                    **extra,
                )
            except Exception as exc:
                failures.append(_failure(arn, exc))
                continue
            data_key = bytes(response["Plaintext"])
            if str(response.get("KeyId")) != arn:
                failures.append(KeyAccessError(arn, "InvalidResponse", "KMS used another key"))
                continue
            if len(data_key) != suite.data_key_length:
                failures.append(
                    KeyAccessError(arn, "InvalidResponse", "data key of the wrong length")
                )
                continue
            return data_key
        raise NoDecryptableKeyError(
            "no encrypted data key of the message could be decrypted",
            tuple(failures),
            tuple(message_keys),
        )
