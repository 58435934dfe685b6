# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Grad-CAM of classifiers, with the ``grad-cam`` package
(``pytorch_grad_cam``) as mmpretrain's ``tools/visualization/vis_cam.py``
uses it.

Default target layer. mmpretrain's tool takes the last norm layer of the
backbone. In our VAN backbones that is the LayerNorm after the last stage
(``backbone.norm4``), which the head pools, but it runs on channels-last
tensors (N, H, W, C); the CAM therefore uses a reshape that moves the
channels back in front (N, C, H, W). (mmpretrain's own ``VAN`` normalises
flattened tokens (N, H*W, C); that layout is reshaped to a square map.)

The figure puts the input and one CAM overlay per model side by side, one
row per image, with the predicted class and its probability over each
panel and a colour bar for the CAM.
"""

import os.path as osp
import textwrap
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .classifiers import LoadedModel, build_model, preprocess

#: CAM methods by lower-case name (filled from pytorch_grad_cam on import).
CAM_METHODS = (
    'gradcam',
    'gradcam++',
    'xgradcam',
    'eigencam',
    'eigengradcam',
    'layercam',
    'hirescam',
)


def require_grad_cam():
    """Import ``pytorch_grad_cam`` or say how to install it."""
    try:
        import pytorch_grad_cam
    except ImportError:
        raise ImportError(
            'Grad-CAM needs the optional "grad-cam" package: '
            'pip install "grad-cam>=1.5" (see the README, Analyses)'
        ) from None
    return pytorch_grad_cam


def cam_class(method: str):
    """The ``pytorch_grad_cam`` class of a method name."""
    cam = require_grad_cam()
    table = {
        'gradcam': cam.GradCAM,
        'gradcam++': cam.GradCAMPlusPlus,
        'xgradcam': cam.XGradCAM,
        'eigencam': cam.EigenCAM,
        'eigengradcam': cam.EigenGradCAM,
        'layercam': cam.LayerCAM,
        'hirescam': cam.HiResCAM,
    }
    key = method.lower()
    if key not in table:
        raise ValueError(
            f'unknown CAM method {method!r}; allowed: {", ".join(table)}'
        )
    return table[key]


def channels_last_to_first(t: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W)."""
    return t.permute(0, 3, 1, 2)


def tokens_to_map(t: torch.Tensor) -> torch.Tensor:
    """(N, L, C) tokens of a square map -> (N, C, sqrt(L), sqrt(L))."""
    n, length, c = t.shape
    side = int(round(length**0.5))
    if side * side != length:
        raise ValueError(
            f'cannot reshape {length} tokens into a square map; pass '
            '--target-layers with a layer that outputs (N, C, H, W)'
        )
    return t.reshape(n, side, side, c).permute(0, 3, 1, 2)


@dataclass
class TargetLayer:
    """A layer to take the CAM at, and how to bring its output to
    (N, C, H, W)."""

    name: str
    module: nn.Module
    reshape: Optional[Callable[[torch.Tensor], torch.Tensor]] = None


def _layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        close = [n for n in modules if n.startswith(name.rsplit('.', 1)[0])]
        raise ValueError(
            f'no layer {name!r} in the model; e.g. '
            + ', '.join((close or list(modules))[:12])
        )
    return modules[name]


def default_target_layer(model: nn.Module) -> TargetLayer:
    """The layer the CAM is taken at when none is given (see the module
    docstring)."""
    from mmengine.utils.dl_utils import is_norm

    from ..models.van import VANBackbone

    backbone = model.backbone
    if isinstance(backbone, VANBackbone):
        stage = max(backbone.out_indices) + 1
        name = f'backbone.norm{stage}'
        return TargetLayer(name, _layer(model, name), channels_last_to_first)
    norms = [
        (f'backbone.{n}', m)
        for n, m in backbone.named_modules()
        if n and is_norm(m)
    ]
    if not norms:
        raise ValueError(
            'the backbone has no norm layer; pass --target-layers'
        )
    name, module = norms[-1]
    return TargetLayer(name, module, _auto_reshape)


