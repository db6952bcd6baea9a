"""Issue 5 acceptance, imported key material (BYOK), through boto3 and the openssl command line.

Key material is generated and wrapped with ``openssl`` exactly as AWS's "Encrypt the key
material" page shows:

* RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256::

    openssl pkeyutl -encrypt -in PlaintextKeyMaterial.bin -inkey WrappingPublicKey.bin \\
        -keyform DER -pubin -out EncryptedKeyMaterial.bin -pkeyopt rsa_padding_mode:oaep \\
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256

* RSA_AES_KEY_WRAP_SHA_1 / RSA_AES_KEY_WRAP_SHA_256::

    openssl rand -out aes-key.bin 32
    openssl enc -id-aes256-wrap-pad -K "$(xxd -p < aes-key.bin | tr -d '\\n')" -iv A65959A6 \\
        -in PlaintextKeyMaterial.bin -out key-material-wrapped.bin
    openssl pkeyutl -encrypt -in aes-key.bin -out aes-key-wrapped.bin \\
        -inkey WrappingPublicKey.bin -keyform DER -pubin -pkeyopt rsa_padding_mode:oaep \\
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
    cat aes-key-wrapped.bin key-material-wrapped.bin > EncryptedKeyMaterial.bin

* asymmetric private keys: ``openssl genpkey ... | openssl pkcs8 -topk8 -outform der -nocrypt``
  (PKCS#8 DER); HMAC and symmetric material: ``openssl rand -out PlaintextKeyMaterial.bin N``.

The helpers at the top (``openssl``, ``wrap_key_material``, ``generate_private_key``,
``import_material``, ``run_scheduler``) are shared with the other acceptance modules of this
directory.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conformance import expect_error
from tests.conftest import child_env, openkms_command

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None,
    reason="SKIPPED: the `openssl` command line is not installed, so the AWS-documented "
    "openssl wrapping and interop checks cannot run (install openssl to run them)",
)
pytestmark = needs_openssl

# openssl genpkey options per key spec.
GENPKEY: dict[str, list[str]] = {
    "RSA_2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "RSA_3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
    "ECC_NIST_P256": [
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ],
    "ECC_NIST_P384": [
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ],
    "ECC_NIST_P521": [
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-521",
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ],
    "ECC_SECG_P256K1": [
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:secp256k1",
        "-pkeyopt",
        "ec_param_enc:named_curve",
    ],
    "ECC_NIST_EDWARDS25519": ["-algorithm", "ED25519"],
}
DAY = datetime.timedelta(days=1)


# --- shared helpers ----------------------------------------------------------------------------
def openssl(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    """Runs ``openssl args`` in ``cwd``; fails the test with openssl's stderr if it fails."""
    assert OPENSSL is not None
    proc = subprocess.run(
        [OPENSSL, *args], cwd=cwd, input=stdin, capture_output=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"openssl {' '.join(args)} failed ({proc.returncode}):\n"
            + proc.stderr.decode("utf-8", "replace")
        )
    return proc.stdout


def openssl_ok(*args: str, cwd: Path) -> tuple[bool, str]:
    """(exit status 0, stdout+stderr) of an openssl command expected to fail sometimes."""
    assert OPENSSL is not None
    proc = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, timeout=60, check=False)
    return proc.returncode == 0, (proc.stdout + proc.stderr).decode("utf-8", "replace")


def random_material(workdir: Path, size: int, name: str = "PlaintextKeyMaterial.bin") -> bytes:
    """``openssl rand -out PlaintextKeyMaterial.bin <size>``."""
    openssl("rand", "-out", name, str(size), cwd=workdir)
    return (workdir / name).read_bytes()


def generate_private_key(workdir: Path, spec: str) -> bytes:
    """A PKCS#8 DER private key made by ``openssl genpkey | openssl pkcs8 -topk8``."""
    pem = openssl("genpkey", *GENPKEY[spec], cwd=workdir)
    der = openssl("pkcs8", "-topk8", "-outform", "DER", "-nocrypt", cwd=workdir, stdin=pem)
    return der


def public_key_of(workdir: Path, private_der: bytes) -> bytes:
    """``openssl pkey -pubout``: the DER SubjectPublicKeyInfo of a DER private key."""
    (workdir / "PrivateKey.der").write_bytes(private_der)
    return openssl(
        "pkey", "-inform", "DER", "-in", "PrivateKey.der", "-pubout", "-outform", "DER", cwd=workdir
    )


