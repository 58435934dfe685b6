# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Writing files and folders so that a reader never sees half of one."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union


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
        mode = 0o666 & ~_umask()
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


@contextlib.contextmanager
def folder_written_atomically(
    out_dir: Union[str, Path], force: bool = False
) -> Iterator[str]:
    """Write the folder ``out_dir`` in one piece.

    The ``with`` block writes into a new, empty folder beside ``out_dir``
    (``NAME.tmp-XXXXXXXX``, the value of the ``with``), which takes the
    place of ``out_dir`` (``os.rename``) when the block completes: an
    interrupted or failed block leaves ``out_dir`` as it was and no
    temporary folder; a previous ``out_dir`` (empty, or replaced with
    ``force``) is moved aside first and deleted once the new one is in
    place. The new folder gets the mode ``os.makedirs`` would give it (the
    umask's default). Parent folders are created.

    Args:
        out_dir: the folder to write.
        force: replace an existing, non-empty ``out_dir``.

    Yields:
        str: the absolute path of the temporary folder to write into.

    Raises:
        FileExistsError: ``out_dir`` is a file, or a non-empty folder and
            ``force`` is not set (checked before anything is written).
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f'{out_dir} exists and is not a folder')
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(
            f'{out_dir} exists and is not empty; pick another folder or '
            'pass force=True (--force) to replace it'
        )
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(
        prefix=os.path.basename(out_dir) + '.tmp-', dir=parent
    )
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        yield tmp
        if not os.path.isdir(out_dir):
            os.rename(tmp, out_dir)
            return
        old = out_dir + '.old-' + os.path.basename(tmp).rsplit('-', 1)[-1]
        os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except BaseException:
            os.rename(old, out_dir)
            raise
        shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask
