# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Kernel-size rules of the LKA and LSKA gating modules.

Both gating modules are a chain of depthwise convolutions: a local kernel of
length ``local`` followed by a dilated kernel of length ``dilated`` with
dilation ``dilation`` (LKA uses square kernels, LSKA splits each into a
``1 x k`` and a ``k x 1`` pair). The *trivial* variants of the paper use one
undecomposed kernel of length ``kernel_size`` instead.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

#: LKA decompositions from the VAN paper's ablation: K -> (local, dilated, d).
#: Local kernel (2d-1), dilated kernel ceil(K/d) with dilation d. 21 is the
#: official choice (receptive field 23).
LKA_KERNELS: Dict[int, Tuple[int, int, int]] = {
    7: (3, 4, 2),
    14: (5, 5, 3),
    21: (5, 7, 3),
    28: (7, 7, 4),
}

#: The six sizes the LSKA authors released; other sizes that satisfy
#: :func:`lska_kernels`' rule are allowed as well.
LSKA_AUTHOR_KERNEL_SIZES = (7, 11, 23, 35, 41, 53)


@dataclass(frozen=True)
class GatingKernels:
    """The depthwise kernels of one gating module.

    Attributes:
        kernel_size (int): The nominal kernel size ``k`` a user asks for.
        local (int): Length of the local (undilated) kernel.
        dilated (int, optional): Length of the dilated kernel, ``None`` for
            the trivial variants that have a single kernel.
        dilation (int): Dilation of the dilated kernel (1 when trivial).
    """

    kernel_size: int
    local: int
    dilated: Optional[int] = None
    dilation: int = 1

    @property
    def trivial(self) -> bool:
        return self.dilated is None

    @property
    def local_padding(self) -> int:
        return (self.local - 1) // 2

    @property
    def dilated_padding(self) -> int:
        assert self.dilated is not None
        return (self.dilated - 1) * self.dilation // 2

    @property
    def receptive_field(self) -> int:
        if self.dilated is None:
            return self.local
        return self.local + (self.dilated - 1) * self.dilation


def _lska_allowed_text() -> str:
    return (
        'LSKA kernel_size must satisfy d = 2 for k < 23 and d = 3 for '
        'k >= 23, k1 = 2d - 1, k2 = (k - k1) / d + 1 an odd integer '
        '>= 3: that is 7, 11, 15, 19 (k = 3 mod 4) or 23, 29, 35, 41, '
        '47, 53, 59, 65, ... (k = 5 mod 6); the authors released '
        f'{", ".join(map(str, LSKA_AUTHOR_KERNEL_SIZES))}'
    )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def trivial_kernels(kernel_size: int, what: str) -> GatingKernels:
    """One undecomposed kernel (the paper's LKA-trivial / LSKA-trivial)."""
    if not _is_int(kernel_size) or kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(
            f'{what}-trivial kernel_size must be an odd int '
            f'>= 3 (3, 5, 7, ...), got {kernel_size!r}'
        )
    return GatingKernels(kernel_size, local=kernel_size)


def lka_kernels(kernel_size: int = 21, trivial: bool = False) -> GatingKernels:
    """Resolve the kernels of an LKA gating module.

    Args:
        kernel_size (int): One of :data:`LKA_KERNELS` (decomposed) or any odd
            size >= 3 (trivial). Defaults to 21, the official LKA.
        trivial (bool): One ``k x k`` depthwise conv instead of the
            local + dilated pair.

    Raises:
        ValueError: The size is not allowed; the message lists what is.
    """
    if trivial:
        return trivial_kernels(kernel_size, 'LKA')
    if not _is_int(kernel_size) or kernel_size not in LKA_KERNELS:
        allowed = ', '.join(
            f'{k} (local {loc}x{loc}, dilated {d}x{d} with dilation {r})'
            for k, (loc, d, r) in LKA_KERNELS.items()
        )
        raise ValueError(
            f'LKA kernel_size must be one of {allowed}; '
            f'got {kernel_size!r}. Use trivial=True for a single '
            'odd k x k kernel.'
        )
    local, dilated, dilation = LKA_KERNELS[kernel_size]
    return GatingKernels(kernel_size, local, dilated, dilation)


def lska_kernels(
    kernel_size: int = 23, trivial: bool = False
) -> GatingKernels:
    """Resolve the kernels of an LSKA gating module.

    The rule (it reproduces the authors' table for 7, 11, 23, 35, 41, 53):
    ``d = 2`` for ``k < 23`` and ``3`` from 23 on, ``k1 = 2d - 1``,
    ``k2 = (k - k1) / d + 1`` which must be an odd integer >= 3.

    Args:
        kernel_size (int): The nominal kernel size ``k``. Defaults to 23,
            the separable form of the official LKA.
        trivial (bool): One ``1 x k`` + ``k x 1`` pair instead of the
            local + dilated pairs.

    Raises:
        ValueError: The size does not satisfy the rule.
    """
    if trivial:
        return trivial_kernels(kernel_size, 'LSKA')
    if not _is_int(kernel_size):
        raise ValueError(f'{_lska_allowed_text()}; got {kernel_size!r}')
    dilation = 2 if kernel_size < 23 else 3
    local = 2 * dilation - 1
    span = kernel_size - local
    dilated = span // dilation + 1
    if (
        kernel_size < 7
        or span % dilation != 0
        or dilated % 2 == 0
        or dilated < 3
    ):
        raise ValueError(f'{_lska_allowed_text()}; got {kernel_size!r}')
    return GatingKernels(kernel_size, local, dilated, dilation)


def infer_lka_kernel_size(local: int, dilated: Optional[int]) -> int:
    """The nominal LKA ``kernel_size`` of a checkpoint's kernel lengths."""
    if dilated is None:
        return local
    for k, (loc, dil, _) in LKA_KERNELS.items():
        if (loc, dil) == (local, dilated):
            return k
    raise ValueError(
        f'unknown LKA kernels: local {local}x{local}, dilated '
        f'{dilated}x{dilated}'
    )


def infer_lska_kernel_size(local: int, dilated: Optional[int]) -> int:
    """The nominal LSKA ``kernel_size`` of a checkpoint's kernel lengths."""
    if dilated is None:
        return local
    dilation = (local + 1) // 2
    return local + (dilated - 1) * dilation
