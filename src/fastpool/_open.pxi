# Opening connections: what an open failure means, pragma values as SQL literals, the journal
# modes SQLite knows, the pragma names checked once per pool, and a pool's connection opened
# with the pool's options and checked after on_connect ran.

import difflib
import os

# The journal modes SQLite knows; it ignores any other value and keeps the current mode.
cdef frozenset JOURNAL_MODES = frozenset(["delete", "truncate", "persist", "memory", "wal", "off"])


cdef str describe_open_failure(str path, str message):
    if path == ":memory:" or path.startswith("file:"):
        return f"cannot open database {path!r}: {message}"
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(directory):
        hint = f"the directory {directory!r} does not exist; create it first"
    elif os.path.isdir(path):
        hint = "that path is a directory, not a database file"
    elif not os.access(directory, os.W_OK) and not os.path.exists(path):
        hint = f"the directory {directory!r} is not writable"
    elif os.path.exists(path) and not os.access(path, os.R_OK):
        hint = "the file is not readable by this process"
    else:
        hint = "check the path and its permissions"
    return f"cannot open database {path!r}: {message} ({hint})"


cdef str pragma_literal(str name, object value):
    if type(value) is bool:
        return "1" if value else "0"
    if type(value) is int or type(value) is float:
        return repr(value)
    if type(value) is str:
        if "\x00" in <str>value:
            raise ValueError(f"pragma {name}: value must not contain a NUL character")
        return "'" + (<str>value).replace("'", "''") + "'"
    raise TypeError(
        f"pragma {name}: value must be str, int, float or bool, not {type(value).__name__}")


# The pragma names this SQLite knows, read once from PRAGMA pragma_list (empty when SQLite was
# built without it). SQLite silently ignores an unknown pragma, so a typo would go unnoticed.
cdef object KNOWN_PRAGMAS = None


cdef int check_pragma_names(object pragmas) except -1:
    global KNOWN_PRAGMAS
    if KNOWN_PRAGMAS is None:
        probe = Connection(":memory:")
        try:
            KNOWN_PRAGMAS = frozenset([row[0] for row in probe.fetchall("PRAGMA pragma_list")])
        finally:
            probe.close()
    if not KNOWN_PRAGMAS:
        return 0
    for name in pragmas:
        if name not in KNOWN_PRAGMAS:
            close = difflib.get_close_matches(name, sorted(KNOWN_PRAGMAS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown pragma {name!r}: SQLite {sqlite_version()} has no such "
                             f"pragma and would silently ignore it{hint}")
    return 0


cdef Connection open_connection(object opts, bint readonly):
    conn = Connection(
        opts.path, readonly=readonly,
        pragmas=opts.reader_pragmas if readonly else opts.writer_pragmas,
        statement_cache_size=opts.statement_cache_size, busy_timeout=opts.busy_timeout,
        autocheckpoint=opts.autocheckpoint, row_factory=opts.row_factory,
        defensive=opts.defensive)
    conn.reader_hint = readonly
    try:
        if opts.on_connect is not None:
            opts.on_connect(conn)
        # pool_options refuses the pragma; on_connect could still have run it.
        if conn.pragma_text(b"PRAGMA locking_mode") == "exclusive":
            raise NotSupportedError(
                f"cannot use database {opts.path!r} in a pool: on_connect set "
                f"locking_mode=exclusive, so the first connection to read or write keeps "
                f"the file locked and every other connection of the pool waits forever. "
                f"Leave locking_mode normal")
    except BaseException:
        conn.close()
        raise
    return conn
