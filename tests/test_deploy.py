# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The deploy (fast inference) path gives the normal path's outputs."""

import copy
import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from projects.van_lska.analysis.benchmark import (
    build_models,
    case_step,
    measure_memory,
    models_for,
)
from projects.van_lska.apis.config import REPO_ROOT as ROOT
from projects.van_lska.apis.config import registry, sync_bn_to_bn
from projects.van_lska.engine import VANDeployHook, switch_model_to_deploy
from projects.van_lska.models import VAN_LKA, VAN_LSKA
from projects.van_lska.models.deploy import DeployBlock, DeployPatchEmbed
from projects.van_lska.testing.randomize import randomize_ as randomize

TINY = dict(
    embed_dims=(8, 16, 24, 32), depths=(1, 2, 1, 1), mlp_ratios=(4,) * 4
)
BENCHMARK = 'tools/analysis_tools/benchmark_backbone.py'


def max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def check_deploy(model, x, channels_last, atol=1e-4):
    model = randomize(model).eval()
    with torch.no_grad():
        ref = model(x)
        fast = copy.deepcopy(model).switch_to_deploy(channels_last)
        out = fast(x)
    assert fast.deployed
    assert [o.shape for o in out] == [o.shape for o in ref]
    assert all(o.is_contiguous() for o in out)
    assert max_diff(out, ref) < atol
    return fast


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize(
    'cls,kernel_size,trivial',
    [
        (VAN_LKA, 21, False),
        (VAN_LKA, 7, False),
        (VAN_LKA, 28, False),
        (VAN_LKA, 7, True),
        (VAN_LSKA, 7, False),
        (VAN_LSKA, 11, False),
        (VAN_LSKA, 23, False),
        (VAN_LSKA, 53, False),
        (VAN_LSKA, 11, True),
    ],
)
def test_deploy_equivalence_tiny(cls, kernel_size, trivial, channels_last):
    torch.manual_seed(0)
    model = cls(arch=TINY, kernel_size=kernel_size, trivial=trivial)
    fast = check_deploy(model, torch.randn(2, 3, 64, 64), channels_last)
    blocks = [m for m in fast.modules() if isinstance(m, DeployBlock)]
    assert len(blocks) == sum(TINY['depths'])
    # no BatchNorm and no layer-scale parameter is left
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert not any('layer_scale' in k for k in fast.state_dict())


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_deploy_equivalence_b0(cls):
    torch.manual_seed(0)
    model = cls(arch='b0', out_indices=(1, 3))
    check_deploy(model, torch.randn(1, 3, 64, 96), None)


def test_deploy_is_exact_in_float64():
    torch.manual_seed(0)
    model = randomize(VAN_LSKA(arch=TINY, kernel_size=23)).double().eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        out = copy.deepcopy(model).switch_to_deploy(True)(x)
    assert max_diff(out, ref) < 1e-10


def test_switch_is_idempotent_and_blocks_training():
    torch.manual_seed(0)
    model = randomize(VAN_LSKA(arch=TINY)).eval()
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    fast = model.switch_to_deploy()
    assert fast is model
    with torch.no_grad():
        first = model(x)
        assert model.switch_to_deploy() is model
        assert isinstance(model.patch_embed1, DeployPatchEmbed)
        assert max_diff(model(x), first) == 0
    assert model.state_dict().keys() != set(keys)
    assert not any(p.requires_grad for p in model.parameters())
    model.eval()  # allowed
    with pytest.raises(RuntimeError, match='deploy mode'):
        model.train()
    # the normal path's layout is untouched
    assert list(VAN_LSKA(arch=TINY).state_dict()) == keys


def test_packed_weights_follow_shapes_copies_and_weight_changes():
    torch.manual_seed(0)
    model = randomize(VAN_LSKA(arch=TINY)).eval()
    fast = copy.deepcopy(model).switch_to_deploy(channels_last=True)
    with torch.no_grad():
        for shape in [(1, 3, 64, 64), (2, 3, 96, 64), (1, 3, 64, 64)]:
            x = torch.randn(shape)
            assert max_diff(fast(x), model(x)) < 1e-4
        clone = copy.deepcopy(fast)  # drops the opaque packed weights
        assert max_diff(clone(x), fast(x)) == 0
        # weights loaded after packing are picked up
        state = {k: v * 1.5 for k, v in fast.state_dict().items()}
        before = fast(x)
        fast.load_state_dict(state)
        clone.load_state_dict(state)
        after = fast(x)
        assert max_diff(after, before) > 1e-3
        block = fast.blocks1[0]
        block.__dict__.pop('_packed')  # a fresh pack gives the same
        assert max_diff(fast(x), after) == 0


