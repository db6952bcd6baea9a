"""The core operations of the dispatch table (secrets, values, versions, listing, tags,
passwords), gathered from their modules. Rotation, resource policies and replication have
their own tables (``rotation.operations``, ``resource_policies``, ``replication``)."""

from __future__ import annotations

from openkms.secretsmanager import listing, passwords, reading, secrets, tags, versions
from openkms.secretsmanager.deps import Handler

OPERATIONS: dict[str, Handler] = {
    "BatchGetSecretValue": reading.batch_get_secret_value,
    "CreateSecret": secrets.create_secret,
    "DeleteSecret": secrets.delete_secret,
    "DescribeSecret": secrets.describe_secret,
    "GetRandomPassword": passwords.get_random_password,
    "GetSecretValue": reading.get_secret_value,
    "ListSecretVersionIds": versions.list_secret_version_ids,
    "ListSecrets": listing.list_secrets,
    "PutSecretValue": versions.put_secret_value,
    "RestoreSecret": secrets.restore_secret,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "UpdateSecret": secrets.update_secret,
    "UpdateSecretVersionStage": versions.update_secret_version_stage,
}
