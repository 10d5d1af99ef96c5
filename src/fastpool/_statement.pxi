# Prepared statements and the per-connection LRU cache of them.
#
# A cached statement stays in `entries` while it is checked out (in_use), but leaves the LRU
# list, so eviction only ever finalizes idle statements. A second user of the same SQL while
# the first still holds it (two live cursors) gets a fresh, uncached statement.

cdef enum:
    MAX_CACHED_SQL = 16384      # longer SQL is one-off (scripts, generated bulk inserts)


@cython.final
@cython.no_gc_clear
cdef class Statement:

    def __dealloc__(self):
        if self.handle != NULL:
            sqlite3_finalize(self.handle)
            self.handle = NULL

    cdef void finalize(self) noexcept:
        if self.handle != NULL:
            sqlite3_finalize(self.handle)
            self.handle = NULL
        self.generation += 1


@cython.final
cdef class StatementCache:

    def __cinit__(self, Py_ssize_t capacity):
        self.entries = {}
        self.capacity = capacity

    cdef void link_front(self, Statement st) noexcept:
        st.prev = None
        st.next = self.head
        if self.head is not None:
            self.head.prev = st
        self.head = st
        if self.tail is None:
            self.tail = st

    cdef void unlink(self, Statement st) noexcept:
        if st.prev is not None:
            st.prev.next = st.next
        else:
            self.head = st.next
        if st.next is not None:
            st.next.prev = st.prev
        else:
            self.tail = st.prev
        st.prev = None
        st.next = None

    cdef void trim(self) noexcept:
        cdef Statement victim
        while len(self.entries) > self.capacity and self.tail is not None:
            victim = self.tail
            self.unlink(victim)
            del self.entries[victim.key]
            victim.finalize()
            self.evictions += 1

    cdef void finalize_all(self) noexcept:
        for st in self.entries.values():
            (<Statement>st).finalize()
            (<Statement>st).prev = None
            (<Statement>st).next = None
        self.entries.clear()
        self.head = None
        self.tail = None

    def stats(self):
        return {
            "size": len(self.entries),
            "capacity": self.capacity,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }


cdef inline bint word_is(const char *word, int n, const char *lowercase) noexcept nogil:
    cdef int i = 0
    while i < n and lowercase[i] != 0 and (word[i] | 0x20) == lowercase[i]:
        i += 1
    return i == n and lowercase[n] == 0


cdef bint is_dml(sqlite3_stmt *handle) noexcept nogil:
    # sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so after DDL, PRAGMA
    # and the like it would report a stale number: only DML gets a rowcount. The first keyword
    # decides; a data-changing statement that starts with WITH can only be DML.
    cdef const char *p = sqlite3_sql(handle)
    cdef int n = 0
    if p == NULL:
        return False
    while True:
        if p[0] == b' ' or p[0] == b'\t' or p[0] == b'\n' or p[0] == b'\r' or p[0] == b'\f':
            p += 1
        elif p[0] == b'-' and p[1] == b'-':
            while p[0] != 0 and p[0] != b'\n':
                p += 1
        elif p[0] == b'/' and p[1] == b'*':
            p += 2
            while p[0] != 0 and not (p[0] == b'*' and p[1] == b'/'):
                p += 1
            if p[0] != 0:
                p += 2
        else:
            break
    while (b'a' <= p[n] <= b'z') or (b'A' <= p[n] <= b'Z'):
        n += 1
    return (word_is(p, n, b"insert") or word_is(p, n, b"update") or word_is(p, n, b"delete")
            or word_is(p, n, b"replace") or word_is(p, n, b"with"))
