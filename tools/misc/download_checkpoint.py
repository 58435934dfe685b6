# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Download a checkpoint by model name (from ``model-index.yml``) or URL.

The file goes to the torch hub cache (``$TORCH_HOME/hub/checkpoints``,
default ``~/.cache/torch/hub/checkpoints``) or ``--dest``, with a progress
bar, a resumable transfer and the sha256 check of OpenMMLab file names
(``projects/van_lska/weights/download.py``); a cached file is not downloaded
again. The path of the file is printed on the last line of stdout.

Examples::

    python tools/misc/download_checkpoint.py van_lka_b0_in1k
    python tools/misc/download_checkpoint.py https://.../x-1234abcd.pth \\
        --dest checkpoints
    python tools/misc/download_checkpoint.py --list
"""

import argparse
import difflib
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from projects.van_lska.weights.download import (  # noqa: E402
    DownloadError,
    download_checkpoint,
)

MODEL_INDEX = REPO_ROOT / 'model-index.yml'


def load_models(index: Path = MODEL_INDEX) -> Dict[str, Dict]:
    """Every model of ``index`` (following its ``Import`` list), by name.

    Raises:
        FileNotFoundError: ``index`` or an imported metafile is missing.
    """
    data = yaml.safe_load(index.read_text()) or {}
    models: Dict[str, Dict] = {}
    for entry in data.get('Models') or []:
        models[entry['Name']] = entry
    for sub in data.get('Import') or []:
        models.update(load_models(index.parent / sub))
    return models


def resolve(name_or_url: str, index: Path = MODEL_INDEX) -> str:
    """A URL as is; a model name -> its ``Weights`` URL.

    Raises:
        KeyError: Unknown model name (the message lists close names).
        LookupError: The model has no public weights.
    """
    if '://' in name_or_url:
        return name_or_url
    models = load_models(index)
    if name_or_url not in models:
        close = difflib.get_close_matches(name_or_url, models, n=5)
        hint = f'; did you mean {", ".join(close)}?' if close else ''
        raise KeyError(
            f'no model named {name_or_url!r} in {index}{hint} '
            '(--list shows them)'
        )
    weights = models[name_or_url].get('Weights')
    if not weights:
        raise LookupError(
            f'{name_or_url} has no public weights (only the VAN-LKA '
            'ImageNet classifiers do; see README, "Pretrained weights"); '
            'models with weights: '
            + ', '.join(n for n, m in models.items() if m.get('Weights'))
        )
    return weights


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
    if args.list:
        for name, model in load_models().items():
            if model.get('Weights'):
                print(f'{name}\t{model["Weights"]}')
        return 0
    try:
        url = resolve(args.name_or_url)
        path = download_checkpoint(
            url,
            args.dest,
            progress=False if args.no_progress else None,
            retries=args.retries,
            timeout=args.timeout,
        )
    except (KeyError, LookupError) as err:
        print(f'error: {err.args[0]}', file=sys.stderr)
        return 2
    except DownloadError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
