# The cursor unit (_cursor.pxi).

# A cursor is one thread's at a time, as PEP 249 says of cursors; its statement steps only
# under the connection's call claim (Connection.in_call), and its finalizer claims it too.
cdef class Cursor:
    cdef Connection conn
    cdef Statement stmt             # held while rows remain
    cdef unsigned int stmt_generation
    cdef unsigned int epoch
    cdef tuple names
    cdef tuple decltypes
    cdef long long _rowcount
    cdef long long _lastrowid
    cdef list buffer                # rows fetched ahead by materialize(), else None
    cdef Py_ssize_t buffer_pos
    cdef public Py_ssize_t arraysize

    cdef int check(self) except -1
    cdef int clear(self) except -1
    cdef int start(self, Statement st, object params) except -1
    cdef object next_row(self)
    cdef int finish_claimed(self, str busy) except -1
    cdef void finish(self) noexcept
    cdef int materialize(self) except -1
