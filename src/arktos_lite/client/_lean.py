"""Keeps httpx's command-line tool out of every process that imports the client.

On import, httpx loads `httpx._main` (its `httpx` command) whenever rich, pygments and
click are installed, which typer brings along: about 70 modules and 6 MB of memory in
every component, for a command arktos never runs. Marking the module as absent makes
httpx fall back to its stub; this module must be imported before httpx is.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
