# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The ten public ADE20K VAN-LKA segmentors (facts section 9) in the model
zoo: metafile entries, the new B4-B6 UperNet configs, and the model-zoo path
``mim download`` -> ``download_checkpoint.py`` -> ``tools/test.py``.

No file is downloaded from the internet. The checkpoints of these tests are
made here in the layout of the public files: mmseg ``projects/van``'s
segmentors rebuilt from the installed mmseg's own classes
(:mod:`projects.van_lska.testing.mmseg_van`, independent of our backbone and
configs), saved as ``{'meta', 'state_dict'}`` under the public name pattern
with the sha256 prefix of their bytes. Real B0-B6 networks are large, so the
files of the real archs are *compact*: every tensor has its real shape and
dtype but holds one random value per output channel, broadcast (a stride-0
view, a few kB per file); a tiny arch with fully random weights checks
outputs against the reference.
"""

import hashlib
import re
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from projects.van_lska.apis.config import REPO_ROOT as REPO
from projects.van_lska.apis.config import sync_bn_to_bn
from projects.van_lska.testing.loopback import LoopbackServer
from projects.van_lska.testing.mmseg_van import (
    public_checkpoint,
)
from projects.van_lska.testing.randomize import randomize_

pytestmark = pytest.mark.usefixtures('one_thread')

BASE = 'https://download.openmmlab.com/mmsegmentation/v0.5/van_3rdparty/'
_ADE = '3rdparty_512x512-ade20k_20230522'
#: Facts section 9, transcribed: config -> (file name, published mIoU).
PUBLIC: Dict[str, tuple] = {
    'upernet_van_lka_b2': (
        f'van-b2-in1kpre_upernet_{_ADE}-19c58aee.pth',
        49.35,
    ),
    'upernet_van_lka_b3': (
        f'van-b3-in1kpre_upernet_{_ADE}-653bd6b7.pth',
        49.71,
    ),
    'upernet_van_lka_b4': (
        f'van-b4-in1kpre_upernet_{_ADE}-653bd6b7.pth',
        51.56,
    ),
    'upernet_van_lka_b4_in22k': (
        f'van-b4-in22kpre_upernet_{_ADE}-4a4d744a.pth',
        52.61,
    ),
    'upernet_van_lka_b5_in22k': (
        f'van-b5-in22kpre_upernet_{_ADE}-5bb6f2b4.pth',
        53.11,
    ),
    'upernet_van_lka_b6_in22k': (
        f'van-b6-in22kpre_upernet_{_ADE}-e226b363.pth',
        54.25,
    ),
    'fpn_van_lka_b0': (f'van-b0-in1kpre_fpn_{_ADE}-75a76298.pth', 38.65),
    'fpn_van_lka_b1': (f'van-b1-in1kpre_fpn_{_ADE}-104499ff.pth', 43.22),
    'fpn_van_lka_b2': (f'van-b2-in1kpre_fpn_{_ADE}-7074e6f8.pth', 46.84),
    'fpn_van_lka_b3': (f'van-b3-in1kpre_fpn_{_ADE}-2c3b7f5e.pth', 48.32),
}
#: The new configs: VAN-Seg's B4-B6 UperNet recipes.
NEW = {
    'upernet_van_lka_b4': dict(
        arch='b4', drop_path=0.4, batch=4, init='van-b4_3rdparty_20230522'
    ),
    'upernet_van_lka_b4_in22k': dict(
        arch='b4', drop_path=0.4, batch=4, init='van-b4-in22k_3rdparty'
    ),
    'upernet_van_lka_b5_in22k': dict(
        arch='b5', drop_path=0.4, batch=2, init='van-b5-in22k_3rdparty'
    ),
    'upernet_van_lka_b6_in22k': dict(
        arch='b6', drop_path=0.5, batch=2, init='van-b6-in22k_3rdparty'
    ),
}


def parse(config: str) -> tuple:
    """``'upernet_van_lka_b4_in22k'`` -> ``('upernet', 'b4', 'in22k')``."""
    parts = config.split('_')
    return parts[0], parts[3], parts[4] if len(parts) > 4 else 'in1k'


def load_entries() -> Dict[str, Dict]:
    from projects.van_lska.apis.metafiles import load_models

    return load_models(REPO / 'model-index.yml')


def load(config: str) -> Config:
    return Config.fromfile(str(REPO / 'configs' / f'{config}.py'))


def build_ours(cfg: Config) -> torch.nn.Module:
    """The segmentor of ``cfg`` on the CPU (BN for SyncBN, no init)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    sync_bn_to_bn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    return MODELS.build(cfg.model).eval()


