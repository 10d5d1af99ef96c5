# Prepared statements and the per-connection LRU cache of them: preparing one on a connection
# (prepare_statement), lending it out of the cache and taking it back (StatementCache.lend,
# recycle), and its column names.
#
# A cached statement stays in `entries` while it is checked out (in_use), but leaves the LRU
# list, so eviction only ever finalizes idle statements. A second user of the same SQL while
# the first still holds it (two live cursors) gets a fresh, uncached statement.

import re

cdef enum:
    MAX_CACHED_SQL = 16384      # longer SQL is one-off (scripts, generated bulk inserts)


# Statements before which PEP 249 mode (autocommit=False) opens no transaction: transaction
# control itself, and statements SQLite refuses to run inside one.
cdef object FIRST_KEYWORD = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*([A-Za-z]*)", re.S)
cdef frozenset NO_IMPLICIT_BEGIN = frozenset(
    ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "VACUUM", "PRAGMA",
     "ATTACH", "DETACH"])


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
        self.control = {}
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
            fp_counter_add(&self.evictions, 1)

    cdef void finalize_all(self) noexcept:
        for st in self.entries.values():
            (<Statement>st).finalize()
            (<Statement>st).prev = None
            (<Statement>st).next = None
        self.entries.clear()
        for st in self.control.values():
            (<Statement>st).finalize()
        self.control.clear()
        self.head = None
        self.tail = None

    cdef Statement lend(self, Connection conn, str sql):
        # Check out the statement for sql: the cached one when it is idle (a hit), else one
        # prepared on conn, kept in the cache when it may be.
        cdef PyObject *found = PyDict_GetItemWithError(self.entries, sql)
        cdef Statement st
        if found != NULL:
            st = <Statement>found
            if not st.in_use:
                fp_counter_add(&self.hits, 1)
                self.unlink(st)
                st.in_use = True
                return st
        fp_counter_add(&self.misses, 1)
        cacheable = (found == NULL and self.capacity > 0 and len(sql) <= MAX_CACHED_SQL)
        st = prepare_statement(conn, sql, cacheable)
        st.in_use = True
        if cacheable:
            st.key = sql
            self.entries[sql] = st
            self.trim()
        return st

    cdef void recycle(self, Statement st) noexcept:
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
            self.link_front(st)
            if len(self.entries) > self.capacity:   # rarely: statements were in use
                self.trim()
        else:
            st.finalize()

    cdef void forget(self) noexcept:
        # After fork (Connection.abandon): the handles belong to the parent, so they are
        # dropped, not finalized.
        for st in self.entries.values():
            (<Statement>st).handle = NULL
        self.entries.clear()
        for st in self.control.values():
            (<Statement>st).handle = NULL
        self.control.clear()
        self.head = None
        self.tail = None

    cdef Statement lend_control(self, Connection conn, str sql):
        # A transaction-control statement (BEGIN IMMEDIATE, COMMIT, ROLLBACK), prepared once
        # per connection: a prepare per transaction cost as much as the INSERT it wrapped. Kept
        # apart from the LRU and its counters, so users' statements are never evicted for these.
        # A connection runs one call at a time, so the one copy is never lent twice at once;
        # the caller resets it (sqlite3_reset) when done.
        cdef Statement st = self.control.get(sql)
        if st is None:
            st = prepare_statement(conn, sql, True)
            self.control[sql] = st
        return st

    def stats(self):
        return {
            "size": len(self.entries),
            "capacity": self.capacity,
            "hits": fp_counter_get(&self.hits),
            "misses": fp_counter_get(&self.misses),
            "evictions": fp_counter_get(&self.evictions),
        }


cdef Statement prepare_statement(Connection conn, str sql, bint persistent):
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
    arm(&conn.hooks)
    rc = sqlite3_prepare_v3(conn.db, text, <int>size + 1,
                            SQLITE_PREPARE_PERSISTENT if persistent else 0, &handle, &tail)
    disarm(&conn.hooks)
    if rc != SQLITE_OK:
        conn.raise_error(rc)
    if handle == NULL:
        raise ProgrammingError("the SQL holds no statement (it is empty or only a comment)")
    if tail != NULL and skip_blank(tail)[0] != 0:
        rc = sqlite3_prepare_v3(conn.db, tail, -1, 0, &extra, NULL)
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


cdef tuple statement_columns(Statement st):
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


cdef inline bint word_is(const char *word, int n, const char *lowercase) noexcept nogil:
    cdef int i = 0
    while i < n and lowercase[i] != 0 and (word[i] | 0x20) == lowercase[i]:
        i += 1
    return i == n and lowercase[n] == 0


cdef const char *skip_blank(const char *p) noexcept nogil:
    # Past whitespace and comments; a comment left open runs to the end of the text.
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
            return p


cdef bint is_dml(sqlite3_stmt *handle) noexcept nogil:
    # sqlite3_changes() keeps the count of the last INSERT/UPDATE/DELETE, so after DDL, PRAGMA
    # and the like it would report a stale number: only DML gets a rowcount. The first keyword
    # decides; a data-changing statement that starts with WITH can only be DML.
    cdef const char *p = sqlite3_sql(handle)
    cdef int n = 0
    if p == NULL:
        return False
    p = skip_blank(p)
    while (b'a' <= p[n] <= b'z') or (b'A' <= p[n] <= b'Z'):
        n += 1
    return (word_is(p, n, b"insert") or word_is(p, n, b"update") or word_is(p, n, b"delete")
            or word_is(p, n, b"replace") or word_is(p, n, b"with"))
