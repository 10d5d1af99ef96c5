# The sqlite3 module's extras on fastpool.dbapi.Connection: online backup, incremental BLOB
# I/O (Blob), serialize/deserialize, run-time limits, extension loading, complete_statement.

import inspect
import operator
import time as _time


cdef object PREPARED_TOKEN = object()
cdef object CALL_SIGNATURE = inspect.Signature(
    [inspect.Parameter("sql", inspect.Parameter.POSITIONAL_ONLY)])


class _CallSignature:
    """Connection.__signature__: on a connection, calling it (one positional argument, the
    SQL); on the class, None, so that inspect.signature reads the constructor's own."""

    def __get__(self, obj, objtype=None):
        return None if obj is None else CALL_SIGNATURE


# The boolean sqlite3_db_config() options getconfig/setconfig accept.
cdef frozenset DBCONFIG_FLAGS = frozenset(range(1002, 1018))

# fastpool.dbapi's iterdump, set by set_dump_function once, while fastpool.dbapi is imported
# (under the import lock, before any caller can reach iterdump); read-only after.
cdef object DUMP_FUNCTION = None


def set_dump_function(func):
    """Install the iterdump() implementation (fastpool.dbapi does, on import)."""
    global DUMP_FUNCTION
    DUMP_FUNCTION = func


def complete_statement(statement):
    """True if ``statement`` holds one or more complete SQL statements (ends with ``;``)."""
    if not isinstance(statement, str):
        raise TypeError(f"complete_statement() argument 'statement' must be str, not "
                        f"{type(statement).__name__}")
    return bool(sqlite3_complete(statement.encode("utf-8")))


cdef int run_backup(DBAPIConnection source, object target, int pages, object progress,
                    str name, double sleep) except -1:
    source.check()
    if not isinstance(target, DBAPIConnection):
        raise TypeError(f"backup() argument 1 must be sqlite3.Connection, not "
                        f"{type(target).__name__}")
    if target is source:
        raise ValueError("target cannot be the same connection instance")
    cdef DBAPIConnection dest = <DBAPIConnection>target
    dest.check()
    if progress is not None and not callable(progress):
        raise TypeError("progress argument must be a callable")
    if not sqlite3_get_autocommit(dest.core.db):
        raise OperationalError("target is in transaction")
    if pages == 0:
        pages = -1
    cdef bytes db_name = name.encode("utf-8")
    cdef sqlite3_backup *b = sqlite3_backup_init(dest.core.db, b"main", source.core.db, db_name)
    cdef int rc
    if b == NULL:
        dest.core.raise_error(sqlite3_extended_errcode(dest.core.db))
    try:
        while True:
            with nogil:
                rc = sqlite3_backup_step(b, pages)
            if progress is not None:
                progress(rc, sqlite3_backup_remaining(b), sqlite3_backup_pagecount(b))
            if rc == SQLITE_BUSY or rc == SQLITE_LOCKED:
                _time.sleep(sleep)
            elif rc != SQLITE_OK:
                break
    except BaseException:
        sqlite3_backup_finish(b)
        raise
    rc = sqlite3_backup_finish(b)
    if rc != SQLITE_OK:
        dest.core.raise_error(rc)
    return 0


