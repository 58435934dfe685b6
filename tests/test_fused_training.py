# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The fused training path (``fused=True``) gives the normal path's outputs
and gradients, and the references' (code we did not write)."""

import copy

import pytest
import torch
import torch._dynamo as dynamo
import torch.nn as nn
import torch.nn.functional as F

from projects.van_lska.models import VAN_LKA, VAN_LSKA
from projects.van_lska.models.attention import ABLATIONS
from projects.van_lska.models.fused import (
    DepthwiseChainFn,
    PointwiseFn,
    ScaledPointwiseResidualFn,
    depthwise_chain,
    depthwise_gelu,
    geometry,
    pointwise,
    scaled_pointwise_residual,
)
from projects.van_lska.testing.lska_reference import (
    REFERENCE_LN_EPS,
    build_reference,
    copy_weights_to_reference,
)
from projects.van_lska.testing.randomize import randomize_

TINY = dict(
    embed_dims=(8, 16, 24, 32), depths=(1, 2, 1, 1), mlp_ratios=(4,) * 4
)
CL = torch.channels_last


def loss_of(outs):
    """A loss whose gradient differs at every output position."""
    total = 0
    for o in outs:
        w = torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)
        total = total + (o * w).sum() + (o * o).mean()
    return total


def run(model, x, seed=0):
    """Outputs and parameter gradients of one forward + backward."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # same dropout / stochastic-depth draws
    outs = model(x)
    loss_of(outs).backward()
    grads = {
        n: p.grad.clone()
        for n, p in model.named_parameters()
        if p.grad is not None
    }
    return outs, grads


#: Conv biases right before a BatchNorm in training mode: their gradient
#: is zero (the BatchNorm subtracts the batch mean), so only rounding noise
#: is left to compare; :func:`max_rel` checks that it is tiny instead.
ZERO_GRAD = '.projection.bias'


def max_rel(ga, gb, batch_stats: bool = True) -> float:
    """Largest gradient difference, relative to each parameter's largest
    gradient (``batch_stats``: the BatchNorms normalise with batch
    statistics, see :data:`ZERO_GRAD`)."""
    assert ga.keys() == gb.keys()
    scale = max(g.abs().max().item() for g in gb.values())
    zero = ZERO_GRAD if batch_stats else '\0'
    for k in ga:
        if k.endswith(zero):
            assert ga[k].abs().max().item() < 1e-4 * scale
    return max(
        (ga[k] - gb[k]).abs().max().item() / gb[k].abs().max().item()
        for k in ga
        if not k.endswith(zero)
    )


def compare(model, x, tol):
    """Normal vs fused path: outputs and gradients, relative ``tol``."""
    fused = copy.deepcopy(model)
    fused.fused = True
    outs, grads = run(model, x)
    f_outs, f_grads = run(fused, x)
    for a, b in zip(f_outs, outs):
        assert a.is_contiguous()
        assert (a - b).abs().max().item() <= tol * b.abs().max().item()
    assert len(grads) > 0
    assert max_rel(f_grads, grads) < tol
    # running statistics are updated alike
    for (name, a), b in zip(
        fused.named_buffers(), model.buffers(), strict=True
    ):
        assert torch.allclose(a.double(), b.double(), rtol=tol, atol=tol), name


VARIANTS = [
    (VAN_LSKA, 23, False, None),
    (VAN_LSKA, 7, False, None),
    (VAN_LSKA, 53, False, None),
    (VAN_LSKA, 11, True, None),
    (VAN_LKA, 21, False, None),
    (VAN_LKA, 7, False, None),  # even dilated kernel (4, dilation 2)
    (VAN_LKA, 9, True, None),
] + [(VAN_LSKA, 23, False, a) for a in ABLATIONS]
VARIANTS += [(VAN_LKA, 21, False, 'no_dw_d'), (VAN_LKA, 21, False, 'sigmoid')]
VARIANTS += [(VAN_LSKA, 11, True, 'no_pointwise')]


def _id(v):
    cls, k, trivial, ablation = v
    return f'{cls.__name__}-{k}{"-trivial" if trivial else ""}-{ablation}'


@pytest.mark.parametrize('variant', VARIANTS, ids=_id)
def test_fused_gradients_equal_float64(variant):
    cls, k, trivial, ablation = variant
    torch.manual_seed(0)
    model = cls(
        arch=TINY,
        kernel_size=k,
        trivial=trivial,
        ablation=ablation,
        out_indices=(0, 1, 2, 3),
    )
    model = randomize_(model).double().train()
    x = torch.randn(2, 3, 64, 48, dtype=torch.float64)
    compare(model, x, 1e-10)


@pytest.mark.parametrize('cls', [VAN_LSKA, VAN_LKA])
def test_fused_gradients_equal_float32(cls):
    torch.manual_seed(0)
    model = randomize_(cls(arch=TINY, out_indices=(0, 1, 2, 3))).train()
    compare(model, torch.randn(2, 3, 64, 64), 1e-4)


def test_fused_gradients_equal_with_drop_path_float64():
    """Stochastic depth draws one number per sample, in the same order."""
    torch.manual_seed(0)
    model = VAN_LSKA(arch=TINY, out_indices=(0, 1, 2, 3), drop_path_rate=0.3)
    model = randomize_(model).double().train()
    compare(model, torch.randn(4, 3, 64, 64, dtype=torch.float64), 1e-10)


def test_fused_dropout_runs_and_drops():
    """Dropout masks are drawn in the fused path's memory order (NHWC on
    CPU): other elements than the normal path's, at the same rate."""
    torch.manual_seed(0)
    model = VAN_LSKA(arch=TINY, drop_rate=0.5, fused=True).train()
    x = torch.randn(2, 3, 64, 64)
    torch.manual_seed(1)
    a = model(x)[0]
    torch.manual_seed(1)
    b = model(x)[0]
    torch.manual_seed(2)
    c = model(x)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], model(x)[0])


