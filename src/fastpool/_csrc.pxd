# Declarations of fastpool's own C helpers in csrc/: one `cdef extern from` block per header
# that the core uses.
# Declarations only: the contracts (ownership, memory ordering, return codes) are
# documented in the headers, which are the source of truth.
#
# Build: the extension is compiled as C (not C++: the headers use C11 <stdatomic.h>)
# with include_dirs=["csrc"]; setup.py compiles csrc/*.c (with -std=c11) and links them in.
#
# Atomic fields are typed fp_atomic_u32 (C: _Atomic uint32_t).  Cython sees a plain
# uint32_t, so a direct read of waiter.state compiles to a seq_cst atomic load; prefer
# fp_waiter_state() (acquire load) and never assign the field from Cython code: use
# fp_waiter_init() before first use and let fp_slots change the state.
#
# Everything here is nogil and noexcept: no function touches Python objects, and
# failures are reported through int return codes that the caller must check.

from libc.stdint cimport uint32_t, uint64_t, int64_t


cdef extern from "fp_ring.h" nogil:
    enum:
        FP_RING_OK
        FP_RING_FULL
        FP_RING_EMPTY
        FP_RING_EINVAL
        FP_RING_MAX_CAPACITY
        FP_RING_MAX_VALUE

    ctypedef struct fp_ring:
        pass

    fp_ring *fp_ring_new(uint32_t min_capacity) noexcept
    void fp_ring_free(fp_ring *ring) noexcept
    int fp_ring_push(fp_ring *ring, uint32_t value) noexcept
    int fp_ring_pop(fp_ring *ring, uint32_t *out) noexcept
    uint32_t fp_ring_capacity(const fp_ring *ring) noexcept
    uint32_t fp_ring_size(const fp_ring *ring) noexcept


cdef extern from "fp_park.h" nogil:
    enum:
        FP_PARK_OK
        FP_PARK_TIMEOUT
        FP_PARK_ERROR
        FP_PARK_SPIN
        FP_PARK_BUCKETS

    # _Atomic uint32_t in C; see the note at the top of this file.
    ctypedef uint32_t fp_atomic_u32

    int fp_park_wait(fp_atomic_u32 *word, uint32_t expected, int64_t timeout_ns) noexcept
    void fp_park_wake_one(fp_atomic_u32 *word) noexcept
    void fp_park_wake_all(fp_atomic_u32 *word) noexcept


cdef extern from "fp_slots.h" nogil:
    enum:
        FP_SLOTS_OK
        FP_SLOTS_EMPTY
        FP_SLOTS_QUEUED
        FP_SLOTS_TIMEOUT
        FP_SLOTS_CANCELLED
        FP_SLOTS_EINVAL
        FP_SLOTS_ERROR
        FP_SLOTS_MAX

    enum:
        FP_WAITER_IDLE
        FP_WAITER_WAITING
        FP_WAITER_GRANTED
        FP_WAITER_CANCELLED

    ctypedef struct fp_slots:
        pass

    # Callback run by the releasing thread, outside fp_slots' mutex, once per grant made
    # by fp_slots_release().  It must not block, must not call back into the same
    # fp_slots, and must not raise (no Python: it runs without the GIL).
    ctypedef void (*fp_wake_fn)(fp_waiter *w) noexcept nogil

    ctypedef struct fp_waiter:
        fp_atomic_u32 state         # FP_WAITER_*; read with fp_waiter_state()
        uint32_t slot               # valid once state == FP_WAITER_GRANTED
        fp_waiter *prev             # queue links: owned by fp_slots, never touch
        fp_waiter *next
        fp_wake_fn wake             # NULL: synchronous waiter (fp_slots_wait)
        void *user                  # free for the owner

    void fp_waiter_init(fp_waiter *w, fp_wake_fn wake, void *user) noexcept
    uint32_t fp_waiter_state(const fp_waiter *w) noexcept

    fp_slots *fp_slots_new(uint32_t nslots, int64_t fifo_after_ns) noexcept
    void fp_slots_free(fp_slots *s) noexcept
    int fp_slots_try_acquire(fp_slots *s, uint32_t *slot) noexcept
    int fp_slots_enqueue(fp_slots *s, fp_waiter *w) noexcept
    int fp_slots_wait(fp_slots *s, fp_waiter *w, int64_t timeout_ns) noexcept
    int fp_slots_cancel(fp_slots *s, fp_waiter *w, uint32_t *slot_out) noexcept
    int fp_slots_release(fp_slots *s, uint32_t slot) noexcept
    int fp_slots_set_aside(fp_slots *s, uint32_t slot) noexcept
    int fp_slots_make_strict(fp_slots *s) noexcept
    uint32_t fp_slots_waiting(const fp_slots *s) noexcept
    uint32_t fp_slots_free_count(const fp_slots *s) noexcept
    uint32_t fp_slots_capacity(const fp_slots *s) noexcept


cdef extern from "fp_batch.h" nogil:
    # Group commit's queue (_group.pxi): one leader at a time takes what is queued.
    enum:
        FP_BATCH_QUEUED
        FP_BATCH_LEAD
        FP_BATCH_TAKEN
        FP_BATCH_DONE
        FP_BATCH_CANCELLED
        FP_BATCH_OK
        FP_BATCH_TIMEOUT
        FP_BATCH_ERROR
        FP_BATCH_EINVAL

    ctypedef struct fp_batch:
        pass

    ctypedef struct fp_batch_job:
        fp_batch_job *next          # owned by fp_batch: read only in a taken list
        void *data                  # the owner's WriteJob (borrowed)

    fp_batch *fp_batch_new() noexcept
    void fp_batch_free(fp_batch *b) noexcept
    int fp_batch_join(fp_batch *b, fp_batch_job *job) noexcept
    int fp_batch_wait(fp_batch_job *job, int64_t timeout_ns, uint32_t *state_out) noexcept
    int fp_batch_cancel(fp_batch *b, fp_batch_job *job, uint32_t *state_out) noexcept
    fp_batch_job *fp_batch_take(fp_batch *b, uint32_t max) noexcept
    void fp_batch_done(fp_batch_job *taken) noexcept
    int fp_batch_step_down(fp_batch *b) noexcept
    int fp_batch_gather(fp_batch *b, uint32_t want, int64_t timeout_ns) noexcept
    uint32_t fp_batch_queued(fp_batch *b) noexcept


