# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""User errors of the tools: one clear message, no traceback.

A user error is a file or an argument that cannot be used as given: the
message names it, says what was wrong and what is allowed.

* :class:`UserError`: raised by the library for such cases;
* :func:`read_config`: ``Config.fromfile`` with messages that name the file
  (and line) of a syntax error, a missing base or a failing expression;
* :func:`diagnose_data`: after a dataset failed to build, find the file or
  folder behind it (malformed annotation JSON, no images);
* :func:`user_errors`: the tools' context: :class:`UserError` and
  :class:`~projects.van_lska.weights.coverage.CheckpointError` end the
  process with their message (exit 1).
"""

import argparse
import ast
import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterable, Iterator, List, Optional

from mmengine.config import Config

from projects.van_lska.weights.coverage import CheckpointError


class UserError(ValueError):
    """A file or argument that cannot be used as given (the message says
    which, what was wrong and what is allowed)."""


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1 (argparse then prints
    ``argument --iters: must be a positive integer; got -5``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'must be a positive integer; got {text!r}'
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f'must be a positive integer; got {value}'
        )
    return value


def non_negative_int(text: str) -> int:
    """``argparse`` type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f'must be an integer >= 0; got {text!r}'
        )
    return value


# --------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------
def _bases(path: str) -> List[str]:
    """The local ``_base_`` files of a config (``pkg::`` bases skipped)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [
                osp.normpath(osp.join(osp.dirname(path), n))
                for n in names
                if isinstance(n, str) and '::' not in n
            ]
    return []


def _syntax_error_in(path: str, seen=None) -> Optional[str]:
    """``'FILE, line N: MESSAGE\\n    TEXT'`` for the first syntax error in
    ``path`` or its local bases."""
    seen = seen if seen is not None else set()
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    try:
        with open(path, encoding='utf-8') as f:
            compile(f.read(), path, 'exec')
    except SyntaxError as e:
        text = (e.text or '').rstrip()
        return f'{path}, line {e.lineno}: {e.msg}' + (
            f'\n    {text.strip()}' if text else ''
        )
    except ValueError as e:  # null bytes
        return f'{path}: {e}'
    for base in _bases(path):
        found = _syntax_error_in(base, seen)
        if found:
            return found
    return None


def read_config(path: str) -> Config:
    """``Config.fromfile(path)``; a config that cannot be read raises
    :class:`UserError` naming the file (and line).

    Raises:
        UserError: missing file or base, syntax error, failing expression.
    """
    if not osp.isfile(path):
        what = 'is a folder' if osp.isdir(path) else 'does not exist'
        raise UserError(
            f'config {path} {what}; give a config file such as '
            'configs/maskrcnn_van_lska_b1.py'
        )
    try:
        return Config.fromfile(path)
    except SyntaxError as e:
        where = _syntax_error_in(path) or f'{path}: {e}'
        raise UserError(
            f'config {path} has a syntax error (it must be valid Python):\n'
            f'  {where}'
        ) from None
    except FileNotFoundError as e:
        missing = e.filename or str(e)
        raise UserError(
            f'config {path}: a file it inherits from (_base_) does not '
            f'exist: {missing}'
        ) from None
    except (NameError, TypeError, KeyError, AttributeError, ImportError) as e:
        raise UserError(
            f'config {path} could not be evaluated: {type(e).__name__}: {e}'
        ) from None


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------
def _leaf_datasets(dataset_cfg) -> Iterator[dict]:
    if not isinstance(dataset_cfg, dict):
        return
    if 'datasets' in dataset_cfg:
        for sub in dataset_cfg['datasets']:
            yield from _leaf_datasets(sub)
    elif isinstance(dataset_cfg.get('dataset'), dict):
        yield from _leaf_datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def _check_json(path: str) -> Optional[str]:
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        return (
            f'annotation file {path} is not valid JSON: {e.msg} at line '
            f'{e.lineno}, column {e.colno}. Regenerate or fix the file.'
        )
    except UnicodeDecodeError as e:
        return f'annotation file {path} is not UTF-8 text JSON: {e.reason}'
    if isinstance(data, dict) and 'images' in data:
        if not isinstance(data['images'], list) or not data['images']:
            return (
                f'annotation file {path} lists no images ("images" is '
                'empty): the dataset has no samples. Point ann_file at a '
                'COCO file with images.'
            )
    elif isinstance(data, dict) and 'data_list' not in data:
        return (
            f'annotation file {path} is JSON but neither COCO (no "images" '
            'list) nor OpenMMLab (no "data_list")'
        )
    return None


def _count_files(folder: str, suffix: Optional[str]) -> int:
    count = 0
    for _, _, files in os.walk(folder):
        count += sum(1 for f in files if not suffix or f.endswith(suffix))
    return count


def diagnose_data(cfg: Config, phases: Iterable[str]) -> Optional[str]:
    """After a dataset failed to build: the file or folder that caused it
    (malformed or empty annotation JSON, image folder without images), or
    ``None`` when none of those is found."""
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader') or {}
        for ds in _leaf_datasets(loader.get('dataset')):
            root = ds.get('data_root') or ''
            if not isinstance(root, str) or '://' in root:
                continue
            ann = ds.get('ann_file') or ''
            if isinstance(ann, str) and ann.endswith('.json'):
                path = osp.join(root, ann)
                problem = osp.isfile(path) and _check_json(path)
                if problem:
                    return problem
            prefix = ds.get('data_prefix') or {}
            if isinstance(prefix, str):
                prefix = dict(img_path=prefix)
            for key in ('img_path', 'img'):
                sub = prefix.get(key)
                if not isinstance(sub, str):
                    continue
                folder = osp.join(root, sub)
                suffix = ds.get('img_suffix')
                if osp.isdir(folder) and not _count_files(folder, suffix):
                    kind = f'*{suffix} ' if suffix else ''
                    return (
                        f'{phase} dataset: folder {folder} holds no '
                        f'{kind}images, so the dataset has no samples. '
                        'Put the images there or point data_root/'
                        'data_prefix at them.'
                    )
    return None


# --------------------------------------------------------------------------
# The tools' context
# --------------------------------------------------------------------------
@contextmanager
def user_errors() -> Iterator[None]:
    """:class:`UserError` and ``CheckpointError`` end the process with their
    message on stderr (exit 1) instead of a traceback."""
    try:
        yield
    except (UserError, CheckpointError) as e:
        from projects.van_lska.apis.runner import fail

        fail(str(e))


def config_error_message(config: str, error: Exception) -> str:
    """A config value the model/runner refused while being built."""
    text = str(error).strip().strip('"').strip("'")
    return (
        f'config {config}: a setting was refused while building the '
        f'runner and model: {type(error).__name__}: {text}\n'
        f'(set {TRACEBACK_ENV}=1 to see the traceback)'
    )


#: Environment variable that shows the traceback of a refused config.
TRACEBACK_ENV = 'VAN_LSKA_TRACEBACK'


def build_and_run(
    cfg: Config,
    config: str,
    phases: Iterable[str],
    run,
    training: bool = True,
):
    """Build the runner of ``cfg`` and call ``run(runner)`` so that user
    errors read as one message (exit 1):

    * a setting refused while the runner and model are built (``ValueError``,
      ``TypeError``, ``KeyError``: an unknown type, a bad ``norm_cfg``, ...);
    * a dataset that fails to build because of a file or folder
      (:func:`diagnose_data`);
    * Ctrl-C / SIGTERM (:class:`~projects.van_lska.engine.shutdown.
      Interrupted`): for a training, where the last complete checkpoint is
      and how to continue (exit 130 / 143).

    Other errors keep their traceback.
    """
    from projects.van_lska.apis.runner import build_runner, fail
    from projects.van_lska.engine.shutdown import (
        interrupted_message,
        sigterm_raises,
    )

    debug = os.environ.get(TRACEBACK_ENV, '') not in ('', '0')
    with sigterm_raises():
        try:
            try:
                runner = build_runner(cfg)
            except (ValueError, TypeError, KeyError) as e:
                if debug or isinstance(e, (UserError, CheckpointError)):
                    raise
                fail(config_error_message(config, e))
            try:
                return run(runner)
            except (UserError, CheckpointError):
                raise
            except Exception:
                problem = diagnose_data(cfg, phases)
                if problem and not debug:
                    fail(problem)
                raise
        except KeyboardInterrupt as e:
            signum = getattr(e, 'signum', None)
            message = (
                interrupted_message(cfg.work_dir, signum)
                if training
                else f'Stopped by {e or "SIGINT (Ctrl-C)"}.'
            )
            fail(message, 128 + (signum or 2))
