"""The `bakery` command line: one Typer app, one module per group of commands."""

import typer

from bakery.cli import apps, bake, code, secrets

app = typer.Typer(
    name="bakery",
    help="Bake Python dependency specs into OCI images, package code, and deploy apps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
code.register(app)
bake.register(app)
apps.register(app)
secrets.register(app)
