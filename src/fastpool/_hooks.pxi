# The GIL hand-off. Calls into SQLite start *holding* the GIL: most steps take a few
# microseconds, and dropping and re-taking the GIL around each one makes threads convoy on
# it (on 2 cores, 4 threads reach a fifth of one thread's speed). SQLite itself tells us
# when a call turns out long, through these callbacks, and only then is the GIL dropped:
#   - the progress handler fires every PROGRESS_OPS virtual-machine instructions;
#   - the busy handler fires before sleeping on a lock held by another process;
#   - the WAL hook runs the automatic checkpoint (which fsyncs) with the GIL dropped, except
#     on a pool's writer, where it only tells the pool's checkpointer thread;
#   - the commit hook fires as a commit starts writing; on a connection whose commits fsync
#     (synchronous=full in WAL mode, normal or more in a rollback journal) the GIL is dropped
#     for it, so other threads run during the fsync (and queue for group commit meanwhile).
# The rule that keeps this safe: a callback may drop the GIL only when hooks.armed is set,
# and only Connection.step/prepare-style wrappers set it, always on a thread that holds the
# GIL; they take the GIL back (disarm) before returning to Python code.
# On a free-threaded build "holding the GIL" is the thread's attached state: the same calls
# detach and re-attach it. Nothing here serialises threads any more, but detaching still
# matters: a stop-the-world pause (the collector) waits for every attached thread. The Hooks
# themselves belong to the connection's call claimant (Connection.in_call): one thread.

import os

cdef enum:
    PROGRESS_OPS = 1000     # ~10 µs of VM work before the GIL is dropped
    RESTART_NAP_US = 50     # how often a WAL RESTART looks whether the readers have left
    RESTART_WAIT_US = 25000  # how long it waits for them before it gives up until later
    WAL_BACKPRESSURE = 4    # log size, in thresholds, past which a commit waits for the checkpoint

cdef int64_t BACKPRESSURE_WAIT_NS = 1000000000     # ... for one second at most

cdef int[12] BUSY_DELAYS_MS = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100]

