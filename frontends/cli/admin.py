"""`bakery tokens create` and `bakery cache ls/prune/warm`: running a Bakery server.

Tokens are written straight into the server's state dir (run it on the server's machine:
whoever can write that dir owns the server anyway). The cache commands talk to a running
server over gRPC with an admin token from BAKERY_TOKEN. grpc is imported when a command runs.
"""

import datetime
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from frontends.cli.output import fail, print_json
from frontends.cli.params import duration

if TYPE_CHECKING:
    import grpc

tokens_app = typer.Typer(help="Tokens for a Bakery server.", no_args_is_help=True)
cache_app = typer.Typer(help="A Bakery server's image cache.", no_args_is_help=True)

_T = TypeVar("_T")

ServerOption = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="BAKERY_URL",
        help="The server: grpc://host:port (grpcs:// for TLS); default BAKERY_URL.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def seconds(text: str | None) -> int:
    """`7d`, `12h`, `30m`, `45s`, `2w` or plain seconds; None or empty: 0 (no bound)."""
    return duration(text) if text else 0


def create_token(
    name: Annotated[str, typer.Argument(help="Who the token is for, e.g. ci-main.")],
    scope: Annotated[
        str, typer.Option(help="bake (Bake, Watch, PackageCode) or admin (everything).")
    ],
    state_dir: Annotated[
        Path | None,
        typer.Option(help="The server's state dir (default: `bakery serve`'s)."),
    ] = None,
) -> None:
    """Create a token and print its secret once; the server stores only its hash."""
    from frontends.service.state import INDEX_FILE, SqliteIndex, StateError
    from stagekit.dirs import data_dir

    directory = state_dir or data_dir() / "service"
    try:
        secret = SqliteIndex(directory / INDEX_FILE).create_token(name, scope)  # type: ignore[arg-type]
    except StateError as error:
        fail(error)
    typer.echo(secret)
    typer.echo(
        f"Created {scope} token {name!r}: the line above is its only copy; "
        "callers send it as BAKERY_TOKEN.",
        err=True,
    )


@contextmanager
def _admin(server: str | None) -> Iterator[Any]:
    """An Admin stub for `server` that sends BAKERY_TOKEN as `authorization: Bearer`."""
    import grpc

    from stagekit.api.bakery.v1 import bakery_pb2_grpc

    if not server:
        fail("no server given: pass --server grpc://host:port or set BAKERY_URL")
    scheme, _, address = server.partition("://")
    if scheme not in ("grpc", "grpcs") or not address:
        fail(f"server {server!r} is not grpc://host:port or grpcs://host:port")
    if scheme == "grpcs":
        channel = grpc.secure_channel(address, grpc.ssl_channel_credentials())
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        yield bakery_pb2_grpc.AdminStub(channel)


def _metadata() -> tuple[tuple[str, str], ...]:
    token = os.environ.get("BAKERY_TOKEN")
    return (("authorization", f"Bearer {token}"),) if token else ()


def _call(call: Callable[..., _T], request: Any, timeout: float = 60) -> _T:
    """One call with the token and a deadline; a refused or failed call exits 1, saying why."""
    import grpc

    try:
        return call(request, timeout=timeout, metadata=_metadata())
    except grpc.RpcError as error:
        fail(_explain(error))


def _explain(error: "grpc.RpcError") -> str:
    import grpc

    code = error.code()
    details = error.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"the server is unreachable ({details}); check --server / BAKERY_URL"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"{details} (set BAKERY_TOKEN to an admin token)"
    return f"{code.name}: {details}"


def _when(unix: int) -> str:
    return datetime.datetime.fromtimestamp(unix, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _rows(entries: Any) -> list[dict[str, Any]]:
    keys = ("spec_id", "image", "platform", "size", "created", "last_used", "hits")
    return [{key: getattr(entry, key) for key in keys} for entry in entries]


def _show(entries: Any, as_json: bool) -> None:
    rows = _rows(entries)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['spec_id'][:12]}  {row['platform']:<12} hits {row['hits']:<5} "
            f"created {_when(row['created'])}  used {_when(row['last_used'])}  {row['image']}"
        )


def cache_ls(server: ServerOption = "", as_json: JsonOption = False) -> None:
    """List the server's cached images: spec id, platform, hits, created, last used, image."""
    from stagekit.api.bakery.v1 import bakery_pb2

    with _admin(server) as admin:
        reply = _call(admin.ListCache, bakery_pb2.ListCacheRequest())
    _show(reply.entries, as_json)
    if not as_json:
        typer.echo(f"{len(reply.entries)} cached image(s)", err=True)


