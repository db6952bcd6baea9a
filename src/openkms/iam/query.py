"""The AWS Query protocol as IAM and STS speak it, driven by the vendored botocore models.

In: ``Action=CreateUser&Version=2010-05-08&UserName=bob&Tags.member.1.Key=team&...`` (form body
and/or query string) becomes typed parameters: lists are ``Name.member.N``, maps
``Name.entry.N.key``/``.value``, nested structures ``Name.Member``, booleans ``true``/``false``.
Then the parameters are checked against the model's constraints with AWS's wording
(``1 validation error detected: Value null at 'userName' failed to satisfy constraint: ...``).

Out: ``<CreateUserResponse xmlns="..."><CreateUserResult>...</CreateUserResult>
<ResponseMetadata><RequestId>...</RequestId></ResponseMetadata></CreateUserResponse>``, lists as
``<member>``, maps as ``<entry><key/><value/></entry>``, timestamps ISO 8601 in UTC; errors as
``<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from openkms.iam import ValidationError

MODEL_FILES = {"iam": "iam-2010-05-08.json", "sts": "sts-2011-06-15.json"}


@dataclass(frozen=True, slots=True)
class QueryModel:
    service: str
    api_version: str
    namespace: str
    operations: Mapping[str, Any]
    shapes: Mapping[str, Any]

    def input_shape(self, operation: str) -> str | None:
        inp = self.operations[operation].get("input")
        return None if inp is None else str(inp["shape"])

    def output(self, operation: str) -> tuple[str | None, str | None]:
        """(output shape, result wrapper element)."""
        out = self.operations[operation].get("output")
        if out is None:
            return None, None
        return str(out["shape"]), out.get("resultWrapper")

    def error_codes(self, operation: str) -> list[str]:
        return [
            str(self.shapes[e["shape"]].get("error", {}).get("code", e["shape"]))
            for e in self.operations[operation].get("errors", [])
        ]


@lru_cache(maxsize=4)
def load_model(service: str) -> QueryModel:
    name = MODEL_FILES[service]
    text = resources.files("openkms.iam").joinpath("data", name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    meta = data["metadata"]
    return QueryModel(
        service=service,
        api_version=str(meta["apiVersion"]),
        namespace=str(meta["xmlNamespace"]),
        operations=data["operations"],
        shapes=data["shapes"],
    )


# --- in: form parameters -> typed values ---------------------------------------------------
def parse_form(body: bytes, query: str) -> dict[str, str]:
    """The request's parameters: the query string first, then the form body (which wins)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("The request body is not valid UTF-8.") from exc
    params: dict[str, str] = {}
    for source in (query, text):
        if source:
            for key, value in parse_qsl(source, keep_blank_values=True):
                params[key] = value
    return params


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


