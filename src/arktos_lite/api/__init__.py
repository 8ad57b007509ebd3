"""The resource model: errors as `Status` objects, resources, readers of objects' parts,
selectors, patches, field managers and server-side apply, schemas, defaults and
validation, Arktos hash keys.

Pure functions and values; no I/O. Every other layer may import it.
"""

from arktos_lite.api import (
    _customresources as customresources,
    _errors as errors,
    _managed as managed,
    _objects as objects,
    _partitions as partitions,
    _patch as patch,
    _resources as resources,
    _selectors as selectors,
    _structural as structural,
    _timestamps as timestamps,
)
from arktos_lite.api._hashkey import MAX_HASH_KEY as MAX_HASH_KEY, hash_key as hash_key

__all__ = [
    "MAX_HASH_KEY",
    "customresources",
    "errors",
    "hash_key",
    "managed",
    "objects",
    "partitions",
    "patch",
    "resources",
    "selectors",
    "structural",
    "timestamps",
]
