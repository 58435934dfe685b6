# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Quick start: train, evaluate and look at a small VAN-LSKA model on CPU
(``tools/quickstart.py``).

Generates the synthetic shapes dataset if it is missing, trains from scratch
(mmengine Runner, progress in the log), evaluates on the val split (COCO
bbox/segm mAP for ``--task det``, mIoU for ``--task seg``) and writes PNG
pictures with the ground truth (left) next to the predictions (right).

Every run writes into a new ``work_dirs/quickstart/<task>_<timestamp>``;
an existing ``--work-dir`` that is not empty is refused unless ``--force``.
"""

import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from projects.van_lska.apis.config import REPO_ROOT
from projects.van_lska.apis.files import write_text_atomic

CONFIGS = {
    'det': 'configs/quickstart/maskrcnn_van_lska_b0_shapes.py',
    'seg': 'configs/quickstart/fpn_van_lska_b0_shapes.py',
}
#: Metrics printed in the summary (the full set is in metrics.json).
KEY_METRICS = {
    'det': ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'),
    'seg': ('mIoU', 'aAcc', 'mAcc'),
}


def make_work_dir(work_dir: Optional[str], task: str, force: bool) -> str:
    """A fresh work dir; never silently reuse a previous run's one.

    Args:
        work_dir: the ``--work-dir``; ``None``: a new
            ``work_dirs/quickstart/<task>_<timestamp>[_<n>]``.
        task: names the default folder.
        force: allow an existing, non-empty ``work_dir``.

    Returns:
        str: the absolute path of the (created) folder.

    Raises:
        SystemExit: ``work_dir`` is not empty and ``force`` is not set.
    """
    if work_dir:
        if osp.isdir(work_dir) and os.listdir(work_dir) and not force:
            raise SystemExit(
                f'--work-dir {work_dir} exists and is not empty; pick a new '
                'one or pass --force to write into it'
            )
    else:
        stamp = time.strftime('%Y%m%d_%H%M%S')
        base = osp.join('work_dirs', 'quickstart', f'{task}_{stamp}')
        work_dir, n = base, 1
        while osp.exists(work_dir):
            work_dir, n = f'{base}_{n}', n + 1
    os.makedirs(work_dir, exist_ok=True)
    return osp.abspath(work_dir)


def add_generation_args(parser) -> None:
    """``--num-train``, ``--num-val`` and ``--size`` of the shapes dataset
    (``tools/quickstart.py``, ``tools/misc/make_synthetic_data.py``)."""
    from projects.van_lska.apis.errors import positive_int

    parser.add_argument(
        '--num-train',
        type=positive_int,
        default=600,
        help='training images to generate (default: 600; the default 700 '
        'images of both splits take about 20 s)',
    )
    parser.add_argument(
        '--num-val',
        type=positive_int,
        default=100,
        help='validation images to generate (default: 100); the metrics and '
        'pictures are computed on them',
    )
    parser.add_argument(
        '--size',
        type=positive_int,
        nargs=2,
        default=[128, 128],
        metavar=('H', 'W'),
        help='image height and width in pixels (default: 128 128; shapes '
        'are scaled with the image)',
    )


class GenerationProgress:
    """Prints ``'  train: 60/600 images (10 %, 1.2 s)'`` at every tenth of
    a split (and its last image) while the shapes dataset is written."""

    def __init__(self, steps: int = 10) -> None:
        self.steps = steps
        self.start = time.time()

    def __call__(self, split: str, done: int, total: int) -> None:
        if done == 1:
            self.start = time.time()
        step = max(1, total // self.steps)
        if done % step and done != total:
            return
        print(
            f'  {split}: {done}/{total} images ({100 * done // total} %, '
            f'{time.time() - self.start:.1f} s)',
            flush=True,
        )


def make_shapes_dataset(
    out: str,
    seed: int,
    num_train: int,
    num_val: int,
    size: Sequence[int],
    force: bool = False,
) -> List[str]:
    """Write the synthetic shapes dataset (COCO + ADE20K formats) under
    ``out``; returns one summary line per split (``'train: N images, M
    objects'``). A non-empty ``out`` ends the process with a message unless
    ``force`` replaces a previous dataset there
    (:func:`~projects.van_lska.datasets.synthetic_shapes.check_target`)."""
    from projects.van_lska.apis.runner import fail
    from projects.van_lska.datasets import generate_dataset

    try:
        splits = generate_dataset(
            out, seed, num_train, num_val, size, force, GenerationProgress()
        )
    except FileExistsError as e:
        fail(str(e))
    return [
        f'{split}: {len(coco["images"])} images, '
        f'{len(coco["annotations"])} objects'
        for split, coco in splits.items()
    ]


def make_synthetic_data(
    out: str,
    seed: int,
    num_train: int,
    num_val: int,
    size: Sequence[int],
    force: bool = False,
) -> None:
    """``tools/misc/make_synthetic_data.py``: write the dataset and print
    what was written."""
    from projects.van_lska.datasets.synthetic_shapes import CLASSES

    start = time.time()
    for line in make_shapes_dataset(
        out, seed, num_train, num_val, size, force
    ):
        print(line)
    print(f'classes: {", ".join(CLASSES)}')
    print(
        f'wrote {osp.join(out, "coco")} (COCO) and '
        f'{osp.join(out, "ade")} (ADE20K) in {time.time() - start:.1f}s'
    )


def ensure_data(
    data_root: str, num_train: int, num_val: int, size: Sequence[int]
) -> None:
    """Generate the shapes dataset (seed 0) unless ``data_root`` has it."""
    from projects.van_lska.datasets import dataset_exists

    if dataset_exists(data_root):
        print(f'Using the dataset in {data_root}')
        return
    print(f'Generating the synthetic shapes dataset in {data_root} ...')
    for line in make_shapes_dataset(data_root, 0, num_train, num_val, size):
        print(f'  {line}')


def set_iters(cfg, iters: int) -> None:
    """Change the schedule length; schedulers are scaled with it."""
    old = cfg.train_cfg.max_iters
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters
    cfg.default_hooks.checkpoint.interval = iters
    for sched in cfg.param_scheduler:
        begin = int(sched.get('begin', 0) * iters / old)
        end = int(round(sched.get('end', old) * iters / old))
        sched.begin, sched.end = begin, max(end, begin + 1)


def set_data_root(cfg, task: str, data_root: str) -> None:
    """Point the quickstart config's dataloaders at ``data_root``."""
    if task == 'det':
        root = osp.join(data_root, 'coco') + '/'
        for loader in ('train_dataloader', 'val_dataloader'):
            cfg[loader].dataset.data_root = root
        cfg.val_evaluator.ann_file = osp.join(
            root, 'annotations', 'instances_val.json'
        )
        cfg.test_evaluator = cfg.val_evaluator
    else:
        for loader in ('train_dataloader', 'val_dataloader'):
            cfg[loader].dataset.data_root = osp.join(data_root, 'ade')
    cfg.test_dataloader = cfg.val_dataloader


def build_runner(args: argparse.Namespace, work_dir: str):
    """The runner of the task's config (or ``args.config``) on
    ``args.data_root``, with ``args.iters``/``val_interval``/``seed``."""
    from mmengine.runner import Runner

    from projects.van_lska.apis.errors import read_config, user_errors
    from projects.van_lska.apis.runner import adapt_to_cpu
    from projects.van_lska.engine.checkpoint_hook import (
        use_atomic_checkpoints,
    )
    from projects.van_lska.engine.shutdown import guard_dataloader_workers

    config = args.config or osp.join(REPO_ROOT, CONFIGS[args.task])
    with user_errors():
        cfg = read_config(config)
    set_data_root(cfg, args.task, args.data_root)
    if args.iters:
        set_iters(cfg, args.iters)
    if args.val_interval:
        cfg.train_cfg.val_interval = args.val_interval
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=args.seed)
    procs = getattr(args, 'procs', 1) or 1
    cfg.launcher = 'pytorch' if procs > 1 else 'none'
    if procs > 1:
        # The config's batch size is the total over all processes.
        cfg.train_dataloader.batch_size = split_batch(
            cfg.train_dataloader.batch_size, procs
        )
        adapt_to_cpu(cfg)  # gloo + DDP without device_ids on CPU
    use_atomic_checkpoints(cfg)
    guard_dataloader_workers(cfg)
    return Runner.from_cfg(cfg)


