"""Storage benchmarks: write throughput, list latency, watch latency and database size.

Figures, not tests: each one is printed beside its goal with PASS or MISS. The write
baseline is raw stdlib sqlite3, measured in the same run on the same disk. Stores live in a
fresh temporary directory (set TMPDIR to measure another disk); progress goes to stderr so
that stdout holds only the tables.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import pathlib
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable

import trio

from arktos_lite import storage
from bench._report import (
    goal as _goal,
    leaves as _leaves,
    note as _note,
    percentile as _percentile,
    row as _row,
    title as _title,
)

VALUE_SIZE = 300
WRITER_COUNTS = (1, 16, 64)


@dataclasses.dataclass(frozen=True, slots=True)
class Scale:
    """How much work each benchmark does: `FULL` by default, `QUICK` (~10x less) to smoke-test."""

    name: str
    repetitions: int
    writes: int
    write_seconds: float
    list_keys: int
    list_prefixes: int
    list_revisions: tuple[int, ...]
    list_revisions_reduced: tuple[int, ...]
    list_runs: int
    load_budget: float
    load_writers: int
    watchers: int
    watch_rate: float
    watch_seconds: float
    size_keys: int
    size_updates: int
    size_writers: int


FULL = Scale(
    name="full",
    repetitions=5,
    writes=20_000,
    write_seconds=2.0,
    list_keys=100_000,
    list_prefixes=10,
    list_revisions=(1, 5, 10),
    list_revisions_reduced=(1, 2, 3),
    list_runs=10,
    load_budget=180.0,
    load_writers=128,
    watchers=100,
    watch_rate=1_000.0,
    watch_seconds=5.0,
    size_keys=1_000,
    size_updates=100_000,
    size_writers=64,
)

QUICK = dataclasses.replace(
    FULL,
    name="quick",
    repetitions=3,
    writes=2_000,
    write_seconds=0.3,
    list_keys=10_000,
    list_runs=5,
    load_budget=18.0,
    watch_seconds=0.5,
    size_updates=10_000,
)


def main(*, quick: bool) -> None:
    scale = QUICK if quick else FULL
    began = time.perf_counter()
    sections: list[tuple[str, Callable[[Scale, pathlib.Path], None]]] = [
        ("a. writes", _bench_writes),
        ("b. list", lambda scale, workdir: trio.run(_bench_list, scale, workdir)),
        ("c. watch", lambda scale, workdir: trio.run(_bench_watch, scale, workdir)),
        ("d. size", lambda scale, workdir: trio.run(_bench_size, scale, workdir)),
    ]
    failed = []
    with tempfile.TemporaryDirectory(prefix="arktos-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        _print_header(scale, workdir)
        for name, section in sections:
            # One broken section must not hide the figures of the others.
            try:
                section(scale, workdir)
            except Exception as error:
                failed.append(name)
                traceback.print_exc()
                _title(f"{name}: FAILED")
                for leaf in _leaves(error):
                    _note(leaf)
                _note("(tracebacks on stderr)")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _title("Process")
    _row("peak RSS (ru_maxrss)", f"{usage.ru_maxrss / 1024:,.0f} MB")
    _row("RSS now", f"{_current_rss() / 2**20:,.0f} MB")
    _row("storage group wall time", f"{time.perf_counter() - began:,.0f} s")
    if failed:
        raise SystemExit(f"storage benchmarks failed: {', '.join(failed)}")


# Output


def _progress(text: str) -> None:
    print(f"[bench storage] {text}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def _mb(size: int) -> str:
    return f"{size / 2**20:,.2f} MB"


def _print_header(scale: Scale, workdir: pathlib.Path) -> None:
    print(f"arktos-lite storage benchmarks ({scale.name} run)", flush=True)
    _note(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, "
        f"trio {trio.__version__}, {os.cpu_count()} CPUs"
    )
    _note(f"stores in {workdir} ({_filesystem(workdir)})")


def _filesystem(path: pathlib.Path) -> str:
    """The filesystem type `path` is on, from /proc/mounts ("unknown" elsewhere)."""
    try:
        mounts = pathlib.Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown filesystem"
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return f"{kind} mounted on {best}"


def _current_rss() -> int:
    try:
        pages = int(pathlib.Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


# Helpers


def _url(path: pathlib.Path) -> str:
    return f"sqlite:///{path}"


def _value(number: int) -> bytes:
    """A distinct value of exactly VALUE_SIZE bytes (about one small Kubernetes object)."""
    head = f'{{"n":{number},"data":"'.encode()
    return head + b"x" * (VALUE_SIZE - len(head) - 2) + b'"}'


def _files(path: pathlib.Path) -> tuple[int, int]:
    """Sizes in bytes of the database file and of its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return (
        path.stat().st_size if path.exists() else 0,
        wal.stat().st_size if wal.exists() else 0,
    )


