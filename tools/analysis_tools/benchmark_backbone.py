# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Side-by-side speed and memory benchmark of the VAN-LKA/LSKA backbones.

For every case (arch x attention/kernel size x input shape x batch size x
mode) it compares, in one process run:

* ``ref``: the references we did not write -- mmpretrain's ``VAN`` for LKA
  (k=21) and, for LSKA, the paper's module (four separate depthwise convs,
  NCHW) placed into mmpretrain's ``VAN`` (``lska_reference.py``);
* ``ours``: our ``VAN_LKA``/``VAN_LSKA``, normal path (NCHW);
* ``ours-cl``: the normal path in ``channels_last`` (``--channels-last``);
* ``ours-fast``: the deploy path (``switch_to_deploy()``; inference only);
* ``ours+cp``: the normal path with ``with_cp=True`` (``--with-cp``;
  training only).

All models of a case share the same weights (ours copied into the
reference; BatchNorm statistics randomised so the folding is exercised), and
the script prints the largest absolute output difference of each model
against ``ref`` (or ``ours`` when no reference exists) on the benchmark
input.

Method:

* Time: all models of a case live in the same process; after ``--warmup``
  untimed iterations each, ``--repeats`` rounds run one timed iteration of
  every model in turn (interleaved, so load from other processes hits all
  models alike; the order rotates by one model per round so that no model
  always runs first or right after the same one), and the median per model
  is reported: latency (ms per batch) and throughput (images/s). ``infer``
  = forward under ``torch.inference_mode`` in eval mode; ``train`` =
  forward, a scalar loss over all outputs, backward and an AdamW step (the
  optimizer of every recipe here), in train mode.
* Peak memory: each (case, model) runs in a fresh subprocess (this script
  with ``--memory-worker``), which builds the model and input, resets the
  peak RSS by writing ``5`` to ``/proc/self/clear_refs`` (falls back to the
  RSS just before the run when not permitted), runs two iterations and reads
  ``VmHWM`` from ``/proc/self/status``. ``peak`` is the growth of the peak
  RSS over the RSS before the run (activations, workspaces, gradients and
  optimizer state), so nothing leaks between cases.

``--sweep``: the cost of the attention choice instead. For every (arch,
shape, batch, mode) all ``--attentions`` (e.g. ``LKA LSKA:7 LSKA:23
LSKA:53``) run interleaved as above, normal path (and deploy path in
``infer`` mode), with parameters and FLOPs (mmengine's ``FlopAnalyzer``)
and every ratio taken against the first attention.

Example (the README table)::

    python tools/analysis_tools/benchmark_backbone.py --threads 1 \\
        --archs b2 --attentions LSKA --shapes 224x224 --channels-last
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(
    0,
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ),
)

from lska_reference import (  # noqa: E402
    build_reference,
    copy_weights_to_reference,
)

from projects.van_lska.models import VAN_LKA, VAN_LSKA  # noqa: E402

BACKBONES = {'LKA': VAN_LKA, 'LSKA': VAN_LSKA}
DEFAULT_K = {'LKA': 21, 'LSKA': 23}


