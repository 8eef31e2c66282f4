"""Run metadata for workflow authors: what a run reports about itself as it goes, on its run record.

``metadata.set("payment", {"status": "charged"})``, ``metadata.increment("retries")``,
``metadata.append("events", "shipped")``: a JSON object per run, shown in the API, SSE, the CLI and the
client (``RunRecord.metadata``). The workflow holds the object; each change sends the whole of it with
the run's next update (carried like progress: no extra server round trip, see
:mod:`longhaul.workflows.tracking`), so a retried or replayed delivery writes the same value, and updates are
applied in workflow order.

The object is capped at :data:`MAX_METADATA_BYTES` of JSON: a change past it fails with a clear,
non-retryable error naming the key, and leaves the metadata as it was. Values are JSON (pydantic models
are stored as their JSON form). A workflow may declare the object's shape, a pydantic model
(``metadata.declare(OrderMetadata)``, first thing in its run): every change must then leave an object
the model accepts, or it fails the run the same way (``MetadataInvalid``), naming the key and the field.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from longhaul.workflows.tracking import instance_state, queue_update

MAX_METADATA_BYTES = 64 * 1024

# One object per workflow execution (a replay makes a new instance and rebuilds it from the same code).
_STATE = "_longhaul_metadata"
_SHAPE = "_longhaul_metadata_shape"  # the model declared for it, in a one-item list (empty: none)


class MetadataTooLargeError(ApplicationError):
    """A change would make the run's metadata larger than :data:`MAX_METADATA_BYTES`."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__(
            f"run metadata would be {size:,} bytes after changing '{key}', over the "
            f"{MAX_METADATA_BYTES:,}-byte limit",
            type="MetadataTooLarge",
            non_retryable=True,
        )


class MetadataInvalidError(ApplicationError):
    """A change would leave metadata that the model the workflow declared does not accept."""

    def __init__(self, key: str, model: type[BaseModel], error: ValidationError) -> None:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or key}: {e['msg']}" for e in error.errors())
        super().__init__(
            f"run metadata after changing '{key}' does not fit {model.__name__}: {problems}",
            type="MetadataInvalid",
            non_retryable=True,
        )


class RunMetadata:
    """The running workflow's metadata (use the module's :data:`metadata`)."""

    def declare(self, model: type[BaseModel]) -> None:
        """Declare the metadata's shape: from now on each change must leave an object ``model`` accepts
        (give its fields defaults: the object fills in as the run goes)."""
        shape: list[type[BaseModel]] = instance_state(_SHAPE, list)
        shape[:] = [model]

    def update(self, values: BaseModel) -> None:
        """Set each field of ``values`` as a key, in one change."""
        fields = values.model_dump(mode="json")
        self._apply(fields, ", ".join(fields))

    def current(self) -> dict[str, Any]:
        """A copy of the metadata as it is now."""
        return copy.deepcopy(self._state())

    def get(self, key: str, default: Any = None) -> Any:
        return copy.deepcopy(self._state().get(key, default))

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value`` (JSON, or a pydantic model)."""
        self._change(key, _json(key, value))

    def increment(self, key: str, by: float = 1) -> None:
        """Add ``by`` to the number at ``key`` (0 if unset)."""
        now = self._state().get(key, 0)
        if not isinstance(now, int | float) or isinstance(now, bool):
            raise TypeError(f"metadata '{key}' is {type(now).__name__}, not a number: cannot increment it")
        self._change(key, now + by)

    def append(self, key: str, value: Any) -> None:
        """Append ``value`` to the list at ``key`` (a new list if unset)."""
        now = self._state().get(key, [])
        if not isinstance(now, list):
            raise TypeError(f"metadata '{key}' is {type(now).__name__}, not a list: cannot append to it")
        self._change(key, [*now, _json(key, value)])

    def _state(self) -> dict[str, Any]:
        return instance_state(_STATE, dict)

    def _change(self, key: str, value: Any) -> None:
        self._apply({key: value}, key)

    def _apply(self, changes: dict[str, Any], named: str) -> None:
        """Make ``changes`` (keys named ``named`` in errors) if the result fits the cap and the shape."""
        changed = {**self._state(), **changes}
        size = len(json.dumps(changed, separators=(",", ":")).encode())
        if size > MAX_METADATA_BYTES:
            raise MetadataTooLargeError(named, size)
        shape: list[type[BaseModel]] = instance_state(_SHAPE, list)
        for model in shape:
            try:
                model.model_validate(changed)
            except ValidationError as error:
                raise MetadataInvalidError(named, model, error) from None
        self._state().update(changes)
        queue_update(metadata=copy.deepcopy(changed))


def _json(key: str, value: Any) -> Any:
    """``value`` as JSON data; a clear error naming ``key`` if it is not JSON."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata '{key}' must be JSON: {error}") from None


metadata = RunMetadata()
