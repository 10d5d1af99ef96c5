# SQL functions written in Python (Connection.create_function): the C callbacks SQLite
# calls, and the conversion of their arguments and results.

cdef struct FunctionSlot:
    PyObject *func      # owned reference, dropped by destroy_function
    PyObject *conn      # borrowed: the function is unregistered before the connection dies


cdef object value_to_python(sqlite3_value *v):
    cdef int kind = sqlite3_value_type(v)
    cdef const char *p
    if kind == SQLITE_INTEGER:
        return sqlite3_value_int64(v)
    if kind == SQLITE_FLOAT:
        return sqlite3_value_double(v)
    if kind == SQLITE_NULL:
        return None
    if kind == SQLITE_TEXT:
        p = <const char *>sqlite3_value_text(v)
        return PyUnicode_DecodeUTF8(p, sqlite3_value_bytes(v), "replace") if p != NULL else ""
    p = <const char *>sqlite3_value_blob(v)
    return PyBytes_FromStringAndSize(p, sqlite3_value_bytes(v)) if p != NULL else b""


cdef int set_result(sqlite3_context *ctx, object result) except -1:
    cdef Py_ssize_t size
    cdef const char *text
    cdef Py_buffer view
    if result is None:
        sqlite3_result_null(ctx)
    elif isinstance(result, int):
        sqlite3_result_int64(ctx, result)
    elif isinstance(result, float):
        sqlite3_result_double(ctx, result)
    elif isinstance(result, str):
        text = PyUnicode_AsUTF8AndSize(result, &size)
        sqlite3_result_text64(ctx, text, <sqlite3_uint64>size, SQLITE_TRANSIENT, SQLITE_UTF8)
    elif isinstance(result, (bytes, bytearray, memoryview)):
        PyObject_GetBuffer(result, &view, PyBUF_SIMPLE)
        sqlite3_result_blob64(ctx, view.buf, <sqlite3_uint64>view.len, SQLITE_TRANSIENT)
        PyBuffer_Release(&view)
    else:
        raise TypeError(f"a user function returned unsupported type {type(result).__name__}")
    return 0


cdef void call_function(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept with gil:
    cdef FunctionSlot *slot = <FunctionSlot *>sqlite3_user_data(ctx)
    cdef Connection conn = <Connection>slot.conn
    cdef int i
    try:
        args = [value_to_python(argv[i]) for i in range(argc)]
        set_result(ctx, (<object>slot.func)(*args))
    except BaseException as exc:
        conn.pending_exc = exc
        message = f"user function raised {type(exc).__name__}: {exc}".encode("utf-8", "replace")
        sqlite3_result_error(ctx, message, <int>len(message))


cdef void destroy_function(void *arg) noexcept with gil:
    cdef FunctionSlot *slot = <FunctionSlot *>arg
    Py_DECREF(<object>slot.func)
    free(slot)


cdef int register_function(Connection conn, str name, int nargs, object func,
                           bint deterministic) except -1:
    if not callable(func):
        raise TypeError(f"func must be callable, not {type(func).__name__}")
    if not -1 <= nargs <= 127:
        raise ValueError(f"nargs must be between -1 and 127, not {nargs}")
    cdef bytes encoded = name.encode("utf-8")
    if not encoded or len(encoded) > 255 or b"\x00" in encoded:
        raise ValueError("function name must be 1-255 bytes of UTF-8 without NUL")
    # Claimed like a call: another thread's step may be inside SQLite on this handle (opened
    # NOMUTEX), or the snapshot sweep resetting a pool reader's kept snapshot (waited out).
    if fp_claim_call(&conn.in_call) != FP_CLAIM_FREE:
        raise InterfaceError(
            "cannot register a function while a call is running on this connection")
    cdef FunctionSlot *slot
    cdef int rc
    cdef int flags = SQLITE_UTF8 | (SQLITE_DETERMINISTIC if deterministic else 0)
    try:
        if conn.db == NULL:
            raise InterfaceError("the connection is closed")
        slot = <FunctionSlot *>malloc(sizeof(FunctionSlot))
        if slot == NULL:
            raise MemoryError()
        slot.func = <PyObject *>func
        slot.conn = <PyObject *>conn
        Py_INCREF(func)
        # On failure SQLite calls destroy_function itself, which frees the slot.
        rc = sqlite3_create_function_v2(conn.db, encoded, nargs, flags, slot,
                                        call_function, NULL, NULL, destroy_function)
        if rc != SQLITE_OK:
            conn.raise_error(rc)
    finally:
        fp_flag_store(&conn.in_call, FP_CLAIM_FREE)
    return 0
