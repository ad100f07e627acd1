"""The code package on this machine, for the local runtimes: fetched and verified once per
app version with the packager's `fetch_code`, never trusted blindly."""

from pathlib import Path

from packager import PackagedCode
from packager.fetch import fetch_code
from stagekit.dirs import cache_dir


def local_code(name: str, version: str, package: PackagedCode) -> Path:
    """The directory holding `version`'s code; fetched into place on first use."""
    code = cache_dir() / "deployer" / name / version / "code"
    if code.is_dir() and any(code.iterdir()):
        return code  # fetch_code renames into place only after verifying every file
    return fetch_code(package.url, package.key, code)
