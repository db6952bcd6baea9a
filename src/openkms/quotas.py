"""AWS KMS's request quotas: which quota each operation counts against, and AWS's default
rates (requests per second, from the "Request quotas" page of the KMS developer guide; see
docs/configuration.md). Data and its validation only: the settings check overrides against it
(``openkms.config``) and the HTTP layer enforces it (``openkms.http.ratelimit``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

SYMMETRIC = "symmetric"
RSA = "rsa"
ECC = "ecc"
ML_DSA = "ml_dsa"
ML_KEM = "ml_kem"
DATA_KEY_PAIR = "GenerateDataKeyPair"

#: Operations counted against a shared cryptographic quota chosen by the key's spec.
CRYPTO_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "ReEncrypt",
        "VerifyMac",
        "Sign",
        "Verify",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)
#: Operations counted against ``GenerateDataKeyPair:<key pair spec>``.
DATA_KEY_PAIR_OPERATIONS = frozenset({"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"})

_DATA_KEY_PAIR_RATES: dict[str, float] = {
    "ECC_NIST_P256": 100,
    "ECC_NIST_P384": 100,
    "ECC_NIST_P521": 100,
    "ECC_SECG_P256K1": 100,
    "ECC_NIST_EDWARDS25519": 100,
    "RSA_2048": 20,
    "RSA_3072": 4,
    "RSA_4096": 1,
    "SM2": 25,
    # Not in AWS's table (ML-KEM data key pairs are newer than it): openkms's choice.
    "ML_KEM_512": 100,
    "ML_KEM_768": 100,
    "ML_KEM_1024": 100,
}

_CONTROL_PLANE_RATES: dict[float, tuple[str, ...]] = {
    2000: ("DescribeKey", "GetPublicKey", "ListResourceTags"),
    1000: ("GetKeyPolicy", "GetKeyRotationStatus"),
    500: ("ListAliases", "ListKeys"),
    100: ("ListGrants", "ListKeyPolicies", "ListKeyRotations", "ListRetirableGrants"),
    50: ("CreateGrant", "RetireGrant", "RevokeGrant"),
    15: (
        "DeleteAlias",
        "DeleteImportedKeyMaterial",
        "EnableKeyRotation",
        "ImportKeyMaterial",
        "PutKeyPolicy",
        "ScheduleKeyDeletion",
    ),
    10: ("TagResource",),
    5: (
        "CancelKeyDeletion",
        "ConnectCustomKeyStore",
        "CreateAlias",
        "CreateCustomKeyStore",
        "CreateKey",
        "DeleteCustomKeyStore",
        "DescribeCustomKeyStores",
        "DisableKey",
        "DisableKeyRotation",
        "DisconnectCustomKeyStore",
        "EnableKey",
        "GetKeyLastUsage",
        "ReplicateKey",
        "RotateKeyOnDemand",
        "UntagResource",
        "UpdateAlias",
        "UpdateCustomKeyStore",
        "UpdateKeyDescription",
        "UpdatePrimaryRegion",
    ),
    1: ("GetParametersForImport",),
}
# Not AWS's: the openkms extensions (key search, protocol/extensions.py). One request checks up
# to 10,000 keys; a console page may take several.
_EXTENSION_RATES: dict[str, float] = {"OpenKMS.SearchKeys": 50, "OpenKMS.CountKeysByState": 50}

#: Every quota openkms knows, with AWS's default rate (requests per second).
DEFAULT_QUOTAS: Mapping[str, float] = {
    SYMMETRIC: 10_000,
    RSA: 1_000,
    ECC: 1_000,
    ML_DSA: 1_000,
    ML_KEM: 1_000,
    **{f"{DATA_KEY_PAIR}:{spec}": rate for spec, rate in _DATA_KEY_PAIR_RATES.items()},
    **{op: rate for rate, ops in _CONTROL_PLANE_RATES.items() for op in ops},
    **_EXTENSION_RATES,
}


def crypto_quota_for(key_spec: str | None) -> str:
    """The shared cryptographic quota of a key spec (None: symmetric, e.g. GenerateRandom)."""
    if not key_spec:
        return SYMMETRIC
    if key_spec.startswith("RSA_"):
        return RSA
    if key_spec.startswith("ECC_") or key_spec == "SM2":
        return ECC
    if key_spec.startswith("ML_DSA_"):
        return ML_DSA
    if key_spec.startswith("ML_KEM_"):
        return ML_KEM
    return SYMMETRIC  # SYMMETRIC_DEFAULT, HMAC_*


def _rate_error(name: str, rate: object) -> str | None:
    if name not in DEFAULT_QUOTAS:
        return f"unknown quota {name!r}"
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        return f"{name}: the rate must be a number of requests per second or 'unlimited'"
    if math.isnan(rate) or rate <= 0:
        return f"{name}: the rate must be greater than 0 (use 'unlimited' to remove the quota)"
    return None


def check_overrides(overrides: Iterable[tuple[str, object]]) -> None:
    """Raises ValueError naming the first unknown quota or invalid rate."""
    for name, rate in overrides:
        problem = _rate_error(name, rate)
        if problem is not None:
            raise ValueError(problem)


def merge_quotas(
    overrides: Mapping[str, float | None] | Iterable[tuple[str, float | None]] = (),
) -> dict[str, float | None]:
    """AWS's defaults with ``overrides`` applied (None or inf: unlimited)."""
    pairs = list(overrides.items() if isinstance(overrides, Mapping) else overrides)
    check_overrides(pairs)
    quotas: dict[str, float | None] = dict(DEFAULT_QUOTAS)
    for name, rate in pairs:
        quotas[name] = None if rate is None or math.isinf(rate) else float(rate)
    return quotas
