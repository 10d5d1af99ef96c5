/*
 * stress_async.c - stress checks for csrc/fp_async: the completion queue
 * that carries finished statements and slot grants to an asyncio loop.
 * Runs under ThreadSanitizer from tests/test_c_stress.py.
 *
 *   usage: stress_async [scale]      (default 1.0)
 *
 * Phase 1, the queue alone: P producers post items whose PLAIN payload they
 * wrote just before posting; one consumer sleeps in poll() on the descriptor
 * and drains with fp_cq_take_all.  Every item must arrive exactly once, in
 * each producer's order, with its payload visible (a missing release/acquire
 * is a TSan race), and the consumer must never sleep through a post (a lost
 * wake-up stalls poll: caught by its timeout, exit 3).
 *
 * Phase 2, async waiters on a slot dispenser, the way the asyncio facade uses
 * them: sync threads take and return slots with fp_slots_wait while a "loop"
 * thread queues fp_async_waiter nodes, cancels some of them, and receives its
 * grants through the queue.  A slot is never held by two owners (an atomic
 * owner word per slot), no grant is lost (every awaited token arrives), and
 * at the end every slot is free again.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fp_async.h"
#include "fp_slots.h"
#include "stress_check.h"

#define PRODUCERS 4
#define SLOTS 2
#define SYNC_THREADS 3
#define POLL_TIMEOUT_MS 10000
#define WATCHDOG_SECONDS 240

static fp_cq *g_cq;

/* Block until the queue's descriptor is readable, then take everything. */
static fp_cq_item *wait_and_take(void)
{
    struct pollfd pfd = {.fd = fp_cq_fd(g_cq), .events = POLLIN};
    for (;;) {
        int n = poll(&pfd, 1, POLL_TIMEOUT_MS);
        if (n == 0) {
            fprintf(stderr, "VIOLATION: no wake-up within %d ms (lost wake-up)\n",
                    POLL_TIMEOUT_MS);
            exit(3);
        }
        CHECK(n > 0, "poll failed");
        fp_cq_item *items = fp_cq_take_all(g_cq);
        if (items != NULL)
            return items;
        /* A wake-up for items already taken: harmless, documented. */
    }
}

/* ---- phase 1: producers and one consumer ------------------------------ */

typedef struct {
    fp_cq_item item;
    uint64_t payload;       /* plain: published by fp_cq_post */
} message;

static message *g_messages;     /* PRODUCERS x g_per_producer, each posted once */
static uint32_t g_per_producer;

static void *producer(void *arg)
{
    uint32_t p = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < g_per_producer; i++) {
        message *m = &g_messages[(size_t)p * g_per_producer + i];
        m->payload = ((uint64_t)p << 32 | i) * 2654435761u;
        m->item.token = (uint64_t)p << 32 | i;
        CHECK(fp_cq_post(g_cq, &m->item) == 0, "fp_cq_post failed");
    }
    return NULL;
}

static void phase_queue(double scale)
{
    pthread_t threads[PRODUCERS];
    uint32_t next[PRODUCERS] = {0};
    uint64_t total, seen = 0, batches = 0;

    g_per_producer = (uint32_t)(200000 * scale) + 1;
    g_messages = calloc((size_t)PRODUCERS * g_per_producer, sizeof(message));
    CHECK(g_messages != NULL, "out of memory");
    total = (uint64_t)PRODUCERS * g_per_producer;

    for (uint32_t p = 0; p < PRODUCERS; p++)
        CHECK(pthread_create(&threads[p], NULL, producer, (void *)(uintptr_t)p) == 0,
              "pthread_create");
    while (seen < total) {
        fp_cq_item *item = wait_and_take();
        batches++;
        while (item != NULL) {
            fp_cq_item *following = item->next;   /* read before anything else */
            message *m = (message *)item;
            uint32_t p = (uint32_t)(item->token >> 32), i = (uint32_t)item->token;
            CHECK(p < PRODUCERS, "token from nowhere");
            CHECK(i == next[p], "item lost, duplicated or out of its producer's order");
            CHECK(m->payload == (item->token * 2654435761u), "payload not visible");
            next[p]++;
            seen++;
            item = following;
        }
    }
    for (uint32_t p = 0; p < PRODUCERS; p++)
        CHECK(pthread_join(threads[p], NULL) == 0, "pthread_join");
    CHECK(fp_cq_take_all(g_cq) == NULL, "items after the last one");
    printf("queue: %llu items in %llu wake-ups from %d producers\n",
           (unsigned long long)seen, (unsigned long long)batches, PRODUCERS);
    free(g_messages);
}

/* ---- phase 2: async waiters on a slot dispenser ----------------------- */

static fp_slots *g_slots;
static atomic_int g_owner[SLOTS];       /* 0 free, else the holder's id */
static atomic_int g_stop;
static atomic_ullong g_sync_rounds;

static void hold(uint32_t slot, int who)
{
    int expected = 0;
    CHECK(slot < SLOTS, "slot out of range");
    CHECK(atomic_compare_exchange_strong(&g_owner[slot], &expected, who),
          "slot handed to two owners");
    for (volatile int spin = 0; spin < 50; spin++) {
    }
    CHECK(atomic_exchange(&g_owner[slot], 0) == who, "slot owner changed while held");
}

