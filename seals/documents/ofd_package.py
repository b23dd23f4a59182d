"""Safe reading and writing of OFD packages (zip).

An uploaded package is read whole into memory, entry by entry, under limits checked
before and during decompression: entry count, total and per-entry uncompressed size,
and compression ratio (zip bombs), since the declared sizes in a zip can lie. Entry
names must be plain relative POSIX paths: absolute names, ``..``, backslashes, drive
letters and duplicates are refused rather than normalised, as a package that needs
them is hostile or broken. Encrypted entries are refused.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from seals.documents.zip_writer import Entry, new_entry, stored_entry, write_zip
from trust.errors import DocumentArchiveUnsafe, DocumentMalformed
from trust.settings import Settings

_CHUNK = 64 * 1024
# Below this size a high ratio is harmless (a page of spaces compresses 1000:1).
_RATIO_FLOOR = 1 << 20


@dataclass(frozen=True)
class PackageLimits:
    """The defaults are ``Settings``' (``ofd_max_*``); the service builds them from there."""

    max_entries: int = 10_000
    max_total_size: int = 256 << 20  # uncompressed bytes, all entries
    max_entry_size: int = 128 << 20
    max_ratio: int = 200  # uncompressed / compressed, per entry over _RATIO_FLOOR
    # An XML file is parsed whole in memory (lxml trees take several times its size).
    max_xml_size: int = 16 << 20

    @classmethod
    def from_settings(cls, settings: Settings) -> PackageLimits:
        return cls(
            max_entries=settings.ofd_max_entries,
            max_total_size=settings.ofd_max_total_bytes,
            max_entry_size=settings.ofd_max_entry_bytes,
            max_ratio=settings.ofd_max_ratio,
            max_xml_size=settings.ofd_max_xml_bytes,
        )


class OfdPackage:
    """The files of a package by name (``Doc_0/Document.xml``, no leading slash), in
    archive order; directory entries are dropped. Files unchanged since reading keep
    their compressed bytes, which ``to_bytes`` copies instead of recompressing."""

    def __init__(
        self, files: Mapping[str, bytes], stored: Mapping[str, Entry] | None = None
    ) -> None:
        self._files = dict(files)
        self._stored = dict(stored or {})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._files)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._files

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def read(self, name: str) -> bytes:
        try:
            return self._files[_key(name)]
        except KeyError:
            raise DocumentMalformed(f"the package has no file /{_key(name)}") from None

    def get(self, name: str) -> bytes | None:
        return self._files.get(_key(name))

    def with_files(self, changed: Mapping[str, bytes]) -> OfdPackage:
        """A copy with ``changed`` files replaced or added (new ones at the end)."""
        keys = {_key(n): data for n, data in changed.items()}
        files = {**self._files, **keys}
        stored = {n: e for n, e in self._stored.items() if n not in keys}
        return OfdPackage(files, stored)

    def to_bytes(self) -> bytes:
        now = datetime.now(UTC)
        return write_zip(
            [self._stored.get(n) or new_entry(n, data, now) for n, data in self._files.items()]
        )


def read_package(data: bytes, limits: PackageLimits = PackageLimits()) -> OfdPackage:
    """The package in ``data``; ``DocumentArchiveUnsafe`` or ``DocumentMalformed`` when
    it cannot be read safely."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    # zipfile reports a damaged central directory with assorted exceptions.
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
        raise DocumentMalformed(f"not a readable zip package: {exc}") from None
    if len(infos) > limits.max_entries:
        raise DocumentArchiveUnsafe(f"more than {limits.max_entries} entries")
    declared = 0
    for info in infos:
        _check_name(info.filename)
        declared += info.file_size
        if info.flag_bits & 0x1:
            raise DocumentArchiveUnsafe(f"entry {info.filename!r} is encrypted")
        _check_sizes(info, limits)
    if declared > limits.max_total_size:
        raise DocumentArchiveUnsafe(f"uncompressed size over {limits.max_total_size} bytes")
    files: dict[str, bytes] = {}
    stored: dict[str, Entry] = {}
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        if info.filename in files:
            raise DocumentArchiveUnsafe(f"entry {info.filename!r} appears twice")
        content = _read_entry(archive, info, limits, limits.max_total_size - total)
        total += len(content)
        files[info.filename] = content
        if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            stored[info.filename] = stored_entry(data, info)
    return OfdPackage(files, stored)


def resolve(location: str, base: str = "") -> str:
    """The package name a location in an OFD file points at: absolute (``/Doc_0/..``)
    from the root, relative from the directory ``base`` (no leading slash)."""
    location = location.strip()
    if not location:
        raise DocumentMalformed("an empty file location")
    if "\\" in location or "\x00" in location:
        raise DocumentMalformed(f"location {location!r} is not a package path")
    joined = location.lstrip("/") if location.startswith("/") else posixpath.join(base, location)
    normal = posixpath.normpath(joined)
    if normal.startswith("..") or normal in (".", "") or normal.startswith("/"):
        raise DocumentMalformed(f"location {location!r} leaves the package")
    return normal


def _key(name: str) -> str:
    return name.lstrip("/")


def _check_name(name: str) -> None:
    bare = name.rstrip("/")
    parts = bare.split("/")
    if (
        not bare
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or (len(bare) > 1 and bare[1] == ":")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise DocumentArchiveUnsafe(f"entry name {name!r} is not a plain relative path")


def _check_sizes(info: zipfile.ZipInfo, limits: PackageLimits) -> None:
    """Against the declared sizes; reading then never goes beyond them (``_read_entry``)."""
    if info.file_size > limits.max_entry_size:
        raise DocumentArchiveUnsafe(
            f"entry {info.filename!r} is over {limits.max_entry_size} bytes"
        )
    if info.filename.lower().endswith(".xml") and info.file_size > limits.max_xml_size:
        raise DocumentArchiveUnsafe(
            f"XML file {info.filename!r} is over {limits.max_xml_size} bytes"
        )
    if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise DocumentArchiveUnsafe(f"entry {info.filename!r} compresses suspiciously well")


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: PackageLimits, room: int
) -> bytes:
    """The entry's bytes, never more than it declared nor than the room left: the
    declared size is what the limits were checked against."""
    cap = min(info.file_size, limits.max_entry_size, room)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise DocumentArchiveUnsafe(
                        f"entry {info.filename!r} inflates beyond its declared size or the limits"
                    )
                chunks.append(chunk)
    except DocumentArchiveUnsafe:
        raise
    # CRC errors, truncated or corrupt streams, unsupported compression.
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError, NotImplementedError):
        raise DocumentMalformed(f"entry {info.filename!r} cannot be read") from None
    content = b"".join(chunks)
    # zipfile stops at the declared size without checking the CRC: a size that lies
    # low would otherwise pass as a silently truncated file.
    if zlib.crc32(content) != info.CRC:
        raise DocumentMalformed(f"entry {info.filename!r} does not match its size or CRC")
    return content