def strict_load(model: torch.nn.Module, path: Path) -> Dict[str, int]:
    """Load ``path`` with mmengine's ``load_checkpoint(strict=True)`` (the
    runner's loader) and count: tensors in the file, model tensors,
    missing (never filled), unexpected."""
    state = torch.load(path, map_location='cpu')['state_dict']
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    own = model.state_dict()
    counts = dict(
        file=len(state),
        model=len(own),
        missing=len(set(own) - _converted_names(state)),
        unexpected=len(_converted_names(state) - set(own)),
    )
    print(f'{path.name}: {counts}')
    return counts


def _converted_names(state: Dict) -> set:
    """The file's key names in our backbone's naming."""
    from projects.van_lska.weights import to_ours

    backbone = {
        k[len('backbone.') :]: v
        for k, v in state.items()
        if k.startswith('backbone.')
    }
    names = {'backbone.' + k for k in to_ours(backbone)}
    return names | {k for k in state if not k.startswith('backbone.')}


# ------------------------------------------------------------- metafiles
def test_each_public_file_is_the_weights_of_its_config():
    entries = load_entries()
    for config, (name, miou) in PUBLIC.items():
        entry = entries[config]
        assert entry['Config'] == f'configs/{config}.py'
        assert entry['Weights'] == BASE + name
        (result,) = entry['Results']
        assert result == {
            'Task': 'Semantic Segmentation',
            'Dataset': 'ADE20K',
            'Metrics': {'mIoU': miou},
        }
        source = entry['Converted From']
        assert source['Code'] == (
            'https://github.com/Visual-Attention-Network/VAN-Segmentation'
        )
        assert source['Conversion'].endswith(
            'mmsegmentation/tree/main/projects/van'
        )
    with_weights = {
        n
        for n, e in entries.items()
        if 'Weights' in e and n.startswith(('fpn_', 'upernet_'))
    }
    assert with_weights == set(PUBLIC)  # no LSKA or other seg entry has any


def test_only_the_b3_b4_upernet_names_share_a_suffix():
    """The downloader's list of names whose suffix cannot identify their
    content is exactly the set of model-zoo names that share one."""
    from projects.van_lska.weights.download import (
        SHARED_SUFFIX_NAMES,
        expected_hash,
    )

    by_suffix: Dict[str, set] = {}
    for entry in load_entries().values():
        if 'Weights' in entry:
            name = entry['Weights'].rsplit('/', 1)[1]
            by_suffix.setdefault(expected_hash(name), set()).add(name)
    shared = set().union(*(n for n in by_suffix.values() if len(n) > 1))
    assert (
        shared
        == set(SHARED_SUFFIX_NAMES)
        == {
            PUBLIC['upernet_van_lka_b3'][0],
            PUBLIC['upernet_van_lka_b4'][0],
        }
    )


def test_download_tool_resolves_the_ten_names():
    from projects.van_lska.apis.model_zoo import resolve

    for config, (name, _) in PUBLIC.items():
        assert resolve(config) == BASE + name


@pytest.mark.parametrize('config', sorted(NEW))
def test_new_config_recipe(config):
    """VAN-Seg's B4-B6 UperNet recipes; the rest is the family base's."""
    want = NEW[config]
    cfg = load(config)
    base = load('upernet_van_lka_b3')
    backbone = cfg.model.backbone
    assert backbone.type == 'VAN_LKA' and backbone.arch == want['arch']
    assert backbone.drop_path_rate == want['drop_path']
    url = backbone.init_cfg['checkpoint']
    assert url.startswith(BASE + want['init']) and url.endswith('.pth')
    from projects.van_lska.models.van import ARCH_SETTINGS

    dims = list(ARCH_SETTINGS[want['arch']]['embed_dims'])
    assert cfg.model.decode_head.in_channels == dims
    assert cfg.model.auxiliary_head.in_channels == dims[2]
    assert cfg.train_dataloader.batch_size == want['batch']  # x 8 GPUs
    assert cfg.auto_scale_lr.base_batch_size == want['batch'] * 8
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert cfg[key] == base[key], key  # AdamW 6e-5, 160k, warmup
    for key in ('channels', 'pool_scales', 'type'):
        assert cfg.model.decode_head[key] == base.model.decode_head[key]


