# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Reference implementations the benchmark and the tests compare our
backbones against.

* LKA: mmpretrain's own ``VAN`` backbone, unchanged.
* LSKA: a plain re-statement of the LSKA paper's module (Lau et al., 2024,
  "Large Separable Kernel Attention"), as the authors wrote it: four separate
  depthwise convs in NCHW (``conv0h`` 1 x k1, ``conv0v`` k1 x 1,
  ``conv_spatial_h`` 1 x k2 and ``conv_spatial_v`` k2 x 1 with dilation d on
  both axes, then ``conv1`` 1x1), ``u * attn``, placed into mmpretrain's
  ``VAN`` in place of its LKA modules. The kernel table is the authors'
  (their code supports exactly these six sizes). None of our backbone code
  is used here.
"""

from typing import Dict, Tuple

import torch
import torch.nn as nn

#: k -> ((k1, pad1), (k2, pad2), dilation), the authors' table.
AUTHOR_LSKA_TABLE: Dict[int, Tuple[Tuple[int, int], Tuple[int, int], int]] = {
    7: ((3, 1), (3, 2), 2),
    11: ((3, 1), (5, 4), 2),
    23: ((5, 2), (7, 9), 3),
    35: ((5, 2), (11, 15), 3),
    41: ((5, 2), (13, 18), 3),
    53: ((5, 2), (17, 24), 3),
}


class ReferenceLSKA(nn.Module):
    """The LSKA gating as in the paper's code.

    Args:
        dim: channels ``C``.
        k_size: the LSKA kernel size, a key of :data:`AUTHOR_LSKA_TABLE`.

    Shapes: ``(N, C, H, W)`` in and out.
    """

    def __init__(self, dim: int, k_size: int) -> None:
        super().__init__()
        (k1, p1), (k2, p2), d = AUTHOR_LSKA_TABLE[k_size]
        self.conv0h = nn.Conv2d(
            dim, dim, kernel_size=(1, k1), padding=(0, p1), groups=dim
        )
        self.conv0v = nn.Conv2d(
            dim, dim, kernel_size=(k1, 1), padding=(p1, 0), groups=dim
        )
        self.conv_spatial_h = nn.Conv2d(
            dim,
            dim,
            kernel_size=(1, k2),
            padding=(0, p2),
            groups=dim,
            dilation=d,
        )
        self.conv_spatial_v = nn.Conv2d(
            dim,
            dim,
            kernel_size=(k2, 1),
            padding=(p2, 0),
            groups=dim,
            dilation=d,
        )
        self.conv1 = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.clone()
        attn = self.conv0h(x)
        attn = self.conv0v(attn)
        attn = self.conv_spatial_h(attn)
        attn = self.conv_spatial_v(attn)
        attn = self.conv1(attn)
        return u * attn


#: our LSKA parameter names -> the reference's.
_LSKA_NAMES = {
    'DW_conv_h': 'conv0h',
    'DW_conv_v': 'conv0v',
    'DW_D_conv_h': 'conv_spatial_h',
    'DW_D_conv_v': 'conv_spatial_v',
}

#: LayerNorm eps after each stage of the references (the official VAN's).
REFERENCE_LN_EPS = 1e-6

_MMPRETRAIN_ARCHS = {'b0': 'tiny', 'b1': 'small', 'b2': 'base', 'b3': 'large'}


def build_reference(
    arch: str,
    attention: str,
    kernel_size: int,
    ln_eps: float = REFERENCE_LN_EPS,
) -> nn.Module:
    """mmpretrain's ``VAN`` (LKA, kernel 21 only) or the same network with
    :class:`ReferenceLSKA` gating (the authors' six kernel sizes).

    Raises:
        ValueError: No reference exists for this combination.
    """
    from mmpretrain.models.backbones import VAN

    if arch not in _MMPRETRAIN_ARCHS:
        raise ValueError(f'no reference for arch {arch!r}')
    if attention == 'LKA' and kernel_size != 21:
        raise ValueError('mmpretrain VAN implements LKA with k=21 only')
    if attention == 'LSKA' and kernel_size not in AUTHOR_LSKA_TABLE:
        raise ValueError(
            f'the LSKA authors support k in {sorted(AUTHOR_LSKA_TABLE)}'
        )
    model = VAN(
        arch=_MMPRETRAIN_ARCHS[arch],
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='LN', eps=ln_eps),
    )
    if attention == 'LSKA':
        for i in range(model.num_stages):
            for block in getattr(model, f'blocks{i + 1}'):
                block.attn.spatial_gating_unit = ReferenceLSKA(
                    block.out_channels, kernel_size
                )
    return model


def copy_weights_to_reference(ours: nn.Module, reference: nn.Module) -> None:
    """Load our (normal-path) backbone's weights into the reference."""
    state = {}
    for key, value in ours.state_dict().items():
        for src, dst in _LSKA_NAMES.items():
            key = key.replace(f'.{src}.', f'.{dst}.')
        state[key] = value
    reference.load_state_dict(state, strict=True)
