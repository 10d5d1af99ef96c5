"""The side-by-side comparison runner; the same as ``python -m fastpool bench``.

    python bench/compare.py [--quick] [--only W,W] [--systems S,S] [--json PATH] [--plot DIR]

See docs/benchmarks.md. The runner lives in the package (``fastpool._bench``) so that it also
works from an installed fastpool; this file only calls it.
"""

import sys

from fastpool._bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
