"""Policy variables: ``${aws:username}``, ``${key, 'default'}`` and the ``${*}`` ``${?}`` ``${$}``
escapes.

A policy string is parsed once into a :class:`Template`: a tuple of pieces that are either text
or a variable. Text pieces remember whether their ``*`` and ``?`` are wildcards (text written
directly in the policy) or literal characters (the escapes). Variables are substituted only in
Version ``2012-10-17`` documents; in ``2008-10-17`` (or without a Version) ``${...}`` is plain text.

Resolution follows AWS's rules for variables:

* a variable names a condition key, case-insensitively (``${AWS:UserName}`` = ``${aws:username}``);
* only a key with exactly one value substitutes; multivalued keys cannot be variables;
* ``${key, 'text'}`` falls back to ``text`` when the key has no usable value (``''`` inside the
  quotes is one quote; spaces around the key and the quoted default are ignored);
* a variable that resolves to nothing makes the whole policy value match nothing -- AWS treats the
  missing value as null, which equals and is like no value.

Substituted values are always literal: a ``*`` inside a user name never acts as a wildcard.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Template", "Text", "Variable", "parse_template", "resolve_pieces", "resolve_text"]


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    wild: bool  # True: '*' and '?' are wildcards where the operator has wildcards


@dataclass(frozen=True, slots=True)
class Variable:
    key: str  # lower-cased condition key
    default: str | None


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    pieces: tuple[Text | Variable, ...]
    has_variables: bool


_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _parse_variable(source: str, start: int) -> tuple[Text | Variable, int] | None:
    """Parse the variable whose ``${`` is at ``start``; None when it is not well formed."""
    i = start + 2
    n = len(source)
    j = i
    while j < n and source[j] not in ",}":
        j += 1
    if j >= n:
        return None
    name = source[i:j].strip()
    if source[j] == "}":
        if name in _ESCAPES:
            return Text(_ESCAPES[name], wild=False), j + 1
        if not name or "{" in name or "$" in name:
            return None
        return Variable(name.lower(), None), j + 1
    # a default: ${key, 'text'}
    if not name or name in _ESCAPES:
        return None
    k = j + 1
    while k < n and source[k] == " ":
        k += 1
    if k >= n or source[k] != "'":
        return None
    k += 1
    chars: list[str] = []
    while k < n:
        ch = source[k]
        if ch == "'":
            if k + 1 < n and source[k + 1] == "'":
                chars.append("'")
                k += 2
                continue
            break
        chars.append(ch)
        k += 1
    if k >= n:
        return None
    k += 1  # the closing quote
    while k < n and source[k] == " ":
        k += 1
    if k >= n or source[k] != "}":
        return None
    return Variable(name.lower(), "".join(chars)), k + 1


def parse_template(source: str, *, variables: bool) -> Template:
    """Split ``source`` into text and variables (``variables=False``: all text, all wild)."""
    if not variables or "${" not in source:
        return Template(source, (Text(source, wild=True),) if source else (), False)
    pieces: list[Text | Variable] = []
    buf: list[str] = []
    i = 0
    n = len(source)
    while i < n:
        if source.startswith("${", i):
            parsed = _parse_variable(source, i)
            if parsed is not None:
                piece, i = parsed
                if buf:
                    pieces.append(Text("".join(buf), wild=True))
                    buf = []
                pieces.append(piece)
                continue
        buf.append(source[i])
        i += 1
    if buf:
        pieces.append(Text("".join(buf), wild=True))
    merged: list[Text | Variable] = []
    for piece in pieces:  # join neighbouring text of the same kind
        prev = merged[-1] if merged else None
        if isinstance(piece, Text) and isinstance(prev, Text) and prev.wild == piece.wild:
            merged[-1] = Text(prev.text + piece.text, wild=piece.wild)
        else:
            merged.append(piece)
    has_vars = any(isinstance(p, Variable) for p in merged)
    return Template(source, tuple(merged), has_vars)


def lookup_variable(var: Variable, context: Mapping[str, tuple[str, ...]]) -> str | None:
    values = context.get(var.key)
    if values is not None and len(values) == 1:
        return values[0]
    return var.default


def resolve_pieces(
    template: Template, context: Mapping[str, tuple[str, ...]]
) -> tuple[Text, ...] | None:
    """The template with each variable replaced by literal text; None if one cannot resolve."""
    out: list[Text] = []
    for piece in template.pieces:
        if isinstance(piece, Variable):
            value = lookup_variable(piece, context)
            if value is None:
                return None
            out.append(Text(value, wild=False))
        else:
            out.append(piece)
    return tuple(out)


def resolve_text(template: Template, context: Mapping[str, tuple[str, ...]]) -> str | None:
    """The template as a plain string (wildcards not interpreted); None if unresolvable."""
    if not template.has_variables:
        return "".join(p.text for p in template.pieces if isinstance(p, Text))
    out: list[str] = []
    for piece in template.pieces:
        if isinstance(piece, Variable):
            value = lookup_variable(piece, context)
            if value is None:
                return None
            out.append(value)
        else:
            out.append(piece.text)
    return "".join(out)
