# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Shape bias on cue-conflict images (Geirhos et al., ICLR 2019).

A cue-conflict image shows the shape of one category with the texture of
another. Its file is ``<shape category>/<shape>N-<texture>M.png`` (the
layout of Geirhos et al.'s stimuli and of ``model-vs-human``'s
``cue-conflict`` set). Images whose shape and texture categories agree are
left out. Over the rest, with a decision per image::

    fraction_shape   = #(decision == shape category)   / #images
    fraction_texture = #(decision == texture category) / #images
    shape_bias       = fraction_shape / (fraction_shape + fraction_texture)

i.e. the share of shape decisions among the decisions that follow either
cue (``model-vs-human``, ``modelvshuman/plotting/analyses.py``,
``ShapeBias.analysis``).

Decisions. A 1000-class ImageNet model decides among the 16 categories:
softmax over the 1000 logits, then the mean probability over each
category's ImageNet indices (:data:`IMAGENET_16_CLASS_INDICES`), then the
arg-max (``model-vs-human``'s ``ImageNetProbabilitiesTo16ClassesMapping``
with its default ``np.mean``). Any other classifier decides among its own
classes, which must include the folder's categories by name (e.g. the
synthetic cue-conflict set of the shapes classification quickstart).
"""

import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .classifiers import (
    IMAGE_EXTENSIONS,
    LoadedModel,
    build_model,
    predict_probs,
)

# The 16 entry-level categories and their ImageNet-1k class indices, as in
# Geirhos et al. (ICLR 2019) and their model-vs-human toolbox:
# github.com/bethgelab/model-vs-human, modelvshuman/helper/
# human_categories.py (``HumanCategories.<category>_indices``).
# fmt: off
IMAGENET_16_CLASS_INDICES: Dict[str, Tuple[int, ...]] = {
    'airplane': (404,),
    'bear': (294, 295, 296, 297),
    'bicycle': (444, 671),
    'bird': (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81,
             82, 83, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 98, 99, 100,
             127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138, 139, 140,
             141, 142, 143, 144, 145),
    'boat': (472, 554, 625, 814, 914),
    'bottle': (440, 720, 737, 898, 899, 901, 907),
    'car': (436, 511, 817),
    'cat': (281, 282, 283, 284, 285, 286),
    'chair': (423, 559, 765, 857),
    'clock': (409, 530, 892),
    'dog': (152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164,
            165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177,
            178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190,
            191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 205,
            206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218,
            219, 220, 221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232,
            233, 234, 235, 236, 237, 238, 239, 240, 241, 243, 244, 245, 246,
            247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262,
            263, 265, 266, 267, 268),
    'elephant': (385, 386),
    'keyboard': (508, 878),
    'knife': (499,),
    'oven': (766,),
    'truck': (555, 569, 656, 675, 717, 734, 864, 867),
}
# fmt: on
#: The 16 categories in model-vs-human's (sorted) order.
IMAGENET_16_CATEGORIES: Tuple[str, ...] = tuple(
    sorted(IMAGENET_16_CLASS_INDICES)
)


def imagenet_to_16(probs: np.ndarray) -> np.ndarray:
    """(N, 1000) ImageNet probabilities -> (N, 16) category scores (mean
    over each category's indices), columns in
    :data:`IMAGENET_16_CATEGORIES` order."""
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != 1000:
        raise ValueError(
            f'expected (N, 1000) ImageNet probabilities; got {probs.shape}'
        )
    return np.stack(
        [
            probs[:, list(IMAGENET_16_CLASS_INDICES[c])].mean(axis=1)
            for c in IMAGENET_16_CATEGORIES
        ],
        axis=1,
    )


def texture_category(filename: str) -> str:
    """``'airplane1-bicycle2.png'`` -> ``'bicycle'`` (model-vs-human's
    ``get_texture_category``: last ``_`` part, no extension, after the last
    ``-``, digits removed)."""
    stem = osp.basename(filename).split('_')[-1].split('.')[0]
    return ''.join(ch for ch in stem.split('-')[-1] if not ch.isdigit())


@dataclass
class CueConflictImage:
    path: str
    shape: str
    texture: str


def list_cue_conflict(root: str) -> List[CueConflictImage]:
    """The images of a cue-conflict folder (``<shape>/<file>``), sorted.

    Raises:
        FileNotFoundError: No folder, or no images in category folders.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'cue-conflict folder {root} does not exist (expected '
            '<root>/<shape category>/<shape>N-<texture>M.png)'
        )
    items = []
    for shape in sorted(os.listdir(root)):
        folder = osp.join(root, shape)
        if not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                items.append(
                    CueConflictImage(
                        osp.join(folder, name), shape, texture_category(name)
                    )
                )
    if not items:
        raise FileNotFoundError(
            f'{root}: no images in <shape category>/ sub-folders'
        )
    return items


