"""A ZIP made as it is sent: each entry leaves once written (the class set of family reports,
where a class of a hundred PDFs takes longer than a proxy waits for a first byte)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _Chunks(io.RawIOBase):
    """Where the ZIP is written: each write is kept until the response takes it.

    Not seekable, so zipfile writes each entry's sizes after its data, and the archive can
    leave entry by entry instead of whole at the end.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        chunk, self._parts = b"".join(self._parts), []
        return chunk


def streamed_zip(entries: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """The ZIP of (name, data) entries, a chunk an entry as each is made, then its end."""
    sink = _Chunks()
    # No `with`: after an error it would write the central directory, and the teacher would
    # get a ZIP that opens fine with students missing.
    archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED)
    try:
        for name, data in entries:
            archive.writestr(name, data)
            yield sink.take()
    except BaseException:
        # Left unfinished on purpose (an error, or the teacher closed the download): without
        # this, the ZipFile's own clean-up would still write the central directory, later, at
        # garbage collection, into a sink no one reads, and fail in whatever runs then.
        archive.fp = None
        raise
    archive.close()
    yield sink.take()
