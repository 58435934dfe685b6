# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Robustness of a classifier: ImageNet-C corruptions made on the fly and
the shifted ImageNet test sets (``tools/analysis_tools/robustness.py``).

**Corruptions.** The 15 ImageNet-C corruptions (Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019) at severities 1-5 are applied with the
``imagecorruptions`` package to every image of a class-folder validation set.
Each image goes through the config's test pipeline (resize, centre crop) and
is corrupted just before ``PackInputs``, i.e. on the crop the network sees,
as ImageNet-C corrupted the 224 x 224 centre crops. Unlike the released
ImageNet-C files, the result is not re-encoded as JPEG, so numbers are close
to, not identical with, an evaluation on the released set. The corruption
noise is seeded per (seed, corruption, severity, image): runs repeat exactly,
with any number of workers.

Reported per corruption ``c``: top-1 at each severity ``s``, the mean error
``E_c = mean_s (1 - top1_{c,s})`` and the corruption error
``CE_c = sum_s E_{c,s} / sum_s E^AlexNet_{c,s} = E_c / E^AlexNet_c``; the mCE
is the mean of ``CE_c`` over the 15 corruptions (the ImageNet-C paper's
definition), the *mean error* the mean of ``E_c``. CE needs all five
severities; the mCE all 15 corruptions (otherwise it is reported over the
evaluated ones and flagged ``mce_complete: false``).