static void *sync_user(void *arg)
{
    int who = (int)(uintptr_t)arg;
    while (!atomic_load(&g_stop)) {
        fp_waiter w;
        uint32_t slot;
        if (fp_slots_try_acquire(g_slots, &slot) != FP_SLOTS_OK) {
            fp_waiter_init(&w, NULL, NULL);
            int rc = fp_slots_enqueue(g_slots, &w);
            if (rc == FP_SLOTS_QUEUED)
                rc = fp_slots_wait(g_slots, &w, -1);
            CHECK(rc == FP_SLOTS_OK, "sync wait failed");
            slot = w.slot;
        }
        hold(slot, who);
        CHECK(fp_slots_release(g_slots, slot) == FP_SLOTS_OK, "release failed");
        atomic_fetch_add(&g_sync_rounds, 1);
    }
    return NULL;
}

static void phase_waiters(double scale)
{
    const int loop_id = 1000;
    uint32_t rounds = (uint32_t)(40000 * scale) + 1;
    uint64_t granted_now = 0, granted_later = 0, cancelled = 0, late_wakes = 0;
    fp_async_waiter *nodes = calloc(rounds, sizeof(fp_async_waiter));   /* each used once */
    /* Per node: AWAITING until its outcome is known, then DONE; LATE while
     * the post of a grant that raced its cancel is still due. */
    enum { AWAITING, DONE, LATE };
    unsigned char *state = calloc(rounds, 1);
    pthread_t threads[SYNC_THREADS];
    unsigned int seed = 12345;

    CHECK(nodes != NULL && state != NULL, "out of memory");
    g_slots = fp_slots_new(SLOTS, 0); /* strict FIFO */
    CHECK(g_slots != NULL, "fp_slots_new");
    for (int t = 0; t < SYNC_THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, sync_user, (void *)(uintptr_t)(t + 1)) == 0,
              "pthread_create");

    for (uint32_t r = 0; r < rounds; r++) {
        fp_async_waiter *node = &nodes[r];
        uint32_t slot;
        fp_async_waiter_init(node, g_cq, r);
        int rc = fp_slots_enqueue(g_slots, &node->waiter);
        if (rc == FP_SLOTS_OK) {            /* a free slot: no wake callback follows */
            state[r] = DONE;
            granted_now++;
            hold(node->waiter.slot, loop_id);
            CHECK(fp_slots_release(g_slots, node->waiter.slot) == FP_SLOTS_OK, "release");
            continue;
        }
        CHECK(rc == FP_SLOTS_QUEUED, "enqueue failed");
        if (rand_r(&seed) % 4 == 0) {       /* a cancelled task */
            rc = fp_slots_cancel(g_slots, &node->waiter, &slot);
            if (rc == FP_SLOTS_CANCELLED) {
                state[r] = DONE;            /* never granted, never posted */
                cancelled++;
                continue;
            }
            CHECK(rc == FP_SLOTS_OK, "cancel failed");
            /* Granted just before the cancel: the slot is ours; its post may
             * still be on its way and is counted when it lands. */
            state[r] = LATE;
            hold(slot, loop_id);
            CHECK(fp_slots_release(g_slots, slot) == FP_SLOTS_OK, "release");
            late_wakes++;
            continue;
        }
        /* Await the grant like the event loop does: through the queue. */
        while (state[r] == AWAITING) {
            for (fp_cq_item *item = wait_and_take(); item != NULL;) {
                fp_cq_item *following = item->next;
                uint64_t token = item->token;
                CHECK(token <= r, "a grant for a node never queued");
                if (token == r) {
                    state[r] = DONE;
                    granted_later++;
                    CHECK(fp_waiter_state(&node->waiter) == FP_WAITER_GRANTED,
                          "posted but not granted");
                    hold(node->waiter.slot, loop_id);
                    CHECK(fp_slots_release(g_slots, node->waiter.slot) == FP_SLOTS_OK,
                          "release");
                } else {
                    /* The late post of a node granted just before its cancel. */
                    CHECK(state[token] == LATE, "a grant posted twice, or for no grant");
                    state[token] = DONE;
                }
                item = following;
            }
        }
    }
    atomic_store(&g_stop, 1);
    for (int t = 0; t < SYNC_THREADS; t++)
        CHECK(pthread_join(threads[t], NULL) == 0, "pthread_join");
    /* The sync threads are joined, so every wake callback has run: the late
     * posts of grants that raced their cancel must all be here now. */
    for (fp_cq_item *item = fp_cq_take_all(g_cq); item != NULL;) {
        fp_cq_item *following = item->next;
        CHECK(item->token < rounds && state[item->token] == LATE, "unexpected late post");
        state[item->token] = DONE;
        item = following;
    }
    for (uint32_t r = 0; r < rounds; r++)
        CHECK(state[r] == DONE, "a grant was never posted");
    CHECK(fp_slots_free_count(g_slots) == SLOTS, "a slot was lost");
    CHECK(fp_slots_waiting(g_slots) == 0, "a waiter left behind");
    for (int s = 0; s < SLOTS; s++)
        CHECK(atomic_load(&g_owner[s]) == 0, "a slot still owned");
    printf("waiters: %u async rounds (%llu at once, %llu through the queue, %llu cancelled, "
           "%llu granted while cancelling), %llu sync rounds\n",
           rounds, (unsigned long long)granted_now, (unsigned long long)granted_later,
           (unsigned long long)cancelled, (unsigned long long)late_wakes,
           (unsigned long long)atomic_load(&g_sync_rounds));
    fp_slots_free(g_slots);
    free(nodes);
    free(state);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    CHECK(scale > 0, "scale must be positive");
    alarm(WATCHDOG_SECONDS);        /* default action ends the process: a hang fails */
    g_cq = fp_cq_new();
    CHECK(g_cq != NULL, "fp_cq_new");
    CHECK(fp_cq_take_all(g_cq) == NULL, "a new queue is empty");
    phase_queue(scale);
    phase_waiters(scale);
    fp_cq_free(g_cq);
    printf("all checks passed\n");
    return 0;
}
