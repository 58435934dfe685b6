# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Large Kernel Attention (LKA) and Large Separable Kernel Attention (LSKA).

Both compute an attention map with a chain of depthwise convolutions and a
``1 x 1`` convolution, then gate the input by multiplication (no sigmoid):
``out = x * conv1(dw_chain(x))``. Shapes: input and output ``(N, C, H, W)``.

Parameter names follow mmpretrain's ``VAN`` (``DW_conv``, ``DW_D_conv``,
``conv1``) and the LSKA authors' detection/segmentation code (``DW_conv_h``,
``DW_conv_v``, ``DW_D_conv_h``, ``DW_D_conv_v``, ``conv1``), so those
checkpoints load without renaming.
"""

from typing import Callable, Tuple

import torch
import torch.nn as nn

from .kernels import GatingKernels, lka_kernels, lska_kernels


def depthwise_conv(
    channels: int, kernel_size: Tuple[int, int], dilation: int = 1
) -> nn.Conv2d:
    """A depthwise conv with bias that keeps the spatial size."""
    padding = tuple((k - 1) * dilation // 2 for k in kernel_size)
    return nn.Conv2d(
        channels,
        channels,
        kernel_size,
        padding=padding,
        dilation=dilation,
        groups=channels,
    )


class LKA(nn.Module):
    """Large Kernel Attention (Guo et al., 2022).

    ``DW_conv`` (local ``k1 x k1``) -> ``DW_D_conv`` (``k2 x k2`` with
    dilation ``d``) -> ``conv1`` (``1 x 1``); the trivial variant has one
    ``k x k`` ``DW_conv`` only.

    Args:
        channels (int): Number of input/output channels ``C``.
        kernels (GatingKernels): Resolved kernels, see
            :func:`~projects.van_lska.models.kernels.lka_kernels`.
    """

    attention_type = 'LKA'

    def __init__(self, channels: int, kernels: GatingKernels) -> None:
        super().__init__()
        self.kernels = kernels
        self.DW_conv = depthwise_conv(channels, (kernels.local,) * 2)
        self.DW_D_conv = (
            None
            if kernels.trivial
            else depthwise_conv(
                channels, (kernels.dilated,) * 2, kernels.dilation
            )
        )
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def dw_convs(self) -> Tuple[nn.Conv2d, ...]:
        """The depthwise convs in the order they are applied."""
        return tuple(
            m for m in (self.DW_conv, self.DW_D_conv) if m is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.DW_conv(x)
        if self.DW_D_conv is not None:
            attn = self.DW_D_conv(attn)
        return x * self.conv1(attn)


class LSKA(nn.Module):
    """Large Separable Kernel Attention (Lau et al., 2024).

    ``DW_conv_h`` (``1 x k1``) -> ``DW_conv_v`` (``k1 x 1``) ->
    ``DW_D_conv_h`` (``1 x k2``, dilation ``d``) -> ``DW_D_conv_v``
    (``k2 x 1``, dilation ``d``) -> ``conv1`` (``1 x 1``); the trivial
    variant has one ``1 x k`` + ``k x 1`` pair.

    Args:
        channels (int): Number of input/output channels ``C``.
        kernels (GatingKernels): Resolved kernels, see
            :func:`~projects.van_lska.models.kernels.lska_kernels`.
    """

    attention_type = 'LSKA'

    def __init__(self, channels: int, kernels: GatingKernels) -> None:
        super().__init__()
        self.kernels = kernels
        k1 = kernels.local
        self.DW_conv_h = depthwise_conv(channels, (1, k1))
        self.DW_conv_v = depthwise_conv(channels, (k1, 1))
        if kernels.trivial:
            self.DW_D_conv_h = self.DW_D_conv_v = None
        else:
            k2, d = kernels.dilated, kernels.dilation
            self.DW_D_conv_h = depthwise_conv(channels, (1, k2), d)
            self.DW_D_conv_v = depthwise_conv(channels, (k2, 1), d)
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def dw_convs(self) -> Tuple[nn.Conv2d, ...]:
        """The depthwise convs in the order they are applied."""
        return tuple(
            m
            for m in (
                self.DW_conv_h,
                self.DW_conv_v,
                self.DW_D_conv_h,
                self.DW_D_conv_v,
            )
            if m is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.DW_conv_v(self.DW_conv_h(x))
        if self.DW_D_conv_h is not None:
            attn = self.DW_D_conv_v(self.DW_D_conv_h(attn))
        return x * self.conv1(attn)


#: attention type -> (gating class, kernel resolver)
GATINGS = {
    'LKA': (LKA, lka_kernels),
    'LSKA': (LSKA, lska_kernels),
}


class SpatialAttention(nn.Module):
    """``proj_1`` (1x1) -> GELU -> gating -> ``proj_2`` (1x1), plus shortcut.

    Args:
        channels (int): Number of input/output channels ``C``.
        make_gating (callable): Builds the gating module from ``channels``.
    """

    def __init__(
        self, channels: int, make_gating: Callable[[int], nn.Module]
    ) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(channels, channels, 1)
        self.activation = nn.GELU()
        self.spatial_gating_unit = make_gating(channels)
        self.proj_2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.activation(self.proj_1(x))
        x = self.proj_2(self.spatial_gating_unit(x))
        return x + shortcut
