"""Shared helpers of the envelope unit tests: an in-memory KMS with boto3's method shapes.

``FakeKMS`` answers GenerateDataKey, Encrypt, Decrypt and DescribeKey like KMS does (key ids,
ARNs and aliases; the encryption context bound as AAD; ``ClientError``-shaped failures), and
counts its calls, so the library can be tested without a server.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.envelope.message import serialize_encryption_context

REGION = "us-east-1"
ACCOUNT = "111122223333"


class FakeClientError(Exception):
    """Shaped like botocore's ClientError: ``response["Error"]["Code"]``."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


class FakeKMS:
    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self.keys: dict[str, bytes] = {}
        self.aliases: dict[str, str] = {}
        self.denied: set[str] = set()  # ARNs whose use is refused (AccessDenied)
        self.calls: Counter[str] = Counter()

    def create_key(self, alias: str | None = None) -> str:
        key_id = str(uuid.uuid4())
        arn = f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key_id}"
        self.keys[arn] = AESGCM.generate_key(256)
        if alias:
            self.aliases[alias] = arn
        return arn

    def _arn(self, key_id: str) -> str:
        if key_id in self.keys:
            return key_id
        if key_id.startswith("alias/"):
            if key_id in self.aliases:
                return self.aliases[key_id]
        else:
            for arn in self.keys:
                if arn.endswith("/" + key_id):
                    return arn
        raise FakeClientError("NotFoundException", f"Key '{key_id}' does not exist")

    def _use(self, key_id: str) -> str:
        arn = self._arn(key_id)
        if arn in self.denied:
            raise FakeClientError("AccessDeniedException", f"not authorized to use {arn}")
        return arn

    def _seal(self, arn: str, plaintext: bytes, context: dict[str, str]) -> bytes:
        iv = os.urandom(12)
        aad = arn.encode() + serialize_encryption_context(context)
        return arn.encode() + b"|" + iv + AESGCM(self.keys[arn]).encrypt(iv, plaintext, aad)

    def generate_data_key(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["GenerateDataKey"] += 1
        arn = self._use(kwargs["KeyId"])
        plaintext = os.urandom(kwargs["NumberOfBytes"])
        blob = self._seal(arn, plaintext, kwargs.get("EncryptionContext") or {})
        return {"KeyId": arn, "Plaintext": plaintext, "CiphertextBlob": blob}

    def encrypt(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["Encrypt"] += 1
        arn = self._use(kwargs["KeyId"])
        blob = self._seal(arn, kwargs["Plaintext"], kwargs.get("EncryptionContext") or {})
        return {"KeyId": arn, "CiphertextBlob": blob}

    def decrypt(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["Decrypt"] += 1
        blob: bytes = kwargs["CiphertextBlob"]
        owner, sep, rest = blob.partition(b"|")
        arn = owner.decode()
        if not sep or arn not in self.keys:
            raise FakeClientError("InvalidCiphertextException")
        if "KeyId" in kwargs and self._arn(kwargs["KeyId"]) != arn:
            raise FakeClientError("IncorrectKeyException", "the key is not the one")
        self._use(arn)
        aad = arn.encode() + serialize_encryption_context(kwargs.get("EncryptionContext") or {})
        try:
            plaintext = AESGCM(self.keys[arn]).decrypt(rest[:12], rest[12:], aad)
        except InvalidTag:
            raise FakeClientError("InvalidCiphertextException") from None
        return {"KeyId": arn, "Plaintext": plaintext}

    def describe_key(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["DescribeKey"] += 1
        arn = self._arn(kwargs["KeyId"])
        return {"KeyMetadata": {"Arn": arn, "KeyId": arn.rsplit("/", 1)[1]}}
