"""Conda packages -> their files as they sit in the image, by rattler's installer.

rattler links the packages into a staging directory while writing the *in-image* prefix
(`alternative_target_prefix`) into every text and binary prefix placeholder and into the
entry points of noarch python packages; link scripts are never run. Its `conda-meta/`
record of each package then says which staged files are that package's, which is how each
package becomes its own layer. The records are made portable (no paths of this machine)
and completed from the package's own `info/index.json`.
"""

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakery.conda.aio import run
from bakery.errors import ImageBakingException, shorten
from bakery.lock import CondaPackage

LINK_SCRIPTS = ("post-link", "pre-link")
_MACHINE_FIELDS = ("extracted_package_dir", "package_tarball_full_path", "link")
_REQUEST_FIELDS = ("requested_spec", "requested_specs")


@dataclass(frozen=True)
class StagedPackage:
    """One installed package: its files under the staging root and its conda-meta record."""

    package: CondaPackage
    root: Path
    files: tuple[str, ...]
    record: bytes

    @property
    def record_path(self) -> str:
        p = self.package
        return f"conda-meta/{p.name}-{p.version}-{p.build}.json"


def package_cache(cache: Path) -> Path:
    """Where rattler keeps downloaded, extracted packages (verified by sha256)."""
    return cache / "conda" / "pkgs"


def stage(
    packages: Sequence[CondaPackage], root: Path, *, prefix: str, cache: Path
) -> dict[str, StagedPackage]:
    """Install `packages` under `root` for the in-image `prefix`: {name: staged package}."""
    from rattler import install

    from bakery.conda.auth import access_refused, client, configured_credentials

    credentials = configured_credentials()
    records = [_record(p) for p in packages]
    try:
        run(
            install(
                records,
                root,
                cache_dir=package_cache(cache),
                installed_packages=[],
                execute_link_scripts=False,
                show_progress=False,
                alternative_target_prefix=prefix,
                client=client(credentials),
            )
        )
    except Exception as exc:  # rattler's InstallerError, LinkError, FetchRepoDataError...
        from stagekit.errors import ErrorKind

        error = str(exc)
        refused = access_refused(error, sorted({p.channel for p in packages}), credentials)
        if refused is not None:
            raise refused from None
        error = credentials.redact(error)
        reason = error.splitlines()[-1] if error else type(exc).__name__
        raise ImageBakingException(
            f"Installing the conda packages failed: {shorten(reason, 300)}. Check that the "
            "channels are reachable and the lock's sha256 digests match their packages.",
            details=error or None,
            kind=ErrorKind.UNAVAILABLE,
        ) from None
    staged = {p.name: _staged(p, root, cache) for p in packages}
    _refuse_link_scripts(staged.values())
    return staged


def _record(package: CondaPackage) -> Any:
    """rattler's RepoDataRecord for a locked package: rattler reads the rest (noarch, paths,
    entry points) from the package itself."""
    from rattler import BuildString, PackageRecord, RepoDataRecord

    record = PackageRecord(
        name=package.name,
        version=package.version,
        build=BuildString(package.build),
        build_number=0,
        subdir=package.subdir,
        depends=list(package.depends),
        sha256=bytes.fromhex(package.sha256),
        md5=bytes.fromhex(package.md5),
    )
    return RepoDataRecord(record, package.filename, package.url, package.channel)


def _staged(package: CondaPackage, root: Path, cache: Path) -> StagedPackage:
    meta = root / "conda-meta" / f"{package.name}-{package.version}-{package.build}.json"
    record = json.loads(meta.read_text())
    for field in (*_MACHINE_FIELDS, *_REQUEST_FIELDS):
        record.pop(field, None)
    stem = package.filename.removesuffix(".conda").removesuffix(".tar.bz2")
    index = package_cache(cache) / stem / "info" / "index.json"
    # The package's own metadata (build number, noarch, license...) wins; without it,
    # rattler's record alone is still a valid one.
    with contextlib.suppress(OSError, ValueError):
        record = {**record, **json.loads(index.read_text())}
    # One line: json's C encoder writes it (with an indent, the pure-Python one would, and
    # python's record lists thousands of files). Conda tools read either.
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    return StagedPackage(package, root, tuple(record.get("files", ())), data)


def _refuse_link_scripts(staged: Iterable[StagedPackage]) -> None:
    """A link script the bakery would not run leaves a broken env: refuse, naming it."""
    found = [
        f"{s.package.name} ({path})"
        for s in staged
        for path in s.files
        if path.startswith("bin/.") and path.endswith(tuple(f"-{k}.sh" for k in LINK_SCRIPTS))
    ]
    if found:
        raise ImageBakingException(
            f"Conda package(s) with a link script: {shorten(', '.join(found), 300)}. The bakery "
            "installs packages without running anything, so the env would be missing what the "
            "script does; pin a build without it, or drop the package."
        )
