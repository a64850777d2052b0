"""Azure ML v1's ``ResourceConfiguration`` (``azureml.core.resource_configuration``): the
CPU, memory and GPU a model needs, given to ``Model.register(resource_configuration=)``
(source: Azure's reference for ``ResourceConfiguration``)."""

from __future__ import annotations

import json
from typing import Any

from mlmanage_jupyter.core.errors import ValidationError


class ResourceConfiguration:
    """``cpu`` (cores, > 0), ``memory_in_gb`` (GiB, > 0), ``gpu`` (count, >= 0); each may be
    None. Raises ValidationError naming the bad argument."""

    def __init__(self, cpu: float | None = None, memory_in_gb: float | None = None, gpu: int | None = None) -> None:
        for name, value, low in (("cpu", cpu, 0), ("memory_in_gb", memory_in_gb, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= low):
                raise ValidationError(f"ResourceConfiguration {name} must be a number > 0, got {value!r}")
        if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
            raise ValidationError(f"ResourceConfiguration gpu must be an integer >= 0, got {gpu!r}")
        self.cpu = cpu
        self.memory_in_gb = memory_in_gb
        self.gpu = gpu

    def serialize(self) -> dict[str, Any]:
        """Azure's JSON keys: ``{"cpu", "memoryInGB", "gpu"}``."""
        return {"cpu": self.cpu, "memoryInGB": self.memory_in_gb, "gpu": self.gpu}

    @staticmethod
    def deserialize(payload_obj: dict[str, Any]) -> ResourceConfiguration:
        return ResourceConfiguration(payload_obj.get("cpu"), payload_obj.get("memoryInGB"), payload_obj.get("gpu"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceConfiguration) and self.serialize() == other.serialize()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ResourceConfiguration(cpu={self.cpu!r}, memory_in_gb={self.memory_in_gb!r}, gpu={self.gpu!r})"


#: the model property ``Model.register(resource_configuration=)`` stores it in (Azure's JSON form)
PROPERTY = "mlmanage.resource_configuration"


def to_properties(rc: ResourceConfiguration | None) -> dict[str, str]:
    """``{PROPERTY: <Azure's JSON>}`` (empty for None). Raises ValidationError for another type."""
    if rc is None:
        return {}
    if not isinstance(rc, ResourceConfiguration):
        raise ValidationError(
            f"resource_configuration must be a ResourceConfiguration(cpu=, memory_in_gb=), got {type(rc).__name__}"
        )
    return {PROPERTY: json.dumps(rc.serialize())}


def from_properties(properties: dict[str, str]) -> ResourceConfiguration | None:
    """The ResourceConfiguration a model was registered with, or None."""
    text = properties.get(PROPERTY)
    return ResourceConfiguration.deserialize(json.loads(text)) if text else None