#: Training processes on CPU by task (capped by the cores; one with a GPU).
#: Mask R-CNN: two (one thread each): the small convs of this model barely
#: use a second thread of one process, a second process doubles the
#: throughput (bbox mAP 0.583 in 12 min against 0.506 in one process, seed
#: 0). Semantic FPN: one, as its BatchNorm statistics over the 4 images of
#: a process cost mIoU (52.0 % in two processes against 58.1 % in one).
CPU_PROCS = {'det': 2, 'seg': 1}


def default_procs(task: str) -> int:
    """Training processes of the quick start for ``task``
    (:data:`CPU_PROCS` on CPU, at most one per core; 1 with a GPU)."""
    import torch

    if torch.cuda.is_available():
        return 1
    return max(1, min(CPU_PROCS[task], len(os.sched_getaffinity(0))))


def split_batch(total: int, procs: int) -> int:
    """The batch size of each of ``procs`` processes for a total of
    ``total`` images per iteration."""
    if total % procs:
        raise SystemExit(
            f"--procs {procs}: the config's batch size {total} (images per "
            'iteration, over all processes) must be a multiple of it; use '
            f'a divisor of {total}'
        )
    return total // procs


def val_metrics(runner) -> Dict[str, float]:
    """The metrics of the last validation, read from the message hub."""
    return {
        key[len('val/') :]: float(buf.current())
        for key, buf in runner.message_hub.log_scalars.items()
        if key.startswith('val/') and not key.endswith('time')
    }


