# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Side-by-side speed and memory benchmark of the VAN-LKA/LSKA backbones
against references we did not write (mmpretrain's ``VAN``; the LSKA
authors' module in mmpretrain's ``VAN``), in one interleaved run.

Models compared, method and ``--sweep``: :mod:`projects.van_lska.analysis.
benchmark`.

Examples (the README tables)::

    python tools/analysis_tools/benchmark_backbone.py --threads 1 \\
        --archs b2 --attentions LSKA --shapes 224x224 --channels-last
    python tools/analysis_tools/benchmark_backbone.py --threads 1 \\
        --archs b1 --attentions LSKA --shapes 224x224 --batch-sizes 1 2 \\
        --modes train --fused --channels-last
    python tools/analysis_tools/benchmark_backbone.py --device cuda \\
        --archs b0 b1 b2 b3 --attentions LKA LSKA --shapes 224x224 \\
        --batch-sizes 64 --modes infer train --fused --amp bf16
"""

import argparse

from projects.van_lska.analysis.benchmark import (
    MODEL_NAMES,
    BenchmarkOptions,
    benchmark,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark VAN-LKA/LSKA backbones against references',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--archs', nargs='+', default=['b2'])
    parser.add_argument(
        '--attentions',
        nargs='+',
        default=['LKA', 'LSKA'],
        help='LKA, LSKA, or NAME:K (e.g. LSKA:7 LSKA:53 LKA:21)',
    )
    parser.add_argument(
        '--shapes',
        nargs='+',
        default=['224x224', '800x1333'],
        help='input HxW',
    )
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1])
    parser.add_argument(
        '--modes', nargs='+', default=['infer'], choices=['infer', 'train']
    )
    parser.add_argument(
        '--models',
        nargs='+',
        default=None,
        help=f'subset of {", ".join(MODEL_NAMES)}',
    )
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument(
        '--with-cp',
        action='store_true',
        help='add ours+cp (activation checkpointing) in train mode',
    )
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--no-time', action='store_true')
    parser.add_argument('--no-memory', action='store_true')
    parser.add_argument(
        '--sweep',
        action='store_true',
        help='compare the --attentions with each other (see above)',
    )
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument(
        '--fused',
        action='store_true',
        help='add ours-fused (the fused training path, fused=True)',
    )
    parser.add_argument(
        '--compile',
        action='store_true',
        help='add ours-compile (torch.compile; the first iteration compiles)',
    )
    parser.add_argument(
        '--fused-adamw',
        action='store_true',
        help="PyTorch's fused AdamW kernel in train mode, for every model",
    )
    parser.add_argument(
        '--ours-fused-adamw',
        action='store_true',
        help='add ours-fused+fadamw in train mode: the fused path with '
        "PyTorch's fused AdamW while every other model (ref too) keeps the "
        'plain AdamW (a recipe comparison, labelled)',
    )
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument(
        '--amp',
        choices=['bf16', 'fp16'],
        default=None,
        help='run every model under torch.autocast with this dtype',
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    benchmark(BenchmarkOptions(**vars(parse_args(argv))))


if __name__ == '__main__':
    main()