def cache_prune(
    older_than: Annotated[
        str | None, typer.Option(help="Entries created longer ago than this, e.g. 30d.")
    ] = None,
    unused_for: Annotated[
        str | None, typer.Option(help="Entries not used for this long, e.g. 7d.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="List what would go; remove nothing.")] = False,
    server: ServerOption = "",
    as_json: JsonOption = False,
) -> None:
    """Remove old or unused images from the server's cache (index entries and their tags) and,
    with --unused-for, the uploaded file contents no package used for that long."""
    from stagekit.api.bakery.v1 import bakery_pb2

    bounds = {"older_than_seconds": seconds(older_than), "unused_for_seconds": seconds(unused_for)}
    if not any(bounds.values()):
        raise typer.BadParameter("give --older-than and/or --unused-for", param_hint="bounds")
    with _admin(server) as admin:
        reply = _call(admin.Prune, bakery_pb2.PruneRequest(dry_run=dry_run, **bounds), 600)
    _show(reply.removed, as_json)
    verb = "would remove" if dry_run else "removed"
    if not as_json:
        typer.echo(f"{verb} {len(reply.removed)} cached image(s)", err=True)
    typer.echo(
        f"{verb} {reply.contents_removed} uploaded file content(s) "
        f"({reply.content_bytes_removed / 1e6:.1f} MB)",
        err=True,
    )


_SPEC_KEYS = {
    "pypi",
    "requirements",
    "pyproject",
    "platforms",
    "pythons",
    "base_image",
    "cache_name",
}


def _warm_items(path: Path, refresh: bool) -> list[tuple[str, Any]]:
    """(label, WarmItem) per spec and Python of a warm file; a bad file exits 1 naming
    the spec and the key that is wrong."""
    import yaml

    from stagekit.api.bakery.v1 import bakery_pb2

    try:
        specs = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        fail(f"cannot read the warm file {path}: {error}")
    if isinstance(specs, dict):
        specs = specs.get("specs")
    if not isinstance(specs, list) or not specs:
        fail(f"{path} holds no specs: write a YAML list of specs (see `bakery cache warm --help`)")
    items = []
    for number, spec in enumerate(specs, 1):
        where = f"{path}, spec {number}"
        if not isinstance(spec, dict) or not spec.keys() <= _SPEC_KEYS:
            fail(f"{where}: a spec is a mapping with keys from {sorted(_SPEC_KEYS)}")
        request = bakery_pb2.BakeRequest(
            base_image=str(spec.get("base_image") or ""),
            cache_name=str(spec.get("cache_name") or ""),
        )
        sources = [key for key in ("pypi", "requirements", "pyproject") if key in spec]
        if len(sources) != 1:
            fail(f"{where}: give exactly one of pypi, requirements, pyproject")
        (source,) = sources
        if source == "pypi":
            if not isinstance(spec["pypi"], dict):
                fail(f"{where}: pypi is a mapping of package to version constraint ('' for any)")
            request.pypi.update({str(k): str(v or "") for k, v in spec["pypi"].items()})
            label = " ".join(request.pypi)
        else:
            file = path.parent / str(spec[source])
            try:
                content = file.read_text()
            except OSError as error:
                fail(f"{where}: cannot read {source} file {file}: {error}")
            getattr(request, source).CopyFrom(
                bakery_pb2.SourceFile(path=file.name, content=content)
            )
            label = str(spec[source])
        platforms = [str(p) for p in spec.get("platforms") or []]
        for python in [str(p) for p in spec.get("pythons") or []] or [""]:
            item = bakery_pb2.WarmItem(platforms=platforms, refresh=refresh)
            item.request.CopyFrom(request)
            item.request.python = python
            items.append((f"{label}" + (f" (python {python})" if python else ""), item))
    return items


def cache_warm(
    file: Annotated[Path, typer.Argument(help="A YAML list of specs.")],
    refresh: Annotated[
        bool,
        typer.Option(
            help="Resolve every unpinned spec again now: a changed lock is baked (its tag "
            "moves), an unchanged one keeps its image."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds the whole warm may take.")] = 3600,
    server: ServerOption = "",
) -> None:
    """Bake every spec of FILE on the server, on each of its platforms and Pythons; print
    built / hit / failed per bake (and "resolved again" where --refresh or the spec's age
    made the server resolve it again); exit 1 if any failed.

    FILE is a YAML list; each spec has one of `pypi: {flask: ">=2"}`, `requirements: FILE`
    or `pyproject: FILE` (paths relative to FILE; `-r` includes are not sent yet), and
    optionally `platforms: [linux/amd64, linux/arm64]`, `pythons: ["3.11"]`, `base_image`,
    `cache_name`.
    """
    import grpc

    from stagekit.api.bakery.v1 import bakery_pb2

    items = _warm_items(file, refresh)
    labels = {item.request.SerializeToString(deterministic=True): label for label, item in items}
    failed = 0
    with _admin(server) as admin:
        try:
            answers = admin.Warm(
                iter(item for _, item in items), timeout=timeout, metadata=_metadata()
            )
            for answer in answers:
                label = labels.get(answer.request.SerializeToString(deterministic=True), "?")
                if answer.HasField("error"):
                    failed += 1
                    typer.echo(f"failed  {label}  {answer.platform}: {answer.error.message}")
                    continue
                outcome = bakery_pb2.Outcome.Name(answer.result.outcome)
                outcome = outcome.removeprefix("OUTCOME_").lower()
                again = "  (resolved again)" if answer.result.refreshed else ""
                typer.echo(f"{outcome:<7} {label}  {answer.platform}  {answer.result.image}{again}")
        except grpc.RpcError as error:
            fail(_explain(error))
    if failed:
        fail(f"{failed} bake(s) failed")


def register(app: typer.Typer) -> None:
    tokens_app.command("create")(create_token)
    cache_app.command("ls")(cache_ls)
    cache_app.command("prune")(cache_prune)
    cache_app.command("warm")(cache_warm)
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(cache_app, name="cache")
