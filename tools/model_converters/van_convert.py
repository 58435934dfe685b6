# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Convert VAN / VAN-LSKA checkpoints between the public formats.

Reads any format our loader accepts (official VAN, mmseg ``projects/van``,
mmpretrain, the LSKA authors' classification and det/seg files, OpenMMLab
full models, with or without a ``state_dict`` wrapper) and writes one of:

* ``ours`` (default): backbone weights in our names, ready for
  ``init_cfg=dict(type='Pretrained', checkpoint=DST)``;
* ``mmpretrain``: a full mmpretrain ``ImageClassifier`` state dict
  (``backbone.*`` and, when the source has a classifier, ``head.fc.*``);
* ``official``: backbone weights in the official VAN names.

Example::

    python tools/model_converters/van_convert.py \\
        van_lska_tiny_23.pth data/pretrained/van_lska_b0_k23.pth
"""

import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
)

from projects.van_lska.weights import (  # noqa: E402
    detect_format,
    gating_signature,
    split_backbone,
    to_mmpretrain_classifier,
    to_official,
    to_ours,
    unwrap_checkpoint,
)

TARGETS = ('ours', 'mmpretrain', 'official')


def convert(checkpoint: dict, target: str) -> dict:
    """Convert a loaded checkpoint to ``target`` (one of :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f'target must be one of {TARGETS}, got {target!r}')
    if target == 'mmpretrain':
        return to_mmpretrain_classifier(checkpoint)
    backbone, _ = split_backbone(unwrap_checkpoint(checkpoint))
    ours = to_ours(backbone)
    return ours if target == 'ours' else to_official(ours)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert VAN/VAN-LSKA checkpoints between formats.'
    )
    parser.add_argument('src', help='source checkpoint (any public format)')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument(
        '--to', choices=TARGETS, default='ours', help='output format'
    )
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst'
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'{args.dst} exists; pass --force to overwrite it')
    # Third-party files: keep torch's safe (weights-only) loading.
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    backbone, dropped = split_backbone(unwrap_checkpoint(checkpoint))
    signature = gating_signature(to_ours(backbone))
    state_dict = convert(checkpoint, args.to)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(
        {
            'state_dict': state_dict,
            'meta': {'converted_from': osp.basename(args.src)},
        },
        tmp,
    )
    os.replace(tmp, args.dst)
    print(
        f'{args.src}: {detect_format(backbone)} format, {signature} gating, '
        f'{len(backbone)} backbone tensors ({len(dropped)} other keys)\n'
        f'wrote {len(state_dict)} tensors in the {args.to} format to '
        f'{args.dst}'
    )


if __name__ == '__main__':
    main()
