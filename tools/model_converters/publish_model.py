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
from pathlib import Path
from typing import List, Optional

from projects.van_lska.apis.model_zoo import DEFAULT_KEYS, publish


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
