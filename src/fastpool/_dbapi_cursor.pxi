# fastpool.dbapi.Cursor: the sqlite3 module's cursor on the core's statement cache, binding
# and row paths (see _dbapi.pxd).

import re

# A written BEGIN without a mode: fastpool's default makes it BEGIN IMMEDIATE.
cdef object BARE_BEGIN = re.compile(r"\s*BEGIN(\s+TRANSACTION)?\s*;?\s*$", re.I)
# Statements before which the sqlite3 module's legacy mode opens a transaction.
# A written BEGIN that takes the write lock (after BARE_BEGIN's rewrite, too).
cdef object WRITE_BEGIN = re.compile(r"\s*BEGIN\s+(IMMEDIATE|EXCLUSIVE)\b", re.I)
cdef object DML_KEYWORD = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)


@cython.freelist(16)
cdef class DBAPICursor:
    """DBAPICursor(connection)
--

    A cursor of the sqlite3 module: ``execute``, ``fetch*``, iteration, ``description``.
    """

    def __cinit__(self):
        # (Cython passes the constructor's arguments to __init__ only: none are parsed here.)
        self._rowcount = -1
        self._lastrowid = None
        self.arraysize = 1

    def __init__(self, connection):
        if self.locked:
            raise ProgrammingError("Recursive use of cursors not allowed.")
        if not isinstance(connection, DBAPIConnection):
            raise TypeError(f"argument 1 must be sqlite3.Connection, not "
                            f"{type(connection).__name__}")
        self.conn = <DBAPIConnection>connection
        self.row_factory = self.conn.row_factory
        self.initialized = True

    def __dealloc__(self):
        # Not while another thread's call runs on the handle (its statement then stays with
        # the connection until close()); a callback on this thread may drop a cursor.
        if self.stmt is not None and self.core is not None and (
                not self.core.in_call
                or self.core.call_thread == PyThread_get_thread_ident()):
            self.finish()

    cdef int check(self) except -1:
        if not self.initialized:
            raise ProgrammingError("Base Cursor.__init__ not called.")
        self.conn.check()
        if self.closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        if self.locked:
            raise ProgrammingError("Recursive use of cursors not allowed.")
        return 0

    cdef void finish(self) noexcept:
        cdef Statement st = self.stmt
        cdef Connection core = self.core
        if st is None:
            return
        self.stmt = None
        if st.generation == self.stmt_generation and self.epoch == core.epoch:
            if st.key is None:
                core.active.discard(st)
            core.cache.recycle(st)

    cdef int run(self, str sql, object params, bint many) except -1:
        cdef DBAPIConnection conn = self.conn
        cdef Connection core = conn.core
        cdef Statement st
        cdef int rc
        cdef long long changes = 0
        self.finish()
        self._description = None
        self._rowcount = -1
        self.converters = None
        if sql is None:
            raise TypeError("execute() argument 1 must be str, not None")
        cdef Hooks saved
        cdef int nested = dbapi_enter(core, &saved)
        self.locked = True
        self.core = core
        try:
            try:
                st = core.cache.lend(core, sql)
            except Error as exc:
                if lend_failure(exc, sql):
                    return 0
                raise
            if not st.opens_transaction and conn.immediate and BARE_BEGIN.match(sql):
                core.cache.recycle(st)      # a bare BEGIN: fastpool's is IMMEDIATE
                sql = "BEGIN IMMEDIATE"
                st = core.cache.lend(core, sql)
            self.stmt = st
            self.stmt_generation = st.generation
            self.epoch = core.epoch
            if st.key is None:
                # Cached statements are finalized with the cache when the connection closes;
                # an uncached one held by this cursor must be found then too.
                core.active.add(st)
            if many and sqlite3_column_count(st.handle):
                raise ProgrammingError("executemany() can only execute DML statements.")
            conn.begin_if_needed(st)
            if not st.opens_transaction and WRITE_BEGIN.match(sql):
                conn.take_turn()
            if many:
                for p in params:
                    dbapi_bind(core, st, p)
                    rc = core.step(st)
                    if rc == SQLITE_ROW:
                        raise ProgrammingError("executemany() can only execute DML statements.")
                    if rc != SQLITE_DONE:
                        raise_step_error(core, rc)
                    if is_dml(st.handle):
                        changes += sqlite3_changes64(core.db)
                    sqlite3_reset(st.handle)
                self._rowcount = changes if is_dml(st.handle) else -1
                self._lastrowid = sqlite3_last_insert_rowid(core.db)
                self.finish()
                return 0
            dbapi_bind(core, st, params)
            rc = core.step(st)
            if sqlite3_column_count(st.handle):
                self._description = statement_description(st, conn.detect_types)
                self.converters = row_converters(st, conn.detect_types)
            if rc == SQLITE_DONE:
                if not st.readonly and is_dml(st.handle):
                    self._rowcount = sqlite3_changes64(core.db)
                self._lastrowid = sqlite3_last_insert_rowid(core.db)
                self.finish()
            elif rc != SQLITE_ROW:
                raise_step_error(core, rc)
            elif not st.readonly and is_dml(st.handle):
                self._rowcount = 0      # RETURNING: counted as the rows are stepped
        except BaseException:
            self.finish()
            raise
        finally:
            self.locked = False
            dbapi_leave(core, nested, &saved)
            conn.drop_turn(False)
        return 0

    cdef object next_row(self):
        # The pending row, stepping to the next one; None once exhausted.
        cdef DBAPIConnection conn = self.conn
        cdef Connection core = self.core
        cdef Statement st = self.stmt
        cdef int rc
        if st is None:
            return None
        if self.epoch != core.epoch or st.generation != self.stmt_generation:
            self.stmt = None
            return None
        self.locked = True      # a converter or row_factory must not reuse this cursor
        try:
            if self.converters is None and conn.text_factory is str:
                try:
                    row = row_tuple(st.handle)
                except DataError:       # invalid UTF-8: the sqlite3 module's message
                    row = converted_row(st, None, conn.text_factory)
            else:
                row = converted_row(st, self.converters, conn.text_factory)
        finally:
            self.locked = False
        cdef Hooks saved
        cdef int nested = dbapi_enter(core, &saved)
        try:
            rc = core.step(st)
            if rc == SQLITE_DONE:
                if not st.readonly and is_dml(st.handle):
                    self._rowcount = sqlite3_changes64(core.db)
                self.finish()
            elif rc != SQLITE_ROW:
                try:
                    raise_step_error(core, rc)
                finally:
                    self.finish()
            elif self._rowcount >= 0:
                self._rowcount += 1
        finally:
            dbapi_leave(core, nested, &saved)
        if self.row_factory is not None:
            self.locked = True
            try:
                return self.row_factory(self, row)
            finally:
                self.locked = False
        return row

    def execute(self, sql, parameters=(), /):
        """Run one SQL statement with ``parameters`` (a sequence or a dict); returns self."""
        sql = sql_text(sql, "execute")
        self.check()
        self.run(sql, parameters, False)
        return self

    def executemany(self, sql, seq_of_parameters, /):
        """Run a DML statement once per parameter set; returns self."""
        if not isinstance(sql, str):
            raise TypeError(f"executemany() argument 1 must be str, not {type(sql).__name__}")
        self.check()
        params = iter(seq_of_parameters)
        self.run(str(sql), params, True)
        return self

    def executescript(self, sql_script, /):
        """Commit any pending transaction, then run an SQL script; returns self."""
        cdef DBAPIConnection conn
        if not isinstance(sql_script, str):
            raise TypeError("script argument must be unicode.")
        self.check()
        conn = self.conn
        self.finish()
        if "\x00" in sql_script:
            raise ValueError("embedded null character")
        encoded = str.encode(sql_script, "utf-8")      # a lone surrogate: UnicodeEncodeError
        if len(encoded) > sqlite3_limit(conn.core.db, SQLITE_LIMIT_SQL_LENGTH, -1):
            raise DataError("query string is too large")
        if conn.mode == LEGACY and not sqlite3_get_autocommit(conn.core.db):
            conn.exec_sql("COMMIT")
        self.locked = True
        conn.core.call_thread = PyThread_get_thread_ident()     # the call executescript enters
        try:
            conn.core.executescript(sql_script)
        except ProgrammingError as exc:
            raise ProgrammingError(str(exc)) from None
        finally:
            self.locked = False
            # Not left naming this thread for the next claimant (see dbapi_leave); at worst
            # a claimant that stored its own ident between these two lines loses it, and its
            # nested callbacks are refused: an error, never two calls on one handle.
            if conn.core.call_thread == PyThread_get_thread_ident():
                conn.core.call_thread = 0
            conn.drop_turn(False)
        self._description = None
        self._rowcount = -1
        return self

    def fetchone(self):
        """The next row, or None when there are no more."""
        self.check()
        return self.next_row()

    def fetchmany(self, size=None):
        """Up to ``size`` rows (default ``arraysize``) as a list."""
        cdef Py_ssize_t n = self.arraysize if size is None else size
        cdef list rows = []
        self.check()
        while n > 0:
            row = self.next_row()
            if row is None:
                break
            rows.append(row)
            n -= 1
        return rows

    def fetchall(self):
        """All remaining rows as a list."""
        cdef list rows = []
        self.check()
        while True:
            row = self.next_row()
            if row is None:
                return rows
            rows.append(row)

    def __iter__(self):
        return self

    def __next__(self):
        self.check()
        row = self.next_row()
        if row is None:
            raise StopIteration
        return row

    def close(self):
        """Close the cursor: later calls raise ProgrammingError. Idempotent."""
        if not self.initialized:
            raise ProgrammingError("Base Cursor.__init__ not called.")
        if self.locked:
            raise ProgrammingError("Recursive use of cursors not allowed.")
        if self.conn.core is not None and self.conn.core.db != NULL:
            self.conn.check()
        self.finish()
        self.closed = True

    def setinputsizes(self, sizes, /):
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size, column=None, /):
        """Accepted and ignored (PEP 249)."""

    @property
    def description(self):
        """One 7-tuple ``(name, None, None, None, None, None, None)`` per column, or None."""
        return self._description

    @property
    def rowcount(self):
        """Rows changed by the last INSERT/UPDATE/DELETE/REPLACE (-1 otherwise)."""
        return self._rowcount

    @property
    def lastrowid(self):
        """The rowid of the last inserted row (None before any statement)."""
        return self._lastrowid

    @property
    def connection(self):
        """The connection this cursor belongs to."""
        return self.conn


