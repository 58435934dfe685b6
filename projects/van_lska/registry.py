# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Register the backbones into the ``MODELS`` registry of every installed
OpenMMLab codebase (mmpretrain, mmdet, mmseg), the instance segmentation
TTA model into mmdet's and the segmentation visualizer into mmseg's."""

import importlib
from typing import List

from .models import VAN_LKA, VAN_LSKA
from .models.det_tta import InstanceSegTTAModel

CODEBASES = ('mmpretrain', 'mmdet', 'mmseg')
BACKBONES = (VAN_LKA, VAN_LSKA)
#: Other modules, by the codebase whose ``MODELS`` they go into.
CODEBASE_MODELS = {'mmdet': (InstanceSegTTAModel,)}
#: Modules that register into a codebase's registries when imported (they
#: import that codebase's modules, so only where it is installed).
CODEBASE_MODULES = {'mmseg': ('projects.van_lska.engine.seg_visualizer',)}


def register_backbones() -> List[str]:
    """Register ``VAN_LKA`` and ``VAN_LSKA`` (and :data:`CODEBASE_MODELS`);
    safe to call more than once.

    Returns:
        list[str]: The codebases registered into.
    """
    done = []
    for codebase in CODEBASES:
        try:
            registry = importlib.import_module(f'{codebase}.registry').MODELS
        except ImportError:
            continue
        for cls in BACKBONES + CODEBASE_MODELS.get(codebase, ()):
            if registry.module_dict.get(cls.__name__) is not cls:
                registry.register_module(module=cls, force=True)
        for module in CODEBASE_MODULES.get(codebase, ()):
            importlib.import_module(module)
        done.append(codebase)
    return done
