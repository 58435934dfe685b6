# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""tools/analysis_tools/robustness.py and its library.

* the mCE on constructed accuracies, computed by hand from the ImageNet-C
  definition;
* the 200-class mapping of ImageNet-A/-R on constructed logits and end to
  end, with a 1000-class classifier whose head is set so that its
  prediction is known;
* end to end on a tiny two-class data set made here: a VAN-LSKA classifier
  (our ImageNet config, shrunk) trained for a few seconds, then all 15
  corruptions x 5 severities: top-1 in [0, 1], severity 5 not better than
  clean on average, the JSON's mean error / CE / mCE consistent with its
  top-1 numbers, reruns identical (seeded corruptions).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from projects.van_lska.analysis.imagenet_classes import (
    IMAGENET_A_INDICES,
    IMAGENET_R_INDICES,
    WNIDS,
)
from projects.van_lska.analysis.robustness import (
    ALEXNET_ERRORS,
    CORRUPTIONS,
    ImageCorruption,
    mean_corruption_error,
    subset_predictions,
)

TOOL = 'tools/analysis_tools/robustness.py'
TINY = dict(
    embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], mlp_ratios=[2] * 4
)


def test_class_lists_have_the_published_shape():
    assert len(WNIDS) == 1000 and len(set(WNIDS)) == 1000
    assert list(WNIDS) == sorted(WNIDS)  # the standard class order
    assert WNIDS[0] == 'n01440764' and WNIDS[-1] == 'n15075141'
    for indices in (IMAGENET_A_INDICES, IMAGENET_R_INDICES):
        assert len(indices) == 200
        assert list(indices) == sorted(set(indices))
        assert 0 <= indices[0] and indices[-1] < 1000
    # first entries of the authors' lists: thousand_k_to_200 maps 6 -> 0
    # (natural-adv-examples); imagenet_r_wnids holds n01443537 (index 1)
    assert IMAGENET_A_INDICES[:3] == (6, 11, 13)
    assert WNIDS[IMAGENET_R_INDICES[0]] == 'n01443537'


def test_mce_on_a_constructed_case():
    # gaussian_noise: top-1 0.5 .. 0.1 -> errors 0.5 .. 0.9, mean 0.7
    top1 = {'gaussian_noise': {1: 0.5, 2: 0.4, 3: 0.3, 4: 0.2, 5: 0.1}}
    # every other corruption: error exactly half of AlexNet's, all severities
    for name in CORRUPTIONS[1:]:
        top1[name] = {s: 1 - ALEXNET_ERRORS[name] / 2 for s in range(1, 6)}
    out = mean_corruption_error(top1)
    ce_gauss = 0.7 / 0.886428
    assert out['corruptions']['gaussian_noise']['mean_error'] == (
        pytest.approx(0.7)
    )
    assert out['corruptions']['gaussian_noise']['ce'] == pytest.approx(
        ce_gauss
    )
    assert out['mce'] == pytest.approx((ce_gauss + 14 * 0.5) / 15)
    assert out['mce_complete']
    errors = [0.7] + [ALEXNET_ERRORS[n] / 2 for n in CORRUPTIONS[1:]]
    assert out['mean_error'] == pytest.approx(sum(errors) / 15)


def test_mce_needs_all_severities_and_flags_missing_corruptions():
    four = {'snow': {s: 0.5 for s in (1, 2, 3, 4)}}
    out = mean_corruption_error(four)
    assert 'ce' not in out['corruptions']['snow'] and out['mce'] is None
    some = {n: {s: 0.5 for s in range(1, 6)} for n in CORRUPTIONS[:3]}
    some['spatter'] = {s: 0.5 for s in range(1, 6)}  # held out: no CE
    out = mean_corruption_error(some)
    assert not out['mce_complete']
    assert 'ce' not in out['corruptions']['spatter']
    assert out['mce'] == pytest.approx(
        sum(0.5 / ALEXNET_ERRORS[n] for n in CORRUPTIONS[:3]) / 3
    )


def test_subset_arg_max_maps_200_classes_to_1000_logits():
    logits = torch.zeros(2, 1000)
    logits[:, 0] = 5.0  # tench: in neither subset
    logits[0, 6] = 4.0  # stingray: ImageNet-A and -R
    logits[1, 1] = 3.0  # goldfish: ImageNet-R only
    logits[1, 11] = 2.0  # goldfinch: ImageNet-A only
    assert subset_predictions(logits, None).tolist() == [0, 0]
    assert subset_predictions(logits, IMAGENET_A_INDICES).tolist() == [6, 11]
    assert subset_predictions(logits, IMAGENET_R_INDICES).tolist() == [6, 1]


