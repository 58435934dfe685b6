# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Bad inputs get one clear message, no traceback and no silent wrong result.

Each test is a row of the README's "Reliability" table: the tools are run
as a user would (their library entry points in this process, a few scripts
in a subprocess) on a tiny Semantic FPN config, with broken checkpoints,
configs, datasets and arguments; the test checks the exit status, what the
user is told, and that nothing was written or loaded.
"""

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

from projects.van_lska.apis.config import register_codebase, registry
from projects.van_lska.apis.convert import convert_file
from projects.van_lska.apis.errors import diagnose_data
from projects.van_lska.apis.inference import image_demo
from projects.van_lska.apis.quickstart import make_synthetic_data
from projects.van_lska.apis.test import run_test
from projects.van_lska.apis.train import (
    check_work_dir,
    resolve_auto_resume,
    run_train,
)
from projects.van_lska.datasets.synthetic_shapes import generate_dataset
from projects.van_lska.testing.fault_injection import tiny_fpn_config
from projects.van_lska.testing.tiny_data import make_tiny_ade20k

pytestmark = pytest.mark.slow  # builds runners; about a minute in all


def _model_state(cfg_file: Path, **backbone) -> dict:
    cfg = Config.fromfile(str(cfg_file))
    cfg.model.backbone.update(backbone)
    register_codebase('mmseg')
    torch.manual_seed(0)
    return registry('mmseg').build(cfg.model).state_dict()


@pytest.fixture(scope='module')
def env(repo, tiny_ade20k, tmp_path_factory) -> SimpleNamespace:
    """The tiny config and a collection of good and bad files."""
    root = tmp_path_factory.mktemp('bad_inputs')
    base = repo / 'configs' / 'fpn_van_lska_b0.py'
    cfg = root / 'tiny.py'
    cfg.write_text(tiny_fpn_config(base, tiny_ade20k, workers=0))
    deeper = root / 'deeper.py'
    deeper.write_text(
        tiny_fpn_config(base, tiny_ade20k, workers=0, depths=(2, 1, 1, 1))
    )
    sd = _model_state(cfg)
    ck = root / 'ckpt'
    ck.mkdir()

    def save(name, obj) -> Path:
        torch.save(obj, ck / name)
        return ck / name

    bare = {k[9:]: v for k, v in sd.items() if k.startswith('backbone.')}
    cls_sd = {k: v for k, v in sd.items() if k.startswith('backbone.')}
    cls_sd.update({'head.fc.weight': torch.zeros(3, 64)})
    files = SimpleNamespace(
        full=save('full.pth', {'state_dict': sd, 'meta': {}}),
        bare=save('bare_backbone.pth', {'state_dict': bare}),
        cls=save('classifier.pth', {'state_dict': cls_sd}),
        other=save(
            'resnet.pth',
            {
                'conv1.weight': torch.zeros(4, 3, 7, 7),
                'fc.bias': torch.zeros(2),
            },
        ),
        deeper=save(
            'deeper.pth', {'state_dict': _model_state(deeper), 'meta': {}}
        ),
        lka=save(
            'lka.pth',
            {'state_dict': _model_state(cfg, type='VAN_LKA', kernel_size=21)},
        ),
    )
    files.empty = ck / 'empty.pth'
    files.empty.touch()
    files.random = ck / 'random.pth'
    files.random.write_bytes(bytes(range(256)) * 20)
    files.html = ck / 'page.pth'
    files.html.write_text('<!DOCTYPE html><html><body>404</body></html>')
    files.truncated = ck / 'truncated.pth'
    data = files.full.read_bytes()
    files.truncated.write_bytes(data[: len(data) // 2])
    files.folder = ck / 'a_folder.pth'
    files.folder.mkdir()

    class Payload:  # what a malicious checkpoint would run when unpickled
        def __reduce__(self):
            return (os.system, (f'touch {root / "PWNED"}',))

    files.evil = save('evil.pth', {'state_dict': Payload()})
    return SimpleNamespace(root=root, cfg=cfg, files=files, ade=tiny_ade20k)


def _exit(capsys, fn, *args, **kwargs):
    """Run a tool entry point; returns ``(exit status, stderr+stdout)``."""
    try:
        fn(*args, **kwargs)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
            print(e.code)
    out = capsys.readouterr()
    return code, out.err + out.out


def _refused(capsys, fragments, fn, *args, **kwargs) -> str:
    code, text = _exit(capsys, fn, *args, **kwargs)
    assert code == 1, text[-2000:]
    for fragment in fragments:
        assert fragment in text, (fragment, text[-2000:])
    # (mmengine loggers of earlier tests write into closed capture streams:
    # "--- Logging error ---" and its traceback are the harness's, not the
    # tool's)
    assert text.count('Traceback') == text.count('--- Logging error ---')
    return text


# --------------------------------------------------------------------------
# Checkpoint files given to tools/test.py
# --------------------------------------------------------------------------
CHECKPOINT_CASES = {
    'empty': ['is empty (0 bytes)'],
    'random': ['is not a PyTorch checkpoint', 'Give a .pth file'],
    'truncated': ['is truncated', 'zip archive is missing'],
    'html': ['is an HTML/XML page', 'download the file again'],
    'folder': ['is a folder'],
    'evil': ['safe loading refuses', 'GLOBAL posix.system', 'nothing in it'],
    'bare': [
        'does not cover the model',
        'bare VAN backbone',
        'van_convert.py writes',
        'model.backbone.init_cfg.type=Pretrained',
    ],
    'cls': [
        'an mmpretrain classifier with a VAN backbone',
        'loaded:  backbone',
        'missing: neck (0 of 16), decode_head',
        'init_cfg',
    ],
    'other': ['another network: no VAN weights', 'loaded:  nothing'],
    'deeper': [
        'refusing to load a checkpoint of another arch',
        'the checkpoint has depths (2, 1, 1, 1)',
    ],
    'lka': ['refusing to load a checkpoint with LKA with kernel_size=21'],
}


@pytest.mark.parametrize('kind', sorted(CHECKPOINT_CASES))
def test_test_tool_refuses_checkpoint(env, capsys, tmp_path, kind):
    path = getattr(env.files, kind)
    _refused(
        capsys,
        CHECKPOINT_CASES[kind],
        run_test,
        str(env.cfg),
        str(path),
        work_dir=str(tmp_path),
    )
    assert not (env.root / 'PWNED').exists()


def test_test_tool_missing_checkpoint(env, capsys, tmp_path):
    _refused(
        capsys,
        ['checkpoint', 'nope.pth does not exist'],
        run_test,
        str(env.cfg),
        str(tmp_path / 'nope.pth'),
        work_dir=str(tmp_path),
    )


def test_allow_partial_loads_what_fits(env, capsys, tmp_path):
    code, text = _exit(
        capsys,
        run_test,
        str(env.cfg),
        str(env.files.cls),
        work_dir=str(tmp_path),
        allow_partial=True,
    )
    assert code == 0, text[-2000:]
    # ... but a file of which nothing fits is refused even then
    _refused(
        capsys,
        ['another network', 'loaded:  nothing'],
        run_test,
        str(env.cfg),
        str(env.files.other),
        work_dir=str(tmp_path),
        allow_partial=True,
    )


def test_full_checkpoint_is_accepted(env, capsys, tmp_path):
    code, text = _exit(
        capsys,
        run_test,
        str(env.cfg),
        str(env.files.full),
        work_dir=str(tmp_path),
    )
    assert code == 0, text[-2000:]


# --------------------------------------------------------------------------
# Checkpoints given to tools/train.py (init_cfg, load_from, --resume)
# --------------------------------------------------------------------------
def _with_pretrained(env, tmp_path, path) -> str:
    """A config whose backbone starts from ``path`` (``init_cfg``)."""
    cfg = tmp_path / 'pretrained.py'
    cfg.write_text(
        f"_base_ = ['{env.cfg}']\n"
        'model = dict(backbone=dict(init_cfg=dict(\n'
        f"    _delete_=True, type='Pretrained', checkpoint='{path}')))\n"
    )
    return str(cfg)


def test_pretrained_without_van_weights(env, capsys, tmp_path):
    _refused(
        capsys,
        ['holds no VAN backbone weights', 'conv1.weight', 'nothing was'],
        run_train,
        _with_pretrained(env, tmp_path, env.files.other),
        work_dir=str(tmp_path / 'w'),
    )
    assert not list((tmp_path / 'w').glob('*.pth'))


def test_pretrained_empty_file(env, capsys, tmp_path):
    _refused(
        capsys,
        ['pretrained checkpoint', 'is empty (0 bytes)'],
        run_train,
        _with_pretrained(env, tmp_path, env.files.empty),
        work_dir=str(tmp_path / 'w'),
    )


def test_load_from_classifier(env, capsys, tmp_path):
    _refused(
        capsys,
        ['does not cover the model', 'To start from it (load_from)'],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path / 'w'),
        cfg_options={'load_from': str(env.files.cls)},
    )


def test_work_dir_with_checkpoints(env, capsys, tmp_path):
    shutil.copy(env.files.full, tmp_path / 'iter_2.pth')
    before = sorted(os.listdir(tmp_path))
    _refused(
        capsys,
        ['already holds checkpoints of another run (iter_2.pth)', '--resume'],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path),
    )
    assert sorted(os.listdir(tmp_path)) == before
    check_work_dir(str(tmp_path), force=True)  # --force: allowed


@pytest.mark.parametrize('pointer', ['iter_4.pth', 'gone.pth'])
def test_resume_skips_an_incomplete_last_checkpoint(env, tmp_path, pointer):
    shutil.copy(env.files.full, tmp_path / 'iter_2.pth')
    shutil.copy(env.files.truncated, tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / pointer))
    cfg = Config(dict(work_dir=str(tmp_path), load_from=None, resume=True))
    resolve_auto_resume(cfg)
    assert cfg.load_from == str(tmp_path / 'iter_2.pth')


# --------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------
def test_config_syntax_error(env, capsys, tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{env.cfg}']\nmodel = dict(backbone=dict(\n")
    _refused(
        capsys,
        ['has a syntax error', f'{bad}, line 2', 'model = dict(backbone'],
        run_train,
        str(bad),
        work_dir=str(tmp_path / 'w'),
    )


def test_config_missing(env, capsys, tmp_path):
    _refused(
        capsys,
        ['config', 'nope.py does not exist'],
        run_train,
        str(tmp_path / 'nope.py'),
    )


def test_config_missing_base(env, capsys, tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text("_base_ = ['./no_such_base.py']\n")
    _refused(
        capsys,
        ['(_base_) does not exist', 'no_such_base.py'],
        run_train,
        str(bad),
    )


def test_config_name_error(env, capsys, tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{env.cfg}']\nx = undefined_name\n")
    _refused(
        capsys,
        ['could not be evaluated', "NameError: name 'undefined_name'"],
        run_train,
        str(bad),
    )


@pytest.mark.parametrize(
    'option, fragments',
    [
        (
            'model.backbone.norm_cfg.type=LN',
            ['ValueError: norm_cfg is a LayerNorm', 'pass only one'],
        ),
        (
            'model.backbone.arch.depths=[1,-1,1,1]',
            ['arch depths must be positive integers; got [1, -1, 1, 1]'],
        ),
        (
            'model.backbone.type=VAN_LSKAA',
            ['KeyError: VAN_LSKAA is not in the mmseg::model registry'],
        ),
    ],
)
def test_refused_setting(env, capsys, tmp_path, option, fragments):
    key, value = option.split('=')
    value = eval(value) if value.startswith('[') else value
    _refused(
        capsys,
        ['a setting was refused while building', *fragments],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path / 'w'),
        cfg_options={key: value},
    )


def test_cfg_options_type_clash(env, capsys, tmp_path):
    _refused(
        capsys,
        ['--cfg-options: init_cfg=', 'You may set `_delete_=True`'],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path / 'w'),
        cfg_options={'model.backbone.init_cfg': dict(type='Pretrained')},
    )


def test_amp_without_gpu(env, capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU: --amp is valid here')
    _refused(
        capsys,
        ['--amp (AmpOptimWrapper) needs a GPU', 'train without --amp'],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path / 'w'),
        amp=True,
    )


# --------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------
def test_empty_dataset(env, capsys, tmp_path):
    root = make_tiny_ade20k(tmp_path / 'ade', n_train=0, n_val=1)
    _refused(
        capsys,
        ['holds no images', 'images/training', 'no samples'],
        run_train,
        str(env.cfg),
        work_dir=str(tmp_path / 'w'),
        cfg_options={'train_dataloader.dataset.data_root': str(root)},
    )


@pytest.fixture(scope='module')
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('shapes') / 'data'
    generate_dataset(str(out), 0, 2, 2, (64, 64))
    return out


def _det_options(root: Path) -> dict:
    coco = str(root / 'coco') + '/'
    return {
        'train_dataloader.dataset.data_root': coco,
        'val_dataloader.dataset.data_root': coco,
        'test_dataloader.dataset.data_root': coco,
        'val_evaluator.ann_file': coco + 'annotations/instances_val.json',
        'test_evaluator.ann_file': coco + 'annotations/instances_val.json',
    }


@pytest.mark.parametrize(
    'content, fragments',
    [
        ('{"images": [{"id": 1,', ['is not valid JSON', 'line 1, column']),
        (
            '{"images": [], "annotations": [], "categories": []}',
            ['lists no images'],
        ),
    ],
)
def test_bad_annotation_json(
    env, repo, shapes, capsys, tmp_path, content, fragments
):
    root = tmp_path / 'data'
    shutil.copytree(shapes, root)
    ann = root / 'coco' / 'annotations' / 'instances_val.json'
    ann.write_text(content)
    config = repo / 'configs' / 'quickstart' / 'maskrcnn_van_lska_b0_shapes.py'
    _refused(
        capsys,
        [f'annotation file {ann}', *fragments],
        run_test,
        str(config),
        str(env.files.full),
        work_dir=str(tmp_path / 'w'),
        cfg_options=_det_options(root),
    )


def test_diagnose_data_finds_nothing_in_good_data(env):
    cfg = Config.fromfile(str(env.cfg))
    assert diagnose_data(cfg, ('train', 'test')) is None


# --------------------------------------------------------------------------
# The data generator
# --------------------------------------------------------------------------
def test_generator_refuses_a_foreign_folder(capsys, tmp_path):
    mine = tmp_path / 'photos'
    mine.mkdir()
    (mine / 'holiday.jpg').write_bytes(b'x')
    for force in (False, True):
        _refused(
            capsys,
            ['not empty and holds no synthetic shapes dataset', 'even'],
            make_synthetic_data,
            str(mine),
            0,
            2,
            1,
            (64, 64),
            force,
        )
    assert os.listdir(mine) == ['holiday.jpg']


def test_generator_replaces_only_with_force(capsys, tmp_path):
    out = tmp_path / 'shapes'
    generate_dataset(str(out), 0, 4, 2, (64, 64))
    _refused(
        capsys,
        ['already holds a synthetic shapes dataset', '--force'],
        make_synthetic_data,
        str(out),
        0,
        2,
        1,
        (64, 64),
    )
    assert len(list((out / 'ade' / 'images' / 'training').iterdir())) == 4
    code, text = _exit(
        capsys, make_synthetic_data, str(out), 0, 2, 1, (64, 64), True
    )
    assert code == 0, text
    # a smaller re-generation leaves no stale images of the old one
    assert len(list((out / 'ade' / 'images' / 'training').iterdir())) == 2
    assert len(list((out / 'coco' / 'train').iterdir())) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


@pytest.mark.parametrize(
    'argv, fragment',
    [
        (
            ['tools/quickstart.py', '--iters', '-5'],
            'argument --iters: must be a positive integer; got -5',
        ),
        (
            ['tools/misc/make_synthetic_data.py', '--num-train', '0'],
            'argument --num-train: must be a positive integer; got 0',
        ),
    ],
)
def test_negative_counts(run_tool, tmp_path, argv, fragment):
    proc = run_tool(argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert not any(tmp_path.iterdir())


# --------------------------------------------------------------------------
# Converter and demo
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    'kind, fragment',
    [
        ('other', 'is another network: no VAN weights'),
        ('empty', 'is empty (0 bytes)'),
        ('html', 'is an HTML/XML page'),
    ],
)
def test_convert_refuses(env, capsys, tmp_path, kind, fragment):
    dst = tmp_path / 'out.pth'
    _refused(
        capsys,
        ['source checkpoint', fragment],
        convert_file,
        str(getattr(env.files, kind)),
        str(dst),
        'ours',
        False,
    )
    assert not dst.exists() and not list(tmp_path.iterdir())


def test_demo_refuses_a_backbone_file(env, capsys, tmp_path):
    img = env.ade / 'images' / 'validation'
    _refused(
        capsys,
        ['does not cover the model', 'To run the demo'],
        image_demo,
        str(img),
        str(env.cfg),
        str(env.files.bare),
        str(tmp_path / 'out'),
    )
    assert not (tmp_path / 'out' / 'vis').exists()


def test_demo_missing_image(env, capsys, tmp_path):
    _refused(
        capsys,
        ['image', 'nope.jpg does not exist'],
        image_demo,
        str(tmp_path / 'nope.jpg'),
        str(env.cfg),
        str(env.files.full),
        str(tmp_path / 'out'),
    )
