"""Build the one extension, fastpool._core, against the system libsqlite3.

Switches (environment variables):
  FASTPOOL_DEBUG=1                 -O0 -g3, C asserts on, Cython bounds checks on
  FASTPOOL_SANITIZE=address|thread build with that sanitizer (run with it preloaded, as
                                   scripts/asan-tests.sh does); implies the debug checks (C
                                   asserts, bounds checks) at -O1; address adds UBSan
                                   (-fsanitize=undefined, every report fatal)
  FASTPOOL_ANNOTATE=1              also write Cython's annotated src/fastpool/_core.html
  FASTPOOL_SQLITE_AMALGAMATION=DIR compile DIR/sqlite3.c into the extension instead of linking
                                   libsqlite3 (scripts/fetch-amalgamation.sh DIR fetches the
                                   pinned one; the options are explained in docs/sqlite-build.md)
  FASTPOOL_SQLITE_AMALGAMATION=pinned  the same, after fetching the pinned amalgamation into
                                   build/sqlite-amalgamation (once; it is checked by sha256)
  FASTPOOL_SQLITE_PGO=auto|1|0     a bundled sqlite3.c is compiled profile-guided with GCC
                                   (instrumented, trained by scripts/pgo-training.c, compiled
                                   again): auto (default) falls back to a plain build when
                                   that fails or the compiler is not GCC, 1 fails the build
                                   instead, 0 skips it

csrc/*.c are compiled with -std=c11 (csrc/fp_internal.h asks for the POSIX it needs); the
Cython-generated C and sqlite3.c keep the compiler's default dialect.
"""

import copy
import os
import shutil
import subprocess
import sys
import tempfile
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
sanitize = os.environ.get("FASTPOOL_SANITIZE", "")
if sanitize not in ("", "address", "thread"):
    raise SystemExit(f"FASTPOOL_SANITIZE must be 'address' or 'thread', not {sanitize!r}")
debug = os.environ.get("FASTPOOL_DEBUG", "") not in ("", "0") or bool(sanitize)
annotate = os.environ.get("FASTPOOL_ANNOTATE", "") not in ("", "0")

# Hidden visibility: the extension exports only PyInit__core, so a bundled SQLite can never
# clash with the libsqlite3 that the stdlib's sqlite3 module loads into the same process.
compile_args = ["-Wall", "-Wno-unused-function", "-fvisibility=hidden"] if os.name != "nt" else []
link_args = []
macros = [] if debug else [("NDEBUG", "1")]
sources = ["src/fastpool/_core.pyx", *sorted(glob("csrc/*.c"))]
include_dirs = ["csrc"]
libraries = ["sqlite3"]
# dladdr (csrc/fp_dl.c) lives in libdl before glibc 2.34, which manylinux2014 still has.
extra_libraries = ["dl"] if sys.platform.startswith("linux") else []

amalgamation = os.environ.get("FASTPOOL_SQLITE_AMALGAMATION", "")
if amalgamation == "pinned":  # fetched once; the script checks every file's sha256
    amalgamation = os.path.join(HERE, "build", "sqlite-amalgamation")
    fetch = ["bash", os.path.join(HERE, "scripts", "fetch-amalgamation.sh"), amalgamation]
    # The script runs `pip download`: drop the build frontend's PYTHONPATH, which hides pip.
    env = {"PYTHON": sys.executable, **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}}
    subprocess.run(fetch, check=True, env=env)
if amalgamation:
    if not os.path.isdir(amalgamation):  # relative to the project, as build tools may cd
        amalgamation = os.path.join(HERE, amalgamation)
    amalgamation = os.path.abspath(amalgamation)
    if not all(os.path.isfile(os.path.join(amalgamation, f)) for f in ("sqlite3.c", "sqlite3.h")):
        raise SystemExit(
            f"FASTPOOL_SQLITE_AMALGAMATION={amalgamation} must be a directory holding sqlite3.c "
            "and sqlite3.h; fetch the pinned one with: scripts/fetch-amalgamation.sh DIR"
        )
    sources.append(os.path.join(amalgamation, "sqlite3.c"))
    include_dirs.insert(0, amalgamation)
    libraries = ["m", "pthread"]
    # One line each in docs/sqlite-build.md says why.
    macros += [
        ("SQLITE_THREADSAFE", "2"),  # multi-thread: a connection serves one thread at a time
        ("SQLITE_DEFAULT_MEMSTATUS", "0"),  # no global malloc statistics (a mutex per malloc)
        ("SQLITE_DEFAULT_WAL_SYNCHRONOUS", "1"),  # NORMAL in WAL mode: consistent after a crash
        ("SQLITE_DQS", "0"),  # "name" is always an identifier, never a string literal
        ("SQLITE_LIKE_DOESNT_MATCH_BLOBS", "1"),
        ("SQLITE_OMIT_DEPRECATED", "1"),
        ("SQLITE_OMIT_SHARED_CACHE", "1"),  # the pool opens private caches only
        ("SQLITE_USE_ALLOCA", "1"),
        ("SQLITE_ENABLE_FTS5", "1"),
        ("SQLITE_ENABLE_RTREE", "1"),
        ("SQLITE_ENABLE_MATH_FUNCTIONS", "1"),
        ("SQLITE_ENABLE_DBSTAT_VTAB", "1"),
        ("HAVE_LOCALTIME_R", "1"),
    ]
    if sys.platform.startswith("linux"):
        macros.append(("HAVE_FDATASYNC", "1"))
    if not debug and not sanitize and os.name != "nt":
        compile_args.append("-g0")  # wheels: no 10 MB of SQLite debug info (Python's CFLAGS say -g)
if debug:
    compile_args += ["-O1" if sanitize else "-O0", "-g3", "-UNDEBUG"]
