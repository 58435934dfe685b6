# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Pictures of predictions that a person can read at a glance
(``tools/quickstart.py`` and ``demo/image_demo.py``).

* every panel is at least :data:`PANEL_WIDTH` (512) pixels wide (small
  images are scaled up) and has a title bar ("ground truth",
  "prediction");
* boxes carry the class name and, for predictions, the score, in a font
  scaled with the panel (about 18 px at 512 px);
* masks and segmentation maps tint only the pixels of a class (a class
  named ``background`` and ignored pixels keep their colours), with a legend
  of the classes shown;
* a prediction panel with nothing above the score threshold says so on the
  picture, with the best score it had;
* classification: the top-k classes with their scores and bars.

Text uses DejaVu Sans, which ships with matplotlib (an mmengine
dependency). Images are RGB ``uint8`` arrays ``(H, W, 3)``.
"""

import os
import os.path as osp
import tempfile
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Minimum width of a panel in pixels.
PANEL_WIDTH = 512
#: Classes that are not tinted (the absence of an object).
UNTINTED = ('background',)
#: Opacity of masks and segmentation maps.
ALPHA = 0.5
TITLE_BG = (40, 40, 40)
NOTE_BG = (255, 255, 255)
GAP = 8  # pixels between panels

Color = Tuple[int, int, int]


# ---------------------------------------------------------------- basics
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (matplotlib's copy) at ``size`` pixels."""
    from matplotlib import font_manager

    props = font_manager.FontProperties(
        family='DejaVu Sans', weight='bold' if bold else 'normal'
    )
    return ImageFont.truetype(font_manager.findfont(props), size)


