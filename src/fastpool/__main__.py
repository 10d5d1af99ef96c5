"""``python -m fastpool``: a short demo on a temporary database (see fastpool._demo);
``python -m fastpool --version``: the installed version (``fastpool.__version__``);
``python -m fastpool bench ...``: the side-by-side comparison (see fastpool._bench)."""

import sys

if sys.argv[1:2] == ["bench"]:
    from fastpool._bench import main

    raise SystemExit(main(sys.argv[2:]))

from fastpool._demo import main

if __name__ == "__main__":
    raise SystemExit(main())
