# Python values <-> SQLite values. Text and blobs are bound SQLITE_TRANSIENT (SQLite copies
# them): the GIL may be dropped mid-step, and another thread could then free a value the
# caller passed in a mutable container, so SQLite must never point into Python objects.

from collections.abc import Mapping

cdef enum:
    LARGE_BINDING = 4096        # bytes; smaller copies may stay bound until the next call


cdef str param_label(int index, tuple names):
    if names is not None:
        return f":{names[index - 1]}"
    return f"{index}"


cdef int bind_value(Connection conn, Statement st, int i, object value) except -1:
    cdef sqlite3_stmt *s = st.handle
    cdef int rc, overflow = 0
    cdef long long n
    cdef const char *text
    cdef Py_ssize_t size
    cdef Py_buffer view
    cdef type t = type(value)
    if value is None:
        rc = sqlite3_bind_null(s, i)
    elif t is int or t is bool:
        n = PyLong_AsLongLongAndOverflow(value, &overflow)
        if overflow:
            raise OverflowError(
                f"parameter {param_label(i, st.param_names)}: {value} does not fit in SQLite's "
                f"64-bit INTEGER; store it as TEXT (str(n)) or BLOB instead")
        rc = sqlite3_bind_int64(s, i, n)
    elif t is float:
        rc = sqlite3_bind_double(s, i, PyFloat_AS_DOUBLE(value))
    elif t is str:
        text = utf8_of(value, st, i, &size)
        rc = sqlite3_bind_text64(s, i, text, <sqlite3_uint64>size, SQLITE_TRANSIENT, SQLITE_UTF8)
        st.large_bindings |= size > LARGE_BINDING
    elif t is bytes:
        rc = sqlite3_bind_blob64(s, i, PyBytes_AS_STRING(value),
                                 <sqlite3_uint64>PyBytes_GET_SIZE(value), SQLITE_TRANSIENT)
        st.large_bindings |= PyBytes_GET_SIZE(value) > LARGE_BINDING
    elif isinstance(value, int):        # int subclasses such as IntEnum
        return bind_value(conn, st, i, int(value))
    elif isinstance(value, float):
        rc = sqlite3_bind_double(s, i, <double>value)
    elif isinstance(value, str):
        # The string's own text: str(value) would call __str__, which for a (str, Enum)
        # member gives "Color.RED" instead of the value.
        text = utf8_of(<str>value, st, i, &size)
        rc = sqlite3_bind_text64(s, i, text, <sqlite3_uint64>size, SQLITE_TRANSIENT, SQLITE_UTF8)
        st.large_bindings |= size > LARGE_BINDING
    elif isinstance(value, (bytes, bytearray, memoryview)):
        try:
            PyObject_GetBuffer(value, &view, PyBUF_SIMPLE)
        except BufferError as exc:
            raise BufferError(
                f"parameter {param_label(i, st.param_names)}: cannot bind this "
                f"{t.__name__} ({exc}); pass bytes(value) instead") from None
        try:
            rc = sqlite3_bind_blob64(s, i, view.buf, <sqlite3_uint64>view.len, SQLITE_TRANSIENT)
            st.large_bindings |= view.len > LARGE_BINDING
        finally:
            PyBuffer_Release(&view)
    else:
        raise TypeError(
            f"parameter {param_label(i, st.param_names)}: unsupported type "
            f"{t.__module__}.{t.__qualname__}; bind None, int, float, str, bytes, bytearray, "
            f"memoryview or bool (convert other values yourself, e.g. str(value))")
    if rc != SQLITE_OK:
        if rc == SQLITE_TOOBIG:
            raise DataError(
                f"parameter {param_label(i, st.param_names)} is larger than SQLite's "
                f"length limit ({sqlite3_limit(conn.db, SQLITE_LIMIT_LENGTH, -1)} bytes)")
        conn.raise_error(rc)
    return 0


cdef const char *utf8_of(str value, Statement st, int i, Py_ssize_t *size) except NULL:
    try:
        return PyUnicode_AsUTF8AndSize(value, size)
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"parameter {param_label(i, st.param_names)}: str has a lone surrogate at position "
            f"{exc.start} and is not valid UTF-8 text; fix the string, or store "
            f"value.encode('utf-8', 'surrogatepass') as bytes") from None


