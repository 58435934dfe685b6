# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""VAN-LKA and VAN-LSKA backbones for mmpretrain, mmdet and mmseg.

Importing this package registers ``VAN_LKA`` and ``VAN_LSKA`` into the
``MODELS`` registry of each installed codebase (configs reach it with
``custom_imports=dict(imports=['projects.van_lska'])``) and lets torch's safe
loader read OpenMMLab training checkpoints.
"""

from .engine import VANDeployHook  # noqa: F401 (registers the hook)
from .models import VAN_LKA, VAN_LSKA, VANBackbone
from .registry import register_backbones
from .weights.download import register_download_scheme
from .weights.safe_load import allow_openmmlab_checkpoints

__version__ = '0.1.0'

register_backbones()
allow_openmmlab_checkpoints()
register_download_scheme()

__all__ = ['VAN_LKA', 'VAN_LSKA', 'VANBackbone', '__version__']
