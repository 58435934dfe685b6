# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Checkpoints of the model zoo: download by model name or URL
(``tools/misc/download_checkpoint.py``) and publishing a training checkpoint
(``tools/model_converters/publish_model.py``, as mmdet's
``publish_model``).

Downloads go through :mod:`projects.van_lska.weights.download`: the torch
hub cache (``$TORCH_HOME/hub/checkpoints``) or a folder, a progress bar, a
resumable transfer and its checks (the sha256 prefix of OpenMMLab file
names, else a load and arch check); a file already there (cached, or written
by ``mim download``) is checked too and replaced when bad.
"""

import difflib
import hashlib
import os
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

from projects.van_lska.apis.metafiles import MODEL_INDEX, load_models

#: What ``publish`` keeps of a training checkpoint.
DEFAULT_KEYS = ('meta', 'state_dict')


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
            f'{name_or_url} has no public weights (see README, "Model '
            'zoo"); models with weights: '
            + ', '.join(n for n, m in models.items() if m.get('Weights'))
        )
    return weights


def download(
    name_or_url: Optional[str],
    dest: Optional[str] = None,
    retries: int = 3,
    timeout: float = 30.0,
    progress: Optional[bool] = None,
    list_models: bool = False,
) -> int:
    """``tools/misc/download_checkpoint.py``: download and print the local
    path (last line of stdout), or with ``list_models`` print the models
    with public weights.

    Returns:
        int: the exit code: 0 done, 1 the download failed, 2 unknown
        model name or no public weights (message on stderr).
    """
    from projects.van_lska.weights.download import (
        DownloadError,
        download_checkpoint,
    )

    if list_models:
        for name, model in load_models().items():
            if model.get('Weights'):
                print(f'{name}\t{model["Weights"]}')
        return 0
    try:
        url = resolve(name_or_url)
        path = download_checkpoint(
            url,
            dest,
            progress=progress,
            retries=retries,
            timeout=timeout,
            check_cached=True,
        )
    except (KeyError, LookupError) as err:
        print(f'error: {err.args[0]}', file=sys.stderr)
        return 2
    except DownloadError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(path)
    return 0


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
    ``<out_file without .pth>-<sha256[:8]>.pth`` and return that path.

    The optimizer state, ``message_hub``, ``param_schedulers``, EMA state
    and other training leftovers are dropped; the file is written under a
    temporary name and renamed once complete.
    """
    from projects.van_lska.weights.safe_load import (
        allow_openmmlab_checkpoints,
    )

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
