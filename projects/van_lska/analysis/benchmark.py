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
  training only);
* ``ours-fused``: the fused training path (``fused=True``, see
  :mod:`projects.van_lska.models.fused`; ``--fused``), and with
  ``--with-cp`` also ``ours-fused+cp`` in train mode;
* ``ours-fused+fadamw`` (``--ours-fused-adamw``): the fused path trained
  with PyTorch's fused AdamW kernel (``AdamW(..., fused=True)``) while
  every other model, ``ref`` included, keeps the plain AdamW: a comparison
  of training *recipes*, labelled as such (the rows of the same optimizer
  are printed next to it);
* ``ours-compile``: the normal path under ``torch.compile`` (inductor;
  ``--compile``). The first warm-up iteration compiles (its time is printed);
  no memory is measured for it (each subprocess would compile again).

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
  optimizer of every recipe here; ``--fused-adamw``: PyTorch's fused
  AdamW kernel, for every model alike), in train mode.
* CPU time: on CPU the process CPU time of each iteration is reported too
  (``cpu ms``, median). At one thread it is the time the iteration had a
  core: on a loaded machine the wall time also counts the waits for a core,
  which fall on the models at random; the CPU time does not (caches and
  memory bandwidth are still shared).
* GPU (``--device cuda``): the same cases, with ``torch.cuda.synchronize()``
  after each iteration; ``--amp bf16``/``fp16`` runs every model under
  ``torch.autocast``; peak memory is ``torch.cuda.max_memory_allocated``
  during two iterations minus the memory allocated before them, in the same
  process. Rows at 224x224 also show the VAN paper's RTX 3090 throughput
  (:data:`PAPER_RTX3090`).
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
import os
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
MODEL_NAMES = (
    'ref',
    'ours',
    'ours-cl',
    'ours-fast',
    'ours+cp',
    'ours-fused',
    'ours-fused+cp',
    'ours-fused+fadamw',
    'ours-compile',
)
#: Model-name suffix: trained with PyTorch's fused AdamW kernel.
FUSED_ADAMW_SUFFIX = '+fadamw'
#: VAN-LKA inference throughput (images/s, 224x224) on an RTX 3090 from the
#: VAN paper (Guo et al., 2022, Table 2/Fig. 1), for comparison on a GPU.
PAPER_RTX3090 = {'b0': 2140, 'b1': 1420, 'b2': 762, 'b3': 452}
AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


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
        fused: add ``ours-fused`` (and ``ours-fused+cp`` with ``with_cp``).
        compile: add ``ours-compile``.
        fused_adamw: PyTorch's fused AdamW for every model.
        ours_fused_adamw: add ``ours-fused+fadamw`` in train mode (the
            fused path with PyTorch's fused AdamW, the others plain).
        device: ``'cpu'`` or ``'cuda'``.
        amp: ``None``, ``'bf16'`` or ``'fp16'`` (``torch.autocast``).
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
    fused: bool = False
    compile: bool = False
    fused_adamw: bool = False
    ours_fused_adamw: bool = False
    device: str = 'cpu'
    amp: Optional[str] = None


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
    device = case.get('device', 'cpu')
    models = {}
    for name in names:
        if name == 'ref':
            ref = build_reference(case['arch'], attention, k)
            copy_weights_to_reference(ours, ref)
            model = ref
        else:
            model = copy.deepcopy(ours)
        if name != 'ref':
            model.with_cp = name.endswith('+cp')
        model.to(device)
        model.train(train)
        if name == 'ours-fast':
            model.switch_to_deploy()
        elif name == 'ours-cl':
            model.to(memory_format=torch.channels_last)
        elif name.startswith('ours-fused'):
            model.fused = True
        elif name == 'ours-compile':
            model = torch.compile(model)
        models[name] = model
    return models


def make_input(case: Dict, name: str) -> torch.Tensor:
    """The case's ``(batch, 3, h, w)`` input (seed 1)."""
    torch.manual_seed(1)
    x = torch.randn(case['batch'], 3, case['h'], case['w'])
    x = x.to(case.get('device', 'cpu'))
    if name == 'ours-cl':
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def make_step(
    model: nn.Module,
    mode: str,
    x: torch.Tensor,
    amp: Optional[str] = None,
    fused_adamw: bool = False,
):
    """One benchmark iteration as a closure (synchronised on CUDA)."""
    cuda = x.device.type == 'cuda'

    def autocast():
        return torch.autocast(
            x.device.type, dtype=AMP_DTYPES.get(amp), enabled=amp is not None
        )

    def sync():
        if cuda:
            torch.cuda.synchronize(x.device)

    if mode == 'infer':

        def step():
            with torch.inference_mode(), autocast():
                outs = model(x)
            sync()
            return outs

        return step
    params = [p for p in model.parameters() if p.requires_grad]
    extra = dict(fused=True) if fused_adamw else {}
    optim = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, **extra)
    scaler = torch.amp.GradScaler(x.device.type, enabled=amp == 'fp16')

    def step():
        optim.zero_grad(set_to_none=True)
        with autocast():
            outs = model(x)
            loss = sum(o.float().mean() for o in outs)
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()
        sync()
        return outs

    step.optimizer = optim  # for inspection
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
    if args.fused:
        names.append('ours-fused')
        if args.with_cp and case['mode'] == 'train':
            names.append('ours-fused+cp')
    if args.ours_fused_adamw and case['mode'] == 'train':
        names.append('ours-fused' + FUSED_ADAMW_SUFFIX)
    if args.compile:
        names.append('ours-compile')
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