def draw_predictions(
    runner, task: str, out_dir: str, num: int, score_thr: float
) -> List[str]:
    """Draw ``num`` val images: ground truth left, prediction right
    (:mod:`projects.van_lska.apis.drawing`: panels at least 512 px wide,
    titled, labels with scores, a legend for segmentation)."""
    import mmcv
    import torch

    from projects.van_lska.apis import drawing

    os.makedirs(out_dir, exist_ok=True)
    model = runner.model
    model.eval()
    dataset = runner.val_dataloader.dataset
    classes = dataset.metainfo.get('classes')
    palette = dataset.metainfo.get('palette')
    paths = []
    for idx in range(min(num, len(dataset))):
        data = runner.val_dataloader.collate_fn([dataset[idx]])
        with torch.no_grad():
            sample = model.test_step(data)[0]
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        if task == 'det':
            picture = drawing.detection_sheet(
                image,
                drawing.instances_of(sample.gt_instances),
                drawing.instances_of(sample.pred_instances),
                classes,
                palette,
                score_thr,
            )
        else:
            picture = drawing.segmentation_sheet(
                image,
                sample.gt_sem_seg.data[0].cpu().numpy(),
                sample.pred_sem_seg.data[0].cpu().numpy(),
                classes,
                palette,
            )
        out_file = osp.join(
            out_dir, osp.splitext(osp.basename(sample.img_path))[0] + '.png'
        )
        paths.append(drawing.save_png(picture, out_file))
    return paths


def fmt(metrics: Dict[str, float], keys) -> str:
    """``'key=value'`` of the ``keys`` present in ``metrics``."""
    return '  '.join(f'{k}={metrics[k]:.4f}' for k in keys if k in metrics)


def run(args: argparse.Namespace) -> Dict:
    """The quick start with the options of ``tools/quickstart.py``.

    Returns:
        dict: what ``metrics.json`` in the work dir holds (metrics, paths of
        the checkpoint, config and pictures, training time).
    """
    ensure_data(args.data_root, args.num_train, args.num_val, args.size)
    work_dir = make_work_dir(args.work_dir, args.task, args.force)
    procs = getattr(args, 'procs', None) or default_procs(args.task)
    args.procs = procs
    try:
        if procs == 1:
            return train_and_report(args, work_dir)
        return _train_in_processes(args, work_dir, procs)
    except KeyboardInterrupt:
        from projects.van_lska.apis.runner import fail

        fail(
            f'Quick start stopped by Ctrl-C; {work_dir} keeps its log (no '
            'resume here: run the command again for a new run).',
            130,
        )


