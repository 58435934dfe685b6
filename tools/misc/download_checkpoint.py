# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Download a checkpoint by model name (from ``model-index.yml``) or URL.

The file goes to the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
default ``~/.cache/torch/hub/checkpoints``) or ``--dest``, with a progress
bar, a resumable transfer and the checks of
``projects/van_lska/weights/download.py`` (the sha256 prefix of OpenMMLab
file names, else a load and arch check). A file already there (cached, or
written by ``mim download``) is checked the same way and kept, or moved
aside to ``<name>.bad`` and downloaded again. The path of the file is
printed on the last line of stdout.

Examples::

    python tools/misc/download_checkpoint.py van_lka_b0_in1k
    python tools/misc/download_checkpoint.py https://.../x-1234abcd.pth \\
        --dest checkpoints
    python tools/misc/download_checkpoint.py --list
"""

import argparse
import sys
from typing import List, Optional

from projects.van_lska.apis.model_zoo import download


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Download a checkpoint by model name or URL (cached, '
        'verified, resumable)'
    )
    parser.add_argument(
        'name_or_url',
        nargs='?',
        help='a model name of model-index.yml (e.g. van_lka_b0_in1k) or an '
        'http(s) URL',
    )
    parser.add_argument(
        '--dest',
        help='folder for the file (default: $TORCH_HOME/hub/checkpoints)',
    )
    parser.add_argument(
        '--retries', type=int, default=3, help='attempts (each resumes)'
    )
    parser.add_argument(
        '--timeout', type=float, default=30.0, help='socket timeout (s)'
    )
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar'
    )
    parser.add_argument(
        '--list',
        action='store_true',
        help='list the models that have public weights, and exit',
    )
    args = parser.parse_args(argv)
    if not args.list and not args.name_or_url:
        parser.error('give a model name or a URL (or --list)')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return download(
        args.name_or_url,
        args.dest,
        retries=args.retries,
        timeout=args.timeout,
        progress=False if args.no_progress else None,
        list_models=args.list,
    )


if __name__ == '__main__':
    sys.exit(main())
