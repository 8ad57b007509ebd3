"""CRI log records from raw container output: format, partial lines, rotation, restarts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arktos_lite.runtime.process import _logs
from arktos_lite.runtime.process._logs import MAX_LINE, CriLogWriter, LogPump, timestamp

RECORD = re.compile(rb"^(\S+) (stdout|stderr) ([FP]) (.*)$")


def records(path: Path) -> list[tuple[str, str, bytes]]:
    out = []
    for line in path.read_bytes().splitlines():
        m = RECORD.match(line)
        assert m, line
        out.append((m.group(2).decode(), m.group(3).decode(), m.group(4)))
    return out


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    d = tmp_path / "raw"
    d.mkdir()
    return d


def pump_for(tmp_path: Path, raw: Path, **limits: int) -> tuple[LogPump, CriLogWriter, Path]:
    log = tmp_path / "logs" / "c" / "0.log"
    writer = CriLogWriter(
        log, max_bytes=limits.get("max_bytes", 1 << 20), max_files=limits.get("max_files", 3)
    )
    return LogPump(raw_dir=raw, writer=writer, state_path=raw / "offsets.json"), writer, log


def append(raw: Path, stream: str, data: bytes) -> None:
    with open(raw / stream, "ab") as f:
        f.write(data)


def test_timestamp_is_rfc3339_nano_utc() -> None:
    assert timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert timestamp(1_700_000_000_000_000_005) == "2023-11-14T22:13:20.000000005Z"


def test_lines_of_both_streams(tmp_path: Path, raw: Path) -> None:
    pump, _, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"one\ntwo\n")
    append(raw, "stderr", b"bad\n")
    assert pump.pump()
    assert not pump.pump()
    assert records(log) == [
        ("stdout", "F", b"one"),
        ("stdout", "F", b"two"),
        ("stderr", "F", b"bad"),
    ]


def test_an_unterminated_line_waits_for_its_end(tmp_path: Path, raw: Path) -> None:
    pump, _, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"hel")
    pump.pump()
    assert not log.exists() or records(log) == []
    append(raw, "stdout", b"lo\nwor")
    pump.pump()
    assert records(log) == [("stdout", "F", b"hello")]
    pump.finish()
    assert records(log)[-1] == ("stdout", "F", b"wor")


def test_long_lines_become_partial_records(tmp_path: Path, raw: Path) -> None:
    pump, _, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"x" * (2 * MAX_LINE + 10) + b"\n")
    pump.pump()
    got = records(log)
    assert [(s, t, len(text)) for s, t, text in got] == [
        ("stdout", "P", MAX_LINE),
        ("stdout", "P", MAX_LINE),
        ("stdout", "F", 10),
    ]


def test_a_new_pump_continues_where_the_last_stopped(tmp_path: Path, raw: Path) -> None:
    pump, writer, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"a\nb")
    pump.pump()
    writer.close()
    append(raw, "stdout", b"c\nd\n")
    pump2, _, _ = pump_for(tmp_path, raw)
    pump2.pump()
    assert [text for _, _, text in records(log)] == [b"a", b"bc", b"d"]


def test_rotation_keeps_max_files(tmp_path: Path, raw: Path) -> None:
    pump, _, log = pump_for(tmp_path, raw, max_bytes=300, max_files=3)
    for i in range(50):
        append(raw, "stdout", b"line %d\n" % i)
    pump.pump()
    names = sorted(p.name for p in log.parent.iterdir())
    assert names == ["0.log", "0.log.1", "0.log.2"]
    assert all(p.stat().st_size <= 300 for p in log.parent.iterdir())
    assert records(log)[-1][2] == b"line 49"


def test_reopen_after_the_file_moved(tmp_path: Path, raw: Path) -> None:
    pump, writer, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"first\n")
    pump.pump()
    log.rename(log.with_name("old"))
    writer.reopen()
    append(raw, "stdout", b"second\n")
    pump.pump()
    assert records(log) == [("stdout", "F", b"second")]
    assert records(log.with_name("old")) == [("stdout", "F", b"first")]


def test_a_stale_unterminated_line_is_written_as_partial(
    tmp_path: Path, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_logs, "_STALE_PARTIAL", 0.0)
    pump, _, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"Password: ")
    pump.pump()
    append(raw, "stdout", b"ok\n")
    pump.pump()
    assert records(log) == [("stdout", "P", b"Password: "), ("stdout", "F", b"ok")]


def test_converted_raw_output_is_truncated(
    tmp_path: Path, raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_logs, "_TRUNCATE_AT", 10)
    pump, writer, log = pump_for(tmp_path, raw)
    append(raw, "stdout", b"0123456789\n")
    pump.pump()
    assert (raw / "stdout").stat().st_size == 0
    append(raw, "stdout", b"more\n")
    pump.pump()
    writer.close()
    # A restarted pump does not repeat what was converted before the truncation.
    pump2, _, _ = pump_for(tmp_path, raw)
    pump2.pump()
    assert [text for _, _, text in records(log)] == [b"0123456789", b"more"]