def case_step(case: Dict, name: str, model: nn.Module):
    """The iteration of ``model`` (named ``name``) on ``case``."""
    return make_step(
        model,
        case['mode'],
        make_input(case, name),
        amp=case.get('amp'),
        fused_adamw=case.get('fused_adamw', False)
        or name.endswith(FUSED_ADAMW_SUFFIX),
    )


def measure_cuda_memory(case: Dict, name: str) -> float:
    """Peak CUDA memory growth (MiB) of two iterations, in this process."""
    model = build_models(case, [name])[name]
    step = case_step(case, name, model)
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        step()
    peak = torch.cuda.max_memory_allocated()
    del model, step
    torch.cuda.empty_cache()
    return (peak - before) / 2**20


def memory_worker(spec: str) -> None:
    """Subprocess entry: peak RSS growth of one (case, model), as JSON."""
    case, name, threads = json.loads(spec)
    torch.set_num_threads(threads)
    model = build_models(case, [name])[name]
    step = case_step(case, name, model)
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
    a fresh subprocess (:func:`memory_worker`); ``None`` if it failed or
    for ``ours-compile``. On CUDA: :func:`measure_cuda_memory`."""
    if name == 'ours-compile':
        return None
    if case.get('device', 'cpu') != 'cpu':
        return measure_cuda_memory(case, name)
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
        name: case_step(case, name, model) for name, model in models.items()
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
        ``({name: latency/throughput/cpu time}, {name: outputs of the
        first run})``; ``first_ms`` is the first warm-up iteration (it
        compiles under ``torch.compile``).
    """
    first, first_ms = {}, {}
    for _ in range(args.warmup):
        for name, step in steps.items():
            start = time.perf_counter()
            outs = step()
            if name not in first:
                first[name] = outs
                first_ms[name] = (time.perf_counter() - start) * 1e3
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.repeats):
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[name]()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
    cuda = getattr(args, 'device', 'cpu') != 'cpu'
    out = {}
    for name in order:
        lat = statistics.median(times[name])
        out[name] = dict(
            latency_ms=lat * 1e3,
            throughput=batch / lat,
            cpu_ms=None if cuda else statistics.median(cpu_times[name]) * 1e3,
            first_ms=first_ms.get(name),
        )
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
                            device=args.device,
                            amp=args.amp,
                            fused_adamw=args.fused_adamw,
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


