# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Deterministic pauses inside a training, for the fault-injection tests.

:class:`PausingCheckpointHook` is :class:`~projects.van_lska.engine.
checkpoint_hook.AtomicCheckpointHook` that stops at one chosen point of the
run, ``pause_at='PHASE@STEP'``, until the test lets it go:

* ``iter@N``: after training iteration ``N``, before its checkpoint;
* ``written@N``: inside the save of checkpoint ``N``, its temporary file
  complete but not yet renamed (``truncate_part=True`` first cuts that file
  in half: what a kill in the middle of the write leaves);
* ``renamed@N``: the final file complete, ``last_checkpoint`` not updated;
* ``linked@N``: ``last_checkpoint`` updated, old checkpoints not deleted.

The hand-shake goes through files in ``control_dir``: the hook writes
``paused`` (``PHASE@STEP PID``) and waits; once a SIGINT/SIGTERM held back
by the save has arrived it writes ``signal_seen``; it goes on when the test
creates ``release``. No timing is guessed on either side.

:class:`AddPayload` adds a large numpy array to each sample (pickled through
the DataLoader's pipe, as mmdet's bitmap masks are): the case in which a
worker of a killed trainer used to hang for good.

:func:`tiny_fpn_config` writes the tiny training these tests run.
"""

import os
import os.path as osp
import time
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import HOOKS, TRANSFORMS

from projects.van_lska.engine.checkpoint_hook import AtomicCheckpointHook

#: Seconds between two looks at the control folder.
POLL_S = 0.01


@HOOKS.register_module()
class PausingCheckpointHook(AtomicCheckpointHook):
    """:class:`AtomicCheckpointHook` that pauses once (see the module
    docstring).

    Args:
        control_dir: folder of the hand-shake files.
        pause_at: ``'PHASE@STEP'`` or ``None`` (never pause).
        truncate_part: at ``written@N``, cut the temporary file in half
            before pausing.
        **kwargs: :class:`AtomicCheckpointHook`'s arguments.
    """

    def __init__(
        self,
        control_dir: str,
        pause_at: Optional[str] = None,
        truncate_part: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.control_dir = control_dir
        self.pause_at = pause_at
        self.truncate_part = truncate_part

    def _pause(self, phase: str, step: int) -> None:
        if self.pause_at != f'{phase}@{step}':
            return
        os.makedirs(self.control_dir, exist_ok=True)
        if phase == 'written' and self.truncate_part and self._part:
            size = osp.getsize(self._part)
            with open(self._part, 'rb+') as f:
                f.truncate(size // 2)
        with open(osp.join(self.control_dir, 'paused'), 'w') as f:
            f.write(f'{phase}@{step} {os.getpid()}')
        seen = osp.join(self.control_dir, 'signal_seen')
        release = osp.join(self.control_dir, 'release')
        while not osp.exists(release):
            if self._saving is not None and self._saving.received:
                if not osp.exists(seen):
                    open(seen, 'w').close()
            time.sleep(POLL_S)

    def reached(self, phase: str, step: int, path: str) -> None:
        self._pause(phase, step)

    def after_train_iter(
        self, runner, batch_idx: int, data_batch=None, outputs=None
    ) -> None:
        self._pause('iter', runner.iter + 1)
        super().after_train_iter(runner, batch_idx, data_batch, outputs)


@TRANSFORMS.register_module()
class AddPayload(BaseTransform):
    """Add ``results['payload']``: ``nbytes`` of numpy data (pickled, not
    shared, on its way from a DataLoader worker to the trainer)."""

    def __init__(self, nbytes: int = 1 << 20) -> None:
        self.nbytes = nbytes

    def transform(self, results: dict) -> dict:
        results['payload'] = np.ones(self.nbytes, np.uint8)
        return results


_TINY_FPN = """
_base_ = [{base!r}]
custom_imports = dict(
    imports=['projects.van_lska', 'projects.van_lska.testing.fault_injection'],
    allow_failed_imports=False,
)
data_root = {data_root!r}
crop = (32, 32)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop),
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=[8, 16, 32, 64],
            depths={depths!r},
            mlp_ratios=[2, 2, 2, 2],
        ),
        init_cfg=None,
        drop_path_rate=0.0,
        norm_cfg=norm_cfg,
    ),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    decode_head=dict(
        in_channels=[16, 16, 16, 16], channels=16, norm_cfg=norm_cfg
    ),
)
train_dataloader = dict(
    batch_size=2,
    num_workers={workers},
    persistent_workers={persistent},
    dataset=dict(
        data_root=data_root,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='RandomCrop', crop_size=crop),
            dict(type='AddPayload', nbytes={payload}),
            dict(
                type='PackSegInputs',
                meta_keys=('img_path', 'ori_shape', 'img_shape', 'payload'),
            ),
        ],
    ),
)
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root),
)
val_dataloader = None
val_evaluator = None
val_cfg = None
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters={max_iters}, val_interval=100
)
param_scheduler = []
# mmseg's own visualizer: these runs draw nothing, and the tests do not
# depend on the suite's choice of one
visualizer = dict(
    _delete_=True,
    type='SegLocalVisualizer',
    name='visualizer',
    vis_backends=[dict(type='LocalVisBackend')],
)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(
        _delete_=True,
        type={hook!r},
        by_epoch=False,
        interval=2,
        max_keep_ckpts=1,{control}
    ),
)
"""


def tiny_fpn_config(
    base: str,
    data_root: str,
    control_dir: Optional[str] = None,
    payload: int = 0,
    max_iters: int = 12,
    workers: int = 1,
    depths=(1, 1, 1, 1),
) -> str:
    """The text of a tiny Semantic FPN config for ADE20K-layout data.

    VAN-LSKA with ``depths`` blocks and widths 8-64, 32 px crops, batch 2,
    a checkpoint every 2 iterations (one kept), no validation; the test
    split is ``data_root``'s validation images.

    Args:
        base: path of ``configs/fpn_van_lska_b0.py``.
        data_root: an ADEChallengeData2016-layout folder.
        control_dir: use :class:`PausingCheckpointHook` with this folder
            (else mmengine's ``CheckpointHook``, which the tools replace by
            the atomic one).
        payload: bytes of :class:`AddPayload` per sample.
        max_iters: schedule length.
        workers: DataLoader workers of the train split.
        depths: blocks per stage.
    """
    return _TINY_FPN.format(
        base=str(base),
        data_root=str(data_root),
        depths=list(depths),
        workers=workers,
        persistent=workers > 0,
        payload=payload,
        max_iters=max_iters,
        hook='PausingCheckpointHook' if control_dir else 'CheckpointHook',
        control=f'\n        control_dir={str(control_dir)!r},'
        if control_dir
        else '',
    )
