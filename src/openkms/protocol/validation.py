"""Request validation against the vendored KMS model, answered in AWS's (Coral's) wording.

``validate_input`` checks a decoded JSON 1.1 request body against the operation's input shape and
returns a new dict with blobs decoded to ``bytes`` and timestamps as float epoch seconds. The model
is compiled once, at first use, into a tree of small node objects per operation, so a typical
Encrypt request costs a few microseconds.

Two error classes, as on AWS:

* ``SerializationException``: the body could not be read into the shape. Coral's deserializer stops
  at the first mismatch *in document order*, so there is only ever one. Messages follow Coral's
  (``NUMBER_VALUE can not be converted to a String``, ``Start of list found where not expected``,
  ``Expected null``, ``'<b64>' can not be converted to a Blob: <reason>``...).
* ``ValidationException``: constraint failures, all gathered into one message
  ``N validation error(s) detected: <e1>; <e2>`` where each entry reads
  ``Value '<v>' at '<path>' failed to satisfy constraint: <constraint>``. The value part is
  ``null`` for a missing required member and is left out (``Value at 'plaintext'``) for blobs and
  members the model marks sensitive, so secrets are never echoed.

Paths are the lowerCamelCase member names joined with dots, a list element being
``<list>.<1-based index>.member`` (``tags.1.member.tagKey``). A list of scalars, or a map's keys or
values, is reported once for the whole collection, listing every constraint of the element shape:
``Member must satisfy constraint: [...]``, ``Map keys must satisfy constraint: [...]``,
``Map value must satisfy constraint: [...]``.

Entries follow the member order of the vendored model (whose members are sorted by name). Unknown
members are ignored and dropped from the result; a JSON ``null`` member is absent; a ``null`` list
element is dropped.
"""

from __future__ import annotations

import binascii
import math
import re
from typing import Any, Final

from openkms.errors import SerializationException, UnknownOperationException, ValidationException
from openkms.protocol import model

__all__ = ["ModelValidator", "compile_java_pattern", "validate_input"]

# --- Coral's deserializer messages ---------------------------------------------------------------
_START_OF_LIST: Final = "Start of list found where not expected"
_START_OF_MAP: Final = "Start of structure or map found where not expected."
_EXPECTED_STRUCTURE: Final = "Expected null"
_EXPECTED_LIST: Final = "Expected list or null"
_EXPECTED_MAP: Final = "Expected map or null"

_JAVA_LONG_MIN: Final = -(2**63)
_JAVA_LONG_MAX: Final = 2**63 - 1

# Base64 digits whose low bits are zero: the last digit before "==" carries 2 data bits (low 4
# bits must be 0), before "=" it carries 4 (low 2 bits must be 0). Anything else is a
# non-canonical encoding, which Coral rejects.
_B64_DIGITS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_LAST_BEFORE_2PAD: Final = frozenset(_B64_DIGITS[i] for i in range(0, 64, 16))
_B64_LAST_BEFORE_1PAD: Final = frozenset(_B64_DIGITS[i] for i in range(0, 64, 4))
_B64_BAD_CHAR: Final = re.compile(r"[^A-Za-z0-9+/=]|=[^=]")


def _token_name(value: object) -> str:
    """Coral names the offending JSON token by its kind."""
    if value is True:
        return "TRUE_VALUE"
    if value is False:
        return "FALSE_VALUE"
    if isinstance(value, int | float):
        return "NUMBER_VALUE"
    return "STRING_VALUE"


def _container_mismatch(value: object) -> str | None:
    if type(value) is list:
        return _START_OF_LIST
    if type(value) is dict:
        return _START_OF_MAP
    return None


def _scalar_mismatch(value: object, target: str) -> SerializationException:
    """A value of the wrong JSON type where a scalar is expected; ``target`` is e.g. 'a String'."""
    container = _container_mismatch(value)
    if container is not None:
        return SerializationException(container)
    return SerializationException(f"{_token_name(value)} can not be converted to {target}")


