/*
 * fp_batch.h - the queue of group commit: threads that want the same short piece of work
 * done under one lock (one-shot writes on the pool's writer) join a queue; one of them, the
 * leader, takes everything queued so far, does it all at once, and tells each its job is done.
 *
 * Roles
 *   fp_batch_join() either makes the caller the leader (nobody was leading) or queues its
 *   job. A leader does its own job and those it takes with fp_batch_take(), marks them with
 *   fp_batch_done(), and ends its turn with fp_batch_step_down(), which hands leadership to
 *   the oldest queued job (its owner wakes up as FP_BATCH_LEAD and leads the next batch) or,
 *   with nothing queued, leaves nobody leading. Exactly one thread leads at any time.
 *
 * Job states (the word `state`; who changes it)
 *   QUEUED    by join, under the mutex: the job is linked.  Linked <=> QUEUED.
 *   LEAD      by step_down, under the mutex, after unlinking: its owner leads now.
 *   TAKEN     by take, under the mutex, after unlinking: a leader is doing it.
 *   DONE      by fp_batch_done (a TAKEN job; no mutex: nothing else may change it).
 *   CANCELLED by fp_batch_cancel, under the mutex, after unlinking (the owner gave up).
 *   Every change of a linked job happens under the mutex, so exactly one of LEAD, TAKEN and
 *   CANCELLED wins for each queued job.
 *
 * Ownership and lifetime of a job
 *   The caller owns the node and `data` (fp_batch never reads `data`: it is the owner's
 *   handle for the leader, e.g. the Python object with the statement). A QUEUED node must
 *   stay valid until it is no longer linked. A TAKEN node is the leader's until
 *   fp_batch_done: its owner must wait for DONE (fp_batch_wait with no timeout), and the
 *   leader must read `next` and `data` before fp_batch_done, which touches nothing of a
 *   node after its state turns DONE except the ADDRESS of its word (a spurious wake-up at
 *   worst, if the owner already reused the memory).
 *
 * Memory ordering
 *   DONE is stored with release and fp_batch_wait reads it with acquire: what the leader
 *   wrote for a job before fp_batch_done is visible to its owner once it sees DONE.
 *
 * Pure C11 + pthreads; waiting sleeps in fp_park (no spinning beyond fp_park's short one).
 */
#ifndef FP_BATCH_H
#define FP_BATCH_H

#include <stdint.h>

#include "fp_park.h"

#define FP_BATCH_QUEUED     1u
#define FP_BATCH_LEAD       2u
#define FP_BATCH_TAKEN      3u
#define FP_BATCH_DONE       4u
#define FP_BATCH_CANCELLED  5u

#define FP_BATCH_OK         0
#define FP_BATCH_TIMEOUT    1   /* fp_batch_wait: still QUEUED at the deadline */
#define FP_BATCH_ERROR    (-1)  /* a park or mutex failure */
#define FP_BATCH_EINVAL   (-2)  /* NULL argument, or a job that is not in the right state */

typedef struct fp_batch_job {
    struct fp_batch_job *next;  /* queue link, then the taken batch's link: fp_batch's */
    fp_atomic_u32 state;
    void *data;                 /* the owner's, never touched here */
} fp_batch_job;

typedef struct fp_batch fp_batch;

/* NULL if out of memory or the mutex could not be made. */
fp_batch *fp_batch_new(void);
void fp_batch_free(fp_batch *b);

/* Join with `job` (its `data` set by the caller). Returns FP_BATCH_LEAD when the caller now
 * leads (the job is not queued: the leader does it itself), FP_BATCH_QUEUED when a leader
 * exists and the job waits in the queue, or an error code. */
int fp_batch_join(fp_batch *b, fp_batch_job *job);

/* Wait while the job is QUEUED or TAKEN: returns FP_BATCH_OK with *state_out LEAD, DONE or
 * (for a job cancelled elsewhere) CANCELLED; FP_BATCH_TIMEOUT once timeout_ns passed with
 * the job still QUEUED (then call fp_batch_cancel). A TAKEN job is waited for without limit:
 * its leader is doing it. timeout_ns < 0: no limit. */
int fp_batch_wait(fp_batch_job *job, int64_t timeout_ns, uint32_t *state_out);

/* Withdraw a job: FP_BATCH_OK with *state_out CANCELLED if it was still queued, else the
 * state it reached (LEAD, TAKEN or DONE) and nothing changed: the caller then leads, or
 * waits for DONE. */
int fp_batch_cancel(fp_batch *b, fp_batch_job *job, uint32_t *state_out);

/* Leader only: unlink up to `max` (0: all) of the oldest queued jobs, mark them TAKEN, and
 * return them oldest first, linked through `next` (NULL if none). */
fp_batch_job *fp_batch_take(fp_batch *b, uint32_t max);

/* Leader only: mark every job of a list from fp_batch_take DONE and wake its owner. */
void fp_batch_done(fp_batch_job *taken);

/* Leader only, once its batch is done: hand leadership to the oldest queued job (its owner
 * wakes with LEAD) or, if none is queued, leave nobody leading. */
int fp_batch_step_down(fp_batch *b);

/* Leader only, before fp_batch_take: wait (at most timeout_ns) until at least `want` jobs
 * are queued. For a leader that expects company: the owners of the batch it just finished
 * are on their way back (group commit waits at most one commit's time for them). Returns
 * FP_BATCH_OK when they are there, FP_BATCH_TIMEOUT, or an error code. */
int fp_batch_gather(fp_batch *b, uint32_t want, int64_t timeout_ns);

/* Jobs queued now (racy: for statistics and tests). */
uint32_t fp_batch_queued(fp_batch *b);

#endif /* FP_BATCH_H */