cdef object column_value(sqlite3_stmt *s, int i):
    cdef int kind = sqlite3_column_type(s, i)
    cdef const char *p
    cdef int n
    cdef PyObject *text
    if kind == SQLITE_INTEGER:
        return PyLong_FromLongLong(sqlite3_column_int64(s, i))
    if kind == SQLITE_FLOAT:
        return PyFloat_FromDouble(sqlite3_column_double(s, i))
    if kind == SQLITE_NULL:
        return None
    if kind == SQLITE_TEXT:
        p = <const char *>sqlite3_column_text(s, i)
        n = sqlite3_column_bytes(s, i)
        if p == NULL:
            raise MemoryError("SQLite ran out of memory converting a column to text")
        text = decode_utf8(p, n, NULL)
        if text == NULL:
            PyErr_Clear()
            return undecodable_text(s, i, p, n)
        value = <object>text    # a new reference of its own: give decode_utf8's back
        Py_DECREF(value)
        return value
    p = <const char *>sqlite3_column_blob(s, i)
    n = sqlite3_column_bytes(s, i)
    if p == NULL:
        return b""
    return PyBytes_FromStringAndSize(p, n)


cdef object undecodable_text(sqlite3_stmt *s, int i, const char *p, int n):
    # Off the hot path (a try block costs every call): decode again to raise the error.
    try:
        return PyUnicode_DecodeUTF8(p, n, NULL)
    except UnicodeDecodeError:
        name = sqlite3_column_name(s, i)
        raise DataError(
            f"column {i} ({name.decode('utf-8', 'replace') if name != NULL else '?'}) holds "
            f"text that is not valid UTF-8; select CAST(column AS BLOB) to read its bytes"
        ) from None


cdef tuple row_tuple(sqlite3_stmt *s):
    cdef int i, n = sqlite3_data_count(s)
    cdef tuple row = PyTuple_New(n)
    for i in range(n):
        value = column_value(s, i)
        Py_INCREF(value)
        PyTuple_SET_ITEM(row, i, value)
    return row


cdef int bind_params(Connection conn, Statement st, object params) except -1:
    cdef Py_ssize_t i, n
    cdef tuple names = st.param_names
    cdef object seq
    if names is not None:
        if not isinstance(params, Mapping):
            if st.nparams and None in names:
                raise ProgrammingError(
                    "the SQL mixes ? and :name parameters; use one style")
            raise ProgrammingError(
                f"the SQL uses named parameters ({', '.join(':' + x for x in names)}); "
                f"pass a mapping such as a dict, not {type(params).__name__}")
        for i in range(st.nparams):
            name = names[i]
            if name is None:
                raise ProgrammingError("the SQL mixes ? and :name parameters; use one style")
            try:
                value = params[name]
            except KeyError:
                raise ProgrammingError(
                    f"missing value for named parameter :{name}; the SQL needs "
                    f"{', '.join(':' + x for x in names)}") from None
            bind_value(conn, st, i + 1, value)
        return 0
    if type(params) is tuple or type(params) is list:
        seq = params
    elif isinstance(params, (str, bytes, bytearray)) or isinstance(params, Mapping):
        if isinstance(params, Mapping) and st.nparams == 0 and len(params) == 0:
            return 0
        raise ProgrammingError(
            f"the SQL uses {st.nparams} ? parameter(s); pass them as a tuple or list, "
            f"not {type(params).__name__}")
    else:
        try:
            seq = tuple(params)
        except TypeError:
            raise TypeError(
                f"parameters must be a tuple, list or mapping, not {type(params).__name__}"
            ) from None
    n = len(seq)
    if n != st.nparams:
        raise ProgrammingError(
            f"the SQL expects {st.nparams} parameter(s) but {n} were given")
    if type(seq) is tuple:
        for i in range(n):
            bind_value(conn, st, i + 1, <object>PyTuple_GET_ITEM(seq, i))
    else:
        for i in range(n):
            bind_value(conn, st, i + 1, seq[i])
    return 0
