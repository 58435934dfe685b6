# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Side-by-side speed and memory benchmark of the VAN-LKA/LSKA backbones.

For every case (arch x attention/kernel size x input shape x batch size x
mode) it compares, in one process run:

* ``ref``: the references we did not write -- mmpretrain's ``VAN`` for LKA
  (k=21) and, for LSKA, the paper's module (four separate depthwise convs,
  NCHW) placed into mmpretrain's ``VAN``
  (:mod:`projects.van_lska.testing.lska_reference`);
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
* Peak memory: each (case, model) runs in a fresh subprocess
  (``python -m projects.van_lska.analysis.benchmark CASE``), which builds
  the model and input, resets the peak RSS by writing ``5`` to
  ``/proc/self/clear_refs`` (falls back to the RSS just before the run when
  not permitted), runs two iterations and reads ``VmHWM`` from
  ``/proc/self/status``. ``peak`` is the growth of the peak RSS over the
  RSS before the run (activations, workspaces, gradients and optimizer
  state), so nothing leaks between cases.

``--sweep``: the cost of the attention choice instead. For every (arch,
shape, batch, mode) all ``--attentions`` (e.g. ``LKA LSKA:7 LSKA:23
LSKA:53``) run interleaved as above, normal path (and deploy path in
``infer`` mode), with parameters and FLOPs (mmengine's ``FlopAnalyzer``)
and every ratio taken against the first attention.

The command line is ``tools/analysis_tools/benchmark_backbone.py``.
"""

import copy
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from projects.van_lska.apis.files import write_text_atomic
from projects.van_lska.models import VAN_LKA, VAN_LSKA
from projects.van_lska.testing.lska_reference import (
    REFERENCE_LN_EPS,
    build_reference,
    copy_weights_to_reference,
)
from projects.van_lska.testing.randomize import randomize_

BACKBONES = {'LKA': VAN_LKA, 'LSKA': VAN_LSKA}
DEFAULT_K = {'LKA': 21, 'LSKA': 23}
#: Every model a case can compare (see the module docstring).
MODEL_NAMES = ('ref', 'ours', 'ours-cl', 'ours-fast', 'ours+cp')


@dataclass
class BenchmarkOptions:
    """What to run (the options of ``benchmark_backbone.py``).

    Attributes:
        archs: e.g. ``['b2']``.
        attentions: ``'LKA'``, ``'LSKA'`` or ``'NAME:K'`` (``'LSKA:53'``).
        shapes: input ``'HxW'`` strings.
        batch_sizes: batch sizes.
        modes: ``'infer'`` and/or ``'train'``.
        models: a subset of :data:`MODEL_NAMES` (``None``: all that apply).
        channels_last: add ``ours-cl``.
        with_cp: add ``ours+cp`` in train mode.
        threads: ``torch.set_num_threads``.
        warmup: untimed iterations per model.
        repeats: timed interleaved rounds.
        no_time: skip the timing.
        no_memory: skip the peak-memory subprocesses.
        sweep: compare the ``attentions`` with each other instead.
        json: also write the results to this file.
    """

    archs: Sequence[str]
    attentions: Sequence[str]
    shapes: Sequence[str]
    batch_sizes: Sequence[int]
    modes: Sequence[str]
    models: Optional[Sequence[str]]
    channels_last: bool
    with_cp: bool
    threads: int
    warmup: int
    repeats: int
    no_time: bool
    no_memory: bool
    sweep: bool
    json: Optional[str]


def parse_attention(text: str) -> Tuple[str, int]:
    """``'LSKA:53'`` -> ``('LSKA', 53)``; ``'LKA'`` -> ``('LKA', 21)``.

    Raises:
        SystemExit: an unknown attention name.
    """
    name, _, k = text.partition(':')
    name = name.upper()
    if name not in BACKBONES:
        raise SystemExit(f'unknown attention {text!r}')
    return name, int(k) if k else DEFAULT_K[name]


def parse_shape(text: str) -> Tuple[int, int]:
    """``'224x320'`` -> ``(224, 320)``."""
    h, w = text.lower().split('x')
    return int(h), int(w)


def build_ours(case: Dict) -> nn.Module:
    """Our backbone of ``case`` as the references are built: all four
    stage outputs, stage LayerNorm eps 1e-6 (the official networks')."""
    return BACKBONES[case['attention']](
        arch=case['arch'],
        kernel_size=case['kernel_size'],
        out_indices=(0, 1, 2, 3),
        stage_norm_cfg=dict(type='LN', eps=REFERENCE_LN_EPS),
    )


def build_models(case: Dict, names: List[str]) -> Dict[str, nn.Module]:
    """The models of one case, sharing one set of weights."""
    torch.manual_seed(0)
    attention, k = case['attention'], case['kernel_size']
    ours = build_ours(case)
    randomize_(ours)
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
    """The case's ``(batch, 3, h, w)`` input (seed 1)."""
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


def models_for(case: Dict, args: BenchmarkOptions) -> List[str]:
    """The models one case compares."""
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
    """Peak RSS growth (MiB) of two iterations of ``name`` on ``case``, in
    a fresh subprocess (:func:`memory_worker`); ``None`` if it failed."""
    cmd = [
        sys.executable,
        '-m',
        __name__,
        json.dumps([case, name, threads]),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f'  memory worker failed for {name}: {res.stderr[-500:]}')
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])['peak_mb']


