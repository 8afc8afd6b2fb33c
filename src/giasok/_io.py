"""File helpers shared by the data cache, the result cache, the generator cache and the claims: atomic writes,
and setting a damaged cache file aside."""
from __future__ import annotations

import os
import pickle
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path

# What reading a damaged (truncated, overwritten, half-copied) JSON, npz or torch file raises. A file that
# raises one of these is damaged, not merely absent: the caches set it aside and recompute it.
UNREADABLE = (OSError, EOFError, ValueError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError,
              zipfile.BadZipFile, zlib.error)


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


def describe(error: BaseException) -> str:
    """``Type: first line of the message``: torch's load errors run to several paragraphs."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def set_aside(path: Path, reason: str, *, siblings=()) -> Path:
    """Rename the damaged cache file ``path`` (and those of ``siblings`` that exist, the other files of the same
    entry) to ``<name>.damaged-<UTC time>``, warn naming it and ``reason``, and return its new path.

    A damaged cache entry is recomputed rather than crashing every later run, but it is kept, not deleted:
    its bytes may show what went wrong (a full disk, an interrupted copy), and nothing is ever lost to a
    misdiagnosis.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    suffix, n = f".damaged-{stamp}", 1
    while any(Path(f"{p}{suffix}").exists() for p in (path, *siblings)):  # set aside twice in one second
        suffix, n = f".damaged-{stamp}-{n}", n + 1
    target = Path(f"{path}{suffix}")
    os.replace(path, target)
    for sibling in siblings:
        try:
            os.replace(sibling, f"{sibling}{suffix}")
        except FileNotFoundError:
            pass
    warnings.warn(f"damaged cache file {path} ({reason}); kept as {target.name}, recomputing it",
                  RuntimeWarning, stacklevel=3)
    return target


def load_cached_state(path: Path, make_module, what: str, *, key: str | None = None):
    """``make_module()`` with the weights cached at ``path`` (the saved state dict, or its entry ``key``), or
    ``None`` when there is no file. A file that cannot be read, or weights that do not fit the module, are set
    aside with a warning naming ``what``, and ``None`` is returned, so that the caller retrains instead of
    failing on a damaged cache in every later run. The module is built only when there is a file: building it
    may draw from the global RNG, which a caller's training that follows must find as it left it."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    module = make_module()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state[key] if key is not None else state)
    except PermissionError:
        raise  # a file we may not read is not a damaged one
    except UNREADABLE as error:
        set_aside(path, f"unreadable {what}, {describe(error)}")
        return None
    return module
