"""Atomic file writes shared by the data cache, the result cache, the generator cache and the claims."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, write) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place, so a reader (or an
    interrupted run) never sees half a file. The file gets the usual permissions (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