**Shifted test sets.** ImageNet-A, ImageNet-R, ImageNet-Sketch and
Stylized-ImageNet are read from folders of class sub-folders named by the
ImageNet wnids. For the 200-class -A and -R the arg-max is taken over the
logits of their 200 classes only, as their authors' ``eval.py`` does
(:mod:`~projects.van_lska.analysis.imagenet_classes`); -Sketch and
Stylized-ImageNet are scored 1000-way. These need a 1000-class ImageNet
model.
"""

import inspect
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..apis.config import (
    codebase_of,
    drop_pretrained,
    register_codebase,
    registry,
)
from ..apis.files import write_text_atomic
from .imagenet_classes import IMAGENET_A_INDICES, IMAGENET_R_INDICES, WNIDS

#: Image files read from the class folders (case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')

#: The 15 ImageNet-C corruptions (the benchmark's order: noise, blur,
#: weather, digital).
CORRUPTIONS: Tuple[str, ...] = (
    'gaussian_noise',
    'shot_noise',
    'impulse_noise',
    'defocus_blur',
    'glass_blur',
    'motion_blur',
    'zoom_blur',
    'snow',
    'frost',
    'fog',
    'brightness',
    'contrast',
    'elastic_transform',
    'pixelate',
    'jpeg_compression',
)
#: ImageNet-C's four held-out corruptions (no AlexNet baseline, no CE).
EXTRA_CORRUPTIONS: Tuple[str, ...] = (
    'speckle_noise',
    'gaussian_blur',
    'spatter',
    'saturate',
)
SEVERITIES: Tuple[int, ...] = (1, 2, 3, 4, 5)

#: AlexNet's top-1 error on each corruption, averaged over the five
#: severities: the mCE's normaliser (Hendrycks & Dietterich, ICLR 2019).
#: The six-digit values are ``ALEXNET_ERR`` of ``imagenet.py`` in
#: google-research/augmix (Hendrycks et al., ICLR 2020), which states
#: "Raw AlexNet errors taken from" hendrycks/robustness; mmcls 1.x's
#: ``CorruptionError`` metric uses the same numbers.
ALEXNET_ERRORS: Dict[str, float] = {
    'gaussian_noise': 0.886428,
    'shot_noise': 0.894468,
    'impulse_noise': 0.922640,
    'defocus_blur': 0.819880,
    'glass_blur': 0.826268,
    'motion_blur': 0.785948,
    'zoom_blur': 0.798360,
    'snow': 0.866816,
    'frost': 0.826572,
    'fog': 0.819324,
    'brightness': 0.564592,
    'contrast': 0.853204,
    'elastic_transform': 0.646056,
    'pixelate': 0.717840,
    'jpeg_compression': 0.606500,
}


@dataclass(frozen=True)
class ShiftedSet:
    """A shifted ImageNet test set: its name and, for the 200-class ones,
    the ImageNet-1K indices its arg-max is taken over."""

    name: str
    indices: Optional[Tuple[int, ...]] = None


#: Key (``--imagenet-a`` etc., JSON key) -> test set.
SHIFTED_SETS: Dict[str, ShiftedSet] = {
    'imagenet_a': ShiftedSet('ImageNet-A', IMAGENET_A_INDICES),
    'imagenet_r': ShiftedSet('ImageNet-R', IMAGENET_R_INDICES),
    'imagenet_sketch': ShiftedSet('ImageNet-Sketch'),
    'stylized_imagenet': ShiftedSet('Stylized-ImageNet'),
}


@dataclass
class LoadedModel:
    """A classifier built from a config, its checkpoint loaded."""

    model: torch.nn.Module
    cfg: object
    classes: Optional[Tuple[str, ...]]


def load_classifier(
    config: str,
    checkpoint: str,
    device: str = 'cpu',
    cfg_options: Optional[Dict] = None,
) -> LoadedModel:
    """Build an mmpretrain classifier from ``config`` and load
    ``checkpoint`` strictly (every tensor, or a clear error).

    The config's top-level ``data_preprocessor`` is used when the model has
    none, as mmengine's Runner and mmpretrain's ``get_model`` do; the
    backbone's ``Pretrained`` init is dropped (the checkpoint has the
    weights).

    Raises:
        FileNotFoundError: ``config`` or ``checkpoint`` is missing.
        ValueError: Not an mmpretrain config, or the checkpoint does not
            fit the model.
    """
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path} not found')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    codebase_of(cfg, ('mmpretrain',), ': robustness needs a classifier')
    register_codebase('mmpretrain')
    import projects.van_lska  # noqa: F401  (registers VAN_LKA/VAN_LSKA)

    if cfg.model.get('data_preprocessor') is None:
        cfg.model['data_preprocessor'] = cfg.get('data_preprocessor')
    drop_pretrained(cfg.model)
    model = registry('mmpretrain').build(cfg.model)
    try:
        ckpt = load_checkpoint(
            model, checkpoint, map_location='cpu', strict=True, logger='silent'
        )
    except RuntimeError as exc:
        raise ValueError(
            f'checkpoint {checkpoint} does not fit the model of {config}: '
            f'{exc}'
        ) from None
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    classes = (meta.get('dataset_meta') or {}).get('classes')
    model.to(device).eval()
    return LoadedModel(model, cfg, tuple(classes) if classes else None)


def test_pipeline(cfg):
    """The config's test pipeline (``test_dataloader.dataset.pipeline``)
    as an mmcv ``Compose`` on ``{'img_path': ...}``."""
    from mmcv.transforms import Compose

    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        raise ValueError(
            f'{cfg.filename}: no test_dataloader.dataset.pipeline'
        ) from None
    transforms = registry('mmpretrain', 'TRANSFORMS')
    return Compose([transforms.build(step) for step in steps])


def mean_corruption_error(
    top1: Dict[str, Dict[int, float]],
) -> Dict[str, object]:
    """Mean errors, CEs and the mCE from per-severity top-1 accuracies.

    Args:
        top1: ``{corruption: {severity: top-1 in [0, 1]}}``.

    Returns:
        dict: ``corruptions`` (per corruption: ``mean_error``, and with all
        five severities of one of the 15 corruptions ``alexnet_error`` and
        ``ce``), ``mean_error`` (mean over the corruptions), ``mce`` (mean
        CE over the corruptions that have one, ``None`` if none) and
        ``mce_complete`` (all 15 corruptions at all 5 severities).
    """
    per = {}
    for name, by_severity in top1.items():
        errors = [1.0 - by_severity[s] for s in sorted(by_severity)]
        entry = dict(mean_error=float(np.mean(errors)))
        if name in ALEXNET_ERRORS and set(by_severity) == set(SEVERITIES):
            entry['alexnet_error'] = ALEXNET_ERRORS[name]
            entry['ce'] = entry['mean_error'] / ALEXNET_ERRORS[name]
        per[name] = entry
    ces = [e['ce'] for e in per.values() if 'ce' in e]
    return dict(
        corruptions=per,
        mean_error=(
            float(np.mean([e['mean_error'] for e in per.values()]))
            if per
            else None
        ),
        mce=float(np.mean(ces)) if ces else None,
        mce_complete=len(ces) == len(CORRUPTIONS),
    )


def subset_predictions(
    logits: torch.Tensor, indices: Optional[Sequence[int]]
) -> torch.Tensor:
    """Arg-max class of ``(N, K)`` logits, over ``indices`` only if given
    (returned as indices into the ``K`` classes)."""
    if indices is None:
        return logits.argmax(dim=1)
    index = torch.as_tensor(list(indices), device=logits.device)
    return index[logits[:, index].argmax(dim=1)]


class ImageCorruption:
    """A pipeline step: one ImageNet-C corruption on ``results['img']``
    (BGR ``uint8``, as mmcv loads it), seeded by ``results['sample_idx']``.

    Args:
        corruption (str): A name of :data:`CORRUPTIONS` or
            :data:`EXTRA_CORRUPTIONS`.
        severity (int): 1-5.
        seed (int): Base seed of the corruption noise.
    """

    def __init__(self, corruption: str, severity: int, seed: int = 0):
        from imagecorruptions import corrupt, corruption_dict

        self._corrupt = corrupt
        self.corruption = corruption
        self.severity = severity
        self.seed = seed
        self._code = (CORRUPTIONS + EXTRA_CORRUPTIONS).index(corruption)
        # glass_blur (numba's own generator) and impulse_noise draw from a
        # fresh generator unless given a seed: pass them one
        params = inspect.signature(corruption_dict[corruption]).parameters
        self._takes_seed = 'seed' in params

    def __call__(self, results: Dict) -> Dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 32:
            raise ValueError(
                f'{results.get("img_path")}: corruptions need an RGB image '
                f'of at least 32 x 32 after the test pipeline; got shape '
                f'{img.shape}'
            )
        entropy = [self.seed, self._code, self.severity, results['sample_idx']]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        kwargs = dict(seed=seed) if self._takes_seed else {}
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            out = self._corrupt(
                np.ascontiguousarray(img[..., ::-1]),
                corruption_name=self.corruption,
                severity=self.severity,
                **kwargs,
            )
        finally:
            np.random.set_state(state)
        out = np.uint8(out)[..., ::-1]
        if out.shape != img.shape:
            raise RuntimeError(
                f'{self.corruption} changed the image shape from '
                f'{img.shape} to {out.shape}'
            )
        results['img'] = np.ascontiguousarray(out)
        return results

    def __repr__(self) -> str:
        return (
            f'ImageCorruption({self.corruption!r}, severity={self.severity}, '
            f'seed={self.seed})'
        )


def with_corruption(pipeline, corruption: ImageCorruption):
    """A copy of a test pipeline (mmcv ``Compose``) with ``corruption``
    inserted before its ``PackInputs``."""
    from mmcv.transforms import Compose

    steps = list(pipeline.transforms)
    packs = [
        i for i, t in enumerate(steps) if type(t).__name__ == 'PackInputs'
    ]
    if not packs:
        raise ValueError(
            'the test pipeline has no PackInputs step: cannot tell where the '
            'image is final; steps: '
            + ', '.join(type(t).__name__ for t in steps)
        )
    steps.insert(packs[-1], corruption)
    return Compose(steps)


def list_class_folder(
    root: str, max_per_class: Optional[int] = None
) -> List[Tuple[str, str]]:
    """``(image path, class folder name)`` of ``root/<class>/<images>``
    (sorted; images anywhere below the class folder).

    Raises:
        FileNotFoundError: ``root`` is missing, has no class folders, or a
            class folder has no image.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'{root}: no such folder')
    classes = sorted(
        d for d in os.listdir(root) if osp.isdir(osp.join(root, d))
    )
    if not classes:
        raise FileNotFoundError(
            f'{root}: expected one sub-folder per class '
            '(root/<class>/<image>), found none'
        )
    samples = []
    for name in classes:
        files = sorted(
            osp.join(dirpath, f)
            for dirpath, _, names in os.walk(osp.join(root, name))
            for f in names
            if f.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not files:
            raise FileNotFoundError(
                f'{osp.join(root, name)}: no images '
                f'({", ".join(IMAGE_EXTENSIONS)})'
            )
        samples += [(f, name) for f in files[:max_per_class]]
    return samples


def folder_labels(
    class_names: Sequence[str],
    num_classes: int,
    model_classes: Optional[Sequence[str]],
    root: str,
) -> Tuple[Dict[str, int], str]:
    """Class index of each class folder of a validation set.

    In this order: folders named by ImageNet wnids for a 1000-class model ->
    the ImageNet index; folder names that are all among the model's class
    names (checkpoint or dataset metadata) -> that index; exactly
    ``num_classes`` folders -> their sorted order (mmpretrain's
    ``CustomDataset`` rule).

    Returns:
        tuple: ``{folder: index}`` and the rule used, in words.

    Raises:
        ValueError: None of the rules applies.
    """
    names = sorted(set(class_names))
    if num_classes == len(WNIDS) and all(n in WNIDS for n in names):
        return {n: WNIDS.index(n) for n in names}, 'ImageNet wnids'
    if model_classes and all(n in model_classes for n in names):
        classes = list(model_classes)
        return {n: classes.index(n) for n in names}, "the model's classes"
    if len(names) == num_classes:
        return {n: i for i, n in enumerate(names)}, 'sorted folder names'
    raise ValueError(
        f'{root}: cannot tell the class index of its {len(names)} class '
        f'folders ({", ".join(names[:5])}{", ..." if len(names) > 5 else ""})'
        f' for a model with {num_classes} classes: name them by ImageNet '
        "wnids (1000-class models) or by the model's class names "
        f'({", ".join(list(model_classes or [])[:5]) or "unknown"}), or '
        f'give exactly {num_classes} folders (sorted order = class index)'
    )


class FolderDataset(torch.utils.data.Dataset):
    """``(packed sample, label)`` pairs of images through a pipeline."""

    def __init__(
        self, samples: Sequence[Tuple[str, int]], pipeline: Callable
    ) -> None:
        self.samples = list(samples)
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int):
        path, label = self.samples[idx]
        data = self.pipeline(dict(img_path=path, sample_idx=idx))
        return data, label


