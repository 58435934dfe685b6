# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""An ImageNet-style classification dataset from the synthetic shapes.

Every image holds one shape of :data:`~.synthetic_shapes.CLASSES` (circle,
triangle, square, star) on a textured background drawn by the shapes
generator (:mod:`.synthetic_shapes`); the label is the shape's class. The
shape is filled with one of four textures (:data:`TEXTURES`), each drawn
with two random colours, a random scale and orientation::

    OUT/train/<class>/000000.jpg         # mmpretrain CustomDataset layout
    OUT/val/<class>/000000.jpg
    OUT/meta/{train,val}.txt             # "circle/000000.jpg 0" lines
    OUT/annotations/{train,val}.json     # box, texture, label per image
    OUT/cue_conflict/<shape>/<shape>N-<texture>M.png
    OUT/meta.json

Texture and class. Each class has a *home texture* (``TEXTURES[i]`` for
``CLASSES[i]``). With probability ``texture_tie`` an object is filled with
its class's home texture, otherwise with any of the four at random, so the
texture is a partial cue only: it predicts the class in
``texture_tie + (1 - texture_tie) / 4`` of the images (62.5 % at the default
0.5), the outline in all of them. ``texture_tie=0`` makes texture and class
independent.

The cue-conflict split follows Geirhos et al. (ICLR 2019): a shape of one
class filled with the home texture of another class, in the folder layout
and file naming of their stimuli (``<shape>/<shape>N-<texture>M.png``), so
:mod:`projects.van_lska.analysis.shape_bias` reads it like the original
Stylized-ImageNet cue-conflict set.

