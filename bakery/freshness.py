"""When a spec was last resolved, and whether a bake must resolve it again (`max_age`).

An image's bytes depend on its inputs only (same inputs, same digest), so the time of a
resolution cannot live in the image. It is a small record beside the tag lookup instead:
`<cache>/bake/resolved/<target>/<spec id>.json` holds the lock digest the spec last resolved
to and when, for one publish target (`bakery.targets.target_name`).

Only unpinned specs go stale: a spec whose every requirement is an exact `==` pin of one
version (or a direct link to one wheel) resolves to the same versions whenever it is
resolved, so a bake never resolves it again for its age.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bakery.errors import room_in
from stagekit.files import write_atomic

if TYPE_CHECKING:  # loaded with the spec, when a bake runs: a cache hit stays light
    from packaging.requirements import Requirement

    from bakery.spec import Spec


@dataclass(frozen=True)
class Resolution:
    """What a spec resolved to (the lock's digest) and when (Unix seconds)."""

    lock_digest: str
    at: float


def pinned(spec: "Spec") -> bool:
    """Whether every requirement of `spec` names exactly one version (`==1.2.3`, `===1.2.3`)
    or one wheel (a direct link). `>=`, `~=`, `==1.*`, no constraint: unpinned. A kind of
    spec other than PyPI counts as unpinned (its age is then what decides)."""
    if spec.kind != "pypi":
        return False
    from packaging.requirements import Requirement

    return all(_pinned(Requirement(text)) for text in spec.requirements)


def _pinned(requirement: "Requirement") -> bool:
    if requirement.url:
        return True
    return any(
        specifier.operator == "==="
        or (specifier.operator == "==" and not specifier.version.endswith(".*"))
        for specifier in requirement.specifier
    )


class Resolutions:
    """The resolution records of one publish target, under `<cache>/resolved/`."""

    def __init__(self, cache: Path, target: str) -> None:
        self.target = target
        self.directory = cache / "resolved" / hashlib.sha256(target.encode()).hexdigest()[:32]

    def get(self, spec_id: str) -> Resolution | None:
        """The spec's last recorded resolution at this target, if any (a damaged record
        counts as none: the spec is then resolved again, which repairs it)."""
        try:
            data = json.loads(self._path(spec_id).read_text())
            return Resolution(str(data["lock_digest"]), float(data["at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def record(self, spec_id: str, lock_digest: str) -> Resolution:
        """The spec resolved to `lock_digest` just now."""
        resolution = Resolution(lock_digest, time.time())
        record = {"target": self.target, "spec_id": spec_id, **resolution.__dict__}
        with room_in(self.directory, "BAKERY_CACHE_DIR"):
            write_atomic(self._path(spec_id), json.dumps(record, sort_keys=True).encode())
        return resolution

    def due(self, spec: "Spec", lock_digest: str, max_age: float | None) -> str | None:
        """Why the image of `spec` (whose lock has `lock_digest`) must be resolved again
        under `max_age` seconds, or None when it need not: pinned, no max age, or fresh."""
        if max_age is None or pinned(spec):
            return None
        last = self.get(spec.spec_id)
        if last is None:
            return "this machine has no record of when it was resolved"
        if last.lock_digest != lock_digest:
            return "its image holds a lock this machine did not record (baked elsewhere)"
        age = time.time() - last.at
        if age < max_age:
            return None
        return f"it was resolved {_human(age)} ago (max age {_human(max_age)})"

    def _path(self, spec_id: str) -> Path:
        return self.directory / f"{spec_id}.json"


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
