"""Matching of the Action, Resource and Principal elements.

Wildcards are compiled once, when a document is parsed, into ``Glob`` matchers that run in
time linear in the value (never a backtracking regex: see "wildcards" below); a pattern that
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
from typing import Literal

from openkms.policy.facts import RequestFacts
from openkms.policy.variables import Template, Text, resolve_pieces

__all__ = [
    "Glob",
    "MatchKind",
    "PatternSet",
    "PrincipalSpec",
    "compile_action_set",
    "compile_resource_set",
    "match_principal",
    "not_principal_applies",
    "wildcard_glob",
    "wildcard_regex",
]

# --- wildcards -----------------------------------------------------------------------------
#
# Wildcards are never handed to a backtracking regex engine: ``*/*/*/*.json`` against a 1,000
# character value of slashes takes Python's ``re`` 26 s (the work grows with the value's length
# to the power of the number of stars), and the value can be a caller's encryption context. A
# ``Glob`` matches in time linear in the value instead (benchmarks/wildcard_redos.py):
#
# * no wildcard: string equality;
# * only ``*`` that may cross colons, no ``?``: the pieces between the stars are found left to
#   right with ``str.find`` (the leftmost occurrence of each is always the best choice): O(n+m);
# * anything else (``?``, or a ``*`` that must stay inside a colon-separated segment): a
#   bit-parallel simulation of the pattern's automaton, one step per character of the value
#   with the set of pattern positions reached held in an integer: O(n * m/64), no backtracking.
#
# 'arn' patterns (ArnLike) are split at their first five colons and each component is matched
# on its own, as a plain pattern.

_LIT = 0
_ANY = 1  # '?'
_STAR = 2  # '*'
Token = tuple[int, str, bool]  # (kind, literal character, may match ':')


def _tokens(pieces: Iterable[Text], style: str) -> list[Token]:
    """The pattern as tokens, with the style's rules for where a wildcard may cross a colon:
    'plain' (anywhere), 'resource' (``*`` only at the end or before a colon) or 'arn' (only in
    the sixth component, after five colons)."""
    flat: list[tuple[str, bool]] = []  # (character, is_wild)
    for piece in pieces:
        flat.extend((ch, piece.wild) for ch in piece.text)
    out: list[Token] = []
    colons = 0
    for idx, (ch, wild) in enumerate(flat):
        if ch == ":":
            colons += 1
        if wild and ch == "*":
            if style == "plain":
                free = True
            elif style == "resource":
                nxt = flat[idx + 1][0] if idx + 1 < len(flat) else None
                free = nxt is None or nxt == ":"
            else:
                free = colons >= 5
            if out and out[-1][0] == _STAR:  # '**' is '*'; a free one absorbs a bound one
                out[-1] = (_STAR, "", out[-1][2] or free)
            else:
                out.append((_STAR, "", free))
        elif wild and ch == "?":
            out.append((_ANY, "", style == "plain" or (style == "arn" and colons >= 5)))
        else:
            out.append((_LIT, ch, True))
    return out


class Glob:
    """A wildcard pattern compiled for linear-time matching; ``fullmatch`` is True or None
    (like ``re.Pattern.fullmatch``'s match or None)."""

    __slots__ = (
        "_consume",
        "_final",
        "_ignore_case",
        "_kind",
        "_literal",
        "_loop",
        "_other",
        "_parts",
        "_segments",
        "_star_mask",
        "source",
    )

    def __init__(self, tokens: list[Token], ignore_case: bool, source: str) -> None:
        self.source = source
        self._ignore_case = ignore_case
        if ignore_case:
            tokens = [(k, c.lower(), f) for k, c, f in tokens]
        self._literal = ""
        self._segments: list[str] = []
        self._parts: list[Glob] = []
        self._consume: dict[str, int] = {}
        self._loop: dict[str, int] = {}
        self._other = (0, 0)
        self._star_mask = 0
        self._final = 0
        kinds = {t[0] for t in tokens}
        if kinds <= {_LIT}:
            self._kind = 0
            self._literal = "".join(t[1] for t in tokens)
        elif _ANY not in kinds and all(t[2] for t in tokens if t[0] == _STAR):
            self._kind = 1
            segment: list[str] = []
            for kind, ch, _ in tokens:
                if kind == _STAR:
                    self._segments.append("".join(segment))
                    segment = []
                else:
                    segment.append(ch)
            self._segments.append("".join(segment))
        else:
            self._kind = 2
            self._compile_automaton(tokens)

    @classmethod
    def arn(cls, tokens: list[Token], ignore_case: bool, source: str) -> Glob:
        """An 'arn' pattern with at least five colons: one plain pattern per component."""
        glob = cls([], ignore_case, source)
        glob._kind = 3
        part: list[Token] = []
        for token in tokens:
            if token[0] == _LIT and token[1] == ":" and len(glob._parts) < 5:
                glob._parts.append(cls(part, ignore_case, source))
                part = []
            else:
                part.append(token if token[0] == _LIT else (token[0], "", True))
        glob._parts.append(cls(part, ignore_case, source))
        return glob

    def _compile_automaton(self, tokens: list[Token]) -> None:
        # Bit j: the first j tokens have matched. A star token j loops on itself.
        chars = {ch for kind, ch, _ in tokens if kind == _LIT} | {":"}
        any_free = any_bound = star_free = star_bound = 0
        literal_bits: dict[str, int] = {}
        for index, (kind, ch, free) in enumerate(tokens, start=1):
            bit = 1 << index
            if kind == _LIT:
                literal_bits[ch] = literal_bits.get(ch, 0) | bit
            elif kind == _ANY:
                if free:
                    any_free |= bit
                else:
                    any_bound |= bit
            else:
                self._star_mask |= bit
                if free:
                    star_free |= bit
                else:
                    star_bound |= bit
        for ch in chars:
            colon = ch == ":"
            self._consume[ch] = literal_bits.get(ch, 0) | any_free | (0 if colon else any_bound)
            self._loop[ch] = star_free | (0 if colon else star_bound)
        self._other = (any_free | any_bound, star_free | star_bound)
        self._final = len(tokens)

    def fullmatch(self, text: str) -> Literal[True] | None:
        if self._ignore_case:
            text = text.lower()
        return True if self._match(text) else None

    def _match(self, text: str) -> bool:
        kind = self._kind
        if kind == 0:
            return text == self._literal
        if kind == 1:
            return self._match_segments(text)
        if kind == 2:
            return self._match_automaton(text)
        parts = text.split(":", 5)
        if len(parts) != 6:
            return False
        return all(glob._match(part) for glob, part in zip(self._parts, parts, strict=True))

    def _match_segments(self, text: str) -> bool:
        segments = self._segments
        first = segments[0]
        last = segments[-1]
        end = len(text) - len(last)
        if end < len(first) or not text.startswith(first) or not text.endswith(last):
            return False
        pos = len(first)
        for index in range(1, len(segments) - 1):
            segment = segments[index]
            found = text.find(segment, pos, end)
            if found < 0:
                return False
            pos = found + len(segment)
        return True

    def _match_automaton(self, text: str) -> bool:
        consume = self._consume
        loop = self._loop
        other_consume, other_loop = self._other
        stars = self._star_mask
        state = 1 | (2 & stars)
        for ch in text:
            step = consume.get(ch)
            if step is None:
                state = ((state << 1) & other_consume) | (state & other_loop)
            else:
                state = ((state << 1) & step) | (state & loop[ch])
            if not state:
                return False
            state |= (state << 1) & stars
        return bool((state >> self._final) & 1)

    def __repr__(self) -> str:
        return f"Glob({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Glob) and (self.source, self._ignore_case) == (
            other.source,
            other._ignore_case,
        )

    def __hash__(self) -> int:
        return hash((self.source, self._ignore_case))


