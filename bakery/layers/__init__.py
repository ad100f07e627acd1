"""Artifacts -> deterministic, cached OCI layers: one layer per package."""

from typing import TYPE_CHECKING

from stagekit.lazy import lazy_exports

if TYPE_CHECKING:
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
__getattr__ = lazy_exports(
    __name__,
    {"BuiltLayer": "bakery.layers.model"}
    | dict.fromkeys(__all__[:2] + __all__[3:], "bakery.layers.wheel"),
)
