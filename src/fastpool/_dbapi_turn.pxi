# Fair waiting for the write lock between fastpool.dbapi connections: a per-file turn that a
# connection takes before it begins a write transaction (BEGIN IMMEDIATE/EXCLUSIVE) and gives
# back as soon as the transaction has ended. Inside the process the turn is one slot of
# csrc/fp_slots, handed on as a pool's writer is (waiters park in C, the GIL released; the
# running thread may take it again until a waiter has waited TURN_FIFO_AFTER_NS, then it goes
# to the oldest waiter: no convoy, bounded waits). Its holder then takes the file's
# cross-process writer lock (csrc/fp_xlock, the side file <database>-writerlock, the one a
# Pool's writer takes), so writers of other processes, pools included, wait in the kernel on
# that lock instead of polling in SQLite's busy handler with its growing back-off.
#
# WRITE_TURNS and the users counts are read and changed only under TURNS_LOCK (a GIL would
# not make a lookup-then-count atomic on a free-threaded build). The lock is reentrant: the
# connections' __dealloc__ changes them too, and the collector may run it on a thread that
# holds the lock. `holder` and the cross-process lock's state belong to the thread holding
# the slot (the slot's release and acquire order them between holders).

import os
import threading
from time import monotonic as _monotonic

# A pool writer's default hand-off policy (Pool(fifo_after=...)'s default, which
# tests/test_dbapi_sqlite3.py holds this to), for the dbapi's turns too.
cdef int64_t TURN_FIFO_AFTER_NS = 1_000_000
_TURN_FIFO_AFTER_NS = TURN_FIFO_AFTER_NS


cdef class WriteTurn:
    """The turn to write one database file, for this process's dbapi connections (internal)."""

    cdef fp_slots *slot         # the turn: one slot
    cdef object holder          # the token holding the turn, or None
    cdef object key             # the file's identity: its key in WRITE_TURNS
    cdef str file_path          # the database file SQLite opened
    cdef Py_ssize_t users       # open connections on this turn
    cdef fp_xlock *xlock        # the cross-process lock, opened on first use (else NULL)
    cdef bint xlock_tried       # opening it was tried (NULL then: none to use)
    cdef bint xlock_held        # the holder holds it (the busy handler may clear this)

    def __cinit__(self, key, file_path):
        self.slot = fp_slots_new(1, TURN_FIFO_AFTER_NS)
        if self.slot == NULL:
            raise MemoryError("could not allocate a write turn")
        self.holder = None
        self.key = key
        self.file_path = file_path

    def __dealloc__(self):
        fp_slots_free(self.slot)     # nobody waits: a waiter holds a reference
        fp_xlock_close(self.xlock)

    cdef bint take(self, object token, double timeout) except -1:
        # Wait (at most timeout seconds in all) for the turn, then for the cross-process
        # lock; False when the wait timed out (nothing is held then).
        cdef double deadline = _monotonic() + timeout
        if not self.wait_in_line(token, deadline):
            return False
        try:
            if self.take_xlock(deadline):
                return True
        except BaseException:
            self.give_back(token)
            raise
        self.give_back(token)
        return False

    cdef int take_for(self, Connection core, object token) except -1:
        # take() for a dbapi connection's write transaction, within its busy timeout.
        if not self.take(token, core.hooks.busy_timeout_ms / 1000.0):
            raise error_for_code(SQLITE_BUSY, "database is locked")
        if self.xlock_held:
            # If SQLite's lock is held by a writer that does not queue on ours, the busy
            # handler gives ours up before it sleeps (see on_busy).
            core.hooks.xlock = self.xlock
            core.hooks.xlock_held = &self.xlock_held
        return 0

    cdef void give_back_from(self, Connection core, object token) noexcept:
        # The transaction on core ended (or core closes): unhook the lock, then give back.
        if core is not None:
            core.hooks.xlock = NULL
            core.hooks.xlock_held = NULL
        self.give_back(token)

    cdef bint wait_in_line(self, object token, double deadline) except -1:
        cdef uint32_t got
        cdef fp_waiter waiter
        cdef int rc
        cdef int64_t left_ns
        if fp_slots_try_acquire(self.slot, &got) != FP_SLOTS_OK:
            fp_waiter_init(&waiter, NULL, NULL)
            rc = fp_slots_enqueue(self.slot, &waiter)
            if rc == FP_SLOTS_QUEUED:
                left_ns = max(<int64_t>((deadline - _monotonic()) * 1e9), 0)
                with nogil:
                    rc = fp_slots_wait(self.slot, &waiter, left_ns)
                if rc == FP_SLOTS_TIMEOUT:
                    return False
            if rc != FP_SLOTS_OK:
                raise InternalError(f"the write turn's slot failed (code {rc})")
        self.holder = token
        return True

    cdef bint take_xlock(self, double deadline) except -1:
        # Holding the turn: wait for the other processes' writers, the GIL dropped.
        cdef int rc
        cdef int64_t left_ns
        if not self.xlock_tried:
            self.xlock_tried = True
            self.open_xlock()
        if self.xlock == NULL:
            return True
        rc = fp_xlock_acquire(self.xlock, 0)
        if rc == FP_XLOCK_TIMEOUT:
            left_ns = <int64_t>((deadline - _monotonic()) * 1e9)
            if left_ns > 0:
                with nogil:
                    rc = fp_xlock_acquire(self.xlock, left_ns)
        if rc == FP_XLOCK_OK:
            self.xlock_held = True
            return True
        if rc == FP_XLOCK_TIMEOUT:
            return False
        self.lose_xlock(rc)     # a bad side file never stops writes: go on without it
        return True

    cdef int open_xlock(self) except -1:
        try:
            st = os.stat(self.file_path)
        except OSError:
            return 0        # gone or unreadable: SQLite reports what matters on the write
        if (st.st_dev, st.st_ino) == self.key:
            open_side_lock(self.file_path, st, "these fastpool.dbapi connections run",
                           &self.xlock)
        return 0

    cdef void lose_xlock(self, int rc) noexcept:
        cdef int err = errno
        self.xlock_held = False
        fp_xlock_close(self.xlock)
        self.xlock = NULL
        warn_side_lock_lost(self.file_path, rc, err, "these fastpool.dbapi connections go")

    cdef void release_xlock(self) noexcept:
        cdef int rc
        if self.xlock_held:
            self.xlock_held = False
            rc = fp_xlock_hand_over(self.xlock)    # no overtaking a sleeping waiter
            if rc != FP_XLOCK_OK and rc != FP_XLOCK_ERROR:
                self.lose_xlock(rc)     # ERROR is EPERM: not ours any more, nothing to undo

    cdef void give_back(self, object token) noexcept:
        # The write transaction ended: the cross-process lock first, then the turn.
        if self.holder is token:
            self.release_xlock()
            self.holder = None
            fp_slots_release(self.slot, 0)

    cdef void leave(self) noexcept:
        # A connection on this turn closed (or was collected); the last one closes the lock.
        with TURNS_LOCK:
            self.users -= 1
            if self.users > 0:
                return
            if WRITE_TURNS.get(self.key) is self:
                del WRITE_TURNS[self.key]
            fp_xlock_close(self.xlock)
            self.xlock = NULL

    cdef Py_ssize_t queued(self):
        return fp_slots_waiting(self.slot)