Generation is deterministic (same seed and sizes give identical files) and
atomic: the dataset is written into a temporary folder beside ``OUT`` and
renamed at the end; an existing, non-empty ``OUT`` is refused unless
``force=True``.
"""

import json
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..apis.files import folder_written_atomically
from .synthetic_shapes import CLASSES, _background, _imwrite, shape_mask

#: Object fill textures; ``TEXTURES[i]`` is the home texture of
#: ``CLASSES[i]``.
TEXTURES: Tuple[str, ...] = ('stripes', 'checker', 'dots', 'speckle')
#: Splits written under ``OUT`` (the cue-conflict split is separate).
CLS_SPLITS: Tuple[str, ...] = ('train', 'val')
CUE_CONFLICT_DIR = 'cue_conflict'


@dataclass
class ShapesClsConfig:
    """Image parameters.

    Args:
        height, width: Image size in pixels.
        min_radius, max_radius: Circumradius of the shape as a fraction of
            ``min(height, width)``; the shape lies fully inside the image.
        texture_tie: Probability that the fill is the class's home texture
            (otherwise any texture, uniformly). In ``[0, 1]``.
        min_contrast: Minimum mean absolute RGB difference between the
            fill's mean colour and the background under the shape.
        texture_scale: Multiplies the texture periods (1: 4-9 px).
    """

    height: int = 128
    width: int = 128
    min_radius: float = 0.22
    max_radius: float = 0.4
    texture_tie: float = 0.5
    min_contrast: float = 50.0
    texture_scale: float = 1.0

    def check(self) -> None:
        if not 0.0 <= self.texture_tie <= 1.0:
            raise ValueError(
                f'texture_tie must be in [0, 1]; got {self.texture_tie!r}'
            )
        if not 0 < self.min_radius <= self.max_radius <= 0.5:
            raise ValueError(
                'need 0 < min_radius <= max_radius <= 0.5; got '
                f'{self.min_radius!r}, {self.max_radius!r}'
            )
        if not self.texture_scale > 0:
            raise ValueError(
                f'texture_scale must be > 0; got {self.texture_scale!r}'
            )
        if min(self.height, self.width) < 16:
            raise ValueError(
                f'images must be at least 16x16; got '
                f'{self.height}x{self.width}'
            )


@dataclass
class ClsSample:
    """One image.

    Attributes:
        image: (H, W, 3) uint8, RGB.
        label: Shape class index into :data:`CLASSES`.
        texture: Fill texture index into :data:`TEXTURES`.
        box: ``[x0, y0, x1, y1]`` of the shape, pixels, inclusive-exclusive.
        mask: (H, W) uint8 mask of the shape.
    """

    image: np.ndarray
    label: int
    texture: int
    box: List[int]
    mask: np.ndarray


def texture_pattern(
    rng: np.random.Generator,
    texture: int,
    h: int,
    w: int,
    scale: float = 1.0,
) -> np.ndarray:
    """A pattern of family ``TEXTURES[texture]``, float32 (h, w) in [0, 1].

    Scale, orientation and phase are random; all four are fine-grained
    (periods of 4-9 px times ``scale``) so that a shape shows several
    repetitions.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / scale
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    name = TEXTURES[texture]
    if name == 'stripes':
        period = rng.uniform(4.5, 8.0)
        t = (np.sin(2 * np.pi * u / period + rng.uniform(0, 6.3)) > 0) * 1.0
    elif name == 'checker':
        cell = rng.uniform(3.0, 5.0)
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2) * 1.0
    elif name == 'dots':
        step = rng.uniform(6.0, 9.0)
        du = (u / step + rng.random()) % 1.0 - 0.5
        dv = (v / step + rng.random()) % 1.0 - 0.5
        t = ((du**2 + dv**2) < 0.09) * 1.0
    elif name == 'speckle':
        cell = int(round(rng.integers(2, 4) * scale))
        small = rng.random((h // cell + 1, w // cell + 1))
        t = np.kron(small > 0.5, np.ones((cell, cell)))[:h, :w] * 1.0
    else:  # pragma: no cover - TEXTURES is fixed
        raise ValueError(f'unknown texture {texture}')
    return t.astype(np.float32)


def _fill(
    rng: np.random.Generator,
    img: np.ndarray,
    mask: np.ndarray,
    texture: int,
    min_contrast: float,
    scale: float = 1.0,
) -> None:
    """Fill ``mask`` in ``img`` (float32 RGB, in place) with a two-colour
    texture around a base colour that contrasts with the background under
    it."""
    h, w = mask.shape
    region = mask.astype(bool)
    under = img[region].mean(axis=0)
    for _ in range(30):
        base = rng.uniform(0, 255, 3).astype(np.float32)
        # the shape must stand out from the background as a whole
        if np.abs(base - under).mean() >= min_contrast:
            break
    # the pattern's two colours lie either side of the base colour: visible
    # inside the shape, weaker than the shape's outline
    delta = rng.uniform(25, 45) * rng.choice([-1.0, 1.0], size=3)
    c1 = np.clip(base - delta, 0, 255).astype(np.float32)
    c2 = np.clip(base + delta, 0, 255).astype(np.float32)
    t = texture_pattern(rng, texture, h, w, scale)[..., None]
    fill = c1[None, None] * (1 - t) + c2[None, None] * t
    fill += rng.normal(0, 4, size=fill.shape)
    img[region] = fill[region]


def make_cls_sample(
    rng: np.random.Generator,
    cfg: Optional[ShapesClsConfig] = None,
    label: Optional[int] = None,
    texture: Optional[int] = None,
) -> ClsSample:
    """Draw one image.

    Args:
        rng: Random generator (consumed).
        cfg: Image parameters.
        label: Shape class; random if ``None``.
        texture: Fill texture; ``None`` draws it with ``cfg.texture_tie``.
    """
    cfg = cfg or ShapesClsConfig()
    h, w = cfg.height, cfg.width
    if label is None:
        label = int(rng.integers(0, len(CLASSES)))
    if texture is None:
        if rng.random() < cfg.texture_tie:
            texture = label
        else:
            texture = int(rng.integers(0, len(TEXTURES)))
    img = _background(rng, h, w)
    side = min(h, w)
    r = rng.uniform(cfg.min_radius, cfg.max_radius) * side
    cx = rng.uniform(r, w - r)
    cy = rng.uniform(r, h - r)
    theta = rng.uniform(0, 2 * np.pi)
    inner = rng.uniform(0.38, 0.5)
    mask = shape_mask(label, cx, cy, r, theta, h, w, inner)
    _fill(rng, img, mask, texture, cfg.min_contrast, cfg.texture_scale)
    # the shapes generator's camera-like softening of the edges
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    image = img.clip(0, 255).round().astype(np.uint8)
    ys, xs = np.nonzero(mask)
    box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    return ClsSample(image, int(label), int(texture), box, mask)


def _split_rng(seed: int, split: str) -> np.random.Generator:
    # independent of the detection/segmentation streams (index 10+)
    index = (*CLS_SPLITS, CUE_CONFLICT_DIR).index(split)
    return np.random.default_rng(np.random.SeedSequence([seed, 10 + index]))


def _write_split(
    root: str,
    split: str,
    num: int,
    seed: int,
    cfg: ShapesClsConfig,
    progress: bool,
) -> List[Dict]:
    rng = _split_rng(seed, split)
    for name in CLASSES:
        os.makedirs(osp.join(root, split, name), exist_ok=True)
    records = []
    bar = _progress(num, f'{split} images', progress)
    for i in range(num):
        # balanced classes: the label cycles, everything else is random
        s = make_cls_sample(rng, cfg, label=i % len(CLASSES))
        rel = f'{CLASSES[s.label]}/{i:06d}.jpg'
        _imwrite(osp.join(root, split, rel), s.image)
        records.append(
            dict(
                file=rel,
                label=s.label,
                texture=s.texture,
                box=s.box,
                area=int(s.mask.sum()),
            )
        )
        bar.update()
    return records


def _write_cue_conflict(
    root: str, per_pair: int, seed: int, cfg: ShapesClsConfig, progress: bool
) -> List[Dict]:
    """Shape ``a`` filled with the home texture of class ``b != a``."""
    rng = _split_rng(seed, CUE_CONFLICT_DIR)
    n = len(CLASSES)
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    bar = _progress(len(pairs) * per_pair, 'cue-conflict images', progress)
    records = []
    counters = [0] * n
    for a, b in pairs:
        os.makedirs(
            osp.join(root, CUE_CONFLICT_DIR, CLASSES[a]), exist_ok=True
        )
        for j in range(per_pair):
            s = make_cls_sample(rng, cfg, label=a, texture=b)
            counters[a] += 1
            # Geirhos et al.'s naming: <shape>N-<texture>M.png
            shape, texture = CLASSES[a], CLASSES[b]
            rel = f'{shape}/{shape}{counters[a]}-{texture}{j + 1}.png'
            _write_png(osp.join(root, CUE_CONFLICT_DIR, rel), s.image)
            records.append(dict(file=rel, shape=a, texture=b, box=s.box))
            bar.update()
    return records


def _write_png(path: str, rgb: np.ndarray) -> None:
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def _progress(total: int, what: str, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from mmengine.utils import ProgressBar

    print(f'writing {total} {what}')
    return ProgressBar(total)


def generate_cls_dataset(
    out_dir: str,
    seed: int = 0,
    num_train: int = 800,
    num_val: int = 200,
    size: Sequence[int] = (128, 128),
    texture_tie: float = 0.5,
    texture_scale: float = 1.0,
    cue_conflict_per_pair: int = 10,
    force: bool = False,
    progress: bool = False,
) -> Dict:
    """Write the classification dataset (see the module docstring).

    Args:
        out_dir: Dataset root, e.g. ``data/shapes_cls``.
        seed: Base seed; the same arguments give identical files.
        num_train, num_val: Images per split (classes balanced).
        size: ``(height, width)`` of the images.
        texture_tie, texture_scale: See :class:`ShapesClsConfig`.
        cue_conflict_per_pair: Cue-conflict images per (shape, texture)
            pair of different classes (12 pairs for 4 classes).
        force: Replace an existing, non-empty ``out_dir``.
        progress: Show progress bars.

    Returns:
        dict: The contents of ``meta.json``.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty and ``force`` is
            not set.
    """
    cfg = ShapesClsConfig(
        height=int(size[0]),
        width=int(size[1]),
        texture_tie=texture_tie,
        texture_scale=texture_scale,
    )
    cfg.check()
    for name, value in (
        ('num_train', num_train),
        ('num_val', num_val),
        ('cue_conflict_per_pair', cue_conflict_per_pair),
    ):
        if value < 0:
            raise ValueError(f'{name} must be >= 0; got {value}')
    with folder_written_atomically(out_dir, force) as tmp:
        annotations = {
            split: _write_split(tmp, split, num, seed, cfg, progress)
            for split, num in (('train', num_train), ('val', num_val))
        }
        annotations[CUE_CONFLICT_DIR] = _write_cue_conflict(
            tmp, cue_conflict_per_pair, seed, cfg, progress
        )
        os.makedirs(osp.join(tmp, 'annotations'))
        for split, records in annotations.items():
            with open(osp.join(tmp, 'annotations', split + '.json'), 'w') as f:
                json.dump(records, f)
        # mmpretrain's ImageNet-style annotation lists ("path label"), so
        # that label i is CLASSES[i] (folder scanning would sort the names)
        os.makedirs(osp.join(tmp, 'meta'))
        for split in CLS_SPLITS:
            with open(osp.join(tmp, 'meta', split + '.txt'), 'w') as f:
                f.writelines(
                    f'{r["file"]} {r["label"]}\n' for r in annotations[split]
                )
        meta = dict(
            seed=seed,
            num_train=num_train,
            num_val=num_val,
            cue_conflict_per_pair=cue_conflict_per_pair,
            classes=list(CLASSES),
            textures=list(TEXTURES),
            home_texture={c: t for c, t in zip(CLASSES, TEXTURES)},
            config=asdict(cfg),
        )
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
    return meta


def cls_dataset_exists(out_dir: str) -> bool:
    """True if a complete dataset (meta.json written last) is there."""
    return osp.isfile(osp.join(out_dir, 'meta.json')) and all(
        osp.isdir(osp.join(out_dir, s))
        for s in (*CLS_SPLITS, CUE_CONFLICT_DIR)
    )


def load_annotations(out_dir: str, split: str) -> List[Dict]:
    """The records of ``annotations/<split>.json`` (``file`` relative to
    ``OUT/<split>``)."""
    path = osp.join(out_dir, 'annotations', split + '.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} is missing: is {out_dir} a dataset written by '
            'generate_cls_dataset?'
        )
    with open(path) as f:
        return json.load(f)
