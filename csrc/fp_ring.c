/*
 * fp_ring.c - see fp_ring.h for the contract.
 *
 * Cell word = (tag << 24) | value, tag = 40 low bits of a ring position.
 * For the cell used by position `pos` (index pos & mask):
 *   tag == pos          free, waiting for the producer of pos
 *   tag == pos + 1      holds the value pushed at pos (published)
 *   tag == pos + cap    consumed; free for the producer of pos + cap
 * Tags only grow (mod 2^40), every change is a CAS on the whole word.
 *
 * push: read enq = p, read cell p.
 *   free for p          -> CAS cell to (p+1, value): claimed AND published
 *                          in one step; then try to advance enq p -> p+1.
 *   published for p     -> another producer won p but has not advanced enq
 *                          yet: advance it for them (helping), retry.
 *   still holds p - cap -> the ring is full (see below), FP_RING_FULL.
 *   anything else       -> our p is stale, retry.
 * pop mirrors it with deq, "published" and "consumed".
 *
 * Why FULL/EMPTY are exact: the counters advance past a position only
 * after its cell changed state, and tags never go back.  So if a producer
 * that read enq == p then sees cell p still holding position p - cap, enq
 * is still p (nobody could have published p), positions p-cap .. p-1 are
 * all published and position p-cap is not consumed (consumption is in
 * position order for the same reason): the ring holds `cap` values at that
 * instant of the seq_cst total order.  Symmetrically for EMPTY.
 */
#include "fp_internal.h"
#include "fp_ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_BITS 24
#define VALUE_MASK ((UINT64_C(1) << VALUE_BITS) - 1)
#define TAG_BITS   40
#define TAG_MASK   ((UINT64_C(1) << TAG_BITS) - 1)

_Static_assert(VALUE_BITS + TAG_BITS == 64, "cell word layout");
_Static_assert(FP_RING_MAX_VALUE == VALUE_MASK, "value range matches layout");

struct fp_ring {
    /* Producers and consumers hammer different counters: keep each on its
     * own cache line so a push does not invalidate the line pops read. */
    alignas(FP_CACHE_LINE) _Atomic uint64_t enq;
    alignas(FP_CACHE_LINE) _Atomic uint64_t deq;
    /* Read-only after creation; its own line so it is never invalidated. */
    alignas(FP_CACHE_LINE) uint64_t mask;
    alignas(FP_CACHE_LINE) _Atomic uint64_t cells[];
};

static inline uint64_t make_word(uint64_t pos_tag, uint64_t value)
{
    return ((pos_tag & TAG_MASK) << VALUE_BITS) | (value & VALUE_MASK);
}

/* Signed distance (mod 2^40) from position `pos` to the word's tag. */
static inline int64_t tag_dist(uint64_t word, uint64_t pos)
{
    uint64_t d = ((word >> VALUE_BITS) - pos) & TAG_MASK;
    /* sign-extend the 40-bit difference */
    return d >= (UINT64_C(1) << (TAG_BITS - 1)) ? (int64_t)d - (INT64_C(1) << TAG_BITS)
                                                : (int64_t)d;
}

fp_ring *fp_ring_new(uint32_t min_capacity)
{
    if (min_capacity == 0 || min_capacity > FP_RING_MAX_CAPACITY)
        return NULL;

    uint64_t cap = 2; /* see header: one cell cannot encode full vs free */
    while (cap < min_capacity)
        cap <<= 1;

    size_t bytes = sizeof(fp_ring) + (size_t)cap * sizeof(_Atomic uint64_t);
    void *mem = NULL;
    /* malloc only guarantees 16-byte alignment; the padding above needs
     * the struct itself to start on a cache line. */
    if (posix_memalign(&mem, FP_CACHE_LINE, bytes) != 0)
        return NULL;
    memset(mem, 0, bytes);

    fp_ring *r = mem;
    r->mask = cap - 1;
    for (uint64_t i = 0; i < cap; i++)
        atomic_init(&r->cells[i], make_word(i, 0));
    atomic_init(&r->enq, 0);
    atomic_init(&r->deq, 0);
    return r;
}

void fp_ring_free(fp_ring *ring)
{
    free(ring);
}

/* Move a lagging counter from pos to pos + 1; failure means someone else
 * already did (or it moved further), which is just as good. */
static inline void advance(_Atomic uint64_t *ctr, uint64_t pos)
{
    atomic_compare_exchange_strong(ctr, &pos, pos + 1);
}

int fp_ring_push(fp_ring *ring, uint32_t value)
{
    if (value > FP_RING_MAX_VALUE)
        return FP_RING_EINVAL;
    const uint64_t cap = ring->mask + 1;
    for (;;) {
        uint64_t pos = atomic_load(&ring->enq);
        _Atomic uint64_t *cell = &ring->cells[pos & ring->mask];
        uint64_t w = atomic_load(cell);
        int64_t d = tag_dist(w, pos);
        if (d == 0) {
            /* claim and publish in one step: no window in which a stalled
             * producer could make the cell look occupied-but-empty */
            if (atomic_compare_exchange_strong(cell, &w, make_word(pos + 1, value))) {
                advance(&ring->enq, pos);
                return FP_RING_OK;
            }
        } else if (d == 1) {
            advance(&ring->enq, pos); /* winner not done yet: help it */
        } else if (d == 1 - (int64_t)cap) {
            return FP_RING_FULL; /* exact, see file comment */
        }
        /* else: pos was stale (enq moved on); reload */
    }
}

int fp_ring_pop(fp_ring *ring, uint32_t *out)
{
    const uint64_t cap = ring->mask + 1;
    for (;;) {
        uint64_t pos = atomic_load(&ring->deq);
        _Atomic uint64_t *cell = &ring->cells[pos & ring->mask];
        uint64_t w = atomic_load(cell);
        int64_t d = tag_dist(w, pos);
        if (d == 1) {
            /* take the value and free the cell for the next lap at once */
            if (atomic_compare_exchange_strong(cell, &w, make_word(pos + cap, 0))) {
                advance(&ring->deq, pos);
                *out = (uint32_t)(w & VALUE_MASK);
                return FP_RING_OK;
            }
        } else if (d == 0) {
            return FP_RING_EMPTY; /* exact, see file comment */
        } else if (d == (int64_t)cap) {
            advance(&ring->deq, pos); /* consumed but deq lags: help */
        }
        /* else: pos was stale; reload */
    }
}

uint32_t fp_ring_capacity(const fp_ring *ring)
{
    return (uint32_t)(ring->mask + 1);
}

uint32_t fp_ring_size(const fp_ring *ring)
{
    /* The counters are atomics we only read; cast away const because some
     * compilers reject atomic_load on a const-qualified object. */
    fp_ring *r = (fp_ring *)ring;
    uint64_t d = atomic_load_explicit(&r->deq, memory_order_relaxed);
    uint64_t e = atomic_load_explicit(&r->enq, memory_order_relaxed);
    /* lagging counters / two separate loads can make this off by a few */
    if ((int64_t)(e - d) <= 0)
        return 0;
    uint64_t n = e - d;
    return n > r->mask + 1 ? (uint32_t)(r->mask + 1) : (uint32_t)n;
}
