# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The fused training path of the VAN backbones (``fused=True``).

The same network, parameters and state dict as the normal path, and the
same numerics (float rounding aside: gradients agree to ~1e-6 relative in
float32 and ~1e-15 in float64, see ``tests/test_fused_training.py``), but
run with fewer and faster ops. What it changes, measured on a 2-core x86
CPU (torch 2.14, one thread, see ``benchmark_backbone.py --fused``):

* ``channels_last`` (NHWC) on CPU: oneDNN's depthwise convs are 2-4x
  faster in NHWC than in NCHW, forward and backward.
* The 1x1 convs are GEMMs on the ``(N*H*W, C)`` view of the NHWC tensor.
  PyTorch sends 1x1 convs on one thread with a batch < 16 to its slow
  im2col path (``_slow_conv2d_forward/backward``), NCHW or NHWC alike. On
  CPU in float32 the forward product and the input gradient run on
  oneDNN's matmul (:class:`PointwiseFn`; 5-35 % faster than MKL's sgemm
  for these shapes in isolation, 1-5 % of a training step), the weight
  gradient on MKL; elsewhere ``F.linear``.
* The depthwise chain of the gating (LSKA: ``1 x k1``, ``k1 x 1``,
  ``1 x k2`` and ``k2 x 1`` dilated; LKA: ``k1 x k1``, ``k2 x k2``
  dilated; the trivial and ablated variants: what is left of it) is one
  autograd function, :class:`DepthwiseChainFn`. It saves only its input
  (eager PyTorch saves the input of every conv: 4 tensors of the block's
  size for LSKA) and recomputes the intermediate maps in the backward pass,
  where it also

  - computes the input gradient of each conv as a *forward* depthwise conv
    of the output gradient with the flipped kernel (exact for the
    size-keeping, symmetrically padded convs here). oneDNN's backward-data
    primitive for depthwise convs is up to ~7x slower than its forward one
    (NHWC, ``k x 1`` with dilation: 3.4 ms vs 0.5 ms at 2x64x56x56);
  - runs the forward of a ``1 x k`` conv dilated along the width as the
    equivalent undilated ``1 x ((k - 1) d + 1)`` conv with zeros between
    the taps (oneDNN's NHWC kernel with a width dilation is slow; exact,
    the extra taps multiply by 0), as the deploy path does;
  - drops the dilation along an axis of length 1 (LSKA's ``k x 1`` convs
    are built with dilation ``(d, d)``).

* The MLP's depthwise ``3 x 3`` conv and its GELU are one autograd function
  too, :class:`DepthwiseGeluFn`: on CPU in float32 the forward pass is
  oneDNN's conv with the GELU fused in (one pass over the largest tensor of
  the block instead of two); it saves the conv's input only and recomputes
  the conv's output for the GELU's derivative in the backward pass (eager
  PyTorch saves both the conv's input and output, 2 x 8 channels per
  block channel in stages 1-2).
* The output projections take the layer scales and the residual adds in
  (:class:`ScaledPointwiseResidualFn`): ``x + ls2 * fc2(h)`` and
  ``(x + ls1 * y) + ls1 * proj_2(g)`` (``y = norm1(x)``, the attention's
  inner shortcut) are one GEMM each, the scale folded into the weight and
  the add a post-op of oneDNN's matmul; the gradients of the weight, bias
  and scale all come from the one product ``grad.T @ input`` the weight
  gradient needs anyway, so ``ls * t`` is neither written nor saved. With
  stochastic depth or MLP dropout active (or under autocast / compile) the
  block falls back to ``addcmul`` residuals.

Everything else (BatchNorm with batch statistics and running averages,
SyncBN, dropout, stochastic depth, layer scales, ``with_cp``, frozen
stages, every gating ablation) is the normal path's modules and autograd.
On CUDA the NCHW layout is kept (cuDNN's depthwise kernels are fastest
there); the autograd functions and the GEMM 1x1 convs are used on every
device. Double backward is not supported (``once_differentiable``).

