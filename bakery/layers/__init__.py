"""Artifacts -> deterministic, cached OCI layers: one layer per package."""

from typing import TYPE_CHECKING

from stagekit.lazy import lazy_exports

if TYPE_CHECKING:
    from bakery.layers.model import BuiltLayer
    from bakery.layers.wheel import (
        LAYER_FORMAT_VERSION,
        build_wheel_layer,
        stage_wheel,
        wheel_layer_key,
    )

__all__ = [
    "LAYER_FORMAT_VERSION",
    "BuiltLayer",
    "build_wheel_layer",
    "stage_wheel",
    "wheel_layer_key",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "BuiltLayer": "bakery.layers.model",
        "LAYER_FORMAT_VERSION": "bakery.layers.wheel",
        "build_wheel_layer": "bakery.layers.wheel",
        "stage_wheel": "bakery.layers.wheel",
        "wheel_layer_key": "bakery.layers.wheel",
    },
)
