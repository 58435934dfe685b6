# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""VAN backbones with LKA (``VAN_LKA``) or LSKA (``VAN_LSKA``) attention.

Four stages; stage ``i`` is an overlapping patch embedding (stride 4, then 2),
``depths[i]`` VAN blocks and a LayerNorm over channels. Input
``(N, 3, H, W)``; stage ``i`` outputs ``(N, embed_dims[i], H / s, W / s)``
with ``s`` = 4, 8, 16, 32.
"""

import functools
import logging
import os
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..weights.convert import (
    GatingSignature,
    detect_format,
    gating_signature,
    split_backbone,
    to_ours,
)
from ..weights.coverage import CheckpointError, arch_of, van_summary
from .attention import GATINGS, check_ablation
from .blocks import PatchEmbed, VANBlock
from .checked_load import ChecksStateDict
from .fused import fused_memory_format
from .kernels import GatingKernels

_MLP_RATIOS = (8, 8, 4, 4)
_SMALL = (64, 128, 320, 512)
#: b0-b6 of the VAN paper (identical for LKA and LSKA).
ARCH_SETTINGS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    'b0': dict(embed_dims=(32, 64, 160, 256), depths=(3, 3, 5, 2)),
    'b1': dict(embed_dims=_SMALL, depths=(2, 2, 4, 2)),
    'b2': dict(embed_dims=_SMALL, depths=(3, 3, 12, 3)),
    'b3': dict(embed_dims=_SMALL, depths=(3, 5, 27, 3)),
    'b4': dict(embed_dims=_SMALL, depths=(3, 6, 40, 3)),
    'b5': dict(embed_dims=(96, 192, 480, 768), depths=(3, 3, 24, 3)),
    'b6': dict(embed_dims=(96, 192, 384, 768), depths=(6, 6, 90, 6)),
}
for _arch in ARCH_SETTINGS.values():
    _arch['mlp_ratios'] = _MLP_RATIOS
#: Other names of b0-b3: mmpretrain's ``VAN`` arch names and their initials.
ARCH_ALIASES = {
    **dict.fromkeys(('tiny', 't'), 'b0'),
    **dict.fromkeys(('small', 's'), 'b1'),
    **dict.fromkeys(('base', 'b'), 'b2'),
    **dict.fromkeys(('large', 'l'), 'b3'),
}
_ARCH_KEYS = ('embed_dims', 'depths', 'mlp_ratios')
#: mmpretrain's name of ``mlp_ratios`` in a custom arch dict.
_ARCH_KEY_ALIASES = {'ffn_ratios': 'mlp_ratios'}


def resolve_arch(arch: Union[str, Dict]) -> Dict[str, Tuple]:
    """``'b0'``-``'b6'``, an alias or a dict -> embed_dims/depths/mlp_ratios.

    A custom dict has the keys ``embed_dims``, ``depths`` and ``mlp_ratios``
    (or mmpretrain's ``ffn_ratios``); ``depths`` are positive integers.

    Raises:
        ValueError: Unknown name or malformed dict. The messages contain
            those of mmpretrain's ``VAN`` ("not in default archs",
            "Custom arch needs").
    """
    if isinstance(arch, str):
        name = ARCH_ALIASES.get(arch.lower(), arch.lower())
        if name not in ARCH_SETTINGS:
            raise ValueError(
                f'Arch {arch} is not in default archs: allowed '
                f'{", ".join(ARCH_SETTINGS)}, aliases '
                f'{", ".join(f"{a}={b}" for a, b in ARCH_ALIASES.items())}, '
                f'or a dict with keys {", ".join(_ARCH_KEYS)}'
            )
        return dict(ARCH_SETTINGS[name])
    keys = (
        [_ARCH_KEY_ALIASES.get(k, k) for k in arch]
        if isinstance(arch, dict)
        else []
    )
    if len(keys) != len(set(keys)) or set(keys) != set(_ARCH_KEYS):
        raise ValueError(
            'Custom arch needs a dict with exactly the keys '
            f'{", ".join(_ARCH_KEYS)} (mlp_ratios may be called ffn_ratios, '
            f'as in mmpretrain, but not both); got {arch!r}'
        )
    settings = {_ARCH_KEY_ALIASES.get(k, k): tuple(v) for k, v in arch.items()}
    settings = {k: settings[k] for k in _ARCH_KEYS}
    lengths = {len(v) for v in settings.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise ValueError(
            'embed_dims, depths and mlp_ratios must be '
            f'non-empty and of one length; got {arch!r}'
        )
    for key in ('embed_dims', 'depths'):
        if not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0
            for v in settings[key]
        ):
            raise ValueError(
                f'arch {key} must be positive integers; got '
                f'{list(settings[key])}'
            )
    if not all(
        isinstance(v, (int, float)) and v > 0 for v in settings['mlp_ratios']
    ):
        raise ValueError(
            'arch mlp_ratios must be positive numbers; got '
            f'{list(settings["mlp_ratios"])}'
        )
    return settings


#: Norm types of the blocks' and patch embeddings' BatchNorms.
BLOCK_NORMS = ('BN', 'SyncBN', 'MMSyncBN', 'TorchSyncBN', 'BN2d')
#: Norm types of the LayerNorm after each stage.
STAGE_NORMS = ('LN', 'LayerNorm')
#: Keys of mmpretrain's ``block_cfgs`` that mean something here.
_BLOCK_CFG_KEYS = ('norm_cfg', 'layer_scale_init_value', 'act_cfg')


def _norm_type(cfg: Dict, what: str) -> str:
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise ValueError(f'{what} must be a dict with a "type"; got {cfg!r}')
    return cfg['type']


def resolve_norms(
    norm_cfg: Dict, stage_norm_cfg: Optional[Dict], block_cfgs: Dict
) -> Tuple[Dict, Dict]:
    """The blocks' BatchNorm and the stages' LayerNorm configs.

    ``norm_cfg`` is the BatchNorm of the blocks and patch embeddings (as in
    the VAN detection/segmentation code), except that a LayerNorm type there
    means what it means for mmpretrain's ``VAN``: the norm after each stage.
    mmpretrain's ``block_cfgs=dict(norm_cfg=...)`` sets the BatchNorm too.

    Raises:
        ValueError: A norm type that the VAN block cannot use, or one norm
            given twice.
    """
    block_norm = block_cfgs.get('norm_cfg')
    if _norm_type(norm_cfg, 'norm_cfg') in STAGE_NORMS:
        if stage_norm_cfg is not None:
            raise ValueError(
                'norm_cfg is a LayerNorm (mmpretrain: the norm after each '
                'stage) and stage_norm_cfg is given too: pass only one'
            )
        stage_norm_cfg = norm_cfg
    elif block_norm is not None:
        raise ValueError(
            "the blocks' BatchNorm is given twice, as norm_cfg and as "
            'block_cfgs["norm_cfg"]: pass only one'
        )
    else:
        block_norm = norm_cfg
    block_norm = block_norm if block_norm is not None else dict(type='BN')
    if stage_norm_cfg is None:
        stage_norm_cfg = dict(type='LN')  # mmpretrain's default (eps 1e-5)
    if _norm_type(block_norm, 'norm_cfg') not in BLOCK_NORMS:
        raise ValueError(
            f"norm_cfg type {block_norm['type']!r} cannot be the VAN blocks' "
            f'norm (they fold a BatchNorm into the convs); allowed: '
            f'{", ".join(BLOCK_NORMS)}, or a LayerNorm type '
            f'({", ".join(STAGE_NORMS)}) for the norm after each stage'
        )
    if _norm_type(stage_norm_cfg, 'stage_norm_cfg') not in STAGE_NORMS:
        raise ValueError(
            f'stage_norm_cfg type {stage_norm_cfg["type"]!r} is not a '
            f'LayerNorm; allowed: {", ".join(STAGE_NORMS)}'
        )
    return block_norm, stage_norm_cfg


def check_block_cfgs(block_cfgs: Dict) -> None:
    """mmpretrain's ``block_cfgs``: only ``norm_cfg``,
    ``layer_scale_init_value`` and ``act_cfg=dict(type='GELU')``."""
    if not isinstance(block_cfgs, dict):
        raise ValueError(
            f'block_cfgs must be a dict (one for all blocks); got '
            f'{block_cfgs!r}'
        )
    unknown = sorted(set(block_cfgs) - set(_BLOCK_CFG_KEYS))
    if unknown:
        raise ValueError(
            f'block_cfgs keys {unknown} are not supported; allowed: '
            f'{", ".join(_BLOCK_CFG_KEYS)}'
        )
    act = block_cfgs.get('act_cfg', dict(type='GELU'))
    if act != dict(type='GELU'):
        raise ValueError(
            f'block_cfgs act_cfg {act!r} is not supported: VAN blocks use '
            "dict(type='GELU')"
        )


def check_patch_sizes(
    patch_sizes: Optional[Sequence[int]], num_stages: int
) -> Tuple[int, ...]:
    """mmpretrain's ``patch_sizes``: kernel sizes, one per stage;
    ``None``: 7, then 3."""
    if patch_sizes is None:
        return (7,) + (3,) * (num_stages - 1)
    ok = (
        isinstance(patch_sizes, Sequence)
        and len(patch_sizes) == num_stages
        and all(
            isinstance(p, int) and not isinstance(p, bool) and p > 0
            for p in patch_sizes
        )
    )
    if not ok:
        raise ValueError(
            f'patch_sizes must be {num_stages} positive ints (one kernel '
            f'size per stage; stride is size // 2 + 1); got {patch_sizes!r}'
        )
    return tuple(patch_sizes)


def missing_pretrained_message(model: str, path: str) -> str:
    """What to do when a ``Pretrained`` checkpoint file is absent."""
    return (
        f'{model}: pretrained checkpoint {path!r} does not exist.\n'
        '  * VAN-LKA ImageNet weights download by URL (see README, '
        '"Pretrained weights").\n'
        '  * The LSKA authors publish their ImageNet weights (k=23 '
        'tiny/small/base) only in a SharePoint folder linked from their '
        'repository (StevenLauHKHK/Large-Separable-Kernel-Attention); '
        'download the file, then convert it with\n'
        '      python tools/model_converters/van_convert.py SRC.pth '
        f'{path or "DST.pth"}\n'
        '  * To train from scratch on purpose, pass\n'
        '      --cfg-options model.backbone.init_cfg=None'
    )


def local_pretrained_checkpoints(cfg) -> Iterator[str]:
    """The ``checkpoint`` of every ``Pretrained`` init config in ``cfg``
    (an ``init_cfg``, a list of them, or a whole model config: nested dicts
    and lists are searched) that is not a URL."""
    if isinstance(cfg, (list, tuple)):
        for value in cfg:
            yield from local_pretrained_checkpoints(value)
    elif isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained':
            path = str(cfg.get('checkpoint', ''))
            if '://' not in path:
                yield path
        for value in cfg.values():
            yield from local_pretrained_checkpoints(value)


def check_pretrained_files(cfg, owner: str) -> None:
    """Raise for the first of :func:`local_pretrained_checkpoints` of
    ``cfg`` that is not a file.

    Raises:
        FileNotFoundError: :func:`missing_pretrained_message` of ``owner``.
    """
    for path in local_pretrained_checkpoints(cfg):
        if not os.path.isfile(path):
            raise FileNotFoundError(missing_pretrained_message(owner, path))


class VANBackbone(ChecksStateDict, BaseModule):
    """The VAN network with a choice of gating (use the subclasses).

    Args:
        arch (str | dict): ``'b0'``-``'b6'``, ``'tiny'``/``'small'``/
            ``'base'``/``'large'`` or ``'t'``/``'s'``/``'b'``/``'l'``
            (= b0-b3, mmpretrain's names), or a dict with ``embed_dims``,
            ``depths`` and ``mlp_ratios`` (or ``ffn_ratios``).
            Defaults to ``'b0'`` (= mmpretrain's default ``'tiny'``).
        kernel_size (int, optional): Kernel size of the gating; ``None``
            takes the subclass default (LKA 21, LSKA 23).
        trivial (bool): The paper's trivial variant: one ``k x k`` depthwise
            conv (LKA) or one ``1 x k`` + ``k x 1`` pair (LSKA).
        patch_sizes (Sequence[int], optional): Kernel size of each stage's
            patch embedding; stride ``p // 2 + 1``, padding ``p // 2``.
            ``None``: 7, then 3 (strides 4, 2, 2, 2), mmpretrain's
            ``[7, 3, 3, 3]``.
        in_channels (int): Input channels. Defaults to 3.
        drop_rate (float): Dropout in the MLPs. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linearly increasing over the
            blocks from 0 to this value. Defaults to 0.
        layer_scale_init (float): Initial layer-scale value; ``<= 0`` builds
            no layer scales. Defaults to 1e-2. mmpretrain's name
            ``layer_scale_init_value`` is accepted too (one of the two).
        out_indices (Sequence[int]): Stages whose outputs are returned, in
            ``0..num_stages-1`` (negatives count from the end).
            Defaults to ``(3,)``, as mmpretrain's ``VAN``; dense-prediction
            configs pass ``(0, 1, 2, 3)``.
        frozen_stages (int): Stages ``0..frozen_stages`` are frozen (eval
            mode, no grad); -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode while training.
        norm_cfg (dict): BatchNorm of the patch embeddings and blocks,
            ``dict(type='BN')`` (default) or ``dict(type='SyncBN')``. A
            LayerNorm type (``'LN'``) means what mmpretrain's ``VAN`` means
            by it: the norm after each stage (then the blocks use ``BN``, or
            ``block_cfgs['norm_cfg']``).
        stage_norm_cfg (dict, optional): LayerNorm after each stage;
            ``None``: ``dict(type='LN')`` (eps 1e-5, as mmpretrain). The
            official classification networks use eps 1e-6, our ImageNet
            configs say so.
        block_cfgs (dict): mmpretrain's per-block options: ``norm_cfg``,
            ``layer_scale_init_value``, ``act_cfg`` (GELU only).
        with_cp (bool): Activation checkpointing per block while training.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL)``; any public VAN/LSKA format loads.
        ablation (str, optional): An ablated gating in every block (the VAN
            paper's LKA ablation): ``'no_dw'``, ``'no_dw_d'``,
            ``'no_attention'``, ``'add_attention'``, ``'no_pointwise'`` or
            ``'sigmoid'``, see
            :data:`~projects.van_lska.models.attention.ABLATIONS`. ``None``
            (default): the full gating.
        fused (bool): Run the blocks through the fused training path
            (:mod:`~projects.van_lska.models.fused`): ``channels_last`` on
            CPU, the 1x1 convs as GEMMs, the depthwise chains as autograd
            functions that save fewer activations. Same parameters, state
            dict and results (to float rounding); faster training and less
            memory. Defaults to False. Can be switched later
            (``model.fused = True``).
    """

    attention_type: str = ''
    default_kernel_size: int = 0

    def __init__(
        self,
        arch: Union[str, Dict] = 'b0',
        kernel_size: Optional[int] = None,
        trivial: bool = False,
        patch_sizes: Optional[Sequence[int]] = None,
        in_channels: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_scale_init: Optional[float] = None,
        out_indices: Sequence[int] = (3,),
        frozen_stages: int = -1,
        norm_eval: bool = False,
        norm_cfg: Dict = dict(type='BN'),
        stage_norm_cfg: Optional[Dict] = None,
        block_cfgs: Dict = dict(),
        with_cp: bool = False,
        init_cfg: Optional[Union[Dict, list]] = None,
        layer_scale_init_value: Optional[float] = None,
        ablation: Optional[str] = None,
        fused: bool = False,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        gating_cls, resolve_kernels = GATINGS[self.attention_type]
        if kernel_size is None:
            kernel_size = self.default_kernel_size
        self.kernels: GatingKernels = resolve_kernels(kernel_size, trivial)
        self.ablation = check_ablation(
            ablation, self.kernels, self.attention_type
        )
        settings = resolve_arch(arch)
        #: mmpretrain's ``VAN.arch_settings`` (``ffn_ratios`` included).
        self.arch_settings = dict(settings, ffn_ratios=settings['mlp_ratios'])
        self.embed_dims = settings['embed_dims']
        self.depths = settings['depths']
        self.mlp_ratios = settings['mlp_ratios']
        self.num_stages = len(self.depths)
        check_block_cfgs(block_cfgs)
        layer_scale_init = self._layer_scale_init(
            layer_scale_init,
            layer_scale_init_value,
            block_cfgs.get('layer_scale_init_value'),
        )
        norm_cfg, stage_norm_cfg = resolve_norms(
            norm_cfg, stage_norm_cfg, block_cfgs
        )
        self.norm_cfg, self.stage_norm_cfg = norm_cfg, stage_norm_cfg
        patch_sizes = check_patch_sizes(patch_sizes, self.num_stages)
        self.out_indices = self._check_out_indices(out_indices)
        if (
            isinstance(frozen_stages, bool)
            or not isinstance(frozen_stages, int)
            or not -1 <= frozen_stages < self.num_stages
        ):
            raise ValueError(
                f'frozen_stages must be an int in -1..{self.num_stages - 1} '
                f'(-1 freezes nothing); got {frozen_stages!r}'
            )
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        make_gating = functools.partial(
            gating_cls, kernels=self.kernels, ablation=self.ablation
        )
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        block_idx = 0
        for i, (dims, depth) in enumerate(zip(self.embed_dims, self.depths)):
            self.add_module(
                f'patch_embed{i + 1}',
                PatchEmbed(
                    in_channels if i == 0 else self.embed_dims[i - 1],
                    dims,
                    kernel_size=patch_sizes[i],
                    stride=patch_sizes[i] // 2 + 1,
                    norm_cfg=norm_cfg,
                ),
            )
            self.add_module(
                f'blocks{i + 1}',
                nn.ModuleList(
                    VANBlock(
                        dims,
                        self.mlp_ratios[i],
                        make_gating,
                        drop_path=dpr[block_idx + j],
                        drop=drop_rate,
                        layer_scale_init=layer_scale_init,
                        norm_cfg=norm_cfg,
                    )
                    for j in range(depth)
                ),
            )
            self.add_module(
                f'norm{i + 1}', build_norm_layer(stage_norm_cfg, dims)[1]
            )
            block_idx += depth
        self._init_default_weights()
        self._freeze_stages()
        self.fused = fused

    @property
    def fused(self) -> bool:
        """Whether the blocks run through the fused training path."""
        return self.__dict__.get('_fused', False)

    @fused.setter
    def fused(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f'fused must be True or False; got {value!r}')
        self.__dict__['_fused'] = value
        for i in range(self.num_stages):
            for block in self.stage(i)[1]:
                if isinstance(block, VANBlock):
                    block.fused = value

    @staticmethod
    def _layer_scale_init(*values: Optional[float]) -> float:
        """One of ``layer_scale_init``, ``layer_scale_init_value`` and
        ``block_cfgs['layer_scale_init_value']``; default 1e-2."""
        given = [v for v in values if v is not None]
        if len(given) > 1:
            raise ValueError(
                'the layer-scale init value is given more than once '
                '(layer_scale_init, layer_scale_init_value, block_cfgs): '
                'pass only one'
            )
        value = given[0] if given else 1e-2
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f'layer_scale_init must be a number (<= 0: no layer scale); '
                f'got {value!r}'
            )
        return float(value)

    def _check_out_indices(self, out_indices) -> Tuple[int, ...]:
        n = self.num_stages
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        ok = (
            isinstance(out_indices, Sequence)
            and len(out_indices) > 0
            and all(
                isinstance(i, int) and not isinstance(i, bool) and -n <= i < n
                for i in out_indices
            )
        )
        normed = tuple(sorted({i % n for i in out_indices})) if ok else ()
        if not ok or len(normed) != len(out_indices):
            raise ValueError(
                f'out_indices must be distinct stage indices in '
                f'0..{n - 1} (or -{n}..-1); got {out_indices!r}'
            )
        return normed

    @property
    def gating_signature(self) -> GatingSignature:
        return GatingSignature(
            self.attention_type, self.kernels.trivial, self.kernels.kernel_size
        )

    def _init_default_weights(self) -> None:
        """VAN init: conv normal(0, sqrt(2 / fan_out)), bias 0; norms 1, 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = (
                    m.kernel_size[0]
                    * m.kernel_size[1]
                    * m.out_channels
                    // m.groups
                )
                nn.init.normal_(m.weight, 0, (2.0 / fan_out) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, _BatchNorm, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Load ``init_cfg`` (e.g. ``Pretrained``), failing early and clearly
        when a local checkpoint file is missing."""
        check_pretrained_files(self.init_cfg, type(self).__name__)
        super().init_weights()

    def stage(self, i: int) -> Tuple[nn.Module, nn.ModuleList, nn.Module]:
        """Patch embedding, blocks and norm of stage ``i`` (from 0)."""
        return (
            getattr(self, f'patch_embed{i + 1}'),
            getattr(self, f'blocks{i + 1}'),
            getattr(self, f'norm{i + 1}'),
        )

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            for m in self.stage(i):
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False

    #: True once :meth:`switch_to_deploy` has folded the model.
    deployed: bool = False

    def switch_to_deploy(
        self, channels_last: Optional[bool] = None
    ) -> 'VANBackbone':
        """Fold BatchNorms, layer scales and shortcuts into the convs for
        fast inference, in place (after loading weights; idempotent).

        Args:
            channels_last (bool, optional): Run in ``channels_last``;
                ``None``: yes for LSKA on CPU. See
                :mod:`~projects.van_lska.models.deploy`.
        """
        from .deploy import switch_to_deploy

        return switch_to_deploy(self, channels_last)

    def train(self, mode: bool = True) -> 'VANBackbone':
        if mode and self.deployed:
            raise RuntimeError(
                f'{type(self).__name__} was switched to deploy mode '
                '(BatchNorm and layer scales folded, stochastic depth '
                'removed) and cannot be trained; build a fresh model'
            )
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """``(N, C_in, H, W)`` -> one ``(N, C_i, H/s_i, W/s_i)`` per index in
        ``out_indices``, ``s_i = 4 * 2**i``."""
        outs = []
        if self.fused and not self.deployed:
            x = x.contiguous(memory_format=fused_memory_format(x))
        for i in range(self.num_stages):
            patch_embed, blocks, norm = self.stage(i)
            x = patch_embed(x)
            # keep the stage's memory format (the LN below would otherwise
            # hand an NHWC-strided tensor to the next stage)
            layout = (
                torch.channels_last
                if x.is_contiguous(memory_format=torch.channels_last)
                and not x.is_contiguous()
                else torch.contiguous_format
            )
            for block in blocks:
                if self.with_cp and self.training and torch.is_grad_enabled():
                    x = cp.checkpoint(block, x, use_reentrant=False)
                else:
                    x = block(x)
            x = norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            x = x.contiguous(memory_format=layout)
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)

    def _prepare_state_dict(
        self, state_dict: Dict[str, torch.Tensor], prefix: str
    ) -> None:
        """Convert any public VAN/LSKA format in place before loading.

        Raises:
            CheckpointError: (a ``ValueError``) The checkpoint holds another
                gating type or kernel size, another arch (widths or
                depths), or, loaded on its own (``init_cfg``), no VAN
                weights. Nothing is loaded then.
        """
        own = {
            k[len(prefix) :]: state_dict.pop(k)
            for k in list(state_dict)
            if k.startswith(prefix)
        }
        dropped = []
        if not prefix:  # loaded on its own: ignore necks and heads
            own, dropped = split_backbone(own)
        if not prefix and van_summary(own) is None:
            keys = list(own) + dropped
            shown = ', '.join(keys[:4]) + (', ...' if len(keys) > 4 else '')
            raise CheckpointError(
                f'{type(self).__name__}: the checkpoint holds no VAN backbone '
                f'weights ({len(keys)} entries: {shown or "none"}); nothing '
                'was loaded. Give a VAN/LSKA '
                'checkpoint in any public format (official, mmpretrain, '
                "mmseg projects/van, the LSKA authors' or ours)."
            )
        fmt = detect_format(own)
        own = to_ours(own)
        self._check_compatible(own)
        if dropped:
            shown = ', '.join(dropped[:6]) + (
                ', ...' if len(dropped) > 6 else ''
            )
            print_log(
                f'{type(self).__name__}: ignored {len(dropped)} '
                f'non-backbone keys ({shown})',
                logger='current',
                level=logging.INFO,
            )
        if fmt != 'ours':
            print_log(
                f'{type(self).__name__}: converted a checkpoint in the '
                f'{fmt} format',
                logger='current',
                level=logging.INFO,
            )
        state_dict.update((prefix + k, v) for k, v in own.items())

    def _check_compatible(self, state_dict: Dict[str, torch.Tensor]) -> None:
        found = gating_signature(state_dict)
        ours = self.gating_signature
        # an ablated gating lacks convs, so the signature read off its
        # state dict differs; its own gating modules check their convs
        if found is not None and found != ours and self.ablation is None:
            raise CheckpointError(
                f'refusing to load a checkpoint with {found} gating into '
                f'{type(self).__name__} with {ours} gating; build the model '
                f'with the matching type/kernel_size, or convert nothing '
                f'and train from scratch'
            )
        arch = arch_of(state_dict)
        if arch and arch[0] != tuple(self.depths):
            raise CheckpointError(
                f'refusing to load a checkpoint of another arch into '
                f'{type(self).__name__} (embed_dims={self.embed_dims}, '
                f'depths={self.depths}): the checkpoint has depths '
                f'{arch[0]} (embed_dims {arch[1]}); nothing was loaded. Build '
                "the model with the checkpoint's arch or give a checkpoint "
                'of this one.'
            )
        own = self.state_dict()
        wrong = [
            f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
            for k, v in state_dict.items()
            if k in own and own[k].shape != v.shape
        ]
        if wrong:
            raise CheckpointError(
                f'refusing to load a checkpoint of another arch into '
                f'{type(self).__name__} (embed_dims={self.embed_dims}, '
                f'depths={self.depths}); {len(wrong)} shapes differ, e.g. '
                + '; '.join(wrong[:3])
            )


class VAN_LKA(VANBackbone):
    """VAN with Large Kernel Attention (Guo et al., 2022).

    ``kernel_size`` is one of 7, 14, 21 (default, the official
    5x5 + 7x7-dilation-3 decomposition) or 28, or any odd size with
    ``trivial=True``. See :class:`VANBackbone` for the other arguments.

    Example:
        >>> model = VAN_LKA(arch='b0').eval()
        >>> [tuple(o.shape) for o in model(torch.rand(1, 3, 224, 224))]
        [(1, 32, 56, 56), (1, 64, 28, 28), (1, 160, 14, 14), (1, 256, 7, 7)]
    """

    attention_type = 'LKA'
    default_kernel_size = 21


class VAN_LSKA(VANBackbone):
    """VAN with Large Separable Kernel Attention (Lau et al., 2024).

    ``kernel_size`` follows the LSKA rule (7, 11, 15, 19, 23, 29, 35, ...;
    default 23, the separable form of the official LKA), or any odd size with
    ``trivial=True``. See :class:`VANBackbone` for the other arguments.
    """

    attention_type = 'LSKA'
    default_kernel_size = 23