def _length_max(limit: object) -> str:
    return f"Member must have length less than or equal to {limit}"


def _length_min(limit: object) -> str:
    return f"Member must have length greater than or equal to {limit}"


def _value_max(limit: object) -> str:
    return f"Member must have value less than or equal to {limit}"


def _value_min(limit: object) -> str:
    return f"Member must have value greater than or equal to {limit}"


def _entry(rendered: str | None, path: str, constraint: str) -> str:
    if rendered is None:
        return f"Value at '{path}' failed to satisfy constraint: {constraint}"
    return f"Value '{rendered}' at '{path}' failed to satisfy constraint: {constraint}"


def _null_entry(path: str) -> str:
    return f"Value null at '{path}' failed to satisfy constraint: Member must not be null"


def _summary(errors: list[str]) -> str:
    count = len(errors)
    plural = "s" if count > 1 else ""
    return f"{count} validation error{plural} detected: " + "; ".join(errors)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def compile_java_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model (Java) regular expression for a Coral-style whole-value match.

    Java's ``\\w``, ``\\d`` and ``\\s`` are ASCII-only unless asked otherwise, hence ``re.ASCII``;
    ``\\uXXXX`` escapes and possessive quantifiers mean the same in Python 3.11. Callers match with
    ``fullmatch`` because Coral uses ``Matcher.matches()``, which anchors at both ends.
    """
    return re.compile(pattern, re.ASCII)


# --- Nodes ---------------------------------------------------------------------------------------
class _Node:
    """One compiled shape. ``convert`` type-checks and converts a non-null JSON value, appending
    constraint failures to ``errors`` and raising ``SerializationException`` on a type mismatch;
    ``prefix + name`` is the value's path, joined only when a message needs it."""

    __slots__ = ("constraints", "echo", "scalar")

    def __init__(self) -> None:
        # Every constraint of the shape, for the bracketed form used when a collection of these
        # values fails; ordered as Coral lists them (max, min, pattern, enum).
        self.constraints: list[str] = []
        # False when the value must never appear in a message (blobs, sensitive shapes).
        self.echo = True
        self.scalar = True

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        raise NotImplementedError

    def render(self, value: Any) -> str | None:
        """The value as Coral prints it (Java's toString), or None if it is not to be shown."""
        return str(value) if self.echo else None

    def first_mismatch(self, value: object, prefix: str, name: str) -> str | None:
        """The first type mismatch in document order, for the error Coral would have stopped at."""
        try:
            self.convert(value, prefix, name, [])
        except SerializationException as exc:
            return exc.message
        return None


# Enums that AWS lists in another order than the model's in "Member must satisfy enum value
# set: [...]" (its own Java set order), by shape name; the rest are listed in the model's order.
# Each entry is taken from a message AWS sent.
AWS_ENUM_ORDER: dict[str, tuple[str, ...]] = {
    "MacAlgorithmSpec": ("HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"),
}


def _enum_as_aws_lists_it(shape_name: str, enum: list[str]) -> list[str]:
    order = AWS_ENUM_ORDER.get(shape_name)
    if order is None or sorted(order) != sorted(enum):
        # Also when the model gained or lost a value since the order was recorded.
        return enum
    return list(order)


