# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Quick start ``--task yolo``: YOLO11n vs YOLO11n-LSKA on CPU, offline.

Writes the synthetic shapes in the YOLO format if missing
(``<data-root>/yolo``, :mod:`projects.van_lska.datasets.yolo_format`),
trains each model from its YAML in ``configs/yolo`` from scratch with
Ultralytics' own API (``YOLO(yaml).train``), validates it
(``YOLO.val``) and prints params, GFLOPs, mAP50 and mAP50-95 side by side.
Ultralytics runs offline (:mod:`projects.van_lska.integrations.
ultralytics_offline`) with its config folder inside the work dir.

``tools/quickstart.py`` adds :func:`add_arguments` to its parser and calls
:func:`run` with the parsed options and the work dir it made. Every option
``run`` reads may be missing or ``None`` and then takes its value from
:data:`YOLO_DEFAULTS`: the common ``data_root`` (the YOLO data go to
``<data_root>/yolo``), ``seed``, ``num_train``, ``num_val``, ``size``
(dataset generation uses seed 0, as for the other tasks) and this task's
``yolo_models``, ``epochs``, ``imgsz``, ``batch``.

Output in the work dir: ``<model>/`` (Ultralytics' training run: weights,
``results.csv``, ``args.yaml``), ``<model>_val/``, ``ultralytics_config/``,
``metrics.json`` and ``results.md`` (the printed table).
"""

import argparse
import json
import os.path as osp
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from projects.van_lska.apis.files import write_text_atomic

#: Defaults of the options :func:`run` reads (``None`` or missing -> these).
YOLO_DEFAULTS: Dict[str, Any] = dict(
    data_root='data/shapes',
    seed=0,
    num_train=600,
    num_val=100,
    size=(128, 128),
    yolo_models=('yolo11n.yaml', 'yolo11n-lska.yaml'),  # in configs/yolo
    epochs=20,
    imgsz=128,
    batch=16,
)
#: The models compared by default.
DEFAULT_MODELS = YOLO_DEFAULTS['yolo_models']
#: Image size at which GFLOPs are also reported (Ultralytics' convention).
REFERENCE_IMGSZ = 640


def resolve_options(args: argparse.Namespace) -> argparse.Namespace:
    """The options :func:`run` reads, missing or ``None`` ones replaced by
    :data:`YOLO_DEFAULTS`."""
    out = {}
    for name, default in YOLO_DEFAULTS.items():
        value = getattr(args, name, None)
        out[name] = default if value is None else value
    return argparse.Namespace(**out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``--task yolo``: ``--yolo-models``, ``--imgsz``,
    ``--batch`` and, unless the parser has it already, ``--epochs``. All
    default to ``None`` (then :data:`YOLO_DEFAULTS` applies)."""
    group = parser.add_argument_group(
        '--task yolo (Ultralytics YOLO11; optional dependency, AGPL-3.0)'
    )
    d = YOLO_DEFAULTS
    options = [
        (
            '--yolo-models',
            dict(
                nargs='+',
                metavar='YAML',
                help='model YAMLs to train and compare: paths, or file names '
                f'in configs/yolo (yolo: {" ".join(d["yolo_models"])})',
            ),
        ),
        (
            '--epochs',
            dict(type=int, help=f'training epochs (yolo: {d["epochs"]})'),
        ),
        (
            '--imgsz',
            dict(
                type=int,
                help='train/val image size, a multiple of 32 (yolo: '
                f'{d["imgsz"]})',
            ),
        ),
        ('--batch', dict(type=int, help=f'batch size (yolo: {d["batch"]})')),
    ]
    taken = {s for a in parser._actions for s in a.option_strings}
    for name, kwargs in options:
        if name not in taken:
            group.add_argument(name, default=None, **kwargs)


def resolve_model_yaml(spec: str) -> str:
    """A model YAML path: ``spec`` itself, or ``configs/yolo/<spec>``."""
    from projects.van_lska.integrations.yolo_configs import CONFIG_DIR

    if osp.isfile(spec):
        return osp.abspath(spec)
    candidate = CONFIG_DIR / spec
    if candidate.is_file():
        return str(candidate)
    known = ', '.join(sorted(p.name for p in CONFIG_DIR.glob('*.yaml')))
    raise FileNotFoundError(
        f'--yolo-models: {spec!r} is neither a file nor a config in '
        f'{CONFIG_DIR} (there: {known})'
    )


