# The sqlite3 module's value layer (fastpool.dbapi): adapters (Python -> SQLite), converters
# (SQLite -> Python, detect_types), binding a call's parameters through the adapters, and
# building a result row through text_factory and the converters. Nothing here runs when no
# adapter applies and no converter or text_factory is set: plain values bind directly and
# rows come from row_tuple, as on the core's paths.

import sys
import warnings

from cpython.sequence cimport PySequence_Check, PySequence_GetItem

# sqlite3.adapters and sqlite3.converters: fastpool.dbapi re-exports these very dicts. Each
# registration or lookup is one dict operation, which the dict makes atomic itself (its own
# lock on a free-threaded build); nothing here reads a dict twice expecting the same answer.


cdef class ConverterRegistry(dict):
    """``sqlite3.converters``: a dict that counts its changes.

    A statement keeps the converters it found for its columns until the registry changes
    (or its columns do): finding them is string work per column, too slow to redo on every
    execute. Users change the registry with ``register_converter`` or, as the stdlib allows,
    through the dict itself; every mutating method counts the change once it is made.
    """

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        fp_version_bump(CONVERTERS_VERSION)

    def __delitem__(self, key):
        dict.__delitem__(self, key)
        fp_version_bump(CONVERTERS_VERSION)

    def __ior__(self, other):
        dict.update(self, other)
        fp_version_bump(CONVERTERS_VERSION)
        return self

    def clear(self):
        dict.clear(self)
        fp_version_bump(CONVERTERS_VERSION)

    def pop(self, *args):
        try:
            return dict.pop(self, *args)
        finally:
            fp_version_bump(CONVERTERS_VERSION)

    def popitem(self):
        item = dict.popitem(self)
        fp_version_bump(CONVERTERS_VERSION)
        return item

    def setdefault(self, key, default=None, /):
        value = dict.setdefault(self, key, default)
        fp_version_bump(CONVERTERS_VERSION)
        return value

    def update(self, *args, **kwargs):
        dict.update(self, *args, **kwargs)
        fp_version_bump(CONVERTERS_VERSION)

    def __reduce__(self):
        return (dict, (dict(self),))


# Counted after each change, read before a statement looks converters up: a statement whose
# converters were found under an older count finds them again. Any thread may change the
# registry while others execute: a C atomic (csrc/fp_atomic.h, versions).
# (In C, as the flags below are: clang rejects Cython's cast to an _Atomic type.)
cdef extern from *:
    """
    static fp_atomic_u64 fastpool_converters_version = 0;
    """
    fp_atomic_u64 *CONVERTERS_VERSION "(&fastpool_converters_version)"
cdef dict DBAPI_ADAPTERS = {}
# Typed object, not ConverterRegistry: item assignment must go through its __setitem__.
cdef object DBAPI_CONVERTERS = ConverterRegistry()
# Flags any thread may set while others bind: C atomics, read and set with fp_flag_load and
# fp_flag_store. BASE_TYPE_ADAPTED is set before its adapter is stored: a binder that sees the
# flag and not yet the adapter binds the value as is, as it would have a moment earlier.
# They live in C and Cython sees only their addresses: `from fastpool.errors import *` makes
# Cython write a setter for every module-level C variable, which casts to the variable's type,
# and clang rejects a cast to an _Atomic type (gcc accepts it), so a clang build failed.
cdef extern from *:
    """
    static fp_atomic_u32 fastpool_base_type_adapted = 0;
    static fp_atomic_u32 fastpool_callback_tracebacks = 0;
    """
    # an adapter for int, float, str or bytearray exists
    fp_atomic_u32 *BASE_TYPE_ADAPTED "(&fastpool_base_type_adapted)"
    # enable_callback_tracebacks()
    fp_atomic_u32 *CALLBACK_TRACEBACKS "(&fastpool_callback_tracebacks)"
cdef bint NEW_BIND_ERRORS = sys.version_info >= (3, 12)

cdef enum:
    PARSE_DECLTYPES = 1
    PARSE_COLNAMES = 2


cdef class PrepareProtocol:
    """PrepareProtocol(*args, **kwargs)
--

    The protocol objects are adapted to (PEP 246), as in the sqlite3 module. It takes no
    arguments (TypeError otherwise), as there.
    """

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError("PrepareProtocol() takes no arguments")


def dbapi_adapters():
    """The adapter registry: ``{(type, PrepareProtocol): callable}``."""
    return DBAPI_ADAPTERS