class _String(_Node):
    __slots__ = ("enum", "enum_rule", "has_checks", "max_len", "min_len", "pattern", "pattern_rule")

    def __init__(self, shape: dict[str, Any], shape_name: str = "") -> None:
        super().__init__()
        self.echo = not shape.get("sensitive", False)
        self.min_len: int = shape.get("min", 0)
        self.max_len: int | None = shape.get("max")
        enum: list[str] | None = shape.get("enum")
        self.enum = frozenset(enum) if enum else None
        if enum:
            enum = _enum_as_aws_lists_it(shape_name, enum)
        # Listed as Coral prints it.
        self.enum_rule = f"Member must satisfy enum value set: [{', '.join(enum)}]" if enum else ""
        pattern: str | None = shape.get("pattern")
        self.pattern = compile_java_pattern(pattern).fullmatch if pattern else None
        self.pattern_rule = f"Member must satisfy regular expression pattern: {pattern}"
        self.has_checks = bool("min" in shape or self.max_len is not None or enum or pattern)
        if self.max_len is not None:
            self.constraints.append(_length_max(self.max_len))
        if "min" in shape:
            self.constraints.append(_length_min(self.min_len))
        if pattern:
            self.constraints.append(self.pattern_rule)
        if enum:
            self.constraints.append(self.enum_rule)

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is not str:
            raise _scalar_mismatch(value, "a String")
        if self.has_checks:
            size = len(value)
            if (
                size < self.min_len
                or (self.max_len is not None and size > self.max_len)
                or (self.enum is not None and value not in self.enum)
                or (self.pattern is not None and self.pattern(value) is None)
            ):
                self._report(value, prefix + name, errors)
        return value

    def _report(self, value: str, path: str, errors: list[str]) -> None:
        rendered = value if self.echo else None
        # Coral orders the entries of one member by a hash; pattern-before-length is what most
        # captured messages show.
        if self.enum is not None and value not in self.enum:
            errors.append(_entry(rendered, path, self.enum_rule))
        if self.pattern is not None and self.pattern(value) is None:
            errors.append(_entry(rendered, path, self.pattern_rule))
        size = len(value)
        if self.max_len is not None and size > self.max_len:
            errors.append(_entry(rendered, path, _length_max(self.max_len)))
        if size < self.min_len:
            errors.append(_entry(rendered, path, _length_min(self.min_len)))


class _Integer(_Node):
    __slots__ = ("max_value", "min_value", "target")

    def __init__(self, shape: dict[str, Any]) -> None:
        super().__init__()
        self.target = "a Long" if shape["type"] == "long" else "an Integer"
        self.min_value: int | None = shape.get("min")
        self.max_value: int | None = shape.get("max")
        if self.max_value is not None:
            self.constraints.append(_value_max(self.max_value))
        if self.min_value is not None:
            self.constraints.append(_value_min(self.min_value))

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        number: int
        if type(value) is int:
            number = value
        elif type(value) is float:
            if not value.is_integer():
                # AWS truncates a fraction; openkms refuses to guess what the caller meant.
                raise SerializationException(
                    f"Value '{value!r}' at '{prefix + name}' can not be converted to "
                    f"{self.target}: it is not a whole number"
                )
            number = int(value)
        else:
            raise _scalar_mismatch(value, self.target)
        if number < _JAVA_LONG_MIN or number > _JAVA_LONG_MAX:
            # Past 64 bits Coral's number reader fails without a message.
            raise SerializationException("")
        if self.max_value is not None and number > self.max_value:
            errors.append(_entry(str(number), prefix + name, _value_max(self.max_value)))
        elif self.min_value is not None and number < self.min_value:
            errors.append(_entry(str(number), prefix + name, _value_min(self.min_value)))
        return number


class _Boolean(_Node):
    __slots__ = ()

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is bool:
            return value
        container = _container_mismatch(value)
        if container is not None:
            raise SerializationException(container)
        if type(value) is str:
            # Coral's own grammar, "an Boolean" included.
            raise SerializationException("STRING_VALUE can not be converted to an Boolean")
        raise SerializationException("NUMBER_VALUE can not be converted to a Boolean")

    def render(self, value: Any) -> str | None:
        return "true" if value else "false"


class _Timestamp(_Node):
    __slots__ = ()

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is int or type(value) is float:
            seconds = float(value)
            if math.isfinite(seconds):
                return seconds
            raise SerializationException(
                f"Value at '{prefix + name}' can not be converted to a Timestamp"
            )
        raise _scalar_mismatch(value, "a Timestamp")