def _auto_reshape(t: torch.Tensor) -> torch.Tensor:
    if t.ndim == 4:
        return t
    if t.ndim == 3:
        return tokens_to_map(t)
    raise ValueError(f'unsupported activation shape {tuple(t.shape)}')


def target_layer(model: nn.Module, name: Optional[str]) -> TargetLayer:
    """``name`` (4-D NCHW output assumed, 3-D tokens reshaped), or the
    default."""
    if not name:
        return default_target_layer(model)
    default = default_target_layer(model)
    if name == default.name:
        return default
    return TargetLayer(name, _layer(model, name), _auto_reshape)


@dataclass
class CamResult:
    """Grad-CAM of one model on one image.

    Attributes:
        image: RGB uint8 (H, W, 3), what the network saw.
        cam: (H, W) float in [0, 1].
        target: Class index the CAM explains.
        pred: Predicted class index.
        prob: Softmax probability of ``pred``.
        peak: ``(x, y)`` pixel of the CAM maximum.
    """

    image: np.ndarray
    cam: np.ndarray
    target: int
    pred: int
    prob: float
    peak: Tuple[int, int]


class CamRunner:
    """Grad-CAM of one loaded classifier.

    Args:
        loaded: From :func:`~.classifiers.build_model`.
        layer: Target layer name; ``None`` for :func:`default_target_layer`.
        method: One of :data:`CAM_METHODS`.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        layer: Optional[str] = None,
        method: str = 'gradcam',
    ) -> None:
        self.loaded = loaded
        self.target_layer = target_layer(loaded.model, layer)
        self.cam = cam_class(method)(
            model=loaded.model,
            target_layers=[self.target_layer.module],
            reshape_transform=self.target_layer.reshape,
        )

    def __call__(
        self,
        image_path: str,
        target: Optional[int] = None,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
    ) -> CamResult:
        from pytorch_grad_cam.utils.model_targets import (
            ClassifierOutputTarget,
        )

        inputs, image = preprocess(self.loaded, image_path)
        with torch.no_grad():
            probs = torch.softmax(self.loaded.model(inputs), dim=1)[0]
        pred = int(probs.argmax())
        target = pred if target is None else int(target)
        num_classes = probs.numel()
        if not 0 <= target < num_classes:
            raise ValueError(
                f'target category {target} is outside 0..{num_classes - 1}'
            )
        cam = self.cam(
            input_tensor=inputs,
            targets=[ClassifierOutputTarget(target)],
            eigen_smooth=eigen_smooth,
            aug_smooth=aug_smooth,
        )[0]
        y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
        return CamResult(
            image, cam, target, pred, float(probs[pred]), (int(x), int(y))
        )

    def class_name(self, index: int) -> str:
        classes = self.loaded.classes
        if classes and 0 <= index < len(classes):
            return str(classes[index])
        return str(index)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5):
    """RGB float (H, W, 3) in [0, 1]: the image with the CAM in 'jet'."""
    import matplotlib

    heat = matplotlib.colormaps['jet'](np.clip(cam, 0, 1))[..., :3]
    return (1 - alpha) * image.astype(np.float64) / 255.0 + alpha * heat


def plot_cams(
    images: Sequence[str],
    runners: Sequence[CamRunner],
    results: Sequence[Sequence[CamResult]],
    out_file: str,
    title: Optional[str] = None,
    boxes: Optional[Dict[str, Sequence[int]]] = None,
) -> str:
    """Input + one CAM overlay per model, one row per image (one model:
    one column per image), as PNG.

    Args:
        images: Image paths (rows).
        runners: Models (columns after the input).
        results: ``results[i][j]``: image i, model j.
        out_file: PNG path (written atomically).
        title: Figure title.
        boxes: Optional ``{path: [x0, y0, x1, y1]}`` drawn on the input,
            in the network input's pixel coordinates.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from .erf import save_figure

    # one model: images in columns (input above, CAM below); several
    # models: one row per image, the input first, then one column per model
    single = len(runners) == 1
    n_img, n_col = len(images), len(runners) + 1
    rows, cols = (2, n_img) if single else (n_img, n_col)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(2.9 * cols + 0.9, 2.9 * rows + 0.9),
        squeeze=False,
    )

    def panel(i: int, j: int):
        """Axes of image ``i``, column ``j`` (0 = input, j = model j-1)."""
        return axes[j][i] if single else axes[i][j]

    for i, path in enumerate(images):
        ax = panel(i, 0)
        ax.imshow(results[i][0].image)
        name = osp.basename(path)
        first = i == 0 and not single
        ax.set_title(f'input\n{name}' if first else name, fontsize=9)
        if boxes and path in boxes:
            x0, y0, x1, y1 = boxes[path]
            ax.add_patch(
                Rectangle(
                    (x0 - 0.5, y0 - 0.5),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    ec='white',
                    lw=1.5,
                    ls='--',
                )
            )
        for j, runner in enumerate(runners):
            r = results[i][j]
            ax = panel(i, j + 1)
            ax.imshow(overlay(r.image, r.cam))
            ax.plot(*r.peak, marker='+', color='white', ms=12, mew=2.5)
            text = f'pred {runner.class_name(r.pred)} ({r.prob:.0%})'
            if r.target != r.pred:
                text += f'\nCAM of {runner.class_name(r.target)}'
            if i == 0 and not single:
                label = textwrap.fill(runner.loaded.label, 30)
                text = f'{label}\n{text}'
            ax.set_title(text, fontsize=9)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), cmap='jet'),
        ax=axes.ravel().tolist(),
        fraction=0.03 if rows > 2 else 0.02,
        pad=0.02,
        label='Grad-CAM (scaled to max 1)\n+ marks the peak',
    )
    layer = runners[0].target_layer.name
    default = f'Grad-CAM at {layer}'
    if single:
        default = f'{runners[0].loaded.label}: {default}'
    fig.suptitle(title or default, fontsize=12)
    return save_figure(fig, out_file)


