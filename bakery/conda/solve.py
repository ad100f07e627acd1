"""Solving conda match specs with rattler for the *target* platform, into a conda lock.

The solve sees the target's subdir and noarch (never the host's), the channels in strict
priority (a package found in a higher channel is taken only from there), and the virtual
packages of the base image. Repodata is cached under `<cache>/conda/repodata`. An
unsatisfiable request is an ImageBakingException whose message is the solver's explanation,
cut short, with the whole of it in `details`.
"""

import datetime
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bakery.conda.aio import run
from bakery.conda.lockfile import dependencies, depends_of
from bakery.errors import ImageBakingException, shorten
from bakery.lock import CondaPackage
from bakery.platforms import CONDA_SUBDIRS
from stagekit.errors import ErrorKind

_EXPLANATION_LINES = 12


def solve(
    specs: Sequence[str],
    channels: Sequence[str],
    platform: str,
    virtual_packages: Callable[[], Sequence[Any]],
    cache: Path,
    timeout: float,
) -> tuple[CondaPackage, ...]:
    """The packages `specs` resolve to for `platform`, sorted by name. `virtual_packages` is
    called once the repodata is fetched: reading them from the base can overlap the fetch."""
    from rattler import ChannelPriority, Gateway, Subdir
    from rattler import solve as rattler_solve
    from rattler.exceptions import FetchRepoDataError, GatewayError, SolverError

    from bakery.conda.auth import access_refused, client, configured_credentials

    credentials = configured_credentials()
    subdir = CONDA_SUBDIRS[platform]
    platforms = [Subdir(subdir), Subdir("noarch")]
    gateway = Gateway(cache_dir=cache / "conda" / "repodata", client=client(credentials))
    assumed: Sequence[Any] = ()
    try:
        # The repodata first (kept in the gateway for the solve), the virtual packages then.
        run(gateway.query(list(channels), platforms, list(specs), recursive=True))
        assumed = virtual_packages()
        records = run(
            rattler_solve(
                sources=list(channels),
                specs=list(specs),
                gateway=gateway,
                platforms=platforms,
                virtual_packages=list(assumed),
                channel_priority=ChannelPriority.Strict,
                timeout=datetime.timedelta(seconds=max(timeout, 1.0)),
            )
        )
    except SolverError as exc:
        raise _unsatisfiable(str(exc), specs, subdir, assumed) from None
    except (FetchRepoDataError, GatewayError) as exc:
        error = str(exc)
        refused = access_refused(error, channels, credentials)
        if refused is not None:
            raise refused from None
        error = credentials.redact(error)
        raise ImageBakingException(
            f"Cannot read the conda channels {shorten(', '.join(channels), 200)}: "
            f"{shorten(error.splitlines()[0] if error else type(exc).__name__, 300)}. "
            "Check that they are reachable (BAKERY_CONDA_CHANNELS or channels=).",
            details=error or None,
            kind=ErrorKind.UNAVAILABLE,
        ) from None
    return tuple(sorted((_package(record) for record in records), key=lambda p: p.name))


def _package(record: Any) -> CondaPackage:
    return CondaPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        subdir=record.subdir,
        url=record.url,
        sha256=record.sha256.hex(),
        md5=record.md5.hex(),
        # As a conda-lock file records them, so a bake from one locks to the same value.
        depends=depends_of(dependencies(record.depends)),
    )


def _unsatisfiable(
    explanation: str, specs: Sequence[str], subdir: str, virtual_packages: Sequence[Any]
) -> ImageBakingException:
    lines = [line.rstrip() for line in explanation.splitlines() if line.strip()]
    shown = lines[:_EXPLANATION_LINES]
    if len(lines) > len(shown):
        shown.append(f"... ({len(lines) - len(shown)} more lines in the details)")
    assumed = ", ".join(f"{p.name.normalized} {p.version}" for p in virtual_packages)
    return ImageBakingException(
        "\n".join(
            [
                f"The conda specs {shorten(', '.join(specs), 200)} cannot be satisfied for "
                f"{subdir} (assuming {assumed} from the base image):",
                *(f"  {line}" for line in shown),
                "Relax a version, add the channel that has the missing package, or pick a "
                "base image with a newer glibc.",
            ]
        ),
        details=explanation,
        kind=ErrorKind.INVALID_INPUT,
    )
