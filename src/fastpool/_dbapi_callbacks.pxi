# The sqlite3 module's user callbacks (fastpool.dbapi.Connection): SQL functions, aggregates,
# window functions, collations, the authorizer, the progress handler and the trace callback.
# SQLite calls these mid-step; an exception inside one becomes the sqlite3 module's error
# message, and its traceback goes to sys.unraisablehook when enable_callback_tracebacks(True).
# Also the argument rules Python 3.13 deprecates here (keywords, positional options).

cdef extern from "Python.h":
    void PyErr_Restore(PyObject *type, PyObject *value, PyObject *tb)
    void PyErr_WriteUnraisable(object obj)


# Python 3.13 deprecates passing these methods' parameters by keyword.
cdef bint DEPRECATE_KEYWORDS = sys.version_info >= (3, 13)


cdef str name_list(tuple names):
    quoted = [f"'{name}'" for name in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:len(quoted) - 1]) + " and " + quoted[len(quoted) - 1]


cdef tuple positional_args(str method, tuple names, tuple args, dict kwargs):
    # The values of a method's positional parameters given by position or (deprecated from
    # 3.13, as in the sqlite3 module) by keyword.
    if len(args) > len(names):
        raise TypeError(f"{method}() takes at most {len(names)} positional arguments "
                        f"({len(args)} given)")
    values = list(args)
    by_keyword = False
    for name in names[len(args):]:
        if name not in kwargs:
            raise TypeError(f"{method}() missing required argument '{name}'")
        values.append(kwargs.pop(name))
        by_keyword = True
    if kwargs:
        raise TypeError(f"{method}() got an unexpected keyword argument '{next(iter(kwargs))}'")
    if by_keyword and DEPRECATE_KEYWORDS:
        plural = len(names) > 1
        warnings.warn(
            f"Passing keyword argument{'s' if plural else ''} {name_list(names)} to "
            f"_sqlite3.Connection.{method}() is deprecated. Parameter{'s' if plural else ''} "
            f"{name_list(names)} will become positional-only in Python 3.15.",
            DeprecationWarning, stacklevel=1)
    return tuple(values)


cdef tuple POSITIONAL_OPTIONS = ("timeout", "detect_types", "isolation_level",
                                 "check_same_thread", "factory", "cached_statements", "uri")


cdef dict positional_options(tuple args):
    # Connection()'s options after the database given by position: {name: value}.
    if len(args) > len(POSITIONAL_OPTIONS):
        raise TypeError(f"Connection() takes at most {len(POSITIONAL_OPTIONS) + 1} "
                        f"positional arguments ({len(args) + 1} given)")
    if DEPRECATE_KEYWORDS:
        warnings.warn(
            f"Passing more than 1 positional argument to _sqlite3.Connection() is deprecated. "
            f"Parameters {name_list(POSITIONAL_OPTIONS)} will become keyword-only parameters "
            f"in Python 3.15.", DeprecationWarning, stacklevel=1)
    return dict(zip(POSITIONAL_OPTIONS, args))


cdef void report_unraisable(BaseException exc, object where) noexcept:
    # Hand exc to sys.unraisablehook when enable_callback_tracebacks(True), else drop it.
    if not fp_flag_load(CALLBACK_TRACEBACKS):
        return
    cdef object kind = type(exc)
    cdef object tb = exc.__traceback__
    Py_INCREF(kind)
    Py_INCREF(exc)
    if tb is not None:
        Py_INCREF(tb)
    PyErr_Restore(<PyObject *>kind, <PyObject *>exc,
                  <PyObject *>tb if tb is not None else NULL)
    PyErr_WriteUnraisable(where)


cdef void result_error(sqlite3_context *ctx, str message) noexcept:
    cdef bytes text = message.encode("utf-8")
    sqlite3_result_error(ctx, text, <int>len(text))