# ---------------------------------------------- outputs and strict loading
@pytest.mark.parametrize('head', ['upernet', 'fpn'])
def test_same_outputs_as_mmseg_projects_van(head, tmp_path):
    """A tiny arch with every weight random: our config's segmentor, loaded
    from a file of the public layout, gives the reference's logits."""
    arch = dict(embed_dims=[16, 24, 32, 48], depths=[1, 1, 2, 1])
    path, reference = public_checkpoint(
        tmp_path, head, arch, channels=16, aux_channels=8, seed=1
    )
    cfg = load('upernet_van_lka_b2' if head == 'upernet' else 'fpn_van_lka_b0')
    cfg.model.backbone.arch = dict(arch, mlp_ratios=[8, 8, 4, 4])
    if head == 'upernet':
        cfg.model.decode_head.update(
            in_channels=arch['embed_dims'], channels=16
        )
        cfg.model.auxiliary_head.update(
            in_channels=arch['embed_dims'][2], channels=8
        )
    else:
        cfg.model.neck.update(in_channels=arch['embed_dims'], out_channels=32)
        cfg.model.decode_head.update(in_channels=[32] * 4, channels=16)
    ours = build_ours(cfg)
    randomize_(ours, seed=7, everything=True)  # nothing left from init
    counts = strict_load(ours, path)
    assert counts['missing'] == counts['unexpected'] == 0
    assert counts['file'] == counts['model']
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = reference(x, mode='tensor')
        got = ours(x, mode='tensor')
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


LAYOUT = [
    'fpn_van_lka_b0',
    'fpn_van_lka_b1',
    'fpn_van_lka_b2',
    'fpn_van_lka_b3',
    'upernet_van_lka_b2',
    'upernet_van_lka_b3',
    'upernet_van_lka_b4',
]


@pytest.mark.parametrize('config', LAYOUT)
def test_public_layout_loads_strictly(config, tmp_path):
    """The real arch: a file of the public layout fills every tensor of the
    config's segmentor, and nothing is left over."""
    head, arch, pretrain = parse(config)
    path, _ = public_checkpoint(
        tmp_path, head, arch, pretrain=pretrain, compact=True
    )
    counts = strict_load(build_ours(load(config)), path)
    assert counts['missing'] == counts['unexpected'] == 0
    assert counts['file'] == counts['model'] > 100


# -------------------------------------------------- new configs: training
def tiny_options(cfg: Config, data_root: Path, work_dir: Path) -> Config:
    """``cfg`` on the tiny ADE20K data: 32x32 crops, one iteration of 2
    images, one validation, no checkpoint, BN."""
    sync_bn_to_bn(cfg._cfg_dict)
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = (32, 32)
    cfg.work_dir = str(work_dir)
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    cfg.train_cfg.update(max_iters=1, val_interval=1)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(
            batch_size=2 if split == 'train' else 1,  # BN in the PPM: 2
            num_workers=0,
            persistent_workers=False,
        )
        loader.dataset.data_root = str(data_root)
        for t in loader.dataset.pipeline:
            if t['type'] in ('RandomResize', 'Resize'):
                t['scale'] = (64, 32)
            elif t['type'] == 'RandomCrop':
                t['crop_size'] = (32, 32)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize(
    'config',
    [
        'upernet_van_lka_b4_in22k',
        'upernet_van_lka_b5_in22k',
        'upernet_van_lka_b6_in22k',
    ],
)
def test_new_config_loads_public_layout_trains_and_evaluates(
    config, tiny_ade20k, tmp_path
):
    """The real network of the config: a file of the public layout loads
    strictly (``load_from``), then one training iteration and a validation
    run on tiny ADE20K data. (``upernet_van_lka_b4`` builds the same model
    as ``..._b4_in22k``: only the ImageNet checkpoint differs.)"""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    head, arch, pretrain = parse(config)
    path, _ = public_checkpoint(
        tmp_path, head, arch, pretrain=pretrain, compact=True
    )
    cfg = tiny_options(load(config), tiny_ade20k, tmp_path / 'work')
    cfg.load_from = str(path)

    class Record(Hook):
        def __init__(self) -> None:
            self.losses: List[float] = []
            self.metrics: Dict = {}

        def after_train_iter(self, runner, batch_idx, data_batch, outputs):
            self.losses.append(float(outputs['loss']))

        def after_val_epoch(self, runner, metrics=None):
            self.metrics.update(metrics or {})

    runner = Runner.from_cfg(cfg)
    record = Record()
    runner.register_hook(record, priority='LOWEST')
    runner.train()
    counts = strict_load(build_ours(load(config)), path)
    assert counts['missing'] == counts['unexpected'] == 0
    assert len(record.losses) == 1 and record.losses[0] > 0
    assert 0.0 <= record.metrics['mIoU'] <= 100.0
    if config == 'upernet_van_lka_b4_in22k':
        b4 = load('upernet_van_lka_b4').model
        b4.backbone.init_cfg = cfg.model.backbone.init_cfg = None
        b4_22k = load(config).model
        b4_22k.backbone.init_cfg = None
        assert b4 == b4_22k