def run(args) -> List[List[CamResult]]:
    """What ``tools/visualization/vis_cam.py`` does with its options."""
    from .classifiers import list_images, parse_spec

    specs = [parse_spec(args.config, args.checkpoint)]
    if args.compare:
        if len(args.compare) % 2:
            raise ValueError(
                '--compare takes CONFIG CHECKPOINT pairs (use "none" as the '
                'checkpoint for a random-init model)'
            )
        for cfg, ckpt in zip(args.compare[::2], args.compare[1::2]):
            specs.append(parse_spec(cfg, ckpt))
    if args.labels:
        if len(args.labels) != len(specs):
            raise ValueError(
                f'--labels: {len(args.labels)} given for {len(specs)} models'
            )
        for s, label in zip(specs, args.labels):
            s.label = label
    if osp.exists(args.out) and not args.force:
        raise FileExistsError(
            f'{args.out} exists; pass --force to overwrite it'
        )
    images = list_images(args.img, args.max_images)
    runners = []
    for spec in specs:
        loaded = build_model(spec, args.device, args.cfg_options)
        runner = CamRunner(loaded, args.target_layer, args.method)
        print(
            f'{loaded.label}: CAM at {runner.target_layer.name} '
            f'({args.method})'
        )
        runners.append(runner)
    targets = args.target_category or [None]
    if len(targets) not in (1, len(images)):
        raise ValueError(
            f'--target-category: give one class or one per image '
            f'({len(images)}); got {len(targets)}'
        )
    if len(targets) == 1:
        targets = targets * len(images)
    from mmengine.utils import ProgressBar

    bar = ProgressBar(len(images) * len(runners))
    results = []
    for path, target in zip(images, targets):
        row = []
        for runner in runners:
            row.append(
                runner(path, target, args.eigen_smooth, args.aug_smooth)
            )
            bar.update()
        results.append(row)
    print()
    plot_cams(images, runners, results, args.out)
    print(f'Grad-CAM figure: {args.out}')
    return results
