/*
 * stress_batch.c - unit and stress checks for csrc/fp_batch (group commit's queue).  Runs
 * under ThreadSanitizer from tests/test_c_stress.py.
 *
 *   usage: stress_batch [scale]      (default 1.0)
 *
 * Stress: THREADS threads each submit jobs in a loop. A job's input and result are PLAIN
 * memory: the leader writes the result, the owner reads it after seeing DONE, so a missing
 * release/acquire shows up as a TSan race. The "work" is a plain counter that only a leader
 * touches: two leaders at once show up as a race on it, and as a count that does not match.
 * Some waits time out and cancel; a cancelled job must never be done, a taken one must.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fp_batch.h"
#define WATCHDOG_SECONDS 120 /* stress_check.h's watchdog */
#include "stress_check.h"

#define THREADS 6

typedef struct {
    fp_batch_job node;
    uint64_t input;         /* plain: written by the owner before join */
    uint64_t result;        /* plain: written by the leader before done */
} job_t;

static fp_batch *g_batch;
static uint64_t g_work_done;            /* plain: only the leader touches it */
static atomic_int g_leaders;            /* leaders right now: must stay <= 1 */
static atomic_ullong g_cancelled, g_done_seen, g_max_batch;
static long g_jobs_per_thread;
static atomic_int g_finished;

static void do_job(job_t *j)
{
    j->result = j->input * 3 + 1;
    g_work_done++;
}

static void lead(job_t *own)
{
    fp_batch_job *taken, *it;
    unsigned long long n = 1;
    CHECK(atomic_fetch_add(&g_leaders, 1) == 0, "two leaders at once");
    do_job(own);
    taken = fp_batch_take(g_batch, (uint32_t)(own->input % 4));  /* 0 = all, else a cap */
    for (it = taken; it != NULL; it = it->next) {
        CHECK(atomic_load(&it->state) == FP_BATCH_TAKEN, "a taken job is TAKEN");
        do_job((job_t *)it->data);
        n++;
    }
    if (n > atomic_load(&g_max_batch))
        atomic_store(&g_max_batch, n);
    atomic_fetch_sub(&g_leaders, 1);
    fp_batch_done(taken);
    CHECK(fp_batch_step_down(g_batch) == FP_BATCH_OK, "step down");
}

static void *submitter(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
    uint32_t state;
    int rc;
    for (long i = 0; i < g_jobs_per_thread; i++) {
        job_t j;
        j.input = ((uint64_t)(uintptr_t)arg << 32) | (uint64_t)i;
        j.result = 0;
        j.node.data = &j;
        rc = fp_batch_join(g_batch, &j.node);
        if (rc == FP_BATCH_LEAD) {
            lead(&j);
            CHECK(j.result == j.input * 3 + 1, "leader's own result");
            continue;
        }
        CHECK(rc == FP_BATCH_QUEUED, "join");
        seed = seed * 1103515245u + 12345u;
        /* Every eighth wait is too short to be served, on purpose. */
        rc = fp_batch_wait(&j.node, (seed >> 16) % 8 == 0 ? 1000 : -1, &state);
        if (rc == FP_BATCH_TIMEOUT) {
            CHECK(fp_batch_cancel(g_batch, &j.node, &state) == FP_BATCH_OK, "cancel");
            if (state == FP_BATCH_CANCELLED) {
                atomic_fetch_add(&g_cancelled, 1);
                continue;
            }
            if (state == FP_BATCH_TAKEN)
                CHECK(fp_batch_wait(&j.node, -1, &state) == FP_BATCH_OK, "wait after cancel");
        } else {
            CHECK(rc == FP_BATCH_OK, "wait");
        }
        if (state == FP_BATCH_LEAD) {
            lead(&j);
        } else {
            CHECK(state == FP_BATCH_DONE, "a served job is DONE");
            atomic_fetch_add(&g_done_seen, 1);
        }
        CHECK(j.result == j.input * 3 + 1, "result seen by the owner");
    }
    return NULL;
}

static void unit(void)
{
    fp_batch *b = fp_batch_new();
    job_t a, c, d;
    uint32_t state = 0;
    CHECK(b != NULL, "new");
    CHECK(fp_batch_join(NULL, &a.node) == FP_BATCH_EINVAL, "join NULL");
    CHECK(fp_batch_join(b, &a.node) == FP_BATCH_LEAD, "first joiner leads");
    CHECK(fp_batch_join(b, &c.node) == FP_BATCH_QUEUED, "second queues");
    CHECK(fp_batch_join(b, &d.node) == FP_BATCH_QUEUED, "third queues");
    CHECK(fp_batch_queued(b) == 2, "two queued");
    CHECK(fp_batch_wait(&c.node, 0, &state) == FP_BATCH_TIMEOUT, "a queued job times out");
    CHECK(fp_batch_cancel(b, &c.node, &state) == FP_BATCH_OK && state == FP_BATCH_CANCELLED,
          "cancel a queued job");
    CHECK(fp_batch_cancel(b, &c.node, &state) == FP_BATCH_OK && state == FP_BATCH_CANCELLED,
          "cancel twice");
    CHECK(fp_batch_take(b, 0) == &d.node && d.node.next == NULL, "take the rest");
    CHECK(fp_batch_take(b, 0) == NULL, "nothing left");
    CHECK(fp_batch_cancel(b, &d.node, &state) == FP_BATCH_OK && state == FP_BATCH_TAKEN,
          "a taken job cannot be cancelled");
    fp_batch_done(&d.node);
    CHECK(fp_batch_wait(&d.node, 0, &state) == FP_BATCH_OK && state == FP_BATCH_DONE, "done");
    CHECK(fp_batch_join(b, &c.node) == FP_BATCH_QUEUED, "queue behind the leader");
    CHECK(fp_batch_step_down(b) == FP_BATCH_OK, "step down");
    CHECK(fp_batch_wait(&c.node, 0, &state) == FP_BATCH_OK && state == FP_BATCH_LEAD,
          "the oldest queued job leads next");
    CHECK(fp_batch_step_down(b) == FP_BATCH_OK, "step down again");
    CHECK(fp_batch_join(b, &a.node) == FP_BATCH_LEAD, "nobody leading: the joiner leads");
    CHECK(fp_batch_step_down(b) == FP_BATCH_OK, "last step down");
    fp_batch_free(b);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    pthread_t threads[THREADS], dog;
    g_jobs_per_thread = (long)(20000 * scale) + 1;
    unit();
    g_batch = fp_batch_new();
    CHECK(g_batch != NULL, "new");
    CHECK(pthread_create(&dog, NULL, watchdog, &g_finished) == 0, "watchdog");
    for (uintptr_t t = 0; t < THREADS; t++)
        CHECK(pthread_create(&threads[t], NULL, submitter, (void *)(t + 1)) == 0, "thread");
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    atomic_store(&g_finished, 1);
    pthread_join(dog, NULL);
    CHECK(g_work_done + atomic_load(&g_cancelled) == (uint64_t)THREADS * g_jobs_per_thread,
          "every job is done or cancelled, once");
    CHECK(fp_batch_queued(g_batch) == 0, "nothing left queued");
    printf("stress_batch: %llu jobs done (%llu served by another thread's batch, largest "
           "batch %llu), %llu cancelled\n", (unsigned long long)g_work_done,
           (unsigned long long)atomic_load(&g_done_seen),
           (unsigned long long)atomic_load(&g_max_batch),
           (unsigned long long)atomic_load(&g_cancelled));
    fp_batch_free(g_batch);
    printf("all checks passed\n");
    return 0;
}