def _train_in_processes(
    args: argparse.Namespace, work_dir: str, procs: int
) -> Dict:
    """:func:`train_and_report` in ``procs`` processes; returns rank 0's
    ``metrics.json``."""
    import torch.multiprocessing as mp

    print(
        f'Training in {procs} processes (one thread each, '
        f'{args.task} batch split between them)',
        flush=True,
    )
    from projects.van_lska.apis.runner import free_port

    port = free_port()
    try:
        mp.spawn(_process, args=(procs, port, args, work_dir), nprocs=procs)
    except mp.ProcessExitedException as e:  # message printed by the process
        raise SystemExit(e.exit_code or 1) from None
    with open(osp.join(work_dir, 'metrics.json')) as f:
        return json.load(f)


def _process(rank: int, procs: int, port: int, args, work_dir: str) -> None:
    """One of ``procs`` training processes (``torch.multiprocessing``)."""
    import torch

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(procs),
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(port),
    )
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, cores // procs))
    try:
        train_and_report(args, work_dir, rank)
    except KeyboardInterrupt:  # Ctrl-C reaches every process; the
        raise SystemExit(130) from None  # parent says what happened


def train_and_report(args: argparse.Namespace, work_dir: str, rank: int = 0):
    """Train (and evaluate) in this process; on rank 0 also draw the
    pictures, write ``metrics.json`` and print the summary."""
    import projects.van_lska  # noqa: F401  (registers VAN_LSKA)

    runner = build_runner(args, work_dir)
    keys = KEY_METRICS[args.task]
    result: Dict = dict(task=args.task, work_dir=work_dir)
    start = time.time()
    if args.eval_untrained:
        getattr(runner.model, 'module', runner.model).init_weights()
        # plain floats: mmseg's metrics are numpy scalars (not JSON)
        result['untrained'] = {k: float(v) for k, v in runner.val().items()}
        print(f'Untrained: {fmt(result["untrained"], keys)}')
    runner.train()  # validates on the val split after the last iteration
    result['train_time_s'] = round(time.time() - start, 1)
    result['trained'] = val_metrics(runner)
    result['processes'] = args.procs
    if rank:
        return result
    ckpt_file = osp.join(work_dir, 'last_checkpoint')
    result['checkpoint'] = (
        open(ckpt_file).read().strip() if osp.exists(ckpt_file) else None
    )
    vis_dir = osp.join(work_dir, 'vis')
    result['pictures'] = draw_predictions(
        runner, args.task, vis_dir, args.num_vis, args.score_thr
    )
    result['config'] = osp.join(work_dir, osp.basename(runner.cfg.filename))
    runner.cfg.dump(result['config'])
    write_text_atomic(
        osp.join(work_dir, 'metrics.json'), json.dumps(result, indent=2)
    )

    print('\n' + '=' * 70)
    print(f'Quick start ({args.task}) done in {result["train_time_s"]:.0f}s')
    if 'untrained' in result:
        print(f'  untrained model : {fmt(result["untrained"], keys)}')
    print(f'  trained model   : {fmt(result["trained"], keys)}')
    print(f'  work dir        : {work_dir}')
    print(f'  training log    : {osp.join(work_dir, runner.timestamp)}')
    print(f'  config          : {result["config"]}')
    print(f'  checkpoint      : {result["checkpoint"]}')
    print(f'  metrics         : {osp.join(work_dir, "metrics.json")}')
    print(
        f'  pictures        : {vis_dir} ({len(result["pictures"])} PNGs, '
        'ground truth left, prediction right)'
    )
    print(
        '  try the demo    : python demo/image_demo.py IMAGE '
        f'{result["config"]} {result["checkpoint"]} --device cpu'
    )
    print('=' * 70)
    return result
