# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The fast inference ("deploy") path of the VAN backbones.

:func:`switch_to_deploy` rewrites an eval-mode :class:`VANBackbone` in place
(as RepVGG/MobileOne do) into fewer, larger ops that give the same outputs
(to ~1e-6 in float32):

* patch embedding: BatchNorm folded into the strided projection conv;
* block, attention half: ``x + ls1 * (proj_2(g) + bn1(x))`` with
  ``bn1(x) = a * x + b`` becomes ``s1 * x + proj_2'(g)`` where
  ``s1 = 1 + ls1 * a`` (a per-channel affine, one ``addcmul``) and
  ``proj_2' = ls1 * proj_2`` with ``ls1 * b`` in its bias; ``bn1`` is folded
  into ``proj_1`` (a 1x1 conv after a per-channel affine is a 1x1 conv);
* block, MLP half: ``bn2`` folded into ``fc1``, ``ls2`` into ``fc2``;
* dropout and stochastic depth are identities at inference and disappear.

The gating convolutions are re-stated for oneDNN's fast depthwise kernels
(measured on a 2-core x86 CPU, torch 2.14, one thread; see
``tools/analysis_tools/benchmark_backbone.py``):

* In ``channels_last`` (NHWC) oneDNN's depthwise convs are 3-5x faster than
  in NCHW, *except* when the dilation is along the width: a ``1 x k2``
  conv with dilation ``d`` is 10-20x slower there. It is replaced by the
  equivalent undilated ``1 x ((k2 - 1) d + 1)`` kernel with zeros between
  the taps (exact: the extra taps multiply by 0). ``k2 x 1`` convs keep their
  dilation ``(d, 1)``, which is fast.
* Merging a separable pair ``(1 x k1, k1 x 1)`` into one ``k1 x k1``
  depthwise conv is *not* done: it was no faster (5x5 in NHWC: 13.6 ms vs
  13.3 ms for the pair at 64x200x334) and is not exact at the borders (the
  first conv's bias reaches the zero-padded rows of the second).
* LKA's square dilated ``7 x 7`` conv has no fast NHWC kernel (10-20x slower
  than NCHW), so in ``channels_last`` deploy mode that one conv runs in NCHW
  (:class:`NCHWConv`).

On CPU in ``channels_last`` (float32, no autograd, not under
``torch.compile``) each block runs on oneDNN's fused conv ops
(``torch.ops.mkldnn._convolution_pointwise``, the ones inductor uses):
1x1 conv + exact-erf GELU, 3x3 depthwise conv + GELU, ``conv1(a) * u`` and
the residual adds written in place, with weights pre-packed by oneDNN once.
The 1x1 convs are ~80% of the time after this; they are the same GEMMs as
in the normal path, so the gain is what the removed passes over memory and
the faster depthwise kernels were worth (largest at detection resolution).
On large maps (an MLP hidden map over 32 MiB, e.g. stages 1-2 at 800x1333)
the MLP runs a few rows at a time (:meth:`DeployBlock.mlp_in_row_chunks`)
so that its 4-8x wider hidden map never leaves the CPU caches.

