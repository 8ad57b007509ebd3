"""etcd benchmarks: the etcd store beside the SQLite store, same workload, one run.

`main(quick=...)` is the group's entry point (`python -m bench etcd`); it runs the
sections in `SECTIONS` in order, each a function `(Context) -> None` that prints its
figures.

* a. Store writes/s: creates of distinct keys with 300-byte values from 1, 16 and 64
  concurrent writer tasks, through the `Backend` protocol, on a fresh SQLite file and on a
  fresh key prefix of one local etcd (one member, its data in the same temporary
  directory, so on the same disk). Median of the runs.
* b. Store list latency: one `list` of a prefix holding 1,000 and 10,000 keys, and the
  same 10,000 read in pages of 500. Median of the runs.
* c. API creates/s of `arktos up --partitions 1` against `--partitions 2`, separate
  processes (`bench.partitions`).

etcd is started by the benchmark (`storage.LocalEtcd`) and stopped at the end; without an
`etcd` binary the etcd figures are left out, saying so. Progress goes to stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable

import trio

from arktos_lite import storage
from bench import partitions
from bench._report import leaves as _leaves, note as _note, row as _row, title as _title

VALUE_SIZE = 300
WRITER_COUNTS = (1, 16, 64)
LIST_SIZES = (1_000, 10_000)
LIST_PAGE = 500


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    name: str
    repetitions: int
    writes: int
    write_seconds: float
    list_runs: int


FULL = Scale(name="full", repetitions=3, writes=5_000, write_seconds=2.0, list_runs=15)
QUICK = Scale(name="quick", repetitions=1, writes=1_000, write_seconds=0.5, list_runs=3)


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What every section gets: the scale, a scratch directory and the running etcd."""

    scale: Scale
    workdir: pathlib.Path
    etcd: storage.LocalEtcd | None

    def backends(self) -> list[tuple[str, Callable[[], str]]]:
        """(name, fresh store URL) of every backend under comparison."""
        found: list[tuple[str, Callable[[], str]]] = [("sqlite", self._sqlite_url)]
        if self.etcd is not None:
            found.append(("etcd", self._etcd_url))
        return found

    def _sqlite_url(self) -> str:
        return f"sqlite:///{self.workdir / f'{uuid.uuid4().hex}.db'}"

    def _etcd_url(self) -> str:
        assert self.etcd is not None
        return f"{self.etcd.url}/bench-{uuid.uuid4().hex}"


def main(*, quick: bool) -> None:
    scale = QUICK if quick else FULL
    failed = []
    with tempfile.TemporaryDirectory(prefix="arktos-bench-etcd-") as tmp:
        workdir = pathlib.Path(tmp)
        etcd = _start_etcd(workdir)
        try:
            context = Context(scale=scale, workdir=workdir, etcd=etcd)
            _print_header(context)
            for name, section in SECTIONS:
                # One broken section must not hide the figures of the others.
                try:
                    section(context)
                except Exception as error:
                    failed.append(name)
                    traceback.print_exc()
                    _title(f"{name}: FAILED")
                    for leaf in _leaves(error):
                        _note(leaf)
        finally:
            if etcd is not None:
                etcd.stop()
    if failed:
        raise SystemExit(f"etcd benchmarks failed: {', '.join(failed)}")


def _start_etcd(workdir: pathlib.Path) -> storage.LocalEtcd | None:
    if shutil.which("etcd") is None:
        return None
    etcd = storage.LocalEtcd(workdir / "etcd")
    etcd.start()
    return etcd


