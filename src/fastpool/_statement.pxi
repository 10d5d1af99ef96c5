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