The deployed backbone converts its input to the chosen memory format once
and returns NCHW-contiguous outputs, like the normal path. Its state dict
differs from the normal one: deploy *after* loading weights (see
``VANDeployHook`` in ``projects/van_lska/engine``).
"""

import copy
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .attention import PRODUCT_GATINGS
from .blocks import PatchEmbed, VANBlock


def bn_affine(bn: _BatchNorm):
    """Eval-mode BatchNorm as ``a * x + b``; returns ``(a, b)`` of shape
    ``(C,)``."""
    std = torch.sqrt(bn.running_var + bn.eps)
    weight = bn.weight if bn.affine else torch.ones_like(std)
    bias = bn.bias if bn.affine else torch.zeros_like(std)
    a = weight / std
    return a, bias - bn.running_mean * a


def _conv_like(
    conv: nn.Conv2d, weight, bias, cls=nn.Conv2d, **overrides
) -> nn.Conv2d:
    """A new conv with ``conv``'s geometry (or ``overrides``) and the given
    weight ``(O, I/groups, kh, kw)`` and bias ``(O,)``."""
    args = dict(
        in_channels=conv.in_channels,
        out_channels=conv.out_channels,
        kernel_size=tuple(weight.shape[-2:]),
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
    )
    args.update(overrides)
    new = cls(bias=True, **args).to(weight.device, weight.dtype)
    new.weight.data.copy_(weight)
    new.bias.data.copy_(bias)
    return new


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    if conv.bias is not None:
        return conv.bias
    return conv.weight.new_zeros(conv.out_channels)


def fuse_conv_bn(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """``bn(conv(x))`` as one conv."""
    a, b = bn_affine(bn)
    return _conv_like(
        conv, conv.weight * a[:, None, None, None], _bias(conv) * a + b
    )


def fuse_affine_pointwise(a, b, conv: nn.Conv2d) -> nn.Conv2d:
    """``conv(a * x + b)`` as one conv; ``conv`` is a dense 1x1 conv
    without padding, ``a`` and ``b`` are ``(C_in,)``."""
    assert conv.kernel_size == (1, 1) and conv.groups == 1
    assert conv.padding == (0, 0)
    w = conv.weight
    return _conv_like(
        conv, w * a[None, :, None, None], _bias(conv) + w[:, :, 0, 0] @ b
    )


def scale_conv(conv: nn.Conv2d, scale, shift=None) -> nn.Conv2d:
    """``scale * (conv(x) + shift)`` as one conv; ``scale``/``shift``
    ``(C_out,)``."""
    bias = _bias(conv) if shift is None else _bias(conv) + shift
    return _conv_like(
        conv, conv.weight * scale[:, None, None, None], bias * scale
    )


def undilate_width(conv: nn.Conv2d) -> nn.Conv2d:
    """A ``1 x k`` conv with dilation ``d`` as the equivalent undilated
    ``1 x ((k - 1) d + 1)`` conv (zeros between the taps)."""
    kh, kw = conv.kernel_size
    dw = conv.dilation[1]
    assert kh == 1
    if dw == 1:
        return copy.deepcopy(conv)
    weight = conv.weight.new_zeros(
        *conv.weight.shape[:2], 1, (kw - 1) * dw + 1
    )
    weight[..., ::dw] = conv.weight
    return _conv_like(conv, weight, _bias(conv), dilation=(1, 1))


def trim_dilation(conv: nn.Conv2d) -> nn.Conv2d:
    """Drop the dilation along an axis where the kernel has length 1."""
    kh, kw = conv.kernel_size
    dh, dw = conv.dilation
    return _conv_like(
        conv,
        conv.weight,
        _bias(conv),
        dilation=(dh if kh > 1 else 1, dw if kw > 1 else 1),
    )


class NCHWConv(nn.Module):
    """Run one conv in NCHW and hand the result back in the input's
    memory format (for kernels that are slow in ``channels_last``)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous(memory_format=torch.channels_last):
            out = self.conv(x.contiguous())
            return out.contiguous(memory_format=torch.channels_last)
        return self.conv(x)


