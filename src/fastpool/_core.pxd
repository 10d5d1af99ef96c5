# All cdef state of the fastpool._core extension. The implementation lives in _core.pyx
# and the .pxi parts it includes.

from libc.stdint cimport int64_t, uint32_t, uint64_t

from fastpool._csrc cimport (fp_async_waiter, fp_atomic_u32, fp_atomic_u64, fp_cq, fp_cq_item,
                             fp_notify, fp_slots, fp_xlock)
from fastpool._sqlite3 cimport sqlite3, sqlite3_stmt


cdef extern from "Python.h":
    ctypedef struct PyThreadState


cdef struct Hooks:
    # State shared with the C callbacks SQLite calls from inside a step (progress, busy, WAL).
    PyThreadState *saved    # set once a callback has dropped the GIL during the current call
    int armed               # the current call entered holding the GIL: a callback may drop it
    int ticks               # progress-handler calls during the current call
    int busy_timeout_ms     # how long the busy handler sleeps in total before giving up
    int autocheckpoint      # WAL pages after which a commit checkpoints (0 = never)
    fp_notify *wal_events   # a pool's checkpointer to tell instead (NULL: checkpoint in COMMIT)
    int wal_full_posted     # WAL_FULL was posted and the log has not been rewound since
    fp_xlock *xlock         # a pool's writer: its cross-process writer lock (else NULL) ...
    bint *xlock_held        # ... and the pool's flag saying it is held (the busy handler drops it)


cdef class Checkpointer


cdef class Statement:
    cdef sqlite3_stmt *handle
    cdef object key                 # the SQL text when cached, else None
    cdef bint in_use                # checked out by a call or a cursor
    cdef unsigned int generation    # bumped on every release: cursors holding an old one are stale
    cdef Statement prev             # LRU neighbours while idle in the cache
    cdef Statement next
    cdef int nparams
    cdef tuple param_names          # names without prefix for :name/@name/$name, else None
    cdef bint readonly
    cdef bint opens_transaction      # PEP 249 mode begins a transaction before it (not BEGIN...)
    cdef bint large_bindings        # a bound text/blob is big enough to be worth freeing early
    cdef tuple columns              # column names, built on first need
    cdef tuple decltypes            # declared column types (None for expressions), with columns
    cdef dict column_index          # name -> position, for Row
    cdef int columns_version        # reprepare count when columns was built

    cdef void finalize(self) noexcept


cdef class StatementCache:
    cdef dict entries               # sql -> Statement (idle or in use)
    cdef Statement head             # most recently used idle statement
    cdef Statement tail             # least recently used idle statement
    cdef Py_ssize_t capacity
    cdef unsigned long long hits
    cdef unsigned long long misses
    cdef unsigned long long evictions

    cdef void link_front(self, Statement st) noexcept
    cdef void unlink(self, Statement st) noexcept
    cdef void trim(self) noexcept
    cdef void finalize_all(self) noexcept


cdef class Connection:
    cdef sqlite3 *db
    cdef Hooks hooks
    cdef StatementCache cache
    cdef set active                 # statements held by open cursors
    cdef bint in_call               # a call is running: no second thread or callback may enter
    cdef readonly bint fatal        # hit an error after which the connection must not be reused
    cdef unsigned int epoch         # bumped when the connection is closed or reset for reuse
    cdef object row_factory
    cdef object pending_exc         # exception raised inside a user function during a step
    cdef readonly str path
    cdef readonly bint readonly
    cdef public bint reader_hint     # a pool reader: say "use pool.writer()" on write attempts
    cdef readonly bint autocommit    # False: PEP 249 implicit transactions (fastpool.connect)
    cdef Checkpointer checkpointer   # keeps alive what hooks.wal_events points into
    cdef bint guard_tx               # a pool writer's transaction: notice if SQLite ends it
    cdef bint tx_lost                # SQLite rolled that transaction back after an error
    cdef object file_key             # (st_dev, st_ino) counted in OPEN_FILES, or None

    cdef void attach_checkpointer(self, Checkpointer ck) noexcept

    cdef int enter(self) except -1
    cdef void leave(self) noexcept
    cdef int step(self, Statement st) noexcept
    cdef int raise_error(self, int rc) except -1
    cdef Statement checkout(self, str sql)
    cdef int implicit_begin(self, Statement st) except -1
    cdef int run(self, Cursor cur, str sql, object params) except -1
    cdef int run_many(self, Cursor cur, str sql, object seq_of_params) except -1
    cdef void release(self, Statement st) noexcept
    cdef Statement prepare(self, str sql, bint persistent)
    cdef int bind(self, Statement st, object params) except -1
    cdef object make_row(self, Statement st)
    cdef tuple column_names(self, Statement st)
    cdef int run_pragma(self, str name, object value) except -1
    cdef int check_journal_mode(self, str asked, bint defensive) except -1
    cdef str pragma_text(self, const char *sql)
    cdef str uri_vfs_choice(self)
    cpdef object fetchone(self, str sql, object params=*)
    cpdef list fetchall(self, str sql, object params=*)
    cpdef Cursor execute(self, str sql, object params=*)
    cpdef Cursor executemany(self, str sql, object seq_of_params)
    cpdef bint reset(self)
    cpdef abandon(self)
    cpdef close(self)


