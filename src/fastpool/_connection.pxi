# One SQLite connection. It serves one thread at a time (opened SQLITE_OPEN_NOMUTEX): a call
# that finds another call still running raises InterfaceError instead of reaching SQLite.

import os
from collections.abc import Mapping

cdef frozenset FATAL_PRIMARY_CODES = frozenset(
    [SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_MISUSE])


# Scripts that are one transaction-control statement (a reader lease's snapshot, the SQLAlchemy
# dialects' transactions): run from the connection's control statements, prepared once, as a
# prepare and finalize per call cost about as much as the point read they wrap.
cdef frozenset CONTROL_SCRIPTS = frozenset(["BEGIN", "COMMIT", "ROLLBACK"])


cdef object tx_lost_error():
    return error_for_code(
        SQLITE_ABORT_ROLLBACK,
        "the writer's transaction was rolled back by SQLite after an earlier error in this "
        "block; nothing of it was committed. Leave the block (or call rollback() to begin "
        "a new transaction) and run the work again")


@cython.final
cdef class Connection:
    """Connection(path, *, readonly=False, pragmas=None, statement_cache_size=128,
               busy_timeout=5.0, autocheckpoint=1000, row_factory=None, autocommit=True,
               defensive=True)
--

    One SQLite connection (internal: the pool opens these and lends them out).

    ``path`` is a file path or a ``file:`` URI. With ``autocommit=True`` (the pool's
    connections) transactions are opened explicitly (the pool's writer does ``BEGIN
    IMMEDIATE``). With ``autocommit=False`` (``fastpool.connect``, PEP 249) a transaction is
    opened before the first statement and lasts until ``commit()`` or ``rollback()``.
    ``defensive=True`` turns on SQLITE_DBCONFIG_DEFENSIVE (no ``PRAGMA writable_schema``
    and other SQL that can corrupt the file). A ``journal_mode`` in ``pragmas`` that SQLite
    does not apply (WAL under a VFS without shared memory, OFF under defensive mode) raises
    NotSupportedError.

    Attributes:
        path (str): the path or URI it was opened with.
        readonly (bool): opened read-only (a pool's readers are).
        autocommit (bool): True: transactions are explicit; False: PEP 249's implicit ones.
        fatal (bool): True once it hit an error after which it must not be reused (a pool
            then discards it and opens another instead of lending it out again).
        reader_hint (bool): set on a pool's readers, so that a write attempt's error says to
            use ``pool.writer()``; writable.
    """

    def __cinit__(self):
        self.db = NULL
        self.hooks.wal_events = NULL
        self.hooks.ckpt_running = NULL
        self.hooks.ckpt_waits = NULL
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
        open_database(self, path, readonly, pragmas, defensive)     # _open.pxi

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
        self.hooks.ckpt_running = &ck.in_checkpoint
        self.hooks.ckpt_waits = &ck.writer_waits

    # -- call protocol ---------------------------------------------------------------------

    cdef int enter(self) except -1:
        # Claim the connection (an atomic compare-exchange: of two threads, one wins, with or
        # without a GIL), then check it; leave() gives the claim up.
        if fp_claim_call(&self.in_call) != FP_CLAIM_FREE:
            if self.db == NULL:
                raise InterfaceError("the connection is closed")
            raise InterfaceError(
                "the connection is already running a call, in another thread or in a function "
                "it is calling back; a connection serves one thread at a time, so check out "
                "one connection per thread")
        if self.db == NULL:
            fp_flag_store(&self.in_call, 0)
            raise InterfaceError("the connection is closed")
        if self.guard_tx:
            if self.tx_lost:
                fp_flag_store(&self.in_call, 0)
                raise tx_lost_error()
            if sqlite3_get_autocommit(self.db):
                self.guard_tx = False    # the caller ended the transaction itself (COMMIT)
        if self.lease_counts != NULL and not self.active and sqlite3_get_autocommit(self.db):
            # A reader lease's statement outside a transaction of the caller's, with no
            # cursor's read open: reuse the kept snapshot if nothing committed since, else
            # take the newest (_snapshot.pxi).
            renew_snapshot(self, self.lease_counts, self.lease_slot)
        return 0

    cdef void leave(self) noexcept:
        fp_flag_store(&self.in_call, 0)

    cdef int step(self, Statement st) noexcept:
        cdef int rc
        arm(&self.hooks)
        rc = sqlite3_step(st.handle)
        disarm(&self.hooks)
        return rc

    cdef int run_control(self, str sql) except -1:
        # A parameterless transaction-control statement from lend_control, inside a call.
        cdef Statement st = self.cache.lend_control(self, sql)
        cdef int rc = self.step(st)
        if rc != SQLITE_DONE and rc != SQLITE_ROW:
            try:
                self.raise_error(rc)
            finally:
                sqlite3_reset(st.handle)    # repeats the step's error, raised just above
        sqlite3_reset(st.handle)            # after SQLITE_DONE: returns SQLITE_OK
        return 0

    cdef int end_transaction(self, bint commit) except -1:
        # COMMIT or ROLLBACK, as a call of its own (a lease's or a group's end).
        self.enter()
        try:
            self.run_control("COMMIT" if commit else "ROLLBACK")
        finally:
            self.leave()
        return 0

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

    cdef Statement statement_for(self, str sql):
        if sql is None:     # a `str` argument lets None through
            raise TypeError("sql must be str, not None")
        cdef Statement st = self.cache.lend(self, sql)
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
                self.cache.recycle(st)
                raise
            return 0
        arm(&self.hooks)
        rc = sqlite3_exec(self.db, b"BEGIN", NULL, NULL, NULL)
        disarm(&self.hooks)
        if rc != SQLITE_OK:
            self.cache.recycle(st)
            self.raise_error(rc)
        return 0

    cdef object make_row(self, Statement st):
        cdef tuple values = row_tuple(st.handle)
        if self.row_factory is None:
            return values
        return make_row_object(statement_columns(st), st.column_index, values)

    # -- public API ------------------------------------------------------------------------

    cpdef object fetchone(self, str sql, object params=()):
        """Run ``sql`` and return its first row, or None when it returns no row."""
        cdef Statement st
        cdef int rc
        self.enter()
        try:
            st = self.statement_for(sql)
            try:
                bind_params(self, st, params)
                rc = self.step(st)
                if rc == SQLITE_ROW:
                    return self.make_row(st)
                if rc != SQLITE_DONE:
                    self.raise_error(rc)
                return None
            finally:
                self.cache.recycle(st)
        finally:
            self.leave()

    cpdef list fetchall(self, str sql, object params=()):
        """Run ``sql`` and return all its rows as a list."""
        cdef Statement st
        cdef int rc
        cdef list rows = []
        self.enter()
        try:
            st = self.statement_for(sql)
            try:
                bind_params(self, st, params)
                while True:
                    rc = self.step(st)
                    if rc != SQLITE_ROW:
                        break
                    rows.append(self.make_row(st))
                if rc != SQLITE_DONE:
                    self.raise_error(rc)
                return rows
            finally:
                self.cache.recycle(st)
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
            cur.start(self.statement_for(sql), params)
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
            st = self.statement_for(sql)
            try:
                if sqlite3_column_count(st.handle) and st.readonly:
                    raise ProgrammingError(
                        "executemany() runs statements that change data; "
                        "use fetchall() for queries")
                for params in seq_of_params:
                    bind_params(self, st, params)
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
                self.cache.recycle(st)
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
        if sql in CONTROL_SCRIPTS:
            self.enter()
            try:
                self.run_control(sql)
            finally:
                self.leave()
            return
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
        register_function(self, name, nargs, func, deterministic)     # _functions.pxi

    def interrupt(self):
        """Make the statement running on this connection stop with OperationalError.

        Safe to call from any thread; does nothing if no statement is running.
        """
        # Under the connection's critical section, which close() takes to clear `db`: the
        # handle cannot be closed between the check and the call (no-op with a GIL).
        with cython.critical_section(self):
            if self.db != NULL:
                sqlite3_interrupt(self.db)
                # SQLite forgets an interrupt once no statement is active; a kept snapshot's
                # is, so the next one-shot drops it first (_snapshot.pxi).
                fp_flag_store(&self.interrupted, 1)

    cpdef bint reset(self):
        """Make the connection fit for its next user; return True if a transaction was open.

        Resets every statement still held by a cursor (so no snapshot stays pinned), rolls
        back an open transaction, and makes every cursor made so far stale.
        """
        cdef bint had_transaction
        if self.db == NULL:
            raise InterfaceError("the connection is closed")
        # Claimed like a call while the statements go back to the cache; the ROLLBACK below
        # is a call of its own (a thread that claims it in between makes that call fail).
        if fp_claim_call(&self.in_call) != FP_CLAIM_FREE:
            raise InterfaceError("cannot reset a connection while a call is running on it")
        if self.db == NULL:
            fp_flag_store(&self.in_call, 0)
            raise InterfaceError("the connection is closed")
        if self.active:
            for st in self.active:
                self.cache.recycle(<Statement>st)
            self.active.clear()
        if self.lease_counts == NULL:
            drop_snapshot(self)     # a lease's goes back with it (PoolCore.return_reader)
        self.epoch += 1
        self.guard_tx = False
        self.tx_lost = False
        had_transaction = not sqlite3_get_autocommit(self.db)
        fp_flag_store(&self.in_call, 0)
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
        cdef Checkpointer ck = self.checkpointer   # a pool's writer: its background one
        self.enter()
        if ck is not None:
            ck.pause()      # running beside this checkpoint, it would make this one BUSY
        try:
            with nogil:
                rc = sqlite3_wal_checkpoint_v2(self.db, NULL, emode, &log, &done)
            if rc != SQLITE_OK:
                self.raise_error(rc)
        finally:
            if ck is not None:
                ck.resume()
            self.leave()
        return (log, done)

    cpdef abandon(self):
        """Forget the handle without closing it: for a child process after fork().

        The parent still owns the SQLite handle and its locks; closing it here could
        checkpoint or delete files under the parent's feet.
        """
        self.epoch += 1
        self.cache.forget()
        for st in self.active:
            (<Statement>st).handle = NULL
        self.active.clear()
        self.snapshot = NULL
        finalize_snapshot(self)
        self.db = NULL

    cpdef close(self):
        """Finalize every statement and close the database handle. Idempotent."""
        cdef sqlite3 *db
        if self.db == NULL:
            return
        # Claimed like a call: no call can start while the handle goes, none runs now.
        if fp_claim_call(&self.in_call) != FP_CLAIM_FREE:
            if self.db == NULL:
                return      # closed meanwhile by another thread
            # Finalizing the statement a step is running (here, from a user function, or in
            # another thread while the GIL is dropped) would free memory SQLite is using.
            raise InterfaceError(
                "cannot close the connection while a call is running on it; interrupt() it "
                "and close it once the call has returned")
        if self.db == NULL:
            fp_flag_store(&self.in_call, 0)
            return
        self.epoch += 1
        self.cache.finalize_all()
        for st in self.active:
            (<Statement>st).finalize()
        self.active.clear()
        finalize_snapshot(self)
        with cython.critical_section(self):     # see interrupt()
            db = self.db
            self.db = NULL
        fp_flag_store(&self.in_call, 0)
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
