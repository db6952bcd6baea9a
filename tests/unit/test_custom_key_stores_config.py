"""The operator's configuration of custom key stores: the cluster mapping file and the
settings that name it."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.config import Settings, SettingsError
from openkms.keystores import read_clusters_file, settings_for


def test_cluster_file_maps_clusters_to_tokens(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("PEM")
    path = tmp_path / "clusters.toml"
    path.write_text(
        "[clusters.cluster-abcdefghijk]\n"
        'pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"\n'
        'token_label = "kms-1"\n'
        'trust_anchor_certificate_file = "ca.crt"\n'
        "[clusters.cluster-bcdefghijkl]\n"
        'pkcs11_module = "/opt/hsm.so"\n'
        'token_label = "kms-2"\n'
    )
    clusters = read_clusters_file(path)
    assert clusters["cluster-abcdefghijk"].token_label == "kms-1"
    assert clusters["cluster-abcdefghijk"].trust_anchor_certificate == "PEM"
    assert clusters["cluster-bcdefghijkl"].module == "/opt/hsm.so"
    assert clusters["cluster-bcdefghijkl"].trust_anchor_certificate is None
    ks = settings_for(
        Settings(custom_key_store_clusters=str(path), xks_proxy_ca_file="/etc/ca.pem")
    )
    assert set(ks.clusters) == set(clusters)
    assert ks.xks_ca_file == "/etc/ca.pem"
    assert settings_for(Settings()).clusters == {}


@pytest.mark.parametrize(
    "text",
    [
        "[clusters.cluster-abcdefghijk]\ntoken_label = 'x'\n",
        "clusters = 3\n",
        "[clusters\n",
    ],
)
def test_bad_cluster_files_name_the_setting(tmp_path: Path, text: str) -> None:
    path = tmp_path / "clusters.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match="custom_key_store_clusters"):
        read_clusters_file(path)


def test_missing_cluster_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="custom_key_store_clusters"):
        read_clusters_file(tmp_path / "absent.toml")


def test_settings_check_the_files_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "clusters.toml"
    bad.write_text("[clusters.cluster-abcdefghijk]\n")
    with pytest.raises(SettingsError, match="custom_key_store_clusters"):
        Settings(custom_key_store_clusters=str(bad)).validate()
    with pytest.raises(SettingsError, match="xks_proxy_ca_file"):
        Settings(xks_proxy_ca_file=str(tmp_path / "absent.pem")).validate()
