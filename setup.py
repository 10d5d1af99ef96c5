"""Build the one extension, fastpool._core, against the system libsqlite3.

Switches (environment variables):
  FASTPOOL_DEBUG=1                 -O0 -g, C asserts on, Cython bounds checks on
  FASTPOOL_SANITIZE=address|thread build with that sanitizer (run with it preloaded)
"""

import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("FASTPOOL_DEBUG", "") not in ("", "0")
sanitize = os.environ.get("FASTPOOL_SANITIZE", "")
if sanitize not in ("", "address", "thread"):
    raise SystemExit(f"FASTPOOL_SANITIZE must be 'address' or 'thread', not {sanitize!r}")

compile_args = ["-Wall", "-Wno-unused-function"] if os.name != "nt" else []
link_args = []
macros = [] if debug else [("NDEBUG", "1")]
if debug:
    compile_args += ["-O0", "-g3", "-UNDEBUG"]
if sanitize:
    compile_args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g"]
    link_args += [f"-fsanitize={sanitize}"]

core = Extension(
    "fastpool._core",
    sources=["src/fastpool/_core.pyx", *sorted(glob("csrc/*.c"))],
    include_dirs=["csrc"],
    libraries=["sqlite3"],
    define_macros=macros,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    ext_modules=cythonize(
        [core],
        language_level=3,
        compiler_directives={
            "boundscheck": debug,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            "freethreading_compatible": False,
        },
    )
)
