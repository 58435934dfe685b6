# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Snapshots of resolved configs and a value-for-value comparison.

A snapshot maps a config path (relative to the repository root, e.g.
``'configs/maskrcnn_van_lka_b0.py'``) to ``Config.fromfile(path).to_dict()``
in a JSON form that keeps every distinction mmengine keeps: tuples are
written as ``{"__tuple__": [...]}`` so that ``(0, 1)`` and ``[0, 1]`` do not
compare equal, floats keep their exact ``repr`` (JSON round-trips it), and
any other type is refused instead of being silently stringified.

It was used to prove that rewriting the configs as deltas on the upstream
``mmdet::``/``mmseg::``/``mmpretrain::`` bases changed no value
(``tests/test_config_equality.py``). Regenerate a snapshot with::

    python -m projects.van_lska.testing.config_snapshot write \\
        tests/snapshots/config_snapshot.json \\
        configs/*.py configs/quickstart/*.py

and compare the configs against it with ``... compare SNAPSHOT``.
"""

import argparse
import contextlib
import fnmatch
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
)

from projects.van_lska.apis.config import REPO_ROOT

TUPLE_TAG = '__tuple__'
FLOAT_TAG = '__float__'


def to_jsonable(value: Any, where: str = '') -> Any:
    """Turn a ``Config.to_dict()`` value into plain JSON types.

    Args:
        value: a dict/list/tuple/str/int/float/bool/None tree.
        where: dotted path of ``value`` (for the error message).

    Returns:
        The same tree with tuples as ``{'__tuple__': [...]}`` and
        non-finite floats as ``{'__float__': 'inf'}``; dict keys sorted.

    Raises:
        TypeError: a value of any other type, or a non-string dict key.
    """
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=str):
            if not isinstance(key, str):
                raise TypeError(
                    f'config key {key!r} at {where or "<root>"} is a '
                    f'{type(key).__name__}; only str keys can be snapshotted'
                )
            out[key] = to_jsonable(value[key], _join(where, key))
        if TUPLE_TAG in out or FLOAT_TAG in out:
            raise TypeError(
                f'config dict at {where or "<root>"} uses the reserved key '
                f'{TUPLE_TAG!r} or {FLOAT_TAG!r}'
            )
        return out
    if isinstance(value, tuple):
        return {
            TUPLE_TAG: [
                to_jsonable(v, f'{where}[{i}]') for i, v in enumerate(value)
            ]
        }
    if isinstance(value, list):
        return [to_jsonable(v, f'{where}[{i}]') for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {FLOAT_TAG: repr(value)}
    raise TypeError(
        f'config value at {where or "<root>"} has type '
        f'{type(value).__name__} ({value!r}); only dict, list, tuple, str, '
        'int, float, bool and None can be snapshotted'
    )


def _join(where: str, key: str) -> str:
    return f'{where}.{key}' if where else key


def resolve_config(path: os.PathLike) -> Dict[str, Any]:
    """``Config.fromfile(path).to_dict()`` in the snapshot's JSON form."""
    from mmengine.config import Config

    return to_jsonable(Config.fromfile(str(path)).to_dict())


@contextlib.contextmanager
def metafiles_read_once() -> Iterator[None]:
    """Read each upstream metafile once while resolving many configs.

    mmengine resolves every ``'mmdet::...'`` base by first loading all the
    package's metafiles (about 100 YAML files for mmdet, ~0.6 s) to look the
    name up in them, for ``_base_`` files too. Inside this context the
    YAML files that ``mmengine.config.utils`` loads are parsed once and
    reused (it only reads them), which makes resolving the 58 configs ~20x
    faster; the resolved configs are the same.
    """
    from mmengine.config import utils

    load = utils.load
    cache: Dict[Tuple[str, float], Any] = {}

    def load_once(file, *args, **kwargs):
        if args or kwargs or not isinstance(file, (str, Path)):
            return load(file, *args, **kwargs)
        key = (str(file), os.path.getmtime(file))
        if key not in cache:
            cache[key] = load(file)
        return cache[key]

    utils.load = load_once
    try:
        yield
    finally:
        utils.load = load


def _relative_name(path: Path, root: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(
            f'config {path} is not inside the repository root {root}; '
            'snapshot keys are paths relative to it'
        ) from None


def snapshot_configs(
    paths: Iterable[os.PathLike], root: os.PathLike = REPO_ROOT
) -> Dict[str, Any]:
    """Resolve each config and key it by its path relative to ``root``."""
    root = Path(root)
    snapshot: Dict[str, Any] = {}
    with metafiles_read_once():
        for path in paths:
            path = Path(path)
            if not path.is_absolute():
                path = root / path
            if not path.is_file():
                raise FileNotFoundError(f'config {path} does not exist')
            snapshot[_relative_name(path, root)] = resolve_config(path)
    return dict(sorted(snapshot.items()))


def write_snapshot(
    snapshot: Dict[str, Any], out: os.PathLike, overwrite: bool = False
) -> None:
    """Write ``snapshot`` as indented, key-sorted JSON, atomically.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(
            f'{out} exists; pass overwrite=True (--force) to replace it'
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(snapshot, indent=1, sort_keys=True) + '\n'
    fd, tmp = tempfile.mkstemp(prefix=out.name, dir=out.parent)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_snapshot(path: os.PathLike) -> Dict[str, Any]:
    """Read a snapshot written by :func:`write_snapshot`."""
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@dataclass(frozen=True)
class Difference:
    """One differing value: ``path`` like ``model.roi_head.bbox_head[0].type``;
    ``kind`` is 'added' (only in ``after``), 'removed' (only in ``before``)
    or 'changed'; missing sides are ``None``."""

    config: str
    path: str
    kind: str
    before: Any = None
    after: Any = None

    def __str__(self) -> str:
        return (
            f'{self.config}: {self.path} {self.kind}: '
            f'{_short(self.before)} -> {_short(self.after)}'
        )


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + '...'


def diff_values(
    before: Any, after: Any, config: str = '', where: str = ''
) -> List[Difference]:
    """All differences between two snapshot trees, leaf by leaf.

    Dicts are compared key by key (order does not matter), lists element by
    element (a length change also reports the surplus elements), tuples as
    tuples; values of different JSON types differ as a whole.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        if (TUPLE_TAG in before) != (TUPLE_TAG in after):
            return [Difference(config, where, 'changed', before, after)]
        if TUPLE_TAG in before:
            return diff_values(
                before[TUPLE_TAG], after[TUPLE_TAG], config, where
            )
        out: List[Difference] = []
        for key in sorted(set(before) | set(after)):
            sub = _join(where, key)
            if key not in after:
                out.append(
                    Difference(config, sub, 'removed', before[key], None)
                )
            elif key not in before:
                out.append(Difference(config, sub, 'added', None, after[key]))
            else:
                out.extend(diff_values(before[key], after[key], config, sub))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            sub = f'{where}[{i}]'
            if i >= len(after):
                out.append(Difference(config, sub, 'removed', before[i], None))
            elif i >= len(before):
                out.append(Difference(config, sub, 'added', None, after[i]))
            else:
                out.extend(diff_values(before[i], after[i], config, sub))
        return out
    # bool is an int in Python, and 1 == 1.0: compare the types as well.
    if type(before) is not type(after) or before != after:
        return [Difference(config, where, 'changed', before, after)]
    return []


class _Any:
    """Sentinel: an :class:`AllowedDifference` that accepts any value."""

    def __repr__(self) -> str:
        return 'ANY'


ANY = _Any()
KINDS = ('added', 'removed', 'changed')


@dataclass(frozen=True)
class AllowedDifference:
    """A difference the equality check accepts, with the reason why.

    Attributes:
        pattern: ``fnmatch`` pattern on :attr:`Difference.path` (``*`` also
            matches dots and brackets), e.g. ``'*._scope_'``.
        kind: the kind the difference must have (one of :data:`KINDS`).
        reason: one line saying why the difference is harmless.
        value: the only value the added/changed (or removed) side may hold;
            :data:`ANY` for any value, or a callable that computes the
            expected value from the config's snapshot (``before``) dict.
        configs: ``fnmatch`` patterns on the config path; the rule applies
            to configs matching any of them.
    """

    pattern: str
    kind: str
    reason: str
    value: Any = ANY
    configs: Tuple[str, ...] = ('*',)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f'AllowedDifference kind {self.kind!r} is not one of {KINDS}'
            )
        if not self.reason.strip():
            raise ValueError(
                f'AllowedDifference {self.pattern!r} needs a reason'
            )

    def matches(self, diff: Difference, before: Dict[str, Any]) -> bool:
        """Whether this rule accepts ``diff`` of a config whose snapshot is
        ``before``."""
        if diff.kind != self.kind:
            return False
        if not fnmatch.fnmatchcase(diff.path, self.pattern):
            return False
        if not any(fnmatch.fnmatchcase(diff.config, p) for p in self.configs):
            return False
        if self.value is ANY:
            return True
        expected = self.value(before) if callable(self.value) else self.value
        side = diff.before if diff.kind == 'removed' else diff.after
        return not diff_values(expected, side)


def compare_to_snapshot(
    snapshot: Dict[str, Any],
    allowed: Sequence[AllowedDifference] = (),
    root: os.PathLike = REPO_ROOT,
) -> Tuple[List[Difference], List[Tuple[Difference, AllowedDifference]]]:
    """Resolve every config named in ``snapshot`` again and compare.

    Returns:
        ``(unexpected, accepted)``: the differences no rule of ``allowed``
        matches, and the ``(difference, first matching rule)`` pairs of the
        others. The configs are equal up to ``allowed`` when ``unexpected``
        is empty. A config that no longer exists is an unexpected
        difference at path ``<file>``.
    """
    unexpected: List[Difference] = []
    accepted: List[Tuple[Difference, AllowedDifference]] = []
    with metafiles_read_once():
        resolved = {
            name: resolve_config(Path(root) / name)
            for name in snapshot
            if (Path(root) / name).is_file()
        }
    for name, before in snapshot.items():
        if name not in resolved:
            unexpected.append(Difference(name, '<file>', 'removed'))
            continue
        for diff in diff_values(before, resolved[name], name):
            rule = next((r for r in allowed if r.matches(diff, before)), None)
            if rule is None:
                unexpected.append(diff)
            else:
                accepted.append((diff, rule))
    return unexpected, accepted


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Write or check a snapshot of resolved configs '
        '(Config.fromfile(...).to_dict()).'
    )
    sub = parser.add_subparsers(dest='command', required=True)
    write = sub.add_parser('write', help='resolve configs into a snapshot')
    write.add_argument('snapshot', help='JSON file to write')
    write.add_argument('configs', nargs='+', help='config files')
    write.add_argument(
        '--force', action='store_true', help='replace an existing snapshot'
    )
    compare = sub.add_parser(
        'compare', help='list differences of the configs to a snapshot'
    )
    compare.add_argument('snapshot', help='JSON file written by "write"')
    args = parser.parse_args(argv)
    try:
        if args.command == 'write':
            snapshot = snapshot_configs(args.configs)
            write_snapshot(snapshot, args.snapshot, overwrite=args.force)
            print(f'{len(snapshot)} configs written to {args.snapshot}')
            return 0
        unexpected, _ = compare_to_snapshot(load_snapshot(args.snapshot))
    except (OSError, TypeError, ValueError) as err:
        parser.exit(2, f'error: {err}\n')
    for diff in unexpected:
        print(diff)
    print(f'{len(unexpected)} differences')
    return 1 if unexpected else 0


if __name__ == '__main__':
    raise SystemExit(main())
