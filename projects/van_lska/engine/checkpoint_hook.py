# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Crash-safe checkpoints: :class:`AtomicCheckpointHook`.

mmengine's ``CheckpointHook`` deletes the oldest kept checkpoint *before* it
writes the new one, writes the new one directly under its final name and
only then rewrites ``last_checkpoint``. A kill in that window leaves a
truncated ``iter_N.pth`` and a ``last_checkpoint`` naming a deleted file, and
``--resume`` fails. :class:`AtomicCheckpointHook` (a drop-in subclass,
registered in mmengine's root ``HOOKS``) saves in this order instead:

1. the checkpoint goes to a hidden temporary file in the same folder
   (``.iter_N.pth.part-PID``), which is flushed to disk (``fsync``);
2. it is renamed to its final name (``os.replace``: atomic), and the folder
   is synced;
3. ``last_checkpoint`` is replaced the same way (temporary file, fsync,
   rename), so it always names a complete file;
4. only then are checkpoints beyond ``max_keep_ckpts`` (and a superseded
   best checkpoint) deleted.

A kill at any point leaves every file under a final name complete, and
``last_checkpoint`` naming a complete checkpoint: a resumed run loses at most
one checkpoint interval. SIGINT and SIGTERM that arrive during a save are
held back until the save is complete; the hook then says so and passes the
signal on (Ctrl-C raises ``KeyboardInterrupt``; SIGTERM does what it did
before the save). A second SIGINT/SIGTERM during the same save abandons it:
the temporary file is removed and the process exits at once (the previous
checkpoint stays the last one). Temporary files left by a killed process are
removed when the next run starts.

The suite's tools use this hook for every config
(:func:`use_atomic_checkpoints`, called by the runner set-up); a config can
also name it itself::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', ...))

On storage other than a local disk (``backend_args``, ``out_dir`` URLs) the
hook behaves exactly as mmengine's.
"""

import glob
import os
import os.path as osp
import re
import signal
import sys
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

#: The signals held back while a checkpoint is written.
DEFERRED_SIGNALS: Tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
#: Suffix of a checkpoint being written (``.NAME.part-PID``).
PART_SUFFIX = '.part-'
#: Checkpoint types whose saves are made atomic by
#: :func:`use_atomic_checkpoints`.
PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')

_STEP_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def fsync_dir(folder: str) -> None:
    """Flush a folder's entries (a rename) to disk; no-op where folders
    cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish_file(tmp: str, final: str) -> None:
    """fsync ``tmp``, rename it to ``final`` (atomic) and sync the folder."""
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(osp.dirname(osp.abspath(final)))


def write_text_durable(path: str, text: str) -> None:
    """Replace ``path`` by ``text`` atomically: a reader (or a process that
    starts after a kill) sees the old content or the new one, never a
    truncated file."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}',
        suffix=f'{PART_SUFFIX}{os.getpid()}',
        dir=folder,
    )
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600
        publish_file(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def part_path(final: str) -> str:
    """The temporary name a checkpoint is written under before it is
    renamed to ``final``."""
    folder, name = osp.split(final)
    return osp.join(folder, f'.{name}{PART_SUFFIX}{os.getpid()}')


def leftover_parts(folder: str) -> List[str]:
    """Temporary files of saves that never finished (killed processes)."""
    if not osp.isdir(folder):
        return []
    return sorted(glob.glob(osp.join(folder, f'.*{PART_SUFFIX}*')))


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file (a zip archive whose
    directory at the end can be read); a truncated or empty file is not."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def latest_complete_checkpoint(work_dir: str) -> Tuple[Optional[str], str]:
    """The checkpoint ``--resume`` should continue from.

    ``last_checkpoint`` when it names a complete file; otherwise (a run
    killed while mmengine's plain hook was saving) the newest complete
    ``iter_N.pth``/``epoch_N.pth`` of ``work_dir``.

    Returns:
        tuple: the path (``None`` when there is none) and a sentence for
        the log saying where it came from.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named and is_complete_checkpoint(named):
            return named, f'{pointer} names {named}'
    candidates = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = _STEP_NAME.match(osp.basename(path))
        if m and is_complete_checkpoint(path):
            candidates.append((int(m.group(1)), path))
    why = (
        f'{pointer} names {named!r}, which is missing or incomplete'
        if named
        else f'there is no {pointer}'
    )
    if not candidates:
        return None, f'{why}, and {work_dir} holds no complete checkpoint'
    path = max(candidates)[1]
    return path, f'{why}; the newest complete checkpoint is {path}'


# --------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------
def _say(text: str) -> None:
    """Write to stderr from a signal handler (no buffered-IO re-entry)."""
    try:
        os.write(sys.stderr.fileno(), text.encode())
    except (OSError, ValueError, AttributeError):
        pass


class DeferredSignals:
    """Hold back SIGINT/SIGTERM while a checkpoint is written.

    The first signal is recorded (and announced on stderr); on
    :meth:`restore` the previous handlers come back and :meth:`replay`
    delivers the recorded signal to them. A second signal calls
    ``on_abandon(signum)`` at once (which removes what was being written
    and ends the process). Only the main thread can own signal handlers:
    elsewhere this does nothing.

    Args:
        what: what is being saved, for the messages (e.g. ``iter_4.pth``).
        on_abandon: called on a second signal; must not return.
    """

    def __init__(self, what: str, on_abandon: Callable[[int], None]) -> None:
        self.what = what
        self.on_abandon = on_abandon
        self.received: List[int] = []
        self._previous: Dict[int, object] = {}

    def install(self) -> 'DeferredSignals':
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in DEFERRED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            _say(
                f'\n{name} received while saving {self.what}: finishing '
                f'the save first (send {name} again to abandon it).\n'
            )
        else:
            self.on_abandon(signum)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @property
    def first(self) -> Optional[int]:
        return self.received[0] if self.received else None

    def replay(self) -> None:
        """Deliver the recorded signal as if it had arrived now."""
        signum = self.first
        if signum is None:
            return
        handler = self._previous.get(signum, signal.SIG_DFL)
        if callable(handler):
            handler(signum, None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(signum)


# --------------------------------------------------------------------------
# The hook
# --------------------------------------------------------------------------
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe saves (see the module
    docstring); takes the same arguments.

    Subclasses may override :meth:`reached` to observe the steps of a save
    (the fault-injection tests pause there).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._saving: Optional[DeferredSignals] = None
        self._doomed: List[str] = []
        self._part: Optional[str] = None

    # ------------------------------------------------------------ helpers
    def reached(self, phase: str, step: int, path: str) -> None:
        """Called at each step of a save, with the checkpoint's final
        ``path``: ``'written'`` (the temporary file is complete, not yet
        renamed), ``'renamed'`` (the final file is complete;
        ``last_checkpoint`` not yet updated) and ``'linked'``
        (``last_checkpoint`` updated; old checkpoints not yet deleted).
        Does nothing here."""

    @property
    def _local(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not (self._local and is_main_process()):
            return
        for path in leftover_parts(self.out_dir):
            os.unlink(path)
            runner.logger.warning(
                f'Removed {path}: a checkpoint whose save was interrupted '
                '(it never replaced a complete checkpoint).'
            )

    def _abandon(self, signum: int) -> None:
        """Second signal during a save: drop the unfinished file, exit."""
        part = self._part
        if part and osp.exists(part):
            try:
                os.unlink(part)
            except OSError:
                pass
        name = signal.Signals(signum).name
        _say(
            f'{name} received again: abandoned the save of '
            f'{self._saving.what if self._saving else "a checkpoint"} '
            '(its temporary file was removed; every file under a final name '
            'is complete and last_checkpoint names a complete checkpoint). '
            'Exiting.\n'
        )
        os._exit(128 + signum)

    @contextmanager
    def _transaction(self, runner, what: str) -> Iterator[None]:
        """Signals held back; deletions collected and done at the end."""
        if self._saving is not None:  # nested (best -> last checkpoint)
            yield
            return
        self._saving = DeferredSignals(what, self._abandon).install()
        self._doomed = []
        ok = False
        try:
            yield
            ok = True
            if is_main_process():
                for path in dict.fromkeys(self._doomed):
                    if path == self.last_ckpt:
                        continue
                    if osp.isfile(path):
                        os.unlink(path)
                    elif osp.isdir(path):
                        self.file_backend.rmtree(path)
        finally:
            deferred, self._saving = self._saving, None
            self._doomed = []
            deferred.restore()
        if ok and deferred.first is not None:
            name = signal.Signals(deferred.first).name
            runner.logger.warning(
                f'{name} arrived while {deferred.what} was being saved: the '
                f'save was completed (last checkpoint: {self.last_ckpt}). '
                'Stopping now; continue this run with --resume.'
            )
            deferred.replay()

    def _atomic_save(self, runner, out_dir: str, filename: str, **kwargs):
        """``runner.save_checkpoint`` through a temporary file + rename."""
        final = osp.join(out_dir, filename)
        step = self._step_of(filename)
        self._part = part_path(final)
        try:
            type(runner).save_checkpoint(
                runner, out_dir, osp.basename(self._part), **kwargs
            )
            if is_main_process():
                self.reached('written', step, final)
                publish_file(self._part, final)
                self.reached('renamed', step, final)
        finally:
            if is_main_process() and osp.exists(self._part):
                os.unlink(self._part)  # the save failed half-way
            self._part = None

    @staticmethod
    def _step_of(filename: str) -> int:
        m = re.search(r'(\d+)\.pth$', filename)
        return int(m.group(1)) if m else -1

    @contextmanager
    def _deferred_removals(self, runner) -> Iterator[None]:
        """While mmengine's code runs: removals wait for the end of the
        transaction and saves go through :meth:`_atomic_save`."""
        backend = self.file_backend
        backend.remove = self._doomed.append
        backend.rmtree = self._doomed.append
        runner.save_checkpoint = lambda out_dir, filename, *args, **kw: (
            self._atomic_save(runner, out_dir, filename, **kw)
        )
        try:
            yield
        finally:
            del backend.remove, backend.rmtree, runner.save_checkpoint

    # ------------------------------------------------------------- saving
    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self._local:
            return super()._save_checkpoint_with_step(runner, step, meta)
        filename = self.filename_tmpl.format(step)
        with self._transaction(runner, filename):
            if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step
            ):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    old = self.keep_ckpt_ids.popleft()
                    self._doomed.append(
                        osp.join(self.out_dir, self.filename_tmpl.format(old))
                    )
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info(
                    'keep_ckpt_ids', list(self.keep_ckpt_ids)
                )
            self.last_ckpt = osp.join(self.out_dir, filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            self._atomic_save(
                runner,
                self.out_dir,
                filename,
                file_client_args=self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args,
            )
            if is_main_process():
                write_text_durable(
                    osp.join(runner.work_dir, 'last_checkpoint'),
                    self.last_ckpt,
                )
                self.reached('linked', step, self.last_ckpt)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not (self._local and self.save_best):
            return super()._save_best_checkpoint(runner, metrics)
        with self._transaction(runner, 'the best checkpoint'):
            with self._deferred_removals(runner):
                super()._save_best_checkpoint(runner, metrics)


def use_atomic_checkpoints(cfg) -> bool:
    """Make the config's checkpoint hook :class:`AtomicCheckpointHook`, in
    place: ``default_hooks.checkpoint`` of type ``CheckpointHook`` (or
    absent: mmengine's default, one per epoch) becomes the atomic hook with
    the same arguments. Any other type, or ``checkpoint=None``, is kept.

    Args:
        cfg (mmengine.Config): the config, before the runner is built.

    Returns:
        bool: whether the hook was changed.
    """
    hooks = cfg.get('default_hooks', None)
    if hooks is None:
        hooks = cfg['default_hooks'] = {}
    if 'checkpoint' not in hooks:
        hooks['checkpoint'] = dict(type='AtomicCheckpointHook', interval=1)
        return True
    hook = hooks['checkpoint']
    if not isinstance(hook, dict):
        return False
    kind = hook.get('type', 'CheckpointHook')
    if kind in PLAIN_CHECKPOINT_HOOKS or kind is CheckpointHook:
        hook['type'] = 'AtomicCheckpointHook'
        return True
    return False