class _Blob(_Node):
    __slots__ = ("has_checks", "max_len", "min_len", "sensitive")

    def __init__(self, shape: dict[str, Any]) -> None:
        super().__init__()
        # Coral prints a blob as a ByteBuffer, never its bytes; openkms shows nothing at all.
        self.echo = False
        self.sensitive = bool(shape.get("sensitive", False))
        self.min_len: int = shape.get("min", 0)
        self.max_len: int | None = shape.get("max")
        self.has_checks = "min" in shape or self.max_len is not None
        if self.max_len is not None:
            self.constraints.append(_length_max(self.max_len))
        if "min" in shape:
            self.constraints.append(_length_min(self.min_len))

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is not str:
            raise _scalar_mismatch(value, "a Blob")
        data = self._decode(value, prefix, name)
        if self.has_checks:
            size = len(data)
            if self.max_len is not None and size > self.max_len:
                errors.append(_entry(None, prefix + name, _length_max(self.max_len)))
            elif size < self.min_len:
                errors.append(_entry(None, prefix + name, _length_min(self.min_len)))
        return data

    def _decode(self, text: str, prefix: str, name: str) -> bytes:
        size = len(text)
        if size % 4:
            raise self._bad_base64(
                text,
                prefix + name,
                f"Base64 encoded length is expected a multiple of 4 bytes but found: {size}",
            )
        try:
            data = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            found = _B64_BAD_CHAR.search(text)
            if found is None:
                raise self._bad_base64(
                    text, prefix + name, "Invalid last non-pad Base64 character dectected"
                ) from None
            char = found.group()[0]
            # Even one character of a secret is too much to echo.
            detail = (
                "Invalid Base64 character"
                if self.sensitive
                else f"Invalid Base64 character: '{char}'"
            )
            raise self._bad_base64(text, prefix + name, detail) from None
        if size and text[-1] == "=":
            if text[-2] == "=":
                canonical = text[-3] in _B64_LAST_BEFORE_2PAD
            else:
                canonical = text[-2] in _B64_LAST_BEFORE_1PAD
            if not canonical:
                # The spelling is Coral's.
                raise self._bad_base64(
                    text, prefix + name, "Invalid last non-pad Base64 character dectected"
                )
        return data

    def _bad_base64(self, text: str, path: str, detail: str) -> SerializationException:
        if self.sensitive:
            return SerializationException(
                f"Value at '{path}' can not be converted to a Blob: {detail}"
            )
        return SerializationException(f"'{text}' can not be converted to a Blob: {detail}")


