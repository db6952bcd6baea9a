"""Cross-account attacks: a partner account that the owner's key policy names with ``kms:*``.

AWS rule (KMS Developer Guide, "Allowing users in other accounts to use a KMS key", and the
"Cross-account use" line of every operation in the API reference): another account's
permissions are honoured only for CreateGrant, Decrypt, Decapsulate, DeriveSharedSecret,
DescribeKey, Encapsulate, Encrypt, GenerateDataKey*, GenerateDataKeyPair*, GenerateMac,
GetKeyRotationStatus, GetPublicKey, ListGrants, ReEncrypt, RetireGrant, RevokeGrant, Sign, Verify
and VerifyMac. "If you give a principal in a different account [...] kms:ScheduleKeyDeletion
permission on a KMS key in a key policy, the user's attempts to call those operations on your
resources still fail": openkms answers NotFoundException ("Key '<arn>' does not exist"), as for a
key the caller's account does not have, whatever the key policy says and whether or not the key
exists.

The table test covers every operation of the vendored botocore model, so an operation added to the
model without a row here fails ``test_the_table_covers_every_operation_of_the_model``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.protocol.model import operation_names
from openkms.service.runtime import CROSS_ACCOUNT_OPERATIONS
from tests.conftest import Server
from tests.security.support import code, eventually, policy, root_statement

WEST = "us-west-2"
NOT_FOUND = "NotFoundException"
OK = "OK"


def partner_policy(owner: str, partner: str) -> str:
    """The owner's key policy: the usual root statement, and ``kms:*`` for the partner account."""
    return policy(
        root_statement(owner),
        {
            "Sid": "Partner",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{partner}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
    )


@dataclass
class World:
    """The owner's keys (created on first use), each with the partner policy, and the partner's
    client; a row of the table builds its request from here."""

    owner: Server
    partner: Server
    kms: BaseClient  # the owner's
    other: BaseClient  # the partner's
    _keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def shared_policy(self) -> str:
        return partner_policy(self.owner.account_id, self.partner.account_id)

    def key(self, kind: str = "symmetric") -> str:
        """The ARN of an owner key of ``kind``; the partner may do ``kms:*`` on it."""
        if kind not in self._keys:
            spec: dict[str, Any] = {
                "symmetric": {},
                "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
                "sign": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
                "agreement": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
                "kem": {"KeySpec": "ML_KEM_768", "KeyUsage": "ENCAPSULATE_DECAPSULATE"},
                "external": {"Origin": "EXTERNAL"},
                "multi-region": {"MultiRegion": True},
            }[kind]
            meta = self.kms.create_key(Policy=self.shared_policy, **spec)["KeyMetadata"]
            self._keys[kind] = meta
        arn: str = self._keys[kind]["Arn"]
        return arn

    def settle(self, arn: str) -> None:
        """Waits until the partner's access is in effect (DescribeKey works across accounts)."""
        eventually(OK, lambda: self.other.describe_key(KeyId=arn))

    def owner_alias(self, arn: str) -> str:
        name = f"alias/owner-{uuid.uuid4().hex[:8]}"
        self.kms.create_alias(AliasName=name, TargetKeyId=arn)
        return name


# --- the table ----------------------------------------------------------------------------------

Call = Callable[[World], Any]


def _blob(w: World) -> bytes:
    data: bytes = w.kms.encrypt(KeyId=w.key(), Plaintext=b"owner data")["CiphertextBlob"]
    return data


def _peer_public_key() -> bytes:
    private = ec.generate_private_key(ec.SECP256R1())
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _grant(w: World, **extra: Any) -> str:
    """A grant the owner makes on its key (for the owner's root)."""
    grant_id: str = w.kms.create_grant(
        KeyId=w.key(), GranteePrincipal=_root(w.owner), Operations=["Decrypt"], **extra
    )["GrantId"]
    return grant_id


def _root(server: Server) -> str:
    return f"arn:aws:iam::{server.account_id}:root"


def _partner_alias(w: World) -> str:
    own_key = w.other.create_key()["KeyMetadata"]["KeyId"]
    name = f"alias/partner-{uuid.uuid4().hex[:8]}"
    w.other.create_alias(AliasName=name, TargetKeyId=own_key)
    return name


# operation -> (the partner's expected answer, the partner's call)
TABLE: dict[str, tuple[str, Call]] = {
    # Cross-account use: Yes. The key policy (and the partner root's implicit identity
    # permission) decide, so each call succeeds.
    "CreateGrant": (
        OK,
        lambda w: w.other.create_grant(
            KeyId=w.key(), GranteePrincipal=_root(w.partner), Operations=["Decrypt"]
        ),
    ),
    "Decapsulate": (
        OK,
        lambda w: w.other.decapsulate(
            KeyId=w.key("kem"),
            EncapsulationAlgorithm="ML_KEM",
            SharedSecretCiphertextBlob=w.kms.encapsulate(
                KeyId=w.key("kem"), EncapsulationAlgorithm="ML_KEM"
            )["SharedSecretCiphertextBlob"],
        ),
    ),
    "Decrypt": (OK, lambda w: w.other.decrypt(CiphertextBlob=_blob(w), KeyId=w.key())),
    "DeriveSharedSecret": (
        OK,
        lambda w: w.other.derive_shared_secret(
            KeyId=w.key("agreement"), KeyAgreementAlgorithm="ECDH", PublicKey=_peer_public_key()
        ),
    ),
    "DescribeKey": (OK, lambda w: w.other.describe_key(KeyId=w.key())),
    "Encapsulate": (
        OK,
        lambda w: w.other.encapsulate(KeyId=w.key("kem"), EncapsulationAlgorithm="ML_KEM"),
    ),
    "Encrypt": (OK, lambda w: w.other.encrypt(KeyId=w.key(), Plaintext=b"x")),
    "GenerateDataKey": (OK, lambda w: w.other.generate_data_key(KeyId=w.key(), KeySpec="AES_256")),
    "GenerateDataKeyPair": (
        OK,
        lambda w: w.other.generate_data_key_pair(KeyId=w.key(), KeyPairSpec="ECC_NIST_P256"),
    ),
    "GenerateDataKeyPairWithoutPlaintext": (
        OK,
        lambda w: w.other.generate_data_key_pair_without_plaintext(
            KeyId=w.key(), KeyPairSpec="ECC_NIST_P256"
        ),
    ),
    "GenerateDataKeyWithoutPlaintext": (
        OK,
        lambda w: w.other.generate_data_key_without_plaintext(KeyId=w.key(), KeySpec="AES_256"),
    ),
    "GenerateMac": (
        OK,
        lambda w: w.other.generate_mac(
            KeyId=w.key("hmac"), Message=b"m", MacAlgorithm="HMAC_SHA_256"
        ),
    ),
    "GetKeyRotationStatus": (OK, lambda w: w.other.get_key_rotation_status(KeyId=w.key())),
    "GetPublicKey": (OK, lambda w: w.other.get_public_key(KeyId=w.key("sign"))),
    "ListGrants": (OK, lambda w: w.other.list_grants(KeyId=w.key())),
    "ReEncrypt": (
        OK,
        lambda w: w.other.re_encrypt(CiphertextBlob=_blob(w), DestinationKeyId=w.key()),
    ),
    "RetireGrant": (
        OK,
        lambda w: w.other.retire_grant(
            KeyId=w.key(), GrantId=_grant(w, RetiringPrincipal=_root(w.partner))
        ),
    ),
    "RevokeGrant": (OK, lambda w: w.other.revoke_grant(KeyId=w.key(), GrantId=_grant(w))),
    "Sign": (
        OK,
        lambda w: w.other.sign(KeyId=w.key("sign"), Message=b"m", SigningAlgorithm="ECDSA_SHA_256"),
    ),
    "Verify": (
        OK,
        lambda w: w.other.verify(
            KeyId=w.key("sign"),
            Message=b"m",
            SigningAlgorithm="ECDSA_SHA_256",
            Signature=w.kms.sign(
                KeyId=w.key("sign"), Message=b"m", SigningAlgorithm="ECDSA_SHA_256"
            )["Signature"],
        ),
    ),
    "VerifyMac": (
        OK,
        lambda w: w.other.verify_mac(
            KeyId=w.key("hmac"),
            Message=b"m",
            MacAlgorithm="HMAC_SHA_256",
            Mac=w.kms.generate_mac(KeyId=w.key("hmac"), Message=b"m", MacAlgorithm="HMAC_SHA_256")[
                "Mac"
            ],
        ),
    ),
    # Cross-account use: No. The key policy's kms:* for the partner has no effect.
    "CancelKeyDeletion": (NOT_FOUND, lambda w: w.other.cancel_key_deletion(KeyId=w.key())),
    "CreateAlias": (
        NOT_FOUND,
        lambda w: w.other.create_alias(
            AliasName=f"alias/stolen-{uuid.uuid4().hex[:8]}", TargetKeyId=w.key()
        ),
    ),
    "DeleteImportedKeyMaterial": (
        NOT_FOUND,
        lambda w: w.other.delete_imported_key_material(KeyId=w.key("external")),
    ),
    "DisableKey": (NOT_FOUND, lambda w: w.other.disable_key(KeyId=w.key())),
    "DisableKeyRotation": (NOT_FOUND, lambda w: w.other.disable_key_rotation(KeyId=w.key())),
    "EnableKey": (NOT_FOUND, lambda w: w.other.enable_key(KeyId=w.key())),
    "EnableKeyRotation": (NOT_FOUND, lambda w: w.other.enable_key_rotation(KeyId=w.key())),
    "GetKeyLastUsage": (NOT_FOUND, lambda w: w.other.get_key_last_usage(KeyId=w.key())),
    "GetKeyPolicy": (
        NOT_FOUND,
        lambda w: w.other.get_key_policy(KeyId=w.key(), PolicyName="default"),
    ),
    "GetParametersForImport": (
        NOT_FOUND,
        lambda w: w.other.get_parameters_for_import(
            KeyId=w.key("external"),
            WrappingAlgorithm="RSAES_OAEP_SHA_256",
            WrappingKeySpec="RSA_2048",
        ),
    ),
    "ImportKeyMaterial": (
        NOT_FOUND,
        lambda w: w.other.import_key_material(
            KeyId=w.key("external"),
            ImportToken=b"t" * 32,
            EncryptedKeyMaterial=b"m" * 256,
            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
        ),
    ),
    "ListAliases": (NOT_FOUND, lambda w: w.other.list_aliases(KeyId=w.key())),
    "ListKeyPolicies": (NOT_FOUND, lambda w: w.other.list_key_policies(KeyId=w.key())),
    "ListKeyRotations": (NOT_FOUND, lambda w: w.other.list_key_rotations(KeyId=w.key())),
    "ListResourceTags": (NOT_FOUND, lambda w: w.other.list_resource_tags(KeyId=w.key())),
    "PutKeyPolicy": (
        NOT_FOUND,
        lambda w: w.other.put_key_policy(
            KeyId=w.key(),
            PolicyName="default",
            Policy=policy(root_statement(w.partner.account_id)),
            BypassPolicyLockoutSafetyCheck=True,
        ),
    ),
    "ReplicateKey": (
        NOT_FOUND,
        lambda w: w.other.replicate_key(
            KeyId=w.key("multi-region"),
            ReplicaRegion=WEST,
            Policy=policy(root_statement(w.partner.account_id)),
            BypassPolicyLockoutSafetyCheck=True,
        ),
    ),
    "RotateKeyOnDemand": (NOT_FOUND, lambda w: w.other.rotate_key_on_demand(KeyId=w.key())),
    "ScheduleKeyDeletion": (
        NOT_FOUND,
        lambda w: w.other.schedule_key_deletion(KeyId=w.key(), PendingWindowInDays=7),
    ),
    "TagResource": (
        NOT_FOUND,
        lambda w: w.other.tag_resource(KeyId=w.key(), Tags=[{"TagKey": "k", "TagValue": "v"}]),
    ),
    "UntagResource": (
        NOT_FOUND,
        lambda w: w.other.untag_resource(KeyId=w.key(), TagKeys=["k"]),
    ),
    "UpdateAlias": (
        NOT_FOUND,
        lambda w: w.other.update_alias(AliasName=_partner_alias(w), TargetKeyId=w.key()),
    ),
    "UpdateKeyDescription": (
        NOT_FOUND,
        lambda w: w.other.update_key_description(KeyId=w.key(), Description="pwned"),
    ),
    "UpdatePrimaryRegion": (
        NOT_FOUND,
        lambda w: w.other.update_primary_region(KeyId=w.key("multi-region"), PrimaryRegion=WEST),
    ),
    # An alias belongs to its account: the owner's alias name means nothing to the partner.
    "DeleteAlias": (NOT_FOUND, lambda w: w.other.delete_alias(AliasName=w.owner_alias(w.key()))),
    # No key: these act on the caller's own account (checked further in the tests below).
    "CreateKey": (OK, lambda w: w.other.create_key()),
    "GenerateRandom": (OK, lambda w: w.other.generate_random(NumberOfBytes=16)),
    "ListKeys": (OK, lambda w: w.other.list_keys()),
    # The retiring principal must be in the caller's account (tests/security/test_retirable_grants).
    "ListRetirableGrants": (
        "AccessDeniedException",
        lambda w: w.other.list_retirable_grants(RetiringPrincipal=_root(w.owner)),
    ),
    # Custom key stores are looked up in the caller's account only: an id of another account's
    # store (or of none) is not found.
    "ConnectCustomKeyStore": (
        "CustomKeyStoreNotFoundException",
        lambda w: w.other.connect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
    ),
    "CreateCustomKeyStore": (
        "CloudHsmClusterNotFoundException",
        lambda w: w.other.create_custom_key_store(
            CustomKeyStoreName=f"store-{uuid.uuid4().hex[:8]}",
            CloudHsmClusterId="cluster-234abcdefgh",
            TrustAnchorCertificate="-----BEGIN CERTIFICATE-----",
            KeyStorePassword="password1",
        ),
    ),
    "DeleteCustomKeyStore": (
        "CustomKeyStoreNotFoundException",
        lambda w: w.other.delete_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
    ),
    "DescribeCustomKeyStores": (
        "CustomKeyStoreNotFoundException",
        lambda w: w.other.describe_custom_key_stores(CustomKeyStoreId="cks-0123456789abcdef0"),
    ),
    "DisconnectCustomKeyStore": (
        "CustomKeyStoreNotFoundException",
        lambda w: w.other.disconnect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
    ),
    "UpdateCustomKeyStore": (
        "CustomKeyStoreNotFoundException",
        lambda w: w.other.update_custom_key_store(
            CustomKeyStoreId="cks-0123456789abcdef0", NewCustomKeyStoreName="renamed"
        ),
    ),
}

CROSS_ACCOUNT_YES = sorted(
    op
    for op, (expected, _) in TABLE.items()
    if expected == OK and op not in ("CreateKey", "GenerateRandom", "ListKeys")
)


@pytest.fixture
def world(server: Server, kms: BaseClient, second_account: Server) -> World:
    return World(server, second_account, kms, second_account.client())


def test_the_table_covers_every_operation_of_the_model() -> None:
    """Every operation of the vendored model has a row: a new operation cannot be forgotten."""
    assert sorted(TABLE) == operation_names()


def test_the_cross_account_operations_are_the_ones_aws_documents() -> None:
    """The rows expected to succeed are the operations whose documentation in botocore's KMS
    model (the installed botocore keeps the documentation the vendored copy strips) says
    "Cross-account use: Yes", and the server's list is the same."""
    model = botocore.session.get_session().get_service_model("kms")
    documented = set()
    for name in model.operation_names:
        found = re.search(
            r"<b>Cross-account use</b>:\s*(\w+)", model.operation_model(name).documentation
        )
        if found is not None and found.group(1) == "Yes":
            documented.add(name)
    assert set(CROSS_ACCOUNT_YES) == documented & set(operation_names())
    assert frozenset(CROSS_ACCOUNT_YES) == CROSS_ACCOUNT_OPERATIONS


@pytest.mark.parametrize("operation", sorted(TABLE))
def test_partner_with_kms_star_calls_each_operation_on_the_owners_key(
    operation: str, world: World
) -> None:
    """A partner account granted kms:* in the owner's key policy calls every operation on the
    owner's keys: only AWS's cross-account operations are honoured; every other one answers
    NotFoundException whatever the key policy says (AWS: "Cross-account use: No")."""
    expected, call = TABLE[operation]
    world.settle(world.key())
    assert code(lambda: call(world)) == expected


def test_partner_with_kms_star_cannot_lock_the_owner_out_or_destroy_the_key(
    world: World,
) -> None:
    """The attack: PutKeyPolicy naming only the partner (bypassing the lockout check), then
    DisableKey and ScheduleKeyDeletion. AWS: PutKeyPolicy, DisableKey and ScheduleKeyDeletion
    have no cross-account use, so the owner's key, policy and state stay as they were."""
    arn = world.key()
    world.settle(arn)
    before = world.kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    takeover = policy(root_statement(world.partner.account_id))
    attacks: list[Callable[[], Any]] = [
        lambda: world.other.put_key_policy(
            KeyId=arn, PolicyName="default", Policy=takeover, BypassPolicyLockoutSafetyCheck=True
        ),
        lambda: world.other.disable_key(KeyId=arn),
        lambda: world.other.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7),
        lambda: world.other.update_key_description(KeyId=arn, Description="pwned"),
        lambda: world.other.tag_resource(KeyId=arn, Tags=[{"TagKey": "k", "TagValue": "v"}]),
        lambda: world.other.enable_key_rotation(KeyId=arn),
        lambda: world.other.create_alias(AliasName="alias/stolen", TargetKeyId=arn),
    ]
    for attack in attacks:
        assert code(attack) == NOT_FOUND
    assert world.kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"] == before
    meta = world.kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Description"] == ""
    assert world.kms.list_resource_tags(KeyId=arn)["Tags"] == []
    assert world.kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False
    assert world.kms.list_aliases(KeyId=arn)["Aliases"] == []