def wrap_key_material(
    workdir: Path, material: bytes, wrapping_public_key: bytes, algorithm: str
) -> bytes:
    """EncryptedKeyMaterial.bin, made with the openssl commands of AWS's documentation."""
    (workdir / "PlaintextKeyMaterial.bin").write_bytes(material)
    (workdir / "WrappingPublicKey.bin").write_bytes(wrapping_public_key)
    md = "sha1" if algorithm.endswith("_SHA_1") else "sha256"
    oaep = [
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        f"rsa_oaep_md:{md}",
        "-pkeyopt",
        f"rsa_mgf1_md:{md}",
    ]
    for stale in ("EncryptedKeyMaterial.bin", "aes-key.bin", "aes-key-wrapped.bin"):
        (workdir / stale).unlink(missing_ok=True)
    if algorithm.startswith("RSAES_OAEP_"):
        openssl(
            "pkeyutl",
            "-encrypt",
            "-in",
            "PlaintextKeyMaterial.bin",
            "-inkey",
            "WrappingPublicKey.bin",
            "-keyform",
            "DER",
            "-pubin",
            "-out",
            "EncryptedKeyMaterial.bin",
            *oaep,
            cwd=workdir,
        )
        return (workdir / "EncryptedKeyMaterial.bin").read_bytes()
    assert algorithm.startswith("RSA_AES_KEY_WRAP_")
    openssl("rand", "-out", "aes-key.bin", "32", cwd=workdir)
    aes_key_hex = (workdir / "aes-key.bin").read_bytes().hex()  # = xxd -p | tr -d '\n'
    openssl(
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        aes_key_hex,
        "-iv",
        "A65959A6",
        "-in",
        "PlaintextKeyMaterial.bin",
        "-out",
        "key-material-wrapped.bin",
        cwd=workdir,
    )
    openssl(
        "pkeyutl",
        "-encrypt",
        "-in",
        "aes-key.bin",
        "-out",
        "aes-key-wrapped.bin",
        "-inkey",
        "WrappingPublicKey.bin",
        "-keyform",
        "DER",
        "-pubin",
        *oaep,
        cwd=workdir,
    )
    combined = (workdir / "aes-key-wrapped.bin").read_bytes() + (
        workdir / "key-material-wrapped.bin"
    ).read_bytes()
    (workdir / "EncryptedKeyMaterial.bin").write_bytes(combined)  # cat a b > EncryptedKeyMaterial
    return combined


