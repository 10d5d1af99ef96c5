/*
 * fp_park.c - see fp_park.h for the contract.
 */
#include "fp_internal.h"
#include "fp_park.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

#if defined(__linux__) && !defined(FP_PARK_FORCE_CONDVAR)
#  define FP_PARK_USE_FUTEX 1
#  include <linux/futex.h>
#  include <sys/syscall.h>
#  include <unistd.h>
#else
#  define FP_PARK_USE_FUTEX 0
#  include <pthread.h>
#endif

#define NS_PER_SEC 1000000000LL

/* Cap one sleep at an hour: keeps tv_sec small enough for a 32-bit time_t
 * and an absurd timeout_ns cannot overflow; the loop simply sleeps again. */
#define MAX_SLEEP_NS (3600LL * NS_PER_SEC)

static int now_ns(int64_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return -1;
    *out = (int64_t)ts.tv_sec * NS_PER_SEC + (int64_t)ts.tv_nsec;
    return 0;
}

static struct timespec ns_to_timespec(int64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / NS_PER_SEC);
    ts.tv_nsec = (long)(ns % NS_PER_SEC);
    return ts;
}

static int word_is(fp_atomic_u32 *word, uint32_t expected)
{
    /* acquire: when we report "changed", the writer's data is visible */
    return atomic_load_explicit(word, memory_order_acquire) == expected;
}

static int park_slow(fp_atomic_u32 *word, uint32_t expected, int timed,
                     int64_t deadline);

int fp_park_wait(fp_atomic_u32 *word, uint32_t expected, int64_t timeout_ns)
{
    if (!word_is(word, expected))
        return FP_PARK_OK;
    if (timeout_ns == 0)
        return FP_PARK_TIMEOUT;

    /* A hand-off often lands within a few hundred ns; a short bounded spin
     * saves two syscalls in that case and costs little otherwise. */
    for (int i = 0; i < FP_PARK_SPIN; i++) {
        fp_cpu_relax();
        if (!word_is(word, expected))
            return FP_PARK_OK;
    }

    int64_t deadline = 0;
    if (timeout_ns > 0) {
        int64_t now;
        if (now_ns(&now) != 0)
            return FP_PARK_ERROR;
        deadline = (now > INT64_MAX - timeout_ns) ? INT64_MAX : now + timeout_ns;
    }
    return park_slow(word, expected, timeout_ns > 0, deadline);
}

/* Current time and time left until deadline (capped at MAX_SLEEP_NS);
 * rem <= 0 means expired.  -1 if the clock cannot be read. */
static int remaining_ns(int64_t deadline, int64_t *now, int64_t *rem)
{
    if (now_ns(now) != 0)
        return -1;
    int64_t r = deadline - *now;
    *rem = r > MAX_SLEEP_NS ? MAX_SLEEP_NS : r;
    return 0;
}

#if FP_PARK_USE_FUTEX

_Static_assert(sizeof(fp_atomic_u32) == sizeof(uint32_t),
               "futex needs a plain 32-bit word");

static long futex_call(fp_atomic_u32 *word, int op, uint32_t val,
                       const struct timespec *ts)
{
    /* 32-bit targets with a 64-bit time_t need the time64 syscall, whose
     * timespec layout matches ours; everyone else uses plain futex. */
#if defined(SYS_futex_time64)
    if (sizeof(ts->tv_sec) > sizeof(long))
        return syscall(SYS_futex_time64, (void *)word, op, val, ts, NULL, 0);
#endif
#if defined(SYS_futex)
    return syscall(SYS_futex, (void *)word, op, val, ts, NULL, 0);
#else
    return syscall(SYS_futex_time64, (void *)word, op, val, ts, NULL, 0);
#endif
}

static int park_slow(fp_atomic_u32 *word, uint32_t expected, int timed,
                     int64_t deadline)
{
    for (;;) {
        if (!word_is(word, expected))
            return FP_PARK_OK;
        struct timespec ts, *tsp = NULL;
        if (timed) {
            int64_t now, rem;
            if (remaining_ns(deadline, &now, &rem) != 0)
                return FP_PARK_ERROR;
            if (rem <= 0)
                return FP_PARK_TIMEOUT;
            ts = ns_to_timespec(rem);
            tsp = &ts;
        }
        /* The kernel re-reads *word under its hash-bucket lock and only
         * sleeps if it still equals expected: a wake issued after the word
         * changed can never be missed. */
        if (futex_call(word, FUTEX_WAIT_PRIVATE, expected, tsp) == 0)
            continue; /* woken, possibly spuriously: re-check */
        switch (errno) {
        case EAGAIN:    /* word already differed */
        case EINTR:     /* signal: re-check, deadline unchanged */
        case ETIMEDOUT: /* re-check once more, then the deadline decides */
            continue;
        default:
            return FP_PARK_ERROR;
        }
    }
}

