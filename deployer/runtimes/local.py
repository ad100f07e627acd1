"""What the two runtimes on this machine (docker, process) share: the verified code package
on the host, the parameters neither can honour, and exposure through the per-app proxy."""

from collections.abc import Sequence
from pathlib import Path

from deployer.exceptions import AppConfigError
from deployer.host.proxy import LocalProxy
from deployer.model.config import AppConfig
from deployer.orchestration.records import AppRecord
from deployer.runtimes.base import Worker
from packager.errors import CodePackagingException
from packager.fetch import fetch_code
from packager.model import PackagedCode
from stagekit.dirs import cache_dir


def local_code(name: str, version: str, package: PackagedCode) -> Path:
    """The directory holding `version`'s code; fetched and verified on first use, never
    trusted blindly."""
    code = cache_dir() / "deployer" / name / version / "code"
    if _filled(code):
        return code  # fetch_code renames into place only after verifying every file
    try:
        return fetch_code(package.url, package.key, code)
    except CodePackagingException:
        if _filled(code):
            return code  # a concurrent fetch of the same package finished first
        raise


def _filled(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


def refuse(config: AppConfig, runtime: str, extra: list[str]) -> None:
    """Raise one `AppConfigError` listing `extra` and every parameter no local runtime
    honours; parameters are refused, never silently dropped."""
    problems = []
    if config.image is None:
        problems.append(f"image: the {runtime} runtime needs a baked image (image=baked.image)")
    if not config.commands:
        problems.append("commands: give the command that starts the app, e.g. ['python app.py']")
    if config.compute_pools:
        problems.append(f"compute_pools: the {runtime} runtime runs on this machine, no pools")
    if config.persistence:
        problems.append(f"persistence: the {runtime} runtime has no persistent volumes")
    if config.models or config.data:
        problems.append(f"models/data: the {runtime} runtime cannot mount models or data")
    problems += extra
    if problems:
        raise AppConfigError(f"app {config.name!r} cannot run on the {runtime} runtime:", problems)


class ProxyExposure:
    """The `Runtime` exposure methods of a runtime whose workers listen on this machine: the
    app's public URL is its `LocalProxy`, which balances over the workers' addresses."""

    proxy: LocalProxy

    def expose(self, record: AppRecord, workers: Sequence[Worker]) -> None:
        self.proxy.expose(record, [w.address for w in workers if w.address])

    def public_url(self, record: AppRecord) -> str | None:
        return self.proxy.url(record)

    def internal_url(self, name: str) -> str | None:
        """None: other apps reach a worker at its own address."""
        return None

    def unexpose(self, record: AppRecord) -> None:
        self.proxy.stop(record)