def test_fused_float32_b0_against_the_reference():
    """The LSKA authors' module inside mmpretrain's VAN (code we did not
    write): same outputs and gradients as our fused path."""
    torch.manual_seed(0)
    ours = VAN_LSKA(
        arch='b0',
        out_indices=(0, 1, 2, 3),
        stage_norm_cfg=dict(type='LN', eps=REFERENCE_LN_EPS),
    )
    randomize_(ours)
    ref = build_reference('b0', 'LSKA', 23)
    copy_weights_to_reference(ours, ref)
    ours.fused = True
    x = torch.randn(2, 3, 64, 64)
    ours.train()
    ref.train()  # mmpretrain's VAN.train() returns None
    outs, grads = run(ours, x)
    r_outs, r_grads = run(ref, x)
    for a, b in zip(outs, r_outs):
        assert (a - b).abs().max().item() < 1e-4 * b.abs().max().item()
    names = {
        'conv0h': 'DW_conv_h',
        'conv0v': 'DW_conv_v',
        'conv_spatial_h': 'DW_D_conv_h',
        'conv_spatial_v': 'DW_D_conv_v',
    }
    renamed = {}
    for key, value in r_grads.items():
        for src, dst in names.items():
            key = key.replace(f'.{src}.', f'.{dst}.')
        renamed[key] = value
    assert max_rel(grads, renamed) < 1e-4


def test_fused_lka_float64_against_mmpretrain_van():
    torch.manual_seed(0)
    ours = VAN_LKA(
        arch='b0',
        out_indices=(0, 1, 2, 3),
        stage_norm_cfg=dict(type='LN', eps=REFERENCE_LN_EPS),
    )
    randomize_(ours)
    ref = build_reference('b0', 'LKA', 21)
    copy_weights_to_reference(ours, ref)
    ours = ours.double().train()
    ours.fused = True
    # batch 2: at batch 1 mmpretrain's VAN's own gradients differ from
    # finite differences (by ~1-5 % in float64; ours do not)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    ref.double().train()
    outs, grads = run(ours, x)
    r_outs, r_grads = run(ref, x)
    assert (
        max((a - b).abs().max().item() for a, b in zip(outs, r_outs)) < 1e-10
    )
    assert max_rel(grads, r_grads) < 1e-10


