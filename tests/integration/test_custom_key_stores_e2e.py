"""Custom key stores end to end through boto3 against a real ``openkms serve``: an AWS_CLOUDHSM
store backed by a SoftHSM2 token and an EXTERNAL_KEY_STORE whose proxy (tests/integration/
xks_proxy.py) listens on https://127.x.y.z (port 443, as AWS's XksProxyUriEndpoint has no
port: so these tests need to be allowed to bind it) — the six operations, keys in both stores,
Encrypt/Decrypt/GenerateDataKey, disconnection (Unavailable), deletion rules and a restart."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.components import unavailable
from tests.conftest import make_client, server_from_account
from tests.contract.softhsm import Token, softhsm_for_process
from tests.integration.test_hsm_e2e import EnvServer, create_account
from tests.integration.xks_proxy import URI_PATH, XksProxy

pytestmark = pytest.mark.slow

CLUSTER = "cluster-openkmstestab"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = exc.value.response["Error"]["Code"]
    return code


@dataclass
class Setup:
    server: EnvServer
    account: dict[str, str]
    data: Path
    proxy: XksProxy
    token: Token

    def client(self) -> BaseClient:
        return make_client(server_from_account(self.server.endpoint, self.data, self.account))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    if sys.platform != "linux" or os.geteuid() != 0:
        unavailable("custom-key-store", "binding 127.x.y.z:443 needs root on Linux")
    softhsm = softhsm_for_process()
    token = softhsm.init_token()
    proxy = XksProxy.start(tmp_path / "certs")
    proxy.add_key("external-key-1")
    clusters = tmp_path / "clusters.toml"
    clusters.write_text(
        f'[clusters.{CLUSTER}]\npkcs11_module = "{softhsm.module}"\ntoken_label = "{token.label}"\n'
    )
    env = {
        **softhsm.env(),
        "OPENKMS_CUSTOM_KEY_STORE_CLUSTERS": str(clusters),
        "OPENKMS_XKS_PROXY_CA_FILE": str(proxy.ca_file),
    }
    data = tmp_path / "data"
    data.mkdir()
    account = create_account(data, env)
    server = EnvServer(data, env).start()
    try:
        yield Setup(server, account, data, proxy, token)
    finally:
        server.stop()
        proxy.stop()


def _store(kms: BaseClient, store_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)[
        "CustomKeyStores"
    ][0]
    return entry


def test_custom_key_stores_end_to_end(setup: Setup) -> None:
    kms = setup.client()
    proxy, token = setup.proxy, setup.token

    # --- an external key store ---
    xks_id = kms.create_custom_key_store(
        CustomKeyStoreName="xks-store",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=proxy.endpoint,
        XksProxyUriPath=URI_PATH,
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential=proxy.credential,
    )["CustomKeyStoreId"]
    assert _store(kms, xks_id)["ConnectionState"] == "DISCONNECTED"
    with pytest.raises(ClientError) as exc:
        kms.create_custom_key_store(
            CustomKeyStoreName="xks-store",
            CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyUriEndpoint=proxy.endpoint,
            XksProxyUriPath="/other/kms/xks/v1",
            XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyAuthenticationCredential=proxy.credential,
        )
    assert _error(exc) == "CustomKeyStoreNameInUseException"
    kms.connect_custom_key_store(CustomKeyStoreId=xks_id)
    assert _store(kms, xks_id)["ConnectionState"] == "CONNECTED"
    xks_key = kms.create_key(
        CustomKeyStoreId=xks_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="external-key-1"
    )["KeyMetadata"]
    assert xks_key["XksKeyConfiguration"] == {"Id": "external-key-1"}
    answer = kms.encrypt(
        KeyId=xks_key["KeyId"], Plaintext=b"via xks", EncryptionContext={"k": "v"}
    )
    xks_blob = answer["CiphertextBlob"]
    # The proxy is told which request it serves (XKS requestMetadata): the caller's own.
    meta = proxy.metadata[-1]
    assert meta["kmsOperation"] == "Encrypt"
    assert meta["kmsRequestId"] == answer["ResponseMetadata"]["RequestId"]
    assert meta["awsPrincipalArn"] == f"arn:aws:iam::{setup.account['AccountId']}:root"
    assert meta["kmsKeyArn"] == xks_key["Arn"]
    assert kms.decrypt(CiphertextBlob=xks_blob, EncryptionContext={"k": "v"})["Plaintext"] == (
        b"via xks"
    )
    dk = kms.generate_data_key(KeyId=xks_key["KeyId"], KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert {"health", "metadata", "encrypt", "decrypt"} <= set(proxy.calls)

    # --- a CloudHSM key store (a SoftHSM2 token) ---
    hsm_id = kms.create_custom_key_store(
        CustomKeyStoreName="hsm-store",
        CloudHsmClusterId=CLUSTER,
        TrustAnchorCertificate="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        KeyStorePassword=token.pin,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=hsm_id)
    assert _store(kms, hsm_id)["ConnectionState"] == "CONNECTED"
    hsm_key = kms.create_key(CustomKeyStoreId=hsm_id, Origin="AWS_CLOUDHSM")["KeyMetadata"]
    assert hsm_key["CloudHsmClusterId"] == CLUSTER
    assert hsm_key["CustomKeyStoreId"] == hsm_id
    hsm_blob = kms.encrypt(KeyId=hsm_key["KeyId"], Plaintext=b"via hsm")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=hsm_blob)["Plaintext"] == b"via hsm"
    dk2 = kms.generate_data_key(KeyId=hsm_key["KeyId"], NumberOfBytes=64)
    assert kms.decrypt(CiphertextBlob=dk2["CiphertextBlob"])["Plaintext"] == dk2["Plaintext"]
    assert len(kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=hsm_id)["Plaintext"]) == 32
    with pytest.raises(ClientError) as exc:
        kms.enable_key_rotation(KeyId=hsm_key["KeyId"])
    assert _error(exc) == "UnsupportedOperationException"
    kms.update_custom_key_store(CustomKeyStoreId=xks_id, NewCustomKeyStoreName="xks-renamed")

    # --- a restart keeps stores, states and keys ---
    setup.server.stop()
    setup.server.start()
    kms = setup.client()
    stores = {s["CustomKeyStoreId"]: s for s in kms.describe_custom_key_stores()["CustomKeyStores"]}
    assert stores[xks_id]["CustomKeyStoreName"] == "xks-renamed"
    assert stores[xks_id]["ConnectionState"] == stores[hsm_id]["ConnectionState"] == "CONNECTED"
    assert kms.decrypt(CiphertextBlob=hsm_blob)["Plaintext"] == b"via hsm"
    assert kms.decrypt(CiphertextBlob=xks_blob, EncryptionContext={"k": "v"})["Plaintext"] == (
        b"via xks"
    )

    # --- disconnected: keys Unavailable; deletion rules ---
    with pytest.raises(ClientError) as exc:
        kms.delete_custom_key_store(CustomKeyStoreId=hsm_id)
    assert _error(exc) == "CustomKeyStoreInvalidStateException"
    for store_id, key in ((xks_id, xks_key), (hsm_id, hsm_key)):
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        assert _store(kms, store_id)["ConnectionState"] == "DISCONNECTED"
        assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Unavailable"
        with pytest.raises(ClientError) as exc:
            kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        assert _error(exc) == "KMSInvalidStateException"
        with pytest.raises(ClientError) as exc:
            kms.delete_custom_key_store(CustomKeyStoreId=store_id)
        assert _error(exc) == "CustomKeyStoreHasCMKsException"
    with pytest.raises(ClientError) as exc:
        kms.disconnect_custom_key_store(CustomKeyStoreId=hsm_id)
    assert _error(exc) == "CustomKeyStoreInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=hsm_id)
    assert kms.describe_key(KeyId=hsm_key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=hsm_blob)["Plaintext"] == b"via hsm"

    # --- an empty store is deleted; then it is not found ---
    spare = kms.create_custom_key_store(
        CustomKeyStoreName="spare",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=proxy.endpoint,
        XksProxyUriPath="/spare/kms/xks/v1",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential=proxy.credential,
    )["CustomKeyStoreId"]
    kms.delete_custom_key_store(CustomKeyStoreId=spare)
    with pytest.raises(ClientError) as exc:
        kms.describe_custom_key_stores(CustomKeyStoreId=spare)
    assert _error(exc) == "CustomKeyStoreNotFoundException"