def dbapi_converters():
    """The converter registry: ``{TYPENAME: callable}`` (names upper-case)."""
    return DBAPI_CONVERTERS


def register_adapter(type tp, adapter):
    """Adapt objects of exactly type ``tp`` with ``adapter(obj)`` before binding them."""
    if tp is int or tp is float or tp is str or tp is bytearray:
        fp_flag_store(BASE_TYPE_ADAPTED, 1)
    DBAPI_ADAPTERS[(tp, PrepareProtocol)] = adapter


def register_converter(typename, converter):
    """Convert columns declared (or named, with PARSE_COLNAMES) ``typename`` with ``converter``.

    ``converter`` receives the value as bytes. Names match case-insensitively.
    """
    if not isinstance(typename, str):
        raise TypeError(f"register_converter() argument 1 must be str, not "
                        f"{type(typename).__name__}")
    DBAPI_CONVERTERS[typename.upper()] = converter


def enable_callback_tracebacks(enable):
    """Print the tracebacks of exceptions raised in user callbacks (off by default)."""
    fp_flag_store(CALLBACK_TRACEBACKS, 1 if enable else 0)


_NO_ALT = object()


def adapt(obj, proto=PrepareProtocol, alt=_NO_ALT):
    """Adapt ``obj`` to ``proto`` through the registry, ``proto.__adapt__`` or
    ``obj.__conform__``; return ``alt`` (or raise ProgrammingError) when nothing applies."""
    adapter = DBAPI_ADAPTERS.get((type(obj), proto))
    if adapter is not None:
        return adapter(obj)
    hook = getattr(proto, "__adapt__", None)
    if hook is not None:
        result = hook(obj)
        if result is not None:
            return result
    hook = getattr(obj, "__conform__", None)
    if hook is not None:
        result = hook(proto)
        if result is not None:
            return result
    if alt is not _NO_ALT:
        return alt
    raise ProgrammingError("can't adapt")


cdef inline bint plain_value(object value) noexcept:
    # Bound as is unless an adapter for a base type exists (the sqlite3 module's rule).
    cdef type t = type(value)
    return value is None or ((t is int or t is float or t is str or t is bytes)
                             and not fp_flag_load(BASE_TYPE_ADAPTED))


cdef int bind_one(Connection conn, Statement st, int i, object value) except -1:
    cdef type t = type(value)
    cdef int overflow = 0
    # None, float, bytes and an int that fits raise nothing to translate: no try block,
    # which costs every call.
    if value is None or t is float or t is bytes:
        return bind_value(conn, st, i, value)
    if t is int:
        PyLong_AsLongLongAndOverflow(value, &overflow)
        if not overflow:
            return bind_value(conn, st, i, value)
    return bind_translated(conn, st, i, value)


cdef int bind_translated(Connection conn, Statement st, int i, object value) except -1:
    # bind_value with its errors in the sqlite3 module's terms.
    cdef type t
    try:
        bind_value(conn, st, i, value)
    except TypeError:
        t = type(value)
        raise ProgrammingError(
            f"Error binding parameter {i}: type '{t.__name__}' is not supported") from None
    except OverflowError:
        raise OverflowError("Python int too large to convert to SQLite INTEGER") from None
    except ValueError:
        if isinstance(value, str):
            str.encode(value, "utf-8")      # raises the UnicodeEncodeError sqlite3 gives
        raise
    return 0


cdef object adapted_param(object value, Py_ssize_t i):
    # An adapter or __conform__ that fails with an Exception is a binding error.
    if plain_value(value):
        return value
    try:
        return adapt(value, PrepareProtocol, value)
    except Exception as exc:
        raise ProgrammingError(f"Error binding parameter {i}: {exc}") from exc