def max_diff(a, b) -> float:
    """Largest absolute difference of two sequences of tensors."""
    return max(
        (x.detach().float() - y.detach().float()).abs().max().item()
        for x, y in zip(a, b)
    )


def time_case(
    case: Dict, names: List[str], args: BenchmarkOptions
) -> Dict[str, Dict]:
    """Interleaved timing of ``names`` on ``case``, with each model's
    largest output difference against ``ref`` (else the first model)."""
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


def time_steps(
    steps: Dict, batch: int, args: BenchmarkOptions
) -> Tuple[Dict, Dict]:
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


def run(args: BenchmarkOptions) -> List[Dict]:
    """Every (arch, attention, shape, batch, mode) case: ``[{case,
    models: {name: row}}]``."""
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


def sweep_cases(args: BenchmarkOptions) -> List[Dict]:
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


def sweep_variants(case: Dict, args: BenchmarkOptions) -> Dict[str, tuple]:
    """``label -> (sub-case, model name)`` for one sweep case."""
    variants = {}
    for text in args.attentions:
        attention, k = parse_attention(text)
        sub = dict(case, attention=attention, kernel_size=k)
        variants[f'{attention}-{k}'] = (sub, 'ours')
        if case['mode'] == 'infer':
            variants[f'{attention}-{k} fast'] = (sub, 'ours-fast')
    return variants


def backbone_complexity(case: Dict) -> Dict[str, float]:
    """Parameters (M) and FLOPs (G, one multiply-add = 1) of our backbone
    at the case's input shape (batch 1)."""
    from mmengine.analysis import FlopAnalyzer

    model = build_ours(case).eval()
    x = torch.zeros(1, 3, case['h'], case['w'])
    with torch.no_grad():
        analyzer = FlopAnalyzer(model, (x,))
        analyzer.unsupported_ops_warnings(False)
        flops = analyzer.total()
    params = sum(p.numel() for p in model.parameters())
    return dict(params_m=params / 1e6, gflops=flops / 1e9)


def run_sweep(args: BenchmarkOptions) -> List[Dict]:
    """The ``--sweep`` cases: every attention of a case side by side."""
    torch.set_num_threads(args.threads)
    results = []
    for case in sweep_cases(args):
        variants = sweep_variants(case, args)
        print(f'sweep {case} over {list(variants)}', flush=True)
        steps, rows = {}, {}
        for label, (sub, name) in variants.items():
            rows[label] = backbone_complexity(sub)
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
    """The sweep as a Markdown table, ratios against the first row."""
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


def _fmt(value, spec: str) -> str:
    return '-' if value is None else format(value, spec)


def print_table(results: List[Dict], threads: int) -> None:
    """The cases as a Markdown table, ratios against ``ref``."""
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


def benchmark(args: BenchmarkOptions) -> List[Dict]:
    """Run, print the table(s) and write ``args.json``; returns the
    results."""
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
        write_text_atomic(
            args.json,
            json.dumps(dict(meta=meta, results=results), indent=2),
        )
    return results


if __name__ == '__main__':  # the memory worker of measure_memory()
    memory_worker(sys.argv[1])
