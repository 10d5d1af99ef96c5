# The sqlite3-module units (_dbapi_*.pxi): fastpool.dbapi's Connection, Cursor and Row, which
# run on a core Connection (its statement cache, binding and fetch paths) and add the sqlite3
# module's semantics: isolation_level/autocommit, adapters and converters, row_factory and
# text_factory, the callbacks and the extras (backup, blobs, serialization, limits).

cdef class DBAPICursor


# Threads: a DBAPIConnection is its creating thread's (check_same_thread, the default), or,
# with check_same_thread=False, runs one call at a time through its core's call claim
# (Connection.in_call: a second concurrent call is refused, never interleaved). Its Python
# attributes (row_factory, text_factory, isolation_level, callbacks) are set by that thread
# between calls, as the sqlite3 module asks; the write turn is the turn's (_dbapi_turn.pxi).
cdef class DBAPIConnection:
    cdef Connection core
    cdef object __weakref__
    cdef public object row_factory
    cdef public object text_factory
    cdef object isolation           # None (autocommit) or "", DEFERRED, IMMEDIATE, EXCLUSIVE
    cdef str begin_sql              # what an implicit BEGIN runs
    cdef int mode                   # LEGACY, AUTOCOMMIT_ON, AUTOCOMMIT_OFF
    cdef bint same_thread
    cdef unsigned long owner
    cdef readonly int detect_types
    cdef bint immediate             # a bare BEGIN (implicit or written) is BEGIN IMMEDIATE
    cdef dict keep                  # callables SQLite holds pointers to, kept alive
    cdef object blobs               # weak set of open Blob objects, closed with the connection
    cdef object trace               # the trace callback, or None
    cdef object progress            # the progress handler, or None
    cdef object authorizer          # the authorizer, or None
    cdef object turn                # the file's WriteTurn (None: a private database)
    cdef object turn_token          # this connection's place in that turn's queue
    cdef bint holds_turn

    cdef int exec_sql(self, str sql) except -1
    cdef int set_isolation(self, object level) except -1
    cdef int control(self, str sql) except -1
    cdef int end_transaction(self, str sql) except -1
    cdef int take_turn(self) except -1
    cdef void leave_turn(self) noexcept

    # the execute/fetch path (final: direct calls)
    @cython.final
    cdef int check_open(self) except -1

    @cython.final
    cdef int check(self) except -1

    @cython.final
    cdef int check_thread(self) except -1

    @cython.final
    cdef DBAPICursor new_cursor(self)

    @cython.final
    cdef int begin_if_needed(self, Statement st) except -1

    @cython.final
    cdef void drop_turn(self, bint force) noexcept


cdef class DBAPICursor:
    cdef DBAPIConnection conn
    cdef Connection core            # the core connection the last statement ran on
    cdef object __weakref__
    cdef Statement stmt             # held while rows remain
    cdef unsigned int stmt_generation
    cdef unsigned int epoch
    cdef bint initialized
    cdef bint closed
    cdef bint locked                # a call on this cursor is running (re-entry is refused)
    cdef list converters
    cdef object _description
    cdef long long _rowcount
    cdef object _lastrowid
    cdef public object row_factory
    cdef public Py_ssize_t arraysize

    # the execute/fetch path (final: direct calls)
    @cython.final
    cdef int check(self) except -1

    @cython.final
    cdef void finish(self) noexcept

    @cython.final
    cdef int run(self, str sql, object params, bint many) except -1

    @cython.final
    cdef object next_row(self)
