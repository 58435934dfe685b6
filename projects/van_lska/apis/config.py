# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Facts about the suite's configs, each declared here once.

* which codebase a config belongs to (:func:`codebase_of`: its
  ``default_scope``), and that codebase's registries;
* SyncBN -> BN for a single process or a machine without a GPU
  (:func:`sync_bn_to_bn`);
* building a model without its ``Pretrained`` weights
  (:func:`drop_pretrained`);
* where the checkout's ``configs/``, ``tools/`` and ``model-index.yml`` are
  (:data:`REPO_ROOT`).
"""

import importlib
from pathlib import Path
from typing import Any, Sequence


def _find_root() -> Path:
    """The source checkout (editable install), else the installed
    ``projects/.mim`` folder (which holds ``configs/`` and ``tools/``)."""
    here = Path(__file__).resolve()
    checkout, mim = here.parents[3], here.parents[2] / '.mim'
    if not (checkout / 'configs').is_dir() and (mim / 'configs').is_dir():
        return mim
    return checkout


#: Folder with ``configs/``, ``tools/`` and ``model-index.yml``.
REPO_ROOT: Path = _find_root()

#: The codebases a config can belong to (its ``default_scope``).
CODEBASES = ('mmdet', 'mmseg', 'mmpretrain')

#: Norm types that need a process group (and, for some, CUDA).
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN')


def codebase_of(cfg, allowed: Sequence[str] = CODEBASES, hint='') -> str:
    """The codebase of ``cfg``: its ``default_scope``.

    Args:
        cfg (mmengine.Config | dict): a config.
        allowed: the codebases the caller handles.
        hint: appended to the error message (what to use instead).

    Raises:
        ValueError: the scope is missing or not in ``allowed``.
    """
    scope = cfg.get('default_scope', None)
    if scope not in allowed:
        name = getattr(cfg, 'filename', None)
        where = f'{name}: ' if name else ''
        raise ValueError(
            f'{where}default_scope must be one of {", ".join(allowed)}; '
            f'got {scope!r}{hint}'
        )
    return scope


def registry(scope: str, name: str = 'MODELS'):
    """The registry ``name`` (``MODELS``, ``RUNNERS``, ...) of ``scope``,
    with that codebase's models imported (so their types are
    registered)."""
    importlib.import_module(f'{scope}.models')
    return getattr(importlib.import_module(f'{scope}.registry'), name)


def register_codebase(scope: str) -> None:
    """Register every module of ``scope`` and make it the default scope."""
    from mmengine.registry import init_default_scope

    utils = importlib.import_module(f'{scope}.utils')
    utils.register_all_modules(init_default_scope=False)
    init_default_scope(scope)


def sync_bn_to_bn(node: Any) -> int:
    """Turn every SyncBN norm type (:data:`SYNC_BN_TYPES`) of a nested
    config (dicts, lists, tuples) into ``BN``, in place.

    Returns:
        int: the number of norm configs changed.
    """
    count = 0
    if isinstance(node, dict):
        if node.get('type') in SYNC_BN_TYPES:
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += sync_bn_to_bn(value)
    return count


def _is_pretrained(init: Any) -> bool:
    return isinstance(init, dict) and init.get('type') == 'Pretrained'


def drop_pretrained(node: Any) -> None:
    """Remove every ``Pretrained`` entry of the ``init_cfg`` s of a nested
    model config, in place (nothing is read or downloaded at build time)."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        if any(_is_pretrained(i) for i in inits):
            kept = [i for i in inits if not _is_pretrained(i)]
            node['init_cfg'] = kept or None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)
