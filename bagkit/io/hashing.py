"""SHA-256 of files, read in chunks."""
from __future__ import annotations

import hashlib


def file_hash(path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