@pytest.mark.parametrize(
    'name', ['gaussian_noise', 'impulse_noise', 'glass_blur', 'snow']
)
def test_corruption_is_seeded_per_image_and_leaves_global_rng_alone(name):
    rng = np.random.RandomState(0)
    img = rng.randint(0, 256, (40, 48, 3)).astype(np.uint8)
    step = ImageCorruption(name, 3, seed=0)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = step(dict(img=img.copy(), sample_idx=4))['img']
    assert (np.random.get_state()[1] == state).all()
    b = step(dict(img=img.copy(), sample_idx=4))['img']
    c = step(dict(img=img.copy(), sample_idx=5))['img']
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a, img)
    with pytest.raises(ValueError, match='at least 32 x 32'):
        step(dict(img=img[:20], sample_idx=0, img_path='x.png'))


def _tiny_config(repo: Path, out: Path, num_classes: int) -> Path:
    """configs/van_lska_b0_in1k.py with a tiny backbone, ``num_classes``
    and a 64 x 64 test pipeline, dumped as a config file."""
    cfg = Config.fromfile(str(repo / 'configs' / 'van_lska_b0_in1k.py'))
    cfg.model.backbone.arch = TINY
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.model.head.in_channels = TINY['embed_dims'][-1]
    cfg.model.head.num_classes = num_classes
    cfg.model.head.loss = dict(type='CrossEntropyLoss')
    cfg.model.train_cfg = None  # no Mixup/CutMix for the quick training
    cfg.data_preprocessor.num_classes = num_classes
    cfg.test_dataloader.dataset.pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=64, edge='short'),
        dict(type='CenterCrop', crop_size=64),
        dict(type='PackInputs'),
    ]
    path = out / f'tiny_cls_{num_classes}.py'
    cfg.dump(str(path))
    return path


def _build(config: Path):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import projects.van_lska  # noqa: F401

    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(config))
    # as mmengine's Runner and mmpretrain's get_model do
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    return MODELS.build(cfg.model)


def _stripes(rng, vertical: bool, size: int = 72) -> np.ndarray:
    """Stripes of a random period, phase and colours, plus noise."""
    period = rng.randint(6, 13)
    phase = rng.randint(period)
    t = (np.arange(size) + phase) % period < period // 2
    mask = np.tile(t[None, :] if vertical else t[:, None], (1, 1))
    mask = np.broadcast_to(mask, (size, size))
    fg, bg = rng.randint(0, 256, 3), rng.randint(0, 256, 3)
    while np.abs(fg.astype(int) - bg).sum() < 150:
        fg, bg = rng.randint(0, 256, 3), rng.randint(0, 256, 3)
    img = np.where(mask[..., None], fg, bg).astype(float)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write_stripes(root: Path, n: int, seed: int) -> None:
    rng = np.random.RandomState(seed)
    for name in ('horizontal', 'vertical'):
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = _stripes(rng, name == 'vertical')
            Image.fromarray(img).save(root / name / f'{i:03d}.png')


def _train(model, root: Path, config: Path, steps: int = 150) -> None:
    """A few AdamW steps on the images of ``root`` (test pipeline)."""
    from mmengine.dataset import pseudo_collate
    from mmpretrain.structures import DataSample

    from projects.van_lska.analysis.robustness import test_pipeline

    pipeline = test_pipeline(Config.fromfile(str(config)))
    samples = []
    for label, name in enumerate(('horizontal', 'vertical')):
        for path in sorted((root / name).glob('*.png')):
            data = pipeline(dict(img_path=str(path)))
            data['data_samples'] = DataSample().set_gt_label(label)
            samples.append(data)
    torch.manual_seed(0)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    order = torch.randperm(len(samples))
    for step in range(steps):
        idx = order[(step * 16) % len(samples) :][:16]
        if len(idx) < 16:
            idx = torch.randperm(len(samples))[:16]
        batch = model.data_preprocessor(
            pseudo_collate([samples[i] for i in idx]), True
        )
        loss = model(**batch, mode='loss')['loss']
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()


