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
  ever sits under the final name;
* a name without such a suffix, or one of :data:`SHARED_SUFFIX_NAMES` (two
  published files whose names carry the same suffix, so that it cannot
  identify either), is checked by content instead: the file must load with
  torch's safe loader as a dict holding tensors (an HTML error page is
  refused and never cached), and when the name states a VAN arch
  (``van-b4-...``, :func:`arch_in_name`) its backbone must have that arch's
  blocks per stage and widths (:func:`check_arch`); a message says which
  check was made. Reading and describing a bad file is
  :func:`~projects.van_lska.weights.coverage.read_checkpoint`'s;
* ``check_cached=True`` (the download tool) checks a file already under the
  final name the same way; a bad one is moved aside to ``<name>.bad`` (with
  a message naming it and the URL) and downloaded again, once.
  :func:`load_from_url` does the same when a cached file fails to load;
* an unreachable host raises :class:`DownloadError` naming the URL, the
  cache path and how to download the file by hand.

:func:`register_download_scheme` makes mmengine's ``CheckpointLoader`` (and
so every ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` and
``load_from=URL``) use this code for ``http://`` and ``https://``, and
check a local file named after a model-zoo file (:func:`model_zoo_file`:
the ``Weights`` of ``model-index.yml``) with :func:`verify_file` before
loading it: ``mim download`` writes such files without any check.
"""

import contextlib
import functools
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Mapping, Optional, Union

try:  # advisory lock against two processes sharing one .part file
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

CHUNK = 1 << 16
# '-<hex>' at the end of the name, before extensions such as '.pth.tar'
HASH_RE = re.compile(r'-([0-9a-f]{8,64})(?:\.[A-Za-z]\w*)*$')
USER_AGENT = 'van-lska-download/1.0 (urllib)'

#: ``van-b4-...``, ``van_tiny_754...``: the arch a file name states.
_ARCH_IN_NAME = re.compile(
    r'(?:^|[-_/])van[-_](b[0-6]|tiny|small|base|large)(?=[-_.])',
    re.IGNORECASE,
)
_SEG = 'van-{}-in1kpre_upernet_3rdparty_512x512-ade20k_20230522-653bd6b7.pth'
#: Published file names whose hash suffix cannot identify their content:
#: OpenMMLab's UperNet VAN-B3 and VAN-B4 (IN-1K) ADE20K files of mmseg
#: ``projects/van`` carry the same suffix, so at most one of them can match
#: it, and the other file would pass a suffix check if it were served
#: under the wrong name. They are checked by content instead (loadable,
#: backbone of the arch in the name: B3 3-5-27-3 blocks, B4 3-6-40-3).
SHARED_SUFFIX_NAMES = frozenset({_SEG.format('b3'), _SEG.format('b4')})


class DownloadError(RuntimeError):
    """The file could not be downloaded (the message says what to do)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not match the hash in the file name."""


class NotACheckpointError(DownloadError):
    """A file that cannot vouch for itself by its name's hash does not load
    as a checkpoint, or holds another arch than its name states."""


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
# Verification
# --------------------------------------------------------------------------
def arch_in_name(filename: str) -> Optional[str]:
    """The VAN arch (``'b0'``-``'b6'``) a file name states, or ``None``.

    ``'van-b4-in22kpre_upernet_..._20230522-4a4d744a.pth'`` -> ``'b4'``;
    ``'van_tiny_754.pth.tar'`` -> ``'b0'``.
    """
    from ..models.van import ARCH_ALIASES

    match = _ARCH_IN_NAME.search(filename)
    if not match:
        return None
    name = match.group(1).lower()
    return ARCH_ALIASES.get(name, name)


def _arch_text(depths, dims) -> str:
    return (
        f'depths {"-".join(map(str, depths))}, widths '
        f'{"-".join(map(str, dims))}'
    )


def check_arch(state_dict: Mapping, arch: str, source: str) -> str:
    """Check that a state dict (any public layout) holds a VAN backbone of
    ``arch`` (``'b0'``-``'b6'``): its blocks per stage and stage widths.

    Returns:
        ``'depths 3-6-40-3, widths 64-128-320-512'``: what was found.

    Raises:
        CheckpointError: no VAN backbone, or another arch.
    """
    from ..models.van import resolve_arch
    from .convert import split_backbone, to_ours
    from .coverage import CheckpointError, arch_of

    want = resolve_arch(arch)
    expected = (tuple(want['depths']), tuple(want['embed_dims']))
    backbone, _ = split_backbone(state_dict)
    found = arch_of(to_ours(backbone))
    if found is None:
        raise CheckpointError(
            f'{source}: its name says VAN-{arch.upper()}, but it holds no '
            'VAN backbone weights'
        )
    if found != expected:
        raise CheckpointError(
            f'{source}: its name says VAN-{arch.upper()} '
            f'({_arch_text(*expected)}), but its backbone has '
            f'{_arch_text(*found)}: this is another model'
        )
    return _arch_text(*found)


def check_content(path: Path, url: str, name: str) -> str:
    """The check of a file whose name cannot vouch for it: it loads with
    torch's safe loader as a dict holding tensors, and holds the VAN arch
    its name states (if any).

    Returns:
        What was found (one phrase).

    Raises:
        NotACheckpointError: It does not load (the message says what the
            file looks like: empty, an HTML page, a truncated zip, ...),
            holds no tensor, or holds another arch.
    """
    from .coverage import CheckpointError, read_checkpoint, state_dict_of

    try:
        state_dict = state_dict_of(read_checkpoint(str(path)), str(path))
        if not state_dict:
            raise CheckpointError(f'{path} holds no tensor: not a checkpoint')
        arch = arch_in_name(name)
        found = check_arch(state_dict, arch, url) if arch else None
    except CheckpointError as err:
        text = str(err)  # check_arch's messages start with the URL
        if not text.startswith(f'{url}:'):
            text = f'{url}: {text}'
        raise NotACheckpointError(text) from err
    what = f'a checkpoint that loads ({len(state_dict)} tensors)'
    if found is not None:
        what += f' with a VAN-{arch.upper()} backbone ({found})'
    return what


def verify_file(path: Path, url: str, name: Optional[str] = None) -> str:
    """Check the bytes at ``path`` as the file ``name`` (default: its own
    name) of ``url``: the sha256 prefix of the name, or, when the name has
    none or one of :data:`SHARED_SUFFIX_NAMES`, the content (a loadable
    checkpoint; the VAN arch the name states).

    Returns:
        One line on what was checked.

    Raises:
        ChecksumError: The sha256 does not match the name.
        NotACheckpointError: The content check failed.
    """
    name = name or path.name
    prefix = expected_hash(name)
    if prefix is not None and name not in SHARED_SUFFIX_NAMES:
        digest = sha256_of(path)
        if not digest.startswith(prefix):
            raise ChecksumError(
                f'{url}: sha256 {digest[: len(prefix)]}... does not match '
                f'the {prefix!r} in its name'
            )
        return f'sha256 {digest[:16]}... matches the {prefix!r} in its name'
    what = check_content(path, url, name)
    if prefix is None:
        why = (
            'the name carries no sha256 prefix ("-<8 hex digits>" before '
            'the extension)'
        )
    else:
        others = ', '.join(
            sorted(
                n
                for n in SHARED_SUFFIX_NAMES
                if n != name and expected_hash(n) == prefix
            )
        )
        why = (
            f'the {prefix!r} in the name is also the suffix of {others}, so '
            f'it cannot identify the content (sha256 here: '
            f'{sha256_of(path)[:16]}...)'
        )
    return f'{why}; checked by content instead: {what}'


# --------------------------------------------------------------------------
# The model zoo's files
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ZooFile:
    """A file of the model zoo (a ``Weights`` URL of ``model-index.yml``).

    Attributes:
        model: the model name (= config name) whose ``Weights`` it is.
        url: the ``Weights`` URL.
        name: the published file name (the last part of ``url``).
    """

    model: str
    url: str
    name: str


def name_stem(filename: str) -> Optional[str]:
    """The name without its ``-<sha256 prefix>`` and extension(s), or
    ``None`` when it carries no such suffix.

    ``'van-b0-in1kpre_fpn_..._20230522-75a76298.pth'`` ->
    ``'van-b0-in1kpre_fpn_..._20230522'``.
    """
    match = HASH_RE.search(filename)
    return filename[: match.start()] if match else None


@functools.lru_cache(maxsize=4)
def _zoo_table(index: str) -> Dict[str, ZooFile]:
    """``{published name: ZooFile}`` of every ``Weights`` of ``index``."""
    from ..apis.metafiles import load_models

    table: Dict[str, ZooFile] = {}
    for model, entry in load_models(Path(index)).items():
        url = entry.get('Weights')
        if url and url.startswith(('http://', 'https://')):
            name = filename_from_url(url)
            table.setdefault(name, ZooFile(model, url, name))
    return table


def model_zoo_files(
    index: Union[str, Path, None] = None,
) -> Dict[str, ZooFile]:
    """The model zoo's weight files, read from ``model-index.yml`` (the
    metafiles' ``Weights``; ``index`` default: the install's): ``{file
    name: ZooFile}``."""
    if index is None:
        from ..apis.metafiles import MODEL_INDEX as index
    return dict(_zoo_table(str(index)))


def model_zoo_file(
    filename: str, index: Union[str, Path, None] = None
) -> Optional[ZooFile]:
    """The model-zoo file a local file name stands for, or ``None``.

    A name stands for a zoo file when it is the published name, or the
    published name with another hash suffix (a copy published again, or
    served by a mirror or a test under its own hash): such a file claims
    to be that model's weights and is checked by its own name
    (:func:`verify_file`). Other names stand for nothing.
    """
    table = model_zoo_files(index)
    name = Path(filename).name
    if name in table:
        return table[name]
    stem = name_stem(name)
    if stem is None:
        return None
    return next(
        (z for n, z in table.items() if name_stem(n) == stem),
        None,
    )


_VERIFIED: Dict[tuple, str] = {}


def verify_local_zoo_file(
    path: Union[str, Path], index: Union[str, Path, None] = None
) -> Optional[str]:
    """Check a local file named after a model-zoo file
    (:func:`model_zoo_file`) exactly as the download is checked
    (:func:`verify_file`: the sha256 prefix of its name; the content rule
    for :data:`SHARED_SUFFIX_NAMES`). A file that passed is not hashed
    again in this process while its size and modification time stay.

    Returns:
        ``None`` for a name that stands for no zoo file (nothing checked),
        else one line on what was checked.

    Raises:
        ChecksumError, NotACheckpointError: see :func:`verify_file` (the
            messages name ``path``).
    """
    path = Path(path).expanduser()
    zoo = model_zoo_file(path.name, index)
    if zoo is None or not path.is_file():
        return None
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _VERIFIED:
        _VERIFIED[key] = verify_file(path, str(path))
    return _VERIFIED[key]


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.bad`` (``.bad1``, ... if taken)."""
    target = path.with_name(path.name + '.bad')
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f'{path.name}.bad{n}')
    os.replace(path, target)
    return target


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


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
    check_cached: bool = False,
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
        verify: check the download (:func:`verify_file`: the sha256
            prefix of OpenMMLab file names, else the content).
        check_cached: check a file already under the final name too; a bad
            one is moved aside to ``<name>.bad`` and downloaded again.

    Returns:
        The path of the verified file (returned at once when cached).

    Raises:
        DownloadError: The host cannot be reached, the server refused the
            request, or every attempt was interrupted (the ``.part`` file
            is kept and the next call resumes it).
        ChecksumError: The bytes do not match the name's hash (the partial
            file is deleted).
        NotACheckpointError: A name without a usable hash, and the bytes
            are no checkpoint (e.g. an HTML page) or hold another arch
            than the name states (the partial file is deleted).
    """
    name = filename_from_url(url)
    folder = Path(dest_dir).expanduser() if dest_dir else cache_dir()
    final = folder / name
    if final.is_file():
        if not (check_cached and verify):
            return final
        try:
            account = verify_file(final, url)
        except DownloadError as err:
            moved = _move_aside(final)
            print(
                f'{final} (the download of {url}) is bad: '
                f'{_first_line(err)}\n  It was moved to {moved}; '
                'downloading it again.',
                file=sys.stderr,
            )
        else:
            if not account.startswith('sha256'):
                print(f'{name}: {account}', file=sys.stderr)
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
        if verify:
            try:
                account = verify_file(part, url, name)
            except DownloadError as err:
                part.unlink(missing_ok=True)
                raise type(err)(
                    f'{err}\n  The download was deleted; nothing is stored '
                    f'under {final}. Try again; if it persists, the file on '
                    'the server is bad.\n' + manual_instructions(url, final)
                ) from err
            if not account.startswith('sha256'):
                print(f'{name}: {account}', file=sys.stderr)
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
    load the file with torch's safe ``weights_only=True``.

    A cached file that does not load (an interrupted copy, an HTML page
    saved by another tool) is named with its URL, moved aside to
    ``<name>.bad`` and downloaded again, once (by rank 0).

    Raises:
        DownloadError: see :func:`download_checkpoint`; also when the file
            still does not load after a fresh download.
    """
    import torch
    from mmengine.dist import get_dist_info

    rank, world_size = get_dist_info()
    checkpoint = None
    if rank == 0:
        checkpoint = _load_or_refetch(
            filename, model_dir, progress, map_location
        )
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir, progress=progress)
            checkpoint = _load(path, filename, map_location)
    return checkpoint


def _read(path: Path, map_location: Any) -> Any:
    """Safe-load ``path`` (``weights_only``) to ``map_location``.

    Raises:
        CheckpointError: it does not load (the message says why).
    """
    import torch

    from .coverage import read_checkpoint

    checkpoint = read_checkpoint(str(path))
    if map_location not in (None, 'cpu', torch.device('cpu')):
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=True
        )
    return checkpoint


def _load(path: Path, url: str, map_location: Any) -> Any:
    """Safe-load ``path`` (downloaded from ``url``)."""
    from .coverage import CheckpointError

    try:
        return _read(path, map_location)
    except CheckpointError as err:
        raise DownloadError(
            f'{err}\n  It is the download of {url}. Delete it and try '
            'again, or:\n' + manual_instructions(url, path)
        ) from err


def _load_or_refetch(
    url: str,
    model_dir: Optional[str],
    progress: Optional[bool],
    map_location: Any,
) -> Any:
    """Download (or take from the cache) and load ``url``; a cached file
    that does not load is moved aside and downloaded again, once."""
    from .coverage import CheckpointError

    folder = Path(model_dir).expanduser() if model_dir else cache_dir()
    name = filename_from_url(url)
    cached = (folder / name).is_file()
    # a model-zoo file in the cache may have been put there by another
    # tool (mim download, torch.hub) without a check: check it again
    path = download_checkpoint(
        url,
        model_dir,
        progress=progress,
        check_cached=model_zoo_file(name) is not None,
    )
    try:
        return _read(path, map_location)
    except CheckpointError as err:
        if not cached:  # a fresh, verified download that does not load
            raise DownloadError(
                f'{err}\n  It was just downloaded from {url}.'
            ) from err
        moved = _move_aside(path)
        print(
            f'{_first_line(err)}\n  It is the cached download of {url}; '
            f'moved to {moved}, downloading it again.',
            file=sys.stderr,
        )
    path = download_checkpoint(url, model_dir, progress=progress)
    return _load(path, url, map_location)


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths: mmengine's own
    loader, after :func:`~projects.van_lska.weights.coverage.
    check_model_zoo_file` (a file named after a model-zoo file must match
    its name's hash; other files are loaded as before).

    Raises:
        CheckpointError: a model-zoo name whose bytes do not match it.
    """
    from mmengine.runner import checkpoint as mmengine_checkpoint

    from .coverage import check_model_zoo_file

    check_model_zoo_file(filename)
    return mmengine_checkpoint.load_from_local(filename, map_location)


def register_download_scheme() -> None:
    """Route mmengine's ``http://`` / ``https://`` checkpoint loading (every
    ``Pretrained`` ``init_cfg`` and ``load_from`` URL) through
    :func:`load_from_url`, and its local-file loading through
    :func:`load_from_local`."""
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_url, force=True
    )
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True
    )