class _List(_Node):
    __slots__ = ("bracket", "max_len", "max_size", "member", "min_len", "min_size")

    def __init__(self, shape: dict[str, Any]) -> None:
        super().__init__()
        self.scalar = False
        self.min_len: int | None = shape.get("min")
        self.max_len: int | None = shape.get("max")
        # The same bounds as plain ints, so the common case is two comparisons.
        self.min_size: int = self.min_len or 0
        self.max_size: int = _JAVA_LONG_MAX if self.max_len is None else self.max_len
        self.member: _Node = _Node()  # replaced by the compiler, which may recurse
        self.bracket = ""
        if self.max_len is not None:
            self.constraints.append(_length_max(self.max_len))
        if self.min_len is not None:
            self.constraints.append(_length_min(self.min_len))

    def link(self, member: _Node) -> None:
        self.member = member
        self.bracket = "Member must satisfy constraint: [" + ", ".join(member.constraints) + "]"

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is not list:
            if type(value) is dict:
                raise SerializationException(_START_OF_MAP)
            raise SerializationException(_EXPECTED_LIST)
        member = self.member
        if member.scalar:
            # Coral reports a list of scalars once, as a whole, not element by element, so the
            # elements' own failures only need counting.
            scratch: list[str] = []
            out: list[Any] = []
            try:
                for item in value:
                    if item is not None:
                        out.append(member.convert(item, prefix, name, scratch))
            except SerializationException:
                self._raise_with_element_path(value, prefix, name)
                raise
            size = len(out)
            if scratch or size > self.max_size or size < self.min_size:
                self._report(out, prefix + name, errors, bool(scratch))
            return out
        inner = f"{prefix}{name}."
        mark = len(errors)
        out = []
        for index, item in enumerate(value, 1):
            if item is not None:
                out.append(member.convert(item, inner, f"{index}.member", errors))
        size = len(out)
        if size > self.max_size or size < self.min_size:
            # Length entries belong before those of the elements.
            length_errors: list[str] = []
            self._report(out, prefix + name, length_errors, False)
            errors[mark:mark] = length_errors
        return out

    def _raise_with_element_path(self, value: list[Any], prefix: str, name: str) -> None:
        """Convert again, element by element, so a message that names a path names the element."""
        for index, item in enumerate(value, 1):
            if item is not None:
                self.member.convert(item, prefix, f"{name}.{index}.member", [])

    def _report(self, items: list[Any], path: str, errors: list[str], members_failed: bool) -> None:
        rendered = self.render(items)
        size = len(items)
        if self.max_len is not None and size > self.max_len:
            errors.append(_entry(rendered, path, _length_max(self.max_len)))
        if self.min_len is not None and size < self.min_len:
            errors.append(_entry(rendered, path, _length_min(self.min_len)))
        if members_failed:
            errors.append(_entry(rendered, path, self.bracket))

    def render(self, value: Any) -> str | None:
        parts: list[str] = []
        for item in value:
            text = self.member.render(item) if self.member.scalar else None
            if text is None:
                return None
            parts.append(text)
        return "[" + ", ".join(parts) + "]"

    def first_mismatch(self, value: object, prefix: str, name: str) -> str | None:
        if type(value) is not list:
            return super().first_mismatch(value, prefix, name)
        for index, item in enumerate(value, 1):
            if item is not None:
                found = self.member.first_mismatch(item, f"{prefix}{name}.", f"{index}.member")
                if found is not None:
                    return found
        return None


