# Opening a pool's connections: the pragma names checked once per pool, then each connection
# opened with the pool's options and checked after on_connect ran.

import difflib

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
