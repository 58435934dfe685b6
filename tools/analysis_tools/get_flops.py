# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Parameters and FLOPs of a detection, segmentation or classification
config, on one random image; no dataset is read, runs on the CPU.

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

Example::

    python tools/analysis_tools/get_flops.py configs/van_lska_b0_in1k.py
    python tools/analysis_tools/get_flops.py CONFIG --shape 512 --json
"""

import argparse
import contextlib
import copy
import importlib
import json
import sys
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # for custom_imports=['projects...']
    sys.path.insert(0, str(REPO_ROOT))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

#: default_scope -> (default (H, W), data sample class, measured part)
CODEBASES: Dict[str, Tuple[Tuple[int, int], str, str]] = {
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


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Parameters and FLOPs of a config (random input, CPU)'
    )
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        metavar='N',
        help='input size: H W, or one value for a square image; defaults: '
        '800 1280 (H W, the "1280x800" image) for detection, 512 512 for '
        'segmentation, 224 224 for classification',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, xxx=yyy format',
    )
    parser.add_argument(
        '--json',
        nargs='?',
        const='-',
        default=None,
        metavar='PATH',
        help='write the result as JSON to PATH; without PATH print only the '
        'JSON on stdout',
    )
    args = parser.parse_args(argv)
    if args.shape is not None and (
        len(args.shape) > 2 or min(args.shape) <= 0
    ):
        parser.error(f'--shape takes H W or one size; got {args.shape}')
    return args


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


def codebase_of(cfg: Config) -> str:
    """The config's ``default_scope``: mmdet, mmseg or mmpretrain.

    Raises:
        ValueError: Any other scope.
    """
    scope = cfg.get('default_scope', None)
    if scope not in CODEBASES:
        raise ValueError(
            f'default_scope must be one of {", ".join(CODEBASES)}; '
            f'got {scope!r}'
        )
    return scope


def drop_pretrained(node) -> None:
    """Remove every ``Pretrained`` ``init_cfg`` of a model config in place:
    the weights do not change the count and are not downloaded."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        if any(
            isinstance(i, dict) and i.get('type') == 'Pretrained'
            for i in inits
        ):
            kept = [
                i
                for i in inits
                if not (isinstance(i, dict) and i.get('type') == 'Pretrained')
            ]
            node['init_cfg'] = kept or None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in the config's codebase, SyncBN -> BN, eval."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    scope = codebase_of(cfg)
    init_default_scope(scope)
    importlib.import_module(f'{scope}.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained(model_cfg)
    model = registry.build(model_cfg)
    # default initialisation (e.g. Sparse R-CNN's proposal boxes); no
    # checkpoint is read: the Pretrained init_cfgs were dropped above
    model.init_weights()
    model = revert_sync_batchnorm(model)
    model.eval()
    return model


def random_batch(
    model: nn.Module, scope: str, shape: Tuple[int, int]
) -> Tuple[torch.Tensor, Optional[list]]:
    """One random ``uint8`` image of ``shape`` through the data
    preprocessor: ``(1, 3, H', W')`` float inputs (padded as the model pads
    at test time) and the data samples (``None`` for classification)."""
    h, w = shape
    sample_cls = _import(CODEBASES[scope][1])
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
    default, _, measured = CODEBASES[scope]
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


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    json_only = args.json == '-'
    # the 'current' logger: quiet when stdout must hold only the JSON
    MMLogger.get_instance(
        'get_flops', log_level='ERROR' if json_only else 'WARNING'
    )
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    quiet = contextlib.redirect_stdout(sys.stderr)
    with quiet if json_only else contextlib.nullcontext():
        result = analyse(cfg, args.shape)
    if json_only:
        print(json.dumps(result))
    else:
        print(format_result(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + '\n')
    return result


if __name__ == '__main__':
    main()
