"""Matching of the Action, Resource and Principal elements.

Wildcards are compiled to regular expressions once, when a document is parsed; a pattern that
holds policy variables is compiled when it is resolved, through a small cache.

* **Actions** are ``service:Action`` with ``*`` and ``?``, matched case-insensitively.
* **Resources** are ARNs with ``*`` and ``?``, matched case-sensitively. A wildcard stays inside
  its colon-separated segment, except that a ``*`` which ends a segment may run past the colons
  (AWS's rule for the Resource element), so ``arn:aws:kms:*:111122223333:key/*`` and ``*`` both
  match a key ARN.
* **Principals** are parsed into a :class:`PrincipalSpec`; :func:`match_principal` says how a
  request's principal is named by it (:class:`MatchKind`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from openkms.policy.facts import RequestFacts
from openkms.policy.variables import Template, Text, resolve_pieces

__all__ = [
    "MatchKind",
    "PatternSet",
    "PrincipalSpec",
    "compile_action_set",
    "compile_resource_set",
    "match_principal",
    "not_principal_applies",
    "wildcard_regex",
]

# --- wildcards -----------------------------------------------------------------------------


def _translate(pieces: Iterable[Text], style: str) -> str:
    """Regex source for ``pieces``. ``style``: 'plain' (``*`` any run, ``?`` one character),
    'resource' (segment-bound, trailing ``*`` free) or 'arn' (segment-bound except the last of
    the six ARN components)."""
    out: list[str] = []
    flat: list[tuple[str, bool]] = []  # (character, is_wild)
    for piece in pieces:
        flat.extend((ch, piece.wild) for ch in piece.text)
    colons = 0
    for idx, (ch, wild) in enumerate(flat):
        if ch == ":":
            colons += 1
        if wild and ch == "*":
            if style == "plain":
                out.append(".*")
            elif style == "resource":
                nxt = flat[idx + 1][0] if idx + 1 < len(flat) else None
                out.append(".*" if nxt is None or nxt == ":" else "[^:]*")
            else:  # arn: the sixth component (after five colons) may hold colons
                out.append(".*" if colons >= 5 else "[^:]*")
        elif wild and ch == "?":
            out.append("." if style == "plain" or (style == "arn" and colons >= 5) else "[^:]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(source, flags)


def wildcard_regex(pieces: Iterable[Text], style: str, *, ignore_case: bool) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return _compile(_translate(pieces, style), flags)


@dataclass(frozen=True, slots=True)
class PatternSet:
    """A list of wildcard patterns (Action or Resource values) that matches if any one does."""

    static: re.Pattern[str] | None  # every pattern without variables, as one alternation
    dynamic: tuple[Template, ...]  # patterns that hold variables, resolved per request
    style: str
    ignore_case: bool
    match_all: bool  # one of the patterns is a bare "*"

    def matches(self, value: str, context: Mapping[str, tuple[str, ...]]) -> bool:
        if self.match_all:
            return True
        if self.static is not None and self.static.fullmatch(value) is not None:
            return True
        for template in self.dynamic:
            pieces = resolve_pieces(template, context)
            if pieces is None:
                continue  # an unresolvable variable matches nothing
            rx = wildcard_regex(pieces, self.style, ignore_case=self.ignore_case)
            if rx.fullmatch(value) is not None:
                return True
        return False


def _pattern_set(templates: Iterable[Template], style: str, *, ignore_case: bool) -> PatternSet:
    static: list[str] = []
    dynamic: list[Template] = []
    match_all = False
    for template in templates:
        if template.has_variables:
            dynamic.append(template)
            continue
        pieces = [p for p in template.pieces if isinstance(p, Text)]
        if len(pieces) == 1 and pieces[0].wild and pieces[0].text == "*":
            match_all = True
        static.append(_translate(pieces, style))
    rx = None
    if static and not match_all:
        flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        rx = re.compile("|".join(f"(?:{s})" for s in static), flags)
    return PatternSet(rx, tuple(dynamic), style, ignore_case, match_all)


def compile_action_set(templates: Iterable[Template]) -> PatternSet:
    return _pattern_set(templates, "plain", ignore_case=True)


def compile_resource_set(templates: Iterable[Template]) -> PatternSet:
    return _pattern_set(templates, "resource", ignore_case=False)


# --- principals ----------------------------------------------------------------------------

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-[a-z]|-eusc)?"
_NAME = r"[\w+=,.@-]+"
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ROOT_ARN_RE = re.compile(rf"^arn:{_PARTITION}:iam::(\d{{12}}):root$")
IAM_ENTITY_RE = re.compile(rf"^arn:{_PARTITION}:iam::(\d{{12}}):(user|role)/(?:{_NAME}/)*{_NAME}$")
STS_SESSION_RE = re.compile(
    rf"^arn:{_PARTITION}:sts::(\d{{12}}):(?:assumed-role/{_NAME}/{_NAME}|federated-user/{_NAME})$"
)
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z0-9.-]*[a-z0-9]$")


class MatchKind(IntEnum):
    """How a statement's Principal names the caller (higher is more specific)."""

    NONE = 0
    ACCOUNT = 1  # the caller's account: delegates to the account's identity policies
    ENTITY = 2  # "*", NotPrincipal, the IAM user, the role of the session, a service
    SESSION = 3  # the assumed-role or federated-user session ARN itself


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    wildcard: bool = False
    accounts: frozenset[str] = frozenset()  # 12-digit ids (from ids and :root ARNs)
    entities: frozenset[str] = frozenset()  # lower-cased IAM user and role ARNs
    sessions: frozenset[str] = frozenset()  # STS assumed-role / federated-user ARNs
    services: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    canonical_users: frozenset[str] = frozenset()
    # Unique ids (AIDA..., AROA...) of IAM users and roles: a stored policy names them by id
    # (openkms.policy.principal_ids), and a caller matches by its own unique id.
    ids: frozenset[str] = frozenset()


