# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Models for the analysis tools: build a config (+ checkpoint), name it,
preprocess images the way its test pipeline does.

A *model spec* names one model on the command line::

    CONFIG                      random init
    CONFIG:CHECKPOINT           trained weights (strict load)
    CONFIG@K  / CONFIG:CKPT@K   with model.backbone.kernel_size=K
    CONFIG@lka7, CONFIG@lska53  also with backbone type VAN_LKA / VAN_LSKA

e.g. ``configs/van_lska_b0_in1k.py@53`` is a random-init VAN-LSKA-B0 with
k = 53, ``configs/quickstart/van_lska_b0_shapes_cls.py@lka21`` the quick
start classifier with LKA k = 21.
"""

import contextlib
import importlib
import logging
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
#: ``@lka7`` / ``@lska53`` in a model spec: the backbone type to use.
ATTENTION_TYPES = {'lka': 'VAN_LKA', 'lska': 'VAN_LSKA'}


@dataclass
class ModelSpec:
    """One model to analyse (see the module docstring)."""

    config: str
    checkpoint: Optional[str] = None
    kernel_size: Optional[int] = None
    label: Optional[str] = None
    cfg_options: Dict = field(default_factory=dict)


def parse_spec(text: str, checkpoint: Optional[str] = None) -> ModelSpec:
    """``CONFIG[:CHECKPOINT][@K]`` -> :class:`ModelSpec`.

    Args:
        text: The spec.
        checkpoint: A checkpoint given separately (the tools' positional
            argument); ``None``, ``''`` or ``'none'`` for random init.

    Raises:
        ValueError: Malformed spec or a file that does not exist.
    """
    body, kernel, attention = text, None, None
    if '@' in text:
        body, _, k = text.rpartition('@')
        match = re.fullmatch(r'(lka|lska)?(\d+)', k.lower())
        if not match:
            raise ValueError(
                f'model spec {text!r}: the part after "@" must be a kernel '
                f'size, optionally after lka or lska (53, lska53); got {k!r}'
            )
        attention, kernel = match.group(1), int(match.group(2))
    config, _, in_spec = body.partition(':')
    if checkpoint and checkpoint.lower() != 'none':
        if in_spec:
            raise ValueError(
                f'model spec {text!r} names a checkpoint and another one '
                f'({checkpoint}) is given'
            )
        in_spec = checkpoint
    checkpoint = in_spec
    if not config.endswith('.py'):
        raise ValueError(
            f'model spec {text!r}: expected CONFIG.py[:CHECKPOINT][@K]'
        )
    for what, path in (('config', config), ('checkpoint', checkpoint)):
        if path and not osp.isfile(path):
            raise ValueError(f'model spec {text!r}: {what} {path} not found')
    options = {}
    if attention:
        options['model.backbone.type'] = ATTENTION_TYPES[attention]
    return ModelSpec(config, checkpoint or None, kernel, cfg_options=options)


def load_config(spec: ModelSpec, cfg_options: Optional[Dict] = None):
    """The spec's config with ``cfg_options`` and the kernel size merged."""
    from mmengine.config import Config

    if not osp.isfile(spec.config):
        raise FileNotFoundError(f'config {spec.config} not found')
    cfg = Config.fromfile(spec.config)
    for options in (cfg_options, spec.cfg_options):
        if options:
            cfg.merge_from_dict(options)
    if spec.kernel_size is not None:
        cfg.merge_from_dict({'model.backbone.kernel_size': spec.kernel_size})
    return cfg


def _registry(cfg):
    from mmengine.registry import init_default_scope

    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    importlib.import_module(f'{scope}.models')
    import projects.van_lska  # noqa: F401  (registers the backbones)

    return importlib.import_module(f'{scope}.registry').MODELS


@dataclass
class LoadedModel:
    """A built model with what the tools need to know about it."""

    model: nn.Module
    cfg: object
    label: str
    classes: Optional[Tuple[str, ...]]
    checkpoint: Optional[str]


@contextlib.contextmanager
def quiet_logger(level: int = logging.WARNING):
    """Raise the level of mmengine's current logger for a while."""
    from mmengine.logging import MMLogger

    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def describe(cfg, checkpoint: Optional[str]) -> str:
    """A short name: ``VAN_LSKA k=23 (random init)``."""
    backbone = cfg.model.get('backbone', {})
    name = backbone.get('type', cfg.model.get('type', 'model'))
    k = backbone.get('kernel_size')
    if k is None:
        k = {'VAN_LKA': 21, 'VAN_LSKA': 23}.get(name)
    text = f'{name} k={k}' if k is not None else str(name)
    if backbone.get('trivial'):
        text += ' trivial'
    init = osp.basename(checkpoint) if checkpoint else 'random init'
    return f'{text} ({init})'