def _print_header(context: Context) -> None:
    print(f"arktos-lite etcd benchmarks ({context.scale.name} run)", flush=True)
    if context.etcd is None:
        _note("etcd is not installed (apt-get install etcd-server): SQLite figures only")
    else:
        version = subprocess.run(
            ["etcd", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        _note(f"{version[0] if version else 'etcd'}, one member on loopback, fsync on")
    _note(f"data in {context.workdir}; {VALUE_SIZE}-byte values; figures are medians")


def _progress(text: str) -> None:
    print(f"[bench etcd] {text}", file=sys.stderr, flush=True)


def _value(number: int) -> bytes:
    head = f'{{"n":{number},"data":"'.encode()
    return head + b"x" * (VALUE_SIZE - len(head) - 2) + b'"}'


async def _create_many(
    store: storage.Backend, prefix: str, count: int, *, writers: int, deadline: float
) -> int:
    """Create `prefix`/0.. from `writers` concurrent tasks until `count` or `deadline`."""
    next_index = 0
    done = 0

    async def writer() -> None:
        nonlocal next_index, done
        while next_index < count and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            await store.create(f"{prefix}{index:08d}", _value(index))
            done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(writers):
            nursery.start_soon(writer)
    return done


# a. Writes


async def _write_rate(url: str, *, writers: int, scale: Scale) -> float:
    async with storage.open_store(url) as store:
        start = time.perf_counter()
        done = await _create_many(
            store,
            "/bench/writes/",
            scale.writes,
            writers=writers,
            deadline=start + scale.write_seconds,
        )
        return done / (time.perf_counter() - start)


def store_writes(context: Context) -> None:
    scale = context.scale
    rates: dict[tuple[str, int], list[float]] = {}
    # Interleaved, so that a noisy neighbour hurts every configuration alike.
    for repetition in range(scale.repetitions):
        _progress(f"writes: repetition {repetition + 1}/{scale.repetitions}")
        for name, fresh_url in context.backends():
            for writers in WRITER_COUNTS:
                run = functools.partial(_write_rate, fresh_url(), writers=writers, scale=scale)
                rates.setdefault((name, writers), []).append(trio.run(run))

    _title("a. Store writes per second (acknowledged creates)")
    _note(
        f"median of {scale.repetitions} run(s); each {scale.writes:,} creates or "
        f"{scale.write_seconds:g} s, whichever comes first"
    )
    for writers in WRITER_COUNTS:
        medians = {}
        for name, _ in context.backends():
            runs = rates[(name, writers)]
            medians[name] = statistics.median(runs)
            detail = "runs: " + ", ".join(f"{rate:,.0f}" for rate in runs)
            _row(f"{name}, {writers} writer task(s)", f"{medians[name]:,.0f}/s", "", detail)
        if "etcd" in medians:
            _row(
                f"etcd / sqlite, {writers} writer task(s)",
                f"{medians['etcd'] / medians['sqlite']:.2f}x",
            )


# b. Lists


async def _list_latencies(url: str, *, size: int, scale: Scale) -> dict[str, list[float]]:
    prefix = "/bench/list/"
    async with storage.open_store(url) as store:
        loaded = await _create_many(store, prefix, size, writers=64, deadline=float("inf"))
        assert loaded == size
        whole: list[float] = []
        paged: list[float] = []
        for _ in range(scale.list_runs):
            start = time.perf_counter()
            page = await store.list(prefix)
            whole.append(time.perf_counter() - start)
            assert len(page.items) == size
            if size > LIST_PAGE:
                start = time.perf_counter()
                count = 0
                page = await store.list(prefix, limit=LIST_PAGE)
                count += len(page.items)
                while page.continue_key is not None:
                    page = await store.list(
                        prefix,
                        revision=page.revision,
                        limit=LIST_PAGE,
                        continue_key=page.continue_key,
                    )
                    count += len(page.items)
                paged.append(time.perf_counter() - start)
                assert count == size
        return {"whole": whole, "paged": paged}


def store_lists(context: Context) -> None:
    scale = context.scale
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    for name, fresh_url in context.backends():
        for size in LIST_SIZES:
            _progress(f"lists: {name}, {size:,} keys")
            run = functools.partial(_list_latencies, fresh_url(), size=size, scale=scale)
            results[(name, size)] = trio.run(run)

    _title("b. Store list latency")
    _note(f"median of {scale.list_runs} lists of a prefix holding exactly that many keys")
    for size in LIST_SIZES:
        medians = {}
        for name, _ in context.backends():
            medians[name] = statistics.median(results[(name, size)]["whole"])
            _row(f"{name}, list of {size:,} keys (one call)", _ms(medians[name]))
        if "etcd" in medians:
            _row(f"etcd / sqlite, {size:,} keys", f"{medians['etcd'] / medians['sqlite']:.2f}x")
    size = max(LIST_SIZES)
    for name, _ in context.backends():
        paged = results[(name, size)]["paged"]
        _row(f"{name}, {size:,} keys in pages of {LIST_PAGE}", _ms(statistics.median(paged)))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def api_partitions(context: Context) -> None:
    seconds, runs = (2, 1) if context.scale is QUICK else (5, 3)
    partitions.api_creates(context.workdir, seconds=seconds, runs=runs)


SECTIONS: list[tuple[str, Callable[[Context], None]]] = [
    ("a. store writes", store_writes),
    ("b. store lists", store_lists),
    ("c. API creates, 1 vs 2 partitions", api_partitions),
]