def _facts_kind(spec: PrincipalSpec, facts: RequestFacts) -> MatchKind:
    """The most specific way ``spec`` (without its wildcard) names the caller."""
    ptype = facts.principal_type
    arn = facts.principal_arn
    if ptype in ("AssumedRole", "FederatedUser"):
        if arn in spec.sessions:
            return MatchKind.SESSION
        role = facts.principal_role_arn
        if role is not None and role.lower() in spec.entities:
            return MatchKind.ENTITY
        if facts.principal_id is not None and facts.principal_id in spec.ids:
            return MatchKind.ENTITY
    elif ptype == "User":
        if arn.lower() in spec.entities:
            return MatchKind.ENTITY
        if facts.principal_id is not None and facts.principal_id in spec.ids:
            return MatchKind.ENTITY
    elif ptype == "Service":
        return MatchKind.ENTITY if arn in spec.services else MatchKind.NONE
    elif ptype == "Federated":
        return MatchKind.ENTITY if arn in spec.federated else MatchKind.NONE
    if facts.principal_account in spec.accounts:
        return MatchKind.ACCOUNT
    return MatchKind.NONE


def match_principal(spec: PrincipalSpec, facts: RequestFacts) -> MatchKind:
    """How a ``Principal`` element names the caller."""
    kind = _facts_kind(spec, facts)
    if spec.wildcard and kind < MatchKind.ENTITY:
        return MatchKind.ENTITY
    return kind


def not_principal_applies(spec: PrincipalSpec, facts: RequestFacts) -> bool:
    """Whether a ``NotPrincipal`` statement applies to the caller.

    The caller is excluded only when every identity it acts as is listed: a user needs both its
    ARN and its account; a role session its session ARN (or its role ARN) and its account; the
    account root its account. Listing the user alone leaves the account identity, so the
    statement still applies -- AWS's documented NotPrincipal behaviour.
    """
    if spec.wildcard:
        return False
    ptype = facts.principal_type
    account_listed = facts.principal_account in spec.accounts
    if ptype == "Account":
        return not account_listed
    if ptype == "Service":
        return facts.principal_arn not in spec.services
    if ptype == "Federated":
        return facts.principal_arn not in spec.federated
    kind = _facts_kind(spec, facts)
    entity_listed = kind >= MatchKind.ENTITY
    return not (entity_listed and account_listed)
