"""The `bakery` command line: one Typer app, one module per group of commands.

Start-up is part of speed: command modules import only typer and light value types at the
top; each command imports the stage it drives when it runs.
"""

import typer

from frontends.cli import admin, apps, bake, code, secrets, serve

app = typer.Typer(
    name="bakery",
    help="Bake Python dependency specs into OCI images, package code, and deploy apps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: rich's help formatter costs ~0.3 s of imports on every `--help`,
    # more than the rest of start-up together (bench/startup.py measures it).
    rich_markup_mode=None,
)
code.register(app)
bake.register(app)
apps.register(app)
secrets.register(app)
serve.register(app)
admin.register(app)
