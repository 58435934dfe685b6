# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The segmentors of mmseg ``projects/van`` (OpenMMLab's conversion of the
VAN-Seg release), rebuilt from the installed mmseg for the tests.

The ten public ADE20K VAN-LKA checkpoints (facts section 9) are state dicts
of these models. mmseg 1.2.2's wheel does not ship ``projects/van``, but its
backbone is mmseg's own ``MSCAN`` (``mmseg.models.backbones.mscan``) with the
LKA attention put in place of MSCA's, so this module assembles it from
mmseg's classes in the same way: ``patch_embed{i}.proj`` / ``.norm``
(``OverlapPatchEmbed``), ``block{i}.{j}`` (``MSCABlock`` with ``attn``
= ``proj_1``, ``spatial_gating_unit.conv0`` / ``conv_spatial`` /
``conv1``, ``proj_2``; ``mlp.fc1`` / ``mlp.dwconv`` / ``mlp.fc2`` of
mmseg's ``Mlp``; ``layer_scale_1/2``) and ``norm{i}`` (``nn.LayerNorm``).
The heads are mmseg's ``UPerHead`` + ``FCNHead`` and ``FPN`` +
``FPNHead`` with the settings of ``projects/van``'s ``van_upernet.py`` and
``van_fpn.py``. None of it goes through this suite's backbone or configs,
so the key names, shapes and outputs are an independent reference.

:func:`public_checkpoint` writes a file in the layout of the public files
(``{'meta': ..., 'state_dict': ...}``, ``backbone.`` / ``decode_head.`` /
``auxiliary_head.`` / ``neck.`` keys) under the public naming pattern with
the sha256 prefix of its bytes, either with fully random weights (a tiny
arch, for end-to-end runs) or ``compact`` (any arch, real shapes, every
tensor a per-output-channel random vector broadcast over its other
dimensions: the file holds a few kB, however large the model).
"""

import hashlib
import io
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

ArchLike = Union[str, Dict[str, Sequence[int]]]

#: Public file name pattern (facts section 9): ``van-b4-in22kpre_upernet_
#: 3rdparty_512x512-ade20k_20230522-4a4d744a.pth``.
NAME_PATTERN = (
    'van-{arch}-{pretrain}pre_{head}_3rdparty_512x512-ade20k_20230522-{sha8}'
    '.pth'
)


def _register() -> str:
    """Register the reference backbone in mmseg's ``MODELS`` (once)."""
    from mmseg.models.backbones.mscan import (
        MSCAN,
        MSCABlock,
        MSCASpatialAttention,
        OverlapPatchEmbed,
    )
    from mmseg.registry import MODELS

    name = 'MmsegProjectsVAN'
    if MODELS.get(name) is not None:
        return name

    class LKAGating(nn.Module):
        """5x5 depthwise, 7x7 depthwise dilation 3, 1x1; ``u * attn``."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv0 = nn.Conv2d(
                channels, channels, 5, padding=2, groups=channels
            )
            self.conv_spatial = nn.Conv2d(
                channels, channels, 7, padding=9, groups=channels, dilation=3
            )
            self.conv1 = nn.Conv2d(channels, channels, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.conv1(self.conv_spatial(self.conv0(x)))

    class LKASpatialAttention(MSCASpatialAttention):
        def __init__(self, channels: int) -> None:
            super().__init__(channels)
            self.spatial_gating_unit = LKAGating(channels)

    class LKABlock(MSCABlock):
        def __init__(self, channels: int, **kwargs) -> None:
            super().__init__(channels, **kwargs)
            self.attn = LKASpatialAttention(channels)

    class MmsegProjectsVAN(MSCAN):
        """mmseg ``projects/van``'s ``VAN``: MSCAN with LKA blocks."""

        def __init__(
            self,
            embed_dims: Sequence[int],
            depths: Sequence[int],
            mlp_ratios: Sequence[int] = (8, 8, 4, 4),
            drop_path_rate: float = 0.0,
            norm_cfg: Optional[Dict] = None,
        ) -> None:
            super(MSCAN, self).__init__()
            norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
            self.depths = list(depths)
            self.num_stages = len(depths)
            rates = torch.linspace(
                0, drop_path_rate, sum(depths), device='cpu'
            ).tolist()
            start = 0
            for i, (dims, depth) in enumerate(zip(embed_dims, depths)):
                embed = OverlapPatchEmbed(
                    patch_size=7 if i == 0 else 3,
                    stride=4 if i == 0 else 2,
                    in_channels=3 if i == 0 else embed_dims[i - 1],
                    embed_dim=dims,
                    norm_cfg=norm_cfg,
                )
                blocks = nn.ModuleList(
                    LKABlock(
                        dims,
                        mlp_ratio=mlp_ratios[i],
                        drop_path=rates[start + j],
                        norm_cfg=norm_cfg,
                    )
                    for j in range(depth)
                )
                start += depth
                setattr(self, f'patch_embed{i + 1}', embed)
                setattr(self, f'block{i + 1}', blocks)
                setattr(self, f'norm{i + 1}', nn.LayerNorm(dims))

        def init_weights(self) -> None:  # random weights come from outside
            pass

    MODELS.register_module(name=name, module=MmsegProjectsVAN)
    return name


def resolve(arch: ArchLike) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """``(embed_dims, depths)`` of ``'b0'``-``'b6'`` or a dict."""
    if isinstance(arch, str):
        from projects.van_lska.models.van import resolve_arch

        arch = resolve_arch(arch)
    return tuple(arch['embed_dims']), tuple(arch['depths'])


def segmentor_cfg(
    head: str,
    arch: ArchLike,
    channels: Optional[int] = None,
    aux_channels: Optional[int] = None,
) -> Dict:
    """The ``EncoderDecoder`` config of ``projects/van`` (BN for SyncBN).

    Args:
        head: ``'upernet'`` or ``'fpn'``.
        arch: ``'b0'``-``'b6'`` or ``dict(embed_dims=..., depths=...)``.
        channels: decode head channels (``projects/van``: UperNet 512,
            FPN 128; the FPN neck has 256); smaller for tiny tests, where
            the FPN neck gets ``2 * channels``.
        aux_channels: UperNet's auxiliary FCNHead channels (256).
    """
    dims, depths = resolve(arch)
    norm_cfg = dict(type='BN', requires_grad=True)
    model = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
        ),
        backbone=dict(
            type=_register(),
            embed_dims=dims,
            depths=depths,
            norm_cfg=norm_cfg,
        ),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'),
    )
    loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    if head == 'upernet':
        model['decode_head'] = dict(
            type='UPerHead',
            in_channels=list(dims),
            in_index=[0, 1, 2, 3],
            pool_scales=(1, 2, 3, 6),
            channels=channels or 512,
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=loss,
        )
        model['auxiliary_head'] = dict(
            type='FCNHead',
            in_channels=dims[2],
            in_index=2,
            channels=aux_channels or 256,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(loss, loss_weight=0.4),
        )
    elif head == 'fpn':
        neck = 2 * channels if channels else 256
        model['neck'] = dict(
            type='FPN', in_channels=list(dims), out_channels=neck, num_outs=4
        )
        model['decode_head'] = dict(
            type='FPNHead',
            in_channels=[neck] * 4,
            in_index=[0, 1, 2, 3],
            feature_strides=[4, 8, 16, 32],
            channels=channels or 128,
            dropout_ratio=0.1,
            num_classes=150,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=loss,
        )
    else:
        raise ValueError(f"head must be 'upernet' or 'fpn', not {head!r}")
    return model


