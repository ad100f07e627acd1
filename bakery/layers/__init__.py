"""Artifacts -> deterministic, cached OCI layers: one layer per package."""

from bakery.layers.model import BuiltLayer
from bakery.layers.wheel import (
    DEFAULT_PREFIX,
    LAYER_FORMAT_VERSION,
    build_wheel_layer,
    stage_wheel,
    wheel_layer_key,
)

__all__ = [
    "DEFAULT_PREFIX",
    "LAYER_FORMAT_VERSION",
    "BuiltLayer",
    "build_wheel_layer",
    "stage_wheel",
    "wheel_layer_key",
]
