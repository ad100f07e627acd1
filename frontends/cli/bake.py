"""`bakery bake`, `bakery inspect` and `bakery base build`: the bakery from the command line."""

import json
from pathlib import Path
from typing import Annotated

import typer

from bakery.errors import ImageBakingException, quoted
from frontends.cli.output import console, fail, log_line, print_json, stage_bars
from frontends.cli.params import duration

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


def bake(
    pypi: Annotated[
        list[str] | None,
        typer.Option("--pypi", help="A requirement, e.g. 'flask>=2' (repeatable)."),
    ] = None,
    requirements: Annotated[
        Path | None, typer.Option("-r", "--requirements", help="A requirements.txt file.")
    ] = None,
    pyproject: Annotated[
        Path | None, typer.Option("--pyproject", help="A pyproject.toml ([project].dependencies).")
    ] = None,
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
            baked = bake_image(
                pypi=_pypi(pypi) if pypi else None,
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
            )
    except ImageBakingException as error:
        fail(error)
    if as_json:
        print_json(baked._asdict())
    else:
        typer.echo(f"image {baked.image}\npython_path {baked.python_path}")


def inspect(
    image: Annotated[
        str, typer.Argument(help="A baked image reference (registry or oci-layout://).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the lock as JSON.")] = False,
) -> None:
    """Show the packages locked into a baked image (read from its manifest annotations)."""
    from rich.table import Table

    from bakery.inspect import read_lock

    try:
        locked = read_lock(image)
    except ImageBakingException as error:
        fail(error)
    if as_json:
        print_json(json.loads(locked.to_json()))
        return
    table = Table(
        "package", "version", "sha256", title=f"{image} ({locked.platform}, Python {locked.python})"
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
    app.command()(inspect)
    app.add_typer(base_app, name="base")
