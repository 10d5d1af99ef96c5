#!/usr/bin/env bash
# Build (or reuse) a free-threaded CPython 3.13 ("3.13t", configured with --disable-gil) from
# Debian's source package, for the free-threading test run in .ci/run and docs/free-threading.md.
#
#   scripts/build-freethreaded-python.sh [--tsan] [PREFIX]
#
# PREFIX defaults to $FASTPOOL_FT_PREFIX, else build/python3.13t in the checkout (git-ignored).
# When PREFIX/bin/python3.13t already runs with the GIL disabled (and was built with or without
# ThreadSanitizer as asked), nothing is rebuilt. The last line printed is the interpreter's path.
# --tsan: configure with clang and --with-thread-sanitizer too, for scripts/tsan-freethreaded.sh
# (extensions must then be built with the same clang: the TSan runtime is in the executable).
# The downloaded source is kept in build/sources (git-ignored) and reused by the next build. About 4-6 minutes on 2 cores; needs apt-get (as root
# or through sudo) on a fresh Debian machine: it adds a deb-src line for trixie (the archive
# keyring ships with Debian) and installs dpkg-dev and the build dependencies itself.
# Only the upstream tarball of the source package is used (Debian's patches target Debian's own
# packaging, not a --prefix install).
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.13.5
debian_version=3.13.5-2+deb13u5
tsan=0
if [ "${1:-}" = "--tsan" ]; then
    tsan=1
    shift
fi
prefix=${1:-${FASTPOOL_FT_PREFIX:-$(pwd)/build/python3.13t}}
python=$prefix/bin/python3.13t
sources_cache=$(pwd)/build/sources

# Reused only when it is the kind asked for: GIL disabled, and TSan in CONFIG_ARGS or not.
check='import sys, sysconfig, ssl, sqlite3, ctypes, zlib
tsan = "--with-thread-sanitizer" in (sysconfig.get_config_var("CONFIG_ARGS") or "")
sys.exit(sys._is_gil_enabled() or tsan != bool(int(sys.argv[1])))'
if [ -x "$python" ] && "$python" -c "$check" "$tsan" 2>/dev/null; then
    echo "reusing the free-threaded CPython in $prefix" >&2
    echo "$python"
    exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi
sources=/etc/apt/sources.list.d/fastpool-trixie-src.sources
if [ ! -e "$sources" ]; then
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: trixie' \
        'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
        | "${as_root[@]}" tee "$sources" >/dev/null
fi
"${as_root[@]}" apt-get update -qq
# The build dependencies of the modules the test suite needs (ssl for pip, sqlite3 for the
# stdlib comparisons, ctypes, zlib, bz2/lzma for sdists), from the machine's own release.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    dpkg-dev build-essential pkg-config xz-utils libssl-dev libffi-dev zlib1g-dev libsqlite3-dev \
    libbz2-dev liblzma-dev libreadline-dev libncurses-dev uuid-dev libgdbm-dev >/dev/null
configure_args=(--disable-gil --prefix="$prefix" --with-ensurepip=install)
compilers=()
if [ "$tsan" = 1 ]; then
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        clang >/dev/null
    configure_args+=(--with-thread-sanitizer)
    compilers=(CC=clang CXX=clang++)
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
chmod 755 "$scratch"    # apt's download user must be able to write there
tarball=$(ls "$sources_cache"/python3.13_"$version".orig.tar.* 2>/dev/null | head -n 1 || true)
if [ -z "$tarball" ]; then
    (cd "$scratch" && apt-get source -qq --download-only "python3.13=$debian_version")
    tarball=$(ls "$scratch"/python3.13_"$version".orig.tar.* | head -n 1)
    mkdir -p "$sources_cache"
    cp "$tarball" "$sources_cache"/
fi
tar -xf "$tarball" -C "$scratch"
src=$(find "$scratch" -mindepth 1 -maxdepth 1 -type d -name 'Python-*' | head -n 1)
mkdir -p "$prefix"
(
    cd "$src"
    ./configure -q "${configure_args[@]}" "${compilers[@]}" >/dev/null
    make -s -j"$(nproc)" >/dev/null
    make -s install >/dev/null
)
"$python" -c 'import sys; assert not sys._is_gil_enabled(), "the GIL is on"; print(sys.version)' >&2
echo "$python"
