# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Quick start: train, evaluate and look at a small VAN-LSKA model on CPU.

Generates the synthetic shapes dataset if it is missing, trains from scratch
(mmengine Runner, progress in the log), evaluates on the val split (COCO
bbox/segm mAP for ``--task det``, mIoU for ``--task seg``) and writes PNG
pictures with the ground truth (left) next to the predictions (right).

Examples::

    python tools/quickstart.py                # Mask R-CNN, COCO metrics
    python tools/quickstart.py --task seg     # Semantic FPN, mIoU
    python tools/quickstart.py --iters 20     # a short smoke run

Every run writes into a new ``work_dirs/quickstart/<task>_<timestamp>``;
an existing ``--work-dir`` that is not empty is refused unless ``--force``.
"""

import argparse
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

CONFIGS = {
    'det': 'configs/quickstart/maskrcnn_van_lska_b0_shapes.py',
    'seg': 'configs/quickstart/fpn_van_lska_b0_shapes.py',
}
#: Metrics printed in the summary (the full set is in metrics.json).
KEY_METRICS = {
    'det': ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'),
    'seg': ('mIoU', 'aAcc', 'mAcc'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train, evaluate and draw a small VAN-LSKA model on the '
        'synthetic shapes dataset (CPU friendly).'
    )
    parser.add_argument(
        '--task',
        choices=sorted(CONFIGS),
        default='det',
        help='det: Mask R-CNN (COCO bbox/segm mAP); seg: Semantic FPN (mIoU)',
    )
    parser.add_argument(
        '--config', help='config file (default: the quickstart one)'
    )
    parser.add_argument(
        '--data-root',
        default='data/shapes',
        help='dataset root; generated there if missing',
    )
    parser.add_argument(
        '--work-dir',
        help='output folder (default: a new '
        'work_dirs/quickstart/<task>_<timestamp>)',
    )
    parser.add_argument(
        '--force',
        action='store_true',
        help='allow writing into an existing, non-empty --work-dir',
    )
    parser.add_argument(
        '--iters', type=int, help='shorten/lengthen the schedule'
    )
    parser.add_argument(
        '--val-interval',
        type=int,
        help='also evaluate every N iterations (default: only at the end)',
    )
    parser.add_argument(
        '--num-vis', type=int, default=8, help='val images to draw'
    )
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.5,
        help='score threshold for drawn detections',
    )
    parser.add_argument(
        '--eval-untrained',
        action='store_true',
        help='also evaluate the freshly initialised model first',
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    gen = parser.add_argument_group(
        'dataset generation (only if --data-root is missing; seed 0)'
    )
    gen.add_argument('--num-train', type=int, default=600)
    gen.add_argument('--num-val', type=int, default=100)
    gen.add_argument(
        '--size', type=int, nargs=2, default=[128, 128], metavar=('H', 'W')
    )
    return parser.parse_args(argv)


def make_work_dir(args: argparse.Namespace) -> str:
    """A fresh work dir; never silently reuse a previous run's one."""
    if args.work_dir:
        work_dir = args.work_dir
        if osp.isdir(work_dir) and os.listdir(work_dir) and not args.force:
            raise SystemExit(
                f'--work-dir {work_dir} exists and is not empty; pick a new '
                'one or pass --force to write into it'
            )
    else:
        stamp = time.strftime('%Y%m%d_%H%M%S')
        base = osp.join('work_dirs', 'quickstart', f'{args.task}_{stamp}')
        work_dir, n = base, 1
        while osp.exists(work_dir):
            work_dir, n = f'{base}_{n}', n + 1
    os.makedirs(work_dir, exist_ok=True)
    return osp.abspath(work_dir)


def ensure_data(args: argparse.Namespace) -> None:
    from projects.van_lska.datasets import dataset_exists, generate_dataset

    if dataset_exists(args.data_root):
        print(f'Using the dataset in {args.data_root}')
        return
    print(f'Generating the synthetic shapes dataset in {args.data_root} ...')
    out = generate_dataset(
        args.data_root, 0, args.num_train, args.num_val, args.size
    )
    for split, coco in out.items():
        print(
            f'  {split}: {len(coco["images"])} images, '
            f'{len(coco["annotations"])} objects'
        )


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
    from mmengine.config import Config
    from mmengine.runner import Runner

    config = args.config or osp.join(REPO_ROOT, CONFIGS[args.task])
    cfg = Config.fromfile(config)
    set_data_root(cfg, args.task, args.data_root)
    if args.iters:
        set_iters(cfg, args.iters)
    if args.val_interval:
        cfg.train_cfg.val_interval = args.val_interval
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=args.seed)
    cfg.launcher = 'none'
    return Runner.from_cfg(cfg)


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
    """Draw ``num`` val images: ground truth left, prediction right."""
    import mmcv
    import torch

    os.makedirs(out_dir, exist_ok=True)
    model = runner.model
    model.eval()
    dataset = runner.val_dataloader.dataset
    visualizer = runner.visualizer
    visualizer.dataset_meta = dataset.metainfo
    paths = []
    for idx in range(min(num, len(dataset))):
        data = runner.val_dataloader.collate_fn([dataset[idx]])
        with torch.no_grad():
            sample = model.test_step(data)[0]
        image = mmcv.imread(sample.img_path, channel_order='rgb')
        out_file = osp.join(
            out_dir, osp.splitext(osp.basename(sample.img_path))[0] + '.png'
        )
        kwargs = dict(pred_score_thr=score_thr) if task == 'det' else {}
        visualizer.add_datasample(
            osp.basename(sample.img_path),
            image,
            data_sample=sample,
            draw_gt=True,
            draw_pred=True,
            show=False,
            out_file=out_file,
            **kwargs,
        )
        paths.append(out_file)
    return paths


def fmt(metrics: Dict[str, float], keys) -> str:
    return '  '.join(f'{k}={metrics[k]:.4f}' for k in keys if k in metrics)


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    ensure_data(args)
    work_dir = make_work_dir(args)
    import projects.van_lska  # noqa: F401  (registers VAN_LSKA)

    runner = build_runner(args, work_dir)
    keys = KEY_METRICS[args.task]
    result: Dict = dict(task=args.task, work_dir=work_dir)
    start = time.time()
    if args.eval_untrained:
        runner.model.init_weights()
        # plain floats: mmseg's metrics are numpy scalars (not JSON)
        result['untrained'] = {k: float(v) for k, v in runner.val().items()}
        print(f'Untrained: {fmt(result["untrained"], keys)}')
    runner.train()  # validates on the val split after the last iteration
    result['train_time_s'] = round(time.time() - start, 1)
    result['trained'] = val_metrics(runner)
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
    with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
        json.dump(result, f, indent=2)

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


if __name__ == '__main__':
    main()
