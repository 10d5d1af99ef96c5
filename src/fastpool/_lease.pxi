# Leases: a connection lent by the pool. A lease is dead once returned, and any use of a dead
# lease raises InterfaceError, so a connection can never be used by two borrowers at once.

# A lease refers only to its pool and its connection, and fastpool never stores a lease, so
# a lease is not part of a reference cycle: it needs no GC tracking, and no GC pass can clear
# its fields before __dealloc__ reads them to take a leaked connection back. Objects recycled
# from the freelist save an allocation per checkout.

import warnings


@cython.final
@cython.no_gc
@cython.freelist(16)
cdef class Lease:
    """Lease()
--

    A pooled connection, lent to you until the ``with`` block ends or ``close()``.

    Offers fetchone/fetchall/execute/executemany/executescript like a connection. A writer
    lease is always inside a transaction: commit() and rollback() end it and start the next.
    Made by the pool (``pool.reader()``, ``pool.writer()``); one made directly is returned
    already and raises InterfaceError when used.
    """

    cdef Connection live(self):
        cdef Connection conn
        with cython.critical_section(self):     # see _lease.pxd
            conn = self.conn
        if conn is None or conn.epoch != self.epoch or self.fork_generation != FORK_GENERATION:
            raise InterfaceError(dead_lease_message(self))
        return conn

    def fetchone(self, str sql, object params=()):
        """Run ``sql`` and return its first row, or None."""
        return self.live().fetchone(sql, params)

    def fetchall(self, str sql, object params=()):
        """Run ``sql`` and return all its rows."""
        return self.live().fetchall(sql, params)

    def execute(self, str sql, object params=()):
        """Run one statement and return a Cursor; the cursor dies with the lease."""
        return self.live().execute(sql, params)

    def executemany(self, str sql, object seq_of_params):
        """Run a data-changing statement once per parameter set."""
        return self.live().executemany(sql, seq_of_params)

    def executescript(self, str sql):
        """Run a script of statements without parameters."""
        return self.live().executescript(sql)

    def cursor(self):
        """A new, empty Cursor on this lease (PEP 249); it dies with the lease."""
        return self.live().cursor()

    def interrupt(self):
        """Stop the statement running on this connection (from any thread)."""
        self.live().interrupt()

    def transaction(self):
        """A context manager for one transaction inside this lease.

        On a reader: ``BEGIN`` ... ``COMMIT``, so every query in the block sees one snapshot.
        On a writer: a SAVEPOINT, rolled back alone if the block raises.
        """
        self.live()
        return Transaction(self)

    def commit(self):
        """Commit the writer's transaction now and begin the next one (readers: end a snapshot)."""
        cdef Connection conn = self.live()
        if self.role == SAVEPOINT:
            conn.executescript(f"RELEASE {self.savepoint}; SAVEPOINT {self.savepoint}")
        elif conn.in_transaction:
            conn.executescript("COMMIT")
        if self.role == WRITER and not self.plain:
            begin_lease_write(self)

    def rollback(self):
        """Roll back the writer's transaction and begin the next one."""
        cdef Connection conn = self.live()
        if self.role != READER:
            conn.tx_lost = False    # acknowledged: the next transaction starts clean
        if self.role == SAVEPOINT:
            conn.executescript(f"ROLLBACK TO {self.savepoint}")
        elif conn.in_transaction:
            conn.executescript("ROLLBACK")
        if self.role == WRITER and not self.plain:
            begin_lease_write(self)

    def close(self):
        """Give the connection back to the pool; uncommitted writes are rolled back. Idempotent."""
        cdef Connection conn
        with cython.critical_section(self):     # see _lease.pxd
            conn = self.conn
        if conn is None:
            return
        if self.fork_generation != FORK_GENERATION:
            self.conn = None    # lent to the parent process: not ours to touch or return
            return
        if self.role == SAVEPOINT:
            self.end_savepoint(True)
            return
        # A connection closed underneath the lease (epoch changed) still holds its slot:
        # end_lease discards it and frees the slot.
        if (self.role == WRITER and not self.plain and conn.epoch == self.epoch and conn.db != NULL
                and conn.total_changes != self.changes_at_begin and conn.in_transaction):
            warnings.warn(
                "a writer lease was closed with uncommitted changes; they were rolled back. "
                "Use 'with pool.writer() as conn:' (commits on success) or call conn.commit()",
                ResourceWarning, stacklevel=2)
        self.pool.end_lease(self)

    cdef int end_savepoint(self, bint keep) except -1:
        cdef Connection conn
        with cython.critical_section(self):     # see _lease.pxd
            conn = self.conn
            self.conn = None
        if conn is None or conn.epoch != self.epoch or conn.db == NULL:
            return 0
        if keep:
            conn.executescript(f"RELEASE {self.savepoint}")
        else:
            conn.executescript(f"ROLLBACK TO {self.savepoint}; RELEASE {self.savepoint}")
        return 0

    # __enter__, __exit__ and PoolCore.reader are plain C methods, not Cython function objects:
    # cheaper to call on every checkout. The 'clinic' signature keeps inspect.signature working.
    @cython.binding(False)
    @cython.embedsignature.format('clinic')
    def __enter__(self):
        self.live()
        return self

    @cython.binding(False)
    @cython.embedsignature.format('clinic')
    def __exit__(self, exc_type, exc, tb):
        cdef Connection conn
        with cython.critical_section(self):     # see _lease.pxd
            conn = self.conn
        if conn is None:
            return False
        if self.fork_generation != FORK_GENERATION:
            self.conn = None    # lent to the parent process: never COMMIT or ROLLBACK it here
            return False
        if self.role == SAVEPOINT:
            self.end_savepoint(exc_type is None)
            return False
        if self.role == WRITER and not self.plain:
            if conn.epoch != self.epoch or conn.db == NULL:
                # Closed underneath: the slot still goes back, but nothing was committed, and
                # a clean exit must not pretend otherwise.
                self.pool.end_lease(self)
                if exc_type is None:
                    raise InterfaceError(
                        "the writer's connection was closed underneath this lease before "
                        "COMMIT; its transaction is lost")
                return False
            if conn.tx_lost:
                # SQLite already rolled the transaction back: a clean exit must not look like
                # a commit of the statements that ran (each on its own) after that.
                self.pool.end_lease(self)
                if exc_type is None:
                    raise tx_lost_error()
                return False
            try:
                if not sqlite3_get_autocommit(conn.db):     # in a transaction
                    conn.end_transaction(exc_type is None)
            finally:
                self.pool.end_lease(self)    # a failed COMMIT is rolled back there
        else:
            self.pool.end_lease(self)
        return False

    def __dealloc__(self):
        # Not __del__: a lease is never in a reference cycle (see above), so its fields are
        # all still set here, and a plain deallocation skips the finalizer protocol.
        if self.conn is None or self.role == SAVEPOINT or self.pool is None:
            return
        try:
            lease_collected(self)
        except Exception:
            # At interpreter shutdown module globals (warnings, ...) may already be gone:
            # still hand the slot back, quietly.
            self.pool.end_lease(self)

    @property
    def in_transaction(self):
        """True while a transaction is open on this connection."""
        return self.live().in_transaction

    @property
    def kind(self):
        """'reader', 'writer' or 'writer savepoint'."""
        return ROLE_NAMES[self.role]

    @property
    def closed(self):
        """True once the lease was returned to the pool."""
        return self.conn is None or self.conn.epoch != self.epoch

    def __repr__(self):
        state = "returned" if self.closed else "active"
        return f"<fastpool.Lease {ROLE_NAMES[self.role]} {state}>"