cdef class Cursor:
    cdef Connection conn
    cdef Statement stmt             # held while rows remain
    cdef unsigned int stmt_generation
    cdef unsigned int epoch
    cdef tuple names
    cdef tuple decltypes
    cdef long long _rowcount
    cdef long long _lastrowid
    cdef list buffer                # rows fetched ahead by materialize(), else None
    cdef Py_ssize_t buffer_pos
    cdef public Py_ssize_t arraysize

    cdef int check(self) except -1
    cdef int clear(self) except -1
    cdef int start(self, Statement st, object params) except -1
    cdef object next_row(self)
    cdef void finish(self) noexcept
    cdef int materialize(self) except -1


cdef class Row:
    cdef tuple _values
    cdef tuple _names
    cdef dict _index


cdef class Checkpointer:
    cdef Connection conn            # its own: used only by its thread
    cdef fp_notify events           # WAL_FULL from the writer's WAL hook, STOP from the pool
    cdef fp_atomic_u32 restart_wanted   # 1: the pool should RESTART the log between writers
    cdef fp_atomic_u32 restart_at       # log size (frames) from which a RESTART is wanted
    cdef fp_atomic_u32 in_checkpoint    # 1 while its thread is inside SQLite
    cdef fp_atomic_u32 fork_pause       # 1 while a fork() is starting: stay out of SQLite
    cdef fp_atomic_u64 runs
    cdef fp_atomic_u64 restarts
    cdef fp_atomic_u64 errors
    cdef int autocheckpoint
    cdef object thread

    cdef void loop(self) noexcept nogil
    cdef void enter_sqlite(self) noexcept nogil
    cdef void leave_sqlite(self) noexcept nogil
    cdef void restarted(self, int rc, int log) noexcept
    cdef void stop(self) noexcept
    cdef void abandon(self) noexcept
    cdef void pause_for_fork(self) noexcept
    cdef void resume_after_fork(self) noexcept


cdef class PoolCore:
    cdef fp_slots *reader_slots
    cdef fp_slots *writer_slot
    cdef object opts                 # fastpool._options.PoolOptions
    cdef uint32_t nreaders
    cdef list readers                # Connection or None (opened on first use) per slot
    cdef list expires                # monotonic time after which a reader is replaced
    cdef list last_used              # monotonic time a reader was last returned
    cdef Connection writer_conn
    cdef Checkpointer checkpointer   # None unless the database is in WAL mode
    cdef double writer_expires
    cdef unsigned long writer_owner  # thread ident holding the writer, 0 if none
    cdef unsigned long savepoint_counter
    cdef int64_t timeout_ns
    cdef readonly bint debug
    cdef bint track_time
    cdef bint is_closed
    cdef bint collected              # close() has gathered every slot it could
    cdef unsigned int fork_generation
    cdef double last_sweep
    cdef readonly dict holders       # (role, slot) -> (thread name, since, stack), debug only
    cdef unsigned long long n_checkouts
    cdef unsigned long long n_waits
    cdef unsigned long long n_timeouts
    cdef unsigned long long n_discarded
    cdef int64_t wait_ns
    cdef str file_path               # the writer's database file ("" for memory/temp)
    cdef object file_id              # (st_dev, st_ino) of that file when opened, or None
    cdef int64_t next_file_check     # monotonic ns before which the file is not re-checked
    cdef fp_xlock *xlock             # cross-process writer lock (csrc/fp_xlock), or NULL
    cdef bint xlock_held
    cdef str fork_error              # set in a child whose copied connections cannot be made safe
    cdef bint wal                    # the database was in WAL mode when the writer opened
    cdef unsigned int xlock_batch    # writers in a row that kept the lock for the next one

    cdef int make_slots(self) except -1
    cdef Connection open_connection(self, bint readonly)
    cdef Connection open_writer(self)
    cdef int start_checkpointer(self) except -1
    cdef void restart_wal(self, Connection conn) noexcept
    cdef double expiry(self)
    cdef Connection open_reader(self, uint32_t slot)
    cdef void discard(self, Connection conn) noexcept
    cdef void close_all_connections(self) noexcept
    cdef int after_fork(self, bint wait=*) except -1
    cdef int retire_parent_connections(self, bint wait) except -1
    cdef int retire_parent_writer(self, Connection conn, bint wait) except -1
    cdef uint32_t acquire(self, fp_slots *slots, int role) except? 0xFFFFFFFF
    cdef str timeout_message(self, int role, int64_t waited_ns)
    cdef Connection reader_connection(self, uint32_t slot)
    cdef Connection writer_connection(self, bint lock=*)
    cdef bint try_xlock(self) noexcept
    cdef int check_file(self) except -1
    cdef int take_xlock(self) except -1
    cdef void drop_kept_xlock(self) noexcept
    cdef void release_xlock(self) noexcept
    cdef int open_xlock(self, object st) except -1
    cdef void bind_xlock(self, Connection conn) noexcept
    cdef void lose_xlock(self, int rc) noexcept
    cdef void release_reader(self, uint32_t slot, Connection conn) noexcept
    cdef void release_writer(self, Connection conn) noexcept
    cdef void maybe_sweep_idle(self) noexcept
    cdef int64_t collect_slot(self, fp_slots *slots, object deadline)
    cdef void note_holder(self, int role, uint32_t slot)
    cdef Lease lease(self, int role, uint32_t slot, Connection conn)
    cdef void give_back(self, Lease lease) noexcept
    cpdef object fetchone(self, str sql, object params=*)
    cpdef list fetchall(self, str sql, object params=*)
    cpdef Cursor execute(self, str sql, object params=*)
    cpdef Cursor executemany(self, str sql, object seq_of_params)