cdef extern from "fp_notify.h" nogil:
    enum:
        FP_NOTIFY_OK
        FP_NOTIFY_TIMEOUT
        FP_NOTIFY_ERROR
        FP_NOTIFY_EINVAL

    ctypedef struct fp_notify:
        pass

    void fp_notify_init(fp_notify *n) noexcept
    int fp_notify_post(fp_notify *n, uint32_t bits) noexcept
    int fp_notify_wait(fp_notify *n, int64_t timeout_ns, uint32_t *bits_out) noexcept


cdef extern from "fp_claim.h" nogil:
    enum:
        FP_CLAIM_FREE
        FP_CLAIM_CALL
        FP_CLAIM_SWEEP
        FP_CLAIM_SWEEP_WAITED

    uint32_t fp_claim_call(fp_atomic_u32 *word) noexcept
    int fp_claim_sweep(fp_atomic_u32 *word) noexcept
    void fp_claim_release_sweep(fp_atomic_u32 *word) noexcept


cdef extern from "fp_atomic.h" nogil:
    # _Atomic uint64_t in C: only ever touch it through these functions.
    ctypedef uint64_t fp_atomic_u64

    void fp_counter_init(fp_atomic_u64 *c) noexcept
    void fp_counter_add(fp_atomic_u64 *c, uint64_t n) noexcept
    uint64_t fp_counter_get(const fp_atomic_u64 *c) noexcept
    void fp_version_bump(fp_atomic_u64 *v) noexcept
    uint64_t fp_version_get(const fp_atomic_u64 *v) noexcept
    void fp_flag_store(fp_atomic_u32 *f, uint32_t value) noexcept
    uint32_t fp_flag_load(const fp_atomic_u32 *f) noexcept
    uint32_t fp_flag_exchange(fp_atomic_u32 *f, uint32_t value) noexcept
    void fp_flag_store_fenced(fp_atomic_u32 *f, uint32_t value) noexcept

    ctypedef struct fp_slot_counters:
        pass
    fp_slot_counters *fp_slot_counters_new(uint32_t nslots) noexcept
    void fp_slot_counters_free(fp_slot_counters *c) noexcept
    void fp_slot_counter_add(fp_slot_counters *c, uint32_t slot, uint32_t kind,
                             uint64_t n) noexcept
    uint64_t fp_slot_counter_sum(const fp_slot_counters *c, uint32_t kind) noexcept


cdef extern from "fp_xlock.h" nogil:
    enum:
        FP_XLOCK_OK
        FP_XLOCK_TIMEOUT
        FP_XLOCK_ERROR
        FP_XLOCK_UNSUPPORTED
        FP_XLOCK_REFUSED
        FP_XLOCK_STALE

    ctypedef struct fp_xlock:
        pass

    int fp_xlock_open(const char *path, unsigned int mode, int64_t uid, int64_t gid,
                      fp_xlock **out) noexcept
    int fp_xlock_acquire(fp_xlock *lock, int64_t timeout_ns) noexcept
    int fp_xlock_release(fp_xlock *lock) noexcept
    int fp_xlock_hand_over(fp_xlock *lock) noexcept
    uint64_t fp_xlock_takeovers(const fp_xlock *lock) noexcept
    void fp_xlock_close(fp_xlock *lock) noexcept
    void fp_xlock_forget_after_fork(fp_xlock *lock) noexcept


cdef extern from "fp_fencelock.h" nogil:
    enum:
        FP_FENCELOCK_OK
        FP_FENCELOCK_TIMEOUT
        FP_FENCELOCK_ERROR
        FP_FENCELOCK_UNSUPPORTED
        FP_SHM_WRITE_LOCK_OFFSET

    int fp_fencelock_acquire(const char *path, int64_t offset, int64_t timeout_ns,
                             int *fd_out) noexcept
    int fp_fencelock_release(int fd, int64_t offset) noexcept


cdef extern from "fp_dl.h" nogil:
    enum:
        FP_DL_DIFFERENT
        FP_DL_SAME
        FP_DL_UNKNOWN

    int fp_dl_same_object(const void *a, const void *b) noexcept
    int fp_dl_same_symbol(const char *path, const char *symbol, const void *ours) noexcept


cdef extern from "fp_async.h" nogil:
    ctypedef struct fp_cq_item:
        fp_cq_item *next
        uint64_t token

    ctypedef struct fp_cq:
        pass

    ctypedef struct fp_async_waiter:
        fp_waiter waiter
        fp_cq_item item
        fp_cq *cq

    fp_cq *fp_cq_new() noexcept
    void fp_cq_free(fp_cq *q) noexcept
    int fp_cq_fd(const fp_cq *q) noexcept
    int fp_cq_post(fp_cq *q, fp_cq_item *item) noexcept
    fp_cq_item *fp_cq_take_all(fp_cq *q) noexcept
    int fp_cq_signalled(fp_cq *q) noexcept
    void fp_async_waiter_init(fp_async_waiter *w, fp_cq *cq, uint64_t token) noexcept
    int64_t fp_monotonic_ns() noexcept