cdef void callback_failed(sqlite3_context *ctx, BaseException exc, object where,
                          str message) noexcept:
    # A callback raised: OverflowError is "too big" (DataError), MemoryError is SQLite's
    # out-of-memory (MemoryError), anything else the sqlite3 module's message.
    report_unraisable(exc, where)
    if isinstance(exc, OverflowError):
        sqlite3_result_error_toobig(ctx)
    elif isinstance(exc, MemoryError):
        sqlite3_result_error_nomem(ctx)
    else:
        result_error(ctx, message)


cdef void set_callback_result(sqlite3_context *ctx, object value, object where,
                              str failed) noexcept:
    # A Python result to SQLite; an unsupported one is the callback's error.
    try:
        if not (value is None or isinstance(value, (int, float, str, bytes, bytearray,
                                                    memoryview))):
            value = adapt(value, PrepareProtocol, value)
        set_result(ctx, value)
    except BaseException as exc:
        callback_failed(ctx, exc, where, failed)


cdef list callback_args(int argc, sqlite3_value **argv):
    cdef int i
    return [value_to_python(argv[i]) for i in range(argc)]


# -- functions --------------------------------------------------------------------------------

cdef void dbapi_call_function(sqlite3_context *ctx, int argc,
                              sqlite3_value **argv) noexcept with gil:
    cdef object func = <object>sqlite3_user_data(ctx)
    try:
        result = func(*callback_args(argc, argv))
    except BaseException as exc:
        callback_failed(ctx, exc, func, "user-defined function raised exception")
        return
    set_callback_result(ctx, result, func, "user-defined function raised exception")


cdef void release_callable(void *arg) noexcept with gil:
    Py_DECREF(<object>arg)


cdef int add_function(DBAPIConnection conn, object name, int nargs, object func,
                      bint deterministic) except -1:
    conn.check()
    cdef bytes encoded = str(name).encode("utf-8")
    cdef int flags = SQLITE_UTF8 | (SQLITE_DETERMINISTIC if deterministic else 0)
    cdef int rc
    if func is None:
        rc = sqlite3_create_function_v2(conn.core.db, encoded, nargs, flags, NULL,
                                        NULL, NULL, NULL, NULL)
    else:
        if not callable(func):
            raise TypeError("parameter must be callable")
        Py_INCREF(func)
        rc = sqlite3_create_function_v2(conn.core.db, encoded, nargs, flags, <void *>func,
                                        dbapi_call_function, NULL, NULL, release_callable)
    if rc != SQLITE_OK:
        raise OperationalError("Error creating function")
    return 0


# -- aggregates and window functions ----------------------------------------------------------

cdef PyObject **aggregate_slot(sqlite3_context *ctx, bint create) noexcept:
    return <PyObject **>sqlite3_aggregate_context(ctx, sizeof(PyObject *) if create else 0)


cdef void aggregate_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) noexcept with gil:
    cdef object cls = <object>sqlite3_user_data(ctx)
    cdef PyObject **slot = aggregate_slot(ctx, True)
    if slot == NULL:
        sqlite3_result_error_nomem(ctx)
        return
    if slot[0] == NULL:
        try:
            instance = cls()
        except BaseException as exc:
            callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                            "user-defined aggregate's '__init__' method raised error")
            return
        Py_INCREF(instance)
        slot[0] = <PyObject *>instance
    instance = <object>slot[0]
    try:
        step = instance.step
    except AttributeError as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'step' method not defined")
        return
    try:
        step(*callback_args(argc, argv))
    except BaseException as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'step' method raised error")


cdef void aggregate_inverse(sqlite3_context *ctx, int argc,
                            sqlite3_value **argv) noexcept with gil:
    cdef PyObject **slot = aggregate_slot(ctx, True)
    if slot == NULL or slot[0] == NULL:
        return
    try:
        inverse = (<object>slot[0]).inverse
    except AttributeError as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'inverse' method not defined")
        return
    try:
        inverse(*callback_args(argc, argv))
    except BaseException as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'inverse' method raised error")


