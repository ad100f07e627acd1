"""`bakery bake`, `bakery inspect` and `bakery base build`: the bakery from the command line."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bakery.errors import ImageBakingException, quoted
from frontends.cli.output import console, fail, log_line, print_json, stage_bars
from frontends.cli.params import duration

if TYPE_CHECKING:
    from stagekit.progress import Reporter

base_app = typer.Typer(help="Base images: build the embedded default.", no_args_is_help=True)


def _pypi(requirements: list[str]) -> dict[str, str]:
    """`--pypi 'flask>=2'` -> {"flask": ">=2"}: the pypi= dict bake_image takes; a direct
    reference `--pypi 'six @ https://…/six-1.17.0-py2.py3-none-any.whl'` keeps its link."""
    from packaging.utils import canonicalize_name

    from bakery.spec import parse_requirement

    packages: dict[str, str] = {}
    seen: set[str] = set()
    for text in requirements:
        requirement = parse_requirement(text, f"--pypi {quoted(text)}")
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        key = requirement.name + extras
        if canonicalize_name(requirement.name) + extras.lower() in seen:
            raise ImageBakingException(
                f"--pypi names {key} more than once; give each package once, with all its "
                "constraints (e.g. --pypi 'flask>=2,<4')."
            )
        version = f"@ {requirement.url}" if requirement.url else str(requirement.specifier)
        marker = f" ; {requirement.marker}" if requirement.marker else ""
        packages[key] = f"{version}{marker}"
        seen.add(canonicalize_name(requirement.name) + extras.lower())
    return packages


def _conda(specs: list[str]) -> dict[str, str]:
    """`--conda 'numpy=1.26.*'` -> {"numpy": "1.26.*"}: the conda= dict bake_image takes
    (`--conda numpy` means any version)."""
    packages: dict[str, str] = {}
    for text in specs:
        name, _, spec = text.partition("=")
        name = name.strip()
        if not name or name in packages:
            raise ImageBakingException(
                f"--conda {quoted(text)}: give NAME=SPEC (e.g. numpy=1.26.*), each package once."
            )
        packages[name] = spec.strip()
    return packages


PypiOption = Annotated[
    list[str] | None,
    typer.Option("--pypi", help="A requirement, e.g. 'flask>=2' (repeatable)."),
]
RequirementsOption = Annotated[
    Path | None, typer.Option("-r", "--requirements", help="A requirements.txt file.")
]
CondaOption = Annotated[
    list[str] | None,
    typer.Option("--conda", help="A conda package, NAME=SPEC, e.g. numpy=1.26.* (repeatable)."),
]
EnvironmentOption = Annotated[
    Path | None,
    typer.Option("--environment", help="An environment.yml (conda specs, channels, pip:)."),
]
ChannelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--channel",
        help="A conda channel, name or URL, highest priority first (repeatable); default "
        "BAKERY_CONDA_CHANNELS or conda-forge.",
    ),
]
CudaOption = Annotated[
    str | None,
    typer.Option(help="The CUDA driver version the image's hosts have (conda's __cuda)."),
]


def bake(
    pypi: PypiOption = None,
    requirements: RequirementsOption = None,
    pyproject: Annotated[
        Path | None, typer.Option("--pyproject", help="A pyproject.toml ([project].dependencies).")
    ] = None,
    conda: CondaOption = None,
    environment: EnvironmentOption = None,
    conda_lock: Annotated[
        Path | None,
        typer.Option("--conda-lock", help="A conda-lock file: its packages, used as is."),
    ] = None,
    channel: ChannelOption = None,
    cuda: CudaOption = None,
    python: Annotated[str | None, typer.Option(help="Target Python, e.g. 3.11.")] = None,
    base: Annotated[str | None, typer.Option(help="Base image reference.")] = None,
    registry: Annotated[
        str | None, typer.Option(help="Publish to this registry repository (host:port/repo).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="registry, layout (default without a registry) or daemon.")
    ] = None,
    platform: Annotated[
        str | None, typer.Option(help="linux/amd64 (default) or linux/arm64.")
    ] = None,
    cache_name: Annotated[str | None, typer.Option(help="Namespace for the image cache.")] = None,
    force: Annotated[bool, typer.Option(help="Rebake even if the image exists.")] = False,
    max_age: Annotated[
        str | None,
        typer.Option(
            help="Resolve an unpinned spec again once it was resolved this long ago (7d, "
            "12h, 0: now); an unchanged lock keeps the image. Default BAKERY_SPEC_MAX_AGE."
        ),
    ] = None,
    compression: Annotated[
        str, typer.Option(help="Layer compression: gzip (default) or zstd.")
    ] = "gzip",
    apt: Annotated[
        list[str] | None,
        typer.Option(
            "--apt",
            help="A Debian package to install with apt in BuildKit, e.g. libgomp1 "
            "(repeatable); its files become one layer under the packages.",
        ),
    ] = None,
    build: Annotated[
        bool,
        typer.Option(
            "--build/--no-build",
            help="Build sdist-only packages into wheels in BuildKit (default); --no-build: "
            "such a package is an error.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print {image, python_path}.")] = False,
    server: Annotated[
        str | None,
        typer.Option(help="Bake on this Bakery server (grpc://host:port); default BAKERY_URL."),
    ] = None,
) -> None:
    """Bake dependencies into a layered OCI image; print its reference and python path."""
    from bakery.bake import bake_image

    try:
        with stage_bars(quiet=as_json) as bars:
            conda_options = _conda_options(environment, conda_lock, channel, cuda)
            baked = bake_image(
                pypi=_pypi(pypi) if pypi else None,
                conda=_conda(conda) if conda else None,
                requirements_file=requirements,
                pyproject_toml=pyproject,
                base_image=base,
                python=python,
                logger=None if as_json else log_line,
                cache_name=cache_name,
                platform=platform,
                registry=registry,
                target=target,
                force=force,
                max_age=None if max_age is None else duration(max_age, "--max-age"),
                compression=compression,
                events=bars,
                service=server,
                build=build,
                system_packages=list(apt or ()),
                **conda_options,
            )
    except ImageBakingException as error:
        fail(error)
    if as_json:
        print_json(baked._asdict())
    else:
        typer.echo(f"image {baked.image}\npython_path {baked.python_path}")


def _conda_options(
    environment: Path | None,
    conda_lock: Path | None,
    channels: list[str] | None,
    cuda: str | None,
) -> dict[str, object]:
    """The conda keyword options of bake_image that were given."""
    given = {
        "environment": environment,
        "conda_lock": conda_lock,
        "channels": channels,
        "cuda": cuda,
    }
    return {name: value for name, value in given.items() if value}


def lock(
    pypi: PypiOption = None,
    requirements: RequirementsOption = None,
    conda: CondaOption = None,
    environment: EnvironmentOption = None,
    channel: ChannelOption = None,
    cuda: CudaOption = None,
    python: Annotated[str | None, typer.Option(help="Target Python, e.g. 3.11.")] = None,
    base: Annotated[str | None, typer.Option(help="Base image reference.")] = None,
    platform: Annotated[
        str | None, typer.Option(help="linux/amd64 (default) or linux/arm64.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the lock here (default: stdout).")
    ] = None,
) -> None:
    """Lock dependencies for the target without building: a conda spec as a conda-lock file
    (`bakery bake --conda-lock` bakes exactly it), a PyPI spec as the bakery's lock JSON."""
    from bakery.locking import lock_request
    from bakery.request import BakeRequest

    try:
        request = BakeRequest(
            pypi=_pypi(pypi) if pypi else None,
            requirements_file=requirements,
            conda=_conda(conda) if conda else None,
            environment=environment,
            channels=channel or None,
            cuda=cuda,
            python=python,
            base_image=base,
            platform=platform,
        )
        locked = lock_request(request, reporter=_reporter())
    except ImageBakingException as error:
        fail(error)
    if output is None:
        typer.echo(locked.text, nl=False)
    else:
        output.write_text(locked.text)
        count = len(locked.lock.conda) + len(locked.lock.packages)
        typer.echo(f"wrote {output} ({count} packages)")