@dataclass
class ShapeBiasResult:
    """Shape bias of one model on one cue-conflict set.

    Attributes:
        label: Model name.
        num_images: Images with different shape and texture categories.
        fraction_shape, fraction_texture: Fractions of all of them.
        shape_bias: ``fraction_shape / (fraction_shape +
            fraction_texture)``; ``None`` if no decision followed a cue.
        per_category: Shape bias per shape category (``None`` likewise).
        decision_space: ``'imagenet-16'`` or ``'model classes'``.
    """

    label: str
    num_images: int
    fraction_shape: float
    fraction_texture: float
    shape_bias: Optional[float]
    per_category: Dict[str, Optional[float]] = field(default_factory=dict)
    decision_space: str = ''


def shape_bias_of(
    shapes: Sequence[str], textures: Sequence[str], decisions: Sequence[str]
) -> Tuple[int, float, float, Optional[float]]:
    """Geirhos et al.'s shape bias from per-image categories.

    Returns:
        tuple: images used, fraction of shape decisions, fraction of
        texture decisions, shape bias (``None`` when both are 0).
    """
    rows = [
        (s, t, d)
        for s, t, d in zip(shapes, textures, decisions, strict=True)
        if s != t
    ]
    if not rows:
        return 0, 0.0, 0.0, None
    n = len(rows)
    f_shape = sum(d == s for s, _, d in rows) / n
    f_texture = sum(d == t for _, t, d in rows) / n
    total = f_shape + f_texture
    return n, f_shape, f_texture, (f_shape / total if total else None)


def decide(
    loaded: LoadedModel, probs: np.ndarray, categories: Sequence[str]
) -> Tuple[List[str], str]:
    """Category decisions from softmax outputs (see the module docstring).

    Raises:
        ValueError: The model's classes do not cover ``categories``.
    """
    if probs.shape[1] == 1000 and set(categories) <= set(
        IMAGENET_16_CATEGORIES
    ):
        scores = imagenet_to_16(probs)
        return [
            IMAGENET_16_CATEGORIES[i] for i in scores.argmax(1)
        ], 'imagenet-16'
    classes = loaded.classes
    if not classes or len(classes) != probs.shape[1]:
        raise ValueError(
            f'{loaded.label}: {probs.shape[1]} outputs and no class names '
            'to match the cue-conflict categories with; a 1000-class '
            'ImageNet model uses the 16-category mapping, any other needs '
            'its classes in the checkpoint meta or the config'
        )
    missing = sorted(set(categories) - set(classes))
    if missing:
        raise ValueError(
            f'{loaded.label}: cue-conflict categories {missing} are not '
            f'among the model classes {list(classes)}'
        )
    return [str(classes[i]) for i in probs.argmax(1)], 'model classes'


