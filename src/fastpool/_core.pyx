# cython: freethreading_compatible = True
"""fastpool's Cython core: SQLite connections, cursors, rows, the statement cache and the pool.

Everything that runs per query lives here, so a query costs one Python-level call.
It is built of units, each a .pxi for the code and a .pxd for its cdef state and cdef API
(_core.pxd includes those); each unit imports the Python modules it uses itself.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_FromLongLong
from cpython.float cimport PyFloat_FromDouble
from cpython.ref cimport Py_INCREF, Py_DECREF, PyObject
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM, PyTuple_GET_ITEM
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp, memcpy, memset
from libc.stdlib cimport malloc, free
from cpython.mem cimport PyMem_RawMalloc, PyMem_RawFree
from libc.limits cimport INT_MAX
from libc.errno cimport (EBADMSG, EINVAL, EISDIR, ELOOP, EMLINK, ENOENT, ENOSPC, EPERM,
                         errno)
from posix.stat cimport stat, struct_stat
from posix.fcntl cimport open as posix_open, O_RDONLY
from posix.unistd cimport pread, close as posix_close
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from fastpool._sqlite3 cimport *
from fastpool._csrc cimport *
from libc.stdint cimport int64_t, uint32_t

import logging

from fastpool.errors import *
# By name too: Cython binds builtin names at compile time, so without this line `Warning`
# here would be the builtin, not PEP 249's fastpool.Warning that the star import brings.
from fastpool.errors import Warning

# The library's logger: events that change the pool's connections without an exception in
# the caller's hands (a broken connection replaced, a writer that could not be reopened).
log = logging.getLogger("fastpool")

# PEP 249's exception classes, by name, for Connection.__getattr__.
cdef dict DBAPI_ERRORS = {cls.__name__: cls for cls in (
    Warning, Error, InterfaceError, DatabaseError, DataError, OperationalError, IntegrityError,
    InternalError, ProgrammingError, NotSupportedError)}

cdef extern from "Python.h":
    PyThreadState *PyEval_SaveThread() nogil
    void PyEval_RestoreThread(PyThreadState *) nogil
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1
    double PyFloat_AS_DOUBLE(object o)
    char *PyBytes_AS_STRING(object o)
    Py_ssize_t PyBytes_GET_SIZE(object o)
    PyObject *PyDict_GetItemWithError(object d, object key) except? NULL
    # Unchecked (NULL: an exception is set), so the hot path needs no try block.
    PyObject *decode_utf8 "PyUnicode_DecodeUTF8"(const char *s, Py_ssize_t size,
                                                 const char *errors)
    void PyErr_Clear()


def sqlite_version():
    """Return the version of the SQLite library fastpool runs on, e.g. ``"3.40.1"``."""
    return sqlite3_libversion().decode("ascii")


def sqlite_compile_options():
    """Return the options the linked SQLite was compiled with, as SQLite reports them.

    A tuple of strings without the ``SQLITE_`` prefix, e.g. ``("DEFAULT_MEMSTATUS=0",
    "THREADSAFE=2", ...)``: the tuned set of the SQLite that wheels bundle (see
    docs/sqlite-build.md), or whatever the system's libsqlite3 was built with.
    """
    cdef list options = []
    cdef const char *option
    cdef int i = 0
    while True:
        option = sqlite3_compileoption_get(i)
        if option == NULL:
            return tuple(options)
        options.append(option.decode("utf-8"))
        i += 1


include "_sqlite_copies.pxi"
include "_hooks.pxi"
include "_values.pxi"
include "_statement.pxi"
include "_row.pxi"
include "_connection.pxi"
include "_functions.pxi"
include "_extension.pxi"
include "_wal_vfs.pxi"
include "_cursor.pxi"
include "_dbapi_values.pxi"
include "_dbapi_turn.pxi"
include "_dbapi_extras.pxi"
include "_dbapi_connection.pxi"
include "_dbapi_cursor.pxi"
include "_dbapi_callbacks.pxi"
include "_dbapi_row.pxi"
include "_wal_litestream.pxi"
include "_wal.pxi"
include "_open.pxi"
include "_pool.pxi"
include "_pool_report.pxi"
include "_snapshot.pxi"
include "_writer.pxi"
include "_group.pxi"
include "_lifecycle.pxi"
include "_lease.pxi"
include "_async_jobs.pxi"
include "_async_waiters.pxi"
include "_async.pxi"