def test_mlp_row_chunks_are_exact(monkeypatch):
    """Large maps run the MLP in row chunks (tiny chunks forced here):
    bitwise the whole-map result, for every batch element and chunk
    boundary."""
    torch.manual_seed(0)
    model = randomize(VAN_LSKA(arch=TINY)).eval()
    fast = copy.deepcopy(model).switch_to_deploy(channels_last=True)
    x = torch.randn(2, 3, 100, 68)
    with torch.no_grad():
        whole = fast(x)
        monkeypatch.setattr(DeployBlock, 'MLP_CHUNK_ABOVE', 0)
        for chunk_bytes in (1, 5000):
            monkeypatch.setattr(DeployBlock, 'MLP_CHUNK_BYTES', chunk_bytes)
            assert fast.blocks1[0].mlp_chunk_rows(
                torch.zeros(2, 8, 25, 17)
            ) == max(2, min(25, chunk_bytes // (17 * 32 * 4)))
            assert max_diff(fast(x), whole) == 0
        assert max_diff(fast(x), model(x)) < 1e-4


class _Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = VAN_LSKA(arch=TINY)
        self.neck = nn.Conv2d(32, 4, 1)


def test_hook_switches_in_before_test_only():
    torch.manual_seed(0)
    model = _Detector()
    randomize(model.backbone).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.backbone(x)
    runner = SimpleNamespace(model=model)
    hook = VANDeployHook()
    hook.before_val(runner)  # validation may run during training: no-op
    assert not model.backbone.deployed
    hook.before_test(runner)
    assert model.backbone.deployed
    with torch.no_grad():
        assert max_diff(model.backbone(x), ref) < 1e-4
    assert switch_model_to_deploy(model) == ['backbone']  # idempotent


def test_hook_is_found_by_downstream_registries():
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmseg.registry import HOOKS as SEG_HOOKS

    for hooks in (DET_HOOKS, SEG_HOOKS):
        hook = hooks.build(dict(type='VANDeployHook', channels_last=False))
        assert isinstance(hook, VANDeployHook)
        assert hook.channels_last is False


def test_benchmark_smoke(tmp_path, run_tool):
    out = tmp_path / 'bench.json'
    proc = run_tool(
        [
            BENCHMARK,
            '--archs', 'b0',
            '--attentions', 'LSKA:7',
            '--shapes', '64x64',
            '--modes', 'infer', 'train',
            '--with-cp',
            '--warmup', '1',
            '--repeats', '1',
            '--no-memory',
            '--json', out,
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.output[-3000:]
    results = json.loads(out.read_text())['results']
    infer, train = (r['models'] for r in results)
    assert set(infer) == {'ref', 'ours', 'ours-fast'}
    assert set(train) == {'ref', 'ours', 'ours+cp'}
    assert infer['ours-fast']['max_abs_diff'] < 1e-4
    assert infer['ours']['max_abs_diff'] < 1e-4
    assert all(r['throughput'] > 0 for r in train.values())
    assert 'ours-fast' in proc.stdout
    # one memory measurement in a fresh process
    case = results[0]['case']
    assert measure_memory(case, 'ours-fast', 1) > 0


def test_benchmark_fused_adamw_recipe_row_only():
    """``--ours-fused-adamw`` adds one labelled row; only that row trains
    with the fused AdamW kernel, ``ref`` and the others keep the plain
    one."""
    case = dict(
        arch='b0', attention='LSKA', kernel_size=7, h=64, w=64, batch=1
    )
    args = SimpleNamespace(
        channels_last=False,
        with_cp=False,
        fused=True,
        compile=False,
        ours_fused_adamw=True,
        models=None,
    )
    assert 'ours-fused+fadamw' not in models_for(
        dict(case, mode='infer'), args
    )
    case['mode'] = 'train'
    names = models_for(case, args)
    assert names == ['ref', 'ours', 'ours-fused', 'ours-fused+fadamw']
    models = build_models(case, names)
    assert models['ours-fused+fadamw'].fused
    steps = {n: case_step(case, n, m) for n, m in models.items()}
    fused = {n: bool(s.optimizer.defaults['fused']) for n, s in steps.items()}
    assert fused == {n: n == 'ours-fused+fadamw' for n in names}
    before = [p.clone() for p in models['ours-fused+fadamw'].parameters()]
    steps['ours-fused+fadamw']()
    after = list(models['ours-fused+fadamw'].parameters())
    assert any(not torch.equal(p, q) for p, q in zip(before, after))


def test_benchmark_sweep_compares_kernel_sizes(tmp_path, run_tool):
    out = tmp_path / 'sweep.json'
    proc = run_tool(
        [
            BENCHMARK,
            '--sweep',
            '--archs', 'b0',
            '--attentions', 'LKA', 'LSKA:7', 'LSKA:53',
            '--shapes', '64x64',
            '--warmup', '1',
            '--repeats', '1',
            '--no-memory',
            '--json', out,
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.output[-3000:]
    (result,) = json.loads(out.read_text())['results']
    rows = result['models']
    assert list(rows) == [
        'LKA-21', 'LKA-21 fast', 'LSKA-7', 'LSKA-7 fast',
        'LSKA-53', 'LSKA-53 fast',
    ]  # fmt: skip
    # LSKA's parameters and FLOPs grow with k, and stay below LKA's
    params = [rows[k]['params_m'] for k in ('LSKA-7', 'LSKA-53', 'LKA-21')]
    flops = [rows[k]['gflops'] for k in ('LSKA-7', 'LSKA-53', 'LKA-21')]
    assert params == sorted(params) and flops == sorted(flops)
    assert all(row['throughput'] > 0 for row in rows.values())
    assert '| b0 64x64 bs1 infer | LSKA-53 fast |' in proc.stdout


@pytest.mark.parametrize(
    'config',
    ['fpn_van_lska_b0.py', 'upernet_van_lka_b0.py', 'van_lska_b0_in1k.py'],
)
def test_deploy_inside_segmentors_and_classifiers(config):
    """The hook's switch inside real mmseg/mmpretrain models from our
    configs: same tensor outputs to 1e-4."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(str(ROOT / 'configs' / config))
    scope = cfg.default_scope
    init_default_scope(scope)
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None
    sync_bn_to_bn(model_cfg)
    torch.manual_seed(0)
    model = registry(scope).build(model_cfg)
    randomize(model.backbone)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x, mode='tensor')
        assert switch_model_to_deploy(model) == ['backbone']
        out = model(x, mode='tensor')
    ref = ref if isinstance(ref, (tuple, list)) else [ref]
    out = out if isinstance(out, (tuple, list)) else [out]
    assert max_diff(out, ref) < 1e-4