def test_fused_with_cp_frozen_stages_and_norm_eval():
    torch.manual_seed(0)
    model = VAN_LSKA(
        arch=TINY, out_indices=(0, 1, 2, 3), frozen_stages=1, norm_eval=True
    )
    model = randomize_(model).double().train()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    ref_outs, ref_grads = run(model, x)
    fused = copy.deepcopy(model)
    fused.fused = True
    fused.with_cp = True
    outs, grads = run(fused, x)
    assert (
        max((a - b).abs().max().item() for a, b in zip(outs, ref_outs)) < 1e-10
    )
    assert max_rel(grads, ref_grads, batch_stats=False) < 1e-10
    assert not any(k.startswith(('patch_embed1', 'blocks2')) for k in grads)


def test_fused_keeps_parameters_state_dict_and_switches_both_ways():
    torch.manual_seed(0)
    model = randomize_(VAN_LSKA(arch=TINY)).eval()
    fused = VAN_LSKA(arch=TINY, fused=True)
    assert fused.fused and all(
        b.fused for i in range(4) for b in fused.stage(i)[1]
    )
    assert list(fused.state_dict()) == list(model.state_dict())
    fused.load_state_dict(model.state_dict())
    fused.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = fused(x)
        assert max((a - b).abs().max() for a, b in zip(out, ref)) < 1e-5
        fused.fused = False
        assert not any(b.fused for b in fused.blocks1)
        assert max((a - b).abs().max() for a, b in zip(fused(x), ref)) == 0
    with pytest.raises(ValueError, match='fused must be True or False'):
        VAN_LSKA(arch=TINY, fused='yes')


def test_deploy_takes_over_from_fused():
    torch.manual_seed(0)
    model = randomize_(VAN_LSKA(arch=TINY, fused=True)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        fast = copy.deepcopy(model).switch_to_deploy()
        out = fast(x)
    assert max((a - b).abs().max() for a, b in zip(out, ref)) < 1e-4


GEOMETRIES = [
    ((1, 5), (0, 2), (1, 1)),
    ((5, 1), (2, 0), (1, 1)),
    ((1, 7), (0, 9), (3, 3)),  # LSKA builds dilation (d, d)
    ((7, 1), (9, 0), (3, 3)),
    ((5, 5), (2, 2), (1, 1)),
    ((7, 7), (9, 9), (3, 3)),
    ((4, 4), (3, 3), (2, 2)),
    ((1, 4), (0, 1), (1, 1)),  # asymmetric: output one column smaller
]


@pytest.mark.parametrize('nhwc', [False, True])
@pytest.mark.parametrize('kernel,padding,dilation', GEOMETRIES)
def test_depthwise_chain_gradcheck(kernel, padding, dilation, nhwc):
    torch.manual_seed(0)
    conv = nn.Conv2d(
        3, 3, kernel, padding=padding, dilation=dilation, groups=3
    ).double()
    second = nn.Conv2d(3, 3, (3, 1), padding=(1, 0), groups=3).double()
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    if nhwc:
        x = x.contiguous(memory_format=CL)
    x.requires_grad_()
    convs = (conv, second)
    params = [p for c in convs for p in (c.weight, c.bias)]
    geos = tuple(geometry(c) for c in convs)

    def fn(x, *params):
        return DepthwiseChainFn.apply(x, geos, *params)

    assert torch.autograd.gradcheck(fn, (x, *params))
    # and against eager PyTorch
    out = depthwise_chain(x, convs)
    assert torch.allclose(out, second(conv(x)), atol=1e-12)


def test_depthwise_gelu_and_pointwise_gradcheck():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1, groups=4).double()
    x = torch.randn(1, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: depthwise_gelu(t, conv), (x,))
    dense = nn.Conv2d(4, 3, 1).double()
    for t in (x, x.detach().contiguous(memory_format=CL).requires_grad_()):
        assert torch.autograd.gradcheck(lambda t: pointwise(t, dense), (t,))
        assert torch.allclose(pointwise(t, dense), dense(t), atol=1e-12)


