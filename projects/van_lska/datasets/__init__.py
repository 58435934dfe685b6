# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Datasets that ship with the repository (no download)."""

from .synthetic_shapes import (
    CLASSES,
    PALETTE,
    SEG_CLASSES,
    SEG_PALETTE,
    ShapesConfig,
    dataset_exists,
    generate_dataset,
    make_scene,
)

__all__ = [
    'CLASSES',
    'PALETTE',
    'SEG_CLASSES',
    'SEG_PALETTE',
    'ShapesConfig',
    'dataset_exists',
    'generate_dataset',
    'make_scene',
]