def evaluate(
    loaded: LoadedModel,
    items: Sequence[CueConflictImage],
    batch_size: int = 16,
    progress: bool = True,
) -> ShapeBiasResult:
    """Shape bias of one model on the listed images."""
    probs = predict_probs(
        loaded, [it.path for it in items], batch_size, progress
    )
    categories = sorted(
        {it.shape for it in items} | {it.texture for it in items}
    )
    decisions, space = decide(loaded, probs, categories)
    shapes = [it.shape for it in items]
    textures = [it.texture for it in items]
    n, f_s, f_t, bias = shape_bias_of(shapes, textures, decisions)
    per = {}
    for c in sorted(set(shapes)):
        sel = [i for i, s in enumerate(shapes) if s == c]
        per[c] = shape_bias_of(
            [shapes[i] for i in sel],
            [textures[i] for i in sel],
            [decisions[i] for i in sel],
        )[3]
    return ShapeBiasResult(loaded.label, n, f_s, f_t, bias, per, space)


def format_table(results: Sequence[ShapeBiasResult]) -> str:
    head = (
        f'{"model":<44}{"images":>8}{"shape":>9}{"texture":>9}'
        f'{"shape bias":>12}'
    )
    lines = [head, '-' * len(head)]
    for r in results:
        bias = '-' if r.shape_bias is None else f'{r.shape_bias:.3f}'
        lines.append(
            f'{r.label:<44}{r.num_images:>8}{r.fraction_shape:>9.3f}'
            f'{r.fraction_texture:>9.3f}{bias:>12}'
        )
    return '\n'.join(lines)


def plot_shape_bias(
    results: Sequence[ShapeBiasResult],
    out_file: str,
    title: Optional[str] = None,
) -> str:
    """Per-category shape bias (dots) and the mean (vertical line) of each
    model, on a 0 (texture) to 1 (shape) axis, as PNG."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from .erf import save_figure

    cats = sorted({c for r in results for c in r.per_category})
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.45 * max(len(cats), 4)))
    markers = 'osD^vP*X'
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    for k, r in enumerate(results):
        colour = colours[k % len(colours)]
        ys = [
            i for i, c in enumerate(cats) if r.per_category.get(c) is not None
        ]
        xs = [r.per_category[cats[i]] for i in ys]
        bias = '-' if r.shape_bias is None else f'{r.shape_bias:.2f}'
        ax.scatter(
            xs,
            ys,
            marker=markers[k % len(markers)],
            color=colour,
            s=60,
            zorder=3,
            label=f'{r.label}: {bias}',
        )
        if r.shape_bias is not None:
            ax.axvline(r.shape_bias, color=colour, lw=1.5, alpha=0.8)
    ax.set_yticks(range(len(cats)))
    ax.set_yticklabels(cats)
    ax.set_ylim(-0.6, len(cats) - 0.4)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel(
        "fraction of 'shape' decisions among shape or texture decisions\n"
        '(0 = texture only, 1 = shape only; lines: mean)'
    )
    ax.set_ylabel('shape category')
    ax.grid(axis='x', alpha=0.3)
    ax.legend(
        loc='upper center',
        bbox_to_anchor=(0.5, -0.28),
        fontsize=8.5,
        title='model: shape bias',
        title_fontsize=9,
    )
    ax.set_title(title or 'Shape bias on cue-conflict images')
    return save_figure(fig, out_file)


def run(args) -> List[ShapeBiasResult]:
    """What ``tools/analysis_tools/shape_bias.py`` does with its options."""
    from .classifiers import parse_spec
    from .erf import write_json

    specs = [parse_spec(args.config, args.checkpoint)]
    for spec in args.compare or []:
        specs.append(parse_spec(spec))
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
    items = list_cue_conflict(args.data)
    print(f'{len(items)} cue-conflict images in {args.data}')
    results = []
    for spec in specs:
        loaded = build_model(spec, args.device, args.cfg_options)
        print(f'{loaded.label}:')
        results.append(
            evaluate(loaded, items, args.batch_size, not args.no_progress)
        )
    print(format_table(results))
    if args.out:
        plot_shape_bias(results, args.out)
        print(f'figure: {args.out}')
    if args.json:
        write_json([asdict(r) for r in results], args.json)
        print(f'json: {args.json}')
    return results
