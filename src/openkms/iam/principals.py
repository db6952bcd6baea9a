"""What applies to a principal: its identity policies, session policy and principal tags.

For the KMS side (and for IAM's own authorization). Callers cache the answers (a few seconds at
most, like access keys) because each call reads storage.

- IAM user: the user's inline policies, the default versions of the managed policies attached to
  it, and the same for each group it belongs to.
- Assumed-role session: the role's inline and attached policies, provided the role still exists
  with the id the session was issued for (a role deleted and created again under the same name
  does not give old sessions its new permissions).
- Root: none (IAM policies do not attach to the account root, which may do everything in its
  account).
"""

from __future__ import annotations

from openkms.iam.sessions import load_session
from openkms.iam.store import IamStore, Role, name_from_arn
from openkms.service.context import Principal
from openkms.storage.base import Storage


def _partition(arn: str) -> str:
    parts = arn.split(":", 2)
    return parts[1] if len(parts) > 2 else "aws"


def role_name_of_session_arn(arn: str) -> str:
    """``arn:aws:sts::1:assumed-role/ROLE/SESSION`` -> ``ROLE``."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    return parts[1] if len(parts) >= 3 else ""


def session_role(storage: Storage, principal: Principal) -> Role | None:
    """The role of an assumed-role principal, if it still exists as the session knew it."""
    if principal.kind != "assumed-role":
        return None
    store = IamStore(storage, principal.account_id, _partition(principal.arn))
    role = store.get_role(role_name_of_session_arn(principal.arn))
    if role is None:
        return None
    role_id = principal.user_id.split(":", 1)[0]
    return role if role.role_id == role_id else None


def entity_policies(store: IamStore, kind: str, name: str) -> list[str]:
    """The inline policies and the default versions of the attached managed policies of the
    user, group or role ``name`` (``kind`` is "user", "group" or "role")."""
    texts = [p.document for p in store.inline_policies(kind, name)]
    for attachment in store.attachments(kind, name):
        policy = store.policy_by_arn(attachment.policy_arn)
        if policy is not None:
            document = store.default_document(policy)
            if document is not None:
                texts.append(document)
    return texts


def identity_policies_for(storage: Storage, principal: Principal) -> list[str]:
    """The JSON texts of every identity policy that applies to ``principal``."""
    store = IamStore(storage, principal.account_id, _partition(principal.arn))
    if principal.kind == "user":
        user = store.get_user(name_from_arn(principal.arn))
        if user is None or user.arn != principal.arn:
            return []
        texts = entity_policies(store, "user", user.name)
        for group_name in store.group_names_of(user.name):
            texts.extend(entity_policies(store, "group", group_name))
        return texts
    if principal.kind == "assumed-role":
        role = session_role(storage, principal)
        return [] if role is None else entity_policies(store, "role", role.name)
    return []


def session_policy_for(storage: Storage, principal: Principal) -> str | None:
    """The session policy of an assumed-role session (the inline ``Policy`` and the
    ``PolicyArns`` of AssumeRole, merged into one document), or None."""
    if principal.kind != "assumed-role":
        return None
    session = load_session(storage, principal.access_key_id)
    return None if session is None else session.session_policy


def principal_tags_for(storage: Storage, principal: Principal) -> dict[str, str]:
    """``aws:PrincipalTag`` values: a user's tags; for a role session, the role's tags overlaid
    by the session tags (session tags win)."""
    store = IamStore(storage, principal.account_id, _partition(principal.arn))
    if principal.kind == "user":
        user = store.get_user(name_from_arn(principal.arn))
        return {} if user is None or user.arn != principal.arn else dict(user.tags)
    if principal.kind == "assumed-role":
        role = session_role(storage, principal)
        tags = {} if role is None else dict(role.tags)
        session = load_session(storage, principal.access_key_id)
        if session is not None:
            lowered = {k.lower(): k for k in tags}
            for key, value in session.tags:
                tags.pop(lowered.get(key.lower(), key), None)
                tags[key] = value
        return tags
    return {}
