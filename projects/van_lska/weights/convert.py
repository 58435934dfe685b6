# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Detect and convert the public VAN / VAN-LSKA state-dict formats.

Formats (names of block ``j`` of stage ``i``):

* ``ours``: ``patch_embed{i}.projection``, ``blocks{i}.{j}``,
  ``mlp.dwconv``, gating ``DW_conv``/``DW_D_conv`` (LKA) or
  ``DW_conv_h``/``DW_conv_v``/``DW_D_conv_h``/``DW_D_conv_v`` (LSKA).
  This is mmpretrain 1.x's ``VAN`` layout (after its ``backbone.`` prefix)
  and the LSKA authors' detection/segmentation layout.
* ``official``: ``patch_embed{i}.proj``, ``block{i}.{j}``,
  ``mlp.dwconv.dwconv``, gating ``conv0``/``conv_spatial`` (LKA) or
  ``conv0h``/``conv0v``/``conv_spatial_h``/``conv_spatial_v`` (LSKA). Used by
  the official VAN classification/segmentation code, mmseg's
  ``projects/van`` and the LSKA authors' classification code.

Any of them may come wrapped in ``state_dict`` (or ``model``), with a
``module.`` (DDP) or ``backbone.`` (OpenMMLab full model) prefix.
"""

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import torch

from ..models.kernels import infer_lka_kernel_size, infer_lska_kernel_size

StateDict = Dict[str, torch.Tensor]

FORMATS = ('ours', 'official')

#: official name -> our name, applied to every key in order.
_OFFICIAL_TO_OURS: List[Tuple[str, str]] = [
    (r'^patch_embed(\d+)\.proj\.', r'patch_embed\1.projection.'),
    (r'^block(\d+)\.', r'blocks\1.'),
    (r'\.mlp\.dwconv\.dwconv\.', '.mlp.dwconv.'),
    (r'\.spatial_gating_unit\.conv0\.', '.spatial_gating_unit.DW_conv.'),
    (
        r'\.spatial_gating_unit\.conv_spatial\.',
        '.spatial_gating_unit.DW_D_conv.',
    ),
    (r'\.spatial_gating_unit\.conv0h\.', '.spatial_gating_unit.DW_conv_h.'),
    (r'\.spatial_gating_unit\.conv0v\.', '.spatial_gating_unit.DW_conv_v.'),
    (
        r'\.spatial_gating_unit\.conv_spatial_h\.',
        '.spatial_gating_unit.DW_D_conv_h.',
    ),
    (
        r'\.spatial_gating_unit\.conv_spatial_v\.',
        '.spatial_gating_unit.DW_D_conv_v.',
    ),
]
#: our name -> official name (the inverse of the table above).
_OURS_TO_OFFICIAL: List[Tuple[str, str]] = [
    (r'^patch_embed(\d+)\.projection\.', r'patch_embed\1.proj.'),
    (r'^blocks(\d+)\.', r'block\1.'),
    (r'\.mlp\.dwconv\.', '.mlp.dwconv.dwconv.'),
    (r'\.spatial_gating_unit\.DW_conv\.', '.spatial_gating_unit.conv0.'),
    (
        r'\.spatial_gating_unit\.DW_D_conv\.',
        '.spatial_gating_unit.conv_spatial.',
    ),
    (r'\.spatial_gating_unit\.DW_conv_h\.', '.spatial_gating_unit.conv0h.'),
    (r'\.spatial_gating_unit\.DW_conv_v\.', '.spatial_gating_unit.conv0v.'),
    (
        r'\.spatial_gating_unit\.DW_D_conv_h\.',
        '.spatial_gating_unit.conv_spatial_h.',
    ),
    (
        r'\.spatial_gating_unit\.DW_D_conv_v\.',
        '.spatial_gating_unit.conv_spatial_v.',
    ),
]
_BACKBONE_KEY = re.compile(r'^(patch_embed\d+|blocks?\d+|norm\d+)\.')


def unwrap_checkpoint(checkpoint: Mapping) -> StateDict:
    """The state dict inside a loaded checkpoint file, ``module.`` removed."""
    state_dict = checkpoint
    for wrapper in ('state_dict', 'model'):
        if isinstance(state_dict, Mapping) and isinstance(
            state_dict.get(wrapper), Mapping
        ):
            state_dict = state_dict[wrapper]
            break
    if not isinstance(state_dict, Mapping):
        raise ValueError(
            'a checkpoint must be a dict of tensors, possibly '
            "wrapped in 'state_dict' or 'model'; got "
            f'{type(state_dict).__name__}'
        )
    return OrderedDict(
        (k[len('module.') :] if k.startswith('module.') else k, v)
        for k, v in state_dict.items()
    )


def split_backbone(state_dict: Mapping) -> Tuple[StateDict, List[str]]:
    """Keep the backbone's keys (``backbone.`` prefix stripped if present).

    Returns:
        tuple: The backbone state dict and the names of the keys left out
        (necks, heads, classifier ``head.*``).
    """
    if any(k.startswith('backbone.') for k in state_dict):
        keep = OrderedDict(
            (k[len('backbone.') :], v)
            for k, v in state_dict.items()
            if k.startswith('backbone.')
        )
        dropped = [k for k in state_dict if not k.startswith('backbone.')]
        return keep, dropped
    keep = OrderedDict(
        (k, v) for k, v in state_dict.items() if _BACKBONE_KEY.match(k)
    )
    dropped = [k for k in state_dict if k not in keep]
    return keep, dropped


def detect_format(state_dict: Mapping) -> str:
    """``'official'`` or ``'ours'`` for a backbone state dict."""
    for key in state_dict:
        if re.match(r'^block\d+\.', key) or re.match(
            r'^patch_embed\d+\.proj\.', key
        ):
            return 'official'
    return 'ours'


def _rename(state_dict: Mapping, table: List[Tuple[str, str]]) -> StateDict:
    out = OrderedDict()
    for key, value in state_dict.items():
        for pattern, repl in table:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def to_ours(state_dict: Mapping) -> StateDict:
    """Rename a backbone state dict of any format to ours."""
    if detect_format(state_dict) == 'official':
        return _rename(state_dict, _OFFICIAL_TO_OURS)
    return OrderedDict(state_dict)


def to_official(state_dict: Mapping) -> StateDict:
    """Rename a backbone state dict in our format to the official one."""
    return _rename(state_dict, _OURS_TO_OFFICIAL)


@dataclass(frozen=True)
class GatingSignature:
    """What a state dict says about its gating: type, variant and size."""

    attention: str  # 'LKA' or 'LSKA'
    trivial: bool
    kernel_size: int

    def __str__(self) -> str:
        name = self.attention + ('-trivial' if self.trivial else '')
        return f'{name} with kernel_size={self.kernel_size}'


def gating_signature(state_dict: Mapping) -> Optional[GatingSignature]:
    """Read the gating type and kernel size off a state dict in our format.

    Returns ``None`` when the state dict holds no gating weights.
    """
    shapes = {}
    for key, value in state_dict.items():
        m = re.search(r'\.spatial_gating_unit\.(\w+)\.weight$', key)
        if m and m.group(1) not in shapes:
            shapes[m.group(1)] = tuple(value.shape)
    if 'DW_conv_h' in shapes:
        local = shapes['DW_conv_h'][-1]
        dilated = (
            shapes['DW_D_conv_h'][-1] if 'DW_D_conv_h' in shapes else None
        )
        return GatingSignature(
            'LSKA', dilated is None, infer_lska_kernel_size(local, dilated)
        )
    if 'DW_conv' in shapes:
        local = shapes['DW_conv'][-1]
        dilated = shapes['DW_D_conv'][-1] if 'DW_D_conv' in shapes else None
        return GatingSignature(
            'LKA', dilated is None, infer_lka_kernel_size(local, dilated)
        )
    return None


def to_mmpretrain_classifier(state_dict: Mapping) -> StateDict:
    """A full mmpretrain ``ImageClassifier`` state dict from any format.

    Backbone keys get the ``backbone.`` prefix; an official classifier head
    (``head.weight``/``head.bias``) becomes ``head.fc.*``.
    """
    state_dict = unwrap_checkpoint(state_dict)
    backbone, rest = split_backbone(state_dict)
    out = OrderedDict(
        ('backbone.' + k, v) for k, v in to_ours(backbone).items()
    )
    for key in rest:
        if key in ('head.weight', 'head.bias'):
            out['head.fc.' + key.split('.')[-1]] = state_dict[key]
        elif key.startswith('head.fc.'):
            out[key] = state_dict[key]
    return out
