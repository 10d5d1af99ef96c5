/*
 * stress_async.c - checks for csrc/fp_async (the completion queue the event
 * loop watches).  Runs under ThreadSanitizer from tests/test_c_stress.py.
 *
 *   usage: stress_async [scale]      (default 1.0)
 *
 * Unit: an async fp_slots waiter granted by another thread's release is
 * posted to the queue, the descriptor becomes readable, and the item taken
 * carries the waiter's token with the waiter GRANTED.
 *
 * Stress: P producers post items with a PLAIN payload written just before
 * posting; one consumer sleeps in poll() on the descriptor (as an event loop
 * does) and takes everything per wake-up.  A lost wake-up leaves items queued
 * while poll() times out (exit 3); an item taken twice or never, or a payload
 * not visible to the consumer, is a violation (exit 1) or a TSan race.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_async.h"
#include "fp_slots.h"

#define PRODUCERS 4
#define POLL_TIMEOUT_MS 10000

#define CHECK(cond, msg)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "VIOLATION: %s (%s:%d)\n", msg, __FILE__, __LINE__); \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

typedef struct {
    fp_cq_item item;
    uint64_t payload;   /* plain: published by the queue's mutex */
} entry;

static fp_cq *g_cq;
static entry *g_entries;
static unsigned char *g_seen;
static long g_per_producer;

static void *producer(void *arg)
{
    long p = (long)(intptr_t)arg;
    for (long i = 0; i < g_per_producer; i++) {
        long k = p * g_per_producer + i;
        entry *e = &g_entries[k];
        e->item.token = (uint64_t)k;
        e->payload = (uint64_t)k * 2654435761u + 1;
        CHECK(fp_cq_post(g_cq, &e->item) == 0, "post failed");
    }
    return NULL;
}

static int wait_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, POLL_TIMEOUT_MS);
    } while (rc < 0);
    return rc > 0;
}

static void *releaser(void *arg)
{
    fp_slots *s = arg;
    CHECK(fp_slots_release(s, 0) == FP_SLOTS_OK, "release failed");
    return NULL;
}

static void unit(void)
{
    fp_cq *q = fp_cq_new();
    fp_slots *s = fp_slots_new(1, 1);
    fp_async_waiter w;
    uint32_t slot;
    pthread_t t;
    fp_cq_item *items;
    CHECK(q != NULL && s != NULL, "allocation failed");
    CHECK(fp_cq_take_all(q) == NULL, "new queue not empty");
    CHECK(fp_slots_try_acquire(s, &slot) == FP_SLOTS_OK && slot == 0, "acquire failed");
    fp_async_waiter_init(&w, q, 42);
    CHECK(fp_slots_enqueue(s, &w.waiter) == FP_SLOTS_QUEUED, "enqueue did not queue");
    CHECK(pthread_create(&t, NULL, releaser, s) == 0, "thread");
    CHECK(wait_readable(fp_cq_fd(q)), "grant never signalled the descriptor");
    CHECK(pthread_join(t, NULL) == 0, "join");
    items = fp_cq_take_all(q);
    CHECK(items != NULL && items->token == 42 && items->next == NULL, "wrong item");
    CHECK(items == &w.item, "not the waiter's item");
    CHECK(fp_waiter_state(&w.waiter) == FP_WAITER_GRANTED && w.waiter.slot == 0, "not granted");
    CHECK(fp_cq_take_all(q) == NULL, "item taken twice");
    CHECK(fp_slots_release(s, 0) == FP_SLOTS_OK, "release failed");
    fp_slots_free(s);
    fp_cq_free(q);
    printf("unit: ok\n");
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    long total, taken = 0, wakeups = 0;
    pthread_t threads[PRODUCERS];

    unit();
    g_per_producer = (long)(50000 * scale) + 1;
    total = g_per_producer * PRODUCERS;
    g_cq = fp_cq_new();
    g_entries = calloc((size_t)total, sizeof(entry));
    g_seen = calloc((size_t)total, 1);
    CHECK(g_cq != NULL && g_entries != NULL && g_seen != NULL, "allocation failed");
    for (long p = 0; p < PRODUCERS; p++)
        CHECK(pthread_create(&threads[p], NULL, producer, (void *)(intptr_t)p) == 0, "thread");
    while (taken < total) {
        if (!wait_readable(fp_cq_fd(g_cq))) {
            fprintf(stderr, "LOST WAKE-UP: %ld of %ld items taken, poll timed out\n", taken,
                    total);
            return 3;
        }
        wakeups++;
        for (fp_cq_item *it = fp_cq_take_all(g_cq); it != NULL;) {
            fp_cq_item *next = it->next;
            entry *e = (entry *)it;
            uint64_t k = it->token;
            CHECK(k < (uint64_t)total, "token out of range");
            CHECK(!g_seen[k], "item taken twice");
            CHECK(e->payload == k * 2654435761u + 1, "payload not visible to the consumer");
            g_seen[k] = 1;
            taken++;
            it = next;
        }
    }
    for (long p = 0; p < PRODUCERS; p++)
        CHECK(pthread_join(threads[p], NULL) == 0, "join");
    CHECK(fp_cq_take_all(g_cq) == NULL, "items left over");
    printf("stress: %ld items in %ld wake-ups\n", total, wakeups);
    fp_cq_free(g_cq);
    free(g_entries);
    free(g_seen);
    printf("all checks passed\n");
    return 0;
}
