/*
 * stress_notify.c - unit and stress checks for csrc/fp_notify (and the
 * fp_atomic flags it is used with).  Runs under ThreadSanitizer from
 * tests/test_c_stress.py.
 *
 *   usage: stress_notify [scale]      (default 1.0)
 *
 * The stress phase is a ping-pong between P producers and one consumer:
 * each producer writes a PLAIN payload, posts its bit, and waits for the
 * consumer's acknowledgement before the next round.  A lost wake-up
 * deadlocks the round (caught by the watchdog, exit 3); a missing
 * release/acquire between post and wait shows up as a TSan data race on
 * the payload; a bit taken twice or never shows up as a payload mismatch.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fp_atomic.h"
#include "fp_notify.h"
#include "fp_park.h"
#include "stress_check.h"

#define PRODUCERS 6
#define WATCHDOG_SECONDS 120

static fp_notify g_events;
static uint32_t g_payload[PRODUCERS];       /* plain: ordered by post/wait */
static fp_atomic_u32 g_ack[PRODUCERS];      /* last round acknowledged */
static uint32_t g_rounds;
static atomic_int g_done;

static void unit(void)
{
    fp_notify n;
    uint32_t bits = 99;
    fp_notify_init(&n);
    CHECK(fp_notify_post(&n, 0) == FP_NOTIFY_EINVAL, "post of no bits");
    CHECK(fp_notify_post(NULL, 1) == FP_NOTIFY_EINVAL, "post to NULL");
    CHECK(fp_notify_wait(&n, 0, &bits) == FP_NOTIFY_TIMEOUT && bits == 0, "empty check");
    CHECK(fp_notify_wait(&n, 2000000, &bits) == FP_NOTIFY_TIMEOUT, "timed wait");
    CHECK(fp_notify_post(&n, 1) == FP_NOTIFY_OK, "post 1");
    CHECK(fp_notify_post(&n, 4) == FP_NOTIFY_OK, "post 4");
    CHECK(fp_notify_post(&n, 1) == FP_NOTIFY_OK, "post 1 again");
    CHECK(fp_notify_wait(&n, -1, &bits) == FP_NOTIFY_OK && bits == 5, "bits coalesce");
    CHECK(fp_notify_wait(&n, 0, &bits) == FP_NOTIFY_TIMEOUT, "taken bits are cleared");

    fp_atomic_u32 flag;
    fp_atomic_u64 counter;
    fp_flag_store(&flag, 7);
    CHECK(fp_flag_exchange(&flag, 0) == 7 && fp_flag_load(&flag) == 0, "flag exchange");
    fp_counter_init(&counter);
    fp_counter_add(&counter, 3);
    fp_counter_add(&counter, UINT64_C(1) << 40);
    CHECK(fp_counter_get(&counter) == (UINT64_C(1) << 40) + 3, "64-bit counter");
    printf("unit: ok\n");
}

static void *producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (uint32_t round = 1; round <= g_rounds; round++) {
        g_payload[id] = round * 2 + (uint32_t)id;
        CHECK(fp_notify_post(&g_events, 1u << id) == FP_NOTIFY_OK, "post");
        while (fp_flag_load(&g_ack[id]) != round)
            CHECK(fp_park_wait(&g_ack[id], round - 1, -1) != FP_PARK_ERROR, "park");
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    uint32_t expected[PRODUCERS] = {0};
    uint64_t remaining = (uint64_t)g_rounds * PRODUCERS, wakeups = 0;
    while (remaining > 0) {
        uint32_t bits;
        CHECK(fp_notify_wait(&g_events, -1, &bits) == FP_NOTIFY_OK, "wait");
        CHECK(bits != 0 && bits < (1u << PRODUCERS), "bits out of range");
        wakeups++;
        for (int id = 0; id < PRODUCERS; id++) {
            if (!(bits & (1u << id)))
                continue;
            expected[id]++;
            CHECK(g_payload[id] == expected[id] * 2 + (uint32_t)id, "payload of a round");
            fp_flag_store(&g_ack[id], expected[id]);
            fp_park_wake_one(&g_ack[id]);
            remaining--;
        }
    }
    printf("stress: %d producers x %u rounds, %llu wake-ups\n", PRODUCERS, g_rounds,
           (unsigned long long)wakeups);
    return NULL;
}

static void *watchdog(void *arg)
{
    (void)arg;
    for (int i = 0; i < WATCHDOG_SECONDS * 10 && !atomic_load(&g_done); i++) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&g_done)) {
        fprintf(stderr, "VIOLATION: no progress for %d s (lost wake-up?)\n", WATCHDOG_SECONDS);
        _exit(3);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (!(scale > 0.0)) {
        fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_rounds = (uint32_t)(20000 * scale) + 1;
    pthread_t wd, cons, prod[PRODUCERS];
    CHECK(pthread_create(&wd, NULL, watchdog, NULL) == 0, "watchdog thread");
    unit();
    fp_notify_init(&g_events);
    for (int id = 0; id < PRODUCERS; id++)
        fp_flag_store(&g_ack[id], 0);
    CHECK(pthread_create(&cons, NULL, consumer, NULL) == 0, "consumer thread");
    for (int id = 0; id < PRODUCERS; id++)
        CHECK(pthread_create(&prod[id], NULL, producer, (void *)(intptr_t)id) == 0, "producer");
    for (int id = 0; id < PRODUCERS; id++)
        pthread_join(prod[id], NULL);
    pthread_join(cons, NULL);
    atomic_store(&g_done, 1);
    pthread_join(wd, NULL);
    printf("all checks passed\n");
    return 0;
}
