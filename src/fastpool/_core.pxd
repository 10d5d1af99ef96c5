# The cdef declarations of the fastpool._core extension, one .pxd per unit, included in
# dependency order (a unit's .pxd names only the units above it; the few classes that point
# both ways are forward-declared). Each unit's implementation is the .pxi of the same name,
# included by _core.pyx in the same order.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastpool._csrc cimport (fp_async_waiter, fp_atomic_u32, fp_atomic_u64, fp_batch, fp_cq,
                             fp_cq_item, fp_notify, fp_slot_counters, fp_slots, fp_waiter,
                             fp_xlock)
from fastpool._sqlite3 cimport sqlite3, sqlite3_stmt


cdef extern from "Python.h":
    ctypedef struct PyThreadState

include "_statement.pxd"
include "_connection.pxd"
include "_cursor.pxd"
include "_row.pxd"
include "_dbapi.pxd"
include "_wal.pxd"
include "_writer.pxd"
include "_snapshot.pxd"
include "_pool.pxd"
include "_lease.pxd"
include "_async_jobs.pxd"
include "_async_waiters.pxd"
include "_async.pxd"
