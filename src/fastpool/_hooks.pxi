# The GIL hand-off. Calls into SQLite start *holding* the GIL: most steps take a few
# microseconds, and dropping and re-taking the GIL around each one makes threads convoy on
# it (on 2 cores, 4 threads reach a fifth of one thread's speed). SQLite itself tells us
# when a call turns out long, through these callbacks, and only then is the GIL dropped:
#   - the progress handler fires every PROGRESS_OPS virtual-machine instructions;
#   - the busy handler fires before sleeping on a lock held by another process;
#   - the WAL hook runs the automatic checkpoint (which fsyncs) with the GIL dropped.
# The rule that keeps this safe: a callback may drop the GIL only when hooks.armed is set,
# and only Connection.step/prepare-style wrappers set it, always on a thread that holds the
# GIL; they take the GIL back (disarm) before returning to Python code.

cdef enum:
    PROGRESS_OPS = 1000     # ~10 µs of VM work before the GIL is dropped
    RESTART_WAIT_MS = 25    # how long a commit waits for readers so that the WAL can restart

cdef int[12] BUSY_DELAYS_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100]


cdef inline void arm(Hooks *h) noexcept nogil:
    h.saved = NULL
    h.ticks = 0
    h.armed = 1


cdef inline void disarm(Hooks *h) noexcept nogil:
    h.armed = 0
    if h.saved != NULL:
        PyEval_RestoreThread(h.saved)
        h.saved = NULL


cdef inline void drop_gil(Hooks *h) noexcept nogil:
    if h.armed and h.saved == NULL:
        h.saved = PyEval_SaveThread()


cdef int on_progress(void *arg) noexcept nogil:
    # SQLite counts instructions over a statement's whole life, not per call, so the first
    # tick of a call may come after a single instruction; the second comes PROGRESS_OPS
    # instructions into this call, which proves it long.
    cdef Hooks *h = <Hooks *>arg
    h.ticks += 1
    if h.ticks >= 2:
        drop_gil(h)
    return 0        # non-zero would interrupt the statement


cdef int on_busy(void *arg, int count) noexcept nogil:
    # Back off like SQLite's own busy_timeout handler, but never while holding the GIL.
    cdef Hooks *h = <Hooks *>arg
    cdef int i, delay, waited = 0
    for i in range(min(count, 12)):
        waited += BUSY_DELAYS_MS[i]
    if count > 12:
        waited += (count - 12) * 100
    delay = BUSY_DELAYS_MS[count] if count < 12 else 100
    if waited + delay > h.busy_timeout_ms:
        delay = h.busy_timeout_ms - waited
        if delay <= 0:
            return 0
    drop_gil(h)
    sqlite3_sleep(delay)
    return 1


cdef int on_wal_commit(void *arg, sqlite3 *db, const char *name, int pages) noexcept nogil:
    cdef Hooks *h = <Hooks *>arg
    cdef int rc, busy_timeout_ms
    if h.autocheckpoint <= 0 or pages < h.autocheckpoint:
        return SQLITE_OK
    drop_gil(h)
    if pages - h.autocheckpoint < h.autocheckpoint or pages < h.restart_after:
        # A PASSIVE checkpoint that finds readers in the way is normal and retried on a later
        # commit, exactly like SQLite's built-in auto-checkpoint, so its result is not an error.
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL)
        return SQLITE_OK
    # PASSIVE alone lets the WAL grow without bound under steady reads (measured: 24 MiB in
    # 10 s of single-row commits beside 3 reader threads). The log restarts from its start
    # only when no reader holds a snapshot in it, and overlapping readers, each starting
    # between a commit and its checkpoint, keep one there. At twice the threshold, RESTART
    # waits for them instead (no commit can start meanwhile, so new readers take no snapshot
    # in the log; short reads end within milliseconds; the GIL is dropped) and rewinds the
    # log, which so stays near 2 x wal_autocheckpoint pages. The wait is capped; when a
    # reader outlasts it (a long query), the next try waits for the log to grow by a quarter
    # of the threshold, later by the whole excess: a long reader stalls commits only a
    # logarithmic number of times while the log grows past it.
    busy_timeout_ms = h.busy_timeout_ms
    h.busy_timeout_ms = min(busy_timeout_ms, RESTART_WAIT_MS)
    rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL)
    h.busy_timeout_ms = busy_timeout_ms
    if rc == SQLITE_OK:
        h.restart_after = 0
    else:
        h.restart_after = pages + max(h.autocheckpoint // 4, pages - 2 * h.autocheckpoint)
    return SQLITE_OK


cdef void install_hooks(sqlite3 *db, Hooks *h) noexcept nogil:
    sqlite3_progress_handler(db, PROGRESS_OPS, on_progress, h)
    sqlite3_busy_handler(db, on_busy, h)
    sqlite3_wal_hook(db, on_wal_commit, h)