if sanitize:
    # UBSan beside ASan (TSan has its own runtime); a report aborts like an ASan one does.
    checks = "address,undefined" if sanitize == "address" else sanitize
    compile_args += [f"-fsanitize={checks}", "-fno-omit-frame-pointer"]
    compile_args += ["-fno-sanitize-recover=undefined"] if sanitize == "address" else []
    link_args += [f"-fsanitize={checks}"]


# A bundled sqlite3.c at -O2: its VM ran a join + GROUP BY 6% faster than at Python's -O3
# (docs/sqlite-build.md). Debug and sanitizer builds keep their own level.
SQLITE_OPT = [] if debug or os.name == "nt" else ["-O2"]
PGO = os.environ.get("FASTPOOL_SQLITE_PGO", "auto")
if PGO not in ("auto", "1", "0"):
    raise SystemExit(f"FASTPOOL_SQLITE_PGO must be auto, 1 or 0, not {PGO!r}")
PGO_TRAINING = os.path.join("scripts", "pgo-training.c")


class BuildExt(build_ext):
    """Compile csrc/*.c with -std=c11 and a bundled sqlite3.c at SQLITE_OPT (profile-guided
    where it can be) first, then the rest of the extension as usual."""

    def build_extension(self, ext):
        csrc = [s for s in ext.sources if s.startswith("csrc")]
        sqlite = [s for s in ext.sources if os.path.basename(s) == "sqlite3.c"]
        objects = self.compile_group(ext, csrc, ["-std=c11"] if os.name != "nt" else [])
        if sqlite:
            objects += self.compile_sqlite(ext, sqlite)
        rest = copy.copy(ext)
        rest.sources = [s for s in ext.sources if s not in csrc and s not in sqlite]
        rest.extra_objects = [*ext.extra_objects, *objects]
        # for the up-to-date check
        rest.depends = [*ext.depends, *csrc, *sqlite, *glob("csrc/*.h")]
        super().build_extension(rest)

    def compile_group(self, ext, sources, extra):
        return self.compiler.compile(
            sources,
            output_dir=self.build_temp,
            macros=ext.define_macros,
            include_dirs=ext.include_dirs,
            debug=self.debug,
            extra_postargs=[*ext.extra_compile_args, *extra],
        )

    def compile_sqlite(self, ext, sqlite):
        # Profile-guided: about 11% more joins and point reads per second than the plain -O2
        # build (docs/sqlite-build.md). GCC only: clang's profiles need llvm-profdata.
        if PGO == "0" or debug or os.name == "nt":
            return self.compile_group(ext, sqlite, SQLITE_OPT)
        try:
            return self.compile_sqlite_pgo(ext, sqlite)
        except Exception as exc:
            if PGO == "1":
                raise
            print(f"fastpool: no profile-guided SQLite ({exc}); building it plainly")
            return self.compile_group(ext, sqlite, SQLITE_OPT)

    def compile_sqlite_pgo(self, ext, sqlite):
        cc = self.compiler.compiler_so  # the whole command: CC may be "ccache gcc"
        macros = subprocess.run(
            [*cc, "-dM", "-E", "-x", "c", os.devnull], capture_output=True, text=True, check=True
        ).stdout
        if "__GNUC__" not in macros or "__clang__" in macros:
            raise RuntimeError(f"{' '.join(cc)} is not GCC")
        # The profile is found by the object's path: both builds write the same objects.
        profile = os.path.abspath(os.path.join(self.build_temp, "sqlite-profile"))
        shutil.rmtree(profile, ignore_errors=True)
        objects = self.compile_group(ext, sqlite, [*SQLITE_OPT, f"-fprofile-generate={profile}"])
        objects += self.compile_group(ext, [PGO_TRAINING], [])
        training = os.path.join(self.build_temp, "pgo-training")
        self.compiler.link_executable(
            objects,
            training,
            libraries=["m", "pthread", *extra_libraries],
            extra_postargs=["-fprofile-generate"],
        )
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run([training, scratch], check=True, timeout=1800)
        if not glob(os.path.join(profile, "*sqlite3.gcda")):
            raise RuntimeError(f"the training run wrote no profile into {profile}")
        for obj in objects:
            os.remove(obj)
        return self.compile_group(
            ext,
            sqlite,
            [
                *SQLITE_OPT,
                f"-fprofile-use={profile}",
                "-fprofile-partial-training",  # code the training never ran stays optimised
                "-Wno-missing-profile",
            ],
        )


core = Extension(
    "fastpool._core",
    sources=sources,
    include_dirs=include_dirs,
    libraries=libraries + extra_libraries,
    define_macros=macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    cmdclass={"build_ext": BuildExt},
    # Separate build trees, so that switching between the two kinds never reuses the other's .so.
    options={"build": {"build_base": "build/bundled-sqlite" if amalgamation else "build"}},
    ext_modules=cythonize(
        [core],
        language_level=3,
        annotate=annotate,
        force=annotate,  # Cython writes the .html only when it regenerates the .c
        compiler_directives={
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            # Signatures as __text_signature__ (the convention of CPython's Argument Clinic), so
            # that inspect.signature, stubtest and the docs' generated API reference read every
            # function and method. A cdef class's constructor signature is the first lines of
            # its docstring ("Name(args)" then a "--" line at column 0), written by hand there.
            # Docstrings only: callgrind counted 8,393 instructions per point select through
            # pool.fetchone before and after.
            "embedsignature": True,
            "embedsignature.format": "clinic",
            # Free-threaded CPython keeps the GIL off when it imports the core: every piece of
            # shared state has a rule that does not need it (docs/ARCHITECTURE.md, "Shared
            # state and its rule"; docs/free-threading.md).
            "freethreading_compatible": True,
        },
    )
)