def parse_args(argv=None):
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
        help='subset of ref, ours, ours-cl, ours-fast, ours+cp',
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
    parser.add_argument('--memory-worker', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def parse_attention(text: str):
    name, _, k = text.partition(':')
    name = name.upper()
    if name not in BACKBONES:
        raise SystemExit(f'unknown attention {text!r}')
    return name, int(k) if k else DEFAULT_K[name]


def parse_shape(text: str):
    h, w = text.lower().split('x')
    return int(h), int(w)


def randomize_norms(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affines (fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)


def build_models(case: Dict, names: List[str]) -> Dict[str, nn.Module]:
    """The models of one case, sharing one set of weights."""
    torch.manual_seed(0)
    attention, k = case['attention'], case['kernel_size']
    ours = BACKBONES[attention](arch=case['arch'], kernel_size=k)
    randomize_norms(ours)
    train = case['mode'] == 'train'
    models = {}
    for name in names:
        if name == 'ref':
            ref = build_reference(case['arch'], attention, k)
            copy_weights_to_reference(ours, ref)
            model = ref
        elif name == 'ours+cp':
            model = copy.deepcopy(ours)
            model.with_cp = True
        else:
            model = copy.deepcopy(ours)
        model.train(train)
        if name == 'ours-fast':
            model.switch_to_deploy()
        elif name == 'ours-cl':
            model.to(memory_format=torch.channels_last)
        models[name] = model
    return models


def make_input(case: Dict, name: str) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(case['batch'], 3, case['h'], case['w'])
    if name == 'ours-cl':
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def make_step(model: nn.Module, mode: str, x: torch.Tensor):
    """One benchmark iteration as a closure."""
    if mode == 'infer':

        def step():
            with torch.inference_mode():
                return model(x)

        return step
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)

    def step():
        optim.zero_grad(set_to_none=True)
        outs = model(x)
        loss = sum(o.float().mean() for o in outs)
        loss.backward()
        optim.step()
        return outs

    return step


def models_for(case: Dict, args) -> List[str]:
    try:
        build_reference(case['arch'], case['attention'], case['kernel_size'])
        names = ['ref']
    except ValueError:
        names = []
    names.append('ours')
    if args.channels_last:
        names.append('ours-cl')
    if case['mode'] == 'infer':
        names.append('ours-fast')
    elif args.with_cp:
        names.append('ours+cp')
    if args.models:
        names = [n for n in names if n in args.models]
    return names


def read_status(key: str) -> float:
    """A ``kB`` field of ``/proc/self/status`` in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def memory_worker(spec: str) -> None:
    """Subprocess entry: peak RSS growth of one (case, model), as JSON."""
    case, name, threads = json.loads(spec)
    torch.set_num_threads(threads)
    model = build_models(case, [name])[name]
    step = make_step(model, case['mode'], make_input(case, name))
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        reset = True
    except OSError:
        reset = False
    before = read_status('VmRSS')
    for _ in range(2):
        step()
    peak = read_status('VmHWM')
    print(json.dumps(dict(peak_mb=peak - before, hwm_reset=reset)))


def measure_memory(case: Dict, name: str, threads: int) -> Optional[float]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        '--memory-worker',
        json.dumps([case, name, threads]),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f'  memory worker failed for {name}: {res.stderr[-500:]}')
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])['peak_mb']


def max_diff(a, b) -> float:
    return max(
        (x.detach().float() - y.detach().float()).abs().max().item()
        for x, y in zip(a, b)
    )


def time_case(case: Dict, names: List[str], args) -> Dict[str, Dict]:
    models = build_models(case, names)
    steps = {
        name: make_step(model, case['mode'], make_input(case, name))
        for name, model in models.items()
    }
    out, first = time_steps(steps, case['batch'], args)
    base = 'ref' if 'ref' in first else names[0]
    for name in names:
        compared = case['mode'] == 'infer' and name != base
        out[name]['max_abs_diff'] = (
            max_diff(first[name], first[base])
            if compared and name in first and base in first
            else None
        )
    return out


def time_steps(steps: Dict, batch: int, args) -> Tuple[Dict, Dict]:
    """Warm-up, then ``args.repeats`` interleaved rounds of ``steps``.

    Returns:
        ``({name: latency/throughput}, {name: outputs of the first run})``.
    """
    first = {}
    for _ in range(args.warmup):
        for name, step in steps.items():
            first.setdefault(name, step())
    times = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.repeats):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    out = {}
    for name in order:
        lat = statistics.median(times[name])
        out[name] = dict(latency_ms=lat * 1e3, throughput=batch / lat)
    return out, first


def run(args) -> List[Dict]:
    torch.set_num_threads(args.threads)
    results = []
    for arch in args.archs:
        for att_text in args.attentions:
            attention, k = parse_attention(att_text)
            for shape in args.shapes:
                h, w = parse_shape(shape)
                for batch in args.batch_sizes:
                    for mode in args.modes:
                        case = dict(
                            arch=arch,
                            attention=attention,
                            kernel_size=k,
                            h=h,
                            w=w,
                            batch=batch,
                            mode=mode,
                        )
                        names = models_for(case, args)
                        print(f'running {case} with {names}', flush=True)
                        rows = {n: {} for n in names}
                        if not args.no_time:
                            rows = time_case(case, names, args)
                        if not args.no_memory:
                            for name in names:
                                rows[name]['peak_mb'] = measure_memory(
                                    case, name, args.threads
                                )
                        results.append(dict(case=case, models=rows))
    return results


def sweep_cases(args) -> List[Dict]:
    """One case per (arch, shape, batch, mode) holding every attention."""
    cases = []
    for arch in args.archs:
        for shape in args.shapes:
            h, w = parse_shape(shape)
            for batch in args.batch_sizes:
                for mode in args.modes:
                    cases.append(
                        dict(arch=arch, h=h, w=w, batch=batch, mode=mode)
                    )
    return cases


def sweep_variants(case: Dict, args) -> Dict[str, tuple]:
    """``label -> (sub-case, model name)`` for one sweep case."""
    variants = {}
    for text in args.attentions:
        attention, k = parse_attention(text)
        sub = dict(case, attention=attention, kernel_size=k)
        variants[f'{attention}-{k}'] = (sub, 'ours')
        if case['mode'] == 'infer':
            variants[f'{attention}-{k} fast'] = (sub, 'ours-fast')
    return variants


def complexity(case: Dict) -> Dict[str, float]:
    """Parameters (M) and FLOPs (G, one multiply-add = 1) of our backbone
    at the case's input shape (batch 1)."""
    from mmengine.analysis import FlopAnalyzer

    model = BACKBONES[case['attention']](
        arch=case['arch'], kernel_size=case['kernel_size']
    ).eval()
    x = torch.zeros(1, 3, case['h'], case['w'])
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (x,))
        analyzer.unsupported_ops_warnings(False)
        flops = analyzer.total()
    params = sum(p.numel() for p in model.parameters())
    return dict(params_m=params / 1e6, gflops=flops / 1e9)


