@cython.final
cdef class Cursor:
    """Cursor(conn)
--

    The rows of one executed statement: fetchone/fetchmany/fetchall, iteration, description.

    A cursor holds its prepared statement until its rows are exhausted or it is closed; it
    goes stale when its connection is closed or returned to the pool. Made by
    ``Connection.cursor()``, ``Lease.cursor()`` and ``execute()``, not directly.
    """

    def __cinit__(self, Connection conn):
        self.conn = conn
        self.epoch = conn.epoch
        self._rowcount = -1
        self._lastrowid = 0
        self.arraysize = 1

    def __dealloc__(self):
        # While a call runs (maybe a step in another thread, GIL dropped) the handle must not
        # be touched: the statement then stays in conn.active until reset() or close(). The
        # collector may run this on any thread, so it claims the connection like a call.
        cdef Connection conn = self.conn
        if (self.stmt is not None and conn is not None
                and fp_claim_call(&conn.in_call) == FP_CLAIM_FREE):
            self.finish()
            fp_flag_store(&conn.in_call, 0)

    cdef int check(self) except -1:
        if self.epoch != self.conn.epoch or self.conn.db == NULL:
            raise InterfaceError(
                "this cursor is no longer usable: its connection was closed or returned to the "
                "pool; fetch the rows you need before the lease ends")
        return 0

    cdef int clear(self) except -1:
        # Before the cursor runs another statement: drop what is left of the last one.
        self.check()
        self.finish_claimed("cannot reuse a cursor while its connection is running a call")
        self.buffer = None
        self.names = None
        self.decltypes = None
        self._rowcount = -1
        return 0

    cdef int start(self, Statement st, object params) except -1:
        cdef Connection conn = self.conn
        cdef int rc
        self.stmt = st
        self.stmt_generation = st.generation
        conn.active.add(st)
        try:
            bind_params(conn, st, params)
            rc = conn.step(st)
            if sqlite3_column_count(st.handle):
                self.names = statement_columns(st)
                self.decltypes = st.decltypes
            if rc == SQLITE_DONE:
                if not st.readonly and is_dml(st.handle):
                    self._rowcount = sqlite3_changes64(conn.db)
                self._lastrowid = sqlite3_last_insert_rowid(conn.db)
                self.finish()
            elif rc != SQLITE_ROW:
                conn.raise_error(rc)
        except BaseException:
            self.finish()
            raise
        return 0

    cdef int finish_claimed(self, str busy) except -1:
        # finish() under the connection's claim, from the holder's thread between calls: a
        # snapshot sweep may hold the claim for a moment (waited out), a call is refused.
        cdef Connection conn = self.conn
        if fp_claim_call(&conn.in_call) != FP_CLAIM_FREE:
            raise InterfaceError(busy)
        self.finish()
        fp_flag_store(&conn.in_call, 0)
        return 0

    cdef void finish(self) noexcept:
        cdef Statement st = self.stmt
        if st is None:
            return
        self.stmt = None
        # Give the statement back only if it is still the one we were handed: after the
        # connection was reset or closed it belongs to someone else (or to nobody).
        if st.generation == self.stmt_generation and self.epoch == self.conn.epoch:
            self.conn.active.discard(st)
            self.conn.cache.recycle(st)

    cdef int materialize(self) except -1:
        # Fetch every row now, so the cursor outlives its connection's lease.
        cdef list rows = []
        while self.stmt is not None:
            rows.append(self.next_row())
        self.buffer = rows
        self.buffer_pos = 0
        return 0

    cdef object next_row(self):
        # Returns the pending row and steps to the next one, or None once exhausted.
        cdef Connection conn = self.conn
        cdef Statement st
        cdef int rc
        if self.buffer is not None:
            if self.buffer_pos >= len(self.buffer):
                return None
            self.buffer_pos += 1
            return self.buffer[self.buffer_pos - 1]
        self.check()
        if self.stmt is None:
            return None
        conn.enter()
        # Read under the connection's claim: a finish() that ran meanwhile (another thread's
        # close of this cursor) has taken the statement, and then there is nothing to step.
        st = self.stmt
        if st is None:
            conn.leave()
            return None
        try:
            row = conn.make_row(st)
            rc = conn.step(st)
            if rc == SQLITE_DONE:
                if not st.readonly:
                    self._rowcount = sqlite3_changes64(conn.db)
                    self._lastrowid = sqlite3_last_insert_rowid(conn.db)
                self.finish()
            elif rc != SQLITE_ROW:
                try:
                    conn.raise_error(rc)
                finally:
                    self.finish()
        finally:
            conn.leave()
        return row

    def fetchone(self):
        """Return the next row, or None when there are no more."""
        return self.next_row()

    def fetchmany(self, size=None):
        """Return up to ``size`` rows (default ``arraysize``) as a list."""
        cdef Py_ssize_t n = self.arraysize if size is None else size
        cdef list rows = []
        if n < 0:
            raise ValueError(f"size must be >= 0, not {n}")
        while n > 0:
            row = self.next_row()
            if row is None:
                break
            rows.append(row)
            n -= 1
        return rows

    def fetchall(self):
        """Return all remaining rows as a list."""
        cdef list rows = []
        while True:
            row = self.next_row()
            if row is None:
                return rows
            rows.append(row)

    def __iter__(self):
        return self

    def __next__(self):
        row = self.next_row()
        if row is None:
            raise StopIteration
        return row

    def execute(self, str sql, object params=()):
        """Run one statement on this cursor's connection (PEP 249); returns the cursor.

        Rows not yet fetched from the previous statement are discarded.
        """
        self.clear()
        self.conn.run(self, sql, params)
        return self

    def executemany(self, str sql, object seq_of_params):
        """Run a data-changing statement once per parameter set (PEP 249); returns the cursor."""
        self.clear()
        self.conn.run_many(self, sql, seq_of_params)
        return self

    def setinputsizes(self, sizes):
        """Accepted and ignored (PEP 249): SQLite needs no sizes."""

    def setoutputsize(self, size, column=None):
        """Accepted and ignored (PEP 249): SQLite needs no sizes."""

    def close(self):
        """Release the statement now; remaining rows are discarded. Idempotent."""
        self.buffer = None
        if self.epoch == self.conn.epoch:
            self.finish_claimed("cannot close a cursor while its connection is running a call")
        else:
            self.finish()   # the statement went back with the connection: nothing to touch

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.epoch == self.conn.epoch:
            self.finish_claimed("cannot close a cursor while its connection is running a call")
        else:
            self.finish()
        return False

    @property
    def description(self):
        """One 7-tuple per result column, or None for a statement without columns.

        Each is (name, type_code, None, None, None, None, None): type_code is the column's
        declared type (e.g. ``"INTEGER"``, ``"TEXT"``) or None for an expression; it compares
        equal to the PEP 249 type objects (``fastpool.STRING``, ``NUMBER``, ...) by SQLite's
        type affinity rules.
        """
        if self.names is None:
            return None
        return tuple([(name, decltype, None, None, None, None, None)
                      for name, decltype in zip(self.names, self.decltypes)])

    @property
    def rowcount(self):
        """Rows changed by an INSERT/UPDATE/DELETE (summed by executemany); -1 for queries."""
        return self._rowcount

    @property
    def lastrowid(self):
        """The rowid of the last row inserted on this connection when the statement finished."""
        return self._lastrowid

    @property
    def connection(self):
        """The connection this cursor runs on."""
        return self.conn