def _collate(batch):
    from mmengine.dataset import pseudo_collate

    data, labels = zip(*batch)
    return pseudo_collate(list(data)), torch.as_tensor(labels)


@dataclass
class Evaluator:
    """Runs a loaded classifier over datasets, one progress bar for all."""

    loaded: LoadedModel
    batch_size: int = 32
    num_workers: int = 2
    progress: Optional[object] = None

    @torch.no_grad()
    def logits_top1(
        self,
        dataset: FolderDataset,
        indices: Optional[Sequence[int]] = None,
    ) -> float:
        """Top-1 of the model on ``dataset`` (arg-max over ``indices``)."""
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=_collate,
            shuffle=False,
        )
        model = self.loaded.model
        correct = total = 0
        for data, labels in loader:
            batch = model.data_preprocessor(data, False)
            logits = model(batch['inputs'], mode='tensor')
            if isinstance(logits, (tuple, list)):
                logits = logits[-1]
            pred = subset_predictions(logits, indices).cpu()
            correct += int((pred == labels).sum())
            total += len(labels)
            if self.progress is not None:
                self.progress.update(len(labels))
        return correct / total


def num_outputs(loaded: LoadedModel) -> int:
    """Number of logits of a classifier (one forward of the test pipeline's
    output size would cost more; the head says it)."""
    head = getattr(loaded.model, 'head', None)
    n = getattr(head, 'num_classes', None)
    if not isinstance(n, int):
        raise ValueError(
            'cannot read the number of classes from the model head '
            f'({type(head).__name__}); robustness needs an mmpretrain '
            'ImageClassifier with a classification head'
        )
    return n


