"""Reading CRI log files as `kubectl logs` shows them: partial lines, tail, since, limits,
rotation and following a growing file."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from arktos_lite.agent import _logs as logs

T0 = 1_700_000_000 * 1_000_000_000


def ts(second: int, nanos: int = 0) -> str:
    return logs_time(T0 + second * 1_000_000_000 + nanos)


def logs_time(ns: int) -> str:
    import datetime

    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def record(second: int, text: str, *, stream: str = "stdout", tag: str = "F") -> str:
    return f"{ts(second)} {stream} {tag} {text}\n"


async def read(path: Path, options: logs.LogOptions | None = None) -> bytes:
    chunks = [c async for c in logs.read_logs(path, options or logs.LogOptions())]
    return b"".join(chunks)


def test_parse_timestamp_variants() -> None:
    assert logs.parse_timestamp("1970-01-01T00:00:01Z") == 1_000_000_000
    assert logs.parse_timestamp("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert logs.parse_timestamp("1970-01-01T00:00:01.000000007Z") == 1_000_000_007
    assert logs.parse_timestamp("1970-01-01T01:00:00+01:00") == 0
    with pytest.raises(ValueError, match="RFC 3339"):
        logs.parse_timestamp("yesterday")


def test_parse_record() -> None:
    parsed = logs.parse_record(record(1, "hello world").rstrip("\n").encode())
    assert parsed is not None
    assert (parsed.stream, parsed.partial, parsed.text) == (b"stdout", False, b"hello world")
    empty = logs.parse_record(f"{ts(1)} stderr F ".encode())
    assert empty is not None
    assert empty.text == b""
    assert logs.parse_record(b"garbage") is None


async def test_lines_partials_and_streams(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text(
        record(1, "one")
        + record(2, "tw", tag="P")
        + record(3, "o")
        + record(4, "oops", stream="stderr")
    )
    assert await read(path) == b"one\ntwo\noops\n"


async def test_timestamps_prefix_each_line_once(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text(record(1, "a", tag="P") + record(2, "b") + record(3, "c"))
    text = await read(path, logs.LogOptions(timestamps=True))
    assert text == f"{ts(1)} ab\n{ts(3)} c\n".encode()


async def test_tail_counts_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text(record(1, "1") + record(2, "2", tag="P") + record(3, "2") + record(4, "3"))
    assert await read(path, logs.LogOptions(tail_lines=2)) == b"22\n3\n"
    assert await read(path, logs.LogOptions(tail_lines=0)) == b""
    assert await read(path, logs.LogOptions(tail_lines=10)) == b"1\n22\n3\n"


async def test_since_and_limit(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text(record(1, "old") + record(5, "new") + record(6, "newer"))
    assert await read(path, logs.LogOptions(since_ns=T0 + 5 * 10**9)) == b"new\nnewer\n"
    assert await read(path, logs.LogOptions(limit_bytes=6)) == b"old\nne"


async def test_rotated_files_come_first(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    (tmp_path / "0.log.2").write_text(record(1, "first"))
    (tmp_path / "0.log.1").write_text(record(2, "second"))
    path.write_text(record(3, "third"))
    (tmp_path / "0.log.tmp").write_text(record(0, "not a rotation"))
    assert await read(path) == b"first\nsecond\nthird\n"
    assert await read(path, logs.LogOptions(tail_lines=2)) == b"second\nthird\n"


async def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert await read(tmp_path / "nothing.log") == b""


def test_options_from_query() -> None:
    options = logs.LogOptions.from_query(
        {"follow": "true", "tailLines": "5", "sinceSeconds": "10", "timestamps": "1"},
        now_ns=T0,
    )
    assert options == logs.LogOptions(
        follow=True, tail_lines=5, since_ns=T0 - 10 * 10**9, timestamps=True
    )
    since = logs.LogOptions.from_query({"sinceTime": ts(3)}, now_ns=0)
    assert since.since_ns == T0 + 3 * 10**9
    for bad, message in [
        ({"tailLines": "x"}, "tailLines"),
        ({"tailLines": "-1"}, "at least 0"),
        ({"limitBytes": "0"}, "limitBytes"),
        ({"follow": "maybe"}, "follow"),
        ({"sinceTime": "soon"}, "sinceTime"),
        ({"sinceTime": ts(1), "sinceSeconds": "3"}, "at most one"),
    ]:
        with pytest.raises(logs.LogOptionsError, match=message):
            logs.LogOptions.from_query(bad, now_ns=0)


async def test_follow_sees_growth_and_rotation_then_ends(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_text(record(1, "start"))
    alive = True

    async def running() -> bool:
        return alive

    received = bytearray()

    async def follow() -> None:
        async for chunk in logs.read_logs(
            path, logs.LogOptions(follow=True), running=running, poll_interval=0.01
        ):
            received.extend(chunk)

    async def until(text: bytes) -> None:
        with trio.fail_after(3):
            while text not in received:  # noqa: ASYNC110
                await trio.sleep(0.01)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await until(b"start\n")
            with path.open("a") as log:
                log.write(record(2, "half", tag="P"))
                log.flush()
                log.write(record(3, "-line"))
            await until(b"half-line\n")
            # Rotation: the file moves aside; a new one takes its name.
            with path.open("a") as log:
                log.write(record(4, "before rotation"))
            path.rename(tmp_path / "0.log.1")
            path.write_text(record(5, "after rotation"))
            await until(b"after rotation\n")
            with path.open("a") as log:
                log.write(record(6, "last words"))
            alive = False
    assert received == b"start\nhalf-line\nbefore rotation\nafter rotation\nlast words\n"


async def test_follow_with_mock_clock_waits_for_writes(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "0.log"
    path.write_text("")
    polls = 0

    async def running() -> bool:
        nonlocal polls
        polls += 1
        if polls == 3:
            path.write_text(record(1, "late"))
        return polls < 5

    text = await read_following(path, running)
    assert text == b"late\n"


async def read_following(path: Path, running: logs.Running) -> bytes:
    chunks = [
        c
        async for c in logs.read_logs(
            path, logs.LogOptions(follow=True), running=running, poll_interval=1.0
        )
    ]
    return b"".join(chunks)
