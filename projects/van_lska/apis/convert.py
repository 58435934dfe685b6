# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Convert VAN / VAN-LSKA checkpoint files between the public formats
(``tools/model_converters/van_convert.py``).

Reads any format our loader accepts (official VAN, mmseg ``projects/van``,
mmpretrain, the LSKA authors' classification and det/seg files, OpenMMLab
full models, with or without a ``state_dict`` wrapper) and writes one of
:data:`TARGETS`:

* ``ours``: backbone weights in our names, ready for
  ``init_cfg=dict(type='Pretrained', checkpoint=DST)``;
* ``mmpretrain``: a full mmpretrain ``ImageClassifier`` state dict
  (``backbone.*`` and, when the source has a classifier, ``head.fc.*``);
* ``official``: backbone weights in the official VAN names.
"""

import os
import os.path as osp

import torch

from projects.van_lska.apis.errors import user_errors
from projects.van_lska.weights import (
    detect_format,
    gating_signature,
    split_backbone,
    to_mmpretrain_classifier,
    to_official,
    to_ours,
    unwrap_checkpoint,
)
from projects.van_lska.weights.coverage import (
    CheckpointError,
    describe_state_dict,
    read_checkpoint,
    state_dict_of,
    van_summary,
)

TARGETS = ('ours', 'mmpretrain', 'official')


def convert(checkpoint: dict, target: str) -> dict:
    """Convert a loaded checkpoint to ``target`` (one of :data:`TARGETS`).

    Raises:
        ValueError: an unknown ``target``.
    """
    if target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
    if target == 'mmpretrain':
        return to_mmpretrain_classifier(checkpoint)
    backbone, _ = split_backbone(unwrap_checkpoint(checkpoint))
    ours = to_ours(backbone)
    return ours if target == 'ours' else to_official(ours)


def convert_file(src: str, dst: str, target: str, force: bool) -> str:
    """Convert the file ``src`` and write ``dst`` (atomically: a temporary
    file renamed once complete); returns the report it prints.

    Raises:
        SystemExit: ``dst`` exists and ``force`` is not set (nothing is
            read or written), ``src`` cannot be read or holds no VAN
            weights (nothing is written): exit 1 with a message.
    """
    if osp.exists(dst) and not force:
        raise SystemExit(f'{dst} exists; pass --force to overwrite it')
    with user_errors():
        # Third-party files: keep torch's safe (weights-only) loading.
        checkpoint = read_checkpoint(src, 'source checkpoint')
        tensors = state_dict_of(checkpoint, src)
        backbone, dropped = split_backbone(unwrap_checkpoint(tensors))
        if van_summary(backbone) is None:
            raise CheckpointError(
                f'source checkpoint {src} is '
                f'{describe_state_dict(tensors).text}. Nothing was written; '
                'give a VAN/LSKA checkpoint (official, mmpretrain, mmseg '
                "projects/van, the LSKA authors' or ours)."
            )
    signature = gating_signature(to_ours(backbone))
    state_dict = convert(checkpoint, target)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = dst + '.tmp'
    torch.save(
        {
            'state_dict': state_dict,
            'meta': {'converted_from': osp.basename(src)},
        },
        tmp,
    )
    os.replace(tmp, dst)
    report = (
        f'{src}: {detect_format(backbone)} format, {signature} gating, '
        f'{len(backbone)} backbone tensors ({len(dropped)} other keys)\n'
        f'wrote {len(state_dict)} tensors in the {target} format to {dst}'
    )
    print(report)
    return report