cdef class Lease:
    cdef PoolCore pool
    cdef Connection conn             # None once returned
    cdef uint32_t slot
    cdef int role                    # READER, WRITER or SAVEPOINT
    cdef bint plain                  # a writer lease with no transaction (checkpoint)
    cdef unsigned int epoch          # conn.epoch when lent: a reset connection kills the lease
    cdef unsigned int fork_generation
    cdef unsigned long thread
    cdef long long changes_at_begin
    cdef str savepoint

    cdef Connection live(self)
    cdef int end_savepoint(self, bint keep) except -1


# -- the asyncio engine (_async.pxi) ---------------------------------------------------------

cdef class AsyncEngine:
    cdef PoolCore pool
    cdef fp_cq *cq                   # completions to the event loop, one wake-up per batch
    cdef dict pending                # token -> Job or SlotWaiter whose completion may be posted
    cdef uint64_t next_token
    cdef object loop                 # the loop watching cq's descriptor, or None
    cdef object jobs                 # queue.SimpleQueue of Jobs for the worker threads
    cdef list workers
    cdef int in_flight               # Jobs submitted and not yet fired on the loop
    cdef int64_t budget_ns           # how long a statement may run inline on the loop
    cdef dict slow_sql               # SQL that outran the budget once: straight to a worker
    cdef int64_t last_yield_ns
    cdef readonly bint yield_due     # the facade should let other tasks run (inline streak)
    cdef public bint closing
    cdef unsigned long long n_inline
    cdef unsigned long long n_worker
    cdef unsigned long long n_budget
    cdef unsigned long long n_cancel

    cdef int check_open(self) except -1
    cdef object inline(self, Connection conn, int op, str sql, object params, bint interruptible)
    cdef Job submit(self, Connection conn, int op, str sql, object params, int role,
                    uint32_t slot, Lease lease, bint take_xlock=*)
    cdef void note_inline(self) noexcept


cdef class Job:
    cdef fp_cq_item item
    cdef AsyncEngine engine
    cdef Connection conn
    cdef int op
    cdef str sql
    cdef object params
    cdef object result
    cdef object exc
    cdef readonly object future
    cdef int role                    # READER/WRITER: a one-shot that gives its slot back when
    cdef uint32_t slot               # fired; -1: a lease's call (the lease keeps the slot)
    cdef Lease lease
    cdef readonly bint done
    cdef int64_t elapsed_ns          # how long the worker ran it
    cdef bint cancelled              # the awaiting task was cancelled: stop, or do not start
    cdef bint take_xlock             # first wait for the cross-process writer lock (off the loop)

    cdef void fire(self)


cdef class SlotWaiter:
    cdef fp_async_waiter node
    cdef AsyncEngine engine
    cdef fp_slots *slots
    cdef readonly object future
    cdef int role
    cdef int state                   # W_* in _async.pxi
    cdef bint woken                  # the grant's completion reached the loop

    cdef void fire(self)
    cdef void give_back_slot(self) noexcept