@functools.lru_cache(maxsize=4096)
def _compile(key: tuple[tuple[str, bool], ...], style: str, ignore_case: bool) -> Glob:
    pieces = [Text(text, wild) for text, wild in key]
    tokens = _tokens(pieces, style)
    source = "".join(text for text, _ in key)
    if style == "arn" and sum(1 for k, c, _ in tokens if k == _LIT and c == ":") >= 5:
        return Glob.arn(tokens, ignore_case, source)
    return Glob(tokens, ignore_case, source)


def wildcard_glob(pieces: Iterable[Text], style: str, *, ignore_case: bool) -> Glob:
    """The compiled pattern (cached): ``style`` is 'plain', 'resource' or 'arn'."""
    return _compile(tuple((p.text, p.wild) for p in pieces), style, ignore_case)


wildcard_regex = wildcard_glob  # the former name; it never returned a regex again


@dataclass(frozen=True, slots=True)
class PatternSet:
    """A list of wildcard patterns (Action or Resource values) that matches if any one does."""

    literals: frozenset[str]  # patterns without a wildcard (lower-cased with ignore_case)
    static: tuple[Glob, ...]  # the other patterns without variables
    dynamic: tuple[Template, ...]  # patterns that hold variables, resolved per request
    style: str
    ignore_case: bool
    match_all: bool  # one of the patterns is a bare "*"

    def matches(self, value: str, context: Mapping[str, tuple[str, ...]]) -> bool:
        if self.match_all:
            return True
        if self.literals and (value.lower() if self.ignore_case else value) in self.literals:
            return True
        for glob in self.static:
            if glob.fullmatch(value) is not None:
                return True
        for template in self.dynamic:
            pieces = resolve_pieces(template, context)
            if pieces is None:
                continue  # an unresolvable variable matches nothing
            if wildcard_glob(pieces, self.style, ignore_case=self.ignore_case).fullmatch(value):
                return True
        return False


def _pattern_set(templates: Iterable[Template], style: str, *, ignore_case: bool) -> PatternSet:
    literals: set[str] = set()
    static: list[Glob] = []
    dynamic: list[Template] = []
    match_all = False
    for template in templates:
        if template.has_variables:
            dynamic.append(template)
            continue
        pieces = [p for p in template.pieces if isinstance(p, Text)]
        if len(pieces) == 1 and pieces[0].wild and pieces[0].text == "*":
            match_all = True
        if not any(p.wild and ("*" in p.text or "?" in p.text) for p in pieces):
            text = "".join(p.text for p in pieces)
            literals.add(text.lower() if ignore_case else text)
        else:
            static.append(wildcard_glob(pieces, style, ignore_case=ignore_case))
    return PatternSet(
        frozenset(literals),
        tuple(dict.fromkeys(static)),
        tuple(dynamic),
        style,
        ignore_case,
        match_all,
    )


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