def _remove(path: pathlib.Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


async def _write_all(
    store: storage.Backend,
    count: int,
    write: Callable[[storage.Backend, int], Awaitable[object]],
    *,
    writers: int,
    deadline: float = math.inf,
) -> int:
    """`write(store, i)` for i in 0..count-1 from `writers` concurrent tasks; how many ran.

    Stops early at `deadline` (a `time.perf_counter()` value).
    """
    next_index = 0
    done = 0

    async def writer() -> None:
        nonlocal next_index, done
        while next_index < count and time.perf_counter() < deadline:
            index = next_index
            next_index += 1
            await write(store, index)
            done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(writers):
            nursery.start_soon(writer)
    return done


# a. Acknowledged writes per second


async def _store_write_rate(url: str, *, writers: int, total: int, seconds: float) -> float:
    async def create(store: storage.Backend, index: int) -> None:
        await store.create(f"/bench/writes/{index:08d}", _value(index))

    async with storage.open_store(url) as store:
        start = time.perf_counter()
        done = await _write_all(store, total, create, writers=writers, deadline=start + seconds)
        elapsed = time.perf_counter() - start
    return done / elapsed


def _raw_sqlite_write_rate(path: pathlib.Path, *, total: int, seconds: float) -> float:
    """One thread, WAL, synchronous=FULL, one INSERT + COMMIT per write: what a user could do."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        start = time.perf_counter()
        deadline = start + seconds
        done = 0
        while done < total and time.perf_counter() < deadline:
            connection.execute("BEGIN")
            connection.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?)",
                (f"/bench/writes/{done:08d}", _value(done)),
            )
            connection.execute("COMMIT")
            done += 1
        return done / (time.perf_counter() - start)
    finally:
        connection.close()


def _bench_writes(scale: Scale, workdir: pathlib.Path) -> None:
    baseline: list[float] = []
    rates: dict[int, list[float]] = {writers: [] for writers in WRITER_COUNTS}
    # Interleaved so that a noisy neighbour hurts every configuration alike.
    for repetition in range(scale.repetitions):
        _progress(f"writes: repetition {repetition + 1}/{scale.repetitions}")
        path = workdir / "raw.db"
        baseline.append(
            _raw_sqlite_write_rate(path, total=scale.writes, seconds=scale.write_seconds)
        )
        _remove(path)
        for writers in WRITER_COUNTS:
            path = workdir / f"writes-{writers}.db"
            run = functools.partial(
                _store_write_rate,
                _url(path),
                writers=writers,
                total=scale.writes,
                seconds=scale.write_seconds,
            )
            rates[writers].append(trio.run(run))
            _remove(path)

    def runs(values: list[float]) -> str:
        return "runs: " + ", ".join(f"{value:,.0f}" for value in values)

    _title("a. Acknowledged writes per second")
    _note(
        f"creates of distinct keys, {VALUE_SIZE}-byte values, fresh file store, "
        "auto-compaction on (defaults)"
    )
    _note(
        f"median of {scale.repetitions} runs; each run {scale.writes:,} writes "
        f"or {scale.write_seconds:g} s, whichever comes first"
    )
    raw = statistics.median(baseline)
    _row(
        "raw sqlite3 (1 thread, WAL, sync=FULL, commit per write)",
        f"{raw:,.0f}/s",
        detail=runs(baseline),
    )
    for writers in WRITER_COUNTS:
        rate = statistics.median(rates[writers])
        goal = _goal(rate >= 5_000, ">= 5,000/s") if writers == 64 else ""
        label = f"arktos-lite store, {writers} writer task{'s' if writers > 1 else ''}"
        _row(label, f"{rate:,.0f}/s", goal, runs(rates[writers]))
    ratio = statistics.median(rates[64]) / raw
    _row("64 writer tasks / raw sqlite3", f"{ratio:,.2f}x", _goal(ratio >= 3, ">= 3x"))


# b. List latency as history grows


async def _bench_list(scale: Scale, workdir: pathlib.Path) -> None:
    path = workdir / "list.db"
    per_prefix = scale.list_keys // scale.list_prefixes
    keys = [
        f"/registry/pods/system/ns-{prefix:02d}/pod-{number:06d}"
        for number in range(per_prefix)
        for prefix in range(scale.list_prefixes)
    ]
    listed = "/registry/pods/system/ns-03/"
    targets = scale.list_revisions
    reduced_because = ""
    loaded = 0
    load_seconds = 0.0
    figures: list[tuple[int, float, float, int, int]] = []

    async def write(store: storage.Backend, index: int) -> None:
        key = keys[index]
        if loaded == 0:
            await store.create(key, _value(index))
        else:
            await store.update(key, _value(loaded * len(keys) + index))

    async with storage.open_store(_url(path), storage.Options(auto_compact=False)) as store:
        while loaded < targets[-1]:
            _progress(f"list: loading revision {loaded + 1}/{targets[-1]} of {len(keys):,} keys")
            start = time.perf_counter()
            await _write_all(store, len(keys), write, writers=scale.load_writers)
            load_seconds += time.perf_counter() - start
            loaded += 1
            projected = load_seconds * targets[-1]
            if loaded == 1 and projected > scale.load_budget:
                reduced_because = (
                    f"loading {targets[-1]} revisions per key would take ~{projected:,.0f} s"
                    f" (> {scale.load_budget:,.0f} s budget)"
                )
                targets = scale.list_revisions_reduced
            if loaded not in targets:
                continue
            full = await _median_seconds(lambda: store.list(listed), runs=scale.list_runs)
            page = await _median_seconds(
                lambda: store.list(listed, limit=500), runs=scale.list_runs
            )
            count = len((await store.list(listed)).items)
            figures.append((loaded, full, page, count, sum(_files(path))))

    _title("b. List latency as history grows")
    _note(
        f"{per_prefix:,} keys under one prefix in a store of {len(keys):,} keys, "
        f"auto_compact=False; median of {scale.list_runs} lists"
    )
    if reduced_because:
        _note(f"SCALED DOWN to {targets[-1]} revisions per key: {reduced_because}")
    _note(
        f"load: {loaded * len(keys):,} writes in {load_seconds:,.0f} s "
        f"({loaded * len(keys) / load_seconds:,.0f}/s with {scale.load_writers} writer tasks)"
    )
    for revisions, full, page, count, size in figures:
        label = f"list all, {revisions:>2} revision(s)/key, db+wal {_mb(size)}"
        detail = f"{count:,} items; first page of 500: {_ms(page)}"
        _row(label, _ms(full), _goal(full < 0.1, "< 100 ms"), detail)
    growth = figures[-1][1] / figures[0][1]
    _row(
        f"list at {figures[-1][0]} vs at {figures[0][0]} revision(s)/key",
        f"{growth:,.2f}x",
        _goal(growth <= 1.5, "flat, <= 1.5x"),
    )


async def _median_seconds(call: Callable[[], Awaitable[object]], *, runs: int) -> float:
    await call()  # warm the cache: the figure is the steady state
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# c. Watch delivery latency


async def _bench_watch(scale: Scale, workdir: pathlib.Path) -> None:
    prefix = "/bench/watch/"
    total = round(scale.watch_rate * scale.watch_seconds)
    submitted: dict[int, tuple[float, float]] = {}  # revision -> (write started, acknowledged)
    received: list[list[tuple[int, float]]] = []  # per watcher: (revision, received)
    overflowed = 0

    async def watcher(
        store: storage.Backend, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        nonlocal overflowed
        log: list[tuple[int, float]] = []
        received.append(log)
        try:
            async with store.watch(prefix) as events:
                task_status.started()
                async for event in events:
                    log.append((event.revision, time.perf_counter()))
                    if len(log) == total:
                        break
        except* storage.WatchOverflow:
            overflowed += 1

    async def write(store: storage.Backend, index: int) -> None:
        start = time.perf_counter()
        kv = await store.create(f"{prefix}{index:08d}", _value(index))
        submitted[kv.mod_revision] = (start, time.perf_counter())

    _progress(f"watch: {scale.watchers} watchers, {total:,} writes at {scale.watch_rate:,.0f}/s")
    path = workdir / "watch.db"
    async with storage.open_store(_url(path)) as store:
        with trio.move_on_after(scale.watch_seconds + 60) as timeout:
            async with trio.open_nursery() as nursery:
                for _ in range(scale.watchers):
                    await nursery.start(watcher, store)
                began = trio.current_time()
                first = time.perf_counter()
                for index in range(total):
                    await trio.sleep_until(began + index / scale.watch_rate)
                    nursery.start_soon(write, store, index)
    writes_seconds = max(acked for _, acked in submitted.values()) - first

    from_start: list[float] = []
    from_ack: list[float] = []
    for log in received:
        for revision, at in log:
            started, acked = submitted[revision]
            from_start.append(at - started)
            from_ack.append(at - acked)
    commit = [acked - started for started, acked in submitted.values()]
    missing = total * scale.watchers - len(from_start)

    _title("c. Watch delivery latency")
    _note(
        f"{scale.watchers} watchers on one prefix; {len(submitted):,} creates paced at "
        f"{scale.watch_rate:,.0f}/s (achieved {len(submitted) / writes_seconds:,.0f}/s); "
        f"{len(from_start):,} deliveries"
    )
    _note("write start = just before `await store.create`; ack = when that await returned")
    p99 = _percentile(from_start, 0.99)
    _row("write start -> watcher, p50", _ms(_percentile(from_start, 0.5)))
    _row(
        "write start -> watcher, p99 (bounds commit -> watcher)",
        _ms(p99),
        _goal(p99 < 0.01, "p99 < 10 ms"),
    )
    _row("ack -> watcher, p50 (negative: watcher saw it first)", _ms(_percentile(from_ack, 0.5)))
    _row("ack -> watcher, p99", _ms(_percentile(from_ack, 0.99)))
    _row("write start -> ack (commit latency), p50", _ms(_percentile(commit, 0.5)))
    _row("write start -> ack (commit latency), p99", _ms(_percentile(commit, 0.99)))
    if overflowed or missing or timeout.cancelled_caught:
        _note(
            f"INCOMPLETE: {overflowed} watcher(s) cut off with WatchOverflow, "
            f"{missing:,} deliveries missing, timed out: {timeout.cancelled_caught}"
        )


# d. Database size


@dataclasses.dataclass(frozen=True, slots=True)
class _Size:
    db: int
    wal: int
    closed: int
    live: int
    compact_revision: int
    current_revision: int


async def _size_after_updates(path: pathlib.Path, options: storage.Options, scale: Scale) -> _Size:
    keys = [
        f"/registry/configmaps/system/default/cm-{number:05d}" for number in range(scale.size_keys)
    ]

    async def create(store: storage.Backend, index: int) -> None:
        await store.create(keys[index], _value(index))

    async def update(store: storage.Backend, index: int) -> None:
        await store.update(keys[index % len(keys)], _value(len(keys) + index))

    async with storage.open_store(_url(path), options) as store:
        await _write_all(store, len(keys), create, writers=scale.size_writers)
        await _write_all(store, scale.size_updates, update, writers=scale.size_writers)
        if options.auto_compact:
            # What a running cluster shows: compaction has had its turn after the burst.
            await trio.sleep(2 * options.compact_interval + 0.1)
        db, wal = _files(path)
        page = await store.list("/registry/configmaps/")
        live = sum(len(kv.key.encode()) + len(kv.value) for kv in page.items)
        compact_revision = await store.compact_revision()
        current_revision = await store.current_revision()
    return _Size(db, wal, sum(_files(path)), live, compact_revision, current_revision)


async def _bench_size(scale: Scale, workdir: pathlib.Path) -> None:
    compacting = storage.Options(history_seconds=0, history_revisions=1000, compact_interval=0.5)
    runs = [
        ("compaction on (1,000 revisions, every 0.5 s)", compacting),
        ("auto_compact=False", storage.Options(auto_compact=False)),
    ]
    sizes = []
    for number, (label, options) in enumerate(runs):
        _progress(f"size: {label}")
        sizes.append(
            (label, await _size_after_updates(workdir / f"size-{number}.db", options, scale))
        )

    _title("d. Database size")
    _note(
        f"{scale.size_updates:,} updates to {scale.size_keys:,} keys ({VALUE_SIZE}-byte values) "
        f"by {scale.size_writers} writer tasks; live data = sum of key + value bytes"
    )
    for label, size in sizes:
        ratio = (size.db + size.wal) / size.live
        goal = _goal(ratio < 5, "< 5x live") if label == runs[0][0] else ""
        _row(f"{label}: db+wal / live", f"{ratio:,.1f}x", goal)
        _note(
            f"    db {_mb(size.db)} + wal {_mb(size.wal)} for {_mb(size.live)} live; "
            f"after close {_mb(size.closed)}; revisions {size.compact_revision:,}.."
            f"{size.current_revision:,} kept"
        )
