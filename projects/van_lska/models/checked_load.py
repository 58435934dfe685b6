# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The one place where a module sees its part of a checkpoint before
PyTorch loads it: the VAN backbone converts public formats and refuses
another gating, kernel or arch there; each gating refuses convs it does not
have."""

from typing import Any, Dict

import torch
import torch.nn as nn


class ChecksStateDict(nn.Module):
    """A module that checks (and may convert) its entries of a state dict
    before they are loaded.

    ``load_state_dict`` (strict or not, mmengine's ``load_checkpoint``,
    :func:`projects.van_lska.weights.coverage.load_and_report`) calls
    :meth:`_prepare_state_dict` for this module, then PyTorch's own loading
    of its direct parameters and buffers. Subclasses implement
    :meth:`_prepare_state_dict`; put this class before any other
    ``nn.Module`` base (e.g. ``class X(ChecksStateDict, BaseModule)``).
    """

    def _prepare_state_dict(
        self, state_dict: Dict[str, torch.Tensor], prefix: str
    ) -> None:
        """Check and, if needed, rewrite in place the entries of
        ``state_dict`` whose keys start with ``prefix`` (this module's).

        Raises:
            ValueError: the checkpoint does not fit this module; nothing
                of it is loaded then.
        """
        raise NotImplementedError

    def _load_from_state_dict(
        self, state_dict: Dict[str, torch.Tensor], prefix: str, *args: Any
    ) -> None:
        # args: local_metadata, strict, missing_keys, unexpected_keys,
        # error_msgs (nn.Module._load_from_state_dict)
        self._prepare_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)