def onednn_fusable(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused conv ops can take ``x`` (CPU float32 NHWC,
    not under ``torch.autocast``)."""
    return (
        x.device.type == 'cpu'
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled('cpu')
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and torch.backends.mkldnn.is_available()
    )


def _geometry(
    conv: nn.Conv2d,
    weight: Optional[torch.Tensor],
    padding: Optional[List[int]] = None,
) -> tuple:
    """``(weight, bias, padding, stride, dilation, groups)`` as oneDNN's
    fused conv ops take them (``padding`` overrides the conv's)."""
    return (
        conv.weight if weight is None else weight,
        conv.bias,
        list(conv.padding) if padding is None else padding,
        list(conv.stride),
        list(conv.dilation),
        conv.groups,
    )


def conv_unary(
    x: torch.Tensor,
    conv: nn.Conv2d,
    unary: str = 'none',
    weight: Optional[torch.Tensor] = None,
    padding: Optional[List[int]] = None,
):
    """``unary(conv(x))`` as one oneDNN op (``'gelu'``: exact erf GELU);
    ``weight`` may be ``conv.weight`` pre-packed by oneDNN; ``padding``
    overrides the conv's."""
    return torch.ops.mkldnn._convolution_pointwise(
        x,
        *_geometry(conv, weight, padding),
        unary,
        [],
        'none' if unary == 'gelu' else None,
    )


def conv_binary(
    x: torch.Tensor,
    other: torch.Tensor,
    conv: nn.Conv2d,
    binary: str,
    inplace: bool = False,
    weight: Optional[torch.Tensor] = None,
):
    """``conv(x) (binary) other`` (``'add'``/``'mul'``) as one oneDNN op;
    ``inplace`` writes the result into ``other``."""
    args = (
        *_geometry(conv, weight),
        binary,
        None,
        None,
        [],
        None,
    )
    if inplace:
        return torch.ops.mkldnn._convolution_pointwise_.binary(other, x, *args)
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, *args)


class DeployGating(nn.Module):
    """``u * conv1(dw_n(...dw_1(u)))`` with the depthwise convs re-stated for
    speed (see the module docstring). ``(N, C, H, W)`` in and out."""

    def __init__(self, gating: nn.Module, channels_last: bool) -> None:
        super().__init__()
        convs = []
        for conv in gating.dw_convs():
            kh, kw = conv.kernel_size
            dilated = max(conv.dilation) > 1
            if not dilated:
                convs.append(copy.deepcopy(conv))
            elif kh == 1:  # 1 x k2, dilated along the width
                convs.append(
                    undilate_width(conv)
                    if channels_last
                    else trim_dilation(conv)
                )
            elif kw == 1:  # k2 x 1, dilated along the height: fast as is
                convs.append(trim_dilation(conv))
            else:  # LKA's square dilated conv
                conv = copy.deepcopy(conv)
                convs.append(NCHWConv(conv) if channels_last else conv)
        self.dw_convs = nn.Sequential(*convs)
        self.conv1 = copy.deepcopy(gating.conv1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv1(self.dw_convs(x))


class DeployBlock(nn.Module):
    """An eval-mode :class:`VANBlock` folded into
    ``x = s1 * x + proj_2'(gating(gelu(proj_1'(x))))`` and
    ``x = x + fc2'(gelu(dwconv(fc1'(x))))``. ``(N, C, H, W)`` in and out.
    """

    def __init__(self, block: VANBlock, channels_last: bool) -> None:
        super().__init__()
        attn, mlp = block.attn, block.mlp
        ls1, ls2 = (
            torch.ones_like(norm.weight) if scale is None else scale
            for scale, norm in (
                (block.layer_scale_1, block.norm1),
                (block.layer_scale_2, block.norm2),
            )
        )
        a1, b1 = bn_affine(block.norm1)
        a2, b2 = bn_affine(block.norm2)
        self.proj_1 = fuse_affine_pointwise(a1, b1, attn.proj_1)
        self.act = nn.GELU()
        self.gating = DeployGating(attn.spatial_gating_unit, channels_last)
        # ls1 * (proj_2(g) + a1 * x + b1) = ls1 * proj_2(g) + ls1 * b1
        # + ls1 * a1 * x; the outer residual adds 1 * x.
        self.proj_2 = scale_conv(attn.proj_2, ls1, b1)
        self.register_buffer('skip_scale', (1 + ls1 * a1)[:, None, None])
        self.fc1 = fuse_affine_pointwise(a2, b2, mlp.fc1)
        self.dwconv = copy.deepcopy(mlp.dwconv)
        self.fc2 = scale_conv(mlp.fc2, ls2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # oneDNN's fused ops have no fake-tensor kernels: under
        # torch.compile the plain ops are traced (and fused by inductor).
        if (
            not torch.compiler.is_compiling()
            and not torch.is_grad_enabled()
            and onednn_fusable(x)
        ):
            return self.forward_onednn(x)
        g = self.gating(self.act(self.proj_1(x)))
        x = torch.addcmul(self.proj_2(g), self.skip_scale, x)
        return x + self.fc2(self.act(self.dwconv(self.fc1(x))))

    def fused_convs(self) -> Dict[str, nn.Conv2d]:
        """The convs run by oneDNN's fused ops."""
        return dict(
            proj_1=self.proj_1,
            conv1=self.gating.conv1,
            proj_2=self.proj_2,
            fc1=self.fc1,
            dwconv=self.dwconv,
            fc2=self.fc2,
        )

    def packed_weights(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """oneDNN's pre-packed (reordered) copies of the fused convs'
        weights, made on first use and again whenever a weight changes
        (they are plain attributes: not in the state dict, not copied).

        Packed for ``x``'s shape; other shapes stay exact (oneDNN reorders
        when its preferred layout differs). Saves ~10% on small feature maps
        (b2 stage 4: 21 -> 14 ms per 3 blocks).
        """
        convs = self.fused_convs()
        key = tuple(
            (c.weight.data_ptr(), c.weight._version) for c in convs.values()
        )
        cache = self.__dict__.get('_packed')
        if cache is None or cache[0] != key:
            n, _, h, w = x.shape
            packed = {
                name: torch.ops.mkldnn._reorder_convolution_weight(
                    conv.weight,
                    list(conv.padding),
                    list(conv.stride),
                    list(conv.dilation),
                    conv.groups,
                    [n, conv.in_channels, h, w],
                )
                for name, conv in convs.items()
            }
            cache = (key, packed)
            self.__dict__['_packed'] = cache
        return cache[1]

    def __getstate__(self) -> Dict:
        state = self.__dict__.copy()
        state.pop('_packed', None)  # opaque oneDNN tensors: rebuilt lazily
        return state

    def forward_onednn(self, x: torch.Tensor) -> torch.Tensor:
        """The same with oneDNN's conv + GELU / mul / add fusions and
        pre-packed weights, the adds in place (CPU, NHWC, no autograd)."""
        w = self.packed_weights(x)
        u = conv_unary(x, self.proj_1, 'gelu', w['proj_1'])
        a = self.gating.dw_convs(u)
        g = conv_binary(a, u, self.gating.conv1, 'mul', weight=w['conv1'])
        y = x * self.skip_scale
        y = conv_binary(g, y, self.proj_2, 'add', True, w['proj_2'])
        rows = self.mlp_chunk_rows(y)
        if rows:
            return self.mlp_in_row_chunks(y, rows)
        h = conv_unary(y, self.fc1, weight=w['fc1'])
        h = conv_unary(h, self.dwconv, 'gelu', w['dwconv'])
        return conv_binary(h, y, self.fc2, 'add', True, w['fc2'])

    #: The MLP runs in row chunks (:meth:`mlp_in_row_chunks`) when its
    #: hidden map is larger than this (bytes), with chunks of about
    #: :attr:`MLP_CHUNK_BYTES` of hidden map each.
    MLP_CHUNK_ABOVE = 32 * 2**20
    MLP_CHUNK_BYTES = 4 * 2**20

    def mlp_chunk_rows(self, y: torch.Tensor) -> int:
        """Rows per MLP chunk for ``y``, 0 for no chunking."""
        n, _, h, w = y.shape
        hidden = self.fc1.out_channels
        row_bytes = w * hidden * y.element_size()
        plain = self.dwconv.kernel_size == (3, 3) and self.dwconv.padding == (
            1,
            1,
        )
        if not plain or n * h * row_bytes <= self.MLP_CHUNK_ABOVE:
            return 0
        return max(2, min(h, self.MLP_CHUNK_BYTES // row_bytes))

    def mlp_in_row_chunks(self, y: torch.Tensor, rows: int) -> torch.Tensor:
        """``y + fc2(gelu(dwconv(fc1(y))))`` written into ``y``, a few rows
        of one image at a time, so that the hidden map (``hidden / C``
        times ``y``'s size) stays in the CPU caches instead of making four
        trips to memory (on a 2-core x86 CPU: 211 -> 158 ms CPU for the
        stage-1 MLP of VAN-b1 at 800x1333). Exact: each chunk's 3x3
        depthwise conv sees the neighbouring hidden rows (computed by
        ``fc1`` for the previous and the next chunk) or zeros at the
        image's border, as the whole-map conv does; every chunk of ``y`` is
        read by ``fc1`` before it is overwritten."""
        n, _, height, width = y.shape
        hidden = self.fc1.out_channels
        no_vpad = [0, self.dwconv.padding[1]]
        starts = list(range(0, height, rows))
        for i in range(n):
            image = y[i : i + 1]  # a contiguous NHWC slice

            def fc1(k: int, image: torch.Tensor = image) -> torch.Tensor:
                r0 = starts[k]
                return conv_unary(image[:, :, r0 : r0 + rows], self.fc1)

            zero = image.new_zeros(1, hidden, 1, width).contiguous(
                memory_format=torch.channels_last
            )
            above, here = zero, fc1(0)
            for k, r0 in enumerate(starts):
                after = fc1(k + 1) if k + 1 < len(starts) else None
                below = zero if after is None else after[:, :, :1]
                h = torch.cat([above, here, below], 2)
                h = conv_unary(h, self.dwconv, 'gelu', padding=no_vpad)
                conv_binary(
                    h, image[:, :, r0 : r0 + rows], self.fc2, 'add', True
                )
                above, here = here[:, :, -1:], after
        return y


class DeployPatchEmbed(nn.Module):
    """Strided conv with the BatchNorm folded in; the first one also puts
    the input into the deploy memory format."""

    def __init__(
        self,
        patch_embed: PatchEmbed,
        memory_format: Optional[torch.memory_format],
    ) -> None:
        super().__init__()
        self.projection = fuse_conv_bn(
            patch_embed.projection, patch_embed.norm
        )
        self.memory_format = memory_format

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        return self.projection(x)


def default_channels_last(backbone: nn.Module) -> bool:
    """Whether deploy mode runs in ``channels_last`` by default: yes on CPU
    for LSKA (oneDNN's NHWC depthwise kernels), no otherwise (LKA's square
    dilated conv is slow in NHWC; CUDA/cuDNN depthwise is fastest in NCHW).
    """
    param = next(backbone.parameters())
    return param.device.type == 'cpu' and backbone.attention_type == 'LSKA'


@torch.no_grad()
def switch_to_deploy(backbone, channels_last: Optional[bool] = None):
    """Fold a :class:`VANBackbone` into its fast inference form, in place.

    Args:
        backbone (VANBackbone): The model, weights already loaded.
        channels_last (bool, optional): Run in ``channels_last`` memory
            format. ``None`` picks :func:`default_channels_last`.

    Returns:
        VANBackbone: ``backbone`` itself, now in eval mode; a second call
        does nothing. ``train(True)`` on it raises ``RuntimeError``.

    Raises:
        ValueError: The backbone's ``ablation`` changes the gating's
            ``u * conv1(...)`` form (``no_attention``, ``add_attention``,
            ``no_pointwise``, ``sigmoid``); nothing is changed then. The
            ablations ``no_dw`` and ``no_dw_d`` deploy.
    """
    if getattr(backbone, 'deployed', False):
        return backbone
    ablation = getattr(backbone, 'ablation', None)
    if ablation not in PRODUCT_GATINGS:
        raise ValueError(
            f'{type(backbone).__name__} with ablation={ablation!r} cannot be '
            'switched to deploy mode: it folds the gating as '
            'u * conv1(depthwise convs(u)), which this ablation changes. '
            'Run the ablated model without deploy (no --deploy / '
            'VANDeployHook); the ablations that deploy: '
            + ', '.join(sorted(a for a in PRODUCT_GATINGS if a))
        )
    if channels_last is None:
        channels_last = default_channels_last(backbone)
    backbone.eval()
    for i in range(backbone.num_stages):
        patch_embed, blocks, _ = backbone.stage(i)
        fmt = torch.channels_last if channels_last and i == 0 else None
        fused = DeployPatchEmbed(patch_embed, fmt)
        setattr(backbone, f'patch_embed{i + 1}', fused)
        for j, block in enumerate(blocks):
            blocks[j] = DeployBlock(block, channels_last)
    if channels_last:
        backbone.to(memory_format=torch.channels_last)
    for param in backbone.parameters():
        param.requires_grad_(False)
    backbone.deployed = True
    backbone.deploy_channels_last = channels_last
    return backbone.eval()


__all__ = [
    'DeployBlock',
    'DeployGating',
    'DeployPatchEmbed',
    'NCHWConv',
    'bn_affine',
    'conv_binary',
    'conv_unary',
    'default_channels_last',
    'fuse_affine_pointwise',
    'fuse_conv_bn',
    'onednn_fusable',
    'scale_conv',
    'switch_to_deploy',
]