cdef void aggregate_value(sqlite3_context *ctx) noexcept with gil:
    cdef PyObject **slot = aggregate_slot(ctx, True)
    if slot == NULL or slot[0] == NULL:
        return
    try:
        value = (<object>slot[0]).value
    except AttributeError as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'value' method not defined")
        return
    try:
        result = value()
    except BaseException as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'value' method raised error")
        return
    set_callback_result(ctx, result, None, "user-defined aggregate's 'value' method raised error")


cdef void aggregate_final(sqlite3_context *ctx) noexcept with gil:
    cdef PyObject **slot = aggregate_slot(ctx, False)
    if slot == NULL or slot[0] == NULL:
        return      # no row reached step(): the result is NULL
    instance = <object>slot[0]
    Py_DECREF(instance)     # the reference the slot held; `instance` keeps one until we return
    slot[0] = NULL
    try:
        finalize = instance.finalize
    except AttributeError as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'finalize' method not defined")
        return
    try:
        result = finalize()
    except BaseException as exc:
        callback_failed(ctx, exc, <object>sqlite3_user_data(ctx),
                        "user-defined aggregate's 'finalize' method raised error")
        return
    set_callback_result(ctx, result, None,
                        "user-defined aggregate's 'finalize' method raised error")


cdef int add_aggregate(DBAPIConnection conn, object name, int nargs, object cls,
                       bint window) except -1:
    conn.check()
    cdef bytes encoded = str(name).encode("utf-8")
    cdef int rc
    if cls is None:
        if window:
            rc = sqlite3_create_window_function(conn.core.db, encoded, nargs, SQLITE_UTF8, NULL,
                                                NULL, NULL, NULL, NULL, NULL)
        else:
            rc = sqlite3_create_function_v2(conn.core.db, encoded, nargs, SQLITE_UTF8, NULL,
                                            NULL, NULL, NULL, NULL)
    else:
        if not callable(cls):
            raise TypeError("parameter must be callable")
        Py_INCREF(cls)
        if window:
            rc = sqlite3_create_window_function(conn.core.db, encoded, nargs, SQLITE_UTF8,
                                                <void *>cls, aggregate_step, aggregate_final,
                                                aggregate_value, aggregate_inverse,
                                                release_callable)
        else:
            rc = sqlite3_create_function_v2(conn.core.db, encoded, nargs, SQLITE_UTF8,
                                            <void *>cls, NULL, aggregate_step, aggregate_final,
                                            release_callable)
    if rc != SQLITE_OK:
        if window:
            raise ProgrammingError(sqlite3_errstr(rc).decode("utf-8", "replace"))
        raise OperationalError("Error creating aggregate")
    return 0


# -- collations -------------------------------------------------------------------------------

cdef int collation_compare(void *arg, int n1, const void *s1, int n2,
                           const void *s2) noexcept with gil:
    cdef object func = <object>arg
    try:
        result = func(PyUnicode_DecodeUTF8(<const char *>s1, n1, "replace"),
                      PyUnicode_DecodeUTF8(<const char *>s2, n2, "replace"))
        if not isinstance(result, int):
            raise TypeError("collation must return an int")
        return 1 if result > 0 else (-1 if result < 0 else 0)
    except BaseException as exc:
        report_unraisable(exc, func)
        return 0


cdef void release_collation(void *arg) noexcept with gil:
    Py_DECREF(<object>arg)


cdef int add_collation(DBAPIConnection conn, object name, object func) except -1:
    conn.check()
    cdef bytes encoded = str.encode(name, "utf-8")
    cdef int rc
    if func is None:
        rc = sqlite3_create_collation_v2(conn.core.db, encoded, SQLITE_UTF8, NULL, NULL, NULL)
    else:
        if not callable(func):
            raise TypeError("parameter must be callable")
        Py_INCREF(func)
        rc = sqlite3_create_collation_v2(conn.core.db, encoded, SQLITE_UTF8, <void *>func,
                                         collation_compare, release_collation)
    if rc != SQLITE_OK:
        conn.core.raise_error(rc)
    return 0


