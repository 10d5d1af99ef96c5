# Opening connections: what an open failure means, pragma values as SQL literals, the journal
# modes SQLite knows, the pragma names checked once per pool, the open a Connection does in
# __init__ (handle, hooks, defensive mode, pragmas, the journal-mode check, what the URI says
# about locking and shared memory), and a pool's connection opened with the pool's options and
# checked after on_connect ran.

import difflib
import os
import threading

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
# Set once, under PRAGMAS_LOCK (two pools made at once on two threads must not both replace
# it); never changed after, so it is read without the lock.
cdef object KNOWN_PRAGMAS = None
cdef object PRAGMAS_LOCK = threading.Lock()


cdef int check_pragma_names(object pragmas) except -1:
    global KNOWN_PRAGMAS
    known = KNOWN_PRAGMAS
    if known is None:
        with PRAGMAS_LOCK:
            if KNOWN_PRAGMAS is None:
                probe = Connection(":memory:")
                try:
                    KNOWN_PRAGMAS = frozenset(
                        [row[0] for row in probe.fetchall("PRAGMA pragma_list")])
                finally:
                    probe.close()
            known = KNOWN_PRAGMAS
    if not known:
        return 0
    for name in pragmas:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown pragma {name!r}: SQLite {sqlite_version()} has no such "
                             f"pragma and would silently ignore it{hint}")
    return 0


cdef int open_database(Connection conn, str path, bint readonly, object pragmas,
                       bint defensive) except -1:
    # Connection.__init__'s open: the handle, its hooks and defensive mode, the pragmas and
    # the journal mode they ask for; on failure the connection is closed again.
    cdef int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | SQLITE_OPEN_PRIVATECACHE
    flags |= SQLITE_OPEN_READONLY if readonly else (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
    cdef bytes encoded = path.encode("utf-8", "surrogateescape")
    cdef const char *c_path = encoded
    cdef sqlite3 *db = NULL
    cdef int rc
    with nogil:
        rc = sqlite3_open_v2(c_path, &db, flags, wal_vfs_name())
    if rc != SQLITE_OK:
        message = (sqlite3_errmsg(db).decode("utf-8", "replace") if db != NULL
                   else "out of memory")
        sqlite3_close_v2(db)    # open allocates a handle even when it fails
        exc = error_for_code(rc, describe_open_failure(path, message))
        raise exc
    conn.db = db
    filename = sqlite3_db_filename(db, b"main")
    if filename != NULL and filename[0] != 0:
        try:
            conn.file_key = register_open_file(filename.decode("utf-8", "surrogateescape"))
        except BaseException:
            conn.close()
            raise
    sqlite3_extended_result_codes(db, 1)
    install_hooks(db, &conn.hooks)
    # Off, SQL such as PRAGMA writable_schema=1 + UPDATE sqlite_master corrupts the file.
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, <int>defensive, <int *>NULL)
    if rc != SQLITE_OK:
        conn.close()
        raise error_for_code(rc, f"cannot open database {path!r}: SQLite refused to "
                                 f"set SQLITE_DBCONFIG_DEFENSIVE ({sqlite3_errstr(rc)!r})")
    cdef str asked = None
    try:
        for name, value in pragmas.items():
            run_pragma(conn, name, value)
            if (type(name) is str and name.lower() == "journal_mode"
                    and type(value) is str and value.strip().lower() in JOURNAL_MODES):
                asked = value.strip().lower()
        if asked is not None and not readonly and sqlite3_db_readonly(db, b"main") != 1:
            check_journal_mode(conn, asked, defensive)
        # Commits drop the GIL (see on_commit): a commit writes, and may fsync. A pool's
        # writer narrows this to commits that fsync (WriterGate.open).
        conn.hooks.commit_syncs = not readonly
    except Error as exc:
        # SQLite's message ("file is not a database") does not say which file.
        code = exc.sqlite_errorcode
        wrote = not readonly and sqlite3_db_readonly(db, b"main") == 1
        choice = uri_vfs_choice(conn)
        conn.close()
        hint = (" (the file or its directory is read-only; make both writable, or open it "
                "read-only with a 'file:...?mode=ro' URI)") if wrote else ""
        if not hint and code is not None and code & 0xFF == SQLITE_CANTOPEN:
            hint = (" (SQLite could not open the -wal/-shm files beside it: is its "
                    "directory writable?)")
            if choice is not None:
                hint = (f" (this is a WAL database, and {choice} in the URI gives SQLite "
                        f"no shared memory for its -shm file, which WAL needs; remove "
                        f"{choice} from the URI)")
        message = f"cannot use database {path!r}: {exc}{hint}"
        raise (error_for_code(code, message) if code is not None
               else type(exc)(message)) from None
    except BaseException:
        conn.close()
        raise
    return 0


