"""The `arktos` command line: `arktos up`, one command per component, and tools."""

from __future__ import annotations

import gc
import logging
import pathlib
import signal
import sys
from typing import Annotated

import trio
import typer

import arktos_lite
from arktos_lite import cluster

app = typer.Typer(no_args_is_help=True, add_completion=False)

DataDir = Annotated[
    pathlib.Path,
    typer.Option(help="Holds the store, certificates and the admin kubeconfig."),
]
Port = Annotated[int, typer.Option(help="HTTPS port of the API server (0: any free port).")]
Host = Annotated[str, typer.Option(help="Address the API server listens on.")]
Store = Annotated[
    str | None,
    typer.Option(help="Store URL (default: sqlite:///DATA_DIR/state.db)."),
]
TokenFile = Annotated[
    pathlib.Path | None,
    typer.Option(
        help='Extra users, lines `token,user,uid,"group1,group2",tenant` (empty tenant: system).',
        exists=True,
        dir_okay=False,
    ),
]
PlainHttp = Annotated[
    bool, typer.Option(help="Serve plain HTTP instead of HTTPS (tokens then travel in clear).")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")]


@app.callback()
def root() -> None:
    """arktos-lite: a Kubernetes-compatible cluster with Arktos multi-tenancy."""


@app.command()
def version() -> None:
    """Print the arktos-lite version."""
    typer.echo(arktos_lite.__version__)


@app.command()
def up(
    data_dir: DataDir = cluster.DEFAULT_DATA_DIR,
    port: Port = 6443,
    host: Host = "127.0.0.1",
    store: Store = None,
    token_auth_file: TokenFile = None,
    plain_http: PlainHttp = False,
    verbose: Verbose = False,
) -> None:
    """Start the whole cluster in this process; Ctrl-C stops it cleanly."""
    _run_cluster(
        cluster.ClusterOptions(
            data_dir=data_dir,
            host=host,
            port=port,
            store=store,
            token_auth_file=token_auth_file,
            plain_http=plain_http,
        ),
        verbose=verbose,
    )


# Until the other components land, the API server alone is all of `arktos up`.
app.command(
    "apiserver",
    help="Run the API server alone (other components connect to it with a kubeconfig).",
)(up)


def _run_cluster(options: cluster.ClusterOptions, *, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("hypercorn").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    # A list decodes thousands of objects at once; with the default thresholds the
    # collector ran over and over during it (a 10,000-pod list took 2-3x longer).
    gc.set_threshold(50_000, 20, 100)
    trio.run(_serve, options)


async def _serve(options: cluster.ClusterOptions) -> None:
    running = cluster.Cluster(options)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signals() -> None:
                async for _signal in signals:
                    if running.stopping:
                        nursery.cancel_scope.cancel()  # a second signal: stop now
                    running.stop()

            async def run(*, task_status: trio.TaskStatus[cluster.Started]) -> None:
                await running.run(task_status=task_status)
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop_on_signals)
            started = await nursery.start(run)
            gc.freeze()  # what start-up allocated lives on; keep it out of collections
            print(
                f"arktos-lite is ready at {started.url}; kubeconfig: {started.kubeconfig}",
                flush=True,
            )


def main() -> None:
    app()