# -- authorizer, progress handler, trace callback ---------------------------------------------

cdef int authorizer_callback(void *arg, int action, const char *a1, const char *a2,
                             const char *dbname, const char *source) noexcept with gil:
    cdef DBAPIConnection conn = <DBAPIConnection>arg
    func = conn.authorizer
    try:
        result = func(action, None if a1 == NULL else a1.decode("utf-8", "replace"),
                      None if a2 == NULL else a2.decode("utf-8", "replace"),
                      None if dbname == NULL else dbname.decode("utf-8", "replace"),
                      None if source == NULL else source.decode("utf-8", "replace"))
        if not isinstance(result, int):
            raise TypeError("authorizer must return an int")
        return <int>result
    except BaseException as exc:
        report_unraisable(exc, func)
        return SQLITE_DENY


cdef int progress_callback(void *arg) noexcept with gil:
    cdef DBAPIConnection conn = <DBAPIConnection>arg
    func = conn.progress
    try:
        return 1 if func() else 0
    except BaseException as exc:
        report_unraisable(exc, func)
        return -1


cdef int trace_callback(unsigned int kind, void *arg, void *p, void *x) noexcept with gil:
    cdef DBAPIConnection conn = <DBAPIConnection>arg
    cdef sqlite3_stmt *stmt = <sqlite3_stmt *>p
    cdef char *expanded
    func = conn.trace
    if kind != SQLITE_TRACE_STMT or func is None:
        return 0
    try:
        expanded = sqlite3_expanded_sql(stmt)
        if expanded != NULL:
            try:
                text = (<bytes>expanded).decode("utf-8", "replace")
            finally:
                sqlite3_free(expanded)
        else:
            # Longer than SQLITE_LIMIT_LENGTH (or out of memory): the SQL as written.
            report_unraisable(
                DataError("Expanded SQL string exceeds the maximum string length"), None)
            text = (<bytes>sqlite3_sql(stmt)).decode("utf-8", "replace")
        func(text)
    except BaseException as exc:
        report_unraisable(exc, func)
    return 0


cdef int set_authorizer(DBAPIConnection conn, object func) except -1:
    conn.check()
    cdef int rc
    if func is None:
        rc = sqlite3_set_authorizer(conn.core.db, NULL, NULL)
    else:
        if not callable(func):
            raise TypeError("parameter must be callable")
        rc = sqlite3_set_authorizer(conn.core.db, authorizer_callback, <void *>conn)
    if rc != SQLITE_OK:
        raise OperationalError("Error setting authorizer callback")
    conn.authorizer = func
    return 0


cdef int set_progress(DBAPIConnection conn, object func, int n) except -1:
    conn.check()
    if func is None or n <= 0:
        # Back to the core's own handler, which hands the GIL off in long steps.
        sqlite3_progress_handler(conn.core.db, PROGRESS_OPS, on_progress, &conn.core.hooks)
        conn.progress = None
        return 0
    if not callable(func):
        raise TypeError("parameter must be callable")
    conn.progress = func
    sqlite3_progress_handler(conn.core.db, n, progress_callback, <void *>conn)
    return 0


cdef int set_trace(DBAPIConnection conn, object func) except -1:
    conn.check()
    cdef int rc
    if func is None:
        rc = sqlite3_trace_v2(conn.core.db, 0, NULL, NULL)
    else:
        if not callable(func):
            raise TypeError("parameter must be callable")
        rc = sqlite3_trace_v2(conn.core.db, SQLITE_TRACE_STMT, trace_callback, <void *>conn)
    if rc != SQLITE_OK:
        conn.core.raise_error(rc)
    conn.trace = func
    return 0
