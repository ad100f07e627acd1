"""`bakery deploy` and `bakery apps ...`: deploy a spec file, then look after the apps."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bakery.errors import ImageBakingException
from deployer.exceptions import AppNotFoundException, DeployerException
from deployer.orchestration.readiness import Condition
from deployer.runtimes import RuntimeKind, default_runtime, runtime_named
from frontends.cli.output import console, fail, fail_on, log_line, print_json, stage_bars
from frontends.cli.params import key_values
from packager.errors import CodePackagingException
from stagekit.progress import Progress, unit_of

if TYPE_CHECKING:  # the app model and runtimes load when a command runs, not at start-up
    from deployer.orchestration.deployed import DeployedApp
    from deployer.runtimes.base import Runtime

apps_app = typer.Typer(
    help="Deployed apps: list, inspect, read logs, scale to zero, delete.", no_args_is_help=True
)

RuntimeOption = Annotated[
    RuntimeKind | None,
    typer.Option(
        help="Where the apps run; default BAKERY_RUNTIME, else docker if an engine answers, "
        "else process.",
    ),
]
NameArgument = Annotated[str, typer.Argument(help="The app's name.")]


def _runtime(kind: str | None) -> "Runtime":
    with fail_on(DeployerException):
        return runtime_named(kind) if kind else default_runtime()


def _app(name: str, kind: str | None) -> "DeployedApp":
    """The deployed app called `name`; an unknown name ends the command with a message."""
    from deployer.orchestration.app import AppDeployer

    runtime = _runtime(kind)
    try:
        return AppDeployer.get(name, runtime)
    except AppNotFoundException:
        fail(
            f"app {name!r} is not deployed on the {runtime.kind} runtime; "
            "`bakery apps ls` lists the deployed apps"
        )


def _summary(app: "DeployedApp") -> dict[str, Any]:
    """One `apps ls` row, read from a single `info()`."""
    info = app.info()
    return {
        "name": app.name,
        "version": app.deployed_version,
        "state": info["status"]["state"],
        "runtime": info["runtime"],
        "public_url": info["status"]["public_url"],
        "tags": info["metadata"]["tags"],
    }


def deploy(
    file: Annotated[
        Path, typer.Argument(help="A YAML deployment spec: one document per app, split by ---.")
    ],
    runtime: RuntimeOption = None,
    readiness: Annotated[
        Condition, typer.Option(help="When an app counts as deployed.")
    ] = "at_least_one_running",
    max_wait: Annotated[
        float, typer.Option(help="Seconds each app may take to become ready.")
    ] = 600,
    poll_interval: Annotated[float, typer.Option(help="Seconds between readiness checks.")] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print [{name, version, public_url}, ...].")
    ] = False,
) -> None:
    """Package, bake and deploy every app of a spec file, dependencies first."""
    from deployer.orchestration.spec_deploy import deploy_spec_file

    chosen = _runtime(runtime)
    with (
        fail_on(DeployerException, CodePackagingException, ImageBakingException),
        stage_bars(quiet=as_json) as bars,
    ):
        apps = deploy_spec_file(
            file,
            runtime=chosen,
            logger_fn=(lambda _: None) if as_json else log_line,
            progress=lambda stage, done, total: bars(Progress(stage, unit_of(stage), done, total)),
            readiness_condition=readiness,
            max_wait_time=max_wait,
            readiness_wait_time=poll_interval,
        )
        deployed = [
            {"name": app.name, "version": app.deployed_version, "public_url": app.public_url}
            for app in apps.values()
        ]
    if as_json:
        print_json(deployed)
        return
    for row in deployed:
        typer.echo(f"{row['name']} version {row['version']} at {row['public_url']}")


@apps_app.command("ls")
def list_apps(
    project: Annotated[str | None, typer.Option(help="Only apps of this project.")] = None,
    branch: Annotated[str | None, typer.Option(help="Only apps of this branch.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            metavar="KEY=VALUE",
            help="Only apps with this tag, as key=value (repeatable: all).",
        ),
    ] = None,
    runtime: RuntimeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the apps as JSON.")] = False,
) -> None:
    """List deployed apps: name, version, state, runtime, public URL and tags."""
    from rich.table import Table

    from deployer.orchestration.app import AppDeployer

    tags = [{key: value} for key, value in key_values(tag or [], "--tag")]
    chosen = _runtime(runtime)
    with fail_on(DeployerException):
        apps = AppDeployer.list_deployments(
            project=project, branch=branch, tags=tags, runtime=chosen
        )
        rows = [_summary(app) for app in apps]
    if as_json:
        print_json(rows)
        return
    if not rows:
        log_line(f"no matching apps on the {chosen.kind} runtime")
        return
    table = Table()
    for header in ("name", "version", "state", "runtime", "public URL", "tags"):
        table.add_column(header, overflow="fold")  # names and URLs stay whole, if wrapped
    for row in rows:
        table.add_row(
            row["name"],
            row["version"] or "-",
            row["state"],
            row["runtime"],
            row["public_url"] or "-",
            "\n".join(f"{key}={value}" for key, value in row["tags"].items()),
        )
    console().print(table)


@apps_app.command("inspect")
def inspect_app(name: NameArgument, runtime: RuntimeOption = None) -> None:
    """Print everything known about an app as JSON: its spec, status and metadata."""
    app = _app(name, runtime)
    with fail_on(DeployerException):
        print_json(app.info())


@apps_app.command("logs")
def logs(
    name: NameArgument,
    previous: Annotated[
        bool, typer.Option(help="Lines from before each worker's current run (e.g. a crash).")
    ] = False,
    runtime: RuntimeOption = None,
) -> None:
    """Print the serving version's log lines, each prefixed with its worker's id."""
    app = _app(name, runtime)
    with fail_on(DeployerException):
        by_worker = app.logs(previous)
    for worker_id, lines in by_worker.items():
        for line in lines:
            typer.echo(f"{worker_id} | {line}")


@apps_app.command("scale-to-zero")
def scale_to_zero(name: NameArgument, runtime: RuntimeOption = None) -> None:
    """Stop every worker but keep the app, its URL and logs; deploying it again scales it up."""
    app = _app(name, runtime)
    with fail_on(DeployerException):
        app.scale_to_zero()
    typer.echo(f"scaled app {name!r} to zero")


@apps_app.command("delete")
def delete(name: NameArgument, runtime: RuntimeOption = None) -> None:
    """Remove an app: its workers of every version, its URL and its record."""
    app = _app(name, runtime)
    with fail_on(DeployerException):
        app.delete()
    typer.echo(f"deleted app {name!r}")


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.add_typer(apps_app, name="apps")