class _Parser:
    def __init__(self, shapes: Mapping[str, Any], form: Mapping[str, str]) -> None:
        self.shapes = shapes
        self.form = form
        self.errors: list[str] = []
        # Every dotted prefix of every key, to tell quickly whether anything lives under one.
        self.prefixes: set[str] = set()
        for key in form:
            parts = key.split(".")
            for i in range(1, len(parts) + 1):
                self.prefixes.add(".".join(parts[:i]))

    def present(self, prefix: str) -> bool:
        return prefix in self.prefixes

    def parse(self, shape_name: str, prefix: str, path: str) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            return self._structure(shape, prefix, path)
        if kind == "list":
            return self._list(shape, prefix, path)
        if kind == "map":
            return self._map(shape, prefix, path)
        raw = self.form.get(prefix)
        if raw is None:
            return None
        return self._scalar(kind, raw, path)

    def _structure(self, shape: Mapping[str, Any], prefix: str, path: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, member in shape.get("members", {}).items():
            wire = member.get("locationName", name)
            key = f"{prefix}.{wire}" if prefix else wire
            if not self.present(key):
                continue
            sub_path = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
            value = self.parse(member["shape"], key, sub_path)
            if value is not None:
                result[name] = value
        return result

    def _list(self, shape: Mapping[str, Any], prefix: str, path: str) -> list[Any]:
        member = shape["member"]
        if shape.get("flattened"):
            base = prefix
        else:
            base = f"{prefix}.{member.get('locationName', 'member')}"
        items: list[Any] = []
        index = 1
        while self.present(f"{base}.{index}"):
            value = self.parse(member["shape"], f"{base}.{index}", f"{path}.{index}.member")
            items.append(value)
            index += 1
        return items

    def _map(self, shape: Mapping[str, Any], prefix: str, path: str) -> dict[str, Any]:
        base = prefix if shape.get("flattened") else f"{prefix}.entry"
        key_name = shape["key"].get("locationName", "key")
        value_name = shape["value"].get("locationName", "value")
        result: dict[str, Any] = {}
        index = 1
        while self.present(f"{base}.{index}"):
            entry = f"{base}.{index}"
            key = self.parse(shape["key"]["shape"], f"{entry}.{key_name}", f"{path}.{index}.key")
            value = self.parse(
                shape["value"]["shape"], f"{entry}.{value_name}", f"{path}.{index}.value"
            )
            if key is not None:
                result[str(key)] = value
            index += 1
        return result

    def _scalar(self, kind: str, raw: str, path: str) -> Any:
        if kind in ("integer", "long"):
            try:
                return int(raw)
            except ValueError:
                self.errors.append(
                    f"Value '{raw}' at '{path}' failed to satisfy constraint: "
                    "Member must be a number"
                )
                return None
        if kind in ("float", "double"):
            try:
                return float(raw)
            except ValueError:
                self.errors.append(
                    f"Value '{raw}' at '{path}' failed to satisfy constraint: "
                    "Member must be a number"
                )
                return None
        if kind == "boolean":
            lowered = raw.lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            self.errors.append(
                f"Value '{raw}' at '{path}' failed to satisfy constraint: Member must be a boolean"
            )
            return None
        if kind == "timestamp":
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                try:
                    return float(raw)
                except ValueError:
                    self.errors.append(
                        f"Value '{raw}' at '{path}' failed to satisfy constraint: "
                        "Member must be a timestamp"
                    )
                    return None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        if kind == "blob":
            try:
                return base64.b64decode(raw, validate=True)
            except ValueError:
                self.errors.append(
                    f"Value at '{path}' failed to satisfy constraint: Member must be base64"
                )
                return None
        return raw


@lru_cache(maxsize=512)
def _pattern(text: str) -> re.Pattern[str] | None:
    """Java regular expressions as Python's ``re`` reads them; ``None`` when it cannot
    (Unicode property classes such as ``\\p{L}``), in which case the pattern is not checked."""
    if "\\p{" in text or "\\P{" in text:
        return None
    try:
        return re.compile(text, re.ASCII | re.DOTALL)
    except re.error:
        return None


class _Validator:
    def __init__(self, shapes: Mapping[str, Any]) -> None:
        self.shapes = shapes
        self.errors: list[str] = []

    def fail(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_show(value)}'"
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape_name: str, value: Any, path: str) -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            required = shape.get("required", [])
            for name, member in shape.get("members", {}).items():
                sub = f"{path}.{_lower_first(name)}" if path else _lower_first(name)
                child = value.get(name) if isinstance(value, dict) else None
                if child is None:
                    if name in required:
                        self.fail(None, sub, "Member must not be null")
                    continue
                self.check(member["shape"], child, sub)
            return
        if kind == "list":
            self._length(shape, value, path, len(value))
            for i, item in enumerate(value, 1):
                if item is None:
                    self.fail(None, f"{path}.{i}.member", "Member must not be null")
                else:
                    self.check(shape["member"]["shape"], item, f"{path}.{i}.member")
            return
        if kind == "map":
            self._length(shape, value, path, len(value))
            for key, item in value.items():
                self.check(shape["key"]["shape"], key, f"{path}.{key}.key")
                if item is not None:
                    self.check(shape["value"]["shape"], item, f"{path}.{key}.value")
            return
        if kind == "string":
            self._length(shape, value, path, len(value))
            if "enum" in shape and value not in shape["enum"]:
                self.fail(
                    value,
                    path,
                    f"Member must satisfy enum value set: [{', '.join(shape['enum'])}]",
                )
                return
            pattern = shape.get("pattern")
            if pattern is not None:
                compiled = _pattern(pattern)
                if compiled is not None and compiled.fullmatch(value) is None:
                    self.fail(
                        value, path, f"Member must satisfy regular expression pattern: {pattern}"
                    )
            return
        if kind in ("integer", "long", "float", "double"):
            if "min" in shape and value < shape["min"]:
                self.fail(
                    value, path, f"Member must have value greater than or equal to {shape['min']}"
                )
            elif "max" in shape and value > shape["max"]:
                self.fail(
                    value, path, f"Member must have value less than or equal to {shape['max']}"
                )

    def _length(self, shape: Mapping[str, Any], value: Any, path: str, length: int) -> None:
        if "min" in shape and length < shape["min"]:
            self.fail(
                value, path, f"Member must have length greater than or equal to {shape['min']}"
            )
        elif "max" in shape and length > shape["max"]:
            self.fail(value, path, f"Member must have length less than or equal to {shape['max']}")


