# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The one weight randomiser of the tests and the benchmark.

Freshly built models have trivial BatchNorm statistics (mean 0, variance 1),
unit affines and tiny layer scales: a wrong key mapping, a missed BatchNorm
fold or a swapped layer scale would still give the right outputs. This
module gives them non-trivial, seeded values.
"""

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def randomize_(
    module: nn.Module,
    seed: int = 0,
    *,
    everything: bool = False,
    std: float = 0.1,
) -> nn.Module:
    """Seeded, non-trivial weights, in place (``module`` is returned).

    Args:
        module: any module (a backbone, a whole detector/segmentor).
        seed: seed of the ``torch.Generator`` every value is drawn from.
        everything: ``False``: only the normalisation state: every BatchNorm
            gets ``running_mean ~ U[-0.5, 0.5)``, ``running_var ~ U[0.5,
            1.5)``, ``weight ~ U[0.5, 1.5)``, ``bias ~ U[-0.2, 0.2)``, and
            every ``layer_scale*`` parameter ``~ U[-0.2, 0.2)``; the other
            weights keep their initialisation. ``True``: every floating
            point tensor of the state dict (parameters and buffers, e.g. a
            checkpoint in which each value is distinct) is drawn from
            ``N(0, std^2)``, except ``running_var ~ U[0.5, 1.5)``.
        std: standard deviation for ``everything=True``.

    Returns:
        nn.Module: ``module``.
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, low: float, high: float) -> None:
        t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)

    with torch.no_grad():
        if everything:
            for name, t in module.state_dict().items():
                if not t.is_floating_point():
                    continue  # num_batches_tracked
                if name.endswith('running_var'):
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=gen) * std)
            return module
        for m in module.modules():
            if isinstance(m, _BatchNorm):
                if m.track_running_stats:
                    uniform(m.running_mean, -0.5, 0.5)
                    uniform(m.running_var, 0.5, 1.5)
                if m.affine:
                    uniform(m.weight, 0.5, 1.5)
                    uniform(m.bias, -0.2, 0.2)
        for name, p in module.named_parameters():
            if name.rsplit('.', 1)[-1].startswith('layer_scale'):
                uniform(p, -0.2, 0.2)
    return module
