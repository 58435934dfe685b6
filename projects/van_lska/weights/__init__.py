# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
from .convert import (
    FORMATS,
    GatingSignature,
    detect_format,
    gating_signature,
    split_backbone,
    to_mmpretrain_classifier,
    to_official,
    to_ours,
    unwrap_checkpoint,
)

__all__ = [
    'FORMATS',
    'GatingSignature',
    'detect_format',
    'gating_signature',
    'split_backbone',
    'to_mmpretrain_classifier',
    'to_official',
    'to_ours',
    'unwrap_checkpoint',
]
