"""The `arktos` command line."""

from __future__ import annotations

import typer

import arktos_lite

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def root() -> None:
    """arktos-lite: a Kubernetes-compatible cluster with Arktos multi-tenancy."""


@app.command()
def version() -> None:
    """Print the arktos-lite version."""
    typer.echo(arktos_lite.__version__)


def main() -> None:
    app()
