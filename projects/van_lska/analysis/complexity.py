# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Parameters and FLOPs of a detection, segmentation or classification
config, on one random image; no dataset is read, runs on the CPU
(``tools/analysis_tools/get_flops.py``, ``tools/misc/gen_metafiles.py``).

The codebase comes from the config's ``default_scope`` (mmdet, mmseg or
mmpretrain). The model is built (no pretrained weights are loaded), SyncBN is
turned into BN, a random ``uint8`` image of ``--shape H W`` goes through the
model's data preprocessor (which pads it, e.g. to a multiple of 32 for
detection) and then through ``model(inputs, data_samples, mode='tensor')``:

* mmdet: backbone + neck + heads as in mmdet's own ``get_flops`` (two-stage
  detectors include the RPN and the RoI heads on the test-time proposals);
* mmseg: backbone + neck + decode head (the auxiliary head is not run at
  inference and is not in the FLOPs, but its parameters are counted);
* mmpretrain: backbone + neck + head (logits).

FLOPs follow fvcore / mmengine (one multiply-add = one FLOP, as the papers'
GFLOPs); elementwise products and activations are not counted. Parameters are
those of the whole model (``model.parameters()``).
"""

import contextlib
import copy
import importlib
import json
import sys
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger

from projects.van_lska.apis.config import (
    codebase_of,
    drop_pretrained,
    registry,
)
from projects.van_lska.apis.files import write_text_atomic

#: codebase -> (default (H, W), data sample class, measured part)
DEFAULTS: Dict[str, Tuple[Tuple[int, int], str, str]] = {
    'mmdet': (
        (800, 1280),
        'mmdet.structures:DetDataSample',
        "model(inputs, data_samples, mode='tensor'): backbone + neck + "
        'heads (RPN and RoI heads on test-time proposals for two-stage '
        'detectors), no post-processing',
    ),
    'mmseg': (
        (512, 512),
        'mmseg.structures:SegDataSample',
        "model(inputs, data_samples, mode='tensor'): backbone + neck + "
        'decode head (auxiliary head not run; its parameters are counted)',
    ),
    'mmpretrain': (
        (224, 224),
        'mmpretrain.structures:DataSample',
        "model(inputs, mode='tensor'): backbone + neck + head (logits)",
    ),
}


def resolve_shape(
    shape: Optional[List[int]], default: Tuple[int, int]
) -> Tuple[int, int]:
    """``None`` -> default; ``[n]`` -> ``(n, n)``; ``[h, w]`` -> ``(h, w)``.

    Raises:
        ValueError: More than two values or a non-positive size.
    """
    if shape is None:
        return default
    if len(shape) == 1:
        shape = [shape[0], shape[0]]
    if len(shape) != 2 or min(shape) <= 0:
        raise ValueError(f'--shape takes H W or one size; got {shape}')
    return shape[0], shape[1]


def _import(path: str):
    module, name = path.split(':')
    return getattr(importlib.import_module(module), name)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's codebase, SyncBN -> BN, eval."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    scope = codebase_of(cfg)
    init_default_scope(scope)
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained(model_cfg)
    model = registry(scope).build(model_cfg)
    # default initialisation (e.g. Sparse R-CNN's proposal boxes); no
    # checkpoint is read: the Pretrained init_cfgs were dropped above
    model.init_weights()
    model = revert_sync_batchnorm(model)
    # The fused training path is the same network with the same numerics;
    # count it as the normal one (the tracer cannot read its oneDNN ops).
    for module in model.modules():
        if getattr(module, 'fused', False) is True:
            module.fused = False
    model.eval()
    return model


def random_batch(
    model: nn.Module, scope: str, shape: Tuple[int, int]
) -> Tuple[torch.Tensor, Optional[list]]:
    """One random ``uint8`` image of ``shape`` through the data
    preprocessor: ``(1, 3, H', W')`` float inputs (padded as the model pads
    at test time) and the data samples (``None`` for classification)."""
    h, w = shape
    sample_cls = _import(DEFAULTS[scope][1])
    sample = sample_cls(
        metainfo=dict(
            img_shape=(h, w),
            ori_shape=(h, w),
            pad_shape=(h, w),
            scale_factor=(1.0, 1.0),
            flip=False,
            flip_direction=None,
        )
    )
    if scope == 'mmdet':  # Sparse R-CNN's tensor forward reads the GT
        from mmengine.structures import InstanceData

        sample.gt_instances = InstanceData(
            bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long)
        )
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(
        0, 256, (3, h, w), dtype=torch.uint8, generator=generator
    )
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False
    )
    samples = data['data_samples'] if scope != 'mmpretrain' else None
    return data['inputs'], samples


def count_parameters(model: nn.Module) -> int:
    """Number of (unique) parameters of the whole model."""
    return sum(p.numel() for p in model.parameters())


def analyse(
    cfg: Config, shape: Optional[List[int]] = None
) -> Dict[str, object]:
    """Parameters and FLOPs of ``cfg``'s model at ``shape`` (see module
    docstring). Returns a JSON-serialisable dict."""
    from mmengine.analysis import FlopAnalyzer, parameter_count

    scope = codebase_of(cfg)
    default, _, measured = DEFAULTS[scope]
    h, w = resolve_shape(shape, default)
    model = build_model(cfg)
    with torch.no_grad():
        inputs, samples = random_batch(model, scope, (h, w))
        model.forward = partial(
            model.forward, data_samples=samples, mode='tensor'
        )
        analyzer = FlopAnalyzer(model, (inputs,))
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        flops = int(analyzer.total())
        by_module = analyzer.by_module()
    params = int(parameter_count(model)[''])
    parts = {
        name: int(by_module.get(name, 0))
        for name, _ in model.named_children()
        if name != 'data_preprocessor'
    }
    # the tracer does not scope some functional ops (e.g. mmseg's resize)
    other = flops - sum(parts.values())
    if other:
        parts['unattributed'] = other
    return dict(
        config=str(cfg.filename),
        codebase=scope,
        model=cfg.model.get('type'),
        backbone=cfg.model.get('backbone', {}).get('type'),
        input_shape=[h, w],
        padded_shape=list(inputs.shape[-2:]),
        measured=measured,
        params=params,
        flops=flops,
        params_m=round(params / 1e6, 2),
        gflops=round(flops / 1e9, 2),
        flops_by_part=parts,
    )


def format_result(result: Dict[str, object]) -> str:
    h, w = result['input_shape']
    lines = [
        '=' * 60,
        f'Config:       {result["config"]}',
        f'Codebase:     {result["codebase"]} ({result["model"]}, '
        f'backbone {result["backbone"]})',
        f'Input shape:  {h}x{w} (H x W)',
    ]
    if result['padded_shape'] != result['input_shape']:
        ph, pw = result['padded_shape']
        lines.append(f'Padded to:    {ph}x{pw} by the data preprocessor')
    lines += [
        f'Measured:     {result["measured"]}',
        f'Params:       {result["params_m"]:.2f} M ({result["params"]})',
        f'FLOPs:        {result["gflops"]:.2f} G ({result["flops"]})',
        'FLOPs by part: '
        + ', '.join(
            f'{k} {v / 1e9:.2f} G' for k, v in result['flops_by_part'].items()
        ),
        '=' * 60,
        'FLOPs: one multiply-add = one FLOP; elementwise products, '
        'activations and NMS are not counted.',
    ]
    return '\n'.join(lines)


def run(
    config: str,
    shape: Optional[List[int]] = None,
    cfg_options: Optional[Dict] = None,
    json_out: Optional[str] = None,
) -> Dict[str, object]:
    """Measure ``config`` and report (``tools/analysis_tools/get_flops.py``).

    Args:
        config: config file.
        shape: ``[H, W]``, ``[size]`` or ``None`` (the codebase's default).
        cfg_options: merged into the config first.
        json_out: ``None``: print the text report; ``'-'``: print only the
            JSON on stdout (everything else goes to stderr); a path: print
            the text report and write the JSON there.

    Returns:
        dict: :func:`analyse`'s result.
    """
    json_only = json_out == '-'
    # the 'current' logger: quiet when stdout must hold only the JSON
    MMLogger.get_instance(
        'get_flops', log_level='ERROR' if json_only else 'WARNING'
    )
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    quiet = contextlib.redirect_stdout(sys.stderr)
    with quiet if json_only else contextlib.nullcontext():
        result = analyse(cfg, shape)
    if json_only:
        print(json.dumps(result))
    else:
        print(format_result(result))
        if json_out:
            write_text_atomic(json_out, json.dumps(result, indent=2) + '\n')
    return result
