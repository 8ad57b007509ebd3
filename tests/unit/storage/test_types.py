"""The storage layer's values: key ranges of prefixes, events and default options."""

from __future__ import annotations

import dataclasses

import hypothesis
import pytest
from hypothesis import strategies as st

from arktos_lite import storage

# Characters at the edges of the code space, where an off-by-one would hide.
EDGES = st.sampled_from(["/", "a", "z", "\x00", "\x7f", "é", "\ud7ff", "\U0010fffe", "\U0010ffff"])
TEXT = st.text(st.characters(codec=None) | EDGES, max_size=5)


@hypothesis.given(prefix=TEXT, data=st.data())
def test_prefix_end_bounds_exactly_the_keys_under_a_prefix(
    prefix: str, data: st.DataObject
) -> None:
    key = data.draw(
        TEXT | TEXT.map(lambda suffix: prefix + suffix) | TEXT.map(lambda s: s + prefix)
    )
    end = storage.prefix_end(prefix)

    in_range = prefix <= key and (end is None or key < end)

    assert key.startswith(prefix) == in_range


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("/registry/pods/", "/registry/pods0"),
        ("/a", "/b"),
        ("a\U0010ffff", "b"),
        ("a\U0010ffff\U0010ffff", "b"),
        ("", None),
        ("\U0010ffff", None),
        ("\U0010ffff\U0010ffff", None),
    ],
)
def test_prefix_end_examples(prefix: str, end: str | None) -> None:
    assert storage.prefix_end(prefix) == end


def test_event_revision_is_the_revision_of_its_change() -> None:
    prev = storage.KeyValue("/a", b"1", create_revision=3, mod_revision=3, version=1)
    kv = storage.KeyValue("/a", b"2", create_revision=3, mod_revision=7, version=2)

    event = storage.Event(type=storage.EventType.PUT, kv=kv, prev_kv=prev)

    assert event.revision == 7


def test_values_are_immutable() -> None:
    kv = storage.KeyValue("/a", b"1", create_revision=3, mod_revision=3, version=1)

    with pytest.raises(dataclasses.FrozenInstanceError):
        kv.value = b"2"  # type: ignore[misc]


def test_event_types_are_strings() -> None:
    assert storage.EventType.PUT == "PUT"
    assert storage.EventType.DELETE == "DELETE"


def test_options_keep_five_minutes_and_a_thousand_revisions_of_history() -> None:
    options = storage.Options()

    assert options.auto_compact is True
    assert options.history_seconds == 300.0
    assert options.history_revisions == 1_000