# -------------------------------------- mim download -> tools/test.py (18)
def _redirect(real_url: str, served: Dict[str, str]) -> str:
    """The loopback URL standing in for ``real_url``: same path and name
    pattern, the test file's own hash suffix."""
    name = real_url.rsplit('/', 1)[1]
    stem = re.sub(r'-[0-9a-f]{8}\.pth$', '', name)
    (test_url,) = [u for n, u in served.items() if n.startswith(stem + '-')]
    return test_url


#: How ``tools/test.py`` and ``mim test`` report a checkpoint that fills
#: the whole model (:func:`~projects.van_lska.weights.coverage.check_covers`).
COVERED = (
    r'checkpoint {path} covers the model: (\d+) tensors loaded into '
    r'backbone \((\d+)\).*; missing: nothing; unused from the file: 0'
)


def _assert_refused(proc, local: Path, config: str, sha: str) -> str:
    """``proc`` (``tools/test.py`` or ``mim test``) refused ``local``, a
    file that does not match its name, before testing anything."""
    out = proc.output
    assert proc.returncode != 0, out[-3000:]
    message = re.search(
        rf'checkpoint {re.escape(str(local))} is not the model-zoo file it '
        rf'is named after \({re.escape(PUBLIC[config][0])}, {config}\'s '
        rf'weights\): sha256 {sha[:8]}\.\.\. does not match the '
        rf"'{local.name[-12:-4]}' in its name\.\n  mim download checks no "
        r'hash; fetch it again with: python tools/misc/'
        rf'download_checkpoint\.py {config} --dest '
        rf'{re.escape(str(local.parent.resolve()))}\n',
        out,
    )
    assert message, out[-3000:]
    # refused by the hook, before mmengine's loader read it, and no test
    assert 'Loads checkpoint by local backend' not in out
    assert not re.search(r'Iter\(test\) \[', out), out[-3000:]
    return message.group(0)