cdef int lease_collected(Lease self, str why=None) except -1:
    # The finalizer's work: warn about the leak, then give the connection back. The asyncio
    # engine calls it too, with its own `why`, for a lease whose task or event loop is gone.
    if self.fork_generation != FORK_GENERATION:
        self.conn = None
        return 0
    warn_leaked(self, why)
    self.pool.end_lease(self)
    return 0


cdef int warn_leaked(Lease self, str why) except -1:
    where = "pass debug=True to the pool to record where"
    held = self.pool.holders.get((self.role, self.slot)) if self.pool.debug else None
    if held is not None:
        where = f"checked out by thread {held[0]!r} at:\n{held[2]}"
    if why is None:
        why = (f"when it was garbage-collected. Use 'with pool."
               f"{'reader' if self.role == READER else 'writer'}() as conn:'")
    warnings.warn(
        f"a {ROLE_NAMES[self.role]} lease was never returned to the pool; fastpool took its "
        f"connection back {why} ({where})", ResourceWarning, stacklevel=2)
    return 0


cdef str dead_lease_message(Lease lease):
    cdef Connection conn = lease.conn
    role = ROLE_NAMES[lease.role]
    again = f"pool.{'reader' if lease.role == READER else 'writer'}()"
    if conn is not None and lease.fork_generation != FORK_GENERATION:
        return (f"this {role} lease was checked out before os.fork(), by the parent process; "
                f"its connection belongs to the parent. Check out a new one here with {again}")
    if conn is not None and conn.db == NULL:
        return (f"the connection of this {role} lease was closed underneath it; return the "
                f"lease (end its 'with' block or call close()) and check out a new one with "
                f"{again}")
    return (f"this {role} lease was returned to the pool and can no longer be used; check out "
            f"a new one with {again}")


@cython.final
cdef class Transaction:
    """Transaction(lease)
--

    ``with lease.transaction():`` — one snapshot on a reader, a savepoint on a writer.

    Made by ``lease.transaction()``, not directly.
    """

    def __cinit__(self, Lease lease):
        self.lease = lease

    def __enter__(self):
        cdef Connection conn = self.lease.live()
        if self.lease.role == READER:
            conn.executescript("BEGIN")
        else:
            self.savepoint = self.lease.pool.next_savepoint()
            conn.executescript(f"SAVEPOINT {self.savepoint}")
        return self.lease

    def __exit__(self, exc_type, exc, tb):
        cdef Connection conn = self.lease.live()
        if self.savepoint is None:
            if conn.in_transaction:
                conn.executescript("COMMIT" if exc_type is None else "ROLLBACK")
        elif exc_type is None:
            conn.executescript(f"RELEASE {self.savepoint}")
        else:
            conn.executescript(f"ROLLBACK TO {self.savepoint}; RELEASE {self.savepoint}")
        return False
