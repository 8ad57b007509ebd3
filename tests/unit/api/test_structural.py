"""Structural schemas of CustomResourceDefinitions: the rules, validation, defaults, pruning."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from arktos_lite import api
from arktos_lite.api import structural
from arktos_lite.api._errors import CauseType, FieldError
from arktos_lite.api._structural import SchemaError, Structural

Obj = dict[str, Any]
ROOT = "spec.versions[0].schema.openAPIV3Schema"
SPEC = f"{ROOT}.properties[spec]"


def with_spec(spec: Obj, **root: Any) -> Obj:
    return {"type": "object", "properties": {"spec": spec}, **root}


def problems(schema: Obj) -> list[str]:
    with pytest.raises(SchemaError) as raised:
        Structural.parse(schema)
    assert str(raised.value) == "; ".join(map(str, raised.value.errors))
    return [str(e) for e in raised.value.errors]


def check(spec_schema: Obj, spec: Any) -> list[str]:
    schema = Structural.parse(with_spec(spec_schema))
    return [str(e) for e in schema.validate({"spec": spec})]


# ---------------------------------------------------------------------------------------
# Structural rules


VALID_SCHEMAS: dict[str, Obj] = {
    "plain": with_spec({"type": "object", "properties": {"replicas": {"type": "integer"}}}),
    "every keyword": with_spec(
        {
            "type": "object",
            "description": "d",
            "title": "t",
            "externalDocs": {"url": "https://example.com"},
            "example": {"a": "b"},
            "minProperties": 0,
            "maxProperties": 5,
            "required": ["a"],
            "properties": {
                "a": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^a"},
                "b": {"type": "string", "format": "date-time", "enum": ["2020-01-01T00:00:00Z"]},
                "c": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1.5,
                    "exclusiveMinimum": True,
                    "exclusiveMaximum": False,
                    "multipleOf": 0.5,
                    "nullable": True,
                },
                "d": {
                    "type": "array",
                    "minItems": 0,
                    "maxItems": 3,
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "e": {"type": "object", "x-kubernetes-map-type": "atomic"},
                "f": {"type": "boolean", "default": False},
            },
        }
    ),
    "preserve unknown without type": with_spec({"x-kubernetes-preserve-unknown-fields": True}),
    "int or string": with_spec({"x-kubernetes-int-or-string": True}),
    "int or string anyOf pattern": with_spec(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
    "int or string allOf anyOf pattern": with_spec(
        {
            "x-kubernetes-int-or-string": True,
            "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^1"}],
        }
    ),
    "map": with_spec({"type": "object", "additionalProperties": {"type": "string"}}),
    "map of anything": with_spec({"type": "object", "additionalProperties": True}),
    "properties with additionalProperties true": with_spec(
        {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True}
    ),
    "junctors with specified fields": with_spec(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "array", "items": {"type": "integer"}},
            },
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
            "anyOf": [
                {"properties": {"a": {"minLength": 2}}},
                {"properties": {"b": {"items": {"minimum": 1}}}},
            ],
            "not": {"properties": {"a": {"enum": ["x"]}}},
        }
    ),
    "metadata name restriction": {
        "type": "object",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 10},
                    "generateName": {"type": "string", "pattern": "^a"},
                },
            }
        },
    },
    "embedded resource": with_spec(
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    ),
    "list map": with_spec(
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "protocol"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "protocol": {"type": "string", "default": "TCP"},
                },
            },
        }
    ),
    "valid defaults": with_spec(
        {
            "type": "object",
            "default": {"replicas": 2},
            "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]},
                "opt": {"type": "string", "nullable": True, "default": None},
            },
        }
    ),
}


@pytest.mark.parametrize("name", sorted(VALID_SCHEMAS))
def test_structural_schemas_parse(name: str) -> None:
    schema = VALID_SCHEMAS[name]
    original = copy.deepcopy(schema)
    parsed = Structural.parse(schema)
    assert parsed.schema == original
    assert parsed.schema is not schema


INVALID_SCHEMAS: list[tuple[str, Obj, list[str]]] = [
    (
        "field without type",
        with_spec({"properties": {"a": {"type": "string"}}}),
        [f"{SPEC}.type: Required value: must not be empty for specified object fields"],
    ),
    (
        "item without type",
        with_spec({"type": "array", "items": {"minimum": 1}}),
        [f"{SPEC}.items.type: Required value: must not be empty for specified array items"],
    ),
    (
        "map value without type",
        with_spec({"type": "object", "additionalProperties": {"minLength": 1}}),
        [
            f"{SPEC}.additionalProperties.type: Required value: must not be empty for "
            "specified object fields"
        ],
    ),
    (
        "root without type",
        {"properties": {"spec": {"type": "object"}}},
        [f"{ROOT}.type: Required value: must not be empty at the root"],
    ),
    (
        "root not an object",
        {"type": "string"},
        [f'{ROOT}.type: Invalid value: "string": must be object at the root'],
    ),
    (
        "default at the root",
        {"type": "object", "default": {}},
        [f"{ROOT}.default: Forbidden: must not be set at the root"],
    ),
    (
        "unknown type",
        with_spec({"type": "map"}),
        [
            f'{SPEC}.type: Unsupported value: "map": supported values: "array", "boolean", '
            '"integer", "number", "object", "string"'
        ],
    ),
    (
        "null type",
        with_spec({"type": "null"}),
        [f"{SPEC}.type: Forbidden: type cannot be set to null, use nullable as an alternative"],
    ),
    (
        "array without items",
        with_spec({"type": "array"}),
        [f"{SPEC}.items: Required value: must be specified"],
    ),
    (
        "items as a list",
        with_spec({"type": "array", "items": [{"type": "string"}]}),
        [f"{SPEC}.items: Forbidden: items must be a schema object and not an array"],
    ),
    (
        "properties and additionalProperties",
        with_spec(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": {"type": "string"},
            }
        ),
        [
            f"{SPEC}.additionalProperties: Forbidden: additionalProperties and properties are "
            "mutual exclusive"
        ],
    ),
    (
        "properties and additionalProperties false",
        with_spec(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "additionalProperties": False,
            }
        ),
        [
            f"{SPEC}.additionalProperties: Forbidden: additionalProperties and properties are "
            "mutual exclusive"
        ],
    ),
    (
        "$ref",
        with_spec({"$ref": "#/definitions/x"}),
        [f"{SPEC}.$ref: Forbidden: $ref is not supported"],
    ),
    (
        "unsupported keywords",
        with_spec({"type": "object", "patternProperties": {}, "definitions": {}, "id": "x"}),
        [
            f"{SPEC}.patternProperties: Forbidden: patternProperties is not supported",
            f"{SPEC}.definitions: Forbidden: definitions is not supported",
            f"{SPEC}.id: Forbidden: id is not supported",
        ],
    ),
    ("unknown keyword", with_spec({"type": "object", "foo": 1}), [f"{SPEC}.foo: Unknown field"]),
    (
        "uniqueItems",
        with_spec({"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        [
            f"{SPEC}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the "
            "runtime complexity becomes quadratic"
        ],
    ),
    (
        "CEL rules",
        with_spec({"type": "object", "x-kubernetes-validations": [{"rule": "true"}]}),
        [
            f"{SPEC}.x-kubernetes-validations: Forbidden: validation rules (CEL) are not "
            "supported by this server"
        ],
    ),
    (
        "preserve unknown fields false",
        with_spec({"type": "object", "x-kubernetes-preserve-unknown-fields": False}),
        [
            f"{SPEC}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true "
            "or undefined"
        ],
    ),
    (
        "int or string with a type",
        with_spec({"type": "string", "x-kubernetes-int-or-string": True}),
        [
            f'{SPEC}.type: Invalid value: "string": must be empty if x-kubernetes-int-or-string '
            "is true"
        ],
    ),
    (
        "bad keyword values",
        with_spec(
            {
                "type": "string",
                "minLength": -1,
                "maxLength": "3",
                "nullable": "yes",
                "pattern": "(",
                "enum": "a",
                "multipleOf": 0,
            }
        ),
        [
            f"{SPEC}.minLength: Invalid value: -1: must be a non-negative integer",
            f'{SPEC}.maxLength: Invalid value: "3": must be a non-negative integer',
            f'{SPEC}.nullable: Invalid value: "yes": must be a boolean',
            f"{SPEC}.multipleOf: Invalid value: 0: must be greater than zero",
            f'{SPEC}.enum: Invalid value: "a": must be a list',
        ],
    ),
    (
        "invalid pattern",
        with_spec({"type": "string", "pattern": "("}),
        [f'{SPEC}.pattern: Invalid value: "(": must be a valid regular expression'],
    ),
    (
        "type inside a junctor",
        with_spec({"type": "object", "anyOf": [{"type": "object"}]}),
        [f"{SPEC}.anyOf[0].type: Forbidden: must be empty to be structural"],
    ),
    (
        "structural keywords inside junctors",
        with_spec(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "allOf": [
                    {
                        "description": "x",
                        "default": {},
                        "nullable": True,
                        "additionalProperties": {"type": "string"},
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                ],
                "not": {"properties": {"a": {"nullable": True}}},
            }
        ),
        [
            f"{SPEC}.allOf[0].description: Forbidden: must be empty to be structural",
            f"{SPEC}.allOf[0].default: Forbidden: must be undefined to be structural",
            f"{SPEC}.allOf[0].additionalProperties: Forbidden: must be undefined to be structural",
            f"{SPEC}.allOf[0].nullable: Forbidden: must be false to be structural",
            f"{SPEC}.allOf[0].x-kubernetes-preserve-unknown-fields: Forbidden: must be false to "
            "be structural",
            f"{SPEC}.not.properties[a].nullable: Forbidden: must be false to be structural",
        ],
    ),
    (
        "junctor field not specified outside",
        with_spec(
            {
                "type": "object",
                "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}},
                "oneOf": [{"properties": {"c": {}, "a": {"properties": {"d": {}}}}}],
                "anyOf": [{"items": {}}],
            }
        ),
        [
            f"{SPEC}.anyOf[0].items: Required value: must have a corresponding items outside of "
            "the value validation",
            f"{SPEC}.oneOf[0].properties[c]: Required value: must have a corresponding property "
            "outside of the value validation",
            f"{SPEC}.oneOf[0].properties[a].properties[d]: Required value: must have a "
            "corresponding property outside of the value validation",
        ],
    ),
    (
        "metadata beyond name",
        {
            "type": "object",
            "properties": {
                "metadata": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "integer"},
                        "labels": {"type": "object"},
                        "generateName": {"type": "string", "default": "x"},
                    },
                }
            },
        },
        [
            f"{ROOT}.properties[metadata].required: Forbidden: must not specify anything other "
            "than name and generateName, but metadata is implicitly specified",
            f'{ROOT}.properties[metadata].properties[name].type: Invalid value: "integer": must '
            "be string",
            f"{ROOT}.properties[metadata].properties[labels]: Forbidden: must not specify "
            "anything other than name and generateName, but metadata is implicitly specified",
            f"{ROOT}.properties[metadata].properties[generateName].default: Forbidden: must not "
            "be set inside metadata",
        ],
    ),
    (
        "embedded resource without properties",
        with_spec({"type": "object", "x-kubernetes-embedded-resource": True}),
        [
            f"{SPEC}.properties: Required value: must not be empty if "
            "x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
        ],
    ),
    (
        "embedded resource not an object",
        with_spec(
            {
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-int-or-string": True,
            }
        ),
        [
            f'{SPEC}.type: Invalid value: "": must be object if x-kubernetes-embedded-resource '
            "is true",
            f"{SPEC}.x-kubernetes-int-or-string: Forbidden: must be false if "
            "x-kubernetes-embedded-resource is true",
        ],
    ),
    (
        "list type errors",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "array",
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "bag",
                    },
                    "b": {"type": "string", "x-kubernetes-list-type": "set"},
                    "c": {
                        "type": "array",
                        "items": {"type": "object"},
                        "x-kubernetes-list-type": "map",
                    },
                    "d": {
                        "type": "array",
                        "items": {"type": "string"},
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-list-map-keys": ["x"],
                    },
                    "e": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "port"],
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                        },
                    },
                    "f": {
                        "type": "array",
                        "items": {"type": "object"},
                        "x-kubernetes-list-type": "set",
                    },
                    "g": {"type": "string", "x-kubernetes-map-type": "granular"},
                    "h": {"type": "object", "x-kubernetes-map-type": "deep"},
                },
            }
        ),
        [
            f'{SPEC}.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported '
            'values: "atomic", "map", "set"',
            f'{SPEC}.properties[b].x-kubernetes-list-type: Invalid value: "set": must only be '
            "used if type is array",
            f"{SPEC}.properties[c].x-kubernetes-list-map-keys: Required value: must not be empty "
            "if x-kubernetes-list-type is map",
            f"{SPEC}.properties[d].x-kubernetes-list-map-keys: Forbidden: must be empty if "
            "x-kubernetes-list-type is not map",
            f"{SPEC}.properties[e].items.properties[name]: Required value: entries for "
            "x-kubernetes-list-map-keys must be required or have a default value",
            f"{SPEC}.properties[e].items.properties[port]: Required value: entries for "
            "x-kubernetes-list-map-keys must be properties",
            f'{SPEC}.properties[f].items.x-kubernetes-map-type: Invalid value: "": must be atomic '
            "as item of a list with x-kubernetes-list-type=set",
            f'{SPEC}.properties[g].x-kubernetes-map-type: Invalid value: "granular": must only be '
            "used if type is object",
            f'{SPEC}.properties[h].x-kubernetes-map-type: Unsupported value: "deep": supported '
            'values: "atomic", "granular"',
        ],
    ),
    (
        "default of the wrong type",
        with_spec({"type": "object", "properties": {"a": {"type": "integer", "default": "x"}}}),
        [
            f'{SPEC}.properties[a].default: Invalid value: "string": {SPEC}.properties[a].default '
            'in body must be of type integer: "string"'
        ],
    ),
    (
        "default breaking value validation",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "minimum": 1, "default": 0},
                    "b": {"type": "string", "enum": ["x"], "default": "y"},
                    "c": {"type": "string", "default": None},
                },
            }
        ),
        [
            f"{SPEC}.properties[a].default: Invalid value: 0: {SPEC}.properties[a].default in "
            "body should be greater than or equal to 1",
            f'{SPEC}.properties[b].default: Unsupported value: "y": supported values: "x"',
            f'{SPEC}.properties[c].default: Invalid value: "null": {SPEC}.properties[c].default '
            'in body must be of type string: "null"',
        ],
    ),
    (
        "default with unknown fields",
        with_spec(
            {
                "type": "object",
                "default": {"a": "x", "b": 1},
                "properties": {"a": {"type": "string"}},
            }
        ),
        [f'{SPEC}.default: Invalid value: {{"a":"x"}}: must not have unknown fields'],
    ),
    (
        "nested default with a missing required field",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "t": {
                        "type": "object",
                        "default": {},
                        "required": ["x"],
                        "properties": {"x": {"type": "string"}},
                    }
                },
            }
        ),
        [f"{SPEC}.properties[t].default.x: Required value"],
    ),
]


INVALID_SCHEMAS += [
    (
        "malformed keyword values",
        with_spec(
            {
                "type": 1,
                "properties": {"a": "string"},
                "additionalProperties": "yes",
                "allOf": {"minimum": 1},
                "not": [],
                "required": [1],
            }
        ),
        [
            f"{SPEC}.type: Invalid value: 1: must be a string",
            f'{SPEC}.properties: Invalid value: {{"a":"string"}}: must be a map of schemas',
            f'{SPEC}.additionalProperties: Invalid value: "yes": must be a boolean or a schema',
            f'{SPEC}.allOf: Invalid value: {{"minimum":1}}: must be a list of schemas',
            f"{SPEC}.not: Invalid value: []: must be a schema",
            f"{SPEC}.required: Invalid value: [1]: must be a list of strings",
        ],
    ),
    (
        "metadata of another type",
        {"type": "object", "properties": {"metadata": {"type": "string"}}},
        [f'{ROOT}.properties[metadata].type: Invalid value: "string": must be object'],
    ),
    (
        "list map of scalars",
        with_spec(
            {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["a"],
                "items": {"type": "string"},
            }
        ),
        [
            f'{SPEC}.items.type: Invalid value: "string": must be object if parent array\'s '
            "x-kubernetes-list-type is map",
            f"{SPEC}.items.properties[a]: Required value: entries for x-kubernetes-list-map-keys "
            "must be properties",
        ],
    ),
    (
        "set of granular lists",
        with_spec(
            {
                "type": "array",
                "x-kubernetes-list-type": "set",
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
            }
        ),
        [
            f'{SPEC}.items.x-kubernetes-list-type: Invalid value: "set": must be atomic as item '
            "of a list with x-kubernetes-list-type=set"
        ],
    ),
    (
        "junctors over map values and nested not",
        with_spec(
            {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}},
                "anyOf": [{"properties": {"k": {"properties": {"a": {"minLength": 1}, "b": {}}}}}],
                "not": {"not": {"properties": {"z": {}}}},
            }
        ),
        [
            f"{SPEC}.anyOf[0].properties[k].properties[b]: Required value: must have a "
            "corresponding property outside of the value validation",
            f"{SPEC}.not.not.properties[z]: Required value: must have a corresponding property "
            "outside of the value validation",
        ],
    ),
]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [pytest.param(s, e, id=name) for name, s, e in INVALID_SCHEMAS],
)
def test_schemas_that_are_not_structural(schema: Obj, expected: list[str]) -> None:
    assert problems(schema) == expected


def test_schema_errors_carry_field_errors_and_a_custom_path() -> None:
    with pytest.raises(SchemaError) as raised:
        Structural.parse(with_spec({"type": "array"}), path="spec.validation.openAPIV3Schema")
    [error] = raised.value.errors
    assert error == FieldError(
        CauseType.REQUIRED,
        "spec.validation.openAPIV3Schema.properties[spec].items",
        "must be specified",
    )
    assert error.cause()["reason"] == "FieldValueRequired"
    with pytest.raises(SchemaError):
        Structural.parse([])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Validation


def body(path: str) -> str:
    return f"spec.{path} in body" if path else "spec in body"


VALIDATION: list[tuple[str, Obj, Any, list[str]]] = [
    ("integer ok", {"type": "integer"}, 3, []),
    ("integral float is an integer", {"type": "integer"}, 3.0, []),
    (
        "integer",
        {"type": "integer"},
        "3",
        [f'spec: Invalid value: "string": {body("")} must be of type integer: "string"'],
    ),
    (
        "fraction is not an integer",
        {"type": "integer"},
        1.5,
        [f'spec: Invalid value: "number": {body("")} must be of type integer: "number"'],
    ),
    (
        "boolean is not an integer",
        {"type": "integer"},
        True,
        [f'spec: Invalid value: "boolean": {body("")} must be of type integer: "boolean"'],
    ),
    ("number accepts integers", {"type": "number"}, 3, []),
    (
        "string",
        {"type": "string"},
        1,
        [f'spec: Invalid value: "integer": {body("")} must be of type string: "integer"'],
    ),
    (
        "boolean",
        {"type": "boolean"},
        "true",
        [f'spec: Invalid value: "string": {body("")} must be of type boolean: "string"'],
    ),
    (
        "object",
        {"type": "object"},
        [],
        [f'spec: Invalid value: "array": {body("")} must be of type object: "array"'],
    ),
    (
        "array",
        {"type": "array", "items": {"type": "string"}},
        {},
        [f'spec: Invalid value: "object": {body("")} must be of type array: "object"'],
    ),
    (
        "null",
        {"type": "string"},
        None,
        [f'spec: Invalid value: "null": {body("")} must be of type string: "null"'],
    ),
    ("nullable", {"type": "string", "nullable": True, "minLength": 2}, None, []),
    ("int or string: int", {"x-kubernetes-int-or-string": True}, 1, []),
    ("int or string: string", {"x-kubernetes-int-or-string": True}, "50%", []),
    (
        "int or string: bool",
        {"x-kubernetes-int-or-string": True},
        False,
        [f'spec: Invalid value: "boolean": {body("")} must be of type integer,string: "boolean"'],
    ),
    (
        "int or string: null",
        {"x-kubernetes-int-or-string": True},
        None,
        [f'spec: Invalid value: "null": {body("")} must be of type integer,string: "null"'],
    ),
    (
        "untyped accepts anything",
        {"x-kubernetes-preserve-unknown-fields": True},
        [1, {"a": None}],
        [],
    ),
    ("enum", {"type": "string", "enum": ["a", "b"]}, "a", []),
    (
        "enum miss",
        {"type": "string", "enum": ["a", "b"]},
        "c",
        ['spec: Unsupported value: "c": supported values: "a", "b"'],
    ),
    ("enum compares JSON values", {"type": "number", "enum": [1, 2.5]}, 1.0, []),
    (
        "enum tells true from 1",
        {"type": "integer", "enum": [1]},
        True,
        [f'spec: Invalid value: "boolean": {body("")} must be of type integer: "boolean"'],
    ),
    (
        "enum of objects",
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "enum": [{"a": [1]}]},
        {"a": [1]},
        [],
    ),
    ("minimum", {"type": "integer", "minimum": 1}, 1, []),
    (
        "below minimum",
        {"type": "integer", "minimum": 1},
        0,
        [f"spec: Invalid value: 0: {body('')} should be greater than or equal to 1"],
    ),
    (
        "exclusive minimum",
        {"type": "number", "minimum": 1, "exclusiveMinimum": True},
        1,
        [f"spec: Invalid value: 1: {body('')} should be greater than 1"],
    ),
    (
        "above maximum",
        {"type": "number", "maximum": 2.5},
        3,
        [f"spec: Invalid value: 3: {body('')} should be less than or equal to 2.5"],
    ),
    (
        "exclusive maximum",
        {"type": "integer", "maximum": 3, "exclusiveMaximum": True},
        3,
        [f"spec: Invalid value: 3: {body('')} should be less than 3"],
    ),
    ("multiple of", {"type": "integer", "multipleOf": 3}, 9, []),
    ("fractional multiple of", {"type": "number", "multipleOf": 0.1}, 0.3, []),
    (
        "not a multiple",
        {"type": "integer", "multipleOf": 3},
        10,
        [f"spec: Invalid value: 10: {body('')} should be a multiple of 3"],
    ),
    (
        "min length",
        {"type": "string", "minLength": 3},
        "ab",
        [f'spec: Invalid value: "ab": {body("")} should be at least 3 chars long'],
    ),
    ("max length counts characters", {"type": "string", "maxLength": 2}, "éé", []),
    (
        "max length",
        {"type": "string", "maxLength": 2},
        "abc",
        ["spec: Too long: may not be more than 2 bytes"],
    ),
    ("pattern searches", {"type": "string", "pattern": "b+"}, "abbc", []),
    (
        "pattern",
        {"type": "string", "pattern": "^[a-z]+$"},
        "A",
        [f"spec: Invalid value: \"A\": {body('')} should match '^[a-z]+$'"],
    ),
    (
        "min items",
        {"type": "array", "items": {"type": "string"}, "minItems": 2},
        ["a"],
        [f"spec: Invalid value: 1: {body('')} should have at least 2 items"],
    ),
    (
        "max items",
        {"type": "array", "items": {"type": "string"}, "maxItems": 1},
        ["a", "b"],
        ["spec: Too many: must have at most 1 items"],
    ),
    (
        "min properties",
        {"type": "object", "additionalProperties": True, "minProperties": 1},
        {},
        [f"spec: Invalid value: 0: {body('')} should have at least 1 properties"],
    ),
    (
        "max properties",
        {"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 1},
        {"a": 1, "b": 2},
        [f"spec: Invalid value: 2: {body('')} should have at most 1 properties"],
    ),
    (
        "required",
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        },
        {"b": "x"},
        ["spec.a: Required value"],
    ),
    (
        "nested paths",
        {
            "type": "object",
            "properties": {
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string", "maxLength": 3}},
                    },
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        {"ports": [{"name": "ok"}, {"name": "long"}], "labels": {"foo": 1}},
        [
            "spec.ports[1].name: Too long: may not be more than 3 bytes",
            'spec.labels[foo]: Invalid value: "integer": spec.labels[foo] in body must be of '
            'type string: "integer"',
        ],
    ),
    (
        "additionalProperties false",
        {"type": "object", "additionalProperties": False},
        {"a": 1},
        [f'spec.a: Forbidden: {body("")} has unknown field "a"'],
    ),
    (
        "list set",
        {"type": "array", "items": {"type": "integer"}, "x-kubernetes-list-type": "set"},
        [1, 2, 1.0],
        ["spec[2]: Duplicate value: 1.0"],
    ),
    (
        "list set of atomic objects",
        {
            "type": "array",
            "x-kubernetes-list-type": "set",
            "items": {
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "additionalProperties": True,
            },
        },
        [{"a": 1}, {"a": 2}, {"a": 1}],
        ['spec[2]: Duplicate value: {"a":1}'],
    ),
    (
        "list map",
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "protocol"],
            "items": {
                "type": "object",
                "required": ["name", "protocol"],
                "properties": {"name": {"type": "string"}, "protocol": {"type": "string"}},
            },
        },
        [
            {"name": "a", "protocol": "TCP"},
            {"name": "a", "protocol": "UDP"},
            {"name": "a", "protocol": "TCP"},
        ],
        ['spec[2]: Duplicate value: {"name":"a","protocol":"TCP"}'],
    ),
    ("atomic list allows duplicates", {"type": "array", "items": {"type": "integer"}}, [1, 1], []),
    (
        "allOf",
        {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
        9,
        [f"spec: Invalid value: 9: {body('')} should be less than or equal to 5"],
    ),
    ("anyOf passes", {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}, "b", []),
    (
        "anyOf",
        {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
        "c",
        [f'spec: Invalid value: "c": {body("")} must validate at least one schema (anyOf)'],
    ),
    (
        "oneOf both",
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
        {"a": "x", "b": "y"},
        [
            f'spec: Invalid value: {{"a":"x","b":"y"}}: {body("")} must validate one and only '
            "one schema (oneOf)"
        ],
    ),
    (
        "oneOf one",
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
        },
        {"b": "y"},
        [],
    ),
    (
        "not",
        {"type": "string", "not": {"enum": ["forbidden"]}},
        "forbidden",
        [f'spec: Invalid value: "forbidden": {body("")} must not validate the schema (not)'],
    ),
    (
        "nested junctor",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}},
            "anyOf": [{"properties": {"a": {"minimum": 10}}}, {"required": ["b"]}],
        },
        {"a": 1},
        [f'spec: Invalid value: {{"a":1}}: {body("")} must validate at least one schema (anyOf)'],
    ),
    (
        "int or string pattern",
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": "%$",
        },
        "x",
        [f"spec: Invalid value: \"x\": {body('')} should match '%$'"],
    ),
    (
        "embedded resource",
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        },
        {"metadata": []},
        [
            "spec.apiVersion: Required value: must not be empty",
            "spec.kind: Required value: must not be empty",
            'spec.metadata: Invalid value: "array": spec.metadata in body must be of type '
            'object: "array"',
        ],
    ),
    (
        "embedded resource ok",
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        },
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {}},
        [],
    ),
]


VALIDATION += [
    (
        "embedded resource with a non-string kind",
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        },
        {"apiVersion": "v1", "kind": 5},
        ['spec.kind: Invalid value: 5: spec.kind in body must be of type string: "integer"'],
    ),
    (
        "junctors see nulls that are allowed outside",
        {"type": "string", "nullable": True, "allOf": [{"minLength": 1}]},
        None,
        [],
    ),
    (
        "null in an enum",
        {"type": "string", "nullable": True, "enum": ["a", None]},
        None,
        [],
    ),
    (
        "fractional bounds",
        {"type": "number", "minimum": 0.5, "multipleOf": 0.25},
        0.6,
        [f"spec: Invalid value: 0.6: {body('')} should be a multiple of 0.25"],
    ),
]


@pytest.mark.parametrize(
    ("schema", "value", "expected"),
    [pytest.param(s, v, e, id=name) for name, s, v, e in VALIDATION],
)
def test_validation(schema: Obj, value: Any, expected: list[str]) -> None:
    assert check(schema, value) == expected


RATCHETING_SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "maximum": 10},
                "name": {"type": "string", "maxLength": 3},
                "labels": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": 2},
                },
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer", "maximum": 100},
                        },
                    },
                },
                "args": {"type": "array", "items": {"type": "string", "maxLength": 2}},
            },
        }
    },
}
# Invalid under the schema above everywhere; written before the schema got stricter.
RATCHETING_OLD: Obj = {
    "spec": {
        "size": 50,
        "name": "long",
        "labels": {"a": "xyz"},
        "ports": [{"name": "http", "port": 800}, {"name": "dns", "port": 5300}],
        "args": ["abc"],
    }
}


def _ratcheted(change: Callable[[Obj], None]) -> list[str]:
    new = copy.deepcopy(RATCHETING_OLD)
    change(new)
    schema = Structural.parse(RATCHETING_SCHEMA)
    return [str(e) for e in schema.validate(new, old=RATCHETING_OLD)]


def test_an_update_does_not_check_again_what_it_leaves_as_it_was() -> None:
    assert len(Structural.parse(RATCHETING_SCHEMA).validate(RATCHETING_OLD)) == 6
    assert _ratcheted(lambda new: None) == []
    assert _ratcheted(lambda new: new.setdefault("status", {})) == []
    # Moved items of a map list are the same items; a new key's item is checked.
    assert _ratcheted(lambda new: new["spec"]["ports"].reverse()) == []
    assert _ratcheted(lambda new: new["spec"]["labels"].update(b="ok")) == []


def test_an_update_checks_what_it_changes() -> None:
    def grow(new: Obj) -> None:
        new["spec"]["size"] = 60
        new["spec"]["labels"]["c"] = "long"
        new["spec"]["ports"].append({"name": "new", "port": 900})
        new["spec"]["ports"][0]["port"] = 801

    assert _ratcheted(grow) == [
        "spec.size: Invalid value: 60: spec.size in body should be less than or equal to 10",
        "spec.labels[c]: Too long: may not be more than 2 bytes",
        "spec.ports[0].port: Invalid value: 801: spec.ports[0].port in body should be less "
        "than or equal to 100",
        "spec.ports[2].port: Invalid value: 900: spec.ports[2].port in body should be less "
        "than or equal to 100",
    ]
    # Items of other lists only go unchecked with their whole list.
    assert _ratcheted(lambda new: new["spec"]["args"].append("ok")) == [
        "spec.args[0]: Too long: may not be more than 2 bytes"
    ]
    # A changed object checks its required fields; true is not 1.
    assert _ratcheted(lambda new: new["spec"].pop("size")) == ["spec.size: Required value"]
    schema = Structural.parse({"type": "object", "properties": {"on": {"type": "integer"}}})
    assert [e.field for e in schema.validate({"on": True}, old={"on": 1})] == ["on"]


FORMATS: list[tuple[str, str, bool]] = [
    ("date", "2024-02-29", True),
    ("date", "2023-02-29", False),
    ("date", "20240101", False),
    ("date-time", "2024-01-02T03:04:05Z", True),
    ("date-time", "2024-01-02T03:04:05.123+02:00", True),
    ("date-time", "2024-01-02", False),
    ("date-time", "2024-13-02T03:04:05Z", False),
    ("byte", "aGVsbG8=", True),
    ("byte", "not base64!", False),
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", True),
    ("uuid", "123e4567", False),
    ("uuid4", "9b2c1f0e-1d2a-4c3b-8a5e-6f7a8b9c0d1e", True),
    ("uuid4", "123e4567-e89b-12d3-a456-426614174000", False),
    ("ipv4", "10.0.0.1", True),
    ("ipv4", "::1", False),
    ("ipv6", "::1", True),
    ("ipv6", "10.0.0.1", False),
    ("cidr", "10.0.0.0/8", True),
    ("cidr", "10.0.0.1", False),
    ("mac", "00:1a:2b:3c:4d:5e", True),
    ("mac", "00:1a", False),
    ("hostname", "web-1.example.com", True),
    ("hostname", "-web", False),
    ("email", "a@example.com", True),
    ("email", "nobody", False),
    ("uri", "https://example.com/a", True),
    ("uri", "example", False),
    ("duration", "1h30m", True),
    ("duration", "soon", False),
    ("password", "anything", True),
    ("int32", "formats of numbers are not checked", True),
    ("no-such-format", "ignored", True),
]


@pytest.mark.parametrize(("format_", "value", "ok"), FORMATS)
def test_formats(format_: str, value: str, ok: bool) -> None:
    found = check({"type": "string", "format": format_}, value)
    expected = (
        []
        if ok
        else [f'spec: Invalid value: "{value}": {body("")} must be of type {format_}: "{value}"']
    )
    assert found == expected


def test_formats_apply_to_strings_only() -> None:
    assert check({"type": "integer", "format": "int32"}, 2**40) == []
    assert check({"type": "number", "format": "double"}, 1.5) == []


def test_validation_at_the_root() -> None:
    schema = Structural.parse(
        {
            "type": "object",
            "required": ["spec"],
            "properties": {
                "metadata": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 3}},
                },
                "spec": {"type": "object"},
            },
        }
    )
    obj = {"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "long", "labels": {"a": "b"}}}
    assert [str(e) for e in schema.validate(obj)] == [
        "spec: Required value",
        "metadata.name: Too long: may not be more than 3 bytes",
    ]
    found = schema.validate({"spec": []}, path="body")
    assert [e.field for e in found] == ["body.spec"]
    assert all(isinstance(e, FieldError) for e in found)


# ---------------------------------------------------------------------------------------
# Defaulting


DEFAULTING: list[tuple[str, Obj, Any, Any]] = [
    (
        "absent field",
        {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}},
        {},
        {"replicas": 1},
    ),
    (
        "present field stays",
        {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}},
        {"replicas": 3},
        {"replicas": 3},
    ),
    (
        "null that is not nullable gets the default",
        {"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}},
        {"replicas": None},
        {"replicas": 1},
    ),
    (
        "null that is not nullable and has no default is dropped",
        {"type": "object", "properties": {"name": {"type": "string"}}},
        {"name": None},
        {},
    ),
    (
        "nullable null stays",
        {
            "type": "object",
            "properties": {"name": {"type": "string", "nullable": True, "default": "x"}},
        },
        {"name": None},
        {"name": None},
    ),
    (
        "defaults inside a default",
        {
            "type": "object",
            "properties": {
                "strategy": {
                    "type": "object",
                    "default": {"type": "Rolling"},
                    "properties": {
                        "type": {"type": "string"},
                        "maxSurge": {"x-kubernetes-int-or-string": True, "default": "25%"},
                    },
                }
            },
        },
        {},
        {"strategy": {"type": "Rolling", "maxSurge": "25%"}},
    ),
    (
        "array items",
        {
            "type": "object",
            "properties": {
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"protocol": {"type": "string", "default": "TCP"}},
                    },
                }
            },
        },
        {"ports": [{}, {"protocol": "UDP"}]},
        {"ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]},
    ),
    (
        "null array items get the items' default",
        {
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "integer", "default": 0}}},
        },
        {"a": [None, 1]},
        {"a": [0, 1]},
    ),
    (
        "nested arrays",
        {
            "type": "object",
            "properties": {
                "grid": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"v": {"type": "integer", "default": 7}},
                        },
                    },
                }
            },
        },
        {"grid": [[{}, {"v": 1}], []]},
        {"grid": [[{"v": 7}, {"v": 1}], []]},
    ),
    (
        "map values",
        {
            "type": "object",
            "properties": {
                "volumes": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"size": {"type": "string", "default": "1Gi"}},
                    },
                }
            },
        },
        {"volumes": {"a": {}, "b": {"size": "2Gi"}}},
        {"volumes": {"a": {"size": "1Gi"}, "b": {"size": "2Gi"}}},
    ),
    (
        "null map values",
        {
            "type": "object",
            "properties": {
                "m": {"type": "object", "additionalProperties": {"type": "string", "default": "d"}}
            },
        },
        {"m": {"a": None, "b": "x"}},
        {"m": {"a": "d", "b": "x"}},
    ),
    (
        "unknown fields are left alone",
        {"type": "object", "properties": {"a": {"type": "integer", "default": 1}}},
        {"zz": None},
        {"zz": None, "a": 1},
    ),
    (
        "a value of the wrong shape is left alone",
        {
            "type": "object",
            "properties": {
                "a": {"type": "object", "properties": {"b": {"type": "integer", "default": 1}}}
            },
        },
        {"a": "text"},
        {"a": "text"},
    ),
]


@pytest.mark.parametrize(
    ("schema", "spec", "expected"),
    [pytest.param(s, v, e, id=name) for name, s, v, e in DEFAULTING],
)
def test_defaulting(schema: Obj, spec: Any, expected: Any) -> None:
    parsed = Structural.parse(with_spec(schema))
    obj = {"spec": spec}
    parsed.default(obj)
    assert obj == {"spec": expected}


def test_defaulting_fills_the_root_and_copies_defaults() -> None:
    parsed = Structural.parse(
        with_spec(
            {
                "type": "object",
                "default": {},
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}, "default": ["a"]}
                },
            }
        )
    )
    first: Obj = {}
    second: Obj = {}
    parsed.default(first)
    parsed.default(second)
    assert first == second == {"spec": {"tags": ["a"]}}
    first["spec"]["tags"].append("b")
    assert second["spec"]["tags"] == ["a"]
    assert parsed.schema["properties"]["spec"]["properties"]["tags"]["default"] == ["a"]


# ---------------------------------------------------------------------------------------
# Pruning


PRUNING: list[tuple[str, Obj, Obj, Obj, list[str]]] = [
    (
        "unknown fields",
        with_spec({"type": "object", "properties": {"a": {"type": "string"}}}),
        {
            "apiVersion": "g/v1",
            "kind": "K",
            "metadata": {"name": "x", "odd": 1},
            "spec": {"a": "x", "b": 1},
            "status": {},
        },
        {
            "apiVersion": "g/v1",
            "kind": "K",
            "metadata": {"name": "x", "odd": 1},
            "spec": {"a": "x"},
        },
        ["spec.b", "status"],
    ),
    (
        "object without properties keeps nothing",
        with_spec({"type": "object"}),
        {"spec": {"a": 1}},
        {"spec": {}},
        ["spec.a"],
    ),
    (
        "metadata restricted at the root is not pruned",
        {
            "type": "object",
            "properties": {
                "metadata": {"type": "object", "properties": {"name": {"type": "string"}}}
            },
        },
        {"metadata": {"name": "x", "labels": {"a": "b"}}},
        {"metadata": {"name": "x", "labels": {"a": "b"}}},
        [],
    ),
    (
        "array items and nested arrays",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "rows": {
                        "type": "array",
                        "items": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"v": {"type": "integer"}}},
                        },
                    }
                },
            }
        ),
        {"spec": {"rows": [[{"v": 1, "w": 2}], [{"x": 3}]]}},
        {"spec": {"rows": [[{"v": 1}], [{}]]}},
        ["spec.rows[0][0].w", "spec.rows[1][0].x"],
    ),
    (
        "map values",
        with_spec(
            {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"size": {"type": "string"}},
                },
            }
        ),
        {"spec": {"a": {"size": "1", "junk": True}, "b": {}}},
        {"spec": {"a": {"size": "1"}, "b": {}}},
        ["spec[a].junk"],
    ),
    (
        "maps of anything",
        with_spec(
            {
                "type": "object",
                "properties": {"m": {"type": "object", "additionalProperties": True}},
            }
        ),
        {"spec": {"m": {"a": {"deep": [1]}}}},
        {"spec": {"m": {"a": {"deep": [1]}}}},
        [],
    ),
    (
        "preserve unknown fields keeps unknown fields but prunes specified ones",
        with_spec(
            {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {
                    "known": {"type": "object", "properties": {"a": {"type": "string"}}}
                },
            }
        ),
        {"spec": {"other": {"x": 1}, "known": {"a": "x", "b": "y"}}},
        {"spec": {"other": {"x": 1}, "known": {"a": "x"}}},
        ["spec.known.b"],
    ),
    (
        "preserve unknown fields at the root",
        {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        {"spec": {"a": 1}, "status": 2},
        {"spec": {"a": 1}, "status": 2},
        [],
    ),
    (
        "embedded resource keeps apiVersion, kind and ObjectMeta",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "properties": {
                            "spec": {"type": "object", "properties": {"image": {"type": "string"}}}
                        },
                    }
                },
            }
        ),
        {
            "spec": {
                "template": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1},
                    "spec": {"image": "x", "junk": 1},
                    "status": {},
                }
            }
        },
        {
            "spec": {
                "template": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "p", "labels": {"a": "b"}},
                    "spec": {"image": "x"},
                }
            }
        },
        ["spec.template.metadata.bogus", "spec.template.spec.junk", "spec.template.status"],
    ),
    (
        "embedded resource preserving unknown fields",
        with_spec(
            {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        ),
        {
            "spec": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "x": 1},
                "data": {"a": 1},
            }
        },
        {"spec": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "data": {"a": 1}}},
        ["spec.metadata.x"],
    ),
    (
        "apiVersion and kind are unknown below the root",
        with_spec({"type": "object", "properties": {"a": {"type": "string"}}}),
        {"spec": {"apiVersion": "v1", "kind": "K", "metadata": {}}},
        {"spec": {}},
        ["spec.apiVersion", "spec.kind", "spec.metadata"],
    ),
    (
        "int or string and untyped values are kept",
        with_spec(
            {
                "type": "object",
                "properties": {
                    "port": {"x-kubernetes-int-or-string": True},
                    "raw": {"x-kubernetes-preserve-unknown-fields": True},
                },
            }
        ),
        {"spec": {"port": "http", "raw": {"anything": [{"goes": True}]}}},
        {"spec": {"port": "http", "raw": {"anything": [{"goes": True}]}}},
        [],
    ),
]


@pytest.mark.parametrize(
    ("schema", "obj", "expected", "removed"),
    [pytest.param(s, o, e, r, id=name) for name, s, o, e, r in PRUNING],
)
def test_pruning(schema: Obj, obj: Obj, expected: Obj, removed: list[str]) -> None:
    parsed = Structural.parse(schema)
    assert parsed.prune(obj) == removed
    assert obj == expected
    assert parsed.prune(obj) == []


def test_default_prune_validate_pipeline() -> None:
    parsed = Structural.parse(
        with_spec(
            {
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 1, "default": 1},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "port": {"type": "integer", "default": 80},
                            },
                        },
                    },
                },
            }
        )
    )
    obj: Obj = {"spec": {"ports": [{"name": "a", "x": 1}, {"name": "a"}], "zz": 1}}
    parsed.default(obj)
    assert parsed.prune(obj) == ["spec.ports[0].x", "spec.zz"]
    assert obj == {
        "spec": {"replicas": 1, "ports": [{"name": "a", "port": 80}, {"name": "a", "port": 80}]}
    }
    assert [str(e) for e in parsed.validate(obj)] == [
        'spec.ports[1]: Duplicate value: {"name":"a"}'
    ]


# ---------------------------------------------------------------------------------------
# Properties: schemas generated at random, and objects generated from them


NAMES = st.sampled_from(["a", "b", "c", "name", "port"])
SCALAR_SCHEMAS = st.one_of(
    st.builds(lambda lo: {"type": "integer", "minimum": lo}, st.integers(-5, 5)),
    st.just({"type": "number"}),
    st.just({"type": "boolean"}),
    st.builds(lambda n: {"type": "string", "maxLength": n}, st.integers(0, 4)),
    st.just({"type": "string", "enum": ["x", "y"]}),
    st.just({"x-kubernetes-int-or-string": True}),
    st.just({"type": "string", "nullable": True}),
)


def _composite(children: st.SearchStrategy[Obj]) -> st.SearchStrategy[Obj]:
    return st.one_of(
        st.builds(
            lambda props, preserve: {
                "type": "object",
                "properties": props,
                **({"x-kubernetes-preserve-unknown-fields": True} if preserve else {}),
            },
            st.dictionaries(NAMES, children, max_size=3),
            st.booleans(),
        ),
        st.builds(lambda item: {"type": "array", "items": item}, children),
        st.builds(lambda value: {"type": "object", "additionalProperties": value}, children),
    )


SCHEMAS = st.recursive(SCALAR_SCHEMAS, _composite, max_leaves=6)


def values_for(schema: Obj) -> st.SearchStrategy[Any]:
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(-3, 3), st.text(max_size=3))
    type_ = schema["type"]
    if type_ == "integer":
        return st.integers(schema["minimum"], schema["minimum"] + 10)
    if type_ == "number":
        return st.floats(-1e6, 1e6, allow_nan=False)
    if type_ == "boolean":
        return st.booleans()
    if type_ == "string":
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        strings = st.text(max_size=schema.get("maxLength", 4))
        return st.one_of(st.none(), strings) if schema.get("nullable") else strings
    if type_ == "array":
        return st.lists(values_for(schema["items"]), max_size=3)
    if "additionalProperties" in schema:
        return st.dictionaries(NAMES, values_for(schema["additionalProperties"]), max_size=3)
    return st.fixed_dictionaries(
        {}, optional={k: values_for(v) for k, v in schema["properties"].items()}
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(st.data(), SCHEMAS)
def test_generated_schemas_accept_objects_generated_from_them(
    data: st.DataObject, spec: Obj
) -> None:
    parsed = Structural.parse(with_spec(spec))
    obj = {"spec": data.draw(values_for(spec))}
    before = copy.deepcopy(obj)
    assert parsed.validate(obj) == []
    assert parsed.prune(obj) == []
    assert obj == before


@settings(max_examples=80, deadline=None)
@given(SCHEMAS, JSON)
def test_default_then_prune_is_stable_on_any_json(spec: Obj, junk: Any) -> None:
    parsed = Structural.parse(with_spec(spec))
    obj: Obj = {"spec": junk, "extra": junk}
    parsed.default(obj)
    parsed.prune(obj)
    once = copy.deepcopy(obj)
    found = parsed.validate(obj)
    assert all(isinstance(e, FieldError) for e in found)
    parsed.default(obj)
    assert parsed.prune(obj) == []
    assert obj == once
    assert parsed.validate(obj) == found
    assert "extra" not in obj


def test_public_api() -> None:
    assert sorted(api.__all__) == [
        "MAX_HASH_KEY",
        "customresources",
        "errors",
        "hash_key",
        "managed",
        "objects",
        "partitions",
        "patch",
        "resources",
        "selectors",
        "structural",
        "timestamps",
    ]
    assert structural.Structural is Structural
    assert structural.SchemaError is SchemaError
    assert issubclass(SchemaError, ValueError)