@pytest.mark.slow
@pytest.mark.parametrize(
    'config', ['upernet_van_lka_b4_in22k', 'fpn_van_lka_b0']
)
def test_mim_download_then_tools_test(
    config, tmp_path, tiny_ade20k, monkeypatch, run_tool
):
    """``mim download van-lska --config NAME --dest DIR`` (mim reads the URL
    from the metafile; the host is redirected to a loopback server that
    serves a file in the public format), the download tool checks what mim
    wrote, and ``tools/test.py`` evaluates it with every tensor loaded.

    For the FPN, the server first serves other bytes of the same length
    (``wrong``): mim writes them under the file's name without a check;
    ``tools/test.py`` and ``mim test mmseg`` (mmseg's own test tool, the
    config's ``CheckpointCoverageHook``) refuse the file, saying how to
    fetch it again; the download tool replaces it; then ``mim test`` reports
    every tensor loaded."""
    import importlib

    mim_download = importlib.import_module('mim.commands.download')
    head, arch, pretrain = parse(config)
    www = tmp_path / 'www'
    path, _ = public_checkpoint(
        www, head, arch, pretrain=pretrain, compact=True
    )
    real_name = PUBLIC[config][0]
    assert path.name != real_name
    assert path.name[:-13] == real_name[:-13]  # the same but for the hash
    assert (
        hashlib.sha256(path.read_bytes())
        .hexdigest()
        .startswith(path.name[-12:-4])
    )
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    dest = tmp_path / 'checkpoints'
    local = dest / path.name
    dumped = dest / f'{config}.py'
    options = [
        'model.backbone.init_cfg=None',
        f'test_dataloader.dataset.data_root={tiny_ade20k}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'test_dataloader.dataset.pipeline.1.scale=(128,96)',
    ]

    def mim_test(work: str):
        return run_tool(
            [sys.executable, '-m', 'mim', 'test', 'mmseg', dumped]
            + ['--checkpoint', local, '--work-dir', tmp_path / work]
            + ['--cfg-options', *options],
            env={'PAGER': 'cat'},
            timeout=900,
        )

    # the FPN: mim fetches bad bytes first ('wrong': reversed, same size)
    mode = 'wrong' if head == 'fpn' else 'good'
    with LoopbackServer(lifetime=900) as server:
        rel = 'mmsegmentation/v0.5/van_3rdparty/' + path.name
        server.files[rel] = path.read_bytes()
        served = {path.name: server.url(mode, rel)}
        real_info = mim_download.get_model_info
        seen = []

        def redirected(*args, **kwargs):
            info = real_info(*args, **kwargs)
            for row in info.values():
                if row.get('weight') == BASE + real_name:
                    seen.append(row['weight'])
                    row['weight'] = _redirect(row['weight'], served)
            return info

        monkeypatch.setattr(mim_download, 'get_model_info', redirected)
        files = mim_download.download('van-lska', [config], str(dest))
        assert seen == [BASE + real_name]  # the metafile's URL
        assert files == [path.name]
        assert 'VAN_LKA' in dumped.read_text()
        assert server.hits[f'/{mode}/{rel}'] == 1
        if mode == 'wrong':  # mim checked nothing: both tools refuse it
            bad = local.read_bytes()
            assert bad == path.read_bytes()[::-1]
            sha = hashlib.sha256(bad).hexdigest()
            proc = run_tool(
                ['tools/test.py', dumped, local]
                + ['--work-dir', tmp_path / 'work', '--cfg-options']
                + options,
                timeout=900,
            )
            print(_assert_refused(proc, local, config, sha))
            _assert_refused(mim_test('mim-bad'), local, config, sha)

        # the download tool checks the file mim wrote: a good one is kept
        # (no new request), a bad one moved aside and fetched again
        proc = run_tool(
            ['tools/misc/download_checkpoint.py', server.url('good', rel)]
            + ['--dest', dest, '--no-progress']
        )
        assert proc.returncode == 0, proc.output[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == str(local)
        assert local.read_bytes() == path.read_bytes()
        assert server.hits[f'/good/{rel}'] == 1  # by mim or by the tool
        if mode == 'wrong':
            assert (dest / (path.name + '.bad')).read_bytes() == bad

    proc = run_tool(
        ['tools/test.py', dumped, local, '--work-dir', tmp_path / 'work']
        + ['--cfg-options', *options],
        timeout=900,
    )
    out = proc.output
    assert proc.returncode == 0, out[-4000:]
    metric = re.search(r'Iter\(test\).* mIoU: ([\d.]+)', out)
    assert metric, out[-3000:]
    covered = re.search(COVERED.format(path=re.escape(str(local))), out)
    assert covered, out[-3000:]
    print(covered.group(0), f'mIoU {metric.group(1)}')
    assert f'Load checkpoint from {local}' in out
    assert 'missing keys in source state_dict' not in out
    assert 'unexpected key in source state_dict' not in out
    assert 'converted a checkpoint in the official format' in out
    counts = strict_load(build_ours(Config.fromfile(str(dumped))), local)
    assert counts['missing'] == counts['unexpected'] == 0
    if head == 'fpn':  # mim test: mmseg's own tools/test.py, same file
        proc = mim_test('mim')
        out = proc.output
        assert proc.returncode == 0, out[-4000:]
        assert 'Testing finished successfully' in out
        assert re.search(r'Iter\(test\).* mIoU: ([\d.]+)', out), out[-3000:]
        assert 'do not match exactly' not in out
        assert 'converted a checkpoint in the official format' in out
        # the config's CheckpointCoverageHook, on mim's --checkpoint
        mim_covered = re.search(
            COVERED.format(path=re.escape(str(local))), out
        )
        assert mim_covered, out[-3000:]
        assert mim_covered.group(0) == covered.group(0)
        assert int(covered.group(1)) > int(covered.group(2)) > 100
        assert out.count('covers the model') == 1
        print('mim test:', mim_covered.group(0))
