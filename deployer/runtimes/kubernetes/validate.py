"""Check rendered manifests against the official client's models, since no API server runs here.

The models (pydantic, `extra="forbid"`) reject unknown fields, wrong types and missing required
fields; a round trip back to JSON must then give the manifest unchanged, so nothing was dropped
or coerced on the way.
"""

from collections.abc import Mapping
from typing import Any

import pydantic
from kubernetes import client

from deployer.runtimes.kubernetes.errors import InvalidManifest


def model_name(api_version: str, kind: str) -> str:
    """`apps/v1` + `Deployment` → `V1Deployment`, the client's naming scheme."""
    version = api_version.rpartition("/")[2]
    return version[0].upper() + version[1:] + kind


def validate(manifest: Mapping[str, Any]) -> None:
    """Raise `InvalidManifest` unless the client's model for the manifest's kind accepts it exactly.

    A custom resource (no model in the client) has only its metadata checked.
    """
    kind = manifest.get("kind", "?")
    model = getattr(client, model_name(manifest.get("apiVersion", ""), kind), None)
    if model is None:
        model, manifest = client.V1ObjectMeta, manifest.get("metadata", {})
    try:
        parsed = model.model_validate(manifest)
    except pydantic.ValidationError as error:
        raise InvalidManifest(f"{kind} does not match the Kubernetes schema: {error}") from None
    round_trip = client.ApiClient().sanitize_for_serialization(parsed)
    if round_trip != manifest:
        where = _difference(manifest, round_trip, kind)
        raise InvalidManifest(f"{where} changes in a round trip through {model.__name__}")


def _difference(expected: Any, actual: Any, path: str) -> str:
    """The path of the first place where two JSON values differ."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        for key in sorted(expected.keys() | actual.keys()):
            if expected.get(key) != actual.get(key):
                return _difference(expected.get(key), actual.get(key), f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            if left != right:
                return _difference(left, right, f"{path}[{index}]")
    return path
