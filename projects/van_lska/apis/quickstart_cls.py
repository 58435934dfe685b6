# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The classification quick start (``tools/quickstart.py --task cls``).

Generates the shapes classification set if it is missing
(:mod:`projects.van_lska.datasets.shapes_classification`), evaluates the
randomly initialised classifier, trains it from scratch on the CPU,
evaluates it again (top-1 on the val split), and writes a Grad-CAM figure
of some val images (when the optional ``grad-cam`` package is installed)
and the shape bias on the synthetic cue-conflict split.

:func:`run_cls` takes the parsed options of ``tools/quickstart.py``; every
attribute it reads is optional (a missing or ``None`` one takes the value
in :data:`CLS_DEFAULTS`).
"""

import argparse
import json
import os.path as osp
import time
from typing import Dict, List, Optional

from ..datasets.shapes_classification import (
    CUE_CONFLICT_DIR,
    cls_dataset_exists,
    generate_cls_dataset,
    load_annotations,
)
from .config import REPO_ROOT
from .files import write_text_atomic
from .quickstart import make_work_dir

CLS_CONFIG = 'configs/quickstart/van_lska_b0_shapes_cls.py'
#: Defaults of the options :func:`run_cls` reads.
CLS_DEFAULTS = dict(
    config=CLS_CONFIG,
    data_root='data/shapes_cls',
    work_dir=None,  # a new work_dirs/quickstart/cls_<timestamp>
    force=False,
    epochs=None,  # the config's schedule
    seed=0,
    num_train=4000,
    num_val=400,
    size=(128, 128),
    texture_tie=0.5,
    texture_scale=1.0,
    num_vis=6,
    cfg_options=None,  # dict merged into the config
)


def _option(args, name: str):
    value = getattr(args, name, None)
    return CLS_DEFAULTS[name] if value is None else value


def ensure_cls_data(args) -> str:
    """Generate the dataset under ``data_root`` if it is not complete."""
    root = _option(args, 'data_root')
    if cls_dataset_exists(root):
        print(f'Using the shapes classification set in {root}')
        return root
    print(f'Generating the shapes classification set in {root} ...')
    meta = generate_cls_dataset(
        root,
        seed=0,
        num_train=_option(args, 'num_train'),
        num_val=_option(args, 'num_val'),
        size=_option(args, 'size'),
        texture_tie=_option(args, 'texture_tie'),
        texture_scale=_option(args, 'texture_scale'),
        force=bool(_option(args, 'force')),
        progress=True,
    )
    print(
        f'  train {meta["num_train"]}, val {meta["num_val"]}, cue-conflict '
        f'{meta["cue_conflict_per_pair"] * 12} images'
    )
    return root


def set_epochs(cfg, epochs: int) -> None:
    """Change the schedule length; the epoch-based schedulers follow."""
    if epochs < 1:
        raise ValueError(f'--epochs must be >= 1; got {epochs}')
    old = cfg.train_cfg.max_epochs
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    cfg.default_hooks.checkpoint.interval = epochs
    for sched in cfg.param_scheduler:
        if sched.get('end', old) >= old:
            sched.end = epochs
        if sched.get('begin', 0) >= epochs:
            sched.begin = 0


def build_runner(args, data_root: str, work_dir: str):
    from mmengine.config import Config
    from mmengine.runner import Runner

    config = _option(args, 'config')
    if not osp.isabs(config) and not osp.exists(config):
        config = osp.join(REPO_ROOT, config)
    cfg = Config.fromfile(config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    cfg_options = getattr(args, 'cfg_options', None)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    epochs = getattr(args, 'epochs', None)
    if epochs is not None:
        set_epochs(cfg, epochs)
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=_option(args, 'seed'))
    cfg.launcher = 'none'
    return Runner.from_cfg(cfg)


def _top1(metrics: Dict) -> Optional[float]:
    for key, value in metrics.items():
        if key.endswith('accuracy/top1'):
            return float(value)
    return None


def draw_cams(
    config: str, checkpoint: str, data_root: str, out_file: str, num: int
) -> Optional[Dict]:
    """Grad-CAM figure of ``num`` val images (one per class in turn), how
    often the CAM peak falls inside the object's box and which share of the
    CAM lies inside it, over all val images (by chance both would be the
    box's share of the image area, ``box_area_fraction``)."""
    try:
        from ..analysis.cam import CamRunner, plot_cams
    except ImportError:  # pragma: no cover - cam imports lazily
        return None
    from ..analysis.classifiers import ModelSpec, build_model

    try:
        import pytorch_grad_cam  # noqa: F401
    except ImportError:
        print('  (install the optional grad-cam package for CAM pictures)')
        return None
    records = load_annotations(data_root, 'val')
    runner = CamRunner(build_model(ModelSpec(config, checkpoint)))
    hits, mass, rows = 0, 0.0, []
    for rec in records:
        path = osp.join(data_root, 'val', rec['file'])
        res = runner(path, target=rec['label'])
        x, y = res.peak
        x0, y0, x1, y1 = rec['box']
        hits += x0 <= x < x1 and y0 <= y < y1
        total = float(res.cam.sum())
        if total > 0:
            mass += float(res.cam[y0:y1, x0:x1].sum()) / total
        if len(rows) < num:
            rows.append((path, res, rec['box']))
    plot_cams(
        [p for p, _, _ in rows],
        [runner],
        [[r] for _, r, _ in rows],
        out_file,
        title='Grad-CAM of the true class, quick-start classifier '
        f'({osp.basename(checkpoint)}); dashed: object box',
        boxes={p: b for p, _, b in rows},
    )
    return dict(
        figure=out_file,
        peak_in_box=hits / len(records),
        cam_mass_in_box=mass / len(records),
        box_area_fraction=sum(
            (r['box'][2] - r['box'][0]) * (r['box'][3] - r['box'][1])
            for r in records
        )
        / len(records)
        / float(res.cam.size),
    )


def run_cls(args: Optional[argparse.Namespace] = None) -> Dict:
    """Generate data if needed, evaluate, train, evaluate, draw.

    Reads (all optional, see :data:`CLS_DEFAULTS`): ``config``,
    ``data_root``, ``work_dir``, ``force``, ``epochs``, ``seed``,
    ``num_train``, ``num_val``, ``size``, ``texture_tie``,
    ``texture_scale``, ``num_vis``,
    ``cfg_options``.

    Returns:
        dict: What is also written to ``<work_dir>/metrics.json``.
    """
    args = args or argparse.Namespace()
    if getattr(args, 'iters', None):
        raise SystemExit(
            '--iters does not apply to --task cls (an epoch-based '
            'schedule); use --epochs'
        )
    data_root = ensure_cls_data(args)
    work_dir = make_work_dir(
        getattr(args, 'work_dir', None), 'cls', bool(_option(args, 'force'))
    )
    import projects.van_lska  # noqa: F401  (registers VAN_LSKA)

    runner = build_runner(args, data_root, work_dir)
    result: Dict = dict(task='cls', work_dir=work_dir, data_root=data_root)
    start = time.time()
    runner.model.init_weights()
    result['untrained'] = {k: float(v) for k, v in runner.val().items()}
    runner.train()  # validates on the val split after the last epoch
    result['train_time_s'] = round(time.time() - start, 1)
    result['trained'] = {
        key[len('val/') :]: float(buf.current())
        for key, buf in runner.message_hub.log_scalars.items()
        if key.startswith('val/') and not key.endswith('time')
    }
    ckpt_file = osp.join(work_dir, 'last_checkpoint')
    checkpoint = (
        open(ckpt_file).read().strip() if osp.exists(ckpt_file) else None
    )
    result['checkpoint'] = checkpoint
    config = osp.join(work_dir, osp.basename(runner.cfg.filename))
    runner.cfg.dump(config)
    result['config'] = config
    if checkpoint:
        from ..analysis.classifiers import ModelSpec, build_model
        from ..analysis.shape_bias import evaluate, list_cue_conflict

        cam = draw_cams(
            config,
            checkpoint,
            data_root,
            osp.join(work_dir, 'vis', 'cam.png'),
            int(_option(args, 'num_vis')),
        )
        if cam:
            result['grad_cam'] = cam
        items = list_cue_conflict(osp.join(data_root, CUE_CONFLICT_DIR))
        bias = evaluate(
            build_model(ModelSpec(config, checkpoint)), items, progress=False
        )
        result['shape_bias'] = bias.shape_bias
    write_text_atomic(
        osp.join(work_dir, 'metrics.json'), json.dumps(result, indent=2)
    )
    print_summary(result)
    return result


def print_summary(result: Dict) -> None:
    before = _top1(result['untrained'])
    after = _top1(result['trained'])
    lines: List[str] = [
        '=' * 70,
        f'Quick start (cls) done in {result["train_time_s"]:.0f}s',
        f'  top-1 untrained : {before:.2f} %  (4 classes: chance 25 %)',
        f'  top-1 trained   : {after:.2f} %',
    ]
    if 'grad_cam' in result:
        cam = result['grad_cam']
        lines.append(
            f'  Grad-CAM peak in the object box: {cam["peak_in_box"]:.1%} '
            f'of val images, CAM mass in it {cam["cam_mass_in_box"]:.1%} '
            f'(box area {cam["box_area_fraction"]:.1%} of the image)'
        )
        lines.append(f'  Grad-CAM figure : {cam["figure"]}')
    if result.get('shape_bias') is not None:
        lines.append(
            f'  shape bias (synthetic cue-conflict): '
            f'{result["shape_bias"]:.3f}'
        )
    lines += [
        f'  work dir        : {result["work_dir"]}',
        f'  config          : {result["config"]}',
        f'  checkpoint      : {result["checkpoint"]}',
        f'  metrics         : {osp.join(result["work_dir"], "metrics.json")}',
        '=' * 70,
    ]
    print('\n'.join(lines))