def import_material(
    kms: BaseClient,
    key_id: str,
    material: bytes,
    workdir: Path,
    *,
    algorithm: str = "RSAES_OAEP_SHA_256",
    wrapping_spec: str = "RSA_2048",
    valid_to: datetime.datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """GetParametersForImport, wrap with openssl, ImportKeyMaterial (DOES_NOT_EXPIRE unless
    ``valid_to``); returns the ImportKeyMaterial response."""
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=wrapping_spec
    )
    wrapped = wrap_key_material(workdir, material, params["PublicKey"], algorithm)
    if valid_to is None:
        extra.setdefault("ExpirationModel", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    else:
        extra.update(ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
    response: dict[str, Any] = kms.import_key_material(
        KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **extra
    )
    return response


def external_key(
    kms: BaseClient, spec: str = "SYMMETRIC_DEFAULT", usage: str = ""
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Origin": "EXTERNAL", "KeySpec": spec}
    if usage:
        kwargs["KeyUsage"] = usage
    meta: dict[str, Any] = kms.create_key(**kwargs)["KeyMetadata"]
    return meta


def now_utc() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def run_scheduler(data_dir: Path, now: datetime.datetime) -> dict[str, Any]:
    """``python -m openkms.cli.main scheduler run-once --data-dir D --now <ISO>``, then waits
    for the server's caches (1 s TTL) to see what it changed."""
    proc = subprocess.run(
        openkms_command(
            "scheduler", "run-once", "--data-dir", str(data_dir), "--now", now.isoformat()
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"scheduler run-once failed ({proc.returncode}):\n{proc.stderr}"
    time.sleep(1.2)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


# --- CreateKey Origin=EXTERNAL ----------------------------------------------------------------
def test_external_key_waits_for_its_material(kms: BaseClient, server: Any) -> None:
    meta = external_key(kms)
    assert meta["Origin"] == "EXTERNAL"
    assert meta["KeyState"] == "PendingImport"
    assert meta["Enabled"] is False
    assert "CurrentKeyMaterialId" not in meta
    assert "ExpirationModel" not in meta
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingImport"
    for call, params in (
        (kms.encrypt, {"Plaintext": b"x"}),
        (kms.generate_data_key, {"KeySpec": "AES_256"}),
        (kms.enable_key, {}),
        (kms.disable_key, {}),
    ):
        expect_error("KMSInvalidStateException", call, KeyId=meta["KeyId"], **params)
    # A PendingImport key may still be scheduled for deletion.
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)


@pytest.mark.parametrize(
    ("algorithm", "wrapping_spec", "expires"),
    [
        ("RSAES_OAEP_SHA_1", "RSA_2048", True),
        ("RSAES_OAEP_SHA_256", "RSA_3072", False),
        ("RSA_AES_KEY_WRAP_SHA_1", "RSA_4096", False),
        ("RSA_AES_KEY_WRAP_SHA_256", "RSA_2048", True),
    ],
    ids=lambda v: str(v),
)
def test_import_with_each_wrapping_algorithm(
    kms: BaseClient, tmp_path: Path, algorithm: str, wrapping_spec: str, expires: bool
) -> None:
    meta = external_key(kms)
    before = now_utc()
    params = kms.get_parameters_for_import(
        KeyId=meta["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec=wrapping_spec
    )
    assert params["KeyId"] == meta["Arn"]
    wrapping_key = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(wrapping_key, rsa.RSAPublicKey)
    assert wrapping_key.key_size == int(wrapping_spec.split("_")[1])
    assert params["ImportToken"]
    # Valid for 24 hours.
    valid_for = params["ParametersValidTo"] - before
    assert (
        datetime.timedelta(hours=23, minutes=55)
        < valid_for
        < datetime.timedelta(hours=24, minutes=5)
    )

    material = random_material(tmp_path, 32)
    wrapped = wrap_key_material(tmp_path, material, params["PublicKey"], algorithm)
    if algorithm.startswith("RSA_AES_KEY_WRAP"):
        # The OAEP-encrypted AES key, then the RFC 5649 wrap of 32 bytes (40 bytes).
        assert len(wrapped) == wrapping_key.key_size // 8 + 40
    else:
        assert len(wrapped) == wrapping_key.key_size // 8
    valid_to = (now_utc() + 30 * DAY).replace(microsecond=0)
    kwargs: dict[str, Any] = (
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": valid_to}
        if expires
        else {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    )
    imported = kms.import_key_material(
        KeyId=meta["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrapped,
        **kwargs,
    )
    assert imported["KeyId"] == meta["Arn"]
    material_id = imported["KeyMaterialId"]
    assert len(material_id) == 64 and int(material_id, 16) >= 0

    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["Enabled"] is True
    assert described["CurrentKeyMaterialId"] == material_id
    if expires:
        assert described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
        assert described["ValidTo"] == valid_to
    else:
        assert described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
        assert "ValidTo" not in described

    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"imported", EncryptionContext={"a": "b"})
    opened = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert opened["Plaintext"] == b"imported"
    assert opened["KeyMaterialId"] == material_id
    data_key = kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256")
    assert data_key["KeyMaterialId"] == material_id
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )
    # Enable/Disable work once the material is there.
    kms.disable_key(KeyId=meta["KeyId"])
    expect_error("DisabledException", kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    kms.enable_key(KeyId=meta["KeyId"])


def test_delete_and_reimport(kms: BaseClient, tmp_path: Path) -> None:
    meta = external_key(kms)
    material = random_material(tmp_path, 32)
    first = import_material(kms, meta["KeyId"], material, tmp_path)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"before deletion")["CiphertextBlob"]

    deleted = kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert deleted["KeyId"] == meta["Arn"]
    assert deleted.get("KeyMaterialId", first["KeyMaterialId"]) == first["KeyMaterialId"]
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingImport"
    assert described["Enabled"] is False
    assert "ExpirationModel" not in described
    assert "ValidTo" not in described
    expect_error("KMSInvalidStateException", kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"x")
    expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)

    # Other material is refused: a key's imported material never changes.
    other = random_material(tmp_path, 32, "Other.bin")
    assert other != material
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        other,
        tmp_path,
    )
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"

    # The same material, through another wrapping algorithm, restores the key.
    again = import_material(
        kms, meta["KeyId"], material, tmp_path, algorithm="RSA_AES_KEY_WRAP_SHA_1"
    )
    assert again["KeyMaterialId"] == first["KeyMaterialId"]
    # Naming the material id: it must be the id of the material brought.
    assert (
        import_material(
            kms, meta["KeyId"], material, tmp_path, KeyMaterialId=first["KeyMaterialId"]
        )["KeyMaterialId"]
        == first["KeyMaterialId"]
    )
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        material,
        tmp_path,
        KeyMaterialId="0" * 64,
    )
    opened = kms.decrypt(CiphertextBlob=blob)
    assert opened["Plaintext"] == b"before deletion"
    assert opened["KeyMaterialId"] == first["KeyMaterialId"]
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"

    # Deleting twice leaves it PendingImport; a PendingDeletion key stays PendingDeletion.
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    import_material(kms, meta["KeyId"], material, tmp_path)
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    expect_error(
        "KMSInvalidStateException",
        kms.get_parameters_for_import,
        KeyId=meta["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )


def test_import_tokens_are_one_use_and_bound_to_their_key(kms: BaseClient, tmp_path: Path) -> None:
    meta = external_key(kms)
    other_key = external_key(kms)
    material = random_material(tmp_path, 32)

    params = kms.get_parameters_for_import(
        KeyId=meta["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap_key_material(tmp_path, material, params["PublicKey"], "RSAES_OAEP_SHA_256")
    request = {
        "KeyId": meta["KeyId"],
        "ImportToken": params["ImportToken"],
        "EncryptedKeyMaterial": wrapped,
        "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
    kms.import_key_material(**request)
    # Used: the very same request again.
    expect_error("InvalidImportTokenException", kms.import_key_material, **request)

    # Foreign: another key's token and wrapping key, presented for this key.
    foreign = kms.get_parameters_for_import(
        KeyId=other_key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    foreign_wrapped = wrap_key_material(
        tmp_path, material, foreign["PublicKey"], "RSAES_OAEP_SHA_256"
    )
    expect_error(
        "InvalidImportTokenException",
        kms.import_key_material,
        KeyId=meta["KeyId"],
        ImportToken=foreign["ImportToken"],
        EncryptedKeyMaterial=foreign_wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    # A token that is not one at all.
    expect_error(
        "InvalidImportTokenException",
        kms.import_key_material,
        KeyId=other_key["KeyId"],
        ImportToken=b"not a token",
        EncryptedKeyMaterial=foreign_wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    # The foreign token is still good for its own key.
    kms.import_key_material(
        KeyId=other_key["KeyId"],
        ImportToken=foreign["ImportToken"],
        EncryptedKeyMaterial=foreign_wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )

    # Material wrapped under another GetParametersForImport's public key does not unwrap.
    fresh = external_key(kms)
    first = kms.get_parameters_for_import(
        KeyId=fresh["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_2048"
    )
    second = kms.get_parameters_for_import(
        KeyId=fresh["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1", WrappingKeySpec="RSA_2048"
    )
    mismatched = wrap_key_material(tmp_path, material, second["PublicKey"], "RSAES_OAEP_SHA_1")
    expect_error(
        "InvalidCiphertextException",
        kms.import_key_material,
        KeyId=fresh["KeyId"],
        ImportToken=first["ImportToken"],
        EncryptedKeyMaterial=mismatched,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    # Wrapped with SHA-256 OAEP for a SHA-1 token: also not a ciphertext of that wrapping.
    wrong_hash = wrap_key_material(tmp_path, material, first["PublicKey"], "RSAES_OAEP_SHA_256")
    expect_error(
        "InvalidCiphertextException",
        kms.import_key_material,
        KeyId=fresh["KeyId"],
        ImportToken=first["ImportToken"],
        EncryptedKeyMaterial=wrong_hash,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def test_expiration_rules(kms: BaseClient, kms_unvalidated: BaseClient, tmp_path: Path) -> None:
    meta = external_key(kms)
    material = random_material(tmp_path, 32)
    params = kms.get_parameters_for_import(
        KeyId=meta["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap_key_material(tmp_path, material, params["PublicKey"], "RSAES_OAEP_SHA_256")
    base = {
        "KeyId": meta["KeyId"],
        "ImportToken": params["ImportToken"],
        "EncryptedKeyMaterial": wrapped,
    }
    for extra in (
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES"},
        {},  # KEY_MATERIAL_EXPIRES is the default model, and it needs ValidTo
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": now_utc() - DAY},
        {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": now_utc() + 366 * DAY},
        {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": now_utc() + DAY},
    ):
        expect_error("ValidationException", kms_unvalidated.import_key_material, **base, **extra)
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"

    # Symmetric key material must be 256 bits.
    short = random_material(tmp_path, 16, "Short.bin")
    expect_error(
        "IncorrectKeyMaterialException", import_material, kms, meta["KeyId"], short, tmp_path
    )
    # ValidTo at the 365-day bound is accepted.
    valid_to = (now_utc() + 364 * DAY).replace(microsecond=0)
    import_material(kms, meta["KeyId"], material, tmp_path, valid_to=valid_to)
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["ValidTo"] == valid_to


def test_import_operations_need_an_external_key(kms: BaseClient, tmp_path: Path) -> None:
    own = kms.create_key()["KeyMetadata"]
    expect_error(
        "UnsupportedOperationException",
        kms.get_parameters_for_import,
        KeyId=own["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    expect_error(
        "UnsupportedOperationException", kms.delete_imported_key_material, KeyId=own["KeyId"]
    )
    # Automatic rotation is not for imported material.
    external = external_key(kms)
    import_material(kms, external["KeyId"], random_material(tmp_path, 32), tmp_path)
    expect_error("UnsupportedOperationException", kms.enable_key_rotation, KeyId=external["KeyId"])


@pytest.mark.parametrize(
    ("spec", "size", "algorithm"),
    [
        ("HMAC_224", 28, "RSAES_OAEP_SHA_1"),
        ("HMAC_256", 32, "RSAES_OAEP_SHA_256"),
        ("HMAC_384", 48, "RSA_AES_KEY_WRAP_SHA_1"),
        ("HMAC_512", 64, "RSA_AES_KEY_WRAP_SHA_256"),
    ],
    ids=lambda v: str(v),
)
def test_hmac_key_import(
    kms: BaseClient, tmp_path: Path, spec: str, size: int, algorithm: str
) -> None:
    meta = external_key(kms, spec, "GENERATE_VERIFY_MAC")
    assert meta["KeyState"] == "PendingImport"
    mac_algorithm = "HMAC_SHA_" + spec.split("_")[1]
    # Too short for the spec is refused.
    short = random_material(tmp_path, size - 4, "Short.bin")
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        short,
        tmp_path,
        algorithm=algorithm,
    )
    material = random_material(tmp_path, size)
    import_material(kms, meta["KeyId"], material, tmp_path, algorithm=algorithm)
    digest = {"224": hashlib.sha224, "256": hashlib.sha256, "384": hashlib.sha384}.get(
        spec.split("_")[1], hashlib.sha512
    )
    expected = hmac.new(material, b"message", digest).digest()
    made = kms.generate_mac(KeyId=meta["KeyId"], Message=b"message", MacAlgorithm=mac_algorithm)
    assert made["Mac"] == expected
    assert kms.verify_mac(
        KeyId=meta["KeyId"],
        Message=b"other",
        Mac=hmac.new(material, b"other", digest).digest(),
        MacAlgorithm=mac_algorithm,
    )["MacValid"]
    assert "CurrentKeyMaterialId" not in kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]


def test_rsa_private_key_import(kms: BaseClient, tmp_path: Path) -> None:
    """An RSA private key (too long for plain OAEP) through RSA_AES_KEY_WRAP; the key works for
    encryption both ways with openssl holding the other half."""
    private = generate_private_key(tmp_path, "RSA_2048")
    public = public_key_of(tmp_path, private)
    meta = external_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    imported = import_material(
        kms,
        meta["KeyId"],
        private,
        tmp_path,
        algorithm="RSA_AES_KEY_WRAP_SHA_256",
        wrapping_spec="RSA_3072",
    )
    assert imported["KeyId"] == meta["Arn"]
    got = kms.get_public_key(KeyId=meta["KeyId"])
    assert got["PublicKey"] == public
    assert got["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]

    (tmp_path / "pub.der").write_bytes(public)
    (tmp_path / "priv.der").write_bytes(private)
    (tmp_path / "plain.bin").write_bytes(b"for the imported RSA key")
    openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER",
        "-in", "plain.bin", "-out", "ct.bin",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
        "-pkeyopt", "rsa_mgf1_md:sha256",
        cwd=tmp_path,
    )  # fmt: skip
    assert (
        kms.decrypt(
            KeyId=meta["KeyId"],
            CiphertextBlob=(tmp_path / "ct.bin").read_bytes(),
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        )["Plaintext"]
        == b"for the imported RSA key"
    )
    blob = kms.encrypt(
        KeyId=meta["KeyId"], Plaintext=b"from openkms", EncryptionAlgorithm="RSAES_OAEP_SHA_1"
    )["CiphertextBlob"]
    (tmp_path / "kms-ct.bin").write_bytes(blob)
    out = openssl(
        "pkeyutl", "-decrypt", "-inkey", "priv.der", "-keyform", "DER", "-in", "kms-ct.bin",
        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1",
        "-pkeyopt", "rsa_mgf1_md:sha1",
        cwd=tmp_path,
    )  # fmt: skip
    assert out == b"from openkms"

    # Re-import: only the same private key.
    kms.delete_imported_key_material(KeyId=meta["KeyId"])
    expect_error("KMSInvalidStateException", kms.get_public_key, KeyId=meta["KeyId"])
    other = generate_private_key(tmp_path, "RSA_2048")
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        other,
        tmp_path,
        algorithm="RSA_AES_KEY_WRAP_SHA_1",
    )
    import_material(kms, meta["KeyId"], private, tmp_path, algorithm="RSA_AES_KEY_WRAP_SHA_1")
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == public


def test_ecc_key_agreement_key_import(kms: BaseClient, tmp_path: Path) -> None:
    private = generate_private_key(tmp_path, "ECC_NIST_P256")
    meta = external_key(kms, "ECC_NIST_P256", "KEY_AGREEMENT")
    # P-256 PKCS#8 fits in plain OAEP under a 2048-bit wrapping key.
    import_material(kms, meta["KeyId"], private, tmp_path, algorithm="RSAES_OAEP_SHA_256")
    ours = serialization.load_der_private_key(private, password=None)
    assert isinstance(ours, ec.EllipticCurvePrivateKey)
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_der = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    derived = kms.derive_shared_secret(
        KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_der
    )
    assert derived["SharedSecret"] == ours.exchange(ec.ECDH(), peer.public_key())
    assert derived["KeyOrigin"] == "EXTERNAL"


@pytest.mark.parametrize(
    ("spec", "algorithm", "hash_name"),
    [
        ("ECC_NIST_P384", "ECDSA_SHA_384", "sha384"),
        ("ECC_NIST_P521", "ECDSA_SHA_512", "sha512"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "sha256"),
    ],
    ids=lambda v: str(v),
)
def test_imported_signing_keys_sign_for_openssl(
    kms: BaseClient, tmp_path: Path, spec: str, algorithm: str, hash_name: str
) -> None:
    private = generate_private_key(tmp_path, spec)
    public = public_key_of(tmp_path, private)
    meta = external_key(kms, spec, "SIGN_VERIFY")
    import_material(kms, meta["KeyId"], private, tmp_path, algorithm="RSA_AES_KEY_WRAP_SHA_256")
    assert kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"] == public
    message = b"signed by an imported key"
    signature = kms.sign(KeyId=meta["KeyId"], Message=message, SigningAlgorithm=algorithm)[
        "Signature"
    ]
    (tmp_path / "pub.der").write_bytes(public)
    (tmp_path / "msg.bin").write_bytes(message)
    (tmp_path / "sig.bin").write_bytes(signature)
    out = openssl(
        "dgst", f"-{hash_name}", "-verify", "pub.der", "-keyform", "DER",
        "-signature", "sig.bin", "msg.bin",
        cwd=tmp_path,
    )  # fmt: skip
    assert b"Verified OK" in out
    (tmp_path / "sig.bin").write_bytes(signature[:-1] + bytes([signature[-1] ^ 1]))
    ok, output = openssl_ok(
        "dgst", f"-{hash_name}", "-verify", "pub.der", "-keyform", "DER",
        "-signature", "sig.bin", "msg.bin",
        cwd=tmp_path,
    )  # fmt: skip
    assert not ok, output


def test_asymmetric_material_of_another_spec_is_refused(kms: BaseClient, tmp_path: Path) -> None:
    meta = external_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    for spec in ("ECC_NIST_P384", "ECC_NIST_EDWARDS25519"):
        expect_error(
            "IncorrectKeyMaterialException",
            import_material,
            kms,
            meta["KeyId"],
            generate_private_key(tmp_path, spec),
            tmp_path,
            algorithm="RSA_AES_KEY_WRAP_SHA_256",
        )
    # Not a private key at all.
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        random_material(tmp_path, 32),
        tmp_path,
    )
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"


def test_new_key_material_and_on_demand_rotation(kms: BaseClient, tmp_path: Path) -> None:
    meta = external_key(kms)
    first_material = random_material(tmp_path, 32)
    first = import_material(kms, meta["KeyId"], first_material, tmp_path)
    old_blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"first material")["CiphertextBlob"]
    # Nothing staged yet: nothing to rotate to (AWS's answer, pinned in test_aws_recorded).
    expect_error("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=meta["KeyId"])

    second_material = random_material(tmp_path, 32, "Second.bin")
    second = import_material(
        kms, meta["KeyId"], second_material, tmp_path, ImportType="NEW_KEY_MATERIAL",
        KeyMaterialDescription="second",
    )  # fmt: skip
    assert second["KeyMaterialId"] != first["KeyMaterialId"]
    # Staged, not current yet.
    assert (
        kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
        == first["KeyMaterialId"]
    )
    listed = kms.list_key_rotations(KeyId=meta["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    states = {r["KeyMaterialId"]: r for r in listed["Rotations"]}
    assert states[first["KeyMaterialId"]]["KeyMaterialState"] == "CURRENT"
    assert states[second["KeyMaterialId"]]["KeyMaterialState"] == "PENDING_ROTATION"
    assert states[second["KeyMaterialId"]]["ImportState"] == "IMPORTED"
    assert states[second["KeyMaterialId"]]["KeyMaterialDescription"] == "second"
    # The same material twice as NEW_KEY_MATERIAL is refused.
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        kms,
        meta["KeyId"],
        first_material,
        tmp_path,
        ImportType="NEW_KEY_MATERIAL",
    )

    kms.rotate_key_on_demand(KeyId=meta["KeyId"])
    assert (
        kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
        == second["KeyMaterialId"]
    )
    new_blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"second material")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new_blob)["KeyMaterialId"] == second["KeyMaterialId"]
    old = kms.decrypt(CiphertextBlob=old_blob)
    assert old["Plaintext"] == b"first material"
    assert old["KeyMaterialId"] == first["KeyMaterialId"]
    rotations = kms.list_key_rotations(KeyId=meta["KeyId"])["Rotations"]
    assert [(r["KeyMaterialId"], r["RotationType"]) for r in rotations] == [
        (second["KeyMaterialId"], "ON_DEMAND")
    ]
    assert rotations[0]["KeyMaterialState"] == "CURRENT"


def test_material_expiry_through_the_scheduler(server_factory: Any, tmp_path: Path) -> None:
    managed = server_factory.start()
    kms = managed.client()
    meta = external_key(kms)
    forever = external_key(kms)
    material = random_material(tmp_path, 32)
    start = now_utc()
    imported = import_material(
        kms, meta["KeyId"], material, tmp_path, valid_to=(start + 2 * DAY).replace(microsecond=0)
    )
    import_material(kms, forever["KeyId"], random_material(tmp_path, 32, "F.bin"), tmp_path)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"expiring")["CiphertextBlob"]

    # Before ValidTo: nothing happens.
    report = run_scheduler(managed.server.data_dir, start + DAY)
    assert report["ExpiredMaterial"] == []
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"

    report = run_scheduler(managed.server.data_dir, start + 3 * DAY)
    assert report["ExpiredMaterial"] == [meta["Arn"]]
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "PendingImport"
    assert "ValidTo" not in described
    expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob)
    assert kms.describe_key(KeyId=forever["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"

    again = import_material(kms, meta["KeyId"], material, tmp_path)
    assert again["KeyMaterialId"] == imported["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"expiring"
