"""What every wrapped secret is bound to: the additional authenticated data (AAD) the root of
trust wraps it under, and where such secrets are stored. A storage-format fact, shared by the
services that write the secrets and by root-key rotation (``rotate.py``), which re-wraps every
one of them and so must rebuild each AAD exactly.

Every AAD is the UTF-8 of ``openkms:<what>:v1:<fields joined by ":">``; changing one makes
every secret of that kind undecryptable, so a new format is a new version (``v2``) read
beside the old one.

=====================  ==================================================  ===================
secret                 AAD                                                 stored in
=====================  ==================================================  ===================
key material           ``openkms:key-material:v1:<key arn>:<material id>``  ``materials`` rows
access key secret      ``openkms:access-key:v1:<access key id>``            ``access_keys`` rows
STS session secret     ``openkms:sts-session:v1:<access key id>``           documents
                                                                           ``sts-session``/``sts``
import wrapping key    ``openkms:import-wrapping-key:v1:<key arn>:<token>`` documents
                                                                           ``kms-import``/<arn>
custom key store       ``openkms:custom-key-store:v1:<account>:<store id>:  documents
secret (password,      <password | xks-secret>``                            ``kms-custom-key-
XKS secret)                                                                store``/<account>
=====================  ==================================================  ===================
"""

from __future__ import annotations

# Document kinds (and the one fixed scope) that hold wrapped secrets.
STS_SESSION_KIND = "sts-session"
STS_SESSION_SCOPE = "sts"
IMPORT_TOKEN_KIND = "kms-import"  # noqa: S105 - a document kind
CUSTOM_KEY_STORE_KIND = "kms-custom-key-store"
# Custom key store document field -> the name of the secret in its AAD.
CUSTOM_KEY_STORE_SECRETS = {"wrapped_password": "password", "wrapped_xks_secret": "xks-secret"}


def material_aad(key_arn: str, material_id: str) -> bytes:
    """Binds wrapped key material to its key and material version."""
    return f"openkms:key-material:v1:{key_arn}:{material_id}".encode()


def access_key_aad(access_key_id: str) -> bytes:
    return f"openkms:access-key:v1:{access_key_id}".encode()


def sts_session_aad(access_key_id: str) -> bytes:
    return f"openkms:sts-session:v1:{access_key_id}".encode()


def import_token_aad(key_arn: str, token_id: str) -> bytes:
    return f"openkms:import-wrapping-key:v1:{key_arn}:{token_id}".encode()


def custom_key_store_secret_aad(account: str, store_id: str, secret: str) -> bytes:
    """``secret`` is "password" (CloudHSM) or "xks-secret" (XKS proxy credential)."""
    return f"openkms:custom-key-store:v1:{account}:{store_id}:{secret}".encode()