class _Map(_Node):
    __slots__ = ("key", "key_bracket", "max_len", "min_len", "plain", "value", "value_bracket")

    def __init__(self, shape: dict[str, Any]) -> None:
        super().__init__()
        self.scalar = False
        self.min_len: int | None = shape.get("min")
        self.max_len: int | None = shape.get("max")
        self.key: _Node = _Node()
        self.value: _Node = _Node()
        self.key_bracket = ""
        self.value_bracket = ""
        self.plain = False
        if self.max_len is not None:
            self.constraints.append(_length_max(self.max_len))
        if self.min_len is not None:
            self.constraints.append(_length_min(self.min_len))

    def link(self, key: _Node, value: _Node) -> None:
        self.key = key
        self.value = value
        self.key_bracket = "Map keys must satisfy constraint: [" + ", ".join(key.constraints) + "]"
        self.value_bracket = (
            "Map value must satisfy constraint: [" + ", ".join(value.constraints) + "]"
        )
        # A string-to-string map with no constraint anywhere (EncryptionContext) only needs its
        # values' types checked, which is most of the maps openkms sees.
        self.plain = (
            self.min_len is None
            and self.max_len is None
            and all(isinstance(node, _String) and not node.has_checks for node in (key, value))
        )

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is not dict:
            if type(value) is list:
                raise SerializationException(_START_OF_LIST)
            raise SerializationException(_EXPECTED_MAP)
        if self.plain:
            for item in value.values():
                if type(item) is not str:
                    break
            else:
                return dict(value)
        key_node = self.key
        value_node = self.value
        out: dict[str, Any] = {}
        key_scratch: list[str] = []
        value_scratch: list[str] = []
        inner = f"{prefix}{name}."
        for key, item in value.items():
            if item is None:
                # Dropping the entry would silently change an encryption context; refuse instead.
                raise SerializationException(
                    f"Null value found in map at '{prefix + name}'; map values can not be null"
                )
            key_node.convert(key, inner, key, key_scratch)
            if value_node.scalar:
                out[key] = value_node.convert(item, inner, key, value_scratch)
            else:
                out[key] = value_node.convert(item, inner, key, errors)
        size = len(out)
        too_long = self.max_len is not None and size > self.max_len
        too_short = self.min_len is not None and size < self.min_len
        if too_long or too_short or key_scratch or value_scratch:
            path = prefix + name
            rendered = self.render(out)
            if too_long:
                errors.append(_entry(rendered, path, _length_max(self.max_len)))
            if too_short:
                errors.append(_entry(rendered, path, _length_min(self.min_len)))
            # However many entries fail, keys are reported once and values once, keys first.
            if key_scratch:
                errors.append(_entry(rendered, path, self.key_bracket))
            if value_scratch:
                errors.append(_entry(rendered, path, self.value_bracket))
        return out

    def render(self, value: Any) -> str | None:
        if not (self.key.echo and self.value.echo and self.value.scalar):
            return None
        render_value = self.value.render
        parts: list[str] = []
        for key, item in value.items():
            text = render_value(item)
            if text is None:
                return None
            parts.append(f"{key}={text}")
        return "{" + ", ".join(parts) + "}"

    def first_mismatch(self, value: object, prefix: str, name: str) -> str | None:
        if type(value) is not dict:
            return super().first_mismatch(value, prefix, name)
        for key, item in value.items():
            if item is None:
                return super().first_mismatch(value, prefix, name)
            found = self.value.first_mismatch(item, f"{prefix}{name}.", key)
            if found is not None:
                return found
        return None


class _Structure(_Node):
    __slots__ = ("by_wire_name", "members")

    def __init__(self) -> None:
        super().__init__()
        self.scalar = False
        self.echo = False
        # (wire name, path name, node, required), in the model's member order.
        self.members: tuple[tuple[str, str, _Node, bool], ...] = ()
        self.by_wire_name: dict[str, _Node] = {}

    def link(self, members: list[tuple[str, str, _Node, bool]]) -> None:
        self.members = tuple(members)
        self.by_wire_name = {wire: node for wire, _, node, _ in members}

    def convert(self, value: object, prefix: str, name: str, errors: list[str]) -> Any:
        if type(value) is not dict:
            if type(value) is list:
                raise SerializationException(_START_OF_LIST)
            raise SerializationException(_EXPECTED_STRUCTURE)
        inner = f"{prefix}{name}." if name else prefix
        get = value.get
        out: dict[str, Any] = {}
        for wire, path_name, node, required in self.members:
            item = get(wire)
            if item is None:
                if required:
                    errors.append(_null_entry(inner + path_name))
                continue
            out[wire] = node.convert(item, inner, path_name, errors)
        return out

    def first_mismatch(self, value: object, prefix: str, name: str) -> str | None:
        if type(value) is not dict:
            return super().first_mismatch(value, prefix, name)
        inner = f"{prefix}{name}." if name else prefix
        for wire, item in value.items():
            node = self.by_wire_name.get(wire)
            if node is None or item is None:
                continue
            found = node.first_mismatch(item, inner, _lower_first(wire))
            if found is not None:
                return found
        return None


