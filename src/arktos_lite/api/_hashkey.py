"""Arktos's `metadata.hashKey`: where an object falls in the controllers' hash space.

The key is the 64-bit FNV-1a hash of the object's uid, folded into [0, 2^63-1] so that
it is a non-negative int64. It is set on create and never changes; owner references
carry their owner's.
"""

from __future__ import annotations

MAX_HASH_KEY = 2**63 - 1

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = 2**64 - 1


def fnv1a_64(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


def hash_key(uid: str) -> int:
    """The hashKey of the object with `uid`, in [0, 2^63-1]."""
    return fnv1a_64(uid.encode()) % (MAX_HASH_KEY + 1)