def build_segmentor(head: str, arch: ArchLike, **kwargs) -> nn.Module:
    """:func:`segmentor_cfg` built by mmseg (eval mode)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    return MODELS.build(segmentor_cfg(head, arch, **kwargs)).eval()


def compact_random_state(
    state_dict: Dict[str, torch.Tensor], seed: int = 0
) -> Dict[str, torch.Tensor]:
    """Random tensors of the shapes of ``state_dict`` that cost almost no
    storage: per output channel (first dimension) one random value,
    broadcast over the other dimensions (a stride-0 view, which
    ``torch.save`` stores as is). ``running_var`` is positive; integer
    buffers (``num_batches_tracked``) are kept."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state_dict.items():
        if not value.is_floating_point():
            out[key] = torch.zeros(value.shape, dtype=value.dtype)
            continue
        if value.dim() == 0:
            out[key] = torch.randn((), generator=gen)
            continue
        head = torch.randn(value.shape[0], generator=gen) * 0.1
        if key.endswith('running_var'):
            head = head.abs() + 0.5
        view = head.reshape(-1, *([1] * (value.dim() - 1)))
        out[key] = view.expand(value.shape)
    return out


def public_checkpoint(
    folder: Union[str, Path],
    head: str,
    arch: ArchLike,
    pretrain: str = 'in1k',
    name_arch: Optional[str] = None,
    compact: bool = False,
    seed: int = 0,
    **head_kwargs,
) -> Tuple[Path, nn.Module]:
    """Write a checkpoint in the layout of the public files.

    Args:
        folder: where the file goes (created).
        head, arch, head_kwargs: see :func:`segmentor_cfg`.
        pretrain: ``'in1k'`` or ``'in22k'`` (part of the name).
        name_arch: the arch in the file name (default: ``arch`` when it is
            a name, else ``'b0'``).
        compact: real shapes with :func:`compact_random_state` values (the
            model is built on the ``meta`` device: no memory); else every
            value random (``randomize_(everything=True)``), for a tiny arch.
        seed: seed of the values.

    Returns:
        ``(path, model)``: the file, named ``NAME_PATTERN`` with the first
        8 hex digits of its sha256, and the reference segmentor holding
        exactly its weights (``None`` when ``compact``).
    """
    from projects.van_lska.testing.randomize import randomize_

    if compact:
        with torch.device('meta'):
            shapes = build_segmentor(head, arch, **head_kwargs).state_dict()
        state, model = compact_random_state(shapes, seed), None
    else:
        torch.manual_seed(seed)
        model = randomize_(
            build_segmentor(head, arch, **head_kwargs), seed, everything=True
        ).eval()
        state = model.state_dict()
    buffer = io.BytesIO()
    torch.save(
        {
            'meta': {
                'note': 'random weights in the layout of mmseg '
                'projects/van ADE20K checkpoints (tests)'
            },
            'state_dict': state,
        },
        buffer,
    )
    data = buffer.getvalue()
    if name_arch is None:
        name_arch = arch if isinstance(arch, str) else 'b0'
    name = NAME_PATTERN.format(
        arch=name_arch,
        pretrain=pretrain,
        head=head,
        sha8=hashlib.sha256(data).hexdigest()[:8],
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path, model
