"""openkms.types has one Enum for every enum of the vendored AWS KMS model, with the model's
values in the model's order (validation messages list them in that order)."""

from __future__ import annotations

import inspect
from enum import StrEnum

import pytest

from openkms import types
from openkms.protocol import model


def model_enums() -> dict[str, list[str]]:
    return {name: list(shape["enum"]) for name, shape in model.shapes().items() if "enum" in shape}


def enum_classes() -> dict[str, type[StrEnum]]:
    return {
        name: cls
        for name, cls in inspect.getmembers(types, inspect.isclass)
        if issubclass(cls, StrEnum) and cls is not StrEnum and cls.__module__ == types.__name__
    }


def test_every_model_enum_has_a_class_and_no_class_is_extra() -> None:
    assert set(enum_classes()) == set(model_enums())


@pytest.mark.parametrize("name", sorted(model_enums()))
def test_enum_values_are_the_models_in_its_order(name: str) -> None:
    assert [member.value for member in enum_classes()[name]] == model_enums()[name]
