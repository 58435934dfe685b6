# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Runtime set-up shared by ``tools/train.py`` and ``tools/test.py``
(:mod:`projects.van_lska.apis.train`, :mod:`projects.van_lska.apis.test`).

One tool set serves mmdet, mmseg and mmpretrain configs: the codebase is the
config's ``default_scope`` (:func:`~projects.van_lska.apis.config.
codebase_of`). This module

* registers that codebase's modules and picks its runner,
* makes a machine without a GPU work (gloo instead of NCCL, SyncBN -> BN,
  DDP on CPU modules),
* checks dataset folders and local checkpoints before the runner is built,
  so a missing file gives a short message instead of a traceback.
"""

import importlib
import os
import os.path as osp
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from mmengine.config import Config

from projects.van_lska.apis.config import (
    codebase_of,
    register_codebase,
    sync_bn_to_bn,
)
from projects.van_lska.apis.errors import UserError, read_config
from projects.van_lska.engine.checkpoint_hook import use_atomic_checkpoints
from projects.van_lska.engine.shutdown import guard_dataloader_workers
from projects.van_lska.models.van import (
    local_pretrained_checkpoints,
    missing_pretrained_message,
)
from projects.van_lska.weights.coverage import CheckpointError, quick_check


def build_runner(cfg: Config):
    """``cfg.runner_type`` from the codebase's ``RUNNERS``, else mmengine's
    ``Runner``."""
    from mmengine.runner import Runner

    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    scope = codebase_of(cfg)
    return importlib.import_module(f'{scope}.registry').RUNNERS.build(cfg)


def is_main_process() -> bool:
    """Rank 0 (from the launcher's environment; before any process group)."""
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return True


def fail(message: str, code: int = 1) -> None:
    """Print ``message`` on rank 0 (to stderr) and exit every process."""
    if is_main_process():
        print(message, file=sys.stderr, flush=True)
    sys.exit(code)


# --------------------------------------------------------------------------
# Machines without a GPU
# --------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for
    ``MASTER_PORT`` of a local distributed run)."""
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _set_dist_env_from(launcher: str) -> None:
    """``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_*`` for slurm and mpi
    (the pytorch launcher sets them itself)."""
    if launcher == 'slurm':
        import subprocess

        node_list = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1'
        )
        os.environ.setdefault('MASTER_ADDR', addr)
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['LOCAL_RANK'] = os.environ['SLURM_LOCALID']
    elif launcher == 'mpi':
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29500')
        os.environ['RANK'] = os.environ['OMPI_COMM_WORLD_RANK']
        os.environ['WORLD_SIZE'] = os.environ['OMPI_COMM_WORLD_SIZE']
        os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']


def adapt_to_cpu(cfg: Config) -> bool:
    """Make ``cfg`` run without CUDA; no-op when a GPU is present.

    SyncBN becomes BN (model and any other config dict); distributed runs
    use gloo, start their process group here (mmengine's ``init_dist``
    calls ``torch.cuda.set_device``) and wrap the model in DDP without
    ``device_ids`` (CPU modules).

    Returns:
        bool: whether the config was changed for CPU.
    """
    if torch.cuda.is_available():
        return False
    for key in list(cfg.keys()):
        sync_bn_to_bn(cfg[key])
    cfg.pop('sync_bn', None)
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})
    env_cfg['dist_cfg']['backend'] = 'gloo'
    if cfg.get('launcher', 'none') == 'none':
        return True
    import torch.distributed as dist

    if not dist.is_initialized():
        _set_dist_env_from(cfg.launcher)
        kwargs = {
            k: v for k, v in env_cfg['dist_cfg'].items() if k != 'backend'
        }
        if isinstance(kwargs.get('timeout'), (int, float)):
            from datetime import timedelta

            kwargs['timeout'] = timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault(
        'find_unused_parameters', cfg.get('find_unused_parameters', False)
    )
    wrapper['device_ids'] = None  # CPU module
    cfg.model_wrapper_cfg = wrapper
    return True


# --------------------------------------------------------------------------
# Missing files
# --------------------------------------------------------------------------
def _is_remote(path: str) -> bool:
    return '://' in path


def _datasets(dataset_cfg: Any) -> Iterable[Dict]:
    """The leaf dataset configs inside wrappers (Concat/Repeat/...)."""
    if not isinstance(dataset_cfg, dict):
        return
    if 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from _datasets(sub)
    elif isinstance(dataset_cfg.get('dataset'), dict):
        yield from _datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def dataset_paths(dataset_cfg: Dict) -> List[Tuple[str, str]]:
    """``(path, kind)`` pairs a dataset config needs; kind is ``'file'`` or
    ``'dir'``."""
    root = dataset_cfg.get('data_root') or ''
    if not isinstance(root, str) or _is_remote(root):
        return []
    needed = []
    ann = dataset_cfg.get('ann_file') or ''
    if isinstance(ann, str) and ann and not _is_remote(ann):
        needed.append((osp.join(root, ann), 'file'))
    prefix = dataset_cfg.get('data_prefix')
    prefixes = prefix.values() if isinstance(prefix, dict) else [prefix]
    dirs = [p for p in prefixes if isinstance(p, str) and p]
    if not dirs and isinstance(dataset_cfg.get('split'), str):
        dirs = [dataset_cfg['split']]  # mmpretrain ImageNet(split=...)
    needed += [(osp.join(root, d), 'dir') for d in dirs]
    if not needed and root:
        needed.append((root, 'dir'))
    return needed


def _layout_tree(paths: List[Tuple[str, str]]) -> str:
    """An ASCII tree of the expected files and folders."""
    tree: Dict = {}
    for path, kind in paths:
        parts = [p for p in osp.normpath(path).split(os.sep) if p]
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
        if kind == 'dir':
            node.setdefault('...', {})
    lines: List[str] = []

    def walk(node: Dict, indent: str) -> None:
        items = sorted(node.items(), key=lambda kv: kv[0] == '...')
        for i, (name, child) in enumerate(items):
            last = i == len(items) - 1
            is_dir = bool(child)
            lines.append(
                f'{indent}{"└── " if last else "├── "}{name}'
                f'{"/" if is_dir else ""}'
            )
            walk(child, indent + ('    ' if last else '│   '))

    walk(tree, '  ')
    return '\n'.join(lines)


def check_data(cfg: Config, phases: Iterable[str]) -> None:
    """Exit with the expected folder layout when dataset files are missing.

    Args:
        cfg: the config (after ``--cfg-options``).
        phases: e.g. ``('train', 'val')``: checks ``{phase}_dataloader``
            and the ``ann_file`` of ``{phase}_evaluator``.
    """
    expected: List[Tuple[str, str]] = []
    for phase in phases:
        loader_cfg = cfg.get(f'{phase}_dataloader')
        if not loader_cfg:
            continue
        for ds in _datasets(loader_cfg.get('dataset')):
            expected += dataset_paths(ds)
        evaluators = cfg.get(f'{phase}_evaluator') or []
        if isinstance(evaluators, dict):
            evaluators = [evaluators]
        for ev in evaluators:
            ann = ev.get('ann_file') if isinstance(ev, dict) else None
            if isinstance(ann, str) and ann and not _is_remote(ann):
                expected.append((ann, 'file'))
    expected = list(dict.fromkeys(expected))
    missing = [
        p
        for p, kind in expected
        if not (osp.isfile(p) if kind == 'file' else osp.isdir(p))
    ]
    if not missing:
        return
    fail(
        'Dataset not found. Missing:\n'
        + '\n'.join(f'  {p}' for p in missing)
        + f'\n(relative paths are from {os.getcwd()})\n'
        'Expected layout:\n'
        + _layout_tree(expected)
        + '\nDownload/prepare the dataset into that layout (a symlink to '
        'an existing copy is fine), or point the config elsewhere, e.g.\n'
        '  --cfg-options train_dataloader.dataset.data_root=PATH '
        'val_dataloader.dataset.data_root=PATH ...'
    )


def check_pretrained(cfg: Config) -> None:
    """Exit with instructions when a local ``Pretrained`` file is absent,
    empty, truncated or an HTML page."""
    for path in local_pretrained_checkpoints(cfg.get('model')):
        if not osp.isfile(path):
            fail(missing_pretrained_message('model', path))
        try:
            quick_check(path, 'pretrained checkpoint')
        except CheckpointError as e:
            fail(str(e))


def check_checkpoint(path: Optional[str]) -> None:
    """Exit when a local checkpoint given on the command line is absent,
    empty, truncated or an HTML page (:func:`~projects.van_lska.weights.
    coverage.quick_check`)."""
    if path and not _is_remote(path):
        try:
            quick_check(path)
        except CheckpointError as e:
            fail(str(e))


# --------------------------------------------------------------------------
# What tools/train.py and tools/test.py share
# --------------------------------------------------------------------------
def add_common_args(parser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local_rank`` (mmdet's)."""
    from mmengine.config import DictAction

    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher',
    )
    # torch.distributed.launch passes `--local-rank` (torch >= 2.0).
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_common(parser, argv=None):
    """Parse ``argv`` and export ``LOCAL_RANK`` as the launchers expect."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(
    config: str,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    work_dir: Optional[str] = None,
) -> Config:
    """The config with the command line applied (as mmdet's tools do).

    ``work_dir``: the argument > the config's > ``./work_dirs/CONFIG_NAME``
    (each run logs into a timestamped sub-folder; nothing is overwritten).
    """
    cfg = read_config(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        try:
            cfg.merge_from_dict(cfg_options)
        except (TypeError, KeyError, ValueError) as e:
            raise UserError(f'--cfg-options: {e}') from None
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join(
            './work_dirs', osp.splitext(osp.basename(config))[0]
        )
    return cfg


def prepare_runtime(cfg: Config, scope: str) -> None:
    """Register ``scope``'s modules and adapt ``cfg`` to this machine;
    crash-safe checkpoints (:func:`~projects.van_lska.engine.checkpoint_hook.
    use_atomic_checkpoints`) and DataLoader workers that die with the
    trainer (:func:`~projects.van_lska.engine.shutdown.
    guard_dataloader_workers`), set here rather than in the configs."""
    register_codebase(scope)
    use_atomic_checkpoints(cfg)
    guard_dataloader_workers(cfg)
    if scope == 'mmdet':
        from mmdet.utils import setup_cache_size_limit_of_dynamo

        setup_cache_size_limit_of_dynamo()
    adapt_to_cpu(cfg)