``torch.compile`` traces the functions (no graph breaks, see
``tests/test_fused_training.py``); oneDNN's fused op has no fake-tensor
kernel, so under compile the GELU is traced as a plain op.
"""

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .attention import apply_gate

#: ``(kh, kw, ph, pw, dh, dw, groups)`` of a depthwise conv: plain ints, so
#: that ``torch.compile`` treats them as constants.
Geometry = Tuple[int, int, int, int, int, int, int]


def geometry(conv: nn.Conv2d) -> Geometry:
    """The conv's geometry, without a dilation along an axis of length 1.

    Raises:
        ValueError: Not a stride-1 conv, or a padding mode other than
            zeros (the chain functions assume both).
    """
    if tuple(conv.stride) != (1, 1) or conv.padding_mode != 'zeros':
        raise ValueError(
            f'the fused path needs stride-1 zero-padded depthwise convs; '
            f'got stride {conv.stride}, padding_mode {conv.padding_mode!r}'
        )
    kh, kw = conv.kernel_size
    ph, pw = conv.padding
    dh, dw = conv.dilation
    return (
        kh,
        kw,
        ph,
        pw,
        dh if kh > 1 else 1,
        dw if kw > 1 else 1,
        conv.groups,
    )


def _forward_weight(
    weight: torch.Tensor, geo: Geometry, nhwc: bool
) -> Tuple[torch.Tensor, List[int]]:
    """The weight and dilation the forward conv runs with: a ``1 x k``
    kernel dilated along the width becomes the undilated
    ``1 x ((k - 1) d + 1)`` kernel with zeros between the taps in NHWC."""
    kh, kw, _, _, dh, dw, _ = geo
    if nhwc and kh == 1 and dw > 1:
        w = weight.new_zeros(*weight.shape[:3], (kw - 1) * dw + 1)
        w[..., ::dw] = weight
        return w, [1, 1]
    return weight, [dh, dw]


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def dw_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    geo: Geometry,
) -> torch.Tensor:
    """The depthwise conv of ``geo`` on ``x`` ``(N, C, H, W)``."""
    w, dilation = _forward_weight(weight, geo, _is_nhwc(x))
    return F.conv2d(x, w, bias, 1, [geo[2], geo[3]], dilation, geo[6])


def _symmetric(geo: Geometry) -> bool:
    kh, kw, ph, pw, dh, dw, _ = geo
    return 2 * ph == (kh - 1) * dh and 2 * pw == (kw - 1) * dw


def dw_grad_input(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, geo: Geometry
) -> torch.Tensor:
    """Gradient of a size-keeping depthwise conv w.r.t. its input: the
    correlation of ``grad`` with the flipped kernel, as a forward conv (the
    transposed conv of a symmetrically padded stride-1 conv). LKA's square
    dilated kernel has no fast oneDNN forward in NHWC: oneDNN's backward
    there (and for any other geometry)."""
    kh, kw, _, _, dh, dw, _ = geo
    square_dilated = kh > 1 and kw > 1 and max(dh, dw) > 1
    if _symmetric(geo) and not square_dilated:
        w, dilation = _forward_weight(weight, geo, _is_nhwc(grad))
        return F.conv2d(
            grad, w.flip(2, 3), None, 1, [geo[2], geo[3]], dilation, geo[6]
        )
    return torch.ops.aten.convolution_backward(
        grad,
        x,
        weight,
        None,
        [1, 1],
        [geo[2], geo[3]],
        [geo[4], geo[5]],
        False,
        [0, 0],
        geo[6],
        [True, False, False],
    )[0]


def _grad_weight_taps(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, geo: Geometry
) -> torch.Tensor:
    """Weight gradient of a ``1 x k`` or ``k x 1`` depthwise conv, one tap
    at a time: ``sum(grad * x shifted by the tap's offset)`` over the
    overlapping window. Same sums as oneDNN's, 1.5-8x faster than its
    backward-weights primitive for these kernels in NHWC (except ``k x 1``
    without dilation, where oneDNN is fastest)."""
    kh, kw, ph, pw, dh, dw, _ = geo
    dim, k, d, p = (2, kh, dh, ph) if kw == 1 else (3, kw, dw, pw)
    length = x.shape[dim]
    taps = []
    for j in range(k):
        offset = j * d - p
        lo, hi = max(0, -offset), min(length, length - offset)
        if hi <= lo:  # the tap sees only padding
            taps.append(grad.new_zeros(grad.shape[1]))
            continue
        g = grad.narrow(dim, lo, hi - lo)
        taps.append((g * x.narrow(dim, lo + offset, hi - lo)).sum((0, 2, 3)))
    return torch.stack(taps, 1).view_as(weight)


def dw_grad_params(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    geo: Geometry,
    need_weight: bool,
    need_bias: bool,
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Gradients of a depthwise conv w.r.t. its weight and bias."""
    kh, kw, _, _, dh, _, groups = geo
    one_d = (kh == 1) != (kw == 1)
    vertical_plain = kw == 1 and dh == 1
    size_keeping = _symmetric(geo) and weight.shape[0] == groups
    if one_d and not vertical_plain and size_keeping:
        gw = _grad_weight_taps(grad, x, weight, geo) if need_weight else None
        gb = grad.sum((0, 2, 3)) if need_bias else None
        return gw, gb
    _, gw, gb = torch.ops.aten.convolution_backward(
        grad,
        x,
        weight,
        [weight.shape[0]] if need_bias else None,
        [1, 1],
        [geo[2], geo[3]],
        [geo[4], geo[5]],
        False,
        [0, 0],
        geo[6],
        [False, need_weight, need_bias],
    )
    return gw, gb


def _autocast(ctx, tensors: Sequence[Optional[torch.Tensor]]):
    """Under ``torch.autocast``, the tensors in the autocast dtype (the
    functions then run with autocast off, forward and backward alike);
    remembers the original dtypes for the gradients."""
    ctx.dtypes = [None if t is None else t.dtype for t in tensors]
    device = next(t for t in tensors if t is not None).device.type
    dtype = (
        torch.get_autocast_dtype(device)
        if torch.is_autocast_enabled(device)
        else None
    )
    ctx.device_type = device
    if dtype is None:
        return list(tensors)
    return [None if t is None else t.to(dtype) for t in tensors]


def _no_autocast(ctx):
    return torch.autocast(ctx.device_type, enabled=False)


def _cast_back(ctx, grads: Sequence[Optional[torch.Tensor]]):
    return [
        None if g is None else g.to(dtype)
        for g, dtype in zip(grads, ctx.dtypes)
    ]


class DepthwiseChainFn(torch.autograd.Function):
    """``conv_n(...conv_1(x))`` for depthwise convs; saves ``x`` only.

    ``apply(x, geometries, w_1, b_1, ..., w_n, b_n)``; ``x`` and the output
    ``(N, C, H, W)``, in any memory format (the output has ``x``'s). Under
    ``torch.autocast`` it runs in the autocast dtype.
    """

    @staticmethod
    def forward(ctx, x, geometries: Tuple[Geometry, ...], *params):
        ctx.geometries = geometries
        x, *params = _autocast(ctx, (x, *params))
        with _no_autocast(ctx):
            a = x
            for i, geo in enumerate(geometries):
                a = dw_conv(a, params[2 * i], params[2 * i + 1], geo)
        ctx.save_for_backward(x, *params)
        return a

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        with _no_autocast(ctx):
            return DepthwiseChainFn._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        x, *params = ctx.saved_tensors
        grad = grad.to(x.dtype)
        geometries = ctx.geometries
        needs = ctx.needs_input_grad
        inputs = [x]
        for i, geo in enumerate(geometries[:-1]):
            inputs.append(
                dw_conv(inputs[-1], params[2 * i], params[2 * i + 1], geo)
            )
        grads: List[Optional[torch.Tensor]] = [None] * len(params)
        for i in reversed(range(len(geometries))):
            geo, weight = geometries[i], params[2 * i]
            need_w = needs[2 + 2 * i]
            need_b = needs[3 + 2 * i] and params[2 * i + 1] is not None
            if need_w or need_b:
                gw, gb = dw_grad_params(
                    grad, inputs[i], weight, geo, need_w, need_b
                )
                grads[2 * i], grads[2 * i + 1] = gw, gb
            if i > 0 or needs[0]:
                grad = dw_grad_input(grad, inputs[i], weight, geo)
            inputs[i] = None  # free the recomputed map
        grad_x, *grads = _cast_back(ctx, [grad if needs[0] else None, *grads])
        return (grad_x, None, *grads)


def depthwise_chain(
    x: torch.Tensor, convs: Sequence[nn.Conv2d]
) -> torch.Tensor:
    """``convs[-1](...convs[0](x))`` through :class:`DepthwiseChainFn`.
    ``(N, C, H, W)`` in and out."""
    if not convs:
        return x
    params = []
    for conv in convs:
        params += [conv.weight, conv.bias]
    geometries = tuple(geometry(conv) for conv in convs)
    return DepthwiseChainFn.apply(x, geometries, *params)


_MKLDNN = torch.backends.mkldnn.is_available()


def _onednn_gelu_ok(x: torch.Tensor) -> bool:
    """oneDNN's conv + GELU op applies: CPU float32 NHWC, not traced."""
    return (
        not torch.compiler.is_compiling()
        and _MKLDNN
        and x.device.type == 'cpu'
        and x.dtype == torch.float32
        and _is_nhwc(x)
    )


class DepthwiseGeluFn(torch.autograd.Function):
    """``gelu(conv(h))`` (exact erf GELU) for a depthwise ``conv``; saves
    ``h`` only. ``apply(h, geometry, weight, bias)``, ``(N, C, H, W)``."""

    @staticmethod
    def forward(ctx, h, geo: Geometry, weight, bias):
        ctx.geo = geo
        h, weight, bias = _autocast(ctx, (h, weight, bias))
        ctx.save_for_backward(h, weight, bias)
        if _onednn_gelu_ok(h):
            w, dilation = _forward_weight(weight, geo, True)
            return torch.ops.mkldnn._convolution_pointwise(
                h,
                w,
                bias,
                [geo[2], geo[3]],
                [1, 1],
                dilation,
                geo[6],
                'gelu',
                [],
                'none',
            )
        with _no_autocast(ctx):
            return F.gelu(dw_conv(h, weight, bias, geo))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        with _no_autocast(ctx):
            return DepthwiseGeluFn._backward(ctx, grad)

    @staticmethod
    def _backward(ctx, grad):
        h, weight, bias = ctx.saved_tensors
        grad = grad.to(h.dtype)
        geo, needs = ctx.geo, ctx.needs_input_grad
        z = dw_conv(h, weight, bias, geo)
        grad = torch.ops.aten.gelu_backward(grad, z)
        del z
        gw = gb = gh = None
        if needs[2] or (needs[3] and bias is not None):
            gw, gb = dw_grad_params(
                grad, h, weight, geo, needs[2], needs[3] and bias is not None
            )
        if needs[0]:
            gh = dw_grad_input(grad, h, weight, geo)
        gh, gw, gb = _cast_back(ctx, (gh, gw, gb))
        return gh, None, gw, gb


def depthwise_gelu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``gelu(conv(x))`` through :class:`DepthwiseGeluFn`."""
    return DepthwiseGeluFn.apply(x, geometry(conv), conv.weight, conv.bias)


def _onednn_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]
) -> torch.Tensor:
    """``x @ weight.T + bias`` by oneDNN's matmul; ``x`` ``(M, K)``,
    ``weight`` ``(N, K)`` (a transposed view is fine), ``bias`` ``(N,)``."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, 'none', [], '')


class PointwiseFn(torch.autograd.Function):
    """A 1x1 conv as a GEMM on oneDNN (CPU, float32): ``x @ weight.T +
    bias`` for ``x`` ``(M, C_in)`` (the NHWC map's rows), ``weight``
    ``(C_out, C_in)``; ``(M, C_out)`` out.

    The forward product and the input gradient ``grad @ weight`` run on
    oneDNN's matmul, which on this CPU is 5-35 % faster than MKL's sgemm
    (what ``F.linear`` and its autograd call) for these shapes; the weight
    gradient ``grad.T @ x`` stays on MKL (faster there for ``M`` in the
    thousands and ``C`` of 64-128). Saves what ``F.linear`` saves (``x``
    and ``weight``)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        needs = ctx.needs_input_grad
        gx = _onednn_linear(grad, weight.t(), None) if needs[0] else None
        gw = grad.t().mm(x) if needs[1] else None
        gb = grad.sum(0) if needs[2] and ctx.has_bias else None
        return gx, gw, gb


def _onednn_linear_ok(x: torch.Tensor) -> bool:
    """:class:`PointwiseFn` applies: CPU float32, not under autocast, not
    traced (oneDNN's op has no autograd formula of its own)."""
    return (
        not torch.compiler.is_compiling()
        and _MKLDNN
        and x.device.type == 'cpu'
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled('cpu')
    )


def pointwise(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 conv; on an NHWC tensor a GEMM on its ``(N * H * W, C)`` rows
    (:class:`PointwiseFn` on CPU in float32, else ``F.linear``), with the
    output ``(N, C_out, H, W)`` in NHWC too."""
    if _is_nhwc(x):
        weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
        rows = x.permute(0, 2, 3, 1)
        if _onednn_linear_ok(x):
            n, h, w, c = rows.shape
            y = PointwiseFn.apply(rows.reshape(-1, c), weight, conv.bias)
            y = y.view(n, h, w, conv.out_channels)
        else:
            y = F.linear(rows, weight, conv.bias)
        return y.permute(0, 3, 1, 2)
    return conv(x)


def gating(module: nn.Module, u: torch.Tensor) -> torch.Tensor:
    """An LKA/LSKA gating module (any ablation, trivial or not) on ``u``:
    its depthwise chain fused, ``conv1`` as a GEMM, then the gate."""
    attn = depthwise_chain(u, module.dw_convs())
    conv1 = module.conv1
    if module.ablation is None:
        return u * pointwise(attn, conv1)
    if conv1 is not None:
        attn = pointwise(attn, conv1)
    return apply_gate(u, attn, None, module.ablation)


def _residual(
    x: torch.Tensor,
    t: torch.Tensor,
    scale: Optional[torch.Tensor],
    drop_path: nn.Module,
) -> torch.Tensor:
    """``x + drop_path(scale * t)``; one ``addcmul`` when no stochastic
    depth is active."""
    if isinstance(drop_path, nn.Identity) or not drop_path.training:
        if scale is None:
            return x + t
        return torch.addcmul(x, scale[:, None, None], t)
    return x + drop_path(t if scale is None else scale[:, None, None] * t)


class ScaledPointwiseResidualFn(torch.autograd.Function):
    """``x + scale * (a @ weight.T + bias)``: a 1x1 conv, its layer scale
    and the residual add in one GEMM (the scale folded into the weight and
    bias, the add a post-op of oneDNN's matmul on CPU in float32).

    ``apply(x, a, weight, bias, scale)`` with ``x`` ``(M, C)`` (the
    residual's NHWC rows), ``a`` ``(M, K)``, ``weight`` ``(C, K)``,
    ``bias`` and ``scale`` ``(C,)`` or ``None``; ``(M, C)`` out. Exact: with
    ``G = grad.T @ a`` (the product the weight gradient needs anyway),
    ``d weight = scale * G``, ``d bias = scale * sum(grad)`` and
    ``d scale = sum_k(weight * G) + bias * sum(grad)``; so the scaled
    product ``t`` is never written or saved, and its two backward passes
    (``grad * scale`` and ``sum(grad * t)``) are gone.
    """

    @staticmethod
    def forward(ctx, x, a, weight, bias, scale):
        w_s = weight if scale is None else weight * scale[:, None]
        b_s = bias if bias is None or scale is None else bias * scale
        if _onednn_linear_ok(x):
            out = torch.ops.mkldnn._linear_pointwise.binary(
                a, x, w_s, b_s, 'add'
            )
        else:
            out = torch.addmm(x, a, w_s.t())
            if b_s is not None:
                out += b_s
        ctx.save_for_backward(a, weight, bias, scale, w_s)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        a, weight, bias, scale, w_s = ctx.saved_tensors
        grad = grad.contiguous()
        needs = ctx.needs_input_grad
        gx = ga = gw = gb = gs = None
        if needs[0]:
            gx = grad
        if needs[1]:
            if _onednn_linear_ok(grad):
                ga = _onednn_linear(grad, w_s.t(), None)
            else:
                ga = grad.mm(w_s)
        need_b = needs[3] and bias is not None
        need_s = needs[4] and scale is not None
        if needs[2] or need_s:
            g_a = grad.t().mm(a)
            gw = g_a if scale is None else g_a * scale[:, None]
            if need_s:
                gs = (g_a * weight).sum(1)
        if need_b or (need_s and bias is not None):
            g_sum = grad.sum(0)
            if need_b:
                gb = g_sum if scale is None else g_sum * scale
            if need_s:
                gs = gs + g_sum * bias
        return gx, ga, gw if needs[2] else None, gb, gs


def _rows(x: torch.Tensor) -> torch.Tensor:
    """The ``(N * H * W, C)`` rows of an NHWC ``(N, C, H, W)`` tensor."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(N * H * W, C)`` rows back to an NHWC ``(N, C, H, W)`` tensor of
    ``like``'s batch and size."""
    n, _, h, w = like.shape
    return rows.view(n, h, w, rows.shape[1]).permute(0, 3, 1, 2)


def scaled_pointwise_residual(
    x: torch.Tensor,
    a: torch.Tensor,
    conv: nn.Conv2d,
    scale: Optional[torch.Tensor],
) -> torch.Tensor:
    """``x + scale * conv(a)`` for a 1x1 ``conv`` through
    :class:`ScaledPointwiseResidualFn`; ``x`` ``(N, C, H, W)`` and ``a``
    ``(N, K, H, W)``, both NHWC; NHWC out."""
    weight = conv.weight.reshape(conv.out_channels, conv.in_channels)
    out = ScaledPointwiseResidualFn.apply(
        _rows(x), _rows(a), weight, conv.bias, scale
    )
    return _from_rows(out, x)


def _inactive(module: nn.Module) -> bool:
    """A dropout or stochastic-depth module that leaves its input as is."""
    if isinstance(module, nn.Identity) or not module.training:
        return True
    return isinstance(module, nn.Dropout) and module.p == 0


def _fold_residuals(block: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`block_forward` may fold the layer scales and the
    residual adds into the output GEMMs: NHWC, no active stochastic depth
    or MLP dropout, no autocast, not traced."""
    return (
        _is_nhwc(x)
        and _inactive(block.drop_path)
        and _inactive(block.mlp.drop)
        and not torch.is_autocast_enabled(x.device.type)
        and not torch.compiler.is_compiling()
    )


def block_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A :class:`~projects.van_lska.models.blocks.VANBlock` on ``x``
    ``(N, C, H, W)`` through the fused path; same result as
    ``block(x)``."""
    attn = block.attn
    y = block.norm1(x)
    u = attn.activation(pointwise(y, attn.proj_1))
    g = gating(attn.spatial_gating_unit, u)
    mlp = block.mlp
    if _fold_residuals(block, x):
        # x + ls1 * (proj_2(g) + y) = (x + ls1 * y) + ls1 * proj_2(g)
        ls1 = block.layer_scale_1
        r = x + y if ls1 is None else torch.addcmul(x, ls1[:, None, None], y)
        x = scaled_pointwise_residual(r, g, attn.proj_2, ls1)
        h = depthwise_gelu(pointwise(block.norm2(x), mlp.fc1), mlp.dwconv)
        return scaled_pointwise_residual(x, h, mlp.fc2, block.layer_scale_2)
    t = pointwise(g, attn.proj_2)
    t = t.add_(y)  # the attention's inner shortcut
    x = _residual(x, t, block.layer_scale_1, block.drop_path)
    h = pointwise(block.norm2(x), mlp.fc1)
    h = mlp.drop(depthwise_gelu(h, mlp.dwconv))
    h = mlp.drop(pointwise(h, mlp.fc2))
    return _residual(x, h, block.layer_scale_2, block.drop_path)


def fused_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The layout the fused path runs in: NHWC on CPU, NCHW otherwise."""
    if x.device.type == 'cpu':
        return torch.channels_last
    return torch.contiguous_format


__all__ = [
    'DepthwiseChainFn',
    'DepthwiseGeluFn',
    'block_forward',
    'depthwise_chain',
    'depthwise_gelu',
    'dw_conv',
    'dw_grad_input',
    'dw_grad_params',
    'fused_memory_format',
    'gating',
    'geometry',
    'pointwise',
]
