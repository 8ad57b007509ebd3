"""Acknowledged writes survive a SIGKILL of the process that made them (SQLite store).

A subprocess writes with many concurrent tasks and prints every write the store
acknowledged; the test kills it at a random point, reopens the file and checks that no
acknowledged write was lost, that revisions never go back, and that the file is intact.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys

import pytest
import trio

from arktos_lite import storage

from . import _crash_writer

WRITER = pathlib.Path(_crash_writer.__file__)
WRITER_TASKS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class Ack:
    key: str
    counter: int
    revision: int


async def _run_until_killed(url: str, *, kill_after: int, seed: int, compacting: bool) -> list[Ack]:
    """Run the writer, SIGKILL it once `kill_after` writes were acknowledged; every ack."""
    command = [sys.executable, str(WRITER), url, str(WRITER_TASKS), str(seed)]
    if compacting:
        command.append("compacting")
    lines: list[bytes] = []
    pending = b""
    stderr = bytearray()
    killed = False

    async def collect_stderr(stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            stderr.extend(chunk)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                functools.partial(
                    trio.run_process,
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                )
            )
            assert process.stdout is not None
            assert process.stderr is not None
            nursery.start_soon(collect_stderr, process.stderr)
            # Lines printed before the kill are still in the pipe: read it to the end.
            async for chunk in process.stdout:
                *complete, pending = (pending + chunk).split(b"\n")
                lines.extend(complete)
                if not killed and len(lines) >= kill_after:
                    process.kill()
                    killed = True
    assert killed, (
        f"the writer exited with {process.returncode} after {len(lines)} acknowledged "
        f"writes:\n{stderr.decode(errors='replace')}"
    )
    assert process.returncode == -signal.SIGKILL
    # A line cut short by the kill (no newline in `pending`) is not an acknowledgement.
    acks = []
    for line in lines:
        key, counter, revision = line.decode().split(" ")
        acks.append(Ack(key, int(counter), int(revision)))
    return acks


def _integrity_check(path: pathlib.Path) -> str:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()
    return "\n".join(str(row[0]) for row in rows)


def _last_acks(acks: list[Ack]) -> dict[str, Ack]:
    """Per key, the acknowledgement with the highest counter (checking the writer's story)."""
    last: dict[str, Ack] = {}
    for ack in acks:
        previous = last.get(ack.key)
        expected = 0 if previous is None else previous.counter + 1
        assert ack.counter == expected, f"writer acknowledged {ack} after {previous}"
        if previous is not None:
            assert ack.revision > previous.revision, f"{ack} acknowledged after {previous}"
        last[ack.key] = ack
    return last


@pytest.mark.slow
@pytest.mark.parametrize("compacting", [False, True], ids=["history", "compacting"])
# Seeds whose kill points (431, 750, 1526, 2751 acknowledged writes) spread over the range.
@pytest.mark.parametrize("seed", [2, 1, 7, 5])
async def test_acknowledged_writes_survive_sigkill(
    tmp_path: pathlib.Path, seed: int, compacting: bool
) -> None:
    kill_after = random.Random(seed).randint(200, 3000)
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"

    acks = await _run_until_killed(url, kill_after=kill_after, seed=seed, compacting=compacting)

    assert len(acks) >= kill_after
    revisions = [ack.revision for ack in acks]
    assert len(set(revisions)) == len(revisions), "two acknowledged writes share a revision"
    last = _last_acks(acks)
    max_acked = max(revisions)
    assert path.exists(), f"{url} did not create {path}"
    assert await trio.to_thread.run_sync(_integrity_check, path) == "ok"

    async with storage.open_store(url) as store:
        page = await store.list(_crash_writer.PREFIX)
        found = {kv.key: kv for kv in page.items}
        # Per writer task, the keys whose stored state is not their last acknowledged one:
        # only the one write each task had in flight when it was killed may show.
        unacknowledged: dict[int, list[str]] = {}
        for key, ack in last.items():
            kv = found.get(key)
            assert kv is not None, f"acknowledged {ack} but the key is gone"
            counter = _crash_writer.decode(key, kv.value)
            if counter == ack.counter:
                assert kv.mod_revision == ack.revision, f"acknowledged {ack}, store has {kv}"
            else:
                # Durable but killed before it could print: exactly one step later.
                assert counter == ack.counter + 1, f"acknowledged {ack}, store has {counter}"
                assert kv.mod_revision > ack.revision
                unacknowledged.setdefault(_crash_writer.task_of(key), []).append(key)
        for key in found.keys() - last.keys():
            assert _crash_writer.decode(key, found[key].value) == 0, f"never created {key}"
            unacknowledged.setdefault(_crash_writer.task_of(key), []).append(key)
        assert all(len(keys) == 1 for keys in unacknowledged.values()), unacknowledged

        current = await store.current_revision()
        assert current >= max_acked
        assert current >= max(kv.mod_revision for kv in found.values())
        assert page.revision == current

        # History survived too: every acknowledged value not compacted away can be read
        # at its revision.
        compacted = await store.compact_revision()
        for ack in acks:
            if ack.revision >= compacted:
                kv = await store.get(ack.key, revision=ack.revision)
                assert kv.value == _crash_writer.encode(ack.key, ack.counter), ack

        # The store goes on from where it was: new writes get higher revisions.
        created = await store.create("/crash/after-restart", b"new")
        assert created.mod_revision > current
        some = found[acks[-1].key]
        updated = await store.update(some.key, b"newer", expected_revision=some.mod_revision)
        assert updated.mod_revision > created.mod_revision
        assert await store.current_revision() == updated.mod_revision

    assert await trio.to_thread.run_sync(_integrity_check, path) == "ok"