def _reporter() -> "Reporter":
    from stagekit.progress import Reporter

    return Reporter("bakery.lock", log_line)


def inspect(
    image: Annotated[
        str, typer.Argument(help="A baked image reference (registry or oci-layout://).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the lock as JSON.")] = False,
    conda_lock: Annotated[
        bool, typer.Option("--conda-lock", help="Print a conda image's conda-lock file.")
    ] = False,
) -> None:
    """Show the packages locked into a baked image (read from its manifest annotations)."""
    from rich.table import Table

    from bakery.inspect import read_lock

    try:
        locked = read_lock(image)
        if conda_lock:
            from bakery.locking import lock_text

            if locked.kind != "conda":
                raise ImageBakingException(f"{image} is a {locked.kind} image: no conda lock.")
            typer.echo(lock_text(locked), nl=False)
            return
    except ImageBakingException as error:
        fail(error)
    if as_json:
        print_json(json.loads(locked.to_json()))
        return
    table = Table(
        "package", "version", "sha256", title=f"{image} ({locked.platform}, Python {locked.python})"
    )
    for conda_package in locked.conda:
        table.add_row(
            f"{conda_package.name} (conda)",
            f"{conda_package.version} {conda_package.build}",
            conda_package.sha256[:16],
        )
    for package in locked.packages:
        table.add_row(package.name, package.version, package.sha256[:16])
    console().print(table)


@base_app.command("build")
def base_build(
    platform: Annotated[str, typer.Option(help="linux/amd64 or linux/arm64.")] = "linux/amd64",
    force: Annotated[bool, typer.Option(help="Rebuild even if it exists.")] = False,
) -> None:
    """Build the embedded default base (Debian bookworm + python3 + the system libraries
    manylinux wheels link) with mmdebstrap."""
    from bakery.base.default import build_default_base

    try:
        reference = build_default_base(platform, force=force, logger=log_line)
    except ImageBakingException as error:
        fail(error)
    typer.echo(reference)


def register(app: typer.Typer) -> None:
    app.command()(bake)
    app.command()(lock)
    app.command()(inspect)
    app.add_typer(base_app, name="base")
