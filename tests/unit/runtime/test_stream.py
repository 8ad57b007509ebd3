"""The channel.k8s.io pieces: frames, subprotocols, exit statuses and resizes, as client-go
reads them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from arktos_lite.runtime import _stream as stream


def test_channels_are_client_go_numbers() -> None:
    assert [int(c) for c in stream.Channel] == [0, 1, 2, 3, 4, 255]


@given(st.integers(0, 255), st.binary())
def test_frames_round_trip(channel: int, data: bytes) -> None:
    assert stream.decode(stream.encode(channel, data)) == stream.Frame(channel, data)


def test_decode_rejects_empty_and_text() -> None:
    with pytest.raises(ValueError, match="no channel"):
        stream.decode(b"")
    with pytest.raises(ValueError, match="binary"):
        stream.decode("\x01hi")


def test_encode_rejects_non_byte_channel() -> None:
    with pytest.raises(ValueError, match="not a byte"):
        stream.encode(256, b"")


def test_choose_subprotocol_prefers_the_clients_order() -> None:
    assert stream.choose_subprotocol(["v5.channel.k8s.io"]) == stream.V5
    assert stream.choose_subprotocol(["v4.channel.k8s.io", "v5.channel.k8s.io"]) == stream.V4
    assert stream.choose_subprotocol(["channel.k8s.io", "base64.channel.k8s.io"]) is None
    assert stream.choose_subprotocol([]) is None
    assert stream.supports_close(stream.V5)
    assert not stream.supports_close(stream.V4)


def test_close_message_names_the_stream() -> None:
    assert stream.close_message(stream.Channel.STDIN) == b"\xff\x00"


def test_success_status() -> None:
    status = json.loads(stream.exit_status(0))
    assert status["status"] == "Success"
    assert stream.parse_exit_status(stream.exit_status(0)) == stream.ExitStatus(0)


@given(st.integers(1, 255))
def test_non_zero_exit_round_trips(code: int) -> None:
    raw = stream.exit_status(code)
    status = json.loads(raw)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": str(code)}]
    parsed = stream.parse_exit_status(raw)
    assert parsed.exit_code == code
    assert not parsed.success


def test_other_failures_have_no_exit_code() -> None:
    parsed = stream.parse_exit_status(stream.error_status("container x is not running"))
    assert parsed == stream.ExitStatus(None, "container x is not running")
    with pytest.raises(ValueError, match="JSON"):
        stream.parse_exit_status(b"oops")
    with pytest.raises(ValueError, match="Status"):
        stream.parse_exit_status(b"[]")


def test_resize_round_trips() -> None:
    size = stream.TerminalSize(width=120, height=40)
    frame = stream.decode(stream.resize_message(size))
    assert frame.channel == stream.Channel.RESIZE
    assert stream.parse_resize(frame.data) == size


@pytest.mark.parametrize(
    "raw",
    [
        b"nope",
        b"[1, 2]",
        b'{"Width": 80}',
        b'{"Width": -1, "Height": 3}',
        b'{"Width": true, "Height": 3}',
    ],
)
def test_bad_resizes_are_rejected(raw: bytes) -> None:
    with pytest.raises(ValueError, match="resize"):
        stream.parse_resize(raw)