# --- Compilation ---------------------------------------------------------------------------------
class _Compiler:
    def __init__(self, shapes: dict[str, Any]) -> None:
        self.shapes = shapes
        self.nodes: dict[str, _Node] = {}

    def node(self, shape_name: str) -> _Node:
        cached = self.nodes.get(shape_name)
        if cached is not None:
            return cached
        shape: dict[str, Any] = self.shapes[shape_name]
        kind = shape["type"]
        built: _Node
        if kind == "string":
            built = _String(shape, shape_name)
        elif kind in ("integer", "long"):
            built = _Integer(shape)
        elif kind == "boolean":
            built = _Boolean()
        elif kind == "timestamp":
            built = _Timestamp()
        elif kind == "blob":
            built = _Blob(shape)
        elif kind == "list":
            built = _List(shape)
            # Registered before linking, so a recursive shape finds itself.
            self.nodes[shape_name] = built
            built.link(self.node(shape["member"]["shape"]))
        elif kind == "map":
            built = _Map(shape)
            self.nodes[shape_name] = built
            built.link(self.node(shape["key"]["shape"]), self.node(shape["value"]["shape"]))
        elif kind == "structure":
            built = _Structure()
            self.nodes[shape_name] = built
            required = set(shape.get("required", ()))
            built.link(
                [
                    (wire, _lower_first(wire), self.node(member["shape"]), wire in required)
                    for wire, member in shape["members"].items()
                ]
            )
        else:
            raise ValueError(f"shape {shape_name} has a type the validator does not know: {kind}")
        self.nodes[shape_name] = built
        return built


_EMPTY_INPUT: Final = _Structure()
_roots: dict[str, _Structure] | None = None


def _compiled() -> dict[str, _Structure]:
    global _roots
    if _roots is None:
        compiler = _Compiler(model.shapes())
        roots: dict[str, _Structure] = {}
        for operation in model.operation_names():
            shape_name = model.input_shape_name(operation)
            node = _EMPTY_INPUT if shape_name is None else compiler.node(shape_name)
            if not isinstance(node, _Structure):
                raise ValueError(f"input of {operation} is not a structure")
            roots[operation] = node
        _roots = roots
    return _roots


def validate_input(operation: str, params: object) -> dict[str, Any]:
    """Check a decoded JSON request body against the operation's input shape.

    Returns a new dict in which every blob member is decoded from base64 to `bytes` and every
    timestamp member is a float of epoch seconds; everything else as given. Raises
    SerializationException for a body that is not a JSON object or a member of the wrong JSON
    type / undecodable base64 / bad timestamp, and ValidationException for constraint failures.
    """
    return _validate(_roots or _compiled(), operation, params)


class ModelValidator:
    """``validate_input`` for another JSON 1.1 service model (Secrets Manager): the same nodes,
    wording and rules, compiled from that model's shapes at first use."""

    def __init__(self, service_model: dict[str, Any]) -> None:
        self._model = service_model
        self._roots: dict[str, _Structure] | None = None

    def _compile(self) -> dict[str, _Structure]:
        compiler = _Compiler(self._model["shapes"])
        roots: dict[str, _Structure] = {}
        for operation, spec in self._model["operations"].items():
            shape = spec.get("input")
            node = _EMPTY_INPUT if shape is None else compiler.node(shape["shape"])
            if not isinstance(node, _Structure):
                raise ValueError(f"input of {operation} is not a structure")
            roots[operation] = node
        self._roots = roots
        return roots

    def validate(self, operation: str, params: object) -> dict[str, Any]:
        return _validate(self._roots or self._compile(), operation, params)


def _validate(roots: dict[str, _Structure], operation: str, params: object) -> dict[str, Any]:
    root = roots.get(operation)
    if root is None:
        raise UnknownOperationException("")
    if type(params) is not dict:
        # A JSON array gets Coral's message; null, a bare string or a number gets none.
        raise SerializationException(_START_OF_LIST if type(params) is list else "")
    errors: list[str] = []
    try:
        result: dict[str, Any] = root.convert(params, "", "", errors)
    except SerializationException as exc:
        # This pass walks the model's member order; Coral reads the document in order.
        first = root.first_mismatch(params, "", "")
        if first is None or first == exc.message:
            raise
        raise SerializationException(first) from None
    if errors:
        raise ValidationException(_summary(errors))
    return result
