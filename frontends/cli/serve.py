"""`bakery serve`: the Bakery gRPC service on this machine, until SIGTERM or Ctrl-C."""

from typing import Annotated

import typer

from frontends.service.slots import DEFAULT_MAX_QUEUE


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="gRPC port (0: any free one, printed).")] = 50051,
    max_builds: Annotated[
        int | None,
        typer.Option(min=1, help="Bakes that run at once (default: the number of cores)."),
    ] = None,
    max_queue: Annotated[
        int,
        typer.Option(
            min=0,
            help="Bakes that may wait for a build slot; beyond that a new bake is refused "
            "(RESOURCE_EXHAUSTED: retry later).",
        ),
    ] = DEFAULT_MAX_QUEUE,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds running bakes get to finish on shutdown.")
    ] = 30.0,
    http_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve HTTP on this port (0: any free one): /healthz, /readyz, /metrics, "
            "the status page at /, and Fast Bakery's POST /api/v1/bake."
        ),
    ] = None,
) -> None:
    """Serve bakes (and the rest of the Bakery API) over gRPC. Images go to the server's
    BAKERY_REGISTRY; clients set BAKERY_URL=grpc://HOST:PORT."""
    import os
    import signal
    import threading

    from frontends.cli.output import fail
    from frontends.service.server import ServerSettings, start

    builds = max_builds or os.cpu_count() or 1
    settings = ServerSettings(
        host=host, port=port, max_builds=builds, max_queue=max_queue, http_port=http_port
    )
    try:
        running = start(settings)
    except RuntimeError as error:  # grpc's "Failed to bind to address ..."
        fail(f"cannot listen on {host}:{port} ({error}); pick a free --port or stop what uses it")
    except OSError as error:  # the HTTP port's bind
        fail(
            f"cannot listen on {host}:{http_port} for HTTP ({error}); pick a free --http-port "
            "or stop what uses it"
        )
    typer.echo(f"bakery serve: listening on {host}:{running.port}", err=True)
    if running.http_port is not None:
        typer.echo(f"bakery serve: HTTP on http://{host}:{running.http_port}/", err=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    typer.echo(f"bakery serve: stopping (running bakes get {grace:g}s)", err=True)
    running.stop(grace)


def register(app: typer.Typer) -> None:
    app.command()(serve)
