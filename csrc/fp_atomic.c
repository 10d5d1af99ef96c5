/*
 * fp_atomic.c - see fp_atomic.h.
 */
#include "fp_internal.h"
#include "fp_atomic.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

void fp_counter_init(fp_atomic_u64 *c)
{
    atomic_init(c, 0u);
}

void fp_counter_add(fp_atomic_u64 *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

uint64_t fp_counter_get(const fp_atomic_u64 *c)
{
    return atomic_load_explicit((fp_atomic_u64 *)c, memory_order_relaxed);
}

void fp_version_bump(fp_atomic_u64 *v)
{
    atomic_fetch_add_explicit(v, 1u, memory_order_release);
}

uint64_t fp_version_get(const fp_atomic_u64 *v)
{
    return atomic_load_explicit((fp_atomic_u64 *)v, memory_order_acquire);
}

void fp_flag_store(fp_atomic_u32 *f, uint32_t value)
{
    atomic_store_explicit(f, value, memory_order_release);
}

uint32_t fp_flag_load(const fp_atomic_u32 *f)
{
    return atomic_load_explicit((fp_atomic_u32 *)f, memory_order_acquire);
}

uint32_t fp_flag_exchange(fp_atomic_u32 *f, uint32_t value)
{
    return atomic_exchange_explicit(f, value, memory_order_acq_rel);
}

void fp_flag_store_fenced(fp_atomic_u32 *f, uint32_t value)
{
    atomic_store_explicit(f, value, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

typedef struct {
    alignas(FP_CACHE_LINE) fp_atomic_u64 n[FP_SLOT_COUNTER_KINDS];
} slot_line;

struct fp_slot_counters {
    uint32_t nslots;
    slot_line *lines;
};

fp_slot_counters *fp_slot_counters_new(uint32_t nslots)
{
    fp_slot_counters *c;
    void *mem = NULL;
    if (nslots == 0)
        return NULL;
    c = malloc(sizeof *c);
    if (c == NULL)
        return NULL;
    if (posix_memalign(&mem, FP_CACHE_LINE, (size_t)nslots * sizeof(slot_line)) != 0) {
        free(c);
        return NULL;
    }
    c->nslots = nslots;
    c->lines = mem;
    for (uint32_t i = 0; i < nslots; i++)
        for (uint32_t k = 0; k < FP_SLOT_COUNTER_KINDS; k++)
            atomic_init(&c->lines[i].n[k], 0u);
    return c;
}

void fp_slot_counters_free(fp_slot_counters *c)
{
    if (c == NULL)
        return;
    free(c->lines);
    free(c);
}

void fp_slot_counter_add(fp_slot_counters *c, uint32_t slot, uint32_t kind, uint64_t n)
{
    atomic_fetch_add_explicit(&c->lines[slot].n[kind], n, memory_order_relaxed);
}

uint64_t fp_slot_counter_sum(const fp_slot_counters *c, uint32_t kind)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < c->nslots; i++)
        total += atomic_load_explicit(&((fp_slot_counters *)c)->lines[i].n[kind],
                                      memory_order_relaxed);
    return total;
}
