/*
 * stress_slots.c - unit and stress checks for csrc/fp_ring, fp_park and
 * fp_slots.  Meant to run under ThreadSanitizer (see
 * tests/test_c_stress.py), also fine as a plain -O2 build.
 *
 *   build: cc -std=c11 -fsanitize=thread -O1 -g -pthread -Icsrc \
 *             csrc/fp_ring.c csrc/fp_park.c csrc/fp_slots.c \
 *             tests/c/stress_slots.c -o stress_slots
 *          (add -DFP_PARK_FORCE_CONDVAR for the non-futex fallback)
 *   usage: stress_slots [scale]      (or env FP_STRESS_SCALE; default 1.0)
 *
 * `scale` multiplies every operation count.  Any violated invariant prints
 * "VIOLATION: ..." on stderr and exits 1; a phase that stops making
 * progress (deadlock / lost wake-up) is caught by a watchdog, exit 3.
 *
 * Slot-protected data (payload[]) is written with PLAIN stores and the
 * per-slot owner flags use RELAXED atomics on purpose: the only
 * happens-before edges between successive holders then come from
 * fp_ring / fp_slots, so a missing release/acquire there shows up as a
 * ThreadSanitizer data race report.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fp_park.h"
#include "fp_ring.h"
#include "fp_slots.h"

/* ------------------------------------------------------------------ */
/* infrastructure                                                      */
/* ------------------------------------------------------------------ */

static double g_scale = 1.0;
static const char *g_phase = "init";
static _Atomic uint64_t g_progress;
static _Atomic int g_done;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "VIOLATION [%s]: ", g_phase);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    _exit(1);
}

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond))                                                       \
            fail(__VA_ARGS__);                                             \
    } while (0)

static void tick(void)
{
    atomic_fetch_add_explicit(&g_progress, 1, memory_order_relaxed);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint64_t scaled(uint64_t base)
{
    double v = (double)base * g_scale;
    return v < 1.0 ? 1 : (uint64_t)v;
}

/* xorshift64*: cheap per-thread randomness, no shared state */
static uint64_t rnd(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * UINT64_C(2685821657736338717);
}

static void start_threads(pthread_t *t, int n, void *(*fn)(void *), void *args,
                          size_t argsize)
{
    for (int i = 0; i < n; i++) {
        int e = pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * argsize);
        CHECK(e == 0, "pthread_create failed: %s", strerror(e));
    }
}

