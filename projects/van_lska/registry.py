# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Register the backbones into the ``MODELS`` registry of every installed
OpenMMLab codebase (mmpretrain, mmdet, mmseg)."""

import importlib
from typing import List

from .models import VAN_LKA, VAN_LSKA

CODEBASES = ('mmpretrain', 'mmdet', 'mmseg')
BACKBONES = (VAN_LKA, VAN_LSKA)


def register_backbones() -> List[str]:
    """Register ``VAN_LKA`` and ``VAN_LSKA``; safe to call more than once.

    Returns:
        list[str]: The codebases registered into.
    """
    done = []
    for codebase in CODEBASES:
        try:
            registry = importlib.import_module(f'{codebase}.registry').MODELS
        except ImportError:
            continue
        for cls in BACKBONES:
            if registry.module_dict.get(cls.__name__) is not cls:
                registry.register_module(module=cls, force=True)
        done.append(codebase)
    return done
