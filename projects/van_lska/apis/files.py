# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Writing files so that a reader never sees half of one."""

import os
import tempfile
from pathlib import Path
from typing import Union


def write_text_atomic(path: Union[str, Path], text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path``, then rename it
    over ``path`` (``os.replace``): an interrupted write leaves the old file
    (or none), never a truncated one. Parent folders are created; the file
    keeps the mode of the file it replaces (else the umask's default).

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        mode = path.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', dir=path.parent)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
