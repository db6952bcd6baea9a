"""IAM users and roles named in a resource policy, and their unique ids.

AWS stores a named IAM user or role of a key policy or role trust policy by its unique id
(``AIDA...``, ``AROA...``), so that a principal deleted and created again under the same name
(a new unique id) does not inherit its predecessor's access, and shows the unique id in place of
the ARN once the principal is gone (IAM User Guide, "Unique identifiers").

openkms keeps the policy text as written and, beside it, the unique id of each user or role ARN
its ``Principal``/``NotPrincipal`` elements name (a *binding*, resolved when the policy is
stored). These pure functions find the ARNs to bind and substitute ids for ARNs in a policy's
principals: the evaluator reads the text with every bound ARN replaced by its id (and matches the
caller by its unique id), and GetKeyPolicy/GetRole show the text with the ids of principals that
no longer exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from openkms.policy.matching import IAM_ENTITY_RE

__all__ = ["UNIQUE_ID_RE", "entity_principals", "id_principals", "substitute_principals"]

# AIDA (IAM user) and AROA (IAM role) unique ids: the prefix and 16 or more letters and digits.
UNIQUE_ID_RE = re.compile(r"^A(?:IDA|ROA)[A-Z0-9]{16,}$")
_ELEMENTS = ("Principal", "NotPrincipal")


def _statements(doc: Any) -> Iterator[dict[str, Any]]:
    raw = doc.get("Statement") if isinstance(doc, dict) else None
    for statement in raw if isinstance(raw, list) else [raw]:
        if isinstance(statement, dict):
            yield statement


def _aws_values(doc: Any) -> Iterator[str]:
    for statement in _statements(doc):
        for element in _ELEMENTS:
            spec = statement.get(element)
            value = spec.get("AWS") if isinstance(spec, dict) else None
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    yield item


def entity_principals(text: str) -> list[str]:
    """The IAM user and role ARNs a (valid) policy names as AWS principals, each once."""
    found = [v for v in _aws_values(json.loads(text)) if IAM_ENTITY_RE.match(v)]
    return list(dict.fromkeys(found))


def id_principals(text: str) -> list[str]:
    """The unique ids a policy names as AWS principals (a stored policy's deleted principals)."""
    return [v for v in _aws_values(json.loads(text)) if UNIQUE_ID_RE.match(v)]


def _replace(value: Any, mapping: Mapping[str, str]) -> tuple[Any, bool]:
    if isinstance(value, str):
        new = mapping.get(value)
        return (value, False) if new is None else (new, True)
    if isinstance(value, list):
        pairs = [_replace(v, mapping) for v in value]
        return [v for v, _ in pairs], any(changed for _, changed in pairs)
    return value, False


def substitute_principals(text: str, mapping: Mapping[str, str]) -> str:
    """``text`` with every AWS principal value found in ``mapping`` replaced by its image;
    ``text`` itself when none is (so an unchanged policy keeps its layout)."""
    if not mapping:
        return text
    doc = json.loads(text)
    changed = False
    for statement in _statements(doc):
        for element in _ELEMENTS:
            spec = statement.get(element)
            if isinstance(spec, dict) and "AWS" in spec:
                spec["AWS"], replaced = _replace(spec["AWS"], mapping)
                changed = changed or replaced
    return json.dumps(doc, indent=2) if changed else text
