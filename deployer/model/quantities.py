"""Kubernetes-style resource quantities, parsed once into exact integers.

Runtimes need numbers (Docker wants nano-CPUs and bytes), manifests want what the user wrote;
a `Quantity` keeps both. The value comes from the Kubernetes client's own `parse_quantity`
(exact `Decimal`s, so "1.5Gi" is exact); the grammar checked first is the API server's, which is
stricter than that function ("1K", "-1", "1e3" and "NaN" are refused here as the cluster would
refuse them), and anything that does not come out as a whole number of millicores or bytes is
refused rather than rounded.
"""

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import ModuleType

from deployer.exceptions import AppConfigError

_NUMBER = r"(?P<number>\d+(?:\.\d*)?|\.\d+)"
_CPU = re.compile(_NUMBER + r"(?P<suffix>m?)")
_BYTES = re.compile(_NUMBER + r"(?P<suffix>[KMGTPE]i|[kMGTPE]?)")
_GPU = re.compile(r"\d+")
_UNIT_TYPO = re.compile(r"(?i)\d\s*([kmgtpe])(i?b|i)?$")


@dataclass(frozen=True)
class Quantity:
    """`text` as the user wrote it (for manifests); `value` in millicores, bytes or a count."""

    text: str
    value: int

    def __str__(self) -> str:
        return self.text


@cache
def _parse_quantity() -> Callable[[str], Decimal]:
    """`kubernetes.utils.parse_quantity`, loaded from its own file: importing it the usual way
    runs `kubernetes/__init__`, which loads the whole API client (~0.7 s) for one function."""
    package = importlib.util.find_spec("kubernetes")
    assert package is not None and package.submodule_search_locations
    location = f"{package.submodule_search_locations[0]}/utils/quantity.py"
    spec = importlib.util.spec_from_file_location("bakery_k8s_quantity", location)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parse: Callable[[str], Decimal] = module.parse_quantity
    return parse


def _text(value: object, field: str, example: str, *, allow_float: bool = False) -> str:
    allowed: tuple[type, ...] = (str, int, float) if allow_float else (str, int)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise AppConfigError(
            f"{field}: expected a quantity string, e.g. {example}, got {type(value).__name__}"
        )
    return str(value).strip()


def parse_cpu(value: object, field: str = "cpu") -> Quantity:
    """CPU as cores ("1", "0.5") or millicores ("500m") -> millicores (> 0)."""
    text = _text(value, field, "'1', '0.5' or '500m'", allow_float=True)
    match = _CPU.fullmatch(text)
    if match is None:
        raise AppConfigError(
            f"{field}: {text!r} is not a CPU quantity; use cores or millicores, "
            "e.g. '1', '0.5' or '500m'"
        )
    millicores = _parse_quantity()(text) * 1000
    if millicores != millicores.to_integral_value():
        raise AppConfigError(
            f"{field}: {text!r} is finer than one millicore; round it, e.g. '250m'"
        )
    if millicores <= 0:
        raise AppConfigError(f"{field}: {text!r} must be more than zero, e.g. '250m' or '1'")
    return Quantity(text, int(millicores))


def parse_bytes(value: object, field: str) -> Quantity:
    """Memory, disk or shared memory ("512Mi", "2Gi", "1G", "1000000") -> bytes (> 0)."""
    text = _text(value, field, "'512Mi', '2Gi' or '1G'")
    match = _BYTES.fullmatch(text)
    if match is None:
        typo = _UNIT_TYPO.search(text)
        hint = ""
        if typo:
            unit = typo.group(1).upper()
            decimal = "k" if unit == "K" else unit
            hint = f" (for units of 1024 write '{unit}i', for units of 1000 write '{decimal}')"
        raise AppConfigError(
            f"{field}: {text!r} is not a byte quantity{hint}; use a number of bytes with an "
            "optional suffix Ki/Mi/Gi/Ti (powers of 1024) or k/M/G/T (powers of 1000), "
            "e.g. '512Mi', '2Gi' or '1G'"
        )
    size = _parse_quantity()(text)
    if size != size.to_integral_value():
        raise AppConfigError(
            f"{field}: {text!r} is not a whole number of bytes; use a smaller unit, e.g. '1536Mi'"
        )
    if size <= 0:
        raise AppConfigError(f"{field}: {text!r} must be more than zero, e.g. '512Mi'")
    return Quantity(text, int(size))


def parse_gpu(value: object, field: str = "gpu") -> Quantity:
    """GPUs are whole devices: "0", "1", "2" -> a count (>= 0)."""
    text = _text(value, field, "'0' or '1'")
    if _GPU.fullmatch(text) is None:
        raise AppConfigError(
            f"{field}: {text!r} is not a GPU count; GPUs are whole devices, e.g. '0', '1' or '2'"
        )
    return Quantity(text, int(text))
