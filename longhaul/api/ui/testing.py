"""The dashboard's test page per event (Trigger.dev's "test" page): a form built from the event's JSON
schema, one input per payload field, prefilled with the tenant's last payload of that event or, for an
event never sent, the schema's examples and defaults; sent as the API would send it, it opens the run.

A field's input follows its schema: text (a select for an enum), a number, a checkbox, or JSON for an
object, a list or anything else. What the form cannot say (a number that is not one, JSON that does not
parse) and what the schema refuses come back as the API's 422, naming the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from longhaul.server.envelopes import InvalidInputError

InputKind = Literal["text", "choice", "integer", "number", "boolean", "json"]


@dataclass(frozen=True)
class FormField:
    name: str
    kind: InputKind
    required: bool
    description: str | None
    value: str  # what the input shows (JSON for a json field)
    choices: tuple[str, ...] = ()


def _kind(prop: dict[str, Any]) -> tuple[InputKind, tuple[str, ...]]:
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    if len(options) == 1:  # Optional[X]: X
        prop = {**prop, **options[0]}
    if "enum" in prop and all(isinstance(v, str) for v in prop["enum"]):
        return "choice", tuple(prop["enum"])
    kind = prop.get("type")
    if kind == "string":
        return "text", ()
    if kind in ("integer", "number", "boolean"):
        return kind, ()
    return "json", ()


def _shown(kind: InputKind, value: Any) -> str:
    if value is None:
        return "" if kind != "json" else "null"
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "boolean":
        return "on" if value else ""
    return str(value)


def form_fields(schema: dict[str, Any], example: dict[str, Any] | None) -> list[FormField]:
    """The inputs of an event's payload schema, showing ``example`` (a payload sent before), else each
    field's examples or default."""
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        kind, choices = _kind(prop)
        if example is not None and name in example:
            value = example[name]
        elif prop.get("examples"):
            value = prop["examples"][0]
        else:
            value = prop.get("default", choices[0] if choices else None)
        fields.append(
            FormField(name, kind, name in required, prop.get("description"), _shown(kind, value), choices)
        )
    return fields


_READERS: dict[InputKind, Any] = {"integer": int, "number": float, "json": json.loads}


def payload_of(fields: list[FormField], form: dict[str, str]) -> dict[str, Any]:
    """The payload a test form sent: blank optional fields left out (their defaults apply), numbers and
    JSON read; InvalidInputError naming each field it cannot read."""
    payload: dict[str, Any] = {}
    errors = []
    for field in fields:
        raw = form.get(field.name, "").strip()
        if field.kind == "boolean":
            payload[field.name] = raw == "on"
        elif raw or (field.required and field.kind in ("text", "choice")):
            try:
                payload[field.name] = _READERS.get(field.kind, str)(raw)
            except ValueError as error:
                errors.append(
                    {"type": "value_error", "loc": ["payload", field.name], "msg": f"not read: {error}"}
                )
        elif field.required:
            errors.append({"type": "missing", "loc": ["payload", field.name], "msg": "Field required"})
    if errors:
        raise InvalidInputError(errors)
    return payload
