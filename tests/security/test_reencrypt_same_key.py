"""``kms:ReEncryptOnSameKey``, AWS's condition key for whether ReEncrypt's source and destination
are the same key. The documented use is a Deny: "no re-encryption under the same key" (a
rotation-by-hand that would leave the key unchanged), or an Allow only for that case. Unknown to
the evaluator, the key was absent: the Deny never matched and the re-encryption went through."""

from __future__ import annotations

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user, policy, root_statement


def test_reencrypt_on_same_key(server: Server) -> None:
    kms = client(server, "kms")
    iam = client(server, "iam")
    user = new_user(iam)
    use = {"Effect": "Allow", "Principal": {"AWS": user.arn},
           "Action": ["kms:Encrypt", "kms:ReEncrypt*", "kms:DescribeKey"], "Resource": "*"}
    same_denied = {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "kms:ReEncrypt*",
                   "Resource": "*", "Condition": {"Bool": {"kms:ReEncryptOnSameKey": "true"}}}
    guarded = kms.create_key(Policy=policy(root_statement(server.account_id), use, same_denied))
    other = kms.create_key(Policy=policy(root_statement(server.account_id), use))
    guarded_arn = guarded["KeyMetadata"]["Arn"]
    other_arn = other["KeyMetadata"]["Arn"]
    as_user = client(server, "kms", user.creds)
    eventually("OK", lambda: as_user.describe_key(KeyId=guarded_arn))
    blob = as_user.encrypt(KeyId=guarded_arn, Plaintext=b"x")["CiphertextBlob"]
    other_blob = as_user.encrypt(KeyId=other_arn, Plaintext=b"x")["CiphertextBlob"]

    def reencrypt(ciphertext: bytes, destination: str) -> str:
        return code(lambda: as_user.re_encrypt(CiphertextBlob=ciphertext,
                                               DestinationKeyId=destination))

    # Same key: refused on the source side (ReEncryptFrom) and, by an alias, all the same.
    assert reencrypt(blob, guarded_arn) == "AccessDeniedException"
    kms.create_alias(AliasName="alias/reencrypt-same-key", TargetKeyId=guarded_arn)
    assert reencrypt(blob, "alias/reencrypt-same-key") == "AccessDeniedException"
    # To or from another key: the Deny does not apply.
    assert reencrypt(blob, other_arn) == "OK"
    assert reencrypt(other_blob, guarded_arn) == "OK"
    # The other key has no such Deny: re-encrypting under itself is allowed.
    assert reencrypt(other_blob, other_arn) == "OK"
    # Looking the destination up early for this key must not lend the destination's alias to
    # the source side: a source key that refuses ReEncryptFrom by any alias (kms:RequestAlias
    # present) still lets its ciphertext, named by none, go to a destination named by alias.
    no_alias = {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "kms:ReEncryptFrom",
                "Resource": "*", "Condition": {"Null": {"kms:RequestAlias": "false"}}}
    strict = kms.create_key(Policy=policy(root_statement(server.account_id), use, no_alias))
    strict_arn = strict["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/reencrypt-other-key", TargetKeyId=other_arn)
    eventually("OK", lambda: as_user.describe_key(KeyId=strict_arn))
    strict_blob = as_user.encrypt(KeyId=strict_arn, Plaintext=b"x")["CiphertextBlob"]
    assert reencrypt(strict_blob, "alias/reencrypt-other-key") == "OK"
