"""Custom key stores at the service level (in-memory storage, fixed clock): the six operations,
their connection states and errors, and keys in an AWS_CLOUDHSM store (a SoftHSM2 token) and
in an EXTERNAL_KEY_STORE (the test XKS proxy on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openkms.config import ClusterConfig
from openkms.errors import (
    CloudHsmClusterInUseException,
    CloudHsmClusterNotFoundException,
    CustomKeyStoreHasCMKsException,
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNameInUseException,
    CustomKeyStoreNotFoundException,
    IncorrectTrustAnchorException,
    InvalidCiphertextException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
    XksKeyAlreadyInUseException,
    XksKeyInvalidConfigurationException,
    XksKeyNotFoundException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyUriInUseException,
    XksProxyUriUnreachableException,
)
from openkms.keystores import KeyStoreSettings, attach_keystore_settings
from openkms.service import custom_key_stores as cks
from openkms.service import data_keys, encryption, keys, random, rotation
from tests.integration.xks_proxy import URI_PATH, XksProxy
from tests.unit.service_helpers import Harness

CLUSTER = "cluster-abcdefghijk"
ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[XksProxy]:
    p = XksProxy.start(tmp_path / "certs", port=0)
    p.add_key("ext-1")
    p.add_key("ext-2")
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def h(proxy: XksProxy) -> Harness:
    harness = Harness()
    attach_keystore_settings(harness.rt, KeyStoreSettings(xks_ca_file=str(proxy.ca_file)))
    return harness


def create_xks(h: Harness, proxy: XksProxy, name: str = "xks", **more: Any) -> str:
    req = {
        "CustomKeyStoreName": name,
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyUriEndpoint": proxy.endpoint,
        "XksProxyUriPath": URI_PATH,
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyAuthenticationCredential": proxy.credential,
        **more,
    }
    store_id: str = h.call(cks.create_custom_key_store, req)["CustomKeyStoreId"]
    return store_id


def describe(h: Harness, store_id: str) -> dict[str, Any]:
    out = h.call(cks.describe_custom_key_stores, {"CustomKeyStoreId": store_id})
    entry: dict[str, Any] = out["CustomKeyStores"][0]
    return entry


def test_xks_store_lifecycle_and_keys(h: Harness, proxy: XksProxy) -> None:
    store_id = create_xks(h, proxy)
    assert store_id.startswith("cks-")
    entry = describe(h, store_id)
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": proxy.access_key_id,
        "UriEndpoint": proxy.endpoint,
        "UriPath": URI_PATH,
    }
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(
            keys.create_key,
            {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "ext-1"},
        )
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    assert describe(h, store_id)["ConnectionState"] == "CONNECTED"
    meta = h.call(
        keys.create_key,
        {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "ext-1"},
    )["KeyMetadata"]
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == store_id
    assert meta["XksKeyConfiguration"] == {"Id": "ext-1"}
    key_id = meta["KeyId"]
    blob = h.call(
        encryption.encrypt,
        {"KeyId": key_id, "Plaintext": b"secret", "EncryptionContext": {"a": "b"}},
    )["CiphertextBlob"]
    assert "encrypt" in proxy.calls
    out = h.call(encryption.decrypt, {"CiphertextBlob": blob, "EncryptionContext": {"a": "b"}})
    assert out["Plaintext"] == b"secret"
    with pytest.raises(InvalidCiphertextException):
        h.call(encryption.decrypt, {"CiphertextBlob": blob, "EncryptionContext": {"a": "c"}})
    dk = h.call(data_keys.generate_data_key, {"KeyId": key_id, "KeySpec": "AES_256"})
    assert (
        h.call(encryption.decrypt, {"CiphertextBlob": dk["CiphertextBlob"]})["Plaintext"]
        == (dk["Plaintext"])
    )
    # Decrypting needs the external key: without it the blob does not open.
    material = proxy.keys["ext-1"].material
    proxy.keys["ext-1"].material = bytes(32)
    with pytest.raises(InvalidCiphertextException):
        h.call(encryption.decrypt, {"CiphertextBlob": blob, "EncryptionContext": {"a": "b"}})
    proxy.keys["ext-1"].material = material
    # The same external key cannot back two KMS keys; unknown and unusable keys are refused.
    with pytest.raises(XksKeyAlreadyInUseException):
        h.call(
            keys.create_key,
            {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "ext-1"},
        )
    with pytest.raises(XksKeyNotFoundException):
        h.call(
            keys.create_key,
            {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "nope"},
        )
    proxy.add_key("ext-3", usage=("ENCRYPT",))
    with pytest.raises(XksKeyInvalidConfigurationException):
        h.call(
            keys.create_key,
            {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "ext-3"},
        )
    # Rotation is not for keys in custom key stores.
    with pytest.raises(UnsupportedOperationException):
        h.call(rotation.enable_key_rotation, {"KeyId": key_id})
    # Disconnected: the key is Unavailable and cannot encrypt; deleting the store is refused
    # while connected, and while it has keys.
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(cks.delete_custom_key_store, {"CustomKeyStoreId": store_id})
    h.call(keys.disable_key, {"KeyId": key_id})
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    h.clock.advance(5)
    assert h.call(keys.describe_key, {"KeyId": key_id})["KeyMetadata"]["KeyState"] == (
        "Unavailable"
    )
    with pytest.raises(KMSInvalidStateException):
        h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"x"})
    h.call(keys.enable_key, {"KeyId": key_id})  # applies once the store is back
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    with pytest.raises(CustomKeyStoreHasCMKsException):
        h.call(cks.delete_custom_key_store, {"CustomKeyStoreId": store_id})
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    h.clock.advance(5)
    assert h.call(keys.describe_key, {"KeyId": key_id})["KeyMetadata"]["KeyState"] == "Enabled"
    out = h.call(encryption.decrypt, {"CiphertextBlob": blob, "EncryptionContext": {"a": "b"}})
    assert out["Plaintext"] == b"secret"


def test_xks_create_errors(h: Harness, proxy: XksProxy) -> None:
    store_id = create_xks(h, proxy)
    with pytest.raises(CustomKeyStoreNameInUseException):
        create_xks(h, proxy)
    with pytest.raises(XksProxyUriInUseException):
        create_xks(h, proxy, name="other")
    bad = {**proxy.credential, "RawSecretAccessKey": "A" * 44}
    with pytest.raises(XksProxyIncorrectAuthenticationCredentialException):
        create_xks(
            h,
            proxy,
            name="bad",
            XksProxyUriPath="/x/kms/xks/v1",
            XksProxyAuthenticationCredential=bad,
        )
    proxy.down = True
    with pytest.raises(XksProxyUriUnreachableException):
        create_xks(h, proxy, name="down", XksProxyUriPath="/y/kms/xks/v1")
    # Connecting to a proxy that does not answer: FAILED with AWS's error code.
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    entry = describe(h, store_id)
    assert entry["ConnectionState"] == "FAILED"
    assert entry["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    proxy.down = False
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    # A credential the proxy no longer accepts: FAILED, INVALID_CREDENTIALS.
    good = proxy.secret
    proxy.secret = "B" * 44
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    assert describe(h, store_id)["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
    proxy.secret = good
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    assert describe(h, store_id)["ConnectionState"] == "CONNECTED"
    with pytest.raises(UnsupportedOperationException, match="VPC_ENDPOINT_SERVICE"):
        create_xks(h, proxy, name="vpc", XksProxyConnectivity="VPC_ENDPOINT_SERVICE")
    with pytest.raises(ValidationException):
        create_xks(h, proxy, name="mixed", KeyStorePassword="password1")


def test_describe_update_delete(h: Harness, proxy: XksProxy) -> None:
    first = create_xks(h, proxy, name="a")
    second = create_xks(h, proxy, name="b", XksProxyUriPath="/b/kms/xks/v1")
    with pytest.raises(CustomKeyStoreNotFoundException):
        h.call(cks.describe_custom_key_stores, {"CustomKeyStoreId": "cks-00000000000000000"})
    with pytest.raises(CustomKeyStoreNotFoundException):
        h.call(cks.describe_custom_key_stores, {"CustomKeyStoreName": "zzz"})
    page1 = h.call(cks.describe_custom_key_stores, {"Limit": 1})
    assert page1["Truncated"] is True and len(page1["CustomKeyStores"]) == 1
    page2 = h.call(cks.describe_custom_key_stores, {"Limit": 1, "Marker": page1["NextMarker"]})
    ids = {
        page1["CustomKeyStores"][0]["CustomKeyStoreId"],
        page2["CustomKeyStores"][0]["CustomKeyStoreId"],
    }
    assert ids == {first, second} and page2["Truncated"] is False
    with pytest.raises(CustomKeyStoreNameInUseException):
        h.call(
            cks.update_custom_key_store, {"CustomKeyStoreId": first, "NewCustomKeyStoreName": "b"}
        )
    h.call(cks.update_custom_key_store, {"CustomKeyStoreId": first, "NewCustomKeyStoreName": "c"})
    assert describe(h, first)["CustomKeyStoreName"] == "c"
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": first})
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(
            cks.update_custom_key_store,
            {"CustomKeyStoreId": first, "XksProxyUriEndpoint": "https://example.com"},
        )
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": first})
    h.call(cks.delete_custom_key_store, {"CustomKeyStoreId": first})
    with pytest.raises(CustomKeyStoreNotFoundException):
        h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": first})
    # Stores are per Region.
    out = h.rt and cks.describe_custom_key_stores(h.rt, h.ctx(region="eu-west-1"), {})
    assert out["CustomKeyStores"] == []


# --- AWS_CLOUDHSM: a SoftHSM2 token --------------------------------------------------------------
@pytest.fixture
def hsm_harness() -> tuple[Harness, Any]:
    from tests.contract.softhsm import softhsm_for_process

    softhsm = softhsm_for_process()
    token = softhsm.init_token()
    harness = Harness()
    cluster = ClusterConfig(CLUSTER, softhsm.module, token.label, ANCHOR)
    attach_keystore_settings(harness.rt, KeyStoreSettings(clusters={CLUSTER: cluster}))
    return harness, token


def create_hsm(h: Harness, password: str, name: str = "hsm") -> str:
    req = {
        "CustomKeyStoreName": name,
        "CloudHsmClusterId": CLUSTER,
        "TrustAnchorCertificate": ANCHOR,
        "KeyStorePassword": password,
    }
    store_id: str = h.call(cks.create_custom_key_store, req)["CustomKeyStoreId"]
    return store_id


def test_cloudhsm_store_and_keys(hsm_harness: tuple[Harness, Any]) -> None:
    h, token = hsm_harness
    with pytest.raises(CloudHsmClusterNotFoundException):
        h.call(
            cks.create_custom_key_store,
            {
                "CustomKeyStoreName": "x",
                "CloudHsmClusterId": "cluster-zzzzzzzzzzz",
                "TrustAnchorCertificate": ANCHOR,
                "KeyStorePassword": "password",
            },
        )
    with pytest.raises(IncorrectTrustAnchorException):
        h.call(
            cks.create_custom_key_store,
            {
                "CustomKeyStoreName": "x",
                "CloudHsmClusterId": CLUSTER,
                "TrustAnchorCertificate": "something else",
                "KeyStorePassword": "password",
            },
        )
    # A wrong password: FAILED, INVALID_CREDENTIALS.
    store_id = create_hsm(h, "wrong-password")
    with pytest.raises(CloudHsmClusterInUseException):
        create_hsm(h, token.pin, name="again")
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    entry = describe(h, store_id)
    assert entry["ConnectionState"] == "FAILED"
    assert entry["ConnectionErrorCode"] == "INVALID_CREDENTIALS"
    assert entry["CloudHsmClusterId"] == CLUSTER and entry["TrustAnchorCertificate"] == ANCHOR
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    h.call(
        cks.update_custom_key_store, {"CustomKeyStoreId": store_id, "KeyStorePassword": token.pin}
    )
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    assert describe(h, store_id)["ConnectionState"] == "CONNECTED"
    meta = h.call(keys.create_key, {"CustomKeyStoreId": store_id, "Origin": "AWS_CLOUDHSM"})[
        "KeyMetadata"
    ]
    assert meta["CloudHsmClusterId"] == CLUSTER and meta["Origin"] == "AWS_CLOUDHSM"
    key_id = meta["KeyId"]
    assert h.storage.list_materials(meta["Arn"]) == []  # the material is in the token only
    blob = h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"hsm secret"})[
        "CiphertextBlob"
    ]
    assert h.call(encryption.decrypt, {"CiphertextBlob": blob})["Plaintext"] == b"hsm secret"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidCiphertextException):
        h.call(encryption.decrypt, {"CiphertextBlob": tampered})
    rnd = h.call(random.generate_random, {"NumberOfBytes": 16, "CustomKeyStoreId": store_id})
    assert len(rnd["Plaintext"]) == 16
    with pytest.raises(UnsupportedOperationException):
        h.call(
            keys.create_key,
            {
                "CustomKeyStoreId": store_id,
                "Origin": "AWS_CLOUDHSM",
                "KeySpec": "RSA_2048",
                "KeyUsage": "SIGN_VERIFY",
            },
        )
    h.call(cks.disconnect_custom_key_store, {"CustomKeyStoreId": store_id})
    h.clock.advance(5)
    with pytest.raises(KMSInvalidStateException):
        h.call(encryption.decrypt, {"CiphertextBlob": blob})
    with pytest.raises(CustomKeyStoreInvalidStateException):
        h.call(random.generate_random, {"NumberOfBytes": 16, "CustomKeyStoreId": store_id})


def test_xks_proxy_failures_during_crypto(h: Harness, proxy: XksProxy) -> None:
    store_id = create_xks(h, proxy)
    h.call(cks.connect_custom_key_store, {"CustomKeyStoreId": store_id})
    key_id = h.call(
        keys.create_key,
        {"CustomKeyStoreId": store_id, "Origin": "EXTERNAL_KEY_STORE", "XksKeyId": "ext-2"},
    )["KeyMetadata"]["KeyId"]
    blob = h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"p"})["CiphertextBlob"]
    proxy.down = True
    with pytest.raises(KMSInvalidStateException, match="proxy"):
        h.call(encryption.decrypt, {"CiphertextBlob": blob})
    proxy.down = False
    proxy.keys["ext-2"].status = "DISABLED"
    with pytest.raises(KMSInvalidStateException, match="InvalidStateException"):
        h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"p"})
    proxy.keys["ext-2"].status = "ENABLED"
    assert h.call(encryption.decrypt, {"CiphertextBlob": blob})["Plaintext"] == b"p"
    # GenerateRandom is for CloudHSM key stores only.
    with pytest.raises(UnsupportedOperationException):
        h.call(random.generate_random, {"NumberOfBytes": 8, "CustomKeyStoreId": store_id})
