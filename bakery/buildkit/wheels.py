"""sdist -> wheel in BuildKit, on the bake's base, with no network; cached on the host.

The build context holds the sdist, the wheels of its build requirements (resolved by uv for
the target, downloaded and verified on the host) and the frontend `pep517.py`; the exec runs
with network mode none, so a build that reaches for the network fails. A build with C
sources first gets a compiler: the base plus gcc and the Python headers from the base's own
apt sources, a step BuildKit caches. The wheel is kept in the artifact cache and found again
by (sdist sha256, platform, Python, base digest, builder version).
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bakery.artifacts import artifact_path, fetch_artifacts
from bakery.buildkit import pep517
from bakery.buildkit.address import buildkit_address
from bakery.buildkit.client import BuildKit
from bakery.buildkit.llb import SCRATCH, Graph, Mount, Output
from bakery.buildkit.run import export
from bakery.buildkit.sdists import build_system
from bakery.errors import ImageBakingException
from bakery.lock import LockedPackage, lock
from bakery.spec import BUILDER_VERSION, Spec
from stagekit.cancel import CancelToken
from stagekit.files import write_atomic
from stagekit.progress import Reporter

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOURCE_DATE_EPOCH = 315532800
"""1980-01-01: the oldest time a wheel (a zip) can hold; the build's files get it."""
TOOLCHAIN = ("gcc", "g++", "libc6-dev", "python3-dev")
NO_NETWORK_HINT = (
    "The build ran without network: build requirements come only from the sdist's "
    "[build-system] requires, and a setup.py that downloads cannot be built here. Pin a "
    "version with a wheel, or bake with --no-build to see which package lacks one."
)


@dataclass(frozen=True)
class BuiltWheel:
    filename: str
    sha256: str
    size: int
    path: Path


def wheel_key(sdist_sha256: str, platform: str, python: str, base_digest: str) -> str:
    """What a built wheel depends on, as one hex key."""
    fields = {
        "sdist": sdist_sha256,
        "platform": platform,
        "python": python,
        "base": base_digest,
        "builder": BUILDER_VERSION,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass
class WheelBuilder:
    """Builds the wheels of one spec's sdists on `base_reference` (pinned, pullable by
    BuildKit); `cache` is the bake cache."""

    spec: Spec
    base_reference: str
    cache: Path
    reporter: Reporter
    address: str | None = None

    def _record(self, sdist: LockedPackage) -> Path:
        key = wheel_key(
            sdist.sha256, self.spec.platform, self.spec.python, self.spec.base_image_digest
        )
        return self.cache / "built-wheels" / f"{key}.json"

    def cached(self, sdist: LockedPackage) -> BuiltWheel | None:
        try:
            data = json.loads(self._record(sdist).read_text())
        except (OSError, ValueError):
            return None
        path = artifact_path(self.cache, data["sha256"])
        if not path.exists():
            return None
        return BuiltWheel(data["filename"], data["sha256"], data["size"], path)

    def wheel(self, sdist: LockedPackage, cancel: CancelToken) -> BuiltWheel:
        """The wheel of `sdist`: from the cache, else built in BuildKit now."""
        found = self.cached(sdist)
        if found is not None:
            return found
        started = time.monotonic()
        (sdist_path,) = fetch_artifacts([sdist], self.cache, cancel=cancel)
        system = build_system(sdist_path, sdist.filename)
        what = f"the sdist {sdist.filename}"
        requirements = self._build_requirements(system.requires, what, cancel)
        with tempfile.TemporaryDirectory(prefix="bakery-sdist-") as scratch:
            context, out = Path(scratch) / "context", Path(scratch) / "out"
            (context / "sdist").mkdir(parents=True)
            (context / "wheels").mkdir()
            shutil.copyfile(sdist_path, context / "sdist" / sdist.filename)
            for package, path in requirements:
                shutil.copyfile(path, context / "wheels" / package.filename)
            shutil.copyfile(pep517.__file__, context / "pep517.py")
            config = {
                "sdist": sdist.filename,
                "backend": system.backend,
                "backend_path": list(system.backend_path),
            }
            (context / "build.json").write_text(json.dumps(config))
            self.reporter.info(
                f"Building a wheel from {sdist.filename} in BuildKit"
                + (" (with a C compiler)" if system.compiles else "")
            )
            with BuildKit(buildkit_address(self.address)) as client:
                export(
                    client,
                    lambda session: self._graph(session, system.compiles),
                    context=context,
                    destination=out,
                    reporter=self.reporter,
                    cancel=cancel,
                    what=what,
                    hint=NO_NETWORK_HINT,
                )
            built = sorted(out.glob("*.whl"))
            if len(built) != 1:
                raise ImageBakingException(
                    f"Building {what} gave {len(built)} wheels ({[p.name for p in built]}), "
                    "not one; this sdist cannot be built here. Pin a version with a wheel."
                )
            wheel = self._keep(sdist, built[0])
        self.reporter.info(
            f"Built {wheel.filename} from {sdist.filename} in {time.monotonic() - started:.1f}s"
        )
        return wheel

    def _build_requirements(
        self, requires: tuple[str, ...], what: str, cancel: CancelToken
    ) -> list[tuple[LockedPackage, Path]]:
        """The build requirements locked as wheels for the target and downloaded here."""
        if not requires:
            return []
        spec = Spec(
            requirements=requires,
            base_image_digest=self.spec.base_image_digest,
            index_url=self.spec.index_url,
            extra_index_urls=self.spec.extra_index_urls,
            platform=self.spec.platform,
            python=self.spec.python,
        )
        try:
            locked = lock(spec, timeout=cancel.remaining(600.0))
        except ImageBakingException as error:
            raise ImageBakingException(
                f"The build requirements of {what} ({', '.join(requires)}) could not be "
                f"resolved as wheels for the target: {error.message}",
                details=error.details,
                kind=error.kind,
            ) from None
        paths = fetch_artifacts(locked.packages, self.cache, cancel=cancel)
        return list(zip(locked.packages, paths, strict=True))

    def _graph(self, session_id: str, compiles: bool) -> tuple[Graph, Output]:
        graph = Graph(self.spec.platform)
        root = graph.image(self.base_reference)
        if compiles:
            install = (
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                "--no-install-recommends " + " ".join(TOOLCHAIN)
            )
            root = graph.exec(
                ["/bin/sh", "-c", install],
                mounts=[Mount("/", root, output=True)],
                env={"PATH": PATH},
                name=f"install a compiler: {' '.join(TOOLCHAIN)}",
                network="sandbox",
            )["/"]
        outputs = graph.exec(
            ["python3", "/ctx/pep517.py"],
            mounts=[
                Mount("/", root),
                Mount("/ctx", graph.local("context", session_id), readonly=True),
                Mount("/out", SCRATCH, output=True),
            ],
            env={
                "PATH": PATH,
                "HOME": "/tmp",
                "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            name="build the wheel (no network)",
            network="none",
        )
        return graph, outputs["/out"]

    def _keep(self, sdist: LockedPackage, wheel: Path) -> BuiltWheel:
        """Move the wheel into the artifact cache, then record it under its key."""
        data = wheel.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        target = artifact_path(self.cache, sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            write_atomic(target, data)
            os.chmod(target, 0o444)
        record = {"filename": wheel.name, "sha256": sha256, "size": len(data)}
        path = self._record(sdist)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record).encode())
        return BuiltWheel(wheel.name, sha256, len(data), target)