def evaluate(
    config: str,
    checkpoint: str,
    val_dir: Optional[str] = None,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    shifted: Optional[Dict[str, str]] = None,
    cfg_options: Optional[Dict] = None,
    device: str = 'cpu',
    batch_size: int = 32,
    num_workers: int = 2,
    max_per_class: Optional[int] = None,
    seed: int = 0,
    show_progress: bool = True,
    json_path: Optional[str] = None,
    force: bool = False,
) -> Dict[str, object]:
    """Evaluate ``config`` + ``checkpoint`` (see the module docstring).

    Args:
        val_dir: Class-folder validation set for the clean and corrupted
            evaluation; ``None`` skips ImageNet-C.
        corruptions: Names of :data:`CORRUPTIONS` (and/or
            :data:`EXTRA_CORRUPTIONS`); empty: clean top-1 only.
        severities: Subset of 1-5.
        shifted: ``{key of SHIFTED_SETS: folder}``.
        max_per_class: First N images (sorted) of each class folder.
        json_path: Also write the results there (atomically); an existing
            file is replaced only with ``force`` (checked first).

    Returns:
        dict: JSON-serialisable results, fractions in ``[0, 1]``.
    """
    if json_path and osp.exists(json_path) and not force:
        raise FileExistsError(
            f'{json_path} exists; pass --force to replace it'
        )
    shifted = dict(shifted or {})
    bad = sorted(set(shifted) - set(SHIFTED_SETS))
    if bad:
        raise ValueError(
            f'unknown test sets {bad}; allowed: {", ".join(SHIFTED_SETS)}'
        )
    known = CORRUPTIONS + EXTRA_CORRUPTIONS
    bad = [c for c in corruptions if c not in known]
    if bad:
        raise ValueError(
            f'unknown corruptions {bad}; allowed: {", ".join(known)}'
        )
    bad = [s for s in severities if s not in SEVERITIES]
    if bad or not severities:
        raise ValueError(f'severities must be among 1-5; got {severities}')
    if val_dir is None and not shifted:
        raise ValueError(
            'nothing to evaluate: give a validation folder for ImageNet-C '
            'and/or the folder of a shifted test set'
        )
    loaded = load_classifier(config, checkpoint, device, cfg_options)
    classes = num_outputs(loaded)
    pipeline = test_pipeline(loaded.cfg)

    jobs = []  # (what, dataset, indices)
    result: Dict[str, object] = dict(
        config=config,
        checkpoint=checkpoint,
        num_classes=classes,
        seed=seed,
        max_per_class=max_per_class,
    )
    if val_dir is not None:
        found = list_class_folder(val_dir, max_per_class)
        labels, rule = folder_labels(
            [c for _, c in found], classes, loaded.classes, val_dir
        )
        samples = [(p, labels[c]) for p, c in found]
        jobs.append((('clean',), FolderDataset(samples, pipeline), None))
        for name in corruptions:
            for s in sorted(set(severities)):
                step = ImageCorruption(name, s, seed)
                ds = FolderDataset(samples, with_corruption(pipeline, step))
                jobs.append((('c', name, s), ds, None))
        result['imagenet_c'] = dict(
            val_dir=val_dir, images=len(samples), label_rule=rule
        )
    for key, folder in shifted.items():
        test_set = SHIFTED_SETS[key]
        if classes != len(WNIDS):
            raise ValueError(
                f'{test_set.name} needs a 1000-class ImageNet model; this one '
                f'has {classes} classes'
            )
        found = list_class_folder(folder, max_per_class)
        indices = test_set.indices or range(len(WNIDS))
        allowed = {WNIDS[i] for i in indices}
        stray = sorted({c for _, c in found} - allowed)
        if stray:
            raise ValueError(
                f'{folder}: class folders {stray[:5]} are not '
                f'{test_set.name} classes (ImageNet wnids'
                + (
                    f' of its {len(test_set.indices)} classes)'
                    if test_set.indices
                    else ')'
                )
            )
        samples = [(p, WNIDS.index(c)) for p, c in found]
        jobs.append(
            (('s', key), FolderDataset(samples, pipeline), test_set.indices)
        )
        result.setdefault('shifted', {})[key] = dict(
            name=test_set.name,
            path=folder,
            images=len(samples),
            classes=len({c for _, c in found}),
            scored_over=len(test_set.indices) if test_set.indices else classes,
        )

    progress = None
    if show_progress:
        from mmengine.utils import ProgressBar

        progress = ProgressBar(
            sum(len(ds) for _, ds, _ in jobs), file=sys.stderr
        )
    evaluator = Evaluator(loaded, batch_size, num_workers, progress)
    top1: Dict[str, Dict[int, float]] = {}
    for what, ds, indices in jobs:
        acc = evaluator.logits_top1(ds, indices)
        if what[0] == 'clean':
            result['imagenet_c']['clean_top1'] = acc
        elif what[0] == 'c':
            top1.setdefault(what[1], {})[what[2]] = acc
        else:
            result['shifted'][what[1]]['top1'] = acc
    if show_progress:
        sys.stderr.write('\n')
    if val_dir is not None and top1:
        summary = mean_corruption_error(top1)
        for name, entry in summary['corruptions'].items():
            entry['top1'] = {str(s): a for s, a in sorted(top1[name].items())}
        result['imagenet_c'].update(summary)
    if json_path:
        write_json(result, json_path, force)
    return result


