# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
from .attention import LKA, LSKA, SpatialAttention
from .blocks import MixFFN, PatchEmbed, VANBlock
from .kernels import (
    LKA_KERNELS,
    LSKA_AUTHOR_KERNEL_SIZES,
    GatingKernels,
    lka_kernels,
    lska_kernels,
)
from .van import (
    ARCH_ALIASES,
    ARCH_SETTINGS,
    VAN_LKA,
    VAN_LSKA,
    VANBackbone,
    resolve_arch,
)

__all__ = [
    'LKA',
    'LSKA',
    'SpatialAttention',
    'MixFFN',
    'PatchEmbed',
    'VANBlock',
    'LKA_KERNELS',
    'LSKA_AUTHOR_KERNEL_SIZES',
    'GatingKernels',
    'lka_kernels',
    'lska_kernels',
    'ARCH_ALIASES',
    'ARCH_SETTINGS',
    'VAN_LKA',
    'VAN_LSKA',
    'VANBackbone',
    'resolve_arch',
]
