# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""LSKA is a separable large kernel: check the math against dense kernels.

The four 1-D depthwise convs of LSKA compose (by convolution of the kernels)
into one dense ``RF x RF`` depthwise kernel ``outer(v, h)`` with
``v = v1 * up(v2, d)`` and ``h = h1 * up(h2, d)``; the gating must equal
``x * conv1(dense(x))`` wherever no zero padding of an intermediate result
is involved, and LSKA-23 must equal LKA when LKA's 2-D kernels are rank 1.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from projects.van_lska.models import LKA, LSKA, lka_kernels, lska_kernels
from projects.van_lska.models.kernels import LSKA_AUTHOR_KERNEL_SIZES
from projects.van_lska.testing.lska_reference import AUTHOR_LSKA_TABLE
from projects.van_lska.testing.randomize import randomize_

# The authors' table (the reference module's, written from their code):
# k -> (k1, k2, dilation).
AUTHOR_TABLE = {
    k: (k1, k2, d) for k, ((k1, _), (k2, _), d) in AUTHOR_LSKA_TABLE.items()
}
C = 3


def dilate(kernel: np.ndarray, d: int) -> np.ndarray:
    """Insert ``d - 1`` zeros between the taps of a 1-D kernel."""
    out = np.zeros((len(kernel) - 1) * d + 1)
    out[::d] = kernel
    return out


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Every weight ~ N(0, 0.3^2)."""
    randomize_(module, seed, everything=True, std=0.3)


def dense_equivalent(gating: LSKA):
    """The composed dense depthwise kernel and bias of LSKA's chain."""
    convs = gating.dw_convs()  # h1, v1[, h2, v2]
    kernels = gating.kernels
    weights, bias = [], torch.zeros(C, dtype=torch.float64)
    for conv in convs:
        w = conv.weight.detach().double().reshape(C, -1).numpy()
        weights.append(w)
        # A bias entering a conv is scaled by the sum of its taps.
        bias = bias * w.sum(1) + conv.bias.detach().double()
    dense = np.zeros((C, kernels.receptive_field, kernels.receptive_field))
    for c in range(C):
        h, v = weights[0][c], weights[1][c]
        if not kernels.trivial:
            h = np.convolve(h, dilate(weights[2][c], kernels.dilation))
            v = np.convolve(v, dilate(weights[3][c], kernels.dilation))
        dense[c] = np.outer(v, h)
    return torch.from_numpy(dense)[:, None], bias


SIZES = sorted(set(AUTHOR_TABLE) | {15, 19, 29, 47, 59, 65})


@pytest.mark.parametrize('k', list(AUTHOR_TABLE))
def test_author_sizes_give_the_authors_convs(k):
    k1, k2, d = AUTHOR_TABLE[k]
    gating = LSKA(C, lska_kernels(k))
    h1, v1, h2, v2 = gating.dw_convs()
    assert (h1.kernel_size, v1.kernel_size) == ((1, k1), (k1, 1))
    assert h1.padding == (0, (k1 - 1) // 2)
    assert v1.padding == ((k1 - 1) // 2, 0)
    assert (h2.kernel_size, v2.kernel_size) == ((1, k2), (k2, 1))
    assert h2.dilation == v2.dilation == (d, d)
    pad = (k2 - 1) * d // 2
    assert (h2.padding, v2.padding) == ((0, pad), (pad, 0))
    assert k1 + (k2 - 1) * d == k
    assert k in LSKA_AUTHOR_KERNEL_SIZES
    (_, p1), (_, p2), _ = AUTHOR_LSKA_TABLE[k]  # the authors' paddings
    assert (h1.padding, h2.padding) == ((0, p1), (0, p2))


@pytest.mark.parametrize('trivial', [False, True])
@pytest.mark.parametrize('k', SIZES)
def test_lska_equals_dense_depthwise_conv(k, trivial):
    gating = LSKA(C, lska_kernels(k, trivial=trivial)).double()
    randomize(gating, seed=k)
    dense, bias = dense_equivalent(gating)
    rf = gating.kernels.receptive_field
    assert rf == k
    x = torch.randn(2, C, rf + 9, rf + 12, dtype=torch.float64)
    with torch.no_grad():
        got = gating(x)
        attn = F.conv2d(x, dense, bias, padding=rf // 2, groups=C)
        expected = x * gating.conv1(attn)
    # Interior: no intermediate result is read from zero padding there.
    m = rf // 2
    torch.testing.assert_close(
        got[..., m:-m, m:-m], expected[..., m:-m, m:-m], atol=1e-9, rtol=1e-9
    )
    assert got.shape == x.shape


def test_lska23_equals_lka_with_rank1_kernels():
    lka = LKA(C, lka_kernels(21)).double()
    lska = LSKA(C, lska_kernels(23)).double()
    randomize(lska, seed=1)
    h1, v1, h2, v2 = lska.dw_convs()
    with torch.no_grad():
        # Put each pair's bias on its second conv: then the pair equals the
        # 2-D conv everywhere, borders included.
        v1.bias += h1.bias * v1.weight.sum((1, 2, 3))
        h1.bias.zero_()
        v2.bias += h2.bias * v2.weight.sum((1, 2, 3))
        h2.bias.zero_()
        lka.DW_conv.weight.copy_(v1.weight * h1.weight)  # (C,1,5,1)x(C,1,1,5)
        lka.DW_conv.bias.copy_(v1.bias)
        lka.DW_D_conv.weight.copy_(v2.weight * h2.weight)
        lka.DW_D_conv.bias.copy_(v2.bias)
        lka.conv1.load_state_dict(lska.conv1.state_dict())
    assert lka.DW_conv.kernel_size == (5, 5)
    assert lka.DW_D_conv.kernel_size == (7, 7)
    assert lka.DW_D_conv.dilation == (3, 3)
    x = torch.randn(2, C, 31, 37, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(lska(x), lka(x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize('k, rf', [(7, 9), (14, 17), (21, 23), (28, 31)])
def test_lka_kernel_table(k, rf):
    kernels = lka_kernels(k)
    assert kernels.receptive_field == rf
    gating = LKA(C, kernels)
    x = torch.randn(1, C, 40, 40)
    assert gating(x).shape == x.shape


def test_trivial_lka_is_one_dense_conv():
    gating = LKA(C, lka_kernels(13, trivial=True))
    assert gating.DW_D_conv is None
    assert gating.DW_conv.kernel_size == (13, 13)
    assert gating(torch.randn(1, C, 20, 20)).shape == (1, C, 20, 20)