def text_size(draw: ImageDraw.ImageDraw, text: str, fnt) -> Tuple[int, int]:
    """Width and height of ``text`` in ``fnt``."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    return right - left, bottom - top


def ink_for(color: Sequence[int]) -> Color:
    """Black or white, whichever reads better on ``color``."""
    r, g, b = (int(c) for c in color[:3])
    return (
        (0, 0, 0)
        if 0.299 * r + 0.587 * g + 0.114 * b > 150
        else (
            255,
            255,
            255,
        )
    )


def class_color(palette: Optional[Sequence], label: int) -> Color:
    """The palette colour of ``label`` (a fixed colour wheel without a
    palette)."""
    if palette is not None and 0 <= label < len(palette):
        return tuple(int(c) for c in palette[label])[:3]
    hue = (label * 47) % 180
    hsv = np.uint8([[[hue, 200, 230]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def class_name(classes: Optional[Sequence[str]], label: int) -> str:
    if classes is not None and 0 <= label < len(classes):
        return str(classes[label])
    return f'class {label}'


def scale_up(image: np.ndarray, width: int = PANEL_WIDTH) -> np.ndarray:
    """``image`` scaled (keeping its aspect ratio) to at least ``width``
    pixels wide."""
    h, w = image.shape[:2]
    if w >= width:
        return image
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def tint(
    image: np.ndarray, where: np.ndarray, color: Color, alpha: float = ALPHA
) -> None:
    """Blend ``color`` into the pixels ``where`` (bool ``(H, W)``) of
    ``image``, in place."""
    pixels = image[where].astype(np.float32)
    image[where] = (pixels * (1 - alpha) + np.float32(color) * alpha).astype(
        np.uint8
    )


# ---------------------------------------------------------------- panels
def titled(panel: Image.Image, title: str) -> Image.Image:
    """``panel`` under a dark title bar with ``title`` in bold."""
    fnt = font(max(20, panel.width // 20), bold=True)
    draw = ImageDraw.Draw(panel)
    _, th = text_size(draw, 'Ag', fnt)
    bar = th + th // 2 + 8
    out = Image.new('RGB', (panel.width, panel.height + bar), TITLE_BG)
    out.paste(panel, (0, bar))
    ImageDraw.Draw(out).text(
        (10, bar // 2), title, fill=(255, 255, 255), font=fnt, anchor='lm'
    )
    return out


def note(panel: Image.Image, text: str) -> None:
    """A line of ``text`` on a white band across the middle of ``panel``,
    in place."""
    fnt = font(max(16, panel.width // 28))
    draw = ImageDraw.Draw(panel)
    tw, th = text_size(draw, text, fnt)
    while tw > panel.width - 20 and fnt.size > 10:
        fnt = font(fnt.size - 1)
        tw, th = text_size(draw, text, fnt)
    y = panel.height // 2
    draw.rectangle(
        (0, y - th, panel.width, y + th), fill=NOTE_BG, outline=(0, 0, 0)
    )
    draw.text(
        (panel.width // 2, y), text, fill=(0, 0, 0), font=fnt, anchor='mm'
    )


def label_box(
    x: float,
    y: float,
    w: float,
    h: float,
    size: Tuple[int, int],
    placed: Sequence[Tuple[float, float, float, float]],
) -> Tuple[float, float, float, float]:
    """Where a ``w`` x ``h`` label of a box with top-left ``(x, y)`` goes:
    above the box (inside it at the image's top edge), moved down a row at
    a time while it would cover a label already ``placed``; within the
    picture of ``size`` (width, height)."""
    left = min(max(0.0, x), size[0] - w)
    top = y - h if y - h >= 0 else y
    for _ in range(len(placed) + 1):
        box = (left, top, left + w, top + h)
        if not any(
            box[0] < p[2] and p[0] < box[2] and box[1] < p[3] and p[1] < box[3]
            for p in placed
        ):
            break
        top = min(top + h, size[1] - h)
    return box


def detection_panel(
    image: np.ndarray,
    title: str,
    bboxes: np.ndarray,
    labels: np.ndarray,
    classes: Optional[Sequence[str]] = None,
    palette: Optional[Sequence] = None,
    scores: Optional[np.ndarray] = None,
    masks: Optional[np.ndarray] = None,
    score_thr: float = 0.0,
) -> Image.Image:
    """Boxes (and masks) on ``image``.

    Args:
        image: RGB ``(H, W, 3)``.
        title: the title bar's text.
        bboxes: ``(N, 4)`` x1, y1, x2, y2 in ``image`` pixels.
        labels: ``(N,)`` class indices.
        classes, palette: class names and RGB colours by index.
        scores: ``(N,)`` for predictions (drawn after the name); ``None``
            for ground truth.
        masks: ``(N, H, W)`` bool, or ``None``.
        score_thr: predictions below it are not drawn; when none is left
            the panel says so.

    Returns:
        PIL.Image: the titled panel, at least :data:`PANEL_WIDTH` wide.
    """
    bboxes = np.asarray(bboxes, dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    keep = np.ones(len(labels), dtype=bool)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        keep = scores >= score_thr
    order = np.argsort(-scores) if scores is not None else np.arange(len(keep))
    order = [i for i in order if keep[i]][::-1]  # best drawn last (on top)
    canvas = np.ascontiguousarray(image.copy())
    if masks is not None:
        for i in order:
            tint(
                canvas,
                np.asarray(masks[i], bool),
                class_color(palette, int(labels[i])),
            )
    canvas = scale_up(canvas)
    factor = canvas.shape[1] / image.shape[1]
    panel = Image.fromarray(canvas)
    draw = ImageDraw.Draw(panel)
    fnt = font(max(14, panel.width // 28))
    line = max(3, panel.width // 170)
    for i in order:  # boxes, the best last (on top)
        color = class_color(palette, int(labels[i]))
        x1, y1, x2, y2 = (float(v) * factor for v in bboxes[i])
        # a dark edge around the coloured line: visible on any background
        draw.rectangle(
            (x1 - 1, y1 - 1, x2 + 1, y2 + 1), outline=(0, 0, 0), width=line + 2
        )
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
    placed: List[Tuple[float, float, float, float]] = []
    for i in order[::-1]:  # labels, the best first: it gets its place
        x1, y1 = (float(v) * factor for v in bboxes[i][:2])
        text = class_name(classes, int(labels[i]))
        if scores is not None:
            text += f' {scores[i]:.2f}'
        tw, th = text_size(draw, text, fnt)
        box = label_box(x1, y1, tw + 8, th + 8, panel.size, placed)
        placed.append(box)
        color = class_color(palette, int(labels[i]))
        draw.rectangle(box, fill=color, outline=(0, 0, 0))
        draw.text(
            (box[0] + 4, box[1] + 4 + th),
            text,
            fill=ink_for(color),
            font=fnt,
            anchor='ls',
        )
    if scores is not None and not order:
        if len(scores):
            best = int(np.argmax(scores))
            note(
                panel,
                f'nothing scored >= {score_thr:.2f} (best: '
                f'{class_name(classes, int(labels[best]))} '
                f'{scores[best]:.2f})',
            )
        else:
            note(panel, 'no detections')
    return titled(panel, title)


def segmentation_panel(
    image: np.ndarray,
    title: str,
    seg: np.ndarray,
    classes: Sequence[str],
    palette: Optional[Sequence] = None,
    alpha: float = ALPHA,
) -> Image.Image:
    """A label map ``seg`` ``(H, W)`` tinted on ``image`` with opacity
    ``alpha``: pixels of a class named ``background`` and labels outside
    ``classes`` (ignored) keep their colours; each region gets a thin
    outline."""
    canvas = np.ascontiguousarray(image.copy())
    seg = np.asarray(seg)
    shown = []
    for label in np.unique(seg):
        label = int(label)
        if label >= len(classes) or classes[label] in UNTINTED:
            continue
        where = seg == label
        color = class_color(palette, label)
        tint(canvas, where, color, alpha)
        contours, _ = cv2.findContours(
            where.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
        )
        cv2.drawContours(canvas, contours, -1, color, 1)
        shown.append(label)
    panel = Image.fromarray(scale_up(canvas))
    if not shown:
        note(panel, 'no class pixels (background only)')
    return titled(panel, title)


def classification_panel(
    image: np.ndarray, title: str, topk: Sequence[Tuple[str, float]]
) -> Image.Image:
    """``image`` with the top-k classes and scores listed below it, each
    with a bar of its score."""
    panel = Image.fromarray(scale_up(np.ascontiguousarray(image)))
    fnt = font(max(16, panel.width // 26))
    draw = ImageDraw.Draw(panel)
    _, th = text_size(draw, 'Ag', fnt)
    row = th + 14
    out = Image.new(
        'RGB',
        (panel.width, panel.height + row * len(topk) + 10),
        (255, 255, 255),
    )
    out.paste(panel, (0, 0))
    draw = ImageDraw.Draw(out)
    # name | score | bar of the score
    score_x = panel.width * 11 // 20
    bar_x = score_x + 12
    bar_w = panel.width - bar_x - 12
    for k, (name, score) in enumerate(topk):
        y = panel.height + 6 + k * row
        bold = font(fnt.size, bold=True) if k == 0 else fnt
        draw.text(
            (10, y + row // 2),
            f'{k + 1}. {name}',
            fill=(0, 0, 0),
            font=bold,
            anchor='lm',
        )
        draw.rectangle(
            (bar_x, y + 4, bar_x + bar_w, y + row - 4), outline=(120, 120, 120)
        )
        draw.rectangle(
            (bar_x, y + 4, bar_x + int(bar_w * float(score)), y + row - 4),
            fill=(70, 130, 200),
        )
        draw.text(
            (score_x, y + row // 2),
            f'{float(score):.2f}',
            fill=(0, 0, 0),
            font=fnt,
            anchor='rm',
        )
    return titled(out, title)


# ------------------------------------------------------------- the sheet
def legend(
    labels: Sequence[int],
    classes: Sequence[str],
    palette: Optional[Sequence],
    width: int,
) -> Image.Image:
    """Colour swatches and names of ``labels`` in rows across ``width``
    pixels; classes named ``background`` are listed as not tinted."""
    fnt = font(max(16, PANEL_WIDTH // 28))
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    _, th = text_size(probe, 'Ag', fnt)
    items = []
    for label in labels:
        name = class_name(classes, label)
        if name in UNTINTED:
            name += ' (not tinted)'
        items.append((name, class_color(palette, label)))
    x, y, row_h = 10, 0, th + 16
    positions = []
    for name, color in items:
        w = th + 8 + text_size(probe, name, fnt)[0] + 24
        if x + w > width and x > 10:
            x, y = 10, y + row_h
        positions.append((x, y, name, color))
        x += w
    out = Image.new('RGB', (width, y + row_h + 8), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for x, y, name, color in positions:
        draw.rectangle(
            (x, y + 8, x + th, y + 8 + th), fill=color, outline=(0, 0, 0)
        )
        draw.text(
            (x + th + 8, y + 8 + th // 2),
            name,
            fill=(0, 0, 0),
            font=fnt,
            anchor='lm',
        )
    return out


def side_by_side(
    panels: Sequence[Image.Image], bottom: Optional[Image.Image] = None
) -> Image.Image:
    """``panels`` left to right (top-aligned, :data:`GAP` apart) over
    ``bottom`` (e.g. a :func:`legend` as wide as the row)."""
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    height = max(p.height for p in panels)
    total = height + (bottom.height if bottom is not None else 0)
    out = Image.new('RGB', (width, total), (255, 255, 255))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + GAP
    if bottom is not None:
        out.paste(bottom, (0, height))
    return out


def detection_sheet(
    image: np.ndarray,
    gt: dict,
    pred: dict,
    classes: Optional[Sequence[str]],
    palette: Optional[Sequence],
    score_thr: float,
) -> Image.Image:
    """Panels "ground truth" (left) and "prediction" (right) of
    :func:`detection_panel`; ``gt`` holds ``bboxes``, ``labels`` (and
    ``masks``), ``pred`` also ``scores``."""
    left = detection_panel(
        image, 'ground truth', classes=classes, palette=palette, **gt
    )
    right = detection_panel(
        image,
        f'prediction (score >= {score_thr:.2f})',
        classes=classes,
        palette=palette,
        score_thr=score_thr,
        **pred,
    )
    return side_by_side([left, right])


def segmentation_sheet(
    image: np.ndarray,
    gt: Optional[np.ndarray],
    pred: np.ndarray,
    classes: Sequence[str],
    palette: Optional[Sequence],
    alpha: float = ALPHA,
) -> Image.Image:
    """Panels "ground truth" (left, when ``gt`` is given) and "prediction"
    of :func:`segmentation_panel` (opacity ``alpha``) over a legend of the
    classes in either (ignored labels left out)."""
    maps = ([gt] if gt is not None else []) + [pred]
    titles = (['ground truth'] if gt is not None else []) + ['prediction']
    panels = [
        segmentation_panel(image, t, m, classes, palette, alpha)
        for t, m in zip(titles, maps)
    ]
    present = sorted(
        {int(v) for m in maps for v in np.unique(m) if v < len(classes)}
    )
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    return side_by_side(panels, legend(present, classes, palette, width))


def _numpy(value) -> np.ndarray:
    """A tensor, mmdet box/mask structure or array as a numpy array."""
    if hasattr(value, 'tensor'):  # mmdet HorizontalBoxes
        value = value.tensor
    if hasattr(value, 'to_ndarray'):  # mmdet BitmapMasks / PolygonMasks
        return value.to_ndarray()
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def instances_of(instances) -> dict:
    """``bboxes``, ``labels`` and, where present, ``scores`` and ``masks``
    of an mmdet ``InstanceData`` (``gt_instances``/``pred_instances``) as
    the keyword arguments of :func:`detection_panel`."""
    out = dict(
        bboxes=_numpy(instances.bboxes), labels=_numpy(instances.labels)
    )
    for key in ('scores', 'masks'):
        if key in instances:
            out[key] = _numpy(instances.get(key))
    if 'masks' in out:
        out['masks'] = out['masks'].astype(bool)
    return out


def save_png(picture: Image.Image, path: str) -> str:
    """Write ``picture`` as PNG atomically (temporary file, then rename);
    returns ``path``."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            picture.save(f, format='PNG', optimize=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
