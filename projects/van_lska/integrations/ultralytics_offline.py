# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Run Ultralytics (8.4) with no network access: every setting in one place.

Nothing here imports Ultralytics at module level: :func:`prepare_offline`
must run before the process's first ``import ultralytics``, because
Ultralytics decides at import whether it is online and where its config
folder is. What each setting closes (checked by ``tests/test_ultralytics.py``
with every socket and ``pip`` call of the training process recorded):

Environment (before the import)
    ``YOLO_OFFLINE=1``: ``ultralytics.utils.ONLINE`` is ``False``: no DNS
    probe at import (``is_online``), no analytics events, no ``pip install``
    of missing requirements (``check_requirements`` auto-update), no PyPI
    update check.
    ``YOLO_CONFIG_DIR=<dir>``: ``settings.json`` and fonts live in
    ``<dir>/Ultralytics``; the user's ``~/.config/Ultralytics`` is neither
    read nor written.
    ``ULTRALYTICS_API_KEY`` removed: with a key, the Platform callback
    streams the training to Ultralytics Platform.
Font
    ``<dir>/Ultralytics/Arial.ttf`` is a copy of matplotlib's bundled
    ``DejaVuSans.ttf``. Every dataset check (``check_det_dataset``) calls
    ``check_font('Arial.ttf')``, which looks in the config folder, then
    asks the network (``requests.head``) and downloads the font; found
    locally, it does neither. The font only draws plot labels.
Settings (:data:`OFFLINE_SETTINGS`, in ``<dir>/Ultralytics/settings.json``)
    ``sync=False`` (no analytics) and the ClearML, Comet, DVC, MLflow, Ray
    Tune, TensorBoard and W&B callbacks off (they reach servers when their
    packages are installed).
Train/val arguments (:data:`OFFLINE_TRAIN_ARGS`)
    ``pretrained=False`` (no ``yolo11n.pt``), ``amp=False`` (on a GPU,
    ``check_amp`` downloads a model to test AMP; on the CPU it is skipped
    anyway), ``plots=False`` (no plot fonts; also faster).
Model and data
    Build the model from a YAML (a ``*.pt`` name that is not a local file
    is downloaded by ``attempt_download_asset``); the ``data.yaml`` points
    to existing local folders and has no ``download:`` key.
"""

import os
import os.path as osp
import shutil
import sys
from pathlib import Path
from typing import Dict

#: What a user without Ultralytics is told (the one place it is written).
INSTALL_HINT = (
    'Ultralytics is an optional dependency of the VAN-LSKA suite (licence '
    'AGPL-3.0). Install it with: bash tools/install.sh --yolo (or pip '
    'install -r requirements/yolo.txt)'
)
#: Ultralytics settings for offline runs (keys of ultralytics' settings).
OFFLINE_SETTINGS: Dict[str, bool] = dict(
    sync=False,
    clearml=False,
    comet=False,
    dvc=False,
    mlflow=False,
    raytune=False,
    tensorboard=False,
    wandb=False,
)
#: Arguments of ``YOLO.train``/``YOLO.val`` for offline runs.
OFFLINE_TRAIN_ARGS: Dict[str, bool] = dict(
    pretrained=False, amp=False, plots=False
)
#: The font ``check_font`` asks for on every dataset check.
FONT_NAME = 'Arial.ttf'


def local_font() -> str:
    """matplotlib's bundled DejaVu Sans (a file in the installed package)."""
    import matplotlib

    path = osp.join(
        matplotlib.get_data_path(), 'fonts', 'ttf', 'DejaVuSans.ttf'
    )
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} is missing: matplotlib is expected to ship DejaVuSans.ttf'
        )
    return path


def prepare_offline(config_dir: str) -> Path:
    """Set up this process so that Ultralytics never uses the network.

    Call it before the first ``import ultralytics`` of the process (see the
    module docstring for what it sets). Calling it again with the same
    folder is harmless.

    Args:
        config_dir: Ultralytics' config folder for this process (settings,
            font); created if missing.

    Returns:
        Path: Ultralytics' ``USER_CONFIG_DIR``, ``<config_dir>/Ultralytics``,
        absolute.

    Raises:
        ImportError: Ultralytics is not installed (names the install).
        RuntimeError: Ultralytics was already imported in this process with
            another config folder or while online; its import-time choices
            can no longer be changed.
    """
    config_dir = Path(config_dir).resolve()
    # Ultralytics' get_user_config_dir: $YOLO_CONFIG_DIR/Ultralytics.
    user_dir = config_dir / 'Ultralytics'
    if sys.modules.get('ultralytics') is not None:  # already imported
        from ultralytics.utils import ONLINE, USER_CONFIG_DIR

        if ONLINE or Path(USER_CONFIG_DIR).resolve() != user_dir:
            raise RuntimeError(
                'prepare_offline() must run before the first `import '
                f'ultralytics`; it was imported with ONLINE={ONLINE} and '
                f'config folder {USER_CONFIG_DIR} (wanted {user_dir})'
            )
    user_dir.mkdir(parents=True, exist_ok=True)
    os.environ['YOLO_OFFLINE'] = '1'
    os.environ['YOLO_CONFIG_DIR'] = str(config_dir)
    os.environ.pop('ULTRALYTICS_API_KEY', None)
    font = user_dir / FONT_NAME
    if not font.exists():
        tmp = font.with_suffix('.tmp')
        shutil.copyfile(local_font(), tmp)
        os.replace(tmp, font)
    try:
        from ultralytics.utils import SETTINGS
    except ImportError as exc:
        raise ImportError(f'{INSTALL_HINT} ({exc})') from exc
    SETTINGS.update(OFFLINE_SETTINGS)
    return user_dir