def run_sweep(args) -> List[Dict]:
    torch.set_num_threads(args.threads)
    results = []
    for case in sweep_cases(args):
        variants = sweep_variants(case, args)
        print(f'sweep {case} over {list(variants)}', flush=True)
        steps, rows = {}, {}
        for label, (sub, name) in variants.items():
            rows[label] = complexity(sub)
            if not args.no_time:
                model = build_models(sub, [name])[name]
                x = make_input(sub, name)
                steps[label] = make_step(model, case['mode'], x)
        if steps:
            timed, _ = time_steps(steps, case['batch'], args)
            for label, row in timed.items():
                rows[label].update(row)
        if not args.no_memory:
            for label, (sub, name) in variants.items():
                rows[label]['peak_mb'] = measure_memory(
                    sub, name, args.threads
                )
        results.append(dict(case=case, models=rows))
    return results


def print_sweep(results: List[Dict], threads: int) -> None:
    print(
        '| case | attention | params M | GFLOPs | img/s | latency ms | '
        f'peak MiB | time vs first | FLOPs vs first |  (threads={threads})'
    )
    print('|' + '---|' * 9)
    for res in results:
        c = res['case']
        label = f'{c["arch"]} {c["h"]}x{c["w"]} bs{c["batch"]} {c["mode"]}'
        rows = res['models']
        base = next(iter(rows.values()))
        for name, row in rows.items():
            time_ratio = None
            if row.get('latency_ms') and base.get('latency_ms'):
                time_ratio = row['latency_ms'] / base['latency_ms']
            print(
                f'| {label} | {name} | {row["params_m"]:.2f} '
                f'| {row["gflops"]:.2f} '
                f'| {_fmt(row.get("throughput"), ".2f")} '
                f'| {_fmt(row.get("latency_ms"), ".1f")} '
                f'| {_fmt(row.get("peak_mb"), ".0f")} '
                f'| {_fmt(time_ratio, ".2f")} '
                f'| {row["gflops"] / base["gflops"]:.3f} |'
            )


def _fmt(value, spec):
    return '-' if value is None else format(value, spec)


def print_table(results: List[Dict], threads: int) -> None:
    header = (
        f'| case | model | img/s | latency ms | peak MiB | '
        f'speed vs ref | mem vs ref | max abs diff |  (threads={threads})'
    )
    print(header)
    print('|' + '---|' * 8)
    for res in results:
        c = res['case']
        label = (
            f'{c["arch"]} {c["attention"]}-{c["kernel_size"]} '
            f'{c["h"]}x{c["w"]} bs{c["batch"]} {c["mode"]}'
        )
        models = res['models']
        base = models.get('ref') or models.get('ours')
        for name, row in models.items():
            speed = mem = None
            if row.get('throughput') and base.get('throughput'):
                speed = row['throughput'] / base['throughput']
            if row.get('peak_mb') and base.get('peak_mb'):
                mem = row['peak_mb'] / base['peak_mb']
            print(
                f'| {label} | {name} | {_fmt(row.get("throughput"), ".2f")} '
                f'| {_fmt(row.get("latency_ms"), ".1f")} '
                f'| {_fmt(row.get("peak_mb"), ".0f")} '
                f'| {_fmt(speed, ".2f")} | {_fmt(mem, ".2f")} '
                f'| {_fmt(row.get("max_abs_diff"), ".1e")} |'
            )


def print_with_cp(results: List[Dict]) -> None:
    """Peak training memory of ``ours+cp`` against ``ours``."""
    for res in results:
        models, c = res['models'], res['case']
        cp_mb = models.get('ours+cp', {}).get('peak_mb')
        base_mb = models.get('ours', {}).get('peak_mb')
        if cp_mb and base_mb:
            print(
                f'with_cp, {c["arch"]} {c["attention"]}-{c["kernel_size"]} '
                f'{c["h"]}x{c["w"]} bs{c["batch"]}: peak {cp_mb:.0f} MiB vs '
                f'{base_mb:.0f} MiB without = {cp_mb / base_mb:.2f}x'
            )


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.memory_worker:
        memory_worker(args.memory_worker)
        return
    if args.sweep:
        results = run_sweep(args)
        print_sweep(results, args.threads)
    else:
        results = run(args)
        print_table(results, args.threads)
        print_with_cp(results)
    if args.json:
        meta = dict(
            threads=args.threads,
            warmup=args.warmup,
            repeats=args.repeats,
            sweep=args.sweep,
            torch=torch.__version__,
        )
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=2)


if __name__ == '__main__':
    main()