cdef bint lend_failure(object exc, str sql) except -1:
    # A statement the core refused to prepare, in the sqlite3 module's terms; True when
    # there is nothing to run (only whitespace or comments), which is not an error there.
    message = str(exc)
    if exc.sqlite_errorcode is not None and exc.sqlite_errorcode & 0xFF == SQLITE_TOOBIG:
        raise DataError("query string is too large") from None
    if "more than one" in message:
        raise ProgrammingError("You can only execute one statement at a time.") from None
    if "holds no statement" in message:
        return True
    if "lone surrogate" in message:
        str.encode(sql, "utf-8")
    if "NUL character" in message:
        raise ProgrammingError("the query contains a null character") from None
    return False


cdef int raise_step_error(Connection core, int rc) except -1:
    # The core's error for rc, except that SQLite's out-of-memory is MemoryError here.
    if rc & 0xFF == SQLITE_NOMEM:
        core.pending_exc = None
        raise MemoryError()
    return core.raise_error(rc)


cdef tuple statement_description(Statement st, int detect_types):
    # cursor.description: built once per prepared statement (and again after a schema change
    # reprepared it); PARSE_COLNAMES cuts the names, so it is built each time then.
    cdef int i
    if detect_types & PARSE_COLNAMES:
        return tuple([(column_name(st, i, detect_types), None, None, None, None, None, None)
                      for i in range(sqlite3_column_count(st.handle))])
    names = statement_columns(st)
    if st.description is None or st.description_names is not names:
        st.description = tuple([(name, None, None, None, None, None, None) for name in names])
        st.description_names = names
    return st.description