void fp_park_wake_one(fp_atomic_u32 *word)
{
    /* Failure (e.g. EFAULT on an unmapped stale address) only means there
     * is nobody to wake, which is the documented contract. */
    (void)futex_call(word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

void fp_park_wake_all(fp_atomic_u32 *word)
{
    (void)futex_call(word, FUTEX_WAKE_PRIVATE, (uint32_t)INT_MAX, NULL);
}

#else /* condition-variable fallback */

typedef struct fp_bucket {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Threads between "registered under mu" and "left".  Lets a waker skip
     * the mutex when nobody can be sleeping here; see bucket_has_waiters. */
    _Atomic uint32_t nwait;
} fp_bucket;

/* Pad each bucket so unrelated words do not false-share a mutex. */
typedef union fp_bucket_slot {
    fp_bucket b;
    char pad[(sizeof(fp_bucket) + FP_CACHE_LINE - 1) / FP_CACHE_LINE * FP_CACHE_LINE];
} fp_bucket_slot;

static fp_bucket_slot g_buckets[FP_PARK_BUCKETS];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* Written only inside pthread_once; pthread_once orders it before every
 * caller that returns from pthread_once. */
static int g_init_ok;

static void buckets_init(void)
{
    int ok = 1;
    for (int i = 0; i < FP_PARK_BUCKETS; i++) {
        fp_bucket *b = &g_buckets[i].b;
        atomic_init(&b->nwait, 0);
        if (pthread_mutex_init(&b->mu, NULL) != 0)
            ok = 0;
#if defined(__APPLE__)
        /* no condattr_setclock: timed waits use the relative variant */
        if (pthread_cond_init(&b->cv, NULL) != 0)
            ok = 0;
#else
        pthread_condattr_t attr;
        if (pthread_condattr_init(&attr) != 0) {
            ok = 0;
            continue;
        }
        /* monotonic so wall-clock jumps do not stretch/shrink timeouts */
        if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
            pthread_cond_init(&b->cv, &attr) != 0)
            ok = 0;
        pthread_condattr_destroy(&attr);
#endif
    }
    g_init_ok = ok;
}

static fp_bucket *bucket_for(const void *addr)
{
    /* Fibonacci hashing of the address; >> 2 drops always-zero bits. */
    uint64_t h = ((uint64_t)(uintptr_t)addr >> 2) * UINT64_C(0x9E3779B97F4A7C15);
    return &g_buckets[h >> (64 - 6)].b;
}
_Static_assert(FP_PARK_BUCKETS == 64, "bucket_for() hashes to 6 bits");

static int park_slow(fp_atomic_u32 *word, uint32_t expected, int timed,
                     int64_t deadline)
{
    if (pthread_once(&g_once, buckets_init) != 0 || !g_init_ok)
        return FP_PARK_ERROR;
    fp_bucket *b = bucket_for(word);
    int rc = FP_PARK_OK;

    if (pthread_mutex_lock(&b->mu) != 0)
        return FP_PARK_ERROR;
    /* Register BEFORE re-checking the word: RMW (not a plain store) so it
     * totally orders with the waker's RMW on nwait, see fp_park_wake_*. */
    atomic_fetch_add_explicit(&b->nwait, 1, memory_order_acq_rel);
    while (word_is(word, expected)) {
        int err;
        if (!timed) {
            err = pthread_cond_wait(&b->cv, &b->mu);
        } else {
            int64_t now, rem;
            if (remaining_ns(deadline, &now, &rem) != 0) {
                rc = FP_PARK_ERROR;
                break;
            }
            if (rem <= 0) {
                rc = FP_PARK_TIMEOUT;
                break;
            }
#if defined(__APPLE__)
            struct timespec rel = ns_to_timespec(rem);
            err = pthread_cond_timedwait_relative_np(&b->cv, &b->mu, &rel);
#else
            /* the condvar clock is CLOCK_MONOTONIC, same as now_ns() */
            struct timespec abs_ts = ns_to_timespec(now + rem);
            err = pthread_cond_timedwait(&b->cv, &b->mu, &abs_ts);
#endif
        }
        /* 0 (signalled or spurious), ETIMEDOUT and EINTR all just mean:
         * re-check the word, then the deadline. */
        if (err != 0 && err != ETIMEDOUT && err != EINTR) {
            rc = FP_PARK_ERROR;
            break;
        }
    }
    atomic_fetch_sub_explicit(&b->nwait, 1, memory_order_acq_rel);
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/*
 * Lost-wake-up argument for the fallback.  Waiter: lock mu; RMW nwait++;
 * load word.  Waker: store word; RMW nwait+0.  All modifications of nwait
 * are RMWs, so they are totally ordered and every later acq_rel RMW
 * synchronizes with every earlier one.
 *  - waker's RMW first: it happens-before the waiter's RMW, hence the
 *    waker's word store happens-before the waiter's load, which sees the
 *    new value and does not sleep;
 *  - waiter's RMW first: the waker reads nwait >= 1 and takes mu, which it
 *    can only get once the waiter is inside pthread_cond_wait (mu released
 *    atomically) or has left, so the broadcast cannot fall in the gap.
 */
static fp_bucket *bucket_has_waiters(fp_atomic_u32 *word)
{
    if (pthread_once(&g_once, buckets_init) != 0 || !g_init_ok)
        return NULL; /* nobody could have parked */
    fp_bucket *b = bucket_for(word);
    if (atomic_fetch_add_explicit(&b->nwait, 0, memory_order_acq_rel) == 0)
        return NULL;
    return b;
}

static void bucket_broadcast(fp_bucket *b)
{
    /* Broadcast even for wake_one: the bucket is shared by other words, a
     * signal could pick a thread parked on an unrelated address. */
    if (pthread_mutex_lock(&b->mu) != 0)
        return;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void fp_park_wake_one(fp_atomic_u32 *word)
{
    fp_bucket *b = bucket_has_waiters(word);
    if (b != NULL)
        bucket_broadcast(b);
}

void fp_park_wake_all(fp_atomic_u32 *word)
{
    fp_bucket *b = bucket_has_waiters(word);
    if (b != NULL)
        bucket_broadcast(b);
}

#endif /* FP_PARK_USE_FUTEX */