static void join_threads(pthread_t *t, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* A stall of this long with zero progress means a lost wake-up or a
 * deadlock (TSan slows things down ~10x, hence generous). */
#define STALL_LIMIT_S 30

static void *watchdog(void *arg)
{
    (void)arg;
    uint64_t last = atomic_load(&g_progress);
    int idle = 0;
    while (!atomic_load(&g_done)) {
        sleep_ns(100 * 1000000LL);
        uint64_t cur = atomic_load(&g_progress);
        if (cur != last) {
            last = cur;
            idle = 0;
        } else if (++idle >= STALL_LIMIT_S * 10) {
            fprintf(stderr,
                    "VIOLATION [%s]: no progress for %d s: deadlock or lost "
                    "wake-up\n", g_phase, STALL_LIMIT_S);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* ring: single-threaded semantics                                     */
/* ------------------------------------------------------------------ */

static void ring_unit(void)
{
    g_phase = "ring_unit";
    CHECK(fp_ring_new(0) == NULL, "capacity 0 accepted");
    CHECK(fp_ring_new(FP_RING_MAX_CAPACITY + 1u) == NULL, "oversized capacity accepted");

    static const uint32_t req[] = {1, 2, 3, 5, 8, 9, 100};
    static const uint32_t want[] = {2, 2, 4, 8, 8, 16, 128};
    for (size_t k = 0; k < sizeof req / sizeof req[0]; k++) {
        fp_ring *r = fp_ring_new(req[k]);
        CHECK(r != NULL, "fp_ring_new(%u) failed", req[k]);
        uint32_t cap = fp_ring_capacity(r);
        CHECK(cap == want[k], "capacity %u rounded to %u, want %u", req[k], cap, want[k]);
        uint32_t v;
        CHECK(fp_ring_pop(r, &v) == FP_RING_EMPTY, "new ring not empty");
        /* many laps so sequence numbers wrap around the cell array */
        for (uint32_t lap = 0; lap < 50; lap++) {
            for (uint32_t i = 0; i < cap; i++)
                CHECK(fp_ring_push(r, lap * 1000 + i) == FP_RING_OK, "push %u/%u failed", i, cap);
            CHECK(fp_ring_push(r, 7) == FP_RING_FULL, "push past capacity %u succeeded", cap);
            CHECK(fp_ring_size(r) == cap, "size %u != cap %u", fp_ring_size(r), cap);
            for (uint32_t i = 0; i < cap; i++) {
                CHECK(fp_ring_pop(r, &v) == FP_RING_OK, "pop %u failed", i);
                CHECK(v == lap * 1000 + i, "FIFO broken: got %u want %u", v, lap * 1000 + i);
            }
            CHECK(fp_ring_pop(r, &v) == FP_RING_EMPTY, "drained ring not empty");
            CHECK(fp_ring_size(r) == 0, "size of empty ring %u", fp_ring_size(r));
            /* partial fill shifts the phase of the next lap */
            CHECK(fp_ring_push(r, 1) == FP_RING_OK && fp_ring_pop(r, &v) == FP_RING_OK && v == 1,
                  "single push/pop failed");
        }
        fp_ring_free(r);
    }
    fp_ring *r = fp_ring_new(4);
    CHECK(r != NULL, "fp_ring_new(4)");
    uint32_t v;
    CHECK(fp_ring_push(r, FP_RING_MAX_VALUE + 1u) == FP_RING_EINVAL, "oversized value accepted");
    CHECK(fp_ring_push(r, FP_RING_MAX_VALUE) == FP_RING_OK, "max value rejected");
    CHECK(fp_ring_pop(r, &v) == FP_RING_OK && v == FP_RING_MAX_VALUE, "max value mangled");
    fp_ring_free(r);
    fp_ring_free(NULL);
}

/* ------------------------------------------------------------------ */
/* ring: MPMC unique tokens                                            */
/* ------------------------------------------------------------------ */

#define TOK_PRODUCERS 3
#define TOK_CONSUMERS 3

static struct {
    fp_ring *ring;
    uint32_t per_producer;
    _Atomic uint8_t *seen; /* [producer][seq] */
    _Atomic uint64_t consumed;
    _Atomic uint64_t full_hits, empty_hits;
} tk;

typedef struct { int id; } targ;

static void *tok_producer(void *arg)
{
    int p = ((targ *)arg)->id;
    uint64_t full = 0;
    for (uint32_t i = 0; i < tk.per_producer; i++) {
        uint32_t tok = (uint32_t)p * tk.per_producer + i; /* < 2^24 */
        int rc;
        while ((rc = fp_ring_push(tk.ring, tok)) == FP_RING_FULL) {
            full++;
            sched_yield();
        }
        CHECK(rc == FP_RING_OK, "push returned %d", rc);
        if ((i & 1023) == 0)
            tick();
    }
    atomic_fetch_add(&tk.full_hits, full);
    return NULL;
}

static void *tok_consumer(void *arg)
{
    (void)arg;
    int64_t last[TOK_PRODUCERS];
    for (int p = 0; p < TOK_PRODUCERS; p++)
        last[p] = -1;
    uint64_t total = (uint64_t)tk.per_producer * TOK_PRODUCERS;
    uint64_t empty = 0;
    for (;;) {
        uint32_t tok;
        if (fp_ring_pop(tk.ring, &tok) != FP_RING_OK) {
            if (atomic_load(&tk.consumed) >= total)
                break;
            empty++;
            sched_yield();
            continue;
        }
        uint32_t p = tok / tk.per_producer, seq = tok % tk.per_producer;
        CHECK(p < TOK_PRODUCERS && seq < tk.per_producer, "garbage token %#x", tok);
        CHECK((int64_t)seq > last[p], "per-producer order broken: producer %u seq %u after %" PRId64,
              p, seq, last[p]);
        last[p] = seq;
        uint8_t prev = atomic_exchange_explicit(&tk.seen[(size_t)p * tk.per_producer + seq], 1,
                                                memory_order_relaxed);
        CHECK(prev == 0, "token %#x popped twice", tok);
        atomic_fetch_add(&tk.consumed, 1);
    }
    atomic_fetch_add(&tk.empty_hits, empty);
    return NULL;
}

static void ring_tokens(void)
{
    g_phase = "ring_tokens";
    uint64_t pp = scaled(150000), maxpp = (FP_RING_MAX_VALUE + 1u) / TOK_PRODUCERS;
    tk.per_producer = (uint32_t)(pp > maxpp ? maxpp : pp);
    tk.ring = fp_ring_new(16); /* small: FULL and EMPTY both happen a lot */
    size_t n = (size_t)tk.per_producer * TOK_PRODUCERS;
    tk.seen = calloc(n, sizeof *tk.seen);
    CHECK(tk.ring && tk.seen, "allocation failed");
    atomic_store(&tk.consumed, 0);

    pthread_t th[TOK_PRODUCERS + TOK_CONSUMERS];
    targ args[TOK_PRODUCERS + TOK_CONSUMERS];
    for (int i = 0; i < TOK_PRODUCERS + TOK_CONSUMERS; i++)
        args[i].id = i < TOK_PRODUCERS ? i : i - TOK_PRODUCERS;
    int64_t t0 = now_ns();
    start_threads(th, TOK_PRODUCERS, tok_producer, args, sizeof(targ));
    start_threads(th + TOK_PRODUCERS, TOK_CONSUMERS, tok_consumer, args + TOK_PRODUCERS, sizeof(targ));
    join_threads(th, TOK_PRODUCERS + TOK_CONSUMERS);

    for (size_t i = 0; i < n; i++)
        CHECK(atomic_load(&tk.seen[i]) == 1, "token %zu lost", i);
    uint32_t v;
    CHECK(fp_ring_pop(tk.ring, &v) == FP_RING_EMPTY, "ring not empty at end");
    printf("ring_tokens: %zu tokens through cap-16 ring, %d producers / %d consumers, "
           "full %" PRIu64 " empty %" PRIu64 ", %.2f s\n",
           n, TOK_PRODUCERS, TOK_CONSUMERS, atomic_load(&tk.full_hits),
           atomic_load(&tk.empty_hits), (double)(now_ns() - t0) / 1e9);
    free(tk.seen);
    fp_ring_free(tk.ring);
}

/* ------------------------------------------------------------------ */
/* ring: fixed set of values circulating (how fp_slots uses it)        */
/* ------------------------------------------------------------------ */

#define CIRC_THREADS 6
#define CIRC_VALUES 8

static struct {
    fp_ring *ring;
    uint64_t iters;
    _Atomic uint32_t owner[CIRC_VALUES];
    uint64_t payload[CIRC_VALUES]; /* plain: guarded only by the ring */
    _Atomic uint64_t holds;
} rc;

static void *circ_worker(void *arg)
{
    uint32_t me = (uint32_t)((targ *)arg)->id + 1;
    uint64_t holds = 0;
    for (uint64_t i = 0; i < rc.iters; i++) {
        uint32_t v;
        if (fp_ring_pop(rc.ring, &v) != FP_RING_OK)
            continue; /* all values held by others right now */
        CHECK(v < CIRC_VALUES, "garbage value %u", v);
        uint32_t prev = atomic_exchange_explicit(&rc.owner[v], me, memory_order_relaxed);
        CHECK(prev == 0, "value %u popped while held by thread %u", v, prev);
        rc.payload[v]++;
        holds++;
        prev = atomic_exchange_explicit(&rc.owner[v], 0, memory_order_relaxed);
        CHECK(prev == me, "value %u owner changed under us", v);
        CHECK(fp_ring_push(rc.ring, v) == FP_RING_OK, "push returned FULL with only %d values",
              CIRC_VALUES);
        if ((i & 1023) == 0)
            tick();
    }
    atomic_fetch_add(&rc.holds, holds);
    return NULL;
}

static void ring_circulation(void)
{
    g_phase = "ring_circulation";
    rc.ring = fp_ring_new(CIRC_VALUES); /* exactly full: FULL must never occur */
    CHECK(rc.ring != NULL, "allocation failed");
    for (uint32_t i = 0; i < CIRC_VALUES; i++)
        CHECK(fp_ring_push(rc.ring, i) == FP_RING_OK, "initial push");
    rc.iters = scaled(250000);
    pthread_t th[CIRC_THREADS];
    targ args[CIRC_THREADS];
    for (int i = 0; i < CIRC_THREADS; i++)
        args[i].id = i;
    int64_t t0 = now_ns();
    start_threads(th, CIRC_THREADS, circ_worker, args, sizeof(targ));
    join_threads(th, CIRC_THREADS);

    uint8_t got[CIRC_VALUES] = {0};
    uint32_t v;
    uint64_t sum = 0;
    for (int i = 0; i < CIRC_VALUES; i++) {
        CHECK(fp_ring_pop(rc.ring, &v) == FP_RING_OK, "value lost: only %d left", i);
        CHECK(v < CIRC_VALUES && !got[v], "value %u duplicated", v);
        got[v] = 1;
        sum += rc.payload[v];
    }
    CHECK(fp_ring_pop(rc.ring, &v) == FP_RING_EMPTY, "extra value %u in ring", v);
    CHECK(sum == atomic_load(&rc.holds), "payload %" PRIu64 " != holds %" PRIu64, sum,
          atomic_load(&rc.holds));
    printf("ring_circulation: %" PRIu64 " pop/push pairs, %d threads, %d values, %.2f s\n",
           atomic_load(&rc.holds), CIRC_THREADS, CIRC_VALUES, (double)(now_ns() - t0) / 1e9);
    fp_ring_free(rc.ring);
}

/* ------------------------------------------------------------------ */
/* park                                                                */
/* ------------------------------------------------------------------ */

static fp_atomic_u32 pk_word;
static _Atomic int pk_result[4];
static _Atomic int pk_started;

static void *pk_waiter_forever(void *arg)
{
    int i = ((targ *)arg)->id;
    atomic_fetch_add(&pk_started, 1);
    pk_result[i] = fp_park_wait(&pk_word, 0, -1) + 100;
    return NULL;
}

static void *pk_waiter_timed(void *arg)
{
    int i = ((targ *)arg)->id;
    atomic_fetch_add(&pk_started, 1);
    pk_result[i] = fp_park_wait(&pk_word, 0, 200 * 1000000LL) + 100;
    return NULL;
}

/* n (at most 4) threads run waiter on pk_word == 0; once all have started and had time to
 * reach the kernel / condvar, pk_word becomes `word` (0: unchanged, so the wake is spurious)
 * and wake(&pk_word) is called; returns when they are joined, their results in pk_result. */
static void pk_round(int n, void *(*waiter)(void *), uint32_t word,
                     void (*wake)(fp_atomic_u32 *))
{
    targ args[4] = {{0}, {1}, {2}, {3}};
    pthread_t th[4];
    atomic_store(&pk_word, 0);
    atomic_store(&pk_started, 0);
    for (int i = 0; i < n; i++)
        atomic_store(&pk_result[i], 0);
    start_threads(th, n, waiter, args, sizeof(targ));
    while (atomic_load(&pk_started) < n)
        sched_yield();
    sleep_ns(5 * 1000000LL);
    atomic_store(&pk_word, word);
    wake(&pk_word);
    join_threads(th, n);
}

static void park_unit(void)
{
    g_phase = "park_unit";
    fp_atomic_u32 w;
    atomic_init(&w, 5);
    CHECK(fp_park_wait(&w, 4, -1) == FP_PARK_OK, "changed word did not return at once");
    CHECK(fp_park_wait(&w, 5, 0) == FP_PARK_TIMEOUT, "timeout 0 did not time out");

    int64_t t0 = now_ns();
    CHECK(fp_park_wait(&w, 5, 20 * 1000000LL) == FP_PARK_TIMEOUT, "20 ms wait did not time out");
    int64_t el = now_ns() - t0;
    CHECK(el >= 20 * 1000000LL, "woke after %" PRId64 " ns, before the 20 ms deadline", el);
    CHECK(el < 5 * 1000000000LL, "20 ms wait took %" PRId64 " ns", el);

    /* wake_one after a change releases a forever-waiter */
    pk_round(1, pk_waiter_forever, 1, fp_park_wake_one);
    CHECK(atomic_load(&pk_result[0]) == 100 + FP_PARK_OK, "wake_one: result %d",
          atomic_load(&pk_result[0]) - 100);

    /* a wake without a change is spurious: timed waiters keep waiting */
    pk_round(2, pk_waiter_timed, 0, fp_park_wake_all);
    for (int i = 0; i < 2; i++)
        CHECK(atomic_load(&pk_result[i]) == 100 + FP_PARK_TIMEOUT,
              "wake without change returned %d, expected timeout", atomic_load(&pk_result[i]) - 100);

    /* wake_all releases every forever-waiter */
    pk_round(4, pk_waiter_forever, 2, fp_park_wake_all);
    for (int i = 0; i < 4; i++)
        CHECK(atomic_load(&pk_result[i]) == 100 + FP_PARK_OK, "wake_all: waiter %d result %d", i,
              atomic_load(&pk_result[i]) - 100);
    tick();
    printf("park_unit: ok\n");
}

/* ------------------------------------------------------------------ */
/* slots: API edge cases                                               */
/* ------------------------------------------------------------------ */

static void never_called_wake(fp_waiter *w)
{
    (void)w;
    fail("wake callback called unexpectedly");
}

/* The three orders: strict FIFO, hand-off to anyone who waited 1 ns (so
 * every release with a sync waiter grants it directly, like strict), and
 * barging with a bound no test reaches. */
#define BARGING_NS (10 * 1000000000LL)
static const int64_t ORDERS[] = {0, 1, BARGING_NS};

static void slots_unit(void)
{
    g_phase = "slots_unit";
    CHECK(fp_slots_new(0, 0) == NULL, "nslots 0 accepted");
    CHECK(fp_slots_new(FP_SLOTS_MAX + 1u, 0) == NULL, "nslots too big accepted");
    CHECK(fp_slots_new(1, -1) == NULL, "negative fifo_after accepted");
    for (int mode = 0; mode < 3; mode++) {
        int barging = ORDERS[mode] == BARGING_NS;
        fp_slots *s = fp_slots_new(2, ORDERS[mode]);
        CHECK(s != NULL, "fp_slots_new failed");
        CHECK(fp_slots_capacity(s) == 2 && fp_slots_free_count(s) == 2, "bad initial counts");
        uint32_t a, b, c;
        CHECK(fp_slots_try_acquire(s, &a) == FP_SLOTS_OK, "acquire 1");
        fp_waiter w;
        fp_waiter_init(&w, NULL, NULL);
        CHECK(fp_waiter_state(&w) == FP_WAITER_IDLE, "init state");
        CHECK(fp_slots_wait(s, &w, 0) == FP_SLOTS_EINVAL, "wait on IDLE waiter accepted");
        CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_OK, "enqueue with a free slot must grant");
        CHECK(fp_waiter_state(&w) == FP_WAITER_GRANTED && w.slot != a && w.slot < 2, "immediate grant");
        b = w.slot;
        CHECK(fp_slots_wait(s, &w, 0) == FP_SLOTS_OK, "wait on granted waiter");
        CHECK(fp_slots_try_acquire(s, &c) == FP_SLOTS_EMPTY, "third acquire succeeded");
        /* queue, time out */
        CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
        CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_EINVAL, "double enqueue accepted");
        CHECK(fp_slots_waiting(s) == 1, "waiting count %u", fp_slots_waiting(s));
        CHECK(fp_slots_wait(s, &w, 1000) == FP_SLOTS_TIMEOUT, "wait should time out");
        CHECK(fp_waiter_state(&w) == FP_WAITER_CANCELLED && fp_slots_waiting(s) == 0, "after timeout");
        if (barging) {
            /* a fresh waiter is nudged, not handed the slot: a running thread
             * takes it first, and the waiter, still queued, times out */
            CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
            CHECK(fp_slots_release(s, a) == FP_SLOTS_OK, "release");
            CHECK(fp_waiter_state(&w) == FP_WAITER_WAITING && fp_slots_free_count(s) == 1,
                  "barging: the slot must go to the ring");
            CHECK(fp_slots_try_acquire(s, &c) == FP_SLOTS_OK && c == a, "barging: take it first");
            CHECK(fp_slots_wait(s, &w, 1000) == FP_SLOTS_TIMEOUT, "passed-over waiter times out");
            /* ... and a nudged waiter takes the slot itself */
            CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
            CHECK(fp_slots_release(s, a) == FP_SLOTS_OK, "release");
            CHECK(fp_slots_wait(s, &w, -1) == FP_SLOTS_OK && w.slot == a, "nudged waiter takes it");
            CHECK(fp_waiter_state(&w) == FP_WAITER_GRANTED && fp_slots_waiting(s) == 0,
                  "self-granted waiter left the queue");
            /* a free slot beside a nudged waiter, then strict mode: the waiter is handed
             * the slot, nobody can take it first any more */
            CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
            CHECK(fp_slots_release(s, a) == FP_SLOTS_OK, "release");
            CHECK(fp_slots_make_strict(s) == FP_SLOTS_OK, "make_strict");
            CHECK(fp_waiter_state(&w) == FP_WAITER_GRANTED && w.slot == a &&
                  fp_slots_free_count(s) == 0, "make_strict must grant the waiter");
            CHECK(fp_slots_wait(s, &w, 0) == FP_SLOTS_OK, "wait after the grant");
            CHECK(fp_slots_make_strict(NULL) == FP_SLOTS_EINVAL, "NULL accepted");
        } else {
            /* queue, release hands over directly (sync: wake NULL) */
            CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
            CHECK(fp_slots_release(s, a) == FP_SLOTS_OK, "release");
            CHECK(fp_waiter_state(&w) == FP_WAITER_GRANTED && w.slot == a, "direct hand-off");
            CHECK(fp_slots_try_acquire(s, &c) == FP_SLOTS_EMPTY, "took a handed-off slot");
            CHECK(fp_slots_wait(s, &w, -1) == FP_SLOTS_OK, "wait after grant");
        }
        /* queue, cancel while waiting, cancel after grant (async: always FIFO) */
        CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
        CHECK(fp_slots_cancel(s, &w, &c) == FP_SLOTS_CANCELLED, "cancel waiting");
        CHECK(fp_slots_cancel(s, &w, &c) == FP_SLOTS_EINVAL, "cancel cancelled accepted");
        if (!barging) {
            CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "enqueue should queue");
            CHECK(fp_slots_release(s, b) == FP_SLOTS_OK, "release");
            c = UINT32_MAX;
            CHECK(fp_slots_cancel(s, &w, &c) == FP_SLOTS_OK && c == b,
                  "cancel after grant must return slot");
        }
        /* bad arguments */
        CHECK(fp_slots_release(s, 2) == FP_SLOTS_EINVAL, "out-of-range release accepted");
        CHECK(fp_slots_release(s, a) == FP_SLOTS_OK && fp_slots_release(s, b) == FP_SLOTS_OK, "release both");
        CHECK(fp_slots_free_count(s) == 2, "free count %u", fp_slots_free_count(s));
        fp_waiter aw;
        fp_waiter_init(&aw, never_called_wake, NULL);
        CHECK(fp_slots_wait(s, &aw, 0) == FP_SLOTS_EINVAL, "wait with a wake callback accepted");
        CHECK(fp_slots_try_acquire(NULL, &a) == FP_SLOTS_EINVAL, "NULL accepted");
        fp_slots_free(s);
    }
    fp_slots_free(NULL);
    printf("slots_unit: ok\n");
}

/* ------------------------------------------------------------------ */
/* slots: a waiter woken for nothing turns quiet                        */
/* ------------------------------------------------------------------ */

static struct {
    fp_slots *s;
    fp_waiter w;
    _Atomic int rc;
} quiet;

/* Waits for the slot once and gives it back. */
static void *quiet_waiter(void *arg)
{
    (void)arg;
    CHECK(fp_slots_enqueue(quiet.s, &quiet.w) == FP_SLOTS_QUEUED, "enqueue should queue");
    int rc = fp_slots_wait(quiet.s, &quiet.w, -1);
    if (rc == FP_SLOTS_OK)
        CHECK(fp_slots_release(quiet.s, quiet.w.slot) == FP_SLOTS_OK, "release");
    atomic_store(&quiet.rc, rc);
    return NULL;
}

static uint32_t quiet_nudges(void)
{
    return atomic_load(&quiet.w.state) / FP_WAITER_NUDGE;
}

/* Returns the slot and takes it back, holding it 10 us each time (a short
 * transaction); 0 if the waiter took it in between. */
static int quiet_cycles(uint32_t *a, int n)
{
    for (int i = 0; i < n; i++) {
        CHECK(fp_slots_release(quiet.s, *a) == FP_SLOTS_OK, "release");
        if (fp_slots_try_acquire(quiet.s, a) != FP_SLOTS_OK)
            return 0;
        for (int64_t held = now_ns(); now_ns() - held < 10000;) {
        }
    }
    return 1;
}

/* A waiter that was nudged and found the slot gone (taken back by its
 * releaser) turns quiet: a burst of 200 releases, each followed at once by the
 * releaser taking the slot back, wakes it a few times at most (once per
 * spell: by then spells last 1 ms), not once each. When the releaser stops,
 * the waiter gets the slot. A round in which the waiter wins a look (the
 * slot is free for a moment at each release) tells nothing and is run again. */
static void slots_quiet(void)
{
    g_phase = "slots_quiet";
    int told = 0;
    for (int round = 0; round < 20 && !told; round++) {
        uint32_t a;
        quiet.s = fp_slots_new(1, BARGING_NS);
        CHECK(quiet.s != NULL, "fp_slots_new failed");
        fp_waiter_init(&quiet.w, NULL, NULL);
        atomic_store(&quiet.rc, -100);
        CHECK(fp_slots_try_acquire(quiet.s, &a) == FP_SLOTS_OK, "acquire");
        pthread_t t;
        start_threads(&t, 1, quiet_waiter, NULL, 0);
        while (fp_slots_waiting(quiet.s) == 0)
            sleep_ns(100000);
        sleep_ns(1000000); /* asleep by now */
        tick();
        uint32_t burst = 0;
        int measured = 0;
        int held = quiet_cycles(&a, 1); /* the nudge it finds nothing for */
        if (held && atomic_load(&quiet.rc) == -100) { /* still waiting: it lost that race */
            sleep_ns(3000000); /* holding: its spells grow to 1 ms */
            uint32_t before = quiet_nudges();
            held = measured = quiet_cycles(&a, 200);
            burst = quiet_nudges() - before;
        }
        if (held)
            CHECK(fp_slots_release(quiet.s, a) == FP_SLOTS_OK, "release");
        pthread_join(t, NULL); /* returns only once the waiter has seen the free slot */
        CHECK(atomic_load(&quiet.rc) == FP_SLOTS_OK, "the waiter never got the slot: %d",
              atomic_load(&quiet.rc));
        CHECK(fp_slots_free_count(quiet.s) == 1 && fp_slots_waiting(quiet.s) == 0,
              "slot lost");
        fp_slots_free(quiet.s);
        if (measured) {
            CHECK(burst <= 16, "200 releases woke a quiet waiter %u times", burst);
            printf("slots_quiet: 200 releases woke the quiet waiter %u times (round %d)\n",
                   burst, round + 1);
            told = 1;
        }
    }
    CHECK(told, "the waiter won a look in every round: nothing measured");
}

/* ------------------------------------------------------------------ */
/* slots: stress (conservation, exclusivity, timeouts, async cancel)   */
/* ------------------------------------------------------------------ */

#define MAX_SLOTS 8
#define MAX_THREADS 16

/* What run_threads hands each thread: the phase's shared context, and the thread's index. */
typedef struct {
    void *ctx;
    int id;
} thread_arg;

/* Run fn on nthreads threads (each given a thread_arg) and join them; return the seconds. */
static double run_threads(int nthreads, void *(*fn)(void *), void *ctx)
{
    pthread_t th[MAX_THREADS];
    thread_arg args[MAX_THREADS];
    CHECK(nthreads <= MAX_THREADS, "%d threads, at most %d", nthreads, MAX_THREADS);
    for (int i = 0; i < nthreads; i++) {
        args[i].ctx = ctx;
        args[i].id = i;
    }
    int64_t t0 = now_ns();
    start_threads(th, nthreads, fn, args, sizeof(thread_arg));
    join_threads(th, nthreads);
    return (double)(now_ns() - t0) / 1e9;
}

typedef struct async_node {
    fp_waiter w;
    fp_atomic_u32 notified; /* bumped by the wake callback */
} async_node;

static _Atomic uint64_t g_wakes; /* wake callback invocations */

/* The asyncio facade's stand-in: must not block, must not touch the node
 * after signalling its owner (here: after the fp_park_wake_one address
 * use, which is allowed to be stale). */
static void async_wake(fp_waiter *w)
{
    async_node *n = w->user;
    CHECK(fp_waiter_state(w) == FP_WAITER_GRANTED, "wake called on a non-granted waiter");
    atomic_fetch_add_explicit(&g_wakes, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n->notified, 1, memory_order_release);
    fp_park_wake_one(&n->notified);
}

typedef struct {
    fp_slots *s;
    uint32_t nslots;
    int strict;
    uint64_t iters;
    int fifo;                    /* 1: single-slot FIFO ticket check */
    int aside;                   /* 1: give slots back with fp_slots_set_aside, mostly */
    pthread_mutex_t ticket_mu;   /* serialises "request + ticket" in fifo mode */
    uint64_t next_ticket;        /* under ticket_mu */
    uint64_t last_any;           /* plain: guarded by holding the only slot */
    _Atomic uint32_t owner[MAX_SLOTS];
    uint64_t payload[MAX_SLOTS]; /* plain: guarded by fp_slots hand-off */
    _Atomic uint64_t holds, fast, immediate, queued, timeouts, cancels, cancel_lost,
        async_grants;
} slots_ctx;

enum { VIA_FAST, VIA_IMMEDIATE, VIA_QUEUE };

static int64_t pick_timeout(uint64_t *rs)
{
    uint64_t r = rnd(rs) % 100;
    if (r < 10)
        return 0;                                 /* check only */
    if (r < 50)
        return 1000 + (int64_t)(rnd(rs) % 20000); /* 1-20 us: races the grant */
    if (r < 75)
        return 20000 + (int64_t)(rnd(rs) % 200000);
    if (r < 92)
        return 1000000;                           /* 1 ms */
    return -1;                                    /* forever: liveness */
}

static void hold_slot(slots_ctx *c, uint32_t me, uint32_t slot, int via, uint64_t ticket,
                      uint64_t *rs)
{
    CHECK(slot < c->nslots, "slot %u out of range", slot);
    uint32_t prev = atomic_exchange_explicit(&c->owner[slot], me, memory_order_relaxed);
    CHECK(prev == 0, "slot %u handed to thread %u while held by thread %u", slot, me, prev);
    c->payload[slot]++;
    if (c->fifo) {
        if (c->strict) {
            CHECK(ticket > c->last_any || c->last_any == 0,
                  "strict FIFO broken: ticket %" PRIu64 " (via %d) served after %" PRIu64,
                  ticket, via, c->last_any);
            c->last_any = ticket;
        }
        /* barging: no order to check (nudged waiters race for the ring);
         * what holds is checked by every phase: no slot handed twice or
         * lost, and (baton) no waiter left asleep beside a free slot */
    }
    /* short, variable critical section; sometimes yield to force queueing */
    uint64_t r = rnd(rs);
    if ((r & 15) == 0)
        sched_yield();
    else
        for (uint64_t i = 0, n = r % 64; i < n; i++)
            atomic_signal_fence(memory_order_seq_cst);
    prev = atomic_exchange_explicit(&c->owner[slot], 0, memory_order_relaxed);
    CHECK(prev == me, "slot %u owner changed to %u while held by %u", slot, prev, me);
    /* set-aside phases: three times in four, so slots set aside and ring slots mix */
    if (c->aside && (r >> 8) % 4 != 0)
        CHECK(fp_slots_set_aside(c->s, slot) == FP_SLOTS_OK, "set_aside(%u) failed", slot);
    else
        CHECK(fp_slots_release(c->s, slot) == FP_SLOTS_OK, "release(%u) failed", slot);
}

static void *slots_worker(void *arg)
{
    slots_ctx *c = ((thread_arg *)arg)->ctx;
    uint32_t me = (uint32_t)((thread_arg *)arg)->id + 1;
    uint64_t rs = UINT64_C(0x9E3779B97F4A7C15) * me + 1;
    uint64_t holds = 0, fast = 0, imm = 0, queued = 0, timeouts = 0, cancels = 0, lost = 0,
             agrants = 0;
    fp_waiter sw;
    fp_waiter_init(&sw, NULL, NULL);
    async_node an;
    fp_waiter_init(&an.w, async_wake, &an);
    atomic_init(&an.notified, 0);
    int async = (me % 2) == 0; /* half the threads behave like asyncio tasks */

    for (uint64_t it = 0; it < c->iters; it++) {
        if ((it & 255) == 0)
            tick();
        uint32_t slot = UINT32_MAX;
        int via = VIA_FAST;
        uint64_t ticket = 0;
        fp_waiter *w = async ? &an.w : &sw;
        int rc;

        if (async)
            CHECK(atomic_load(&an.notified) == 0, "wake delivered to a cancelled/idle waiter");

        if (c->fifo)
            pthread_mutex_lock(&c->ticket_mu);
        /* every 4th attempt goes straight to enqueue to exercise its ring
         * retry under the mutex */
        if ((rnd(&rs) & 3) != 0 && fp_slots_try_acquire(c->s, &slot) == FP_SLOTS_OK) {
            via = VIA_FAST;
            rc = FP_SLOTS_OK;
        } else {
            rc = fp_slots_enqueue(c->s, w);
            CHECK(rc == FP_SLOTS_OK || rc == FP_SLOTS_QUEUED, "enqueue returned %d", rc);
            via = rc == FP_SLOTS_OK ? VIA_IMMEDIATE : VIA_QUEUE;
            if (rc == FP_SLOTS_OK)
                slot = w->slot;
        }
        if (c->fifo)
            ticket = ++c->next_ticket;
        if (c->fifo)
            pthread_mutex_unlock(&c->ticket_mu);

        if (via == VIA_QUEUE) {
            int64_t to = pick_timeout(&rs);
            queued++;
            if (!async) {
                rc = fp_slots_wait(c->s, w, to);
                if (rc == FP_SLOTS_TIMEOUT) {
                    timeouts++;
                    CHECK(fp_waiter_state(w) == FP_WAITER_CANCELLED, "timed-out waiter not CANCELLED");
                    continue;
                }
                CHECK(rc == FP_SLOTS_OK, "fp_slots_wait returned %d", rc);
                CHECK(fp_waiter_state(w) == FP_WAITER_GRANTED, "OK but not GRANTED");
                slot = w->slot;
            } else {
                int prc = fp_park_wait(&an.notified, 0, to);
                CHECK(prc == FP_PARK_OK || prc == FP_PARK_TIMEOUT, "park returned %d", prc);
                if (prc == FP_PARK_OK) {
                    CHECK(fp_waiter_state(w) == FP_WAITER_GRANTED, "notified but not GRANTED");
                    slot = w->slot;
                    agrants++;
                } else {
                    uint32_t got = UINT32_MAX;
                    rc = fp_slots_cancel(c->s, w, &got);
                    if (rc == FP_SLOTS_CANCELLED) {
                        cancels++;
                        CHECK(fp_waiter_state(w) == FP_WAITER_CANCELLED, "cancelled waiter state");
                        continue;
                    }
                    /* lost the race against a grant: we own the slot and
                     * the wake callback is (or will be) on its way */
                    CHECK(rc == FP_SLOTS_OK && got == w->slot, "cancel returned %d", rc);
                    lost++;
                    agrants++;
                    slot = got;
                }
            }
        } else if (via == VIA_FAST) {
            fast++;
        } else {
            imm++;
        }

        hold_slot(c, me, slot, via, ticket, &rs);
        holds++;

        if (async && via == VIA_QUEUE) {
            /* grant came from a releaser: exactly one wake must arrive
             * before the node may be reused */
            CHECK(fp_park_wait(&an.notified, 0, -1) == FP_PARK_OK, "waiting for wake failed");
            uint32_t n = atomic_exchange(&an.notified, 0);
            CHECK(n == 1, "wake called %u times for one grant", n);
        }
    }
    if (async)
        CHECK(atomic_load(&an.notified) == 0, "late wake for a cancelled waiter");

    atomic_fetch_add(&c->holds, holds);
    atomic_fetch_add(&c->fast, fast);
    atomic_fetch_add(&c->immediate, imm);
    atomic_fetch_add(&c->queued, queued);
    atomic_fetch_add(&c->timeouts, timeouts);
    atomic_fetch_add(&c->cancels, cancels);
    atomic_fetch_add(&c->cancel_lost, lost);
    atomic_fetch_add(&c->async_grants, agrants);
    return NULL;
}

static void slots_stress(const char *name, uint32_t nslots, int64_t fifo_after, int fifo, int aside,
                         int nthreads, uint64_t iters)
{
    g_phase = name;
    slots_ctx *c = calloc(1, sizeof *c);
    CHECK(c != NULL, "allocation failed");
    c->s = fp_slots_new(nslots, fifo_after);
    CHECK(c->s != NULL, "fp_slots_new failed");
    c->nslots = nslots;
    c->strict = fifo_after == 0;
    c->fifo = fifo;
    c->aside = aside;
    c->iters = iters;
    pthread_mutex_init(&c->ticket_mu, NULL);
    atomic_store(&g_wakes, 0);

    double secs = run_threads(nthreads, slots_worker, c);

    /* conservation: every slot is free exactly once (set aside ones too), nobody waits */
    CHECK(fp_slots_waiting(c->s) == 0, "%u waiters left", fp_slots_waiting(c->s));
    CHECK(fp_slots_free_count(c->s) == nslots, "%u of %u slots free", fp_slots_free_count(c->s),
          nslots);
    uint8_t seen[MAX_SLOTS] = {0};
    uint64_t sum = 0;
    for (uint32_t i = 0; i < nslots; i++) {
        uint32_t slot;
        CHECK(fp_slots_try_acquire(c->s, &slot) == FP_SLOTS_OK, "slot lost: only %u of %u free", i,
              nslots);
        CHECK(slot < nslots && !seen[slot], "slot %u free twice", slot);
        seen[slot] = 1;
        sum += c->payload[slot];
    }
    uint32_t extra;
    CHECK(fp_slots_try_acquire(c->s, &extra) == FP_SLOTS_EMPTY, "extra slot %u free", extra);
    CHECK(sum == atomic_load(&c->holds), "payload %" PRIu64 " != holds %" PRIu64, sum,
          atomic_load(&c->holds));
    CHECK(atomic_load(&g_wakes) == atomic_load(&c->async_grants),
          "wake callbacks %" PRIu64 " != async grants %" PRIu64, atomic_load(&g_wakes),
          atomic_load(&c->async_grants));
    for (uint32_t i = 0; i < nslots; i++)
        CHECK(fp_slots_release(c->s, i) == FP_SLOTS_OK, "final release");

    printf("%s: %u slots %s, %d threads: %" PRIu64 " holds (fast %" PRIu64 ", immediate %" PRIu64
           ", queued %" PRIu64 "), sync timeouts %" PRIu64 ", async cancels %" PRIu64
           ", cancel-lost-to-grant %" PRIu64 ", %.2f s\n",
           name, nslots, c->strict ? "strict" : "barging", nthreads, atomic_load(&c->holds),
           atomic_load(&c->fast), atomic_load(&c->immediate), atomic_load(&c->queued),
           atomic_load(&c->timeouts), atomic_load(&c->cancels), atomic_load(&c->cancel_lost),
           secs);
    fp_slots_free(c->s);
    pthread_mutex_destroy(&c->ticket_mu);
    free(c);
}

/* ------------------------------------------------------------------ */
/* slots: slots set aside (thread affinity)                           */
/* ------------------------------------------------------------------ */

static struct {
    fp_slots *s;
    uint32_t got;
    int rc;
} steal_ctx;

/* On a thread of its own: whatever the dispenser hands a stranger. */
static void *stranger_acquire(void *arg)
{
    (void)arg;
    steal_ctx.rc = fp_slots_try_acquire(steal_ctx.s, &steal_ctx.got);
    return NULL;
}

static void *stranger_enqueue(void *arg)
{
    (void)arg;
    fp_waiter w;
    fp_waiter_init(&w, NULL, NULL);
    steal_ctx.rc = fp_slots_enqueue(steal_ctx.s, &w);
    steal_ctx.got = w.slot;
    return NULL;
}

static void slots_aside_unit(void)
{
    g_phase = "slots_aside_unit";
    uint32_t a, b, c, d;
    /* a thread gets back the slot it set aside, not the ring's oldest */
    fp_slots *s = fp_slots_new(4, BARGING_NS);
    CHECK(s != NULL, "fp_slots_new failed");
    CHECK(fp_slots_try_acquire(s, &a) == FP_SLOTS_OK && a == 0, "first slot");
    CHECK(fp_slots_set_aside(s, a) == FP_SLOTS_OK, "set aside");
    CHECK(fp_slots_free_count(s) == 4, "a slot set aside counts as free");
    for (int i = 0; i < 5; i++) {
        CHECK(fp_slots_try_acquire(s, &b) == FP_SLOTS_OK && b == a,
              "got slot %u back, not %u, set aside", b, a);
        CHECK(fp_slots_set_aside(s, b) == FP_SLOTS_OK, "set aside again");
    }
    /* double give-backs are refused */
    CHECK(fp_slots_set_aside(s, a) == FP_SLOTS_EINVAL, "set aside twice");
    CHECK(fp_slots_release(s, a) == FP_SLOTS_EINVAL, "released while set aside");
    /* a stranger takes the ring's slots first, then the one set aside */
    steal_ctx.s = s;
    for (uint32_t want = 1; want < 4; want++) {
        run_threads(1, stranger_acquire, NULL);
        CHECK(steal_ctx.rc == FP_SLOTS_OK && steal_ctx.got == want,
              "stranger got %u (rc %d), want ring slot %u", steal_ctx.got, steal_ctx.rc, want);
    }
    run_threads(1, stranger_acquire, NULL);
    CHECK(steal_ctx.rc == FP_SLOTS_OK && steal_ctx.got == a, "stranger did not take the slot set aside");
    CHECK(fp_slots_try_acquire(s, &b) == FP_SLOTS_EMPTY, "slot handed twice");
    for (uint32_t i = 0; i < 4; i++)
        CHECK(fp_slots_release(s, i) == FP_SLOTS_OK, "release %u", i);
    /* an enqueue takes a slot set aside rather than wait beside it */
    CHECK(fp_slots_try_acquire(s, &a) == FP_SLOTS_OK, "a");
    CHECK(fp_slots_try_acquire(s, &b) == FP_SLOTS_OK, "b");
    CHECK(fp_slots_try_acquire(s, &c) == FP_SLOTS_OK, "c");
    CHECK(fp_slots_try_acquire(s, &d) == FP_SLOTS_OK, "d");
    CHECK(fp_slots_set_aside(s, c) == FP_SLOTS_OK, "set c aside");
    run_threads(1, stranger_enqueue, NULL);
    CHECK(steal_ctx.rc == FP_SLOTS_OK && steal_ctx.got == c,
          "enqueue returned %d with slot %u beside slot %u set aside", steal_ctx.rc, steal_ctx.got, c);
    /* with a waiter linked, set_aside hands the slot on as a release does */
    fp_waiter w;
    fp_waiter_init(&w, NULL, NULL);
    CHECK(fp_slots_enqueue(s, &w) == FP_SLOTS_QUEUED, "queued");
    CHECK(fp_slots_set_aside(s, d) == FP_SLOTS_OK, "set aside with a waiter");
    CHECK(fp_slots_free_count(s) == 1, "set aside beside a waiter");
    CHECK(fp_slots_wait(s, &w, 0) == FP_SLOTS_OK && w.slot == d, "waiter did not get it");
    fp_slots_free(s);
    /* strict mode never sets a slot aside: it goes to the ring, anyone's */
    s = fp_slots_new(2, 0);
    CHECK(s != NULL, "fp_slots_new failed");
    CHECK(fp_slots_try_acquire(s, &a) == FP_SLOTS_OK && a == 0, "strict first slot");
    CHECK(fp_slots_set_aside(s, a) == FP_SLOTS_OK, "strict set aside");
    CHECK(fp_slots_try_acquire(s, &b) == FP_SLOTS_OK && b == 1, "strict: set aside, not put in the ring");
    fp_slots_free(s);
    /* a dispenser too large to set slots aside releases them */
    s = fp_slots_new(FP_SLOTS_ASIDE_MAX + 1, BARGING_NS);
    CHECK(s != NULL, "fp_slots_new failed");
    CHECK(fp_slots_try_acquire(s, &a) == FP_SLOTS_OK && a == 0, "large first slot");
    CHECK(fp_slots_set_aside(s, a) == FP_SLOTS_OK, "large set aside");
    CHECK(fp_slots_try_acquire(s, &b) == FP_SLOTS_OK && b == 1, "large: set aside");
    fp_slots_free(s);
    printf("slots_aside_unit: ok\n");
}

/* ------------------------------------------------------------------ */
/* slots: baton (lost wake-up detector)                                */
/* ------------------------------------------------------------------ */

/*
 * Few threads, one slot, every wait is forever.  After releasing, a thread
 * waits until SOMEONE ELSE has acquired the slot (or nobody else is left).
 * The protocol itself cannot deadlock: the thread with the latest
 * acquisition is the only one still waiting, and every other live thread
 * goes on to acquire.  So if that wait times out, the slot was released
 * while the others were parked and nobody was woken: a lost wake-up that
 * random timeouts in the other phases would silently paper over.
 */
#define BATON_TIMEOUT_NS (10 * 1000000000LL)

typedef struct {
    fp_slots *s;
    uint64_t iters;
    _Atomic uint32_t acqs;   /* acquisitions so far */
    _Atomic int active;      /* threads still running */
    fp_atomic_u32 epoch;     /* bumped on every acquisition and exit */
    int aside;               /* give the slot back with fp_slots_set_aside */
    _Atomic uint32_t owner;
    uint64_t payload;        /* plain: guarded by the slot hand-off */
} baton_ctx;

static void bump_epoch(baton_ctx *c)
{
    atomic_fetch_add(&c->epoch, 1);
    fp_park_wake_all(&c->epoch);
}

static void *baton_thread(void *arg)
{
    baton_ctx *c = ((thread_arg *)arg)->ctx;
    uint32_t me = (uint32_t)((thread_arg *)arg)->id + 1;
    int async = (me % 2) == 0;
    fp_waiter sw;
    fp_waiter_init(&sw, NULL, NULL);
    async_node an;
    fp_waiter_init(&an.w, async_wake, &an);
    atomic_init(&an.notified, 0);

    for (uint64_t it = 0; it < c->iters; it++) {
        if ((it & 255) == 0)
            tick();
        uint32_t slot;
        int queued = 0;
        if (fp_slots_try_acquire(c->s, &slot) != FP_SLOTS_OK) {
            fp_waiter *w = async ? &an.w : &sw;
            int rc = fp_slots_enqueue(c->s, w);
            CHECK(rc == FP_SLOTS_OK || rc == FP_SLOTS_QUEUED, "enqueue returned %d", rc);
            if (rc == FP_SLOTS_QUEUED) {
                queued = 1;
                if (async)
                    CHECK(fp_park_wait(&an.notified, 0, -1) == FP_PARK_OK, "async park failed");
                else
                    CHECK(fp_slots_wait(c->s, w, -1) == FP_SLOTS_OK, "forever wait failed");
                CHECK(fp_waiter_state(w) == FP_WAITER_GRANTED, "woken but not GRANTED");
            }
            slot = w->slot;
        }
        CHECK(slot == 0, "slot %u out of range", slot);
        uint32_t prev = atomic_exchange_explicit(&c->owner, me, memory_order_relaxed);
        CHECK(prev == 0, "slot handed to %u while held by %u", me, prev);
        c->payload++;
        uint32_t mine = atomic_fetch_add(&c->acqs, 1) + 1;
        bump_epoch(c);
        prev = atomic_exchange_explicit(&c->owner, 0, memory_order_relaxed);
        CHECK(prev == me, "owner changed under us");
        if (c->aside)
            CHECK(fp_slots_set_aside(c->s, slot) == FP_SLOTS_OK, "set_aside failed");
        else
            CHECK(fp_slots_release(c->s, slot) == FP_SLOTS_OK, "release failed");
        if (async && queued) {
            CHECK(atomic_exchange(&an.notified, 0) == 1, "wake count != 1");
        }
        /* wait for a hand-off to someone else */
        for (;;) {
            uint32_t e = atomic_load(&c->epoch);
            if (atomic_load(&c->acqs) != mine || atomic_load(&c->active) <= 1)
                break;
            if (fp_park_wait(&c->epoch, e, BATON_TIMEOUT_NS) == FP_PARK_TIMEOUT &&
                atomic_load(&c->epoch) == e)
                fail("lost wake-up: slot released, %d other thread(s) active, nobody "
                     "acquired it for %lld s (waiting=%u free=%u)",
                     atomic_load(&c->active) - 1, BATON_TIMEOUT_NS / 1000000000LL,
                     fp_slots_waiting(c->s), fp_slots_free_count(c->s));
        }
    }
    atomic_fetch_sub(&c->active, 1);
    bump_epoch(c);
    return NULL;
}

static void slots_baton(const char *name, int64_t fifo_after, int aside, int nthreads,
                        uint64_t iters)
{
    g_phase = name;
    baton_ctx *c = calloc(1, sizeof *c);
    CHECK(c != NULL, "allocation failed");
    c->aside = aside;
    c->s = fp_slots_new(1, fifo_after);
    CHECK(c->s != NULL, "fp_slots_new failed");
    c->iters = iters;
    atomic_store(&c->active, nthreads);
    double secs = run_threads(nthreads, baton_thread, c);
    uint32_t slot;
    CHECK(fp_slots_waiting(c->s) == 0, "waiters left");
    CHECK(fp_slots_try_acquire(c->s, &slot) == FP_SLOTS_OK && slot == 0, "slot lost");
    CHECK(c->payload == atomic_load(&c->acqs), "payload mismatch");
    printf("%s: 1 slot %s, %d threads, %u hand-offs, %.2f s\n", name,
           fifo_after == 0 ? "strict" : "barging", nthreads, atomic_load(&c->acqs), secs);
    fp_slots_free(c->s);
    free(c);
}

int main(int argc, char **argv)
{
    const char *sc = argc > 1 ? argv[1] : getenv("FP_STRESS_SCALE");
    if (sc != NULL && *sc != '\0') {
        char *end;
        g_scale = strtod(sc, &end);
        if (*end != '\0' || !(g_scale > 0.0)) {
            fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
#if defined(FP_PARK_FORCE_CONDVAR)
    printf("fp_park backend: condvar fallback (forced); scale %.3g\n", g_scale);
#elif defined(__linux__)
    printf("fp_park backend: futex; scale %.3g\n", g_scale);
#else
    printf("fp_park backend: condvar fallback; scale %.3g\n", g_scale);
#endif

    pthread_t wd;
    CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0, "watchdog thread");
    int64_t t0 = now_ns();

    ring_unit();
    park_unit();
    slots_unit();
    slots_quiet();
    slots_aside_unit();
    ring_tokens();
    ring_circulation();
    /* 50 us: under the sanitizers waiters both get passed over and reach
     * the bound, so both barging and the direct hand-off run */
    slots_stress("slots_readers_barging", 3, 50000, 0, 0, 8, scaled(40000));
    slots_stress("slots_readers_aside", 3, 50000, 0, 1, 8, scaled(40000));
    slots_stress("slots_readers_strict", 3, 0, 0, 0, 8, scaled(25000));
    slots_stress("slots_readers_strict_aside", 3, 0, 0, 1, 8, scaled(15000));
    slots_stress("fifo_writer_strict", 1, 0, 1, 0, 6, scaled(25000));
    slots_stress("writer_barging", 1, 50000, 0, 0, 6, scaled(15000));
    slots_stress("writer_aside", 1, 50000, 0, 1, 6, scaled(15000));
    slots_stress("writer_handoff_1ns", 1, 1, 0, 0, 6, scaled(15000));
    slots_baton("baton_barging_2", BARGING_NS, 0, 2, scaled(30000));
    slots_baton("baton_barging_3", 50000, 0, 3, scaled(20000));
    slots_baton("baton_aside_3", 50000, 1, 3, scaled(20000));
    slots_baton("baton_strict_3", 0, 0, 3, scaled(20000));

    atomic_store(&g_done, 1);
    pthread_join(wd, NULL);
    printf("all checks passed in %.2f s\n", (double)(now_ns() - t0) / 1e9);
    return 0;
}