cdef class Blob:
    """Blob(*args)
--

    An open BLOB (``Connection.blobopen()``; made directly, it raises TypeError): file-like
    ``read``/``write``/``seek``/``tell``, indexing and slicing; its size is fixed.
    """

    cdef sqlite3_blob *blob
    cdef DBAPIConnection conn
    cdef int offset
    cdef object __weakref__

    def __cinit__(self, *args):
        if len(args) != 1 or args[0] is not PREPARED_TOKEN:
            raise TypeError("cannot create 'fastpool._core.Blob' instances")

    def __dealloc__(self):
        if self.blob != NULL:
            sqlite3_blob_close(self.blob)
            self.blob = NULL

    cdef int check(self) except -1:
        self.conn.check()
        if self.blob == NULL:
            raise ProgrammingError("Cannot operate on a closed blob.")
        return 0

    cdef int size(self) except -1:
        return sqlite3_blob_bytes(self.blob)

    cdef bytes read_at(self, int offset, int n):
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
        cdef int rc = sqlite3_blob_read(self.blob, PyBytes_AS_STRING(out), n, offset)
        if rc != SQLITE_OK:
            self.conn.core.raise_error(rc)
        return out

    cdef int write_at(self, int offset, object data) except -1:
        cdef Py_buffer view
        cdef int rc
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if view.len > self.size() - offset:
                raise ValueError("data longer than blob length")
            rc = sqlite3_blob_write(self.blob, view.buf, <int>view.len, offset)
            if rc != SQLITE_OK:
                self.conn.core.raise_error(rc)
        finally:
            PyBuffer_Release(&view)
        return 0

    def close(self):
        """Close the blob; later calls raise ProgrammingError. Idempotent."""
        self.conn.check()
        self.conn.blobs.discard(self)
        if self.blob != NULL:
            # The handle is freed whatever the result, which repeats the error of an earlier
            # failed read or write on the blob: that one was raised already.
            sqlite3_blob_close(self.blob)
            self.blob = NULL

    def read(self, int length=-1, /):
        """Read ``length`` bytes (all the rest when negative) from the current offset."""
        self.check()
        cdef int left = self.size() - self.offset
        if length < 0 or length > left:
            length = left
        data = self.read_at(self.offset, length)
        self.offset += length
        return data

    def write(self, data, /):
        """Write ``data`` at the current offset (the blob cannot grow)."""
        self.check()
        self.write_at(self.offset, data)
        self.offset += len(memoryview(data).cast("B"))

    def seek(self, int offset, int origin=0, /):
        """Move the offset: ``origin`` 0 (start), 1 (current) or 2 (end)."""
        self.check()
        cdef long long base
        if origin == 0:
            base = 0
        elif origin == 1:
            base = self.offset
        elif origin == 2:
            base = self.size()
        else:
            raise ValueError("'origin' should be os.SEEK_SET, os.SEEK_CUR, or os.SEEK_END")
        if base + offset > INT_MAX:
            raise OverflowError("seek offset results in overflow")
        if base + offset < 0 or base + offset > self.size():
            raise ValueError("offset out of blob range")
        self.offset = <int>(base + offset)

    def tell(self):
        """The current offset."""
        self.check()
        return self.offset

    def __len__(self):
        self.check()
        return self.size()

    def __enter__(self):
        self.check()
        return self

    def __exit__(self, *exc_info):
        self.check()
        self.close()
        return False

    def __contains__(self, item):
        raise TypeError("'Blob' object is not iterable")

    def __iter__(self):
        raise TypeError("'Blob' object is not iterable")

    cdef Py_ssize_t index_of(self, object key, Py_ssize_t n) except -1:
        try:
            i = operator.index(key)
        except TypeError:
            raise TypeError("Blob indices must be integers") from None
        if i < 0:
            i += n
        if i >= (1 << 62) or i < -(1 << 62):
            raise IndexError("cannot fit 'int' into an index-sized integer")
        if i < 0 or i >= n:
            raise IndexError("Blob index out of range")
        return i

    def __getitem__(self, key):
        self.check()
        cdef Py_ssize_t n = self.size()
        if not isinstance(key, slice):
            return self.read_at(self.index_of(key, n), 1)[0]
        else:
            start, stop, step = key.indices(n)
            if step == 1:
                return self.read_at(start, max(0, stop - start))
            whole = self.read_at(0, n)
            return whole[start:stop:step]

    def __setitem__(self, key, value):
        self.check()
        cdef Py_ssize_t n = self.size()
        if not isinstance(key, slice):
            i = self.index_of(key, n)
            byte = operator.index(value)
            if not 0 <= byte <= 255:
                raise ValueError("byte must be in range(0, 256)")
            self.write_at(i, bytes([byte]))
            return
        else:
            start, stop, step = key.indices(n)
            data = contiguous_bytes(value)
            count = len(range(start, stop, step))
            if len(data) != count:
                raise IndexError("Blob slice assignment is wrong size")
            if count == 0:
                return
            if step == 1:
                self.write_at(start, data)
            else:
                whole = bytearray(self.read_at(0, n))
                whole.__setitem__(slice(start, stop, step), bytearray(data))
                self.write_at(0, bytes(whole))

    def __delitem__(self, key):
        self.check()
        raise TypeError("Blob doesn't support item deletion")