@pytest.mark.slow
def test_corruptions_end_to_end_on_a_trained_tiny_classifier(
    repo, tmp_path, run_tool, one_thread
):
    _write_stripes(tmp_path / 'train', 48, seed=0)
    _write_stripes(tmp_path / 'val', 8, seed=1)
    config = _tiny_config(repo, tmp_path, 2)
    torch.manual_seed(0)
    model = _build(config)
    model.init_weights()
    _train(model, tmp_path / 'train', config)
    ckpt = tmp_path / 'tiny.pth'
    classes = ['horizontal', 'vertical']
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': {'dataset_meta': {'classes': classes}},
        },
        ckpt,
    )
    out = tmp_path / 'robustness.json'
    args = [
        TOOL,
        config,
        ckpt,
        '--val-dir',
        tmp_path / 'val',
        '--device',
        'cpu',
        '--num-workers',
        '0',
        '--batch-size',
        '16',
    ]
    proc = run_tool([*args, '--json', out])
    assert proc.returncode == 0, proc.output
    result = json.loads(out.read_text())
    c = result['imagenet_c']
    assert c['images'] == 16 and c['label_rule'] == "the model's classes"
    assert c['clean_top1'] >= 0.75, c['clean_top1']  # better than chance
    per = c['corruptions']
    assert list(per) == list(CORRUPTIONS)
    s5 = []
    for name, e in per.items():
        top1 = [e['top1'][str(s)] for s in range(1, 6)]
        assert all(0.0 <= t <= 1.0 for t in top1)
        assert e['mean_error'] == pytest.approx(1 - np.mean(top1))
        assert e['ce'] == pytest.approx(e['mean_error'] / ALEXNET_ERRORS[name])
        s5.append(top1[-1])
    assert np.mean(s5) <= c['clean_top1']
    assert c['mce_complete']
    assert c['mce'] == pytest.approx(np.mean([e['ce'] for e in per.values()]))
    assert c['mean_error'] == pytest.approx(
        np.mean([e['mean_error'] for e in per.values()])
    )
    assert 'mCE:' in proc.stdout and 'gaussian_noise' in proc.stdout
    # the JSON is not replaced without --force; a rerun is identical
    before = out.read_text()
    proc = run_tool([*args, '--json', out, '--corruptions', 'snow'])
    assert proc.returncode != 0 and '--force' in proc.output
    assert out.read_text() == before
    again = tmp_path / 'again.json'
    proc = run_tool(
        [*args, '--json', again, '--corruptions', 'snow', 'glass_blur']
    )
    assert proc.returncode == 0, proc.output
    rerun = json.loads(again.read_text())['imagenet_c']['corruptions']
    for name in ('snow', 'glass_blur'):
        assert rerun[name]['top1'] == per[name]['top1']


@pytest.mark.slow
def test_shifted_sets_end_to_end_with_a_known_prediction(
    repo, tmp_path, run_tool
):
    """A 1000-class classifier whose logits are its head's bias: tench (0)
    highest, stingray (6, in -A and -R) second, goldfish (1, -R only)
    third. -A and -R are scored over their 200 classes, -Sketch 1000-way."""
    config = _tiny_config(repo, tmp_path, 1000)
    model = _build(config)
    model.init_weights()
    with torch.no_grad():
        model.head.fc.weight.zero_()
        model.head.fc.bias.zero_()
        model.head.fc.bias[[0, 6, 1]] = torch.tensor([3.0, 2.0, 1.0])
    ckpt = tmp_path / 'biased.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    rng = np.random.RandomState(0)

    def folder(name, counts):
        for wnid_index, n in counts.items():
            d = tmp_path / name / WNIDS[wnid_index]
            d.mkdir(parents=True)
            for i in range(n):
                img = rng.randint(0, 256, (40, 50, 3)).astype(np.uint8)
                Image.fromarray(img).save(d / f'{i}.jpg')
        return tmp_path / name

    a = folder('imagenet-a', {6: 2, 11: 1})  # predicted 6: 2 of 3
    r = folder('imagenet-r', {6: 1, 1: 3})  # predicted 6: 1 of 4
    sketch = folder('sketch', {0: 2, 6: 2})  # predicted 0: 2 of 4
    val = folder('val', {0: 1, 1: 1})  # wnid folders, 1000-way: 1 of 2
    proc = run_tool(
        [
            TOOL,
            config,
            ckpt,
            '--imagenet-a',
            a,
            '--imagenet-r',
            r,
            '--imagenet-sketch',
            sketch,
            '--val-dir',
            val,
            '--corruptions',
            '--device',
            'cpu',
            '--num-workers',
            '0',
            '--json',
            tmp_path / 'out.json',
        ]
    )
    assert proc.returncode == 0, proc.output
    result = json.loads((tmp_path / 'out.json').read_text())
    shifted = result['shifted']
    assert shifted['imagenet_a']['top1'] == pytest.approx(2 / 3)
    assert shifted['imagenet_a']['scored_over'] == 200
    assert shifted['imagenet_r']['top1'] == pytest.approx(1 / 4)
    assert shifted['imagenet_sketch']['top1'] == pytest.approx(2 / 4)
    assert shifted['imagenet_sketch']['scored_over'] == 1000
    assert result['imagenet_c']['label_rule'] == 'ImageNet wnids'
    assert result['imagenet_c']['clean_top1'] == pytest.approx(1 / 2)
    assert 'corruptions' not in result['imagenet_c']
    assert 'ImageNet-A' in proc.stdout
    # a folder that is not an ImageNet-A class is named
    bad = folder('bad-a', {0: 1})
    proc = run_tool([TOOL, config, ckpt, '--imagenet-a', bad])
    assert proc.returncode != 0
    assert WNIDS[0] in proc.output and 'ImageNet-A' in proc.output
