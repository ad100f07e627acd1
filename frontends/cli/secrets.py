"""`bakery secrets ...`: the local runtimes' secrets, which apps name in `secrets=[...]`.

Values go in and never come out: `ls` prints names only, so a terminal or a CI log never
shows a secret.
"""

import os
from typing import Annotated

import typer

from deployer.exceptions import DeployerException
from deployer.host.secrets import SecretStore
from frontends.cli.output import fail, fail_on, log_line
from frontends.cli.params import key_values

secrets_app = typer.Typer(
    help="Secrets for apps on the local runtimes: named sets of environment variables.",
    no_args_is_help=True,
)
NameArgument = Annotated[str, typer.Argument(help="The secret's name, e.g. my-api-keys.")]


@secrets_app.command("set")
def set_secret(
    name: NameArgument,
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE", help="The values, as KEY=VALUE pairs.", show_default=False
        ),
    ] = None,
    from_env: Annotated[
        list[str] | None,
        typer.Option(
            "--from-env", metavar="KEY", help="Take KEY's value from this environment (repeatable)."
        ),
    ] = None,
) -> None:
    """Create or replace a secret from KEY=VALUE pairs and variables of this environment."""
    values = dict(key_values(pairs or [], "KEY=VALUE"))
    unset = [key for key in from_env or [] if key not in os.environ]
    if unset:
        fail(f"--from-env: {', '.join(unset)} not set in this environment")
    values.update({key: os.environ[key] for key in from_env or []})
    if not values:
        raise typer.BadParameter(
            "give at least one KEY=VALUE or --from-env KEY", param_hint="KEY=VALUE"
        )
    with fail_on(DeployerException):
        SecretStore().put(name, values)
    typer.echo(f"secret {name!r} set: {', '.join(sorted(values))}")


@secrets_app.command("ls")
def list_secrets() -> None:
    """List the secrets' names (never their values)."""
    names = SecretStore().names()
    if not names:
        log_line("no secrets; create one with `bakery secrets set NAME KEY=VALUE ...`")
    for name in names:
        typer.echo(name)


@secrets_app.command("rm")
def remove_secret(name: NameArgument) -> None:
    """Delete a secret; apps that name it fail to deploy until it exists again."""
    store = SecretStore()
    if name not in store.names():
        fail(f"secret {name!r} does not exist; `bakery secrets ls` lists them")
    store.delete(name)
    typer.echo(f"deleted secret {name!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")
