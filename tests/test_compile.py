# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The backbones trace into one graph and run in ``channels_last``."""

import copy

import pytest
import torch
import torch._dynamo as dynamo

from projects.van_lska.models import VAN_LKA, VAN_LSKA

TINY = dict(
    embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), mlp_ratios=(2,) * 4
)


def graph_breaks(model, x) -> int:
    dynamo.reset()
    explanation = dynamo.explain(model)(x)
    return explanation.graph_break_count


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_no_graph_breaks_train_and_with_cp(cls):
    x = torch.randn(2, 3, 32, 32)
    model = cls(arch=TINY, drop_path_rate=0.1).train()
    assert graph_breaks(model, x) == 0
    model.with_cp = True
    assert graph_breaks(model, x) == 0


def test_no_graph_breaks_deploy_and_same_output():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    model = VAN_LSKA(arch=TINY).eval().switch_to_deploy(channels_last=True)
    with torch.no_grad():
        assert graph_breaks(model, x) == 0
        compiled = torch.compile(model, fullgraph=True, backend='eager')
        ref = model(x)
        out = compiled(x)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out, ref))
    dynamo.reset()


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_channels_last_matches(cls):
    torch.manual_seed(0)
    model = cls(arch=TINY).eval()
    x = torch.randn(2, 3, 64, 64)
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = model(x)
        for m in (model, cl_model):
            out = m(x.contiguous(memory_format=torch.channels_last))
            for a, b in zip(out, ref):
                assert a.is_contiguous()
                assert torch.allclose(a, b, atol=1e-5)


def test_channels_last_training_gradients_match():
    torch.manual_seed(0)
    model = VAN_LSKA(arch=TINY).train()
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32)
    for m, inp in (
        (model, x),
        (cl_model, x.contiguous(memory_format=torch.channels_last)),
    ):
        sum(o.sum() for o in m(inp)).backward()
    for p, q in zip(model.parameters(), cl_model.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('channels_last', [False, True])
def test_stages_keep_the_input_memory_format(channels_last):
    model = VAN_LSKA(arch=TINY).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    seen = []
    for i in (2, 3, 4):
        getattr(model, f'patch_embed{i}').register_forward_pre_hook(
            lambda m, args: seen.append(args[0])
        )
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64).contiguous(memory_format=fmt))
    assert len(seen) == 3
    assert all(t.is_contiguous(memory_format=fmt) for t in seen)
