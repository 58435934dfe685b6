# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Large Kernel Attention (LKA) and Large Separable Kernel Attention (LSKA).

Both compute an attention map with a chain of depthwise convolutions and a
``1 x 1`` convolution, then gate the input by multiplication (no sigmoid):
``out = x * conv1(dw_chain(x))``. Shapes: input and output ``(N, C, H, W)``.

Parameter names follow mmpretrain's ``VAN`` (``DW_conv``, ``DW_D_conv``,
``conv1``) and the LSKA authors' detection/segmentation code (``DW_conv_h``,
``DW_conv_v``, ``DW_D_conv_h``, ``DW_D_conv_v``, ``conv1``), so those
checkpoints load without renaming.

Ablations (the VAN paper's ablation of the LKA parts, Guo et al. 2022; for
LSKA the same parts in their separable form) are selected by ``ablation``,
see :data:`ABLATIONS`. ``ablation=None`` is the unchanged module.
"""

from typing import Callable, Dict, FrozenSet, Optional, Tuple

import torch
import torch.nn as nn

from .checked_load import ChecksStateDict
from .kernels import GatingKernels, lka_kernels, lska_kernels

#: ``ablation`` -> what the gating computes then, with ``u`` the input,
#: ``DW`` the local depthwise conv(s) (LKA ``DW_conv``; LSKA ``DW_conv_h``
#: then ``DW_conv_v``), ``DW_D`` the dilated depthwise conv(s) (LKA
#: ``DW_D_conv``; LSKA ``DW_D_conv_h`` then ``DW_D_conv_v``) and ``conv1`` the
#: 1x1 conv. The full module computes ``u * conv1(DW_D(DW(u)))``.
ABLATIONS: Dict[str, str] = {
    'no_dw': 'w/o DW-Conv: u * conv1(DW_D(u)); the local depthwise '
    'conv(s) are not built',
    'no_dw_d': 'w/o DW-D-Conv: u * conv1(DW(u)); the dilated depthwise '
    'conv(s) are not built',
    'no_attention': 'w/o Attention: conv1(DW_D(DW(u))), the attention map '
    'itself, without the product with u',
    'add_attention': 'the product replaced by a sum: u + conv1(DW_D(DW(u))) '
    "(the VAN paper's Fig. 3(c) module)",
    'no_pointwise': 'w/o 1x1 Conv: u * DW_D(DW(u)); conv1 is not built',
    'sigmoid': 'with Sigmoid: u * sigmoid(conv1(DW_D(DW(u))))',
}

#: Ablated gatings that remove a conv: those parameters are absent, so the
#: full module's checkpoints do not load into them (nor theirs into it).
REMOVED_CONVS: Dict[str, Tuple[str, ...]] = {
    'no_dw': ('DW_conv', 'DW_conv_h', 'DW_conv_v'),
    'no_dw_d': ('DW_D_conv', 'DW_D_conv_h', 'DW_D_conv_v'),
    'no_pointwise': ('conv1',),
}

#: ``ablation`` values whose gating is still ``u * conv1(chain of depthwise
#: convs)(u)``, the form the deploy path folds (see ``deploy.py``).
PRODUCT_GATINGS: FrozenSet[Optional[str]] = frozenset(
    {None, 'no_dw', 'no_dw_d'}
)


def check_ablation(
    ablation: Optional[str], kernels: GatingKernels, what: str = 'gating'
) -> Optional[str]:
    """Validate an ``ablation`` value for a gating with ``kernels``.

    Returns:
        The value itself (``None`` for the full module).

    Raises:
        ValueError: Unknown name, or ``no_dw``/``no_dw_d`` on a trivial
            gating (it has a single depthwise kernel, no local/dilated pair).
    """
    if ablation is None:
        return None
    if not isinstance(ablation, str) or ablation not in ABLATIONS:
        allowed = '; '.join(f'{k!r} ({v})' for k, v in ABLATIONS.items())
        raise ValueError(
            f'{what} ablation must be None (the full module) or one of '
            f'{allowed}; got {ablation!r}'
        )
    if kernels.trivial and ablation in ('no_dw', 'no_dw_d'):
        raise ValueError(
            f'{what} ablation {ablation!r} removes one of the local/dilated '
            'depthwise convs of the decomposed kernel; trivial=True has a '
            'single depthwise kernel. Use trivial=False (or another '
            'ablation)'
        )
    return ablation


def apply_gate(
    u: torch.Tensor,
    attn: torch.Tensor,
    conv1: Optional[nn.Conv2d],
    ablation: Optional[str],
) -> torch.Tensor:
    """The end of an ablated gating: ``attn`` is the depthwise chain's
    output; ``conv1`` (if any), the optional sigmoid, then the product with
    ``u`` (or the sum, or nothing) as :data:`ABLATIONS` says.
    ``(N, C, H, W)`` in and out."""
    if conv1 is not None:
        attn = conv1(attn)
    if ablation == 'sigmoid':
        attn = torch.sigmoid(attn)
    if ablation == 'no_attention':
        return attn
    if ablation == 'add_attention':
        return u + attn
    return u * attn


class _Gating(ChecksStateDict):
    """What LKA and LSKA share: the ablated forward and the checkpoint
    check of their convs."""

    ablation: Optional[str] = None
    conv1: Optional[nn.Conv2d]

    def dw_convs(self) -> Tuple[nn.Conv2d, ...]:
        raise NotImplementedError

    def forward_ablated(self, x: torch.Tensor) -> torch.Tensor:
        attn = x
        for conv in self.dw_convs():
            attn = conv(attn)
        return apply_gate(x, attn, self.conv1, self.ablation)

    def _prepare_state_dict(
        self, state_dict: Dict[str, torch.Tensor], prefix: str
    ) -> None:
        """Refuse a checkpoint whose gating has other convs than this one
        (a full checkpoint into an ablation that removes a conv, an ablated
        one into the full module, LKA into LSKA), even when loading is not
        strict: those would otherwise leave convs silently random."""
        found = {
            key[len(prefix) :].split('.')[0]
            for key in state_dict
            if key.startswith(prefix)
        }
        ours = {name for name, _ in self.named_children()}
        if found and found != ours:
            kept = sorted(set(ABLATIONS) - set(REMOVED_CONVS))
            raise ValueError(
                f"{prefix[:-1] or type(self).__name__}: the checkpoint's "
                f'gating has the convs {sorted(found)}, this '
                f'{self.attention_type} (ablation={self.ablation!r}) has '
                f'{sorted(ours)}. The ablations '
                f'{", ".join(REMOVED_CONVS)} remove convs: train them from '
                'scratch (as the VAN paper does) and load only their own '
                'checkpoints; checkpoints of the full module load into the '
                'full module and into the ablations that keep every '
                f'parameter ({", ".join(kept)})'
            )


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


class LKA(_Gating):
    """Large Kernel Attention (Guo et al., 2022).

    ``DW_conv`` (local ``k1 x k1``) -> ``DW_D_conv`` (``k2 x k2`` with
    dilation ``d``) -> ``conv1`` (``1 x 1``); the trivial variant has one
    ``k x k`` ``DW_conv`` only.

    Args:
        channels (int): Number of input/output channels ``C``.
        kernels (GatingKernels): Resolved kernels, see
            :func:`~projects.van_lska.models.kernels.lka_kernels`.
        ablation (str, optional): One of :data:`ABLATIONS`; ``None`` (the
            default) is the full module. A removed conv is ``None``.
    """

    attention_type = 'LKA'

    def __init__(
        self,
        channels: int,
        kernels: GatingKernels,
        ablation: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.kernels = kernels
        self.ablation = check_ablation(ablation, kernels, 'LKA')
        self.DW_conv = (
            None
            if ablation == 'no_dw'
            else depthwise_conv(channels, (kernels.local,) * 2)
        )
        self.DW_D_conv = (
            None
            if kernels.trivial or ablation == 'no_dw_d'
            else depthwise_conv(
                channels, (kernels.dilated,) * 2, kernels.dilation
            )
        )
        self.conv1 = (
            None
            if ablation == 'no_pointwise'
            else nn.Conv2d(channels, channels, 1)
        )

    def dw_convs(self) -> Tuple[nn.Conv2d, ...]:
        """The depthwise convs in the order they are applied."""
        return tuple(
            m for m in (self.DW_conv, self.DW_D_conv) if m is not None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ablation is not None:
            return self.forward_ablated(x)
        attn = self.DW_conv(x)
        if self.DW_D_conv is not None:
            attn = self.DW_D_conv(attn)
        return x * self.conv1(attn)


class LSKA(_Gating):
    """Large Separable Kernel Attention (Lau et al., 2024).

    ``DW_conv_h`` (``1 x k1``) -> ``DW_conv_v`` (``k1 x 1``) ->
    ``DW_D_conv_h`` (``1 x k2``, dilation ``d``) -> ``DW_D_conv_v``
    (``k2 x 1``, dilation ``d``) -> ``conv1`` (``1 x 1``); the trivial
    variant has one ``1 x k`` + ``k x 1`` pair.

    Args:
        channels (int): Number of input/output channels ``C``.
        kernels (GatingKernels): Resolved kernels, see
            :func:`~projects.van_lska.models.kernels.lska_kernels`.
        ablation (str, optional): One of :data:`ABLATIONS`; ``None`` (the
            default) is the full module. ``no_dw``/``no_dw_d`` remove both
            convs of the separable pair; a removed conv is ``None``.
    """

    attention_type = 'LSKA'

    def __init__(
        self,
        channels: int,
        kernels: GatingKernels,
        ablation: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.kernels = kernels
        self.ablation = check_ablation(ablation, kernels, 'LSKA')
        k1 = kernels.local
        if ablation == 'no_dw':
            self.DW_conv_h = self.DW_conv_v = None
        else:
            self.DW_conv_h = depthwise_conv(channels, (1, k1))
            self.DW_conv_v = depthwise_conv(channels, (k1, 1))
        if kernels.trivial or ablation == 'no_dw_d':
            self.DW_D_conv_h = self.DW_D_conv_v = None
        else:
            k2, d = kernels.dilated, kernels.dilation
            self.DW_D_conv_h = depthwise_conv(channels, (1, k2), d)
            self.DW_D_conv_v = depthwise_conv(channels, (k2, 1), d)
        self.conv1 = (
            None
            if ablation == 'no_pointwise'
            else nn.Conv2d(channels, channels, 1)
        )

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
        if self.ablation is not None:
            return self.forward_ablated(x)
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