# GIL turns. Keeping the GIL through short calls has one cost: CPython takes a contended GIL
# away only every switch interval (5 ms), so with 16-64 busy threads one could wait seconds
# for its turn (the stdlib, which drops the GIL around every step, gives each thread a chance
# per call). So a thread that checks out a reader, holding no writer, gives the GIL away every
# millisecond or two, process-wide (gil_turn, from PoolCore.acquire).
# The turns go round in order. A thread that gives its turn queues in GIL_LINE (a strict-FIFO
# fp_slots slot, waited on with the GIL released) and asks CPython for the GIL only at the
# head of that line, so CPython's own queue holds one turning thread at a time. Left to
# CPython, a waiter that sees no hand-off within the switch interval goes to the back of its
# condition variable's queue; with a hand-off a millisecond and 16-64 waiters that happens to
# nearly all of them, and who ran next was a lottery (one read waited 0.46 s at 64 threads,
# the stdlib's worst 45 ms). While threads wait in line the interval shrinks so that a round
# of the line takes about GIL_ROUND_NS; while turns go to threads outside it (threads just
# woken, all at once) it is the shortest, until they have joined. Each turn is a slow call for
# the thread that gives it, so holds are as long as the round allows (calls that turn, as a
# share of all, times the round is the thread count over the call rate, whatever the round).
# The round bounds the worst wait: about 15 ms at 64 threads, under the stdlib's 20-22 ms on
# the machine measured last (a 24 ms round made it 28-30 ms, past the stdlib's there). At 64
# threads about 1 % of calls then turn, so the p99 is a round, as the stdlib's is (10-12 ms);
# at 16 threads (holds of 0.75 ms) the reads' p99 stays at microseconds.
# A turn that found nobody in line naps so that a waiter the release woke can take the GIL (a
# release the same thread takes back at once is no turn, and re-arms every waiter's 5 ms
# timer); if nobody took it either, the interval doubles, up to GIL_TURN_IDLE_NS, so a lone
# thread pays next to nothing, and so does the nap, up to a 128th of the interval: a waiter
# that a machine wakes slowly (an idle virtual CPU) gets in on a later turn instead of
# missing every one (seen in CI: a thread woken by a turn never ran in 3 million calls).
cdef enum:
    GIL_TURN_NS = 2000000           # the longest interval while turns find waiters
    GIL_TURN_MIN_NS = 100000        # ... and the shortest, however long the line
    GIL_ROUND_NS = 12000000         # a round of the line takes about this long
    GIL_TURN_IDLE_NS = 64000000     # the interval at most, while turns find nobody
    GIL_TURN_NAP_NS = 50000         # how long the GIL stays free for a woken waiter, at least
    GIL_TURN_TAKEN_NS = 100000      # retaking it took longer: another thread had it

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define FP_GIL_TURNS 0
    #else
    #define FP_GIL_TURNS 1
    #endif
    """
    const bint FP_GIL_TURNS     # a free-threaded build has no GIL to give away

# Read and written holding the GIL (FP_GIL_TURNS builds only).
cdef int64_t next_gil_turn_ns = 0
cdef int64_t gil_turn_every_ns = GIL_TURN_NS
cdef int64_t gil_turn_nap_ns = GIL_TURN_NAP_NS
cdef uint64_t gil_turns_given = 0      # turns begun
cdef uint64_t gil_turns_back = 0       # gil_turns_given when a turning thread got it back
# NULL only if it could not be allocated: turns then nap, as when the line is empty.
cdef fp_slots *GIL_LINE = fp_slots_new(1, 0)


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


cdef inline bint gil_turn_due() noexcept:
    return FP_GIL_TURNS and fp_monotonic_ns() >= next_gil_turn_ns


cdef void gil_turn() noexcept:
    # Holding the GIL and no pool connection: give the GIL to a thread waiting for it.
    global next_gil_turn_ns, gil_turn_every_ns, gil_turn_nap_ns, gil_turns_given, gil_turns_back
    cdef fp_slots *line = GIL_LINE
    cdef fp_waiter place
    cdef PyThreadState *saved
    cdef int rc = FP_SLOTS_ERROR
    cdef bint queued = False
    cdef int64_t napped, back, every
    if gil_turns_given - gil_turns_back >= 2 and line != NULL and fp_slots_free_count(line) == 0:
        # The last turns went to threads outside the line (just woken, say) while its head
        # waits: hand the GIL on quickly until they have joined it.
        gil_turn_every_ns = GIL_TURN_MIN_NS
    gil_turns_given += 1
    next_gil_turn_ns = fp_monotonic_ns() + gil_turn_every_ns  # no other turn meanwhile
    saved = PyEval_SaveThread()
    if line != NULL:
        fp_waiter_init(&place, NULL, NULL)
        rc = fp_slots_enqueue(line, &place)
        if rc == FP_SLOTS_QUEUED:
            queued = True   # a thread ahead is taking the GIL: ours comes after it
            rc = fp_slots_wait(line, &place, -1)
    if not queued:
        fp_sleep_ns(gil_turn_nap_ns)
    napped = fp_monotonic_ns()
    PyEval_RestoreThread(saved)
    back = fp_monotonic_ns()
    gil_turns_back = gil_turns_given
    if rc == FP_SLOTS_OK:
        # The next in line asks CPython for the GIL. (Releasing the slot we were granted
        # cannot fail: EINVAL is for a slot not held.)
        fp_slots_release(line, place.slot)
    if queued or back - napped > GIL_TURN_TAKEN_NS:
        every = GIL_ROUND_NS // ((fp_slots_waiting(line) if line != NULL else 0) + 1)
        gil_turn_every_ns = max(GIL_TURN_MIN_NS, min(GIL_TURN_NS, every))
        gil_turn_nap_ns = GIL_TURN_NAP_NS
    else:
        if gil_turn_every_ns < GIL_TURN_IDLE_NS:
            gil_turn_every_ns *= 2
        gil_turn_nap_ns = max(GIL_TURN_NAP_NS, min(gil_turn_nap_ns * 2, gil_turn_every_ns // 128))
    next_gil_turn_ns = back + gil_turn_every_ns


def _gil_line_after_fork_in_child():
    # A parent thread may have held or waited in the line at the fork: the child's threads
    # start with a fresh one (the old one leaks: its mutex may be locked for good).
    global GIL_LINE
    GIL_LINE = fp_slots_new(1, 0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_gil_line_after_fork_in_child)


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
    if h.xlock_held != NULL and h.xlock_held[0]:
        # A pool's writer holding the cross-process writer lock found SQLite's lock taken by
        # a process that does not queue on ours (an older fastpool, the sqlite3 module, a
        # child with stale lock state). Sleeping here with our lock held would make every
        # other process's writers queue behind this wait: give it up first (SQLite's lock
        # alone decides from here on), and never wait for it again while holding SQLite's
        # locks, which would deadlock with a holder of ours waiting for SQLite.
        h.xlock_held[0] = 0
        fp_xlock_release(h.xlock)   # STALE or not ours: the pool notices on its next use
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
    h.wal_pages = pages
    if h.wal_events != NULL:
        # A pool's writer: its checkpointer thread does the work. It also hears when the log
        # was rewound (by the pool's RESTART, or by SQLite itself once a checkpoint caught up).
        if pages >= h.autocheckpoint:
            fp_notify_post(h.wal_events, WAL_FULL)
            h.wal_full_posted = 1
            if pages >= WAL_BACKPRESSURE * h.autocheckpoint:
                wait_for_checkpoint(h)
        elif h.wal_full_posted:
            fp_notify_post(h.wal_events, WAL_REWOUND)
            h.wal_full_posted = 0
        return SQLITE_OK
    if h.autocheckpoint <= 0 or pages < h.autocheckpoint:
        return SQLITE_OK
    # A PASSIVE checkpoint that finds readers in the way is normal and retried on a later
    # commit, exactly like SQLite's built-in auto-checkpoint, so its result is not an error.
    drop_gil(h)
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL)
    return SQLITE_OK


cdef void wait_for_checkpoint(Hooks *h) noexcept nogil:
    # The writers outran the checkpointer: its checkpoint (two fsyncs; 100+ ms seen on a
    # loaded VM) let them append thousands of frames meanwhile (the log reached 37-44 MiB
    # in test_pool_wal's load, bound 20). Past WAL_BACKPRESSURE times the threshold, the
    # committing writer, still holding the writer slot, waits for the checkpoint running now,
    # as SQLite's own COMMIT-time checkpoint would make it, so the log stops growing until
    # the pool's RESTART can rewind it. Bounded: a checkpoint that never ends must not stop
    # the writers for good.
    cdef int64_t deadline
    if h.ckpt_running == NULL or not fp_flag_load(h.ckpt_running):
        return
    fp_counter_add(h.ckpt_waits, 1)
    drop_gil(h)
    deadline = fp_monotonic_ns() + BACKPRESSURE_WAIT_NS
    while fp_flag_load(h.ckpt_running):
        if fp_park_wait(h.ckpt_running, 1, deadline - fp_monotonic_ns()) != FP_PARK_OK:
            return      # timed out (or could not wait)


cdef int on_commit(void *arg) noexcept nogil:
    cdef Hooks *h = <Hooks *>arg
    if h.commit_syncs:
        drop_gil(h)
    return 0        # non-zero would turn the COMMIT into a ROLLBACK


cdef inline void fp_sleep_ns(int64_t ns) noexcept nogil:
    # A timed park on a word nobody changes is a portable sub-millisecond sleep
    # (sqlite3_sleep counts whole milliseconds).
    cdef fp_atomic_u32 never = 0
    fp_park_wait(&never, 0, ns)


cdef int on_busy_brief(void *arg, int count) noexcept nogil:
    # For the pool's WAL RESTART, which waits for readers to leave the log. SQLite has no way
    # to be told when they do, so this polls, in naps short enough for point reads (which last
    # microseconds), up to RESTART_WAIT_US in all; the writer slot is held meanwhile.
    if count * RESTART_NAP_US >= RESTART_WAIT_US:
        return 0
    fp_sleep_ns(RESTART_NAP_US * 1000)
    return 1


cdef void install_hooks(sqlite3 *db, Hooks *h) noexcept nogil:
    sqlite3_progress_handler(db, PROGRESS_OPS, on_progress, h)
    sqlite3_busy_handler(db, on_busy, h)
    sqlite3_wal_hook(db, on_wal_commit, h)
    sqlite3_commit_hook(db, on_commit, h)
