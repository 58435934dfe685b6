# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Make a training checkpoint publishable (as mmdet's ``publish_model``).

Keeps only ``state_dict`` and ``meta`` (``--save-keys``): the optimizer
state, ``message_hub``, ``param_schedulers``, EMA state and other training
leftovers are dropped. The file is saved, its sha256 computed, and it is
renamed to ``OUT-<first 8 hex digits>.pth``, the name the download code
(``projects/van_lska/weights/download.py``) verifies.

Example::

    python tools/model_converters/publish_model.py \\
        work_dirs/van_lka_b0_in1k/epoch_300.pth van_lka_b0_in1k
    # -> van_lka_b0_in1k-1a2b3c4d.pth
"""

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from projects.van_lska.weights.safe_load import (  # noqa: E402
    allow_openmmlab_checkpoints,
)

DEFAULT_KEYS = ('meta', 'state_dict')


def strip_checkpoint(
    checkpoint: Dict, save_keys: Sequence[str] = DEFAULT_KEYS
) -> Dict:
    """Only ``save_keys`` of ``checkpoint``; a bare state dict (no
    ``state_dict`` key) becomes ``{'state_dict': checkpoint}``.

    Raises:
        ValueError: The checkpoint has no ``state_dict``.
    """
    if 'state_dict' not in checkpoint:
        if checkpoint and all(
            isinstance(v, torch.Tensor) for v in checkpoint.values()
        ):
            checkpoint = {'state_dict': checkpoint}
        else:
            raise ValueError(
                'not a checkpoint: no "state_dict" (keys: '
                + ', '.join(map(str, list(checkpoint)[:8]))
                + ')'
            )
    return {k: checkpoint[k] for k in save_keys if k in checkpoint}


def publish(
    in_file: str, out_file: str, save_keys: Sequence[str] = DEFAULT_KEYS
) -> Path:
    """Strip ``in_file``, save it as ``out_file``, rename it to
    ``<out_file without .pth>-<sha256[:8]>.pth`` and return that path."""
    allow_openmmlab_checkpoints()  # safe loading of mmengine checkpoints
    checkpoint = torch.load(in_file, map_location='cpu')
    checkpoint = strip_checkpoint(checkpoint, save_keys)
    out = Path(out_file)
    stem = out.name[:-4] if out.name.endswith('.pth') else out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f'{stem}.pth.tmp'
    torch.save(checkpoint, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = out.parent / f'{stem}-{digest[:8]}.pth'
    os.replace(tmp, final)
    return final


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Strip a checkpoint for release and add the sha256 '
        'prefix to its name'
    )
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument(
        'out_file', help='output name; "-<sha256[:8]>.pth" is appended'
    )
    parser.add_argument(
        '--save-keys',
        nargs='+',
        default=list(DEFAULT_KEYS),
        help='keys to keep (default: meta state_dict)',
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Path:
    args = parse_args(argv)
    final = publish(args.in_file, args.out_file, args.save_keys)
    print(final)
    return final


if __name__ == '__main__':
    main()