cdef int check_journal_mode(Connection conn, str asked, bint defensive) except -1:
    # PRAGMA journal_mode=X answers with the mode it left the file in, and does not fail
    # when X is impossible (WAL without shared memory under the chosen VFS; OFF under
    # defensive mode): the pool would then run in a mode nobody asked for.
    mode = pragma_text(conn, b"PRAGMA journal_mode")
    # An in-memory database is always in memory (or off) mode, by design.
    if mode == asked or mode == "memory":
        return 0
    prefix = (f"journal_mode={asked} was asked for, but SQLite left the database in "
              f"{mode!r} mode")
    if asked == "off" and defensive:
        raise NotSupportedError(
            f"{prefix}: defensive mode forbids journal_mode=off, with which a crash or an "
            f"error mid-transaction corrupts the file. Pass defensive=False to allow it")
    if asked != "wal":
        raise NotSupportedError(f"{prefix}. Ask for a journal mode this database supports")
    choice = uri_vfs_choice(conn)
    if choice in ("nolock=1", "vfs=unix-none"):
        cause = (f": {choice} in the URI turns off SQLite's file locks and the shared "
                 f"memory WAL needs")
        fix = (f"Remove {choice} from the URI; without locks only a lone connection in a "
               f"rollback journal mode is safe (a pool refuses it in every mode)")
    else:
        cause = (f": {choice} in the URI gives SQLite no shared memory, which WAL needs"
                 if choice is not None else
                 ": this VFS or file system gives SQLite no shared memory, which WAL needs")
        fix = ((f"Remove {choice} from the URI, or pass" if choice is not None else "Pass")
               + f" pragmas={{'journal_mode': 'delete'}} to run without WAL knowingly "
               f"(each commit then waits until no reader is reading)")
    raise NotSupportedError(f"{prefix}{cause}. {fix}")


cdef str pragma_text(Connection conn, const char *sql):
    # The first column of a pragma's first row as text ("" when it returns no row), read
    # without the statement cache so opening a connection leaves the cache's counters alone.
    cdef sqlite3_stmt *handle = NULL
    cdef const unsigned char *text
    cdef int rc = sqlite3_prepare_v3(conn.db, sql, -1, 0, &handle, NULL)
    if rc != SQLITE_OK:
        sqlite3_finalize(handle)
        conn.raise_error(rc)
    rc = sqlite3_step(handle)
    if rc == SQLITE_ROW:
        text = sqlite3_column_text(handle, 0)
        result = "" if text == NULL else (<const char *>text).decode("utf-8", "replace")
        sqlite3_finalize(handle)
        return result
    if rc != SQLITE_DONE:
        sqlite3_finalize(handle)
        conn.raise_error(rc)
    sqlite3_finalize(handle)
    return ""


cdef bint commits_fsync(Connection conn) except -1:
    # Does each commit on this connection fsync? In WAL mode only with synchronous=full or
    # extra (normal syncs at checkpoints); with a rollback journal from synchronous=normal on.
    mode = pragma_text(conn, b"PRAGMA journal_mode").lower()
    level = int(pragma_text(conn, b"PRAGMA synchronous") or 0)
    if mode == "wal":
        return level >= 2
    return level >= 1 and mode not in ("memory", "off")


cdef str uri_vfs_choice(Connection conn):
    # What the database's URI says about locking and shared memory ("nolock=1" or
    # "vfs=NAME"), for messages and the pool's check; None when it says nothing.
    cdef const char *name = NULL
    cdef const char *vfs
    if conn.db != NULL:
        name = sqlite3_db_filename(conn.db, b"main")
    if name == NULL or name[0] == 0:
        return None
    if sqlite3_uri_boolean(name, b"nolock", 0):
        return "nolock=1"
    vfs = sqlite3_uri_parameter(name, b"vfs")
    if vfs != NULL:
        return "vfs=" + vfs.decode("utf-8", "replace")
    return None


cdef int run_pragma(Connection conn, str name, object value) except -1:
    if type(name) is not str or not name.replace("_", "a").isalnum() or not name.isascii():
        raise ValueError(f"pragma name {name!r} is not a valid identifier")
    conn.executescript(f"PRAGMA {name} = {pragma_literal(name, value)}")
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
        if pragma_text(conn, b"PRAGMA locking_mode") == "exclusive":
            raise NotSupportedError(
                f"cannot use database {opts.path!r} in a pool: on_connect set "
                f"locking_mode=exclusive, so the first connection to read or write keeps "
                f"the file locked and every other connection of the pool waits forever. "
                f"Leave locking_mode normal")
    except BaseException:
        conn.close()
        raise
    return conn
