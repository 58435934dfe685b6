# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Effective receptive field (ERF) of a backbone stage.

The measure of RepLKNet (Ding et al., CVPR 2022; their
``erf/visualize_erf.py`` and ``erf/analyze_erf.py``):

1. For each image ``x`` (1, 3, S, S), run the backbone up to the chosen
   stage, take the ReLU of its output at the central pixel summed over
   channels, and back-propagate to the input.
2. The contribution map of one image is ``ReLU(dy/dx)`` summed over the
   colour channels, (S, S); the ERF is its mean over N images.
3. For the area ratios the map is shown as ``log10(erf + 1)`` scaled to a
   maximum of 1; for each threshold t (20, 30, 50, 99 %) the smallest
   centred square whose sum exceeds t of the total is found, and its area
   as a fraction of the image is reported. A wider ERF has larger ratios.

RepLKNet stops the square search just short of the whole image; here the
search goes up to the whole image (ratio 1.0), so every threshold has a
value.
"""

import json
import os
import os.path as osp
import textwrap
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .classifiers import ModelSpec, build_model, list_images, normalisation

#: RepLKNet's thresholds (fractions of the total contribution).
THRESHOLDS: Tuple[float, ...] = (0.2, 0.3, 0.5, 0.99)
#: Lowest decade shown by the heatmaps (relative to the peak).
DISPLAY_FLOOR = -4.0


@dataclass
class ERFResult:
    """The accumulated ERF of one model.

    Attributes:
        label: Model name.
        stage: Stage index (0-based, as ``out_indices``).
        input_size: Side S of the square input.
        num_images: Images accumulated.
        erf: (S, S) mean contribution map (before the log).
        area_ratio: threshold -> area ratio of the centred square.
        side: threshold -> side length of that square in pixels.
    """

    label: str
    stage: int
    input_size: int
    num_images: int
    erf: np.ndarray
    area_ratio: Dict[float, float]
    side: Dict[float, int]

    def summary(self) -> Dict:
        d = asdict(self)
        d.pop('erf')
        d['area_ratio'] = {f'{t:g}': v for t, v in self.area_ratio.items()}
        d['side'] = {f'{t:g}': v for t, v in self.side.items()}
        return d


def normalised_log(erf: np.ndarray) -> np.ndarray:
    """``log10(erf + 1)`` scaled to max 1 (RepLKNet's display and measure)."""
    data = np.log10(np.asarray(erf, np.float64) + 1.0)
    peak = data.max()
    return data / peak if peak > 0 else data


def centred_square(data: np.ndarray, thresh: float) -> Tuple[int, float]:
    """Smallest centred square holding more than ``thresh`` of the total.

    Args:
        data: (H, W) non-negative map.
        thresh: Fraction in (0, 1).

    Returns:
        tuple: side length in pixels (clipped to the image) and area ratio.
    """
    h, w = data.shape
    total = float(data.sum())
    if total <= 0:
        raise ValueError('the contribution map is all zero')
    cy, cx = h // 2, w // 2
    for i in range(0, max(h, w) // 2 + 1):
        y0, y1 = max(cy - i, 0), min(cy + i + 1, h)
        x0, x1 = max(cx - i, 0), min(cx + i + 1, w)
        if data[y0:y1, x0:x1].sum() / total > thresh:
            return 2 * i + 1, (y1 - y0) * (x1 - x0) / (h * w)
    return max(h, w), 1.0


def area_ratios(
    erf: np.ndarray, thresholds: Sequence[float] = THRESHOLDS
) -> Tuple[Dict[float, float], Dict[float, int]]:
    """RepLKNet's high-contribution area ratios of an accumulated ERF."""
    data = normalised_log(erf)
    ratio, side = {}, {}
    for t in thresholds:
        side[t], ratio[t] = centred_square(data, t)
    return ratio, side


def input_grad(backbone: nn.Module, x: torch.Tensor, stage: int) -> np.ndarray:
    """Contribution map of one batch: (S, S), summed over batch/channels.

    Args:
        backbone: Returns a tuple of stage outputs for ``out_indices``;
            ``stage`` must be among them.
        x: (B, 3, S, S) normalised input.
        stage: Index into the backbone's stages.
    """
    x = x.detach().clone().requires_grad_(True)
    outs = backbone(x)
    indices = list(getattr(backbone, 'out_indices', range(len(outs))))
    y = outs[indices.index(stage)]
    h, w = y.shape[-2:]
    central = torch.relu(y[:, :, h // 2, w // 2]).sum()
    (grad,) = torch.autograd.grad(central, x)
    return torch.relu(grad).sum((0, 1)).cpu().numpy().astype(np.float64)


def synthetic_images(num: int, size: int, seed: int = 0) -> List[np.ndarray]:
    """``num`` RGB (size, size, 3) uint8 scenes of the shapes generator."""
    from ..datasets.synthetic_shapes import ShapesConfig, make_scene

    rng = np.random.default_rng(seed)
    cfg = ShapesConfig(height=size, width=size)
    return [make_scene(rng, cfg).image for _ in range(num)]


def load_images(
    path: Optional[str], num: int, size: int, seed: int = 0
) -> List[np.ndarray]:
    """``num`` RGB images resized to (size, size): from a file/folder, or
    generated shapes scenes when ``path`` is None."""
    if path is None:
        return synthetic_images(num, size, seed)
    import cv2

    files = list_images(path, num)
    images = []
    for f in files:
        img = cv2.imread(f, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'could not read image {f}')
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
        images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return images


def _to_tensor(
    img: np.ndarray, mean: Sequence[float], std: Sequence[float], device
) -> torch.Tensor:
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return ((t - m) / s)[None].to(device)


def compute_erf(
    spec: ModelSpec,
    images: Sequence[np.ndarray],
    stage: int = -1,
    device: str = 'cpu',
    cfg_options: Optional[Dict] = None,
    thresholds: Sequence[float] = THRESHOLDS,
    progress: bool = True,
) -> ERFResult:
    """Accumulate the ERF of ``spec``'s backbone over ``images``.

    Args:
        spec: The model (random init without a checkpoint).
        images: RGB uint8 (S, S, 3) images, all of one square size.
        stage: Stage index; negative counts from the end (-1 = last).
        device: Torch device.
        cfg_options: Merged into the config.
        thresholds: Contribution fractions for the area ratios.
        progress: Show a progress bar.
    """
    loaded = build_model(spec, device, cfg_options)
    backbone = getattr(loaded.model, 'backbone', loaded.model)
    num_stages = getattr(backbone, 'num_stages', None) or len(
        getattr(backbone, 'depths', [])
    )
    if not num_stages:
        raise ValueError(f'{spec.config}: cannot tell the backbone stages')
    if not -num_stages <= stage < num_stages:
        raise ValueError(
            f'stage must be in 0..{num_stages - 1} (or negative from the '
            f'end); got {stage}'
        )
    stage %= num_stages
    backbone.out_indices = (stage,)
    backbone.eval()  # fixed BN statistics, no stochastic depth
    mean, std = normalisation(loaded.cfg)
    sizes = {img.shape[:2] for img in images}
    if len(sizes) != 1 or len(next(iter(sizes))) != 2:
        raise ValueError(f'images must share one size; got {sorted(sizes)}')
    (h, w) = next(iter(sizes))
    if h != w:
        raise ValueError(f'images must be square; got {h}x{w}')
    total = np.zeros((h, w), np.float64)
    used = 0
    bar = None
    if progress:
        from mmengine.utils import ProgressBar

        print(f'ERF of {loaded.label}, stage {stage + 1}:')
        bar = ProgressBar(len(images))
    for img in images:
        grad = input_grad(backbone, _to_tensor(img, mean, std, device), stage)
        if np.isfinite(grad).all():  # RepLKNet skips NaN maps too
            total += grad
            used += 1
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    if used == 0:
        raise RuntimeError(f'{loaded.label}: every gradient map was NaN')
    erf = total / used
    ratio, side = area_ratios(erf, thresholds)
    return ERFResult(loaded.label, stage, h, used, erf, ratio, side)


def format_table(results: Iterable[ERFResult]) -> str:
    """A plain-text table of the area ratios."""
    results = list(results)
    ts = list(results[0].area_ratio) if results else list(THRESHOLDS)
    head = f'{"model":<44}' + ''.join(f'{f"t={t:.0%}":>10}' for t in ts)
    lines = [head, '-' * len(head)]
    for r in results:
        lines.append(
            f'{r.label:<44}' + ''.join(f'{r.area_ratio[t]:>10.4f}' for t in ts)
        )
    return '\n'.join(lines)


def relative_log(erf: np.ndarray, floor: float = DISPLAY_FLOOR) -> np.ndarray:
    """``log10(erf / max(erf))`` clipped to ``[floor, 0]``: the display
    scale of the heatmaps, which shows the tails that the linear-looking
    RepLKNet scale hides."""
    erf = np.asarray(erf, np.float64)
    peak = erf.max()
    if peak <= 0:
        return np.full(erf.shape, floor)
    with np.errstate(divide='ignore'):
        return np.clip(np.log10(erf / peak), floor, 0.0)


def plot_erfs(
    results: Sequence[ERFResult], out_file: str, title: Optional[str] = None
) -> str:
    """Heatmaps of the ERFs side by side on a log scale relative to each
    peak, one colour bar, RepLKNet's area ratios under each panel; written
    as PNG atomically."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n + 1.0, 4.6), squeeze=False)
    im = None
    for ax, r in zip(axes[0], results):
        im = ax.imshow(
            relative_log(r.erf), cmap='RdYlGn', vmin=DISPLAY_FLOOR, vmax=0
        )
        ax.set_title(textwrap.fill(r.label, 28), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        items = [f'{t:.0%}: {v:.3f}' for t, v in r.area_ratio.items()]
        half = (len(items) + 1) // 2
        ax.set_xlabel(
            'area ratio (RepLKNet)\n'
            + '   '.join(items[:half])
            + '\n'
            + '   '.join(items[half:]),
            fontsize=9,
        )
    fig.colorbar(
        im,
        ax=axes[0].tolist(),
        fraction=0.02 if n > 2 else 0.045,
        pad=0.02,
        label='log10(contribution / peak)',
    )
    r0 = results[0]
    fig.suptitle(
        title
        or (
            f'Effective receptive field of the stage-{r0.stage + 1} centre '
            f'pixel ({r0.input_size}x{r0.input_size} input, '
            f'{r0.num_images} images)'
        ),
        fontsize=12,
    )
    return save_figure(fig, out_file)


def save_figure(fig, out_file: str, dpi: int = 100) -> str:
    """Save a matplotlib figure as a palette PNG (256 colours, a third of
    the size of a full-colour one) via a temporary file + rename."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    try:
        fig.savefig(buf, dpi=dpi, format='png', bbox_inches='tight')
    finally:
        plt.close(fig)
    buf.seek(0)
    image = Image.open(buf).convert('RGB').quantize(colors=256)
    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    tmp = osp.join(out_dir, f'.{osp.basename(out_file)}.tmp-{os.getpid()}')
    try:
        image.save(tmp, format='PNG', optimize=True)
        os.replace(tmp, out_file)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return out_file


def write_json(data, out_file: str) -> str:
    """Write JSON atomically (temporary file + rename)."""
    from ..apis.files import write_text_atomic

    write_text_atomic(out_file, json.dumps(data, indent=2))
    return out_file


def run(args) -> List[ERFResult]:
    """What ``tools/analysis_tools/erf.py`` does with its parsed options."""
    from .classifiers import parse_spec

    specs = [parse_spec(args.config, args.checkpoint)]
    if args.compare:
        specs += [parse_spec(s) for s in args.compare]
    if args.kernel_sizes:
        specs = [
            ModelSpec(s.config, s.checkpoint, k, cfg_options=s.cfg_options)
            for s in specs
            for k in args.kernel_sizes
        ]
    if args.labels:
        if len(args.labels) != len(specs):
            raise ValueError(
                f'--labels: {len(args.labels)} given for {len(specs)} models'
            )
        for s, label in zip(specs, args.labels):
            s.label = label
    for path in (args.out, args.json):
        if path and osp.exists(path) and not args.force:
            raise FileExistsError(
                f'{path} exists; pass --force to overwrite it'
            )
    images = load_images(args.images, args.num_images, args.input_size)
    results = [
        compute_erf(
            s,
            images,
            args.stage,
            args.device,
            args.cfg_options,
            progress=not args.no_progress,
        )
        for s in specs
    ]
    print(format_table(results))
    if args.out:
        plot_erfs(results, args.out)
        print(f'heatmap: {args.out}')
    if args.json:
        write_json([r.summary() for r in results], args.json)
        print(f'json: {args.json}')
    return results