def test_onednn_depthwise_gelu_matches_float32():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, groups=16)
    x = torch.randn(2, 16, 12, 12).contiguous(memory_format=CL)
    x.requires_grad_()
    out = depthwise_gelu(x, conv)
    ref_x = x.detach().clone().requires_grad_()
    ref = F.gelu(conv(ref_x))
    assert torch.allclose(out, ref, atol=1e-5)
    g = torch.randn_like(ref)
    out.backward(g)
    ref.backward(g)
    assert torch.allclose(x.grad, ref_x.grad, atol=1e-5)


@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('with_scale', [True, False])
def test_scaled_pointwise_residual_gradcheck(with_bias, with_scale):
    """float64: the torch-ops branch, against finite differences and
    against the eager ``x + scale * conv(a)``."""
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 3, 1, bias=with_bias).double()
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64).contiguous(
        memory_format=CL
    )
    a = torch.randn(2, 5, 4, 6, dtype=torch.float64).contiguous(
        memory_format=CL
    )
    scale = torch.randn(3, dtype=torch.float64) if with_scale else None
    rows = [t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]) for t in (x, a)]
    inputs = [
        t.detach().requires_grad_() for t in (*rows, conv.weight.view(3, 5))
    ]
    bias = conv.bias.detach().requires_grad_() if with_bias else None
    scale = scale.requires_grad_() if with_scale else None
    assert torch.autograd.gradcheck(
        ScaledPointwiseResidualFn.apply, (*inputs, bias, scale)
    )
    out = scaled_pointwise_residual(x, a, conv, scale)
    ref = conv(a) if scale is None else scale[:, None, None] * conv(a)
    assert out.is_contiguous(memory_format=CL)
    assert torch.allclose(out, x + ref, atol=1e-12)


def _grads(fn, tensors):
    tensors = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*tensors)
    g = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    out.backward(g)
    return [out.detach()] + [t.grad for t in tensors]


def test_onednn_gemms_match_float64():
    """float32 on CPU: oneDNN's matmul (and its fused residual add) give
    the float64 eager results and gradients to 1e-5 relative."""
    torch.manual_seed(0)
    x, a = torch.randn(300, 16), torch.randn(300, 48)
    w, b, s = torch.randn(16, 48), torch.randn(16), torch.randn(16)

    def eager(x, a, w, b, s):
        return x + s * F.linear(a, w, b)

    for fn, args, ref_fn in (
        (PointwiseFn.apply, (a, w, b), F.linear),
        (ScaledPointwiseResidualFn.apply, (x, a, w, b, s), eager),
    ):
        got = _grads(fn, args)
        ref = _grads(ref_fn, [t.double() for t in args])
        for u, v in zip(got, ref, strict=True):
            assert u.dtype == torch.float32
            rel = (u.double() - v).abs().max() / v.abs().max()
            assert rel < 1e-5


def test_geometry_refuses_strided_convs():
    with pytest.raises(ValueError, match='stride-1 zero-padded'):
        geometry(nn.Conv2d(4, 4, 3, stride=2, groups=4))


@pytest.mark.parametrize('cls', [VAN_LKA, VAN_LSKA])
def test_fused_no_graph_breaks_and_compiled_gradients(cls):
    torch.manual_seed(0)
    model = randomize_(cls(arch=TINY, drop_path_rate=0.1)).train()
    model.fused = True
    x = torch.randn(2, 3, 32, 32)
    dynamo.reset()
    assert dynamo.explain(model)(x).graph_break_count == 0
    # eval mode (no stochastic depth, running statistics), gradients on
    ref = copy.deepcopy(model).eval()
    compiled = torch.compile(
        copy.deepcopy(model).eval(), backend='aot_eager', fullgraph=True
    )
    outs, grads = run(compiled, x)
    r_outs, r_grads = run(ref, x)
    r_grads = {f'_orig_mod.{k}': v for k, v in r_grads.items()}
    assert max_rel(grads, r_grads, batch_stats=False) < 1e-4
    dynamo.reset()
