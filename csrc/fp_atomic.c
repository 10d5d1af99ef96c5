/*
 * fp_atomic.c - see fp_atomic.h.
 */
#include "fp_internal.h"
#include "fp_atomic.h"

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