def _show(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def validation_message(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors)


def parse_input(model: QueryModel, operation: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The operation's typed parameters; ``ValidationError`` if they break the model."""
    shape_name = model.input_shape(operation)
    if shape_name is None:
        return {}
    parser = _Parser(model.shapes, form)
    params: dict[str, Any] = parser.parse(shape_name, "", "")
    if parser.errors:
        raise ValidationError(validation_message(parser.errors))
    validator = _Validator(model.shapes)
    validator.check(shape_name, params, "")
    if validator.errors:
        raise ValidationError(validation_message(validator.errors))
    return params


# --- out: typed values -> XML --------------------------------------------------------------
def iso8601(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    return escape(str(value), {'"': "&quot;", "\r": "&#xD;"})


class _Writer:
    def __init__(self, shapes: Mapping[str, Any]) -> None:
        self.shapes = shapes
        self.out: list[str] = []

    def element(self, tag: str, shape_name: str, value: Any) -> None:
        self.out.append(f"<{tag}>")
        self.value(shape_name, value)
        self.out.append(f"</{tag}>")

    def value(self, shape_name: str, value: Any) -> None:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            self.members(shape_name, value)
        elif kind == "list":
            member = shape["member"]
            tag = member.get("locationName", "member")
            for item in value:
                self.element(tag, member["shape"], item)
        elif kind == "map":
            key_tag = shape["key"].get("locationName", "key")
            value_tag = shape["value"].get("locationName", "value")
            for key, item in value.items():
                self.out.append("<entry>")
                self.element(key_tag, shape["key"]["shape"], key)
                self.element(value_tag, shape["value"]["shape"], item)
                self.out.append("</entry>")
        elif kind == "boolean":
            self.out.append("true" if value else "false")
        elif kind == "timestamp":
            self.out.append(iso8601(float(value)))
        elif kind in ("integer", "long"):
            self.out.append(str(int(value)))
        elif kind == "blob":
            self.out.append(base64.b64encode(value).decode("ascii"))
        else:
            self.out.append(_text(value))

    def members(self, shape_name: str, value: Mapping[str, Any]) -> None:
        shape = self.shapes[shape_name]
        for name, member in shape.get("members", {}).items():
            item = value.get(name)
            if item is None:
                continue
            self.element(member.get("locationName", name), member["shape"], item)


def result_xml(
    model: QueryModel, operation: str, result: Mapping[str, Any] | None, request_id: str
) -> bytes:
    shape_name, wrapper = model.output(operation)
    writer = _Writer(model.shapes)
    writer.out.append(f'<{operation}Response xmlns="{model.namespace}">')
    if shape_name is not None:
        writer.out.append(f"<{wrapper}>" if wrapper else "")
        writer.members(shape_name, result or {})
        writer.out.append(f"</{wrapper}>" if wrapper else "")
    writer.out.append(
        f"<ResponseMetadata><RequestId>{_text(request_id)}</RequestId></ResponseMetadata>"
    )
    writer.out.append(f"</{operation}Response>")
    return "".join(writer.out).encode("utf-8")


def error_xml(
    model: QueryModel, code: str, message: str, request_id: str, *, sender_fault: bool = True
) -> bytes:
    kind = "Sender" if sender_fault else "Receiver"
    return (
        f'<ErrorResponse xmlns="{model.namespace}">'
        f"<Error><Type>{kind}</Type><Code>{_text(code)}</Code>"
        f"<Message>{_text(message)}</Message></Error>"
        f"<RequestId>{_text(request_id)}</RequestId></ErrorResponse>"
    ).encode()
