# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The VAN block, its MLP and the overlapping patch embedding.

All tensors are ``(N, C, H, W)``.
"""

from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks import DropPath

from .attention import SpatialAttention
from .fused import block_forward as fused_block_forward


class PatchEmbed(nn.Module):
    """Overlapping patch embedding: strided conv + BatchNorm.

    ``(N, C_in, H, W)`` -> ``(N, C_out, H / stride, W / stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        norm_cfg: Dict,
    ) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
        )
        self.norm = build_norm_layer(norm_cfg, out_channels)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.projection(x))


class MixFFN(nn.Module):
    """1x1 conv ``C -> rC``, 3x3 depthwise conv, GELU, dropout, 1x1 conv
    ``rC -> C``, dropout."""

    def __init__(
        self, channels: int, hidden_channels: int, drop: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1)
        self.dwconv = nn.Conv2d(
            hidden_channels,
            hidden_channels,
            3,
            padding=1,
            groups=hidden_channels,
        )
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x))))
        return self.drop(self.fc2(x))


class VANBlock(nn.Module):
    """``x + drop_path(ls1 * attn(bn1(x)))``, then
    ``x + drop_path(ls2 * mlp(bn2(x)))``.

    Args:
        channels (int): Number of channels ``C``.
        mlp_ratio (float): Hidden width of the MLP is ``int(C * mlp_ratio)``.
        make_gating (callable): Builds the LKA/LSKA gating from ``C``.
        drop_path (float): Stochastic depth rate of this block.
        drop (float): Dropout rate inside the MLP.
        layer_scale_init (float): Initial value of the layer scales;
            ``<= 0`` builds the block without layer scales (as mmpretrain's
            ``layer_scale_init_value``).
        norm_cfg (dict): The BatchNorm config (``BN`` or ``SyncBN``).
    """

    def __init__(
        self,
        channels: int,
        mlp_ratio: float,
        make_gating: Callable[[int], nn.Module],
        drop_path: float = 0.0,
        drop: float = 0.0,
        layer_scale_init: float = 1e-2,
        norm_cfg: Dict = dict(type='BN'),
    ) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, channels)[1]
        self.attn = SpatialAttention(channels, make_gating)
        self.drop_path = (
            DropPath(drop_path) if drop_path > 0 else nn.Identity()
        )
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        self.mlp = MixFFN(channels, int(channels * mlp_ratio), drop)
        #: Output channels (mmpretrain's ``VANBlock.out_channels``).
        self.out_channels = channels
        self.layer_scale_1 = self._layer_scale(channels, layer_scale_init)
        self.layer_scale_2 = self._layer_scale(channels, layer_scale_init)

    @staticmethod
    def _layer_scale(channels: int, init: float) -> Optional[nn.Parameter]:
        if init <= 0:
            return None
        return nn.Parameter(torch.full((channels,), float(init)))

    @staticmethod
    def _scaled(scale: Optional[nn.Parameter], x: torch.Tensor):
        return x if scale is None else scale[:, None, None] * x

    #: Run through the fused training path (:mod:`.fused`); set by the
    #: backbone's ``fused`` argument. Same parameters and results.
    fused: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return fused_block_forward(self, x)
        x = x + self.drop_path(
            self._scaled(self.layer_scale_1, self.attn(self.norm1(x)))
        )
        x = x + self.drop_path(
            self._scaled(self.layer_scale_2, self.mlp(self.norm2(x)))
        )
        return x
