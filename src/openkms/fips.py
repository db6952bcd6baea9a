"""FIPS-style mode: which key specs and algorithms FIPS 140-3 approves.

With ``fips_mode`` on, the service refuses everything else with UnsupportedOperationException
(``fips_refusal`` gives the message). This is a policy over the algorithms, not a validated
module: openkms runs on pyca/cryptography's OpenSSL, which is FIPS-validated only when it is
built and configured so (see docs/configuration.md).

Sources (NIST):

* FIPS 197 and SP 800-38D: AES-GCM (SYMMETRIC_DEFAULT is AES-256-GCM); AES-128 and AES-256
  data keys.
* FIPS 198-1 and SP 800-107: HMAC with SHA-224/256/384/512.
* FIPS 186-5: RSA signatures (RSASSA-PKCS1-v1_5 and RSASSA-PSS) with moduli of at least 2048
  bits (SP 800-131A Rev. 2); ECDSA; EdDSA with Ed25519, pure and pre-hashed (HashEdDSA).
* SP 800-186: the approved elliptic curves are P-256, P-384, P-521 and edwards25519 (and
  others KMS does not offer); secp256k1 is not among the curves approved for ECDSA or ECDH.
* SP 800-56A Rev. 3: ECDH (KAS-ECC) on the NIST P curves.
* SP 800-56B Rev. 2: RSA-OAEP key transport (KTS-OAEP), with an approved hash (SHA-1 remains
  acceptable in OAEP under SP 800-131A Rev. 2); RSA_AES_KEY_WRAP is RSA-OAEP plus AES Key Wrap
  (SP 800-38F). PKCS#1 v1.5 encryption padding for key transport is disallowed after 2023
  (SP 800-131A Rev. 2), so RSAES_PKCS1_V1_5 is refused.
* FIPS 203 (ML-KEM) and FIPS 204 (ML-DSA).
* Not approved: SM2 (SM2DSA, SM2PKE; Chinese national standards) and ECC_SECG_P256K1.
"""

from __future__ import annotations

__all__ = ["APPROVED_ALGORITHMS", "APPROVED_KEY_SPECS", "fips_allowed", "fips_refusal"]

#: KeySpec, DataKeyPairSpec, DataKeySpec and WrappingKeySpec values FIPS 140-3 approves.
APPROVED_KEY_SPECS = frozenset(
    {
        "SYMMETRIC_DEFAULT",
        "AES_128",
        "AES_256",
        "HMAC_224",
        "HMAC_256",
        "HMAC_384",
        "HMAC_512",
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_NIST_EDWARDS25519",
        "ML_DSA_44",
        "ML_DSA_65",
        "ML_DSA_87",
        "ML_KEM_512",
        "ML_KEM_768",
        "ML_KEM_1024",
    }
)

#: Encryption, signing, MAC, key agreement, encapsulation and import-wrapping algorithms.
APPROVED_ALGORITHMS = frozenset(
    {
        # Encryption
        "SYMMETRIC_DEFAULT",
        "RSAES_OAEP_SHA_1",
        "RSAES_OAEP_SHA_256",
        # Signing
        "RSASSA_PSS_SHA_256",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_512",
        "RSASSA_PKCS1_V1_5_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_512",
        "ECDSA_SHA_256",
        "ECDSA_SHA_384",
        "ECDSA_SHA_512",
        "ED25519_SHA_512",
        "ED25519_PH_SHA_512",
        "ML_DSA_SHAKE_256",
        # MAC
        "HMAC_SHA_224",
        "HMAC_SHA_256",
        "HMAC_SHA_384",
        "HMAC_SHA_512",
        # Key agreement and encapsulation
        "ECDH",
        "ML_KEM",
        # Wrapping key material for import (GetParametersForImport)
        "RSA_AES_KEY_WRAP_SHA_1",
        "RSA_AES_KEY_WRAP_SHA_256",
    }
)

_WHY_NOT = {
    "ECC_SECG_P256K1": "secp256k1 is not an approved curve (FIPS 186-5, SP 800-186)",
    "SM2": "SM2 is not a FIPS-approved algorithm",
    "SM2DSA": "SM2 is not a FIPS-approved algorithm",
    "SM2PKE": "SM2 is not a FIPS-approved algorithm",
    "RSAES_PKCS1_V1_5": (
        "PKCS#1 v1.5 encryption padding is disallowed for key transport (SP 800-131A Rev. 2)"
    ),
}


def fips_allowed(key_spec: str | None, algorithm: str | None) -> bool:
    """True when both the key spec (or data key / key pair / wrapping key spec) and the
    algorithm are FIPS-approved; None stands for "not part of this request" (GenerateRandom
    has neither). Unknown names are refused."""
    if key_spec is not None and key_spec not in APPROVED_KEY_SPECS:
        return False
    return algorithm is None or algorithm in APPROVED_ALGORITHMS


def fips_refusal(key_spec: str | None, algorithm: str | None) -> str | None:
    """The UnsupportedOperationException message for a refused combination, or None."""
    if fips_allowed(key_spec, algorithm):
        return None
    name = key_spec if key_spec is not None and key_spec not in APPROVED_KEY_SPECS else algorithm
    reason = _WHY_NOT.get(name or "", "it is not FIPS 140-3 approved")
    return f"{name} is not available in FIPS mode: {reason}."