def check_options(args: argparse.Namespace) -> List[str]:
    """Validate the yolo options; returns the model YAML paths."""
    for name in ('epochs', 'batch'):
        if getattr(args, name) < 1:
            raise ValueError(
                f'--{name} must be >= 1, got {getattr(args, name)}'
            )
    if args.imgsz < 32 or args.imgsz % 32:
        raise ValueError(
            f"--imgsz must be a multiple of 32 (the models' largest stride) "
            f'and >= 32, got {args.imgsz}'
        )
    paths = [resolve_model_yaml(spec) for spec in args.yolo_models]
    names = [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(
            f'--yolo-models: each model needs its own file name (they name '
            f'the output folders), got {names}'
        )
    return paths


def ensure_yolo_data(args: argparse.Namespace) -> str:
    """The ``detect`` data.yaml under ``<data_root>/yolo``, written if
    missing (seed 0, like the other quickstart datasets)."""
    from projects.van_lska.datasets.yolo_format import (
        data_yaml_paths,
        generate_yolo_dataset,
        load_meta,
        yolo_dataset_exists,
    )

    root = osp.join(args.data_root, 'yolo')
    if yolo_dataset_exists(root):
        meta = load_meta(root)
        print(
            f'Using the YOLO shapes dataset in {root} ({meta["num_train"]} '
            f'train / {meta["num_val"]} val images, {meta["size"][1]}x'
            f'{meta["size"][0]} px)'
        )
    else:
        print(f'Writing the YOLO shapes dataset to {root} ...')
        meta = generate_yolo_dataset(
            root, 0, args.num_train, args.num_val, args.size
        )
        print(
            f'  train: {meta["num_train"]} images, {meta["objects"]["train"]}'
            f' objects; val: {meta["num_val"]} images, '
            f'{meta["objects"]["val"]} objects'
        )
    return data_yaml_paths(root)['detect']


def _train_and_validate(
    yaml_path: str, data: str, args: argparse.Namespace, work_dir: str
) -> Dict:
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops, get_num_params

    import projects.van_lska.integrations.ultralytics  # noqa: F401
    from projects.van_lska.integrations.ultralytics import lska_layers
    from projects.van_lska.integrations.ultralytics_offline import (
        OFFLINE_TRAIN_ARGS,
    )

    name = Path(yaml_path).stem
    common = dict(
        data=data,
        imgsz=args.imgsz,
        batch=args.batch,
        device='cpu',
        workers=0,
        project=work_dir,
        exist_ok=False,
        **OFFLINE_TRAIN_ARGS,
    )
    model = YOLO(yaml_path)
    start = time.time()
    model.train(
        epochs=args.epochs,
        seed=args.seed,
        deterministic=True,
        name=name,
        **common,
    )
    train_s = time.time() - start
    # The trained (best) model, unfused, with the dataset's 4 classes.
    params = get_num_params(model.model)
    gflops = get_flops(model.model, args.imgsz)
    gflops_ref = get_flops(model.model, REFERENCE_IMGSZ)
    n_lska = len(lska_layers(model.model))
    metrics = model.val(split='val', name=name + '_val', **common)
    return dict(
        model=name,
        yaml=yaml_path,
        params=params,
        lska_layers=n_lska,
        gflops=round(gflops, 3),
        gflops_640=round(gflops_ref, 3),
        map50=float(metrics.box.map50),
        map50_95=float(metrics.box.map),
        precision=float(metrics.box.mp),
        recall=float(metrics.box.mr),
        train_s=round(train_s, 1),
        run_dir=str(model.trainer.save_dir),
    )


def format_table(rows: Sequence[Dict], imgsz: int) -> str:
    """The results as a Markdown table."""
    lines = [
        f'| model | params | GFLOPs {imgsz} | GFLOPs {REFERENCE_IMGSZ} | '
        'mAP50 | mAP50-95 | train time |',
        '|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        lines.append(
            f'| {r["model"]} | {r["params"] / 1e6:.3f} M | '
            f'{r["gflops"]:.2f} | {r["gflops_640"]:.2f} | {r["map50"]:.3f} | '
            f'{r["map50_95"]:.3f} | {r["train_s"] / 60:.1f} min |'
        )
    return '\n'.join(lines)


def run(args: argparse.Namespace, work_dir: str) -> List[Dict]:
    """Train and validate every ``--yolo-models`` YAML; print the table.

    Args:
        args: Parsed options (see the module docstring for which; missing
            or ``None`` ones take :data:`YOLO_DEFAULTS`).
        work_dir: An existing, empty output folder.

    Returns:
        list: One dict of results per model (also in ``metrics.json``).
    """
    from projects.van_lska.integrations.ultralytics_offline import (
        prepare_offline,
    )

    args = resolve_options(args)
    paths = check_options(args)
    work_dir = osp.abspath(work_dir)
    # Before the first `import ultralytics` of this process.
    try:
        prepare_offline(osp.join(work_dir, 'ultralytics_config'))
    except ImportError as exc:
        raise SystemExit(f'--task yolo: {exc}') from exc
    data = ensure_yolo_data(args)
    rows = []
    for path in paths:
        print(f'\n=== {Path(path).stem}: training {args.epochs} epochs ===')
        rows.append(_train_and_validate(path, data, args, work_dir))
        write_text_atomic(
            osp.join(work_dir, 'metrics.json'), json.dumps(rows, indent=2)
        )
    table = format_table(rows, args.imgsz)
    command = (
        f'epochs {args.epochs}, imgsz {args.imgsz}, batch {args.batch}, '
        f'seed {args.seed}, CPU; val split of {data}'
    )
    write_text_atomic(
        osp.join(work_dir, 'results.md'), f'{table}\n\n{command}\n'
    )
    print(f'\n{table}\n\n{command}')
    print(f'\nTraining runs, metrics.json and results.md are in {work_dir}')
    return rows
