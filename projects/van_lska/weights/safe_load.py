# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Let ``torch.load(weights_only=True)`` read OpenMMLab training checkpoints.

torch >= 2.6 loads with ``weights_only=True``, which refuses every class it
does not know. mmengine 0.10.7 saves its ``MessageHub`` state (a dict of
``HistoryBuffer`` objects holding numpy arrays) in each checkpoint and does
not pass ``weights_only``, so resuming or testing fails. Instead of turning
safe loading off, allow exactly the plain-data classes such files contain.
Each one only holds data: none runs code when unpickled. ``getattr`` is
replaced by a version that answers only ``HistoryBuffer``'s own lookups.
"""

import argparse
import pickle
from typing import List

import numpy as np
import torch


def _numpy_globals() -> List:
    allowed = [np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # The dtype classes (np.dtypes.Float64DType, ...) of numpy >= 1.25.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, name)
            for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return allowed


def _history_buffer_getattr(obj, name: str):
    """Stands in for ``getattr`` while unpickling, for ``HistoryBuffer`` only.

    A ``HistoryBuffer`` pickles its statistics functions as
    ``getattr(HistoryBuffer, 'min')``. A general ``getattr`` would let a file
    reach anything, so only those lookups are answered.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # The class-level registry is only filled once a HistoryBuffer has been
    # created, so a fresh process must also accept the four built-in names.
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics methods are allowed'
    )


def allow_openmmlab_checkpoints() -> None:
    """Add mmengine's and numpy's plain-data classes to torch's safe list."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 does not restrict loading
        return
    from mmengine.logging.history_buffer import HistoryBuffer

    add(
        [HistoryBuffer, argparse.Namespace, *_numpy_globals()]
        + [(_history_buffer_getattr, 'builtins.getattr')]
    )