def case_label(c: Dict) -> str:
    """``b1 LSKA-23 224x224 bs2 train`` (``+ bf16``/``cuda`` when set)."""
    label = (
        f'{c["arch"]} {c["attention"]}-{c["kernel_size"]} '
        f'{c["h"]}x{c["w"]} bs{c["batch"]} {c["mode"]}'
    )
    if c.get('device', 'cpu') != 'cpu':
        label += f' {c["device"]}'
    if c.get('amp'):
        label += f' {c["amp"]}'
    return label


def _ratio(row: Dict, base: Dict, key: str, inverse: bool = False):
    if not row.get(key) or not base.get(key):
        return None
    return base[key] / row[key] if inverse else row[key] / base[key]


def print_table(results: List[Dict], threads: int) -> None:
    """The cases as a Markdown table, ratios against ``ref`` (speed from
    the wall time and, on CPU, from the CPU time)."""
    header = (
        '| case | model | img/s | latency ms | cpu ms | peak MiB | '
        'speed vs ref | cpu speed vs ref | mem vs ref | max abs diff |  '
        f'(threads={threads})'
    )
    print(header)
    print('|' + '---|' * 10)
    for res in results:
        c = res['case']
        label = case_label(c)
        models = res['models']
        base = models.get('ref') or models.get('ours')
        for name, row in models.items():
            print(
                f'| {label} | {name} | {_fmt(row.get("throughput"), ".2f")} '
                f'| {_fmt(row.get("latency_ms"), ".1f")} '
                f'| {_fmt(row.get("cpu_ms"), ".1f")} '
                f'| {_fmt(row.get("peak_mb"), ".0f")} '
                f'| {_fmt(_ratio(row, base, "throughput"), ".2f")} '
                f'| {_fmt(_ratio(row, base, "cpu_ms", True), ".2f")} '
                f'| {_fmt(_ratio(row, base, "peak_mb"), ".2f")} '
                f'| {_fmt(row.get("max_abs_diff"), ".1e")} |'
            )
    for res in results:
        first = res['models'].get('ours-compile', {}).get('first_ms')
        if first:
            print(
                f'torch.compile, {case_label(res["case"])}: first iteration '
                f'(compiling) {first / 1e3:.1f} s'
            )
    print_paper_comparison(results)


def print_paper_comparison(results: List[Dict]) -> None:
    """GPU rows at 224x224 against the VAN paper's RTX 3090 throughput."""
    for res in results:
        c = res['case']
        paper = PAPER_RTX3090.get(c['arch'])
        gpu = c.get('device', 'cpu') != 'cpu'
        if not (gpu and paper and (c['h'], c['w']) == (224, 224)):
            continue
        if c['mode'] != 'infer':
            continue
        for name, row in res['models'].items():
            if row.get('throughput'):
                print(
                    f'vs VAN paper (VAN-{c["arch"]}, RTX 3090, {paper} '
                    f'img/s), {case_label(c)}, {name}: '
                    f'{row["throughput"]:.0f} img/s = '
                    f'{row["throughput"] / paper:.2f}x'
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


def _load_average() -> Optional[List[float]]:
    """The 1/5/15-minute load averages (how busy the machine was)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def benchmark(args: BenchmarkOptions) -> List[Dict]:
    """Run, print the table(s) and write ``args.json``; returns the
    results."""
    load_before = _load_average()
    if args.sweep:
        results = run_sweep(args)
        print_sweep(results, args.threads)
    else:
        results = run(args)
        print_table(results, args.threads)
        print_with_cp(results)
    print(
        f'load average (1/5/15 min) at the start: {load_before}, at the '
        f'end: {_load_average()}; CPUs: {os.cpu_count()}'
    )
    if args.json:
        meta = dict(
            threads=args.threads,
            warmup=args.warmup,
            repeats=args.repeats,
            sweep=args.sweep,
            torch=torch.__version__,
            device=args.device,
            amp=args.amp,
            fused_adamw=args.fused_adamw,
            ours_fused_adamw=args.ours_fused_adamw,
            load_average=[load_before, _load_average()],
        )
        write_text_atomic(
            args.json,
            json.dumps(dict(meta=meta, results=results), indent=2),
        )
    return results


if __name__ == '__main__':  # the memory worker of measure_memory()
    memory_worker(sys.argv[1])
