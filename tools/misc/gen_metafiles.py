# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Write ``model-index.yml`` and ``configs/metafiles/*.yml`` from configs/.

One model entry per config (``_base_`` excluded), Parameters/FLOPs from
``get_flops``, Weights/Results only for public files, a README link per
Collection: :mod:`projects.van_lska.apis.metafiles`.

Example::

    python tools/misc/gen_metafiles.py            # measure + write
    python tools/misc/gen_metafiles.py --check    # fail if files are stale
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from projects.van_lska.apis.metafiles import DEFAULT_CACHE, generate


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--cache',
        type=Path,
        default=DEFAULT_CACHE,
        help='JSON cache of get_flops results',
    )
    parser.add_argument(
        '--force', action='store_true', help='re-measure every config'
    )
    parser.add_argument(
        '--check',
        action='store_true',
        help='write nothing; exit 1 if a file would change',
    )
    parser.add_argument(
        '--reuse-stats',
        action='store_true',
        help='take Parameters/FLOPs from the current metafiles instead of '
        'measuring (for changes that touch no model, e.g. links); configs '
        'without an entry are still measured',
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return generate(args.cache, args.force, args.check, args.reuse_stats)


if __name__ == '__main__':
    sys.exit(main())
