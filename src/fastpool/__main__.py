"""``python -m fastpool``: a short demo on a temporary database (see fastpool._demo)."""

from fastpool._demo import main

if __name__ == "__main__":
    raise SystemExit(main())