# -- the call protocol ----------------------------------------------------------------------

cdef int dbapi_enter(Connection core, Hooks *saved) except -1:
    # Start a call on core: 0, or 1 for a call nested in the one running on this thread (a
    # user function, aggregate, authorizer... using its own connection, which SQLite allows).
    # A nested call must not take over the hooks of the step it runs inside: they are saved
    # here and put back by dbapi_leave, so the outer step gets its GIL state back intact.
    cdef unsigned long me = PyThread_get_thread_ident()
    if core.in_call and core.call_thread == me and core.db != NULL:
        saved[0] = core.hooks
        core.hooks.armed = 0
        core.hooks.saved = NULL
        return 1
    core.enter()
    core.call_thread = me
    return 0


cdef void dbapi_leave(Connection core, int nested, Hooks *saved) noexcept:
    if nested:
        core.hooks = saved[0]
    else:
        # Cleared before the claim is given up: a thread whose earlier call left its ident
        # here must not take the next claimant's call for one nested in its own.
        core.call_thread = 0
        core.leave()


cdef str sql_text(object sql, str method):
    # The SQL argument of execute(): a str (a subclass's own text), else TypeError.
    if type(sql) is str:
        return <str>sql
    if not isinstance(sql, str):
        raise TypeError(f"{method}() argument 1 must be str, not {type(sql).__name__}")
    return str.__str__(sql)
