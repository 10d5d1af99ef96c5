/*
 * stress_claim.c - unit and stress checks for csrc/fp_claim (a connection's claim word:
 * its holder's calls and the snapshot sweep).  Runs under ThreadSanitizer from
 * tests/test_c_stress.py.
 *
 *   usage: stress_claim [scale]      (default 1.0)
 *
 * Stress: HOLDERS threads each own one "connection" (a claim word and a PLAIN handle
 * counter) and claim it for call after call; one sweeper thread claims every connection it
 * finds free, over and over.  Each claimant increments the handle counter while it holds
 * the claim, so two claimants at once show up as a TSan race and as a lost increment.  A
 * holder must never be refused (only a call refuses a call), however often the sweep holds
 * the word when it arrives.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fp_atomic.h"
#include "fp_claim.h"
#define WATCHDOG_SECONDS 120 /* stress_check.h's watchdog */
#include "stress_check.h"

#define HOLDERS 4

typedef struct {
    fp_atomic_u32 word;
    uint64_t handle;        /* plain: touched only under the claim */
    uint64_t holder_calls;  /* the holder's own count (its thread only) */
} conn_t;

static conn_t g_conns[HOLDERS];
static long g_calls;
static atomic_int g_holders_done, g_finished;
static uint64_t g_swept;    /* the sweeper's thread only */

static void unit(void)
{
    fp_atomic_u32 w;
    atomic_init(&w, FP_CLAIM_FREE);
    CHECK(fp_claim_call(&w) == FP_CLAIM_FREE, "a free word is claimed");
    CHECK(fp_claim_call(&w) == FP_CLAIM_CALL, "a call refuses a second call");
    CHECK(!fp_claim_sweep(&w), "the sweep never takes a word a call holds");
    fp_flag_store(&w, FP_CLAIM_FREE);
    CHECK(fp_claim_sweep(&w), "the sweep takes a free word");
    CHECK(!fp_claim_sweep(&w), "... once");
    fp_claim_release_sweep(&w);
    CHECK(fp_flag_load(&w) == FP_CLAIM_FREE, "released");
    printf("unit: ok\n");
}

static void *holder(void *arg)
{
    conn_t *c = arg;
    for (long i = 0; i < g_calls; i++) {
        CHECK(fp_claim_call(&c->word) == FP_CLAIM_FREE, "a holder is never refused");
        c->handle++;
        c->holder_calls++;
        if ((i & 63) == 0)
            sched_yield(); /* hold it across a yield now and then: the sweep finds it busy */
        fp_flag_store(&c->word, FP_CLAIM_FREE);
    }
    atomic_fetch_add(&g_holders_done, 1);
    return NULL;
}

static void *sweeper(void *arg)
{
    (void)arg;
    while (atomic_load(&g_holders_done) < HOLDERS) {
        for (int k = 0; k < HOLDERS; k++) {
            if (fp_claim_sweep(&g_conns[k].word)) {
                g_conns[k].handle++;
                g_swept++;
                if ((g_swept & 15) == 0)
                    sched_yield(); /* hold it while a holder arrives: it must wait */
                fp_claim_release_sweep(&g_conns[k].word);
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    pthread_t holders[HOLDERS], sweep, dog;
    uint64_t handles = 0, calls = 0;
    g_calls = (long)(200000 * scale) + 1;
    unit();
    for (int k = 0; k < HOLDERS; k++)
        atomic_init(&g_conns[k].word, FP_CLAIM_FREE);
    CHECK(pthread_create(&dog, NULL, watchdog, &g_finished) == 0, "watchdog");
    CHECK(pthread_create(&sweep, NULL, sweeper, NULL) == 0, "sweeper");
    for (int k = 0; k < HOLDERS; k++)
        CHECK(pthread_create(&holders[k], NULL, holder, &g_conns[k]) == 0, "holder");
    for (int k = 0; k < HOLDERS; k++)
        pthread_join(holders[k], NULL);
    pthread_join(sweep, NULL);
    atomic_store(&g_finished, 1);
    pthread_join(dog, NULL);
    for (int k = 0; k < HOLDERS; k++) {
        CHECK(fp_flag_load(&g_conns[k].word) == FP_CLAIM_FREE, "every word ends free");
        handles += g_conns[k].handle;
        calls += g_conns[k].holder_calls;
    }
    CHECK(calls == (uint64_t)HOLDERS * (uint64_t)g_calls, "every call ran");
    CHECK(handles == calls + g_swept, "no two claimants at once (no lost increment)");
    printf("stress_claim: %llu calls, %llu sweeps of a connection\n",
           (unsigned long long)calls, (unsigned long long)g_swept);
    printf("all checks passed\n");
    return 0;
}
