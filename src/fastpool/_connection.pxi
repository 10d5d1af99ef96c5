# One SQLite connection. It serves one thread at a time (opened SQLITE_OPEN_NOMUTEX): a call
# that finds another call still running raises InterfaceError instead of reaching SQLite.

import os
import re
from collections.abc import Mapping

# Statements before which PEP 249 mode (autocommit=False) opens no transaction: transaction
# control itself, and statements SQLite refuses to run inside one.
cdef object FIRST_KEYWORD = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*([A-Za-z]*)", re.S)
cdef frozenset NO_IMPLICIT_BEGIN = frozenset(
    ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "VACUUM", "PRAGMA",
     "ATTACH", "DETACH"])

cdef frozenset FATAL_PRIMARY_CODES = frozenset(
    [SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_MISUSE])


cdef object tx_lost_error():
    return error_for_code(
        SQLITE_ABORT_ROLLBACK,
        "the writer's transaction was rolled back by SQLite after an earlier error in this "
        "block; nothing of it was committed. Leave the block (or call rollback() to begin "
        "a new transaction) and run the work again")


@cython.final
cdef class Connection:
    """One SQLite connection (internal: the pool opens these and lends them out).

    Connection(path, *, readonly=False, pragmas=None, statement_cache_size=128,
               busy_timeout=5.0, autocheckpoint=1000, row_factory=None, autocommit=True,
               defensive=True)

    ``path`` is a file path or a ``file:`` URI. With ``autocommit=True`` (the pool's
    connections) transactions are opened explicitly (the pool's writer does ``BEGIN
    IMMEDIATE``). With ``autocommit=False`` (``fastpool.connect``, PEP 249) a transaction is
    opened before the first statement and lasts until ``commit()`` or ``rollback()``.
    ``defensive=True`` turns on SQLITE_DBCONFIG_DEFENSIVE (no ``PRAGMA writable_schema``
    and other SQL that can corrupt the file). A ``journal_mode`` in ``pragmas`` that SQLite
    does not apply (WAL under a VFS without shared memory, OFF under defensive mode) raises
    NotSupportedError.
    """

    def __cinit__(self):
        self.db = NULL
        self.hooks.wal_events = NULL
        self.hooks.xlock = NULL
        self.hooks.xlock_held = NULL
        self.active = set()
        self.path = ""

    def __init__(self, path, *, bint readonly=False, pragmas=None,
                 Py_ssize_t statement_cache_size=128, double busy_timeout=5.0,
                 int autocheckpoint=1000, row_factory=None, bint autocommit=True,
                 bint defensive=True):
        if self.db != NULL:
            raise InterfaceError("Connection.__init__ called twice")
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if type(path) is not str:
            raise TypeError(f"path must be str, bytes or os.PathLike, not {type(path).__name__}")
        if "\x00" in path:
            raise ValueError("path must not contain a NUL character")
        if statement_cache_size < 0:
            raise ValueError(f"statement_cache_size must be >= 0, not {statement_cache_size}")
        if not (0.0 <= busy_timeout <= INT_MAX / 1000.0):
            raise ValueError(f"busy_timeout must be between 0 and {INT_MAX // 1000} seconds, "
                             f"not {busy_timeout}")
        if autocheckpoint < 0:
            raise ValueError(f"autocheckpoint must be >= 0 pages, not {autocheckpoint}")
        if row_factory is not None and row_factory is not Row:
            raise TypeError("row_factory must be None (tuples) or fastpool.Row")
        if pragmas is None:
            pragmas = {}
        elif not isinstance(pragmas, Mapping):
            raise TypeError(
                f"pragmas must be a mapping of name to value, not {type(pragmas).__name__}")

        self.path = path
        self.readonly = readonly
        self.row_factory = row_factory
        self.autocommit = autocommit
        self.cache = StatementCache(statement_cache_size)
        self.hooks.busy_timeout_ms = <int>(busy_timeout * 1000)
        self.hooks.autocheckpoint = autocheckpoint

        cdef int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | SQLITE_OPEN_PRIVATECACHE
        flags |= SQLITE_OPEN_READONLY if readonly else (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        cdef bytes encoded = path.encode("utf-8", "surrogateescape")
        cdef const char *c_path = encoded
        cdef sqlite3 *db = NULL
        cdef int rc
        with nogil:
            rc = sqlite3_open_v2(c_path, &db, flags, NULL)
        if rc != SQLITE_OK:
            message = (sqlite3_errmsg(db).decode("utf-8", "replace") if db != NULL
                       else "out of memory")
            sqlite3_close_v2(db)    # open allocates a handle even when it fails
            exc = error_for_code(rc, describe_open_failure(path, message))
            raise exc
        self.db = db
        filename = sqlite3_db_filename(db, b"main")
        if filename != NULL and filename[0] != 0:
            try:
                self.file_key = register_open_file(filename.decode("utf-8", "surrogateescape"))
            except BaseException:
                self.close()
                raise
        sqlite3_extended_result_codes(db, 1)
        install_hooks(db, &self.hooks)
        # Off, SQL such as PRAGMA writable_schema=1 + UPDATE sqlite_master corrupts the file.
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, <int>defensive, <int *>NULL)
        if rc != SQLITE_OK:
            self.close()
            raise error_for_code(rc, f"cannot open database {path!r}: SQLite refused to "
                                     f"set SQLITE_DBCONFIG_DEFENSIVE ({sqlite3_errstr(rc)!r})")
        cdef str asked = None
        try:
            for name, value in pragmas.items():
                self.run_pragma(name, value)
                if (type(name) is str and name.lower() == "journal_mode"
                        and type(value) is str and value.strip().lower() in JOURNAL_MODES):
                    asked = value.strip().lower()
            if asked is not None and not readonly and sqlite3_db_readonly(db, b"main") != 1:
                self.check_journal_mode(asked, defensive)
        except Error as exc:
            # SQLite's message ("file is not a database") does not say which file.
            code = exc.sqlite_errorcode
            wrote = not readonly and sqlite3_db_readonly(db, b"main") == 1
            choice = self.uri_vfs_choice()
            self.close()
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
            self.close()
            raise

    cdef int check_journal_mode(self, str asked, bint defensive) except -1:
        # PRAGMA journal_mode=X answers with the mode it left the file in, and does not fail
        # when X is impossible (WAL without shared memory under the chosen VFS; OFF under
        # defensive mode): the pool would then run in a mode nobody asked for.
        mode = self.pragma_text(b"PRAGMA journal_mode")
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
        choice = self.uri_vfs_choice()
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

    cdef str pragma_text(self, const char *sql):
        # The first column of a pragma's first row as text ("" when it returns no row), read
        # without the statement cache so opening a connection leaves the cache's counters alone.
        cdef sqlite3_stmt *handle = NULL
        cdef const unsigned char *text
        cdef int rc = sqlite3_prepare_v3(self.db, sql, -1, 0, &handle, NULL)
        if rc != SQLITE_OK:
            sqlite3_finalize(handle)
            self.raise_error(rc)
        rc = sqlite3_step(handle)
        if rc == SQLITE_ROW:
            text = sqlite3_column_text(handle, 0)
            result = "" if text == NULL else (<const char *>text).decode("utf-8", "replace")
            sqlite3_finalize(handle)
            return result
        if rc != SQLITE_DONE:
            sqlite3_finalize(handle)
            self.raise_error(rc)
        sqlite3_finalize(handle)
        return ""

    cdef str uri_vfs_choice(self):
        # What the database's URI says about locking and shared memory ("nolock=1" or
        # "vfs=NAME"), for messages and the pool's check; None when it says nothing.
        cdef const char *name = NULL
        cdef const char *vfs
        if self.db != NULL:
            name = sqlite3_db_filename(self.db, b"main")
        if name == NULL or name[0] == 0:
            return None
        if sqlite3_uri_boolean(name, b"nolock", 0):
            return "nolock=1"
        vfs = sqlite3_uri_parameter(name, b"vfs")
        if vfs != NULL:
            return "vfs=" + vfs.decode("utf-8", "replace")
        return None

    def __dealloc__(self):
        # Statements must be finalized before the handle closes; cursors may outlive us
        # only as stale objects (their generation no longer matches).
        if self.db != NULL:
            if self.cache is not None:
                self.cache.finalize_all()
            for st in self.active:
                (<Statement>st).finalize()
            sqlite3_close_v2(self.db)
            self.db = NULL
            unregister_open_file(self.file_key)

    cdef void attach_checkpointer(self, Checkpointer ck) noexcept:
        # From now on a commit that fills the WAL tells ck instead of checkpointing itself.
        self.checkpointer = ck
        self.hooks.wal_events = &ck.events

    # -- call protocol ---------------------------------------------------------------------

    cdef int enter(self) except -1:
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        if self.in_call:
            raise InterfaceError(
                "the connection is already running a call, in another thread or in a function "
                "it is calling back; a connection serves one thread at a time, so check out "
                "one connection per thread")
        if self.guard_tx:
            if self.tx_lost:
                raise tx_lost_error()
            if sqlite3_get_autocommit(self.db):
                self.guard_tx = False    # the caller ended the transaction itself (COMMIT)
        self.in_call = True
        return 0

    cdef void leave(self) noexcept:
        self.in_call = False

    cdef int step(self, Statement st) noexcept:
        cdef int rc
        arm(&self.hooks)
        rc = sqlite3_step(st.handle)
        disarm(&self.hooks)
        return rc

    cdef int raise_error(self, int rc) except -1:
        message = sqlite3_errmsg(self.db).decode("utf-8", "replace") if self.db != NULL else ""
        if (rc & 0xFF) in FATAL_PRIMARY_CODES:
            self.fatal = True
            # "database disk image is malformed" does not say which database.
            message += f" (database {self.path!r}; this connection is discarded)"
        if self.guard_tx and self.db != NULL and sqlite3_get_autocommit(self.db):
            # SQLite rolled the whole transaction back (SQLITE_FULL, an interrupt, I/O, OR
            # ROLLBACK): later statements would each commit on their own, so they must fail.
            self.tx_lost = True
            message += ("; SQLite rolled back the whole transaction, so every statement of "
                        "this writer block is undone")
        if self.reader_hint and (rc & 0xFF) == SQLITE_READONLY:
            message += ("; this is one of the pool's read-only readers: run writes with "
                        "'with pool.writer() as conn:' or pool.execute()")
        exc = error_for_code(rc, message)
        pending, self.pending_exc = self.pending_exc, None
        if pending is not None:
            if not isinstance(pending, Exception):
                # Ctrl-C or SystemExit in a user function: the function's error already
                # stopped the statement; the caller must see the interrupt, not a DB error.
                raise pending
            raise exc from pending
        raise exc

    # -- statements ------------------------------------------------------------------------

    cdef Statement prepare(self, str sql, bint persistent):
        cdef Py_ssize_t size
        cdef const char *text
        cdef const char *tail = NULL
        cdef sqlite3_stmt *handle = NULL
        cdef sqlite3_stmt *extra = NULL
        cdef int rc, i
        try:
            text = PyUnicode_AsUTF8AndSize(sql, &size)
        except UnicodeEncodeError as exc:
            raise ProgrammingError(
                f"the SQL has a lone surrogate at position {exc.start}; it must be valid text"
            ) from None
        if memchr(text, 0, size) != NULL:
            raise ProgrammingError("the SQL contains a NUL character; remove it")
        if size >= INT_MAX:
            raise DataError("the SQL is longer than SQLite accepts (2 GiB)")
        arm(&self.hooks)
        rc = sqlite3_prepare_v3(self.db, text, <int>size + 1,
                                SQLITE_PREPARE_PERSISTENT if persistent else 0, &handle, &tail)
        disarm(&self.hooks)
        if rc != SQLITE_OK:
            self.raise_error(rc)
        if handle == NULL:
            raise ProgrammingError("the SQL holds no statement (it is empty or only a comment)")
        if tail != NULL and tail[0] != 0:
            rc = sqlite3_prepare_v3(self.db, tail, -1, 0, &extra, NULL)
            if rc != SQLITE_OK or extra != NULL:
                sqlite3_finalize(extra)
                sqlite3_finalize(handle)
                raise ProgrammingError(
                    "execute() runs one statement, but the SQL holds more than one; "
                    "use executescript() to run a script")
        cdef Statement st = Statement.__new__(Statement)
        st.handle = handle
        st.readonly = sqlite3_stmt_readonly(handle)
        st.opens_transaction = FIRST_KEYWORD.match(sql).group(1).upper() not in NO_IMPLICIT_BEGIN
        st.nparams = sqlite3_bind_parameter_count(handle)
        st.columns_version = -1
        cdef const char *pname
        if st.nparams:
            names = []
            for i in range(1, st.nparams + 1):
                pname = sqlite3_bind_parameter_name(handle, i)
                names.append(None if pname == NULL or pname[0] == b"?"
                             else pname[1:].decode("utf-8"))
            if any(name is not None for name in names):
                st.param_names = tuple(names)
        return st

    cdef Statement checkout(self, str sql):
        cdef StatementCache cache = self.cache
        if sql is None:     # a `str` argument lets None through
            raise TypeError("sql must be str, not None")
        cdef PyObject *found = PyDict_GetItemWithError(cache.entries, sql)
        cdef Statement st
        if found != NULL:
            st = <Statement>found
            if not st.in_use:
                cache.hits += 1
                cache.unlink(st)
                st.in_use = True
                if not self.autocommit:
                    self.implicit_begin(st)
                return st
        cache.misses += 1
        cacheable = (found == NULL and cache.capacity > 0 and len(sql) <= MAX_CACHED_SQL)
        st = self.prepare(sql, cacheable)
        st.in_use = True
        if cacheable:
            st.key = sql
            cache.entries[sql] = st
            cache.trim()
        if not self.autocommit:
            self.implicit_begin(st)
        return st

    cdef int implicit_begin(self, Statement st) except -1:
        # PEP 249 mode: a statement runs inside a transaction. One that writes opens it with
        # BEGIN IMMEDIATE, so it never fails later with "database is locked" when a deferred
        # transaction would have to upgrade its lock.
        cdef int rc
        if not st.opens_transaction or not sqlite3_get_autocommit(self.db):
            return 0
        if not st.readonly:
            try:
                begin_write(self)   # the writer unit's one BEGIN IMMEDIATE
            except BaseException:
                self.release(st)
                raise
            return 0
        arm(&self.hooks)
        rc = sqlite3_exec(self.db, b"BEGIN", NULL, NULL, NULL)
        disarm(&self.hooks)
        if rc != SQLITE_OK:
            self.release(st)
            self.raise_error(rc)
        return 0

    cdef void release(self, Statement st) noexcept:
        # reset() repeats the last step's error code; that error was already raised.
        if st.handle != NULL:
            sqlite3_reset(st.handle)
            # Every call binds every parameter, so old bindings are never read; clearing only
            # matters to free SQLite's copies of large values held by an idle statement.
            if st.large_bindings:
                sqlite3_clear_bindings(st.handle)
                st.large_bindings = False
        st.in_use = False
        st.generation += 1
        if st.key is not None and st.handle != NULL:
            self.cache.link_front(st)
            self.cache.trim()
        else:
            st.finalize()

    cdef int bind(self, Statement st, object params) except -1:
        cdef Py_ssize_t i, n
        cdef tuple names = st.param_names
        cdef object seq
        if names is not None:
            if not isinstance(params, Mapping):
                if st.nparams and None in names:
                    raise ProgrammingError(
                        "the SQL mixes ? and :name parameters; use one style")
                raise ProgrammingError(
                    f"the SQL uses named parameters ({', '.join(':' + x for x in names)}); "
                    f"pass a mapping such as a dict, not {type(params).__name__}")
            for i in range(st.nparams):
                name = names[i]
                if name is None:
                    raise ProgrammingError("the SQL mixes ? and :name parameters; use one style")
                try:
                    value = params[name]
                except KeyError:
                    raise ProgrammingError(
                        f"missing value for named parameter :{name}; the SQL needs "
                        f"{', '.join(':' + x for x in names)}") from None
                bind_value(self, st, i + 1, value)
            return 0
        if type(params) is tuple or type(params) is list:
            seq = params
        elif isinstance(params, (str, bytes, bytearray)) or isinstance(params, Mapping):
            if isinstance(params, Mapping) and st.nparams == 0 and len(params) == 0:
                return 0
            raise ProgrammingError(
                f"the SQL uses {st.nparams} ? parameter(s); pass them as a tuple or list, "
                f"not {type(params).__name__}")
        else:
            try:
                seq = tuple(params)
            except TypeError:
                raise TypeError(
                    f"parameters must be a tuple, list or mapping, not {type(params).__name__}"
                ) from None
        n = len(seq)
        if n != st.nparams:
            raise ProgrammingError(
                f"the SQL expects {st.nparams} parameter(s) but {n} were given")
        if type(seq) is tuple:
            for i in range(n):
                bind_value(self, st, i + 1, <object>PyTuple_GET_ITEM(seq, i))
        else:
            for i in range(n):
                bind_value(self, st, i + 1, seq[i])
        return 0

    cdef tuple column_names(self, Statement st):
        # Auto-reprepare after a schema change can change the columns (SELECT *).
        cdef int version = sqlite3_stmt_status(st.handle, SQLITE_STMTSTATUS_REPREPARE, 0)
        cdef int i, n
        cdef const char *name
        cdef const char *decltype
        if st.columns is None or st.columns_version != version:
            n = sqlite3_column_count(st.handle)
            names = []
            types = []
            for i in range(n):
                name = sqlite3_column_name(st.handle, i)
                if name == NULL:
                    raise MemoryError("SQLite ran out of memory naming a column")
                names.append(name.decode("utf-8", "replace"))
                decltype = sqlite3_column_decltype(st.handle, i)
                types.append(None if decltype == NULL else decltype.decode("utf-8", "replace"))
            st.columns = tuple(names)
            st.decltypes = tuple(types)
            st.column_index = {c: i for i, c in reversed(list(enumerate(names)))}
            st.columns_version = version
        return st.columns

    cdef object make_row(self, Statement st):
        cdef tuple values = row_tuple(st.handle)
        if self.row_factory is None:
            return values
        return make_row_object(self.column_names(st), st.column_index, values)

    cdef int run_pragma(self, str name, object value) except -1:
        if type(name) is not str or not name.replace("_", "a").isalnum() or not name.isascii():
            raise ValueError(f"pragma name {name!r} is not a valid identifier")
        self.executescript(f"PRAGMA {name} = {pragma_literal(name, value)}")
        return 0

    # -- public API ------------------------------------------------------------------------

    cpdef object fetchone(self, str sql, object params=()):
        """Run ``sql`` and return its first row, or None when it returns no row."""
        cdef Statement st
        cdef int rc
        self.enter()
        try:
            st = self.checkout(sql)
            try:
                self.bind(st, params)
                rc = self.step(st)
                if rc == SQLITE_ROW:
                    return self.make_row(st)
                if rc != SQLITE_DONE:
                    self.raise_error(rc)
                return None
            finally:
                self.release(st)
        finally:
            self.leave()

    cpdef list fetchall(self, str sql, object params=()):
        """Run ``sql`` and return all its rows as a list."""
        cdef Statement st
        cdef int rc
        cdef list rows = []
        self.enter()
        try:
            st = self.checkout(sql)
            try:
                self.bind(st, params)
                while True:
                    rc = self.step(st)
                    if rc != SQLITE_ROW:
                        break
                    rows.append(self.make_row(st))
                if rc != SQLITE_DONE:
                    self.raise_error(rc)
                return rows
            finally:
                self.release(st)
        finally:
            self.leave()

    cpdef Cursor execute(self, str sql, object params=()):
        """Run one statement and return a Cursor over its rows.

        The first step runs now, so INSERT/UPDATE/DELETE take effect before this returns.
        """
        cdef Cursor cur = Cursor.__new__(Cursor, self)
        self.run(cur, sql, params)
        return cur

    cpdef Cursor executemany(self, str sql, object seq_of_params):
        """Run a data-changing statement once per parameter set; returns a finished Cursor."""
        cdef Cursor cur = Cursor.__new__(Cursor, self)
        self.run_many(cur, sql, seq_of_params)
        return cur

    cdef int run(self, Cursor cur, str sql, object params) except -1:
        self.enter()
        try:
            cur.start(self.checkout(sql), params)
        finally:
            self.leave()
        return 0

    cdef int run_many(self, Cursor cur, str sql, object seq_of_params) except -1:
        cdef Statement st
        cdef int rc
        cdef long long changes = 0
        if isinstance(seq_of_params, (str, bytes, Mapping)):
            raise TypeError("executemany() takes an iterable of parameter sets, "
                            f"not a single {type(seq_of_params).__name__}")
        self.enter()
        try:
            st = self.checkout(sql)
            try:
                if sqlite3_column_count(st.handle) and st.readonly:
                    raise ProgrammingError(
                        "executemany() runs statements that change data; "
                        "use fetchall() for queries")
                for params in seq_of_params:
                    self.bind(st, params)
                    rc = self.step(st)
                    if rc == SQLITE_ROW:
                        raise ProgrammingError(
                            "executemany() cannot run a statement that returns rows (RETURNING); "
                            "call execute() once per row instead")
                    if rc != SQLITE_DONE:
                        self.raise_error(rc)
                    changes += sqlite3_changes64(self.db)
                    sqlite3_reset(st.handle)
                cur._rowcount = changes if is_dml(st.handle) else -1
                cur._lastrowid = sqlite3_last_insert_rowid(self.db)
            finally:
                self.release(st)
        finally:
            self.leave()
        return 0

    # -- PEP 249 -----------------------------------------------------------------------------

    def cursor(self):
        """A new, empty Cursor on this connection; run statements with ``cursor.execute()``."""
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        return Cursor.__new__(Cursor, self)

    def commit(self):
        """Commit the open transaction, if any (PEP 249)."""
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        if not sqlite3_get_autocommit(self.db):
            self.executescript("COMMIT")

    def rollback(self):
        """Roll back the open transaction, if any (PEP 249)."""
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        if not sqlite3_get_autocommit(self.db):
            self.executescript("ROLLBACK")

    def __getattr__(self, name):
        # PEP 249's optional extension: the exception classes as connection attributes.
        try:
            return DBAPI_ERRORS[name]
        except KeyError:
            raise AttributeError(
                f"'fastpool.Connection' object has no attribute {name!r}") from None

    def executescript(self, str sql):
        """Run every statement of an SQL script, with no parameters; rows are discarded.

        Unlike the sqlite3 module, no COMMIT is issued first: transactions are yours.
        """
        cdef Py_ssize_t size
        cdef const char *text
        cdef const char *tail
        cdef sqlite3_stmt *handle
        cdef int rc
        if sql is None:
            raise TypeError("sql must be str, not None")
        try:
            text = PyUnicode_AsUTF8AndSize(sql, &size)
        except UnicodeEncodeError as exc:
            raise ProgrammingError(
                f"the SQL has a lone surrogate at position {exc.start}; it must be valid text"
            ) from None
        if memchr(text, 0, size) != NULL:
            raise ProgrammingError("the SQL contains a NUL character; remove it")
        self.enter()
        try:
            while text[0] != 0:
                handle = NULL
                arm(&self.hooks)
                rc = sqlite3_prepare_v3(self.db, text, -1, 0, &handle, &tail)
                if rc == SQLITE_OK and handle != NULL:
                    rc = sqlite3_step(handle)
                    while rc == SQLITE_ROW:
                        rc = sqlite3_step(handle)
                disarm(&self.hooks)
                if rc != SQLITE_OK and rc != SQLITE_DONE:
                    sqlite3_finalize(handle)
                    self.raise_error(rc)
                sqlite3_finalize(handle)
                text = tail
        finally:
            self.leave()

    def create_function(self, str name, int nargs, func, *, bint deterministic=False):
        """Register a Python function callable from SQL as ``name(...)``.

        ``nargs`` is the argument count (-1 for any). The function must not use this connection.
        """
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__}")
        if not -1 <= nargs <= 127:
            raise ValueError(f"nargs must be between -1 and 127, not {nargs}")
        cdef bytes encoded = name.encode("utf-8")
        if not encoded or len(encoded) > 255 or b"\x00" in encoded:
            raise ValueError("function name must be 1-255 bytes of UTF-8 without NUL")
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        if self.in_call:
            # Another thread's step may be inside SQLite on this handle (opened NOMUTEX).
            raise InterfaceError(
                "cannot register a function while a call is running on this connection")
        cdef FunctionSlot *slot = <FunctionSlot *>malloc(sizeof(FunctionSlot))
        if slot == NULL:
            raise MemoryError()
        slot.func = <PyObject *>func
        slot.conn = <PyObject *>self
        Py_INCREF(func)
        cdef int flags = SQLITE_UTF8 | (SQLITE_DETERMINISTIC if deterministic else 0)
        # On failure SQLite calls destroy_function itself, which frees the slot.
        cdef int rc = sqlite3_create_function_v2(self.db, encoded, nargs, flags, slot,
                                                 call_function, NULL, NULL, destroy_function)
        if rc != SQLITE_OK:
            self.raise_error(rc)

    def interrupt(self):
        """Make the statement running on this connection stop with OperationalError.

        Safe to call from any thread; does nothing if no statement is running.
        """
        if self.db != NULL:
            sqlite3_interrupt(self.db)

    cpdef bint reset(self):
        """Make the connection fit for its next user; return True if a transaction was open.

        Resets every statement still held by a cursor (so no snapshot stays pinned), rolls
        back an open transaction, and makes every cursor made so far stale.
        """
        cdef bint had_transaction
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        if self.in_call:
            raise InterfaceError("cannot reset a connection while a call is running on it")
        if self.active:
            for st in self.active:
                self.release(<Statement>st)
            self.active.clear()
        self.epoch += 1
        self.guard_tx = False
        self.tx_lost = False
        had_transaction = not sqlite3_get_autocommit(self.db)
        if had_transaction:
            self.executescript("ROLLBACK")
        return had_transaction

    def checkpoint(self, str mode="passive"):
        """Checkpoint the WAL (mode: passive, full, restart or truncate).

        Returns ``(wal_frames, checkpointed_frames)``; both are -1 when not in WAL mode.
        """
        cdef int emode, rc, log = -1, done = -1
        modes = {"passive": SQLITE_CHECKPOINT_PASSIVE, "full": SQLITE_CHECKPOINT_FULL,
                 "restart": SQLITE_CHECKPOINT_RESTART, "truncate": SQLITE_CHECKPOINT_TRUNCATE}
        if mode not in modes:
            raise ValueError(f"checkpoint mode must be one of {sorted(modes)}, not {mode!r}")
        emode = modes[mode]
        self.enter()
        try:
            with nogil:
                rc = sqlite3_wal_checkpoint_v2(self.db, NULL, emode, &log, &done)
            if rc != SQLITE_OK:
                self.raise_error(rc)
        finally:
            self.leave()
        return (log, done)

    cpdef abandon(self):
        """Forget the handle without closing it: for a child process after fork().

        The parent still owns the SQLite handle and its locks; closing it here could
        checkpoint or delete files under the parent's feet.
        """
        self.epoch += 1
        for st in self.cache.entries.values():
            (<Statement>st).handle = NULL
        for st in self.active:
            (<Statement>st).handle = NULL
        self.cache.entries.clear()
        self.cache.head = None
        self.cache.tail = None
        self.active.clear()
        self.db = NULL

    cpdef close(self):
        """Finalize every statement and close the database handle. Idempotent."""
        if self.db == NULL:
            return
        if self.in_call:
            # Finalizing the statement a step is running (here, from a user function, or in
            # another thread while the GIL is dropped) would free memory SQLite is using.
            raise InterfaceError(
                "cannot close the connection while a call is running on it; interrupt() it "
                "and close it once the call has returned")
        self.epoch += 1
        self.cache.finalize_all()
        for st in self.active:
            (<Statement>st).finalize()
        self.active.clear()
        cdef sqlite3 *db = self.db
        self.db = NULL
        with nogil:
            # Closing the last connection checkpoints the WAL: I/O, so without the GIL.
            sqlite3_close_v2(db)
        unregister_open_file(self.file_key)
        self.file_key = None

    @property
    def closed(self):
        """True once close() was called."""
        return self.db == NULL

    @property
    def in_transaction(self):
        """True while a transaction is open (BEGIN without COMMIT/ROLLBACK yet)."""
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        return not sqlite3_get_autocommit(self.db)

    @property
    def total_changes(self):
        """Rows inserted, updated or deleted since the connection opened."""
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        return sqlite3_total_changes64(self.db)

    def cache_stats(self):
        """The statement cache's counters: size, capacity, hits, misses, evictions."""
        return self.cache.stats()

    def __repr__(self):
        state = "closed" if self.db == NULL else ("read-only" if self.readonly else "read-write")
        return f"<fastpool.Connection {self.path!r} {state}>"
