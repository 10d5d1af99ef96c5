# The statement unit (_statement.pxi): prepared statements and their per-connection LRU.

cdef class Connection

cdef class Statement:
    cdef sqlite3_stmt *handle
    cdef object key                 # the SQL text when cached, else None
    cdef bint in_use                # lent to a call or a cursor
    cdef unsigned int generation    # bumped on every recycle: cursors holding an old one are stale
    cdef Statement prev             # LRU neighbours while idle in the cache
    cdef Statement next
    cdef int nparams
    cdef tuple param_names          # names without prefix for :name/@name/$name, else None
    cdef bint readonly
    cdef bint opens_transaction      # PEP 249 mode begins a transaction before it (not BEGIN...)
    cdef bint large_bindings        # a bound text/blob is big enough to be worth freeing early
    cdef tuple columns              # column names, built on first need
    cdef tuple decltypes            # declared column types (None for expressions), with columns
    cdef dict column_index          # name -> position, for Row
    cdef int columns_version        # reprepare count when columns was built
    cdef tuple description          # fastpool.dbapi's cursor.description, built from ...
    cdef tuple description_names    # ... this columns tuple (rebuilt when columns is)
    cdef list converters            # fastpool.dbapi's converter per column (None if none has one),
    cdef tuple converters_columns   # ... built from this columns tuple,
    cdef int converters_detect      # ... these detect_types
    cdef unsigned long long converters_version  # ... and this version of the registry

    cdef void finalize(self) noexcept


# A statement and its connection's cache belong to whoever holds the connection's call claim
# (Connection.in_call) or lease: one thread at a time, so no lock of their own (the dict's
# borrowed lookups in lend() are safe for that reason). Other threads read only the counters
# (C atomics) and len(entries) (pool.stats()).
cdef class StatementCache:
    cdef dict entries               # sql -> Statement (idle or in use)
    cdef dict control               # sql -> BEGIN IMMEDIATE/COMMIT/ROLLBACK (lend_control)
    cdef Statement head             # most recently used idle statement
    cdef Statement tail             # least recently used idle statement
    cdef Py_ssize_t capacity
    cdef fp_atomic_u64 hits
    cdef fp_atomic_u64 misses
    cdef fp_atomic_u64 evictions

    cdef void link_front(self, Statement st) noexcept
    cdef void unlink(self, Statement st) noexcept
    cdef void trim(self) noexcept
    cdef void finalize_all(self) noexcept
    cdef Statement lend(self, Connection conn, str sql)
    cdef void recycle(self, Statement st) noexcept
    cdef void forget(self) noexcept
    cdef Statement lend_control(self, Connection conn, str sql)
