"""Reading and checking `header.json`: every field is checked before it is used, since a header may be crafted."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gan_registry import UserError

FORMAT = "gan-registry-packed/1"
MAX_HEADER_BYTES = 64 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")  # a file beside the header: no folders, no '..'
_HEX = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class Entry:
    name: str
    bytes: int
    sha256: str
    count: int = 0


@dataclass(frozen=True)
class Header:
    id: str
    layout: str
    count: int
    channels: int
    resolution: int
    classes: tuple[str, ...] | None
    class_counts: tuple[int, ...] | None
    files: tuple[Entry, ...]
    """images.npy (and labels.npy) for an array; the shards, in order, for shards."""

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.resolution, self.resolution)


def _whole(table: dict[str, Any], key: str, where: str, least: int = 0) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UserError(f"{where}: '{key}' should be a whole number of at least {least}, not {value!r}")
    return value


def _entry(item: Any, where: str, counted: bool) -> Entry:
    if not isinstance(item, dict):
        raise UserError(f"{where}: a file entry should be a table, not {item!r}")
    name, digest = item.get("name"), item.get("sha256")
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"{where}: {name!r} is not the name of a file beside the header")
    if not isinstance(digest, str) or not _HEX.match(digest):
        raise UserError(f"{where}: the sha256 of {name} should be 64 hex digits")
    return Entry(name, _whole(item, "bytes", where), digest, _whole(item, "count", where, 1) if counted else 0)


def parse(text: bytes | str, where: str) -> Header:
    """The header in `text`, checked; `where` names it in messages."""
    if len(text) > MAX_HEADER_BYTES:
        raise UserError(f"{where} is larger than {MAX_HEADER_BYTES >> 20} MB; it is not a packed dataset's header")
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{where} is not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise UserError(f"{where} is not a header written by `gan data pack` (format {FORMAT})")
    images = raw.get("images")
    if not isinstance(images, dict) or images.get("dtype") != "uint8":
        raise UserError(f"{where}: 'images' should state count, channels, resolution and dtype uint8")
    count = _whole(images, "count", where, 1)
    channels = _whole(images, "channels", where, 1)
    if channels not in (1, 3):
        raise UserError(f"{where}: channels should be 1 or 3, not {channels}")
    resolution = _whole(images, "resolution", where, 1)
    classes = raw.get("classes")
    if classes is not None and (not isinstance(classes, list) or not classes
                                or not all(isinstance(c, str) for c in classes)):
        raise UserError(f"{where}: 'classes' should be a list of class names or null")
    counts = raw.get("class_counts")
    if classes is not None:
        if (not isinstance(counts, list) or len(counts) != len(classes)
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)):
            raise UserError(f"{where}: 'class_counts' should give the number of images of each of its classes")
        if sum(counts) != count:
            raise UserError(f"{where}: its class counts add up to {sum(counts):,} images, but it states {count:,}")
    layout, key = raw.get("layout"), raw.get("id")
    if not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{16}", key):
        raise UserError(f"{where}: 'id' should be 16 hex digits")
    if layout == "array":
        files = raw.get("files")
        entries = tuple(_entry(item, where, counted=False) for item in files) if isinstance(files, list) else ()
        names = [e.name for e in entries]
        if names != ["images.npy"] + (["labels.npy"] if classes else []):
            raise UserError(f"{where}: an array holds images.npy{' and labels.npy' if classes else ''}, not {names}")
    elif layout == "shards":
        shards = raw.get("shards")
        if not isinstance(shards, list) or not shards:
            raise UserError(f"{where}: 'shards' should list the shards")
        entries = tuple(_entry(item, where, counted=True) for item in shards)
        if len({e.name for e in entries}) != len(entries):
            raise UserError(f"{where}: a shard is listed twice")
        stated = sum(e.count for e in entries)
        if stated != count:
            raise UserError(f"{where}: its shards hold {stated:,} images, but it states {count:,}")
    else:
        raise UserError(f"{where}: 'layout' should be array or shards, not {layout!r}")
    return Header(key, layout, count, channels, resolution, tuple(classes) if classes else None,
                  tuple(counts) if classes else None, entries)
