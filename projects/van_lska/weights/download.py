# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Verified, cached, resumable checkpoint downloads (``urllib`` only).

``download_checkpoint(url)`` returns the path of the file in the cache
folder ``$TORCH_HOME/hub/checkpoints`` (default
``~/.cache/torch/hub/checkpoints``, the folder ``torch.hub`` uses):

* a file already in the cache under its final name is returned without any
  network access;
* the transfer goes into ``<name>.part`` in the cache folder; an interrupted
  transfer is resumed with an HTTP ``Range`` request (or restarted cleanly
  when the server ignores ``Range``), up to ``retries`` attempts;
* OpenMMLab file names carry the first hex digits of the file's sha256
  after their last ``-`` (``..._20220501-385941af.pth``); the finished file
  is checked against them and only then moved to its final name with
  ``os.replace``. A corrupt download is deleted; nothing partial or corrupt
  ever sits under the final name. Names without such a suffix cannot be
  verified (a message says so);
* an unreachable host raises :class:`DownloadError` naming the URL, the
  cache path and how to download the file by hand.

:func:`register_download_scheme` makes mmengine's ``CheckpointLoader`` (and
so every ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` and
``load_from=URL``) use this code for ``http://`` and ``https://``.
"""

import contextlib
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Iterator, Optional, Union

try:  # advisory lock against two processes sharing one .part file
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

CHUNK = 1 << 16
# '-<hex>' at the end of the name, before extensions such as '.pth.tar'
HASH_RE = re.compile(r'-([0-9a-f]{8,64})(?:\.[A-Za-z]\w*)*$')
USER_AGENT = 'van-lska-download/1.0 (urllib)'


class DownloadError(RuntimeError):
    """The file could not be downloaded (the message says what to do)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the hash in the file name."""


class _Interrupted(Exception):
    """A transfer stopped early; retried (resumed) by the caller."""


# --------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------
def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else
    ``~/.cache/torch`` (as ``torch.hub``)."""
    home = os.environ.get('TORCH_HOME')
    if home:
        return Path(home).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME', '~/.cache')
    return Path(cache).expanduser() / 'torch'


def cache_dir() -> Path:
    """The checkpoint cache folder, ``<torch home>/hub/checkpoints``."""
    return torch_home() / 'hub' / 'checkpoints'


def filename_from_url(url: str) -> str:
    """The last path segment of ``url`` (query and fragment dropped).

    Raises:
        ValueError: The URL path has no file name.
    """
    path = urllib.parse.urlsplit(url).path
    name = urllib.parse.unquote(path.rsplit('/', 1)[-1])
    if not name or name in ('.', '..'):
        raise ValueError(f'cannot tell a file name from URL {url!r}')
    return name


def expected_hash(filename: str) -> Optional[str]:
    """The sha256 prefix an OpenMMLab file name carries, or ``None``.

    ``'van-tiny_8xb128_in1k_20220501-385941af.pth'`` -> ``'385941af'``: the
    part after the last ``-`` of the name without its extension(s), when it
    is 8 to 64 lowercase hex digits (as ``torch.hub`` and mmdet's
    ``publish_model`` write them).
    """
    match = HASH_RE.search(filename)
    return match.group(1) if match else None


def sha256_of(path: Union[str, Path]) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def manual_instructions(url: str, dest: Path) -> str:
    """How to get ``url`` by hand and use it."""
    return (
        f'  Download it by hand, e.g.\n'
        f'      wget -c {url} -O {dest}\n'
        f'  (a file placed there under that name is used without network '
        f'access), or download it anywhere and pass the local path instead '
        f'of the URL:\n'
        f"      init_cfg=dict(type='Pretrained', checkpoint='/path/to/"
        f"{dest.name}')  or  load_from='/path/to/{dest.name}'"
    )


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------
class _Progress:
    """tqdm when installed, else a plain line on stderr; silent if off."""

    def __init__(self, total: Optional[int], done: int, name: str, on: bool):
        self.bar = None
        self.on = on
        self.total, self.done, self.name = total, done, name
        self._last = 0.0
        if not on:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(
            total=total,
            initial=done,
            unit='B',
            unit_scale=True,
            unit_divisor=1024,
            desc=name,
            file=sys.stderr,
        )

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.on and time.monotonic() - self._last > 0.5:
            self._last = time.monotonic()
            self._print()

    def _print(self, end: str = '') -> None:
        mib = self.done / 2**20
        if self.total:
            pct = 100 * self.done / self.total
            text = f'{mib:.1f}/{self.total / 2**20:.1f} MiB ({pct:.0f}%)'
        else:
            text = f'{mib:.1f} MiB'
        sys.stderr.write(f'\rDownloading {self.name}: {text}{end}')
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.on:
            self._print('\n')


# --------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------
@contextlib.contextmanager
def _locked_part(part: Path, final: Path) -> Iterator[Optional[IO[bytes]]]:
    """Open ``part`` for appending under an exclusive lock.

    Yields ``None`` when ``final`` appeared meanwhile (another process
    finished the same download while this one waited for the lock).
    """
    while True:
        f = open(part, 'ab')
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        if final.is_file():
            f.close()
            yield None
            return
        try:  # the .part we locked may have been renamed meanwhile
            same = os.stat(part).st_ino == os.fstat(f.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        f.close()
    try:
        yield f
    finally:
        f.close()


def _total_size(response, offset: int) -> Optional[int]:
    """The full file size from a 200 or 206 response, if the server says."""
    if response.status == 206:
        match = re.match(
            r'bytes\s+(\d+)-(\d+)/(\d+|\*)',
            response.headers.get('Content-Range', ''),
        )
        if not match or int(match.group(1)) != offset:
            raise _Interrupted('the server answered another byte range')
        return None if match.group(3) == '*' else int(match.group(3))
    length = response.headers.get('Content-Length')
    return int(length) if length is not None else None


def _transfer(
    url: str, f: IO[bytes], name: str, progress: bool, timeout: float
) -> None:
    """Append the rest of ``url`` to ``f`` (resuming from its size).

    Raises:
        _Interrupted: The transfer stopped early (retryable).
        urllib.error.HTTPError: The server refused the request.
        urllib.error.URLError: The host could not be reached.
    """
    offset = f.seek(0, os.SEEK_END)
    headers = {'User-Agent': USER_AGENT}
    if offset:
        headers['Range'] = f'bytes={offset}-'
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # stale .part: start again
            f.truncate(0)
            raise _Interrupted(
                'the partial file did not fit; restarting'
            ) from err
        raise
    with response:
        if response.status != 206 and offset:  # Range ignored: restart
            f.truncate(0)
            offset = 0
        total = _total_size(response, offset)
        bar = _Progress(total, offset, name, progress)
        try:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, ValueError) as err:  # reset, timeout
                    raise _Interrupted(f'connection lost ({err})') from err
                except http.client.HTTPException as err:  # IncompleteRead
                    raise _Interrupted(
                        f'transfer cut short ({err!r})'
                    ) from err
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
        finally:
            f.flush()
            bar.close()
    size = f.seek(0, os.SEEK_END)
    if total is not None and size != total:
        raise _Interrupted(f'got {size} of {total} bytes')


def _unreachable(url: str, final: Path, err: BaseException) -> DownloadError:
    return DownloadError(
        f'cannot download {url}: {err}\n'
        '  The host cannot be reached or closed the connection (no network, '
        f'a proxy, a firewall?).\n  Cache path: {final}\n'
        + manual_instructions(url, final)
    )


def _fetch(
    url: str,
    f: IO[bytes],
    part: Path,
    final: Path,
    progress: bool,
    retries: int,
    timeout: float,
    backoff: float,
) -> None:
    """Transfer ``url`` into ``f`` with up to ``retries`` resumed attempts.

    Raises:
        DownloadError: see :func:`download_checkpoint`.
    """
    name = final.name
    for attempt in range(1, retries + 1):
        try:
            _transfer(url, f, name, progress, timeout)
            break
        except _Interrupted as err:
            reason = err
        except urllib.error.HTTPError as err:
            if err.code < 500:
                raise DownloadError(
                    f'cannot download {url}: HTTP {err.code} '
                    f'{err.reason}\n  Cache path: {final}\n'
                    + manual_instructions(url, final)
                ) from err
            reason = err
        except urllib.error.URLError as err:
            # an unknown host name does not come back on a retry
            dns = isinstance(err.reason, socket.gaierror)
            if dns or attempt == retries:
                raise _unreachable(url, final, err.reason) from err
            reason = err
        except (socket.timeout, ConnectionError) as err:
            if attempt == retries:
                raise _unreachable(url, final, err) from err
            reason = err
        if attempt == retries:
            raise DownloadError(
                f'cannot download {url}: {reason} (after {retries} '
                f'attempts)\n  The {f.tell()} bytes received so far are '
                f'kept in {part}; run again to resume.\n'
                f'  Cache path: {final}\n' + manual_instructions(url, final)
            )
        print(
            f'{name}: {reason}; retrying ({attempt + 1}/{retries})',
            file=sys.stderr,
        )
        time.sleep(backoff * 2 ** (attempt - 1))


def download_checkpoint(
    url: str,
    dest_dir: Union[str, Path, None] = None,
    *,
    progress: Optional[bool] = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    verify: bool = True,
) -> Path:
    """Download ``url`` into ``dest_dir`` (default :func:`cache_dir`).

    Args:
        url: an ``http(s)://`` URL.
        dest_dir: target folder; created when missing.
        progress: show a progress bar; default: when stderr is a terminal.
        retries: transfer attempts before giving up (each resumes).
        timeout: socket timeout in seconds.
        backoff: seconds to wait before the second attempt (doubled after
            each further one).
        verify: check the sha256 prefix of OpenMMLab file names.

    Returns:
        The path of the verified file (returned at once when cached).

    Raises:
        DownloadError: The host cannot be reached, the server refused the
            request, or every attempt was interrupted (the ``.part`` file
            is kept and the next call resumes it).
        ChecksumError: The bytes do not match the name's hash (the partial
            file is deleted).
    """
    name = filename_from_url(url)
    folder = Path(dest_dir).expanduser() if dest_dir else cache_dir()
    final = folder / name
    if final.is_file():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    part = folder / (name + '.part')
    retries = max(1, int(retries))
    with _locked_part(part, final) as f:
        if f is None:  # finished by another process meanwhile
            return final
        try:
            _fetch(url, f, part, final, progress, retries, timeout, backoff)
        except BaseException:
            if f.seek(0, os.SEEK_END) == 0:  # nothing received: no litter
                part.unlink(missing_ok=True)
            raise
        f.flush()  # the lock is kept until the file has its final name
        prefix = expected_hash(name) if verify else None
        if prefix is not None:
            digest = sha256_of(part)
            if not digest.startswith(prefix):
                part.unlink()
                raise ChecksumError(
                    f'{url}: sha256 {digest[: len(prefix)]}... does not match '
                    f'the {prefix!r} in its name; the corrupt download was '
                    f'deleted. Try again; if it persists, the file on the '
                    f'server is bad.\n' + manual_instructions(url, final)
                )
        elif verify:
            print(
                f'{name}: the file name carries no sha256 prefix '
                '("-<8 hex digits>" before the extension); the download '
                'is not verified',
                file=sys.stderr,
            )
        os.replace(part, final)
    return final


# --------------------------------------------------------------------------
# mmengine integration
# --------------------------------------------------------------------------
def load_from_url(
    filename: str,
    map_location=None,
    model_dir: Optional[str] = None,
    progress: Optional[bool] = None,
):
    """mmengine ``CheckpointLoader`` scheme for ``http(s)://``: download
    (rank 0 first in distributed runs, the others then read the cache) and
    ``torch.load`` the file with torch's default (safe) ``weights_only``."""
    import torch
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    path = None
    if rank == 0:
        path = download_checkpoint(filename, model_dir, progress=progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir, progress=progress)
    return torch.load(path, map_location=map_location)


def register_download_scheme() -> None:
    """Route mmengine's ``http://`` / ``https://`` checkpoint loading (every
    ``Pretrained`` ``init_cfg`` and ``load_from`` URL) through
    :func:`load_from_url`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_url, force=True
    )
