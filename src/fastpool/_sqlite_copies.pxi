# One SQLite library per file and process.
#
# A wheel compiles its own SQLite in, while the stdlib's sqlite3 module links another copy.
# POSIX locks belong to the process, not to a library: when one copy closes its descriptor
# of a file, every lock the process holds on that file is gone, the other copy's included.
# The two copies then read pages the other is writing ("database disk image is malformed")
# or truncate a -shm file under the other's mapping (SIGBUS). fastpool keeps them off each
# other's files, and says why:
#   - the stdlib's sqlite3.connect() on a file that a fastpool connection has open raises
#     SQLiteCopyError, from a sys.audit hook installed only when the stdlib's SQLite is
#     another copy (csrc/fp_dl.h asks the loader; never in a source build that shares the
#     system's libsqlite3);
#   - fastpool refuses to open a file that the other copy still has open (Linux: its
#     descriptors show in /proc/self/fd).
# The way out is one copy for the whole process: fastpool.install_as_sqlite3().

import importlib.util
import os
import sys
import threading
import urllib.parse

from fastpool.errors import SQLiteCopyError

# The registry below (OPEN_FILES, OTHER_COPY_PATHS, OTHER_COPY_VERSION) is read and changed
# only under COPIES_LOCK: its counts are read-modify-write, and a global's replacement races
# its readers without a GIL. Reentrant, because a connection's __dealloc__ unregisters its
# file and the collector may run it on a thread that holds the lock.
cdef object COPIES_LOCK = threading.RLock()
# (st_dev, st_ino) -> number of fastpool connections open on that database file.
cdef dict OPEN_FILES = {}
# Absolute paths that the other copy opened in this process. Its connections cannot be
# weak-referenced, so a path stays until the process ends; bounded, as only a hint.
cdef set OTHER_COPY_PATHS = set()
# The other copy's version, when the process has one (None: fastpool's SQLite is the only one).
cdef str OTHER_COPY_VERSION = None
cdef str SQLITE_FIX = (
    "Two SQLite libraries must not share a file in one process: POSIX locks belong to the "
    "process, so when one library closes the file the other's locks are gone (malformed "
    "reads, lost writes, or a SIGBUS crash). Make the whole process use fastpool's SQLite: "
    "call fastpool.install_as_sqlite3() before anything imports sqlite3 "
    "(docs/sqlite-build.md), or keep this file to one library")


cdef bint sqlite_is_bundled():
    # A wheel's SQLite lives in this extension; a source build calls the shared libsqlite3.
    return fp_dl_same_object(<const void *>sqlite3_libversion,
                             <const void *>fp_monotonic_ns) == FP_DL_SAME


cdef object file_key(object path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


cdef object stdlib_target(object database):
    # The file a sqlite3.connect(database) opens, as an absolute path; None for memory.
    try:
        name = os.fsdecode(os.fspath(database))
    except TypeError:
        return None
    if name.startswith("file:"):
        rest, _, query = name[5:].partition("?")
        rest = rest.partition("#")[0]
        if "mode=memory" in query:
            return None
        if rest.startswith("//"):                # file://host/path: only the path counts
            rest = "/" + rest[2:].partition("/")[2]
        name = urllib.parse.unquote(rest)
    if name in ("", ":memory:"):
        return None
    return os.path.abspath(name)


def _audit_sqlite_connect(event, args):
    global OTHER_COPY_VERSION
    if event != "sqlite3.connect":
        return
    other = sys.modules.get("_sqlite3")
    if other is None:
        return
    version = getattr(other, "sqlite_version", "?")
    path = stdlib_target(args[0]) if args else None
    key = file_key(path) if path is not None else None
    with COPIES_LOCK:
        OTHER_COPY_VERSION = version
        if path is None:
            return
        if OPEN_FILES and OPEN_FILES.get(key):
            raise SQLiteCopyError(
                f"sqlite3.connect({path!r}) refused: fastpool has this file open with its own "
                f"SQLite {sqlite_version()}, and the stdlib's sqlite3 module uses another copy "
                f"(SQLite {version}). {SQLITE_FIX}")
        if len(OTHER_COPY_PATHS) < 4096:
            OTHER_COPY_PATHS.add(path)


cdef int count_descriptors(object key):
    # Descriptors of this process open on the file `key`; -1 where the system cannot say.
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    n = 0
    for fd in fds:
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue    # closed meanwhile, or the listing's own descriptor
        if (st.st_dev, st.st_ino) == key:
            n += 1
    return n


cdef object register_open_file(str filename):
    # A fastpool connection just opened `filename` (its one descriptor of it is open): count
    # it, after checking that the other SQLite copy has not got the file open too.
    key = file_key(filename)
    if key is None:
        return None
    with COPIES_LOCK:
        if not OPEN_FILES.get(key) and OTHER_COPY_PATHS:
            opened_by_other = any([file_key(p) == key for p in OTHER_COPY_PATHS])
            if opened_by_other and count_descriptors(key) > 1:
                raise SQLiteCopyError(
                    f"cannot open {filename!r} with fastpool's SQLite {sqlite_version()}: the "
                    f"stdlib's sqlite3 module (another copy, SQLite {OTHER_COPY_VERSION}) still "
                    f"has it open in this process; close that connection first. {SQLITE_FIX}")
        OPEN_FILES[key] = OPEN_FILES.get(key, 0) + 1
    return key


cdef void unregister_open_file(object key) noexcept:
    if key is None:
        return
    with COPIES_LOCK:
        n = OPEN_FILES.get(key, 0) - 1
        if n > 0:
            OPEN_FILES[key] = n
        else:
            OPEN_FILES.pop(key, None)


def _copies_lock_after_fork_in_child():
    # A thread of the parent may have held the lock while fork() copied it; that thread does
    # not exist here, so the child starts with a fresh lock (it has one thread now).
    global COPIES_LOCK
    COPIES_LOCK = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_copies_lock_after_fork_in_child)


def _sqlite_copies_state():
    """(fastpool's SQLite is bundled, the audit hook is installed) - for tests and docs."""
    return sqlite_is_bundled(), AUDIT_HOOK_INSTALLED


cdef bint another_sqlite_possible():
    # Ask the loader which sqlite3_libversion the stdlib's _sqlite3 module would call: ours
    # (a source build sharing the system's libsqlite3) or another (a wheel's bundled copy, or
    # a libsqlite3 that auditwheel copied in under another name). Where the loader cannot
    # tell, a bundled copy or another version means another copy.
    cdef bytes path
    cdef int same
    try:
        spec = importlib.util.find_spec("_sqlite3")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return False    # no stdlib sqlite3 in this Python
    if spec.origin in (None, "built-in"):
        same = fp_dl_same_symbol(NULL, b"sqlite3_libversion", <const void *>sqlite3_libversion)
    else:
        path = os.fsencode(spec.origin)
        same = fp_dl_same_symbol(path, b"sqlite3_libversion", <const void *>sqlite3_libversion)
    if same != FP_DL_UNKNOWN:
        return same == FP_DL_DIFFERENT
    if sqlite_is_bundled():
        return True
    try:
        import _sqlite3
    except ImportError:
        return False
    return getattr(_sqlite3, "sqlite_version", None) != sqlite_version()


cdef bint AUDIT_HOOK_INSTALLED = False
if another_sqlite_possible():
    sys.addaudithook(_audit_sqlite_connect)
    AUDIT_HOOK_INSTALLED = True
