# What a pool says about itself: stats() and the text of a PoolTimeout.

import time


cdef str timeout_text(PoolCore pool, int role, int64_t waited_ns):
    cdef fp_slots *slots = pool.gate.queue() if role == WRITER else pool.reader_slots
    size = fp_slots_capacity(slots)
    in_use = size - fp_slots_free_count(slots)
    message = (
        f"timed out after {waited_ns / 1e9:.3f} s waiting for a {ROLE_NAMES[role]}: "
        f"{size} {ROLE_NAMES[role]} connection(s), {in_use} in use, "
        f"{fp_slots_waiting(slots)} other caller(s) waiting. ")
    if not pool.debug:
        return message + ("Leases are held too long or never returned (use 'with'); "
                          "pass debug=True to see who holds them")
    now = time.monotonic()
    lines = [message + "Held by:"]
    for (held_role, slot), (thread_name, since, stack) in list(pool.holders.items()):
        if held_role == role:
            lines.append(f"  - {ROLE_NAMES[role]} {slot}: thread {thread_name!r} for "
                         f"{now - since:.3f} s, checked out at:\n{stack}")
    return "\n".join(lines)


cdef dict pool_stats(PoolCore pool):
    cache = {"hits": 0, "misses": 0, "evictions": 0}
    conns = [c for c in pool.readers if c is not None] + [pool.gate.current()]
    for c in conns:
        if not (<Connection>c).closed:
            s = (<Connection>c).cache_stats()
            for key in cache:
                cache[key] += s[key]
    # Slots the snapshot sweep holds for a moment are idle ones (_snapshot.pxi).
    readers_idle = min(pool.nreaders, fp_slots_free_count(pool.reader_slots)
                       + fp_flag_load(&pool.sweep_held))
    return {
        "readers": pool.nreaders,
        "readers_open": sum(1 for c in pool.readers if c is not None),
        "readers_idle": readers_idle,
        "readers_in_use": pool.nreaders - readers_idle,
        "writer_busy": pool.gate.busy(),
        "waiting_readers": fp_slots_waiting(pool.reader_slots),
        "waiting_writers": pool.gate.waiting(),
        "writes_queued": fp_batch_queued(pool.gate.batch_queue()),
        "checkouts": fp_counter_get(&pool.n_checkouts)
        + fp_slot_counter_sum(pool.reader_counts, COUNT_CHECKOUTS),
        "waits": fp_counter_get(&pool.n_waits),
        "wait_time": fp_counter_get(&pool.wait_ns) / 1e9,
        "timeouts": fp_counter_get(&pool.n_timeouts),
        "discarded": fp_counter_get(&pool.n_discarded),
        "group_commits": fp_counter_get(&pool.n_group_commits),
        "grouped_writes": fp_counter_get(&pool.n_grouped),
        "snapshot_reuses": fp_counter_get(&pool.n_snapshot_reuses)
        + fp_slot_counter_sum(pool.reader_counts, COUNT_SNAPSHOT_REUSES),
        "statement_cache_hits": cache["hits"],
        "statement_cache_misses": cache["misses"],
        "statement_cache_evictions": cache["evictions"],
        **(pool.checkpointer.stats() if pool.checkpointer is not None else
           {"checkpoints": 0, "wal_restarts": 0, "checkpoint_errors": 0, "checkpoint_waits": 0,
            "litestream": False,
            "litestream_waits": 0, "litestream_wait_timeouts": 0}),
        "closed": <bint>pool.is_closed,
    }
