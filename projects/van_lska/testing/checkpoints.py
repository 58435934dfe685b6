# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Checkpoints of freshly initialised models, for tests of the tools that
load one (``tools/test.py``, ``--tta``, mmseg's and mmdet's own tools)."""

import importlib
from os import PathLike
from typing import Union

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope


def save_initialised_checkpoint(
    cfg: Config, path: Union[str, PathLike], seed: int = 0
) -> str:
    """Build ``cfg.model`` in the config's codebase (``default_scope``),
    initialise it with ``seed`` and save it at ``path`` as mmengine does
    (``{'state_dict': ..., 'meta': {}}``); returns ``str(path)``."""
    scope = cfg.default_scope
    init_default_scope(scope)
    importlib.import_module(f'{scope}.models')
    models = importlib.import_module(f'{scope}.registry').MODELS
    torch.manual_seed(seed)
    model = models.build(cfg.model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, str(path))
    return str(path)