def test_partner_with_replicate_key_cannot_copy_the_key_under_its_own_policy(
    server: Server, kms: BaseClient, second_account: Server
) -> None:
    """The attack: with only kms:ReplicateKey in the owner's policy, the partner replicates the
    owner's multi-Region key into another Region under a policy naming itself, then decrypts the
    owner's data with the replica. AWS (ReplicateKey): "Cross-account use: No. You cannot use this
    operation to create a replica key in a different Amazon Web Services account."""
    partner = second_account.client()
    key_policy = policy(
        root_statement(server.account_id),
        {
            "Effect": "Allow",
            "Principal": {"AWS": second_account.account_id},
            "Action": ["kms:ReplicateKey", "kms:DescribeKey"],
            "Resource": "*",
        },
    )
    meta = kms.create_key(MultiRegion=True, Policy=key_policy)["KeyMetadata"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"owner secret")["CiphertextBlob"]
    eventually(OK, lambda: partner.describe_key(KeyId=meta["Arn"]))
    takeover = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": second_account.account_id},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert (
        code(
            lambda: partner.replicate_key(
                KeyId=meta["Arn"],
                ReplicaRegion=WEST,
                Policy=takeover,
                BypassPolicyLockoutSafetyCheck=True,
            )
        )
        == NOT_FOUND
    )
    replica_arn = server.key_arn(meta["KeyId"], region=WEST)
    west_partner = second_account.client(region=WEST)
    with pytest.raises(ClientError) as refused:
        west_partner.decrypt(CiphertextBlob=blob, KeyId=replica_arn)
    assert refused.value.response["Error"]["Code"] in (NOT_FOUND, "AccessDeniedException")
    described = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]
    assert described["MultiRegionConfiguration"]["ReplicaKeys"] == []