def build_model(
    spec: ModelSpec,
    device: str = 'cpu',
    cfg_options: Optional[Dict] = None,
) -> LoadedModel:
    """Build the spec's model in eval mode; load the checkpoint strictly.

    Without a checkpoint the model keeps its random initialisation (the
    backbone's ``Pretrained`` init is skipped: nothing is downloaded).

    Raises:
        RuntimeError: The checkpoint does not cover the model (missing or
            unexpected keys are named).
    """
    from mmengine.runner import load_checkpoint

    cfg = load_config(spec, cfg_options)
    if spec.checkpoint is None:
        cfg.model.get('backbone', {}).pop('init_cfg', None)
    # as mmengine's Runner and mmpretrain's get_model do: the top-level
    # data_preprocessor (normalisation, BGR->RGB) belongs to the model
    if cfg.get('data_preprocessor') is not None:
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = _registry(cfg).build(cfg.model)
    classes = None
    if spec.checkpoint is None:
        with quiet_logger():
            model.init_weights()  # logs every parameter at INFO level
    else:
        try:
            ckpt = load_checkpoint(
                model, spec.checkpoint, map_location='cpu', strict=True
            )
        except RuntimeError as e:
            raise RuntimeError(
                f'checkpoint {spec.checkpoint} does not fit the model of '
                f'{spec.config}: {e}'
            ) from None
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        classes = meta.get('dataset_meta', {}).get('classes')
    if classes is None:
        try:
            classes = cfg.test_dataloader.dataset.metainfo.classes
        except (AttributeError, KeyError):
            classes = None
    model.to(device).eval()
    label = spec.label or describe(cfg, spec.checkpoint)
    return LoadedModel(
        model, cfg, label, tuple(classes) if classes else None, spec.checkpoint
    )


def list_images(path: str, max_images: Optional[int] = None) -> List[str]:
    """One image file, or the images in a folder (sorted, recursive).

    Raises:
        FileNotFoundError: Nothing there, or no image in the folder.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such image file or folder')
    import glob

    files = sorted(
        f
        for f in glob.glob(osp.join(path, '**', '*'), recursive=True)
        if f.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise FileNotFoundError(
            f'{path}: no images ({", ".join(IMAGE_EXTENSIONS)}) in the folder'
        )
    return files[:max_images] if max_images else files


def test_pipeline(cfg):
    """The config's test pipeline as a callable on ``{'img_path': ...}``."""
    from mmcv.transforms import Compose
    from mmengine.registry import TRANSFORMS as ROOT

    _registry(cfg)
    scope = cfg.get('default_scope', 'mmpretrain')
    transforms = importlib.import_module(f'{scope}.registry').TRANSFORMS
    steps = cfg.test_dataloader.dataset.pipeline
    built = []
    for step in steps:
        registry = transforms if step['type'] in transforms else ROOT
        built.append(registry.build(step))
    return Compose(built)


def preprocess(
    loaded: LoadedModel, image_path: str
) -> Tuple[torch.Tensor, np.ndarray]:
    """Run the test pipeline and the data preprocessor on one image.

    Returns:
        tuple: ``inputs`` (1, 3, H, W) float on the model's device and the
        RGB uint8 (H, W, 3) image the network sees (before normalisation).
    """
    from mmengine.dataset import default_collate

    data = test_pipeline(loaded.cfg)({'img_path': image_path})
    img = data['inputs']
    if isinstance(img, torch.Tensor):
        img = img.numpy()
    img = np.ascontiguousarray(img.transpose(1, 2, 0))  # BGR from mmcv
    batch = loaded.model.data_preprocessor(default_collate([data]), False)
    return batch['inputs'], img[..., ::-1].copy()


def normalisation(cfg) -> Tuple[Sequence[float], Sequence[float]]:
    """Mean and std (RGB, 0-255) of the config's data preprocessor."""
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor', {}
    )
    mean = pre.get('mean', [123.675, 116.28, 103.53])
    std = pre.get('std', [58.395, 57.12, 57.375])
    return list(mean), list(std)


def predict_probs(
    loaded: LoadedModel,
    image_paths: Sequence[str],
    batch_size: int = 16,
    progress: bool = True,
) -> np.ndarray:
    """Softmax outputs (N, num_classes) of the model on image files, each
    through the config's test pipeline and data preprocessor."""
    from mmengine.dataset import default_collate

    pipeline = test_pipeline(loaded.cfg)
    bar = None
    if progress and image_paths:
        from mmengine.utils import ProgressBar

        bar = ProgressBar(len(image_paths))
    out = []
    for start in range(0, len(image_paths), batch_size):
        chunk = image_paths[start : start + batch_size]
        data = default_collate([pipeline({'img_path': p}) for p in chunk])
        batch = loaded.model.data_preprocessor(data, False)
        with torch.no_grad():
            logits = loaded.model(batch['inputs'])
        out.append(torch.softmax(logits, dim=1).cpu().numpy())
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        print()
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