cdef bytes contiguous_bytes(object value):
    # A C-contiguous buffer's bytes (BufferError for any other, as memoryview slices).
    cdef Py_buffer view
    PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
    try:
        return PyBytes_FromStringAndSize(<char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef Blob open_blob(DBAPIConnection conn, str table, str column, long long row,
                    bint readonly, str name):
    conn.check()
    cdef sqlite3_blob *handle = NULL
    cdef bytes c_table = table.encode("utf-8")
    cdef bytes c_column = column.encode("utf-8")
    cdef bytes c_name = name.encode("utf-8")
    cdef int rc = sqlite3_blob_open(conn.core.db, c_name, c_table, c_column, row,
                                    0 if readonly else 1, &handle)
    if rc != SQLITE_OK:
        sqlite3_blob_close(handle)
        conn.core.raise_error(rc)
    cdef Blob blob = Blob.__new__(Blob, PREPARED_TOKEN)
    blob.blob = handle
    blob.conn = conn
    conn.blobs.add(blob)
    return blob


cdef bytes serialize_db(DBAPIConnection conn, str name):
    conn.check()
    cdef bytes c_name = name.encode("utf-8")
    cdef sqlite3_int64 size = 0
    cdef unsigned char *data = sqlite3_serialize(conn.core.db, c_name, &size, 0)
    if data == NULL:
        raise OperationalError(f"unable to serialize '{name}'")
    try:
        return PyBytes_FromStringAndSize(<char *>data, size)
    finally:
        sqlite3_free(data)


cdef int deserialize_db(DBAPIConnection conn, object data, str name) except -1:
    conn.check()
    cdef Py_buffer view
    cdef bytes c_name = name.encode("utf-8")
    cdef unsigned char *buf
    cdef int rc
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        buf = <unsigned char *>sqlite3_malloc64(<sqlite3_uint64>view.len if view.len else 1)
        if buf == NULL:
            raise MemoryError()
        memcpy(buf, view.buf, view.len)
        rc = sqlite3_deserialize(conn.core.db, c_name, buf, view.len, view.len,
                                 SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE)
    finally:
        PyBuffer_Release(&view)
    if rc != SQLITE_OK:
        conn.core.raise_error(rc)
    return 0


cdef int limit_of(DBAPIConnection conn, int category, int value) except? -2:
    conn.check()
    cdef int old = sqlite3_limit(conn.core.db, category, value)
    if old < 0:
        raise ProgrammingError("'category' is out of bounds")
    return old


cdef int load_extension_into(DBAPIConnection conn, str path, object entrypoint) except -1:
    conn.check()
    return load_extension_c(conn.core.db, path, entrypoint)


cdef class PreparedSQL:
    """What calling a Connection returns: one prepared statement (not made directly)."""

    cdef Statement st

    def __cinit__(self, *args):
        if len(args) != 2 or args[0] is not PREPARED_TOKEN:
            raise TypeError("cannot create 'fastpool._core.PreparedSQL' instances")
        self.st = <Statement?>args[1]

    def __dealloc__(self):
        if self.st is not None:
            self.st.finalize()


cdef int db_config(DBAPIConnection conn, object op, int value) except -1:
    cdef int state = 0, rc
    conn.check()
    if not isinstance(op, int):
        raise TypeError(f"op must be an int, not {type(op).__name__}")
    if op not in DBCONFIG_FLAGS:
        raise ValueError(f"unknown config 'op': {op}")
    rc = sqlite3_db_config(conn.core.db, <int>op, value, &state)
    if rc != SQLITE_OK:
        conn.core.raise_error(rc)
    return state