cdef int dbapi_bind(Connection conn, Statement st, object params) except -1:
    # bind_params' job for the sqlite3 module: its rules and messages, adapters on the way.
    cdef Py_ssize_t i, n
    cdef tuple names = st.param_names
    if (type(params) is tuple or type(params) is list
            or (not isinstance(params, dict) and PySequence_Check(params))):
        n = len(params)
        if n != st.nparams:
            raise ProgrammingError(
                f"Incorrect number of bindings supplied. The current statement uses "
                f"{st.nparams}, and there are {n} supplied.")
        if names is not None and NEW_BIND_ERRORS and n:
            for i in range(n):
                if names[i] is not None:
                    warnings.warn(
                        f"Binding {i + 1} is a named parameter, but you supplied a sequence "
                        f"which requires nameless (qmark) placeholders. Starting with Python "
                        f"3.14 an sqlite3.ProgrammingError will be raised.",
                        DeprecationWarning, stacklevel=1)
                    break
        if type(params) is tuple:
            for i in range(n):
                value = <object>PyTuple_GET_ITEM(params, i)
                bind_one(conn, st, i + 1,
                         value if plain_value(value) else adapted_param(value, i + 1))
        else:
            for i in range(n):
                bind_one(conn, st, i + 1, adapted_param(PySequence_GetItem(params, i), i + 1))
        return 0
    if not isinstance(params, dict):
        raise ProgrammingError("parameters are of unsupported type")
    for i in range(st.nparams):
        name = names[i] if names is not None else None
        if name is None:
            raise ProgrammingError(
                f"Binding {i + 1} has no name, but you supplied a dictionary (which has "
                f"only names).")
        try:
            value = params[name]
        except KeyError:
            raise ProgrammingError(
                f"You did not supply a value for binding parameter :{name}.") from None
        bind_one(conn, st, i + 1, adapted_param(value, i + 1))
    return 0


# -- rows -------------------------------------------------------------------------------------

cdef object column_converter(str name, str decl, int detect_types):
    if detect_types & PARSE_COLNAMES:
        start = name.find("[")
        if start != -1:
            end = name.find("]", start)
            if end != -1:
                conv = DBAPI_CONVERTERS.get(name[start + 1:end].upper())
                if conv is not None:
                    return conv
    if detect_types & PARSE_DECLTYPES and decl is not None:
        for j, ch in enumerate(decl):
            if ch == " " or ch == "(":
                decl = decl[:j]
                break
        return DBAPI_CONVERTERS.get(decl.upper())
    return None


cdef list row_converters(Statement st, int detect_types):
    # One converter (or None) per column, or None when no column has one; kept on the
    # statement until its columns, detect_types or the registry change.
    if not detect_types or not DBAPI_CONVERTERS:
        return None
    cdef unsigned long long version = fp_version_get(CONVERTERS_VERSION)
    cdef tuple columns = statement_columns(st)
    if (st.converters_columns is columns and st.converters_detect == detect_types
            and st.converters_version == version):
        return st.converters
    found = [column_converter(name, decl, detect_types)
             for name, decl in zip(columns, st.decltypes)]
    st.converters = found if any(conv is not None for conv in found) else None
    st.converters_columns = columns
    st.converters_detect = detect_types
    st.converters_version = version
    return st.converters


cdef str column_name(Statement st, int i, int detect_types):
    cdef const char *text = sqlite3_column_name(st.handle, i)
    if text == NULL:
        raise MemoryError()
    name = text.decode("utf-8", "replace")
    if detect_types & PARSE_COLNAMES:
        cut = name.find(" [")
        if cut != -1:
            name = name[:cut]
    return name


cdef tuple converted_row(Statement st, list converters, object text_factory):
    # The slow path: a converter or a text_factory other than str.
    cdef sqlite3_stmt *s = st.handle
    cdef int i, n = sqlite3_data_count(s), kind, size
    cdef const char *p
    values = []
    for i in range(n):
        conv = converters[i] if converters is not None else None
        kind = sqlite3_column_type(s, i)
        if conv is not None:
            if kind == SQLITE_NULL:
                values.append(None)
                continue
            p = <const char *>sqlite3_column_blob(s, i)
            size = sqlite3_column_bytes(s, i)
            # A zero-length value with a converter is None, as in the sqlite3 module.
            values.append(conv(PyBytes_FromStringAndSize(p, size)) if p != NULL and size
                          else None)
        elif kind == SQLITE_TEXT and text_factory is not str:
            p = <const char *>sqlite3_column_text(s, i)
            size = sqlite3_column_bytes(s, i)
            raw = PyBytes_FromStringAndSize(p, size) if p != NULL else b""
            values.append(raw if text_factory is bytes else text_factory(raw))
        else:
            try:
                values.append(column_value(s, i))
            except DataError:
                p = sqlite3_column_name(s, i)
                raise OperationalError(
                    f"Could not decode to UTF-8 column '{p.decode('utf-8', 'replace')}' with "
                    f"text '{(<bytes>sqlite3_column_text(s, i)).decode('utf-8', 'replace')}'"
                ) from None
    return tuple(values)
