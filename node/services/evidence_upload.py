# SPDX-License-Identifier: Apache-2.0
"""Evidence as its sender streams it in: checked before any byte is taken, cut into chunks and
hashed on the way, spooled to an unlinked temporary file (never whole in memory), and refused
the moment the set passes its size limit.

The node never opens evidence by a path a caller names: it would read with the node's own
rights (its keys, its database) whatever the caller may read. The caller opens the files with
its own rights and streams their bytes (Local.UploadEvidence).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from node.errors import ComityError, ErrorKind

CHUNK_SIZE = 256 * 1024
MAX_EVIDENCE_BYTES = 256 * 1024 * 1024
"""Per set of evidence; larger results are split into several sets."""
MAX_DATA_MESSAGE_BYTES = 1024 * 1024
"""Bytes in one data message of an upload."""


class EvidenceTooLargeError(ComityError):
    """The set passed its size limit while it streamed in; nothing was kept."""

    kind = ErrorKind.OVERLOADED
    code = "evidence_too_large"


class UploadOrderError(ComityError):
    """An upload's messages are not a header followed by the files' data, file after file."""

    kind = ErrorKind.INVALID_INPUT
    code = "evidence_upload_order"


class EvidencePathRefusedError(ComityError):
    """A caller asked the node to read evidence from a path."""

    kind = ErrorKind.PRECONDITION
    code = "evidence_path_refused"


@dataclass(frozen=True, kw_only=True)
class EvidenceFile:
    """One file of a set, as its sender names it (a name, not a path)."""

    name: str
    media_type: str


def manifest_body(
    evidence_id: str, items: Sequence[dict[str, Any]], note: str | None, chunk_size: int
) -> bytes:
    """The evidence message's body (canonical JSON) for the manifest's ``items``."""
    manifest: dict[str, Any] = {
        "form_version": "evidence.v1",
        "evidence_id": evidence_id,
        "chunk_size": chunk_size,
        "items": list(items),
    }
    if note:
        manifest["note"] = note
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def header_manifest(evidence_id: str, files: Sequence[EvidenceFile], note: str | None) -> bytes:
    """A manifest of empty files with the header's names, media types and note: what the
    schema and the lifecycle are asked about before any data is taken."""
    empty = hashlib.sha256(b"").hexdigest()
    items = [
        {"name": f.name, "media_type": f.media_type, "size": 0, "sha256": empty, "chunks": []}
        for f in files
    ]
    return manifest_body(evidence_id, items, note, CHUNK_SIZE)


@dataclass
class _Item:
    """One file's size and digests as its bytes arrive: the whole file's, and each chunk's."""

    size: int = 0
    whole: Any = field(default_factory=hashlib.sha256)
    chunks: list[str] = field(default_factory=list)
    chunk: Any = field(default_factory=hashlib.sha256)
    filled: int = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.whole.update(data)
        view = memoryview(data)
        while view:
            take = view[: CHUNK_SIZE - self.filled]
            self.chunk.update(take)
            self.filled += len(take)
            view = view[len(take) :]
            if self.filled == CHUNK_SIZE:
                self._close_chunk()

    def finish(self) -> None:
        if self.filled:
            self._close_chunk()

    def _close_chunk(self) -> None:
        self.chunks.append(self.chunk.hexdigest())
        self.chunk, self.filled = hashlib.sha256(), 0


class EvidenceSpool:
    """The files of one set as they stream in, in order, spooled to an unlinked temporary
    file in ``directory``; its manifest and chunks once the stream has ended."""

    def __init__(
        self,
        files: Sequence[EvidenceFile],
        *,
        max_bytes: int = MAX_EVIDENCE_BYTES,
        directory: Path | None = None,
    ) -> None:
        self._files = tuple(files)
        self._items = [_Item() for _ in self._files]
        self._max_bytes = max_bytes
        self._current = 0
        self._total = 0
        self._finished = False
        self._spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by close())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()

    def write(self, file: int, data: bytes) -> None:
        """Take the next bytes of file ``file``.

        Raises:
            UploadOrderError: no such file, a file before one that already had data, or a
                message larger than the protocol allows.
            EvidenceTooLargeError: the set passed ``max_bytes``.
        """
        if not self._current <= file < len(self._files):
            raise UploadOrderError(
                f"data for file {file} after file {self._current}, of {len(self._files)} "
                "named in the header: files come in order, each once"
            )
        if len(data) > MAX_DATA_MESSAGE_BYTES:
            raise UploadOrderError(f"a data message holds at most {MAX_DATA_MESSAGE_BYTES} bytes")
        self._current = file
        self._total += len(data)
        if self._total > self._max_bytes:
            raise EvidenceTooLargeError(
                f"a set of evidence holds at most {self._max_bytes // 2**20} MiB; send the "
                "rest as another set"
            )
        self._items[file].update(data)
        self._spool.write(data)

    def manifest(self, evidence_id: str, note: str | None) -> bytes:
        """The set's manifest, once every byte was written."""
        if not self._finished:
            for item in self._items:
                item.finish()
            self._finished = True
        items = [
            {
                "name": f.name,
                "media_type": f.media_type,
                "size": item.size,
                "sha256": item.whole.hexdigest(),
                "chunks": item.chunks,
            }
            for f, item in zip(self._files, self._items, strict=True)
        ]
        return manifest_body(evidence_id, items, note, CHUNK_SIZE)

    def chunks(self) -> Iterator[tuple[int, int, bytes]]:
        """(file, chunk index, bytes) of every chunk, in order, read back from the spool."""
        self._spool.seek(0)
        for number, item in enumerate(self._items):
            left, index = item.size, 0
            while left:
                data = self._spool.read(min(CHUNK_SIZE, left))
                if not data:
                    raise OSError(f"the evidence spool ended early in file {number}")
                yield number, index, data
                left -= len(data)
                index += 1
