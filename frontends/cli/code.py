"""`bakery package` and `bakery fetch`: the packager from the command line."""

from pathlib import Path
from typing import Annotated

import typer

from frontends.cli.output import fail, log_line, print_json, stage_bars
from packager.errors import CodePackagingException


def package(
    src: Annotated[list[Path], typer.Argument(help="Directories whose contents form the package.")],
    suffix: Annotated[
        list[str] | None,
        typer.Option("--suffix", help="File suffix to include (repeatable; replaces defaults)."),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Store URL: a directory, file:// or s3://bucket/prefix.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Package on this Bakery server (grpc://host:port or grpcs://host:port; "
            "default BAKERY_URL); it stores the package in its own store."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print {url, key} as JSON.")] = False,
) -> None:
    """Package source directories into a content-addressed tarball; print its key and URL."""
    from packager.package import package_code

    try:
        with stage_bars(quiet=as_json) as bars:
            packaged = package_code(
                [str(path) for path in src],
                suffixes=suffix or None,
                logger=None if as_json else log_line,
                store=store,
                service=server,
                events=bars,
            )
    except CodePackagingException as error:
        fail(error)
    if as_json:
        print_json(packaged._asdict())
    else:
        typer.echo(f"key {packaged.key}\nurl {packaged.url}")


def fetch(
    url: Annotated[str, typer.Argument(help="Package URL printed by `bakery package`.")],
    dest: Annotated[Path, typer.Argument(help="Directory to extract into (new or empty).")],
    key: Annotated[
        str | None, typer.Option(help="Expected key; defaults to the key in the URL's name.")
    ] = None,
) -> None:
    """Download a code package, verify its key, and extract it."""
    from packager.fetch import fetch_code

    expected = key or url.rsplit("/", 1)[-1].removesuffix(".tar.gz")
    try:
        fetched = fetch_code(url, expected, dest)
    except CodePackagingException as error:
        fail(error)
    typer.echo(f"extracted {expected} into {fetched}")


def register(app: typer.Typer) -> None:
    app.command()(package)
    app.command()(fetch)