def test_refusal_does_not_tell_whether_the_key_exists(world: World) -> None:
    """A refused cross-account operation answers the same for an existing key and for a key id
    that does not exist, so the refusal is no oracle for another account's keys."""
    arn = world.key()
    world.settle(arn)
    missing = arn.rsplit("/", 1)[0] + "/" + str(uuid.uuid4())
    with pytest.raises(ClientError) as real:
        world.other.disable_key(KeyId=arn)
    with pytest.raises(ClientError) as ghost:
        world.other.disable_key(KeyId=missing)
    assert real.value.response["Error"]["Code"] == ghost.value.response["Error"]["Code"]
    assert real.value.response["Error"]["Message"] == ghost.value.response["Error"][
        "Message"
    ].replace(missing, arn)


def test_cross_account_operations_accept_the_owners_alias_arn(world: World) -> None:
    """AWS: a cross-account operation may name the key by its alias ARN (never by an alias
    name, which resolves in the caller's account); a refused one may not either."""
    arn = world.key()
    world.settle(arn)
    alias = world.owner_alias(arn)
    alias_arn = world.owner.alias_arn(alias)
    blob = world.other.encrypt(KeyId=alias_arn, Plaintext=b"x")["CiphertextBlob"]
    assert world.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert code(lambda: world.other.encrypt(KeyId=alias, Plaintext=b"x")) == NOT_FOUND
    assert code(lambda: world.other.get_key_rotation_status(KeyId=alias_arn)) in (
        NOT_FOUND,
        "InvalidArnException",
    )
    assert code(lambda: world.other.disable_key(KeyId=alias_arn)) in (
        NOT_FOUND,
        "InvalidArnException",
    )


def test_keyless_operations_act_on_the_callers_own_account(world: World) -> None:
    """CreateKey, ListKeys and ListAliases never reach into another account."""
    arn = world.key()
    created = world.other.create_key()["KeyMetadata"]
    assert created["AWSAccountId"] == world.partner.account_id
    listed = {k["KeyArn"] for k in world.other.list_keys(Limit=1000)["Keys"]}
    assert arn not in listed
    assert all(
        a["AliasArn"].split(":")[4] == world.partner.account_id
        for a in world.other.list_aliases()["Aliases"]
    )
