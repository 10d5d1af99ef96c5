#!/usr/bin/env bash
# Fetch the pinned SQLite amalgamation (sqlite3.c, sqlite3.h, sqlite3ext.h) into DIR.
#
#   scripts/fetch-amalgamation.sh DIR
#   FASTPOOL_SQLITE_AMALGAMATION=DIR python -m build     # or pip install ., cibuildwheel, ...
#
# Nothing of SQLite lives in this repository. The amalgamation comes from a package registry:
# the source distribution of `sqlean.py` on PyPI carries SQLite's unmodified amalgamation in
# sqlite/, plus a five-line tail appended to sqlite3.c that registers sqlean's own extensions.
# This script downloads that sdist by exact version, checks the archive's sha256, cuts the
# tail at SQLite's "End of sqlite3.c" marker, and checks the sha256 of every file it writes,
# so a build gets byte-for-byte the SQLite pinned below or fails.
#
# To move to another SQLite: change the four pins below (run the script with
# FASTPOOL_AMALGAMATION_PRINT_HASHES=1 to print the new ones after checking them by hand), then
# update docs/sqlite-build.md.
#
# Idempotent: when DIR already holds the pinned files it does nothing (cibuildwheel runs it
# before every build). Needs python3 with pip on PATH (or $PYTHON); no network beyond PyPI.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (DIR receives sqlite3.c, sqlite3.h and sqlite3ext.h)" >&2
    exit 2
fi

SQLITE_VERSION=3.50.4
SDIST_REQ="sqlean.py==3.50.4.5"
SDIST_SHA256=9764b565e7ab430ab6e9e43cb2816199c2b39926dffc93c212a52f0019278459
SQLITE3_C_SHA256=e3f5d6901e7492af4a1fc8c4d745cae84c264942524c3fbfc02b82a5ca8818c8
SQLITE3_H_SHA256=abd1514e0351f79393d1be882830afdb40a8099e8257f311f0bfdf8486f11bea
SQLITE3EXT_H_SHA256=9a91de0d5e5ccc04ec59041275c67972d6f8894f7543a10033e387b69987beb5

PY=${PYTHON:-$(command -v python3 || command -v python)}
dest=$1
mkdir -p "$dest"

export SQLITE_VERSION SDIST_SHA256 SQLITE3_C_SHA256 SQLITE3_H_SHA256 SQLITE3EXT_H_SHA256

have_pinned() {
    "$PY" - "$dest" <<'EOF'
import hashlib, os, sys
want = {"sqlite3.c": os.environ["SQLITE3_C_SHA256"], "sqlite3.h": os.environ["SQLITE3_H_SHA256"],
        "sqlite3ext.h": os.environ["SQLITE3EXT_H_SHA256"]}
for name, sha in want.items():
    path = os.path.join(sys.argv[1], name)
    if not os.path.exists(path):
        sys.exit(1)
    with open(path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != sha:
            sys.exit(1)
EOF
}

if have_pinned; then
    echo "SQLite $SQLITE_VERSION amalgamation already in $dest"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download --quiet --no-deps --no-binary :all: \
    -d "$work" "$SDIST_REQ"

"$PY" - "$work" "$dest" <<'EOF'
import glob, hashlib, os, sys, tarfile

work, dest = sys.argv[1], sys.argv[2]
sdists = glob.glob(os.path.join(work, "*.tar.gz"))
if len(sdists) != 1:
    sys.exit(f"expected one sdist in {work}, found {sdists}")
with open(sdists[0], "rb") as f:
    got = hashlib.sha256(f.read()).hexdigest()
print_only = os.environ.get("FASTPOOL_AMALGAMATION_PRINT_HASHES") == "1"
if got != os.environ["SDIST_SHA256"] and not print_only:
    sys.exit(f"sha256 mismatch for {sdists[0]}: got {got}, pinned {os.environ['SDIST_SHA256']}")

END = b"/************************** End of sqlite3.c ******************************/\n"
want = {"sqlite3.c": "SQLITE3_C_SHA256", "sqlite3.h": "SQLITE3_H_SHA256",
        "sqlite3ext.h": "SQLITE3EXT_H_SHA256"}
with tarfile.open(sdists[0], "r:gz") as tar:
    members = {m.name.split("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
    for name, env in want.items():
        member = members.get("sqlite/" + name)
        if member is None:
            sys.exit(f"{sdists[0]} has no sqlite/{name}")
        data = tar.extractfile(member).read()
        if name == "sqlite3.c":
            # Drop what sqlean appended after SQLite's own last line.
            if data.count(END) != 1:
                sys.exit("sqlite3.c: the end-of-amalgamation marker is missing or repeated")
            data = data[: data.index(END) + len(END)]
        sha = hashlib.sha256(data).hexdigest()
        if print_only:
            print(f"{name}: {sha}")
        elif sha != os.environ[env]:
            sys.exit(f"sha256 mismatch for {name}: got {sha}, pinned {os.environ[env]}")
        with open(os.path.join(dest, name), "wb") as f:
            f.write(data)
if print_only:
    print(f"sdist: {got}")
    sys.exit(0)
header = open(os.path.join(dest, "sqlite3.h"), encoding="utf-8").read()
if f'#define SQLITE_VERSION        "{os.environ["SQLITE_VERSION"]}"' not in header:
    sys.exit("sqlite3.h does not declare the pinned SQLITE_VERSION")
EOF
echo "SQLite $SQLITE_VERSION amalgamation written to $dest"
