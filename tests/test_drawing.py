# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The quick-start and demo pictures (:mod:`projects.van_lska.apis.
drawing`) are readable: panels at least 512 px wide under a title bar,
labels in a font that grows with the panel, a line on the picture when no
prediction passes the threshold, segmentation tinting only class pixels
with a legend; and ``demo/image_demo.py`` on a classification config."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from projects.van_lska.apis import drawing
from projects.van_lska.apis.drawing import PANEL_WIDTH, TITLE_BG

CLASSES = ('background', 'circle', 'triangle')
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75)]


def _image(h=96, w=128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(60, 200, (h, w, 3), dtype=np.uint8)


def _title_bar_height(picture: np.ndarray) -> int:
    """Rows from the top that are the title bar's colour (text aside)."""
    column = picture[:, 2]  # left margin: no text there
    rows = 0
    while rows < len(column) and tuple(column[rows]) == TITLE_BG:
        rows += 1
    return rows


def test_detection_sheet_panels_titles_labels():
    image = _image()
    gt = dict(
        bboxes=np.array([[10, 20, 60, 70]], np.float32),
        labels=np.array([1]),
        masks=np.zeros((1, 96, 128), bool),
    )
    gt['masks'][0, 20:70, 10:60] = True
    pred = dict(gt, scores=np.array([0.93], np.float32))
    sheet = np.asarray(
        drawing.detection_sheet(image, gt, pred, CLASSES, PALETTE, 0.5)
    )
    # two panels of >= 512 px, under title bars of >= 24 px
    assert sheet.shape[1] == 2 * PANEL_WIDTH + drawing.GAP
    bar = _title_bar_height(sheet)
    assert bar >= 24
    assert sheet.shape[0] == bar + 96 * PANEL_WIDTH // 128
    # the title text is drawn in white on the bar, in both panels
    for x0 in (0, PANEL_WIDTH + drawing.GAP):
        title = sheet[:bar, x0 : x0 + PANEL_WIDTH]
        assert (title == 255).all(axis=-1).sum() > 50
    # the label box ("circle 0.93") in the class colour above the box
    scale = PANEL_WIDTH / 128
    x, y = int(10 * scale), int(20 * scale)
    panel = sheet[bar:, PANEL_WIDTH + drawing.GAP :]
    label = panel[max(0, y - 20) : y, x : x + 60]
    assert (label == PALETTE[1]).all(axis=-1).sum() > 100
    # the mask is tinted, the rest of the image is not
    inside = panel[int(45 * scale), int(35 * scale)].astype(int)
    original = drawing.scale_up(image)[int(45 * scale), int(35 * scale)]
    assert (
        abs(inside - (original * 0.5 + np.array(PALETTE[1]) * 0.5)).max() < 3
    )
    outside = (int(85 * scale), int(100 * scale))
    assert (panel[outside] == drawing.scale_up(image)[outside]).all()


def test_label_font_grows_with_the_panel():
    draw = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    small = drawing.text_size(draw, 'circle 0.93', drawing.font(18))
    assert small[1] >= 12  # about 18 px glyphs at 512 px panel width
    big = drawing.text_size(draw, 'circle 0.93', drawing.font(36))
    assert big[0] > 1.8 * small[0]


@pytest.mark.parametrize(
    'scores, text',
    [([0.31], 'best: circle 0.31'), ([], 'no detections')],
)
def test_empty_prediction_says_so(scores, text, monkeypatch):
    notes = []
    original = drawing.note
    monkeypatch.setattr(
        drawing, 'note', lambda p, t: (notes.append(t), original(p, t))
    )
    n = len(scores)
    panel = np.asarray(
        drawing.detection_panel(
            _image(),
            'prediction',
            np.tile(np.float32([[10, 20, 60, 70]]), (n, 1)),
            np.ones(n, int),
            CLASSES,
            PALETTE,
            scores=np.float32(scores),
            score_thr=0.5,
        )
    )
    assert len(notes) == 1 and text in notes[0]
    # a white band with dark text across the middle of the picture
    bar = _title_bar_height(panel)
    middle = panel[bar + (panel.shape[0] - bar) // 2]
    assert (middle == 255).all(axis=-1).mean() > 0.5
    assert (panel[bar:] < 60).all(axis=-1).sum() > 50


def test_segmentation_tints_only_class_pixels_with_legend():
    image = _image()
    seg = np.zeros((96, 128), np.uint8)  # background
    seg[10:40, 10:40] = 1
    seg[50:90, 60:120] = 2
    seg[0:5, :] = 255  # ignored
    sheet = drawing.segmentation_sheet(image, seg, seg, CLASSES, PALETTE)
    sheet = np.asarray(sheet)
    up = drawing.scale_up(image)
    bar = _title_bar_height(sheet)
    panel = sheet[bar : bar + up.shape[0], :PANEL_WIDTH]
    scale = PANEL_WIDTH / 128
    # background and ignored pixels keep their colours (no darkening)
    for y, x in ((70, 20), (2, 64), (45, 50)):
        yy, xx = int(y * scale), int(x * scale)
        assert (panel[yy, xx] == up[yy, xx]).all()
    # class pixels are tinted with the class colour
    yy, xx = int(25 * scale), int(25 * scale)
    expected = up[yy, xx] * 0.5 + np.array(PALETTE[1]) * 0.5
    assert abs(panel[yy, xx].astype(int) - expected).max() < 3
    # a legend below the panels with a swatch per class shown
    legend = sheet[bar + up.shape[0] :]
    assert legend.shape[0] >= 24
    for color in PALETTE[1:]:
        assert (legend == color).all(axis=-1).sum() > 100
    assert (legend == PALETTE[0]).all(axis=-1).sum() > 100  # background


def test_classification_panel_lists_topk():
    rows = [('circle', 0.7), ('star', 0.2), ('square', 0.1)]
    panel = np.asarray(
        drawing.classification_panel(_image(), 'prediction', rows)
    )
    assert panel.shape[1] == PANEL_WIDTH
    bar = _title_bar_height(panel)
    image_rows = 96 * PANEL_WIDTH // 128
    listing = panel[bar + image_rows :]
    assert listing.shape[0] >= 3 * 24
    # the score bars: the first 0.7 of the bar width, the last 0.1
    blue = (listing == (70, 130, 200)).all(axis=-1)
    widths = [blue[r].sum() for r in np.nonzero(blue.any(axis=1))[0]]
    assert max(widths) > 5 * min(widths)


def test_save_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'a.png'
    drawing.save_png(Image.new('RGB', (8, 8)), str(path))
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', broken)
    with pytest.raises(OSError):
        drawing.save_png(Image.new('RGB', (8, 8), (255, 0, 0)), str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.png']


@pytest.mark.slow
def test_image_demo_on_a_classification_config(repo, tiny_imagenet, tmp_path):
    """``demo/image_demo.py`` draws the top-k classes of a classifier."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from projects.van_lska.apis.config import registry
    from projects.van_lska.apis.inference import image_demo

    config = str(repo / 'configs' / 'van_lka_b0_in1k.py')
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = registry('mmpretrain').build(Config.fromfile(config).model)
    names = [f'shape {i}' for i in range(1000)]
    ckpt = tmp_path / 'cls.pth'
    torch.save(
        {
            'state_dict': model.state_dict(),
            'meta': {'dataset_meta': {'classes': names}},
        },
        str(ckpt),
    )
    folder = Path(tiny_imagenet) / 'val' / 'n01440764'
    written = image_demo(
        str(folder), config, str(ckpt), str(tmp_path / 'out'), topk=3
    )
    assert [Path(p).name for p in written] == [
        f'{p.stem}.png' for p in sorted(folder.iterdir())
    ]
    picture = np.asarray(Image.open(written[0]).convert('RGB'))
    assert picture.shape[1] == PANEL_WIDTH  # 72-80 px images scaled up
    bar = _title_bar_height(picture)
    listing = picture[bar + 80 * PANEL_WIDTH // 72 - 2 :]
    rows = (listing == (70, 130, 200)).all(axis=-1).any(axis=1)
    # three score bars (the third may be too short to fill a row)
    assert rows.sum() >= 2 * 10


def test_labels_do_not_cover_each_other():
    placed = []
    for _ in range(3):  # three boxes with the same top-left corner
        placed.append(drawing.label_box(40, 60, 90, 24, (512, 512), placed))
    tops = sorted(box[1] for box in placed)
    assert tops == [36, 60, 84]  # above the box, then a row down each
    assert drawing.label_box(0, 0, 90, 24, (512, 512), []) == (0, 0, 90, 24)
    # kept inside the picture at the right edge
    assert drawing.label_box(500, 60, 90, 24, (512, 512), [])[2] == 512
