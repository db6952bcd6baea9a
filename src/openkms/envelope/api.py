"""The simple top layer: :class:`EnvelopeClient` and the module-level ``encrypt``/``decrypt``.

    from openkms.envelope import encrypt, decrypt
    message = encrypt(b"secret", "alias/app", {"purpose": "demo"})
    plaintext = decrypt(message, required_context={"purpose": "demo"})

KMS is reached through boto3 (endpoint, region and credentials from the environment, e.g.
``AWS_ENDPOINT_URL_KMS`` for openkms), or through the client passed as ``kms=``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from openkms.envelope.cache import CacheLimits, CachingMaterialsManager, LocalCache
from openkms.envelope.keyrings import ClientSupplier, KMSClient, KmsKeyring, default_client_supplier
from openkms.envelope.materials import (
    DefaultMaterialsManager,
    EncryptionMaterials,
    EncryptionRequest,
    MaterialsManager,
)
from openkms.envelope.message import MessageHeader
from openkms.envelope.stream import (
    DEFAULT_FRAME_LENGTH,
    DEFAULT_MAX_FRAME_LENGTH,
    DecryptingReader,
    EncryptingReader,
    EncryptingWriter,
    MessageDecryptor,
    MessageEncryptor,
    encrypt_with,
)
from openkms.envelope.suites import (
    DEFAULT_COMMITMENT_POLICY,
    AlgorithmSuite,
    CommitmentPolicy,
    suite_by_name,
)

__all__ = ["Decrypted", "EnvelopeClient", "decrypt", "encrypt"]

KeyIds = str | Sequence[str]


def _key_tuple(key_ids: KeyIds | None) -> tuple[str, ...]:
    if key_ids is None:
        return ()
    if isinstance(key_ids, str):
        return (key_ids,)
    return tuple(key_ids)


@dataclass(frozen=True)
class Decrypted:
    plaintext: bytes = field(repr=False)
    header: MessageHeader

    @property
    def encryption_context(self) -> Mapping[str, str]:
        return self.header.encryption_context


class EnvelopeClient:
    """Encrypts and decrypts AWS Encryption SDK messages with KMS keys.

    ``kms``: one boto3 KMS client for every key (else one per key region from ``session``,
    ``region``, ``endpoint_url`` or the environment). ``suite``: an :class:`AlgorithmSuite` or
    its name (default ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384``, as the SDK).
    ``cache``: data-key caching limits (off when None). ``materials_manager``: use this one
    instead of a KMS keyring (then key ids passed to the methods are ignored).
    """

    def __init__(
        self,
        *,
        kms: KMSClient | None = None,
        client_supplier: ClientSupplier | None = None,
        session: Any = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        commitment_policy: CommitmentPolicy = DEFAULT_COMMITMENT_POLICY,
        suite: AlgorithmSuite | str | None = None,
        frame_length: int = DEFAULT_FRAME_LENGTH,
        cache: CacheLimits | None = None,
        cache_capacity: int = 1000,
        grant_tokens: Sequence[str] = (),
        max_encrypted_data_keys: int | None = None,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        materials_manager: MaterialsManager | None = None,
    ) -> None:
        self.commitment_policy = commitment_policy
        self.suite = self._suite(suite) if suite is not None else commitment_policy.default_suite()
        commitment_policy.check_encrypt(self.suite)
        self.frame_length = frame_length
        self.grant_tokens = tuple(grant_tokens)
        self.max_encrypted_data_keys = max_encrypted_data_keys
        self.max_frame_length = max_frame_length
        self.cache_limits = cache
        self.cache = LocalCache(cache_capacity) if cache is not None else None
        self._fixed_manager = materials_manager
        self._kms = kms
        self._supplier_args = (client_supplier, session, region, endpoint_url)
        self._supplier: ClientSupplier | None = client_supplier
        self._managers: dict[tuple[str, ...], MaterialsManager] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _suite(suite: AlgorithmSuite | str) -> AlgorithmSuite:
        return suite_by_name(suite) if isinstance(suite, str) else suite

    def _client_supplier(self) -> ClientSupplier:
        if self._kms is not None:
            fixed = self._kms
            return lambda _region: fixed
        if self._supplier is None:
            _, session, region, endpoint_url = self._supplier_args
            self._supplier = default_client_supplier(
                session, endpoint_url=endpoint_url, region=region
            )
        return self._supplier

    def materials_manager(self, key_ids: KeyIds | None = None) -> MaterialsManager:
        """The materials manager for these keys (discovery when none), caching if configured.
        One per key set, kept, so that cached data keys are reused across calls."""
        if self._fixed_manager is not None:
            return self._fixed_manager
        keys = _key_tuple(key_ids)
        with self._lock:
            manager = self._managers.get(keys)
            if manager is None:
                keyring = KmsKeyring(
                    keys, client_supplier=self._client_supplier(), grant_tokens=self.grant_tokens
                )
                manager = DefaultMaterialsManager(keyring)
                if self.cache_limits is not None and self.cache is not None:
                    manager = CachingMaterialsManager(
                        manager, self.cache_limits, cache=self.cache, partition="\x00".join(keys)
                    )
                self._managers[keys] = manager
            return manager

    # --- encryption ------------------------------------------------------------------------------
    def encryption_materials(
        self,
        key_ids: KeyIds,
        context: Mapping[str, str] | None = None,
        *,
        suite: AlgorithmSuite | str | None = None,
        plaintext_length: int | None = None,
    ) -> EncryptionMaterials:
        chosen = self._suite(suite) if suite is not None else self.suite
        if not _key_tuple(key_ids) and self._fixed_manager is None:
            raise ValueError("encryption needs at least one KMS key id")
        return self.materials_manager(key_ids).get_encryption_materials(
            EncryptionRequest(dict(context or {}), chosen, self.commitment_policy, plaintext_length)
        )

    def _check_edk_count(self, materials: EncryptionMaterials) -> None:
        limit = self.max_encrypted_data_keys
        if limit is not None and len(materials.encrypted_data_keys) > limit:
            raise ValueError(
                f"{len(materials.encrypted_data_keys)} encrypted data keys, more than {limit}"
            )

    def encrypt(
        self,
        data: bytes | bytearray | memoryview,
        key_ids: KeyIds,
        context: Mapping[str, str] | None = None,
        *,
        suite: AlgorithmSuite | str | None = None,
        frame_length: int | None = None,
    ) -> bytes:
        """The message that encrypts ``data`` under ``key_ids`` (any one of them decrypts)."""
        out = io.BytesIO()
        self.encrypt_stream(
            io.BytesIO(bytes(data)),
            out,
            key_ids,
            context,
            suite=suite,
            frame_length=frame_length,
            plaintext_length=len(data),
        )
        return out.getvalue()

    def encrypt_stream(
        self,
        source: BinaryIO,
        sink: BinaryIO,
        key_ids: KeyIds,
        context: Mapping[str, str] | None = None,
        *,
        suite: AlgorithmSuite | str | None = None,
        frame_length: int | None = None,
        plaintext_length: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> MessageHeader:
        """Encrypts everything ``source`` yields into ``sink``, frame by frame."""
        materials = self.encryption_materials(
            key_ids, context, suite=suite, plaintext_length=plaintext_length
        )
        self._check_edk_count(materials)
        encryptor = MessageEncryptor(materials, frame_length or self.frame_length)
        for piece in encrypt_with(encryptor, source, on_progress):
            sink.write(piece)
        return encryptor.header

    def open_encrypt(
        self,
        sink: BinaryIO,
        key_ids: KeyIds,
        context: Mapping[str, str] | None = None,
        *,
        suite: AlgorithmSuite | str | None = None,
        frame_length: int | None = None,
        plaintext_length: int | None = None,
    ) -> EncryptingWriter:
        """A writable stream: plaintext written to it goes encrypted into ``sink``; close it
        to finish the message."""
        materials = self.encryption_materials(
            key_ids, context, suite=suite, plaintext_length=plaintext_length
        )
        self._check_edk_count(materials)
        return EncryptingWriter(materials, sink, frame_length or self.frame_length)

    def encrypting_reader(
        self,
        source: BinaryIO,
        key_ids: KeyIds,
        context: Mapping[str, str] | None = None,
        *,
        suite: AlgorithmSuite | str | None = None,
        frame_length: int | None = None,
        plaintext_length: int | None = None,
    ) -> EncryptingReader:
        """A readable stream of the message that encrypts what ``source`` yields."""
        materials = self.encryption_materials(
            key_ids, context, suite=suite, plaintext_length=plaintext_length
        )
        self._check_edk_count(materials)
        return EncryptingReader(materials, source, frame_length or self.frame_length)

    # --- decryption ------------------------------------------------------------------------------
    def decryptor(
        self,
        source: BinaryIO,
        *,
        key_ids: KeyIds | None = None,
        required_context: Mapping[str, str | None] | None = None,
        allow_trailing_data: bool = False,
        unsigned_only: bool = False,
    ) -> MessageDecryptor:
        """Reads and authenticates the header of the message in ``source``. ``key_ids``: only
        these KMS keys may decrypt (strict); none: any key the message names (discovery)."""
        return MessageDecryptor(
            source,
            self.materials_manager(key_ids),
            commitment_policy=self.commitment_policy,
            required_context=required_context,
            max_encrypted_data_keys=self.max_encrypted_data_keys,
            max_frame_length=self.max_frame_length,
            allow_trailing_data=allow_trailing_data,
            unsigned_only=unsigned_only,
        )

    def open_decrypt(
        self,
        source: BinaryIO,
        *,
        key_ids: KeyIds | None = None,
        required_context: Mapping[str, str | None] | None = None,
    ) -> DecryptingReader:
        """A readable stream of the plaintext; reading past the end raises if the message
        turns out truncated or altered."""
        return DecryptingReader(
            self.decryptor(source, key_ids=key_ids, required_context=required_context)
        )

    def decrypt_stream(
        self,
        source: BinaryIO,
        sink: BinaryIO,
        *,
        key_ids: KeyIds | None = None,
        required_context: Mapping[str, str | None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> MessageHeader:
        decryptor = self.decryptor(source, key_ids=key_ids, required_context=required_context)
        for chunk in decryptor.chunks(on_progress):
            sink.write(chunk)
        return decryptor.header

    def decrypt_message(
        self,
        message: bytes | bytearray | memoryview,
        *,
        key_ids: KeyIds | None = None,
        required_context: Mapping[str, str | None] | None = None,
    ) -> Decrypted:
        decryptor = self.decryptor(
            io.BytesIO(bytes(message)), key_ids=key_ids, required_context=required_context
        )
        plaintext = b"".join(decryptor.chunks())
        return Decrypted(plaintext, decryptor.header)

    def decrypt(
        self,
        message: bytes | bytearray | memoryview,
        *,
        key_ids: KeyIds | None = None,
        required_context: Mapping[str, str | None] | None = None,
    ) -> bytes:
        """The plaintext of ``message`` (fully verified before it is returned)."""
        return self.decrypt_message(
            message, key_ids=key_ids, required_context=required_context
        ).plaintext


_default: EnvelopeClient | None = None
_default_lock = threading.Lock()


def _client(options: dict[str, Any]) -> EnvelopeClient:
    global _default
    if options:
        return EnvelopeClient(**options)
    with _default_lock:
        if _default is None:
            _default = EnvelopeClient()
        return _default


def encrypt(
    data: bytes | bytearray | memoryview,
    key_id: KeyIds,
    context: Mapping[str, str] | None = None,
    **options: Any,
) -> bytes:
    """Encrypts ``data`` under the KMS key ``key_id`` (or several: any one decrypts), binding
    ``context``. ``options`` are :class:`EnvelopeClient` arguments (``kms=``, ``suite=``...)."""
    return _client(options).encrypt(data, key_id, context)


def decrypt(
    message: bytes | bytearray | memoryview,
    key_ids: KeyIds | None = None,
    required_context: Mapping[str, str | None] | None = None,
    **options: Any,
) -> bytes:
    """The plaintext of ``message``. ``key_ids``: accept only these KMS keys (default: the key
    named in the message). ``required_context``: pairs the message's context must hold."""
    return _client(options).decrypt(message, key_ids=key_ids, required_context=required_context)