cdef dict WRITE_TURNS = {}      # file identity (st_dev, st_ino) -> WriteTurn
cdef object TURNS_LOCK = threading.RLock()


cdef WriteTurn write_turn_for(Connection core):
    # The turn of core's file, counting core's dbapi connection as one of its users (it must
    # leave() it). None for a private in-memory or temporary database: nobody to wait for.
    cdef WriteTurn turn
    cdef const char *name
    if core.file_key is None:
        return None
    name = sqlite3_db_filename(core.db, b"main")
    with TURNS_LOCK:
        found = WRITE_TURNS.get(core.file_key)
        if found is None:
            found = WriteTurn(core.file_key,
                              name.decode("utf-8", "surrogateescape") if name != NULL else "")
            WRITE_TURNS[core.file_key] = found
        turn = <WriteTurn>found
        turn.users += 1
    return turn


def _write_turn_waiting(connection):
    """How many connections of this process wait for the write turn of ``connection``'s file
    (for tests: they poll it instead of sleeping); 0 for a private database."""
    turn = (<DBAPIConnection?>connection).turn
    return 0 if turn is None else (<WriteTurn>turn).queued()


def _write_turns_after_fork_in_child():
    # The parent's turns and lock handles are not this process's: a child's connections open
    # turns of their own. Inherited connections keep theirs, without the cross-process lock
    # (the handle's byte lock says the parent is alive; the child must not use its token).
    # A parent thread may have held TURNS_LOCK at the fork: the child (one thread) starts
    # with a fresh one.
    global TURNS_LOCK
    cdef fp_slots *fresh
    TURNS_LOCK = threading.RLock()
    for turn in list(WRITE_TURNS.values()):
        fp_xlock_forget_after_fork((<WriteTurn>turn).xlock)
        (<WriteTurn>turn).xlock = NULL
        (<WriteTurn>turn).xlock_held = False
        # Inherited connections keep this turn: a slot of their own, free (the parent's
        # holder is no thread here; its copy may have been left mid-call, so it leaks).
        fresh = fp_slots_new(1, TURN_FIFO_AFTER_NS)
        if fresh != NULL:
            (<WriteTurn>turn).slot = fresh
        (<WriteTurn>turn).holder = None
    WRITE_TURNS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_write_turns_after_fork_in_child)