def format_table(result: Dict[str, object]) -> str:
    """The results as a plain-text table (percent)."""
    lines = [f'Config:     {result["config"]}']
    lines.append(f'Checkpoint: {result["checkpoint"]}')
    c = result.get('imagenet_c')
    if c:
        lines += [
            '',
            f'ImageNet-C, generated from {c["val_dir"]} ({c["images"]} '
            f'images, labels by {c["label_rule"]}, seed {result["seed"]})',
            f'clean top-1: {100 * c["clean_top1"]:.2f} %',
        ]
        per = c.get('corruptions', {})
        if per:
            severities = sorted(
                {int(s) for e in per.values() for s in e['top1']}
            )
            head = f'{"corruption":<18}' + ''.join(
                f'{"s" + str(s):>7}' for s in severities
            )
            lines += [
                '',
                'top-1 (%) per severity, mean error (%), CE (%) vs AlexNet',
                head + f'{"mean err":>10}{"CE":>8}',
            ]
            for name, e in per.items():
                row = f'{name:<18}' + ''.join(
                    f'{100 * e["top1"][str(s)]:>7.1f}'
                    if str(s) in e['top1']
                    else f'{"-":>7}'
                    for s in severities
                )
                ce = f'{100 * e["ce"]:>8.1f}' if 'ce' in e else f'{"-":>8}'
                lines.append(row + f'{100 * e["mean_error"]:>10.1f}' + ce)
            lines.append(f'mean error: {100 * c["mean_error"]:.2f} %')
            if c['mce'] is None:
                lines.append(
                    'mCE: - (needs all five severities of the 15 '
                    'ImageNet-C corruptions)'
                )
            else:
                note = (
                    ''
                    if c['mce_complete']
                    else f' (over {sum("ce" in e for e in per.values())} '
                    'of the 15 corruptions: not comparable with published '
                    'mCEs)'
                )
                lines.append(
                    f'mCE: {100 * c["mce"]:.2f} % of AlexNet (Hendrycks & '
                    f'Dietterich 2019){note}'
                )
    shifted = result.get('shifted')
    if shifted:
        lines += [
            '',
            f'{"test set":<20}{"images":>8}{"classes":>9}{"top-1 %":>9}',
        ]
        for e in shifted.values():
            lines.append(
                f'{e["name"]:<20}{e["images"]:>8}{e["scored_over"]:>9}'
                f'{100 * e["top1"]:>9.2f}'
            )
        lines.append(
            '(classes: the logits the arg-max is taken over; ImageNet-A/-R '
            'use their 200 classes)'
        )
    return '\n'.join(lines)


def write_json(result: Dict[str, object], path: str, force: bool) -> None:
    """Write ``result`` atomically; refuse to replace a file unless
    ``force``."""
    if osp.exists(path) and not force:
        raise FileExistsError(f'{path} exists; pass --force to replace it')
    write_text_atomic(path, json.dumps(result, indent=2) + '\n')
