# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Kill a real training at chosen points and resume it.

One tiny Semantic FPN training (VAN-LSKA with one block per stage, 32 px
crops, a DataLoader worker, a checkpoint every 2 of 12 iterations, one kept)
runs through ``tools/train.py``. Each run stops at a point chosen with
:class:`~projects.van_lska.testing.fault_injection.PausingCheckpointHook`
(the hook waits on a file, so the signal always lands where it should) and
is hit by SIGKILL, SIGTERM or SIGINT; the next run continues with
``--resume``. After each: which checkpoints exist, that every file under a
final name is a complete checkpoint, what ``last_checkpoint`` names, from
which iteration the next run resumes, what the user was told, and that no
process of the killed run (trainer or DataLoader worker) is left.

The samples carry 1 MB of pickled data, the case in which a DataLoader
worker of a killed trainer used to hang for good.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import pytest
import torch

from projects.van_lska.engine.checkpoint_hook import (
    PART_SUFFIX,
    is_complete_checkpoint,
)
from projects.van_lska.testing.fault_injection import tiny_fpn_config

pytestmark = pytest.mark.slow

DEADLINE_S = 120  # for one event (a pause reached, an exit); never reached


class Run:
    """One ``tools/train.py`` process in its own process group."""

    def __init__(
        self,
        repo: Path,
        cfg: Path,
        work_dir: Path,
        log: Path,
        control: Path,
        pause: Optional[str] = None,
        truncate: bool = False,
        resume: bool = False,
    ) -> None:
        for name in ('paused', 'signal_seen', 'release'):
            (control / name).unlink(missing_ok=True)
        self.control, self.log = control, log
        cmd = [
            sys.executable,
            str(repo / 'tools' / 'train.py'),
            str(cfg),
            '--work-dir',
            str(work_dir),
        ]
        if resume:
            cmd.append('--resume')
        opts = []
        if pause:
            opts.append(f'default_hooks.checkpoint.pause_at={pause}')
        if truncate:
            opts.append('default_hooks.checkpoint.truncate_part=True')
        if opts:
            cmd += ['--cfg-options', *opts]
        env = {**os.environ, 'OMP_NUM_THREADS': '1'}
        env.pop('CUDA_VISIBLE_DEVICES', None)
        self.out = open(log, 'w')
        self.proc = subprocess.Popen(
            cmd,
            cwd=str(repo),
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid

    def text(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text()

    def wait_file(self, name: str) -> None:
        """Wait until the hook wrote ``control/name``."""
        deadline = time.monotonic() + DEADLINE_S
        while not (self.control / name).exists():
            if self.proc.poll() is not None:
                pytest.fail(
                    f'exited ({self.proc.returncode}) before '
                    f'{name}:\n{self.text()[-3000:]}'
                )
            assert time.monotonic() < deadline, self.text()[-3000:]
            time.sleep(0.02)

    def release(self) -> None:
        (self.control / 'release').touch()

    def finish(self) -> int:
        try:
            code = self.proc.wait(DEADLINE_S)
        finally:
            self.out.close()
        return code

    def group_left(self) -> List[str]:
        """Processes of this run still alive after its trainer ended (a
        DataLoader worker dies with its trainer within moments)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return []
            time.sleep(0.05)
        left = subprocess.run(
            ['ps', '-o', 'pid,stat,cmd', '-g', str(self.pgid)],
            capture_output=True,
            text=True,
        ).stdout
        os.killpg(self.pgid, signal.SIGKILL)
        return [left]


def _state(work_dir: Path):
    """(final checkpoint names, last_checkpoint target, part files)."""
    finals = sorted(p.name for p in work_dir.glob('*.pth'))
    pointer = work_dir / 'last_checkpoint'
    last = Path(pointer.read_text().strip()).name if pointer.exists() else None
    parts = sorted(p.name for p in work_dir.glob(f'.*{PART_SUFFIX}*'))
    for name in finals:  # nothing truncated under a final name
        path = work_dir / name
        assert is_complete_checkpoint(str(path)), name
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        assert ckpt['meta']['iter'] == int(re.findall(r'\d+', name)[0])
    return finals, last, parts


def _resumed_at(text: str) -> int:
    found = re.findall(r'resumed epoch: \d+, iter: (\d+)', text)
    assert len(found) == 1, text[-3000:]
    return int(found[0])


def test_kill_and_resume(repo, tiny_ade20k, tmp_path):
    cfg = tmp_path / 'tiny_fpn.py'
    control = tmp_path / 'control'
    control.mkdir()
    cfg.write_text(
        tiny_fpn_config(
            repo / 'configs' / 'fpn_van_lska_b0.py',
            tiny_ade20k,
            control_dir=control,
            payload=1 << 20,
        )
    )
    wd = tmp_path / 'work'

    def run(i, **kw) -> Run:
        return Run(repo, cfg, wd, tmp_path / f'run{i}.log', control, **kw)

    # 1. SIGKILL in the middle of writing iter_4 (its temporary file cut
    #    in half): iter_2 stays the last checkpoint, nothing truncated
    #    under a final name, the worker dies with the trainer.
    r = run(1, pause='written@4', truncate=True)
    r.wait_file('paused')
    os.kill(r.proc.pid, signal.SIGKILL)
    assert r.finish() == -signal.SIGKILL
    assert r.group_left() == []
    finals, last, parts = _state(wd)
    assert (finals, last) == (['iter_2.pth'], 'iter_2.pth')
    assert len(parts) == 1 and parts[0].startswith('.iter_4.pth')

    # 2. SIGTERM while iter_6 is being renamed: the save is completed
    #    first, then the run stops and says how to continue.
    r = run(2, pause='renamed@6', resume=True)
    r.wait_file('paused')
    os.kill(r.proc.pid, signal.SIGTERM)
    r.wait_file('signal_seen')
    r.release()
    assert r.finish() == 128 + signal.SIGTERM
    assert r.group_left() == []
    text = r.text()
    assert _resumed_at(text) == 2
    assert 'Removed' in text and '.iter_4.pth' in text  # the old part
    assert 'SIGTERM arrived while iter_6.pth was being saved' in text
    assert re.search(
        r'Training stopped by SIGTERM \(last complete '
        r'checkpoint: \S+iter_6\.pth\)',
        text,
    ), text[-2000:]
    assert 'Traceback' not in text
    assert _state(wd) == (['iter_6.pth'], 'iter_6.pth', [])

    # 3. Ctrl-C (SIGINT to the whole process group) after last_checkpoint
    #    was updated, before the old checkpoint is deleted.
    r = run(3, pause='linked@8', resume=True)
    r.wait_file('paused')
    os.killpg(r.pgid, signal.SIGINT)
    r.wait_file('signal_seen')
    r.release()
    assert r.finish() == 128 + signal.SIGINT
    assert r.group_left() == []
    text = r.text()
    assert _resumed_at(text) == 6
    assert 'SIGINT arrived while iter_8.pth was being saved' in text
    assert 'Training stopped by SIGINT (Ctrl-C) (last complete' in text
    assert 'SyntaxError' not in text and 'Traceback' not in text
    assert _state(wd) == (['iter_8.pth'], 'iter_8.pth', [])

    # 4. SIGTERM between two saves (after iteration 9).
    r = run(4, pause='iter@9', resume=True)
    r.wait_file('paused')
    os.kill(r.proc.pid, signal.SIGTERM)
    assert r.finish() == 128 + signal.SIGTERM
    assert r.group_left() == []
    text = r.text()
    assert _resumed_at(text) == 8
    assert 'Training stopped by SIGTERM (last complete checkpoint' in text
    assert 'Traceback' not in text
    assert _state(wd) == (['iter_8.pth'], 'iter_8.pth', [])

    # 5. SIGTERM twice during the save of iter_10: the second abandons it
    #    (the temporary file is removed at once).
    r = run(5, pause='written@10', resume=True)
    r.wait_file('paused')
    os.kill(r.proc.pid, signal.SIGTERM)
    r.wait_file('signal_seen')
    os.kill(r.proc.pid, signal.SIGTERM)
    assert r.finish() == 128 + signal.SIGTERM
    assert r.group_left() == []
    assert 'abandoned the save of iter_10.pth' in r.text()
    assert _state(wd) == (['iter_8.pth'], 'iter_8.pth', [])

    # 6. The last resume finishes the schedule.
    r = run(6, resume=True)
    assert r.finish() == 0, r.text()[-3000:]
    assert r.group_left() == []
    text = r.text()
    assert _resumed_at(text) == 8
    assert 'Iter(train) [12/12]' in text
    assert _state(wd) == (['iter_12.pth'], 'iter_12.pth', [])
