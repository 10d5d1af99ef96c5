/*
 * fp_async.h - the completion queue between fastpool's threads and one asyncio
 * event loop.
 *
 * Producers (worker threads finishing a statement, threads returning a pool
 * slot to an asyncio waiter) append an item and, only if the queue was not
 * already signalled, write the wake-up file descriptor once.  The event loop
 * watches that descriptor (loop.add_reader) and, per wake-up, takes every
 * item posted so far (fp_cq_take_all): one syscall per batch, not per query.
 *
 * The descriptor is an eventfd on Linux and the read end of a non-blocking
 * self-pipe elsewhere.
 *
 * Ownership / lifetime
 *   fp_cq_new() allocates; fp_cq_free() closes the descriptors and frees.
 *   Items are intrusive: the poster owns the memory of an fp_cq_item and must
 *   keep it valid from fp_cq_post() until the consumer has taken it (and read
 *   its token); the queue never allocates after fp_cq_new().  An item may be
 *   posted again only after it was taken.
 *
 * Memory ordering
 *   Posting and taking happen under one mutex, so whatever a producer wrote
 *   before fp_cq_post() is visible to the consumer once it took the item.
 *
 * Lost wake-ups
 *   The consumer clears the descriptor BEFORE taking the list and clearing
 *   `signalled` under the mutex; a producer writes the descriptor after
 *   setting `signalled` from 0 to 1 under the mutex.  So an item is either
 *   in the list the consumer takes, or its producer saw signalled == 0 and
 *   writes the descriptor after the consumer cleared it.  (A write may arrive
 *   for items already taken: a harmless, empty wake-up.)
 *
 * Return codes: 0 success, negative on error (errno is kept).
 */
#ifndef FP_ASYNC_H
#define FP_ASYNC_H

#include <stdint.h>

#include "fp_slots.h"

typedef struct fp_cq_item {
    struct fp_cq_item *next;  /* owned by the queue while posted */
    uint64_t token;           /* free for the poster: names what completed */
} fp_cq_item;

typedef struct fp_cq fp_cq;

/* NULL on allocation, mutex or descriptor failure. */
fp_cq *fp_cq_new(void);

/* NULL accepted.  No thread may post concurrently or later. */
void fp_cq_free(fp_cq *q);

/* The descriptor to watch for readability. */
int fp_cq_fd(const fp_cq *q);

/* Any thread, never blocks for long (a mutex held for a few pointer moves).
 * 0, or -1 when the wake-up write failed for a reason other than "already
 * full" (the item is queued all the same and is taken at the next wake-up). */
int fp_cq_post(fp_cq *q, fp_cq_item *item);

/* The consumer: clear the descriptor and take every posted item, oldest
 * first, as a NULL-terminated list (NULL if none).  Read each item's token
 * and next before handing the item back to its owner. */
fp_cq_item *fp_cq_take_all(fp_cq *q);

/* 1 when an item was posted since the last fp_cq_take_all, else 0: lets the
 * consumer skip a take (and its read syscall) that would find nothing. */
int fp_cq_signalled(fp_cq *q);

/* An fp_slots waiter whose grant is posted to a completion queue: the wake
 * callback (run by the releasing thread, without the GIL) posts `item`. */
typedef struct fp_async_waiter {
    fp_waiter waiter;   /* first member: the wake callback casts back */
    fp_cq_item item;
    fp_cq *cq;
} fp_async_waiter;

/* Initialise (state IDLE) with the queue to post to and the item's token. */
void fp_async_waiter_init(fp_async_waiter *w, fp_cq *cq, uint64_t token);

/* A deadline helper for progress handlers: CLOCK_MONOTONIC in nanoseconds. */
int64_t fp_monotonic_ns(void);

#endif /* FP_ASYNC_H */
