/*
 * stress_xlock.c - the cross-process writer lock (csrc/fp_xlock.c) with real processes.
 *
 *   mutual exclusion: P forked processes take and release (or hand over) the lock N times
 *     each and bump a counter in shared memory with a deliberately racy read-modify-write
 *     inside it;
 *   timeout: a held lock makes another process's bounded acquire return TIMEOUT in time;
 *   release by a process that does not hold it fails with EPERM and changes nothing;
 *   takeover: a process that exits (or is SIGKILLed) holding the lock does not block the
 *     next one: the waiter finds the holder's token byte unlocked at its first probe;
 *   fork: a child that forgot its inherited handle and opened its own sees the parent's
 *     lock as held (no false takeover) and times out;
 *   stale: a side file truncated under live mappings makes acquire and release return
 *     FP_XLOCK_STALE instead of faulting (SIGBUS) on the page.
 *
 * Usage: stress_xlock <lock file> [scale]. Prints "all checks passed" and exits 0.
 */
#define _GNU_SOURCE
#include "fp_xlock.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                           \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "FAILED %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                          \
            fprintf(stderr, "\n");                                                 \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

struct shared {
    volatile long counter;
    volatile int inside;
    volatile int violations;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static fp_xlock *open_lock(const char *path)
{
    fp_xlock *lock = NULL;
    int rc = fp_xlock_open(path, 0600, -1, -1, &lock);
    CHECK(rc == FP_XLOCK_OK && lock != NULL, "open rc=%d errno=%d", rc, errno);
    return lock;
}

static void worker(const char *path, struct shared *sh, long n)
{
    fp_xlock *lock = open_lock(path);
    for (long i = 0; i < n; i++) {
        CHECK(fp_xlock_acquire(lock, -1) == FP_XLOCK_OK, "acquire");
        if (sh->inside)
            sh->violations++;
        sh->inside = 1;
        long c = sh->counter;
        if (i % 64 == 0)
            sched_yield();      /* widen the window a broken lock would let others into */
        sh->counter = c + 1;
        sh->inside = 0;
        /* Every other release hands over: both kinds must exclude alike. */
        CHECK((i & 1 ? fp_xlock_hand_over(lock) : fp_xlock_release(lock)) == FP_XLOCK_OK,
              "release");
    }
    fp_xlock_close(lock);
}

int main(int argc, char **argv)
{
    CHECK(argc >= 2, "usage: stress_xlock <lock file> [scale]");
    const char *path = argv[1];
    double scale = argc > 2 ? atof(argv[2]) : 1.0;
    long n = (long)(20000 * scale) + 1;
    int procs = 4;
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED, "mmap");

    /* mutual exclusion */
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            worker(path, sh, n);
            _exit(0);
        }
    }
    for (int p = 0; p < procs; p++) {
        int status;
        CHECK(wait(&status) > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker");
    }
    CHECK(sh->violations == 0, "%d processes were inside at once", sh->violations);
    CHECK(sh->counter == procs * n, "counter %ld, expected %ld", sh->counter, procs * n);
    printf("exclusion: %d processes x %ld: ok\n", procs, n);

    fp_xlock *lock = open_lock(path);

    /* release without holding it */
    errno = 0;
    CHECK(fp_xlock_release(lock) == FP_XLOCK_ERROR && errno == EPERM, "release unheld");

    /* timeout: the parent holds it, a child waits 50 ms */
    CHECK(fp_xlock_acquire(lock, 0) == FP_XLOCK_OK, "acquire");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        fp_xlock *mine = open_lock(path);
        double t0 = now();
        int rc = fp_xlock_acquire(mine, 50 * 1000 * 1000);
        double waited = now() - t0;
        CHECK(rc == FP_XLOCK_TIMEOUT, "rc=%d", rc);
        CHECK(waited >= 0.045 && waited < 5.0, "waited %.3f s", waited);
        CHECK(fp_xlock_release(mine) == FP_XLOCK_ERROR, "child released the parent's lock");
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "timeout child");
    CHECK(fp_xlock_release(lock) == FP_XLOCK_OK, "release");
    printf("timeout: ok\n");

    /* takeover: a child takes the lock and exits, or is killed, holding it */
    for (int how = 0; how < 2; how++) {
        pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            fp_xlock *mine = open_lock(path);
            CHECK(fp_xlock_acquire(mine, 0) == FP_XLOCK_OK, "child acquire");
            if (how == 1)
                raise(SIGKILL);
            _exit(0);               /* never released */
        }
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(how == 0 ? WIFEXITED(status) : WIFSIGNALED(status), "status %d", status);
        double t0 = now();
        CHECK(fp_xlock_acquire(lock, 5LL * 1000 * 1000 * 1000) == FP_XLOCK_OK, "takeover");
        CHECK(now() - t0 < 0.5, "takeover took %.3f s", now() - t0);
        CHECK(fp_xlock_takeovers(lock) == (uint64_t)how + 1, "takeovers %llu",
              (unsigned long long)fp_xlock_takeovers(lock));
        CHECK(fp_xlock_release(lock) == FP_XLOCK_OK, "release after takeover");
    }
    printf("takeover: ok\n");

    /* fork: the parent holds it; a child forgets the inherited handle and opens its own */
    CHECK(fp_xlock_acquire(lock, 0) == FP_XLOCK_OK, "acquire");
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        fp_xlock_forget_after_fork(lock);
        fp_xlock *mine = open_lock(path);
        int rc = fp_xlock_acquire(mine, 250 * 1000 * 1000);
        CHECK(rc == FP_XLOCK_TIMEOUT, "child took the live parent's lock: rc=%d", rc);
        CHECK(fp_xlock_takeovers(mine) == 0, "takeover from a live holder");
        fp_xlock_close(mine);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "fork child");
    CHECK(fp_xlock_release(lock) == FP_XLOCK_OK, "parent still owns it after the child");
    printf("fork: ok\n");

    /* stale: the file is truncated under two live handles, one of them holding the lock */
    {
        char stale_path[4096];
        snprintf(stale_path, sizeof stale_path, "%s-stale", path);
        fp_xlock *a = open_lock(stale_path), *b = open_lock(stale_path);
        CHECK(fp_xlock_acquire(a, 0) == FP_XLOCK_OK, "acquire a");
        CHECK(truncate(stale_path, 0) == 0, "truncate");
        errno = 0;
        CHECK(fp_xlock_acquire(b, 10 * 1000 * 1000) == FP_XLOCK_STALE, "acquire b on a stale file");
        CHECK(fp_xlock_release(a) == FP_XLOCK_STALE, "release a on a stale file");
        CHECK(fp_xlock_acquire(a, 0) == FP_XLOCK_STALE, "stays stale");
        fp_xlock_close(a);
        fp_xlock_close(b);
        /* the next opener sets the emptied file up again */
        fp_xlock *c = open_lock(stale_path);
        CHECK(fp_xlock_acquire(c, 0) == FP_XLOCK_OK, "acquire on the re-initialised file");
        CHECK(fp_xlock_release(c) == FP_XLOCK_OK, "release c");
        fp_xlock_close(c);
        struct stat st;
        CHECK(stat(stale_path, &st) == 0 && st.st_size == 4096 && st.st_blocks > 0,
              "page allocated");
        CHECK(unlink(stale_path) == 0, "unlink");
    }
    printf("stale: ok\n");

    fp_xlock_close(lock);
    printf("all checks passed\n");
    return 0;
}
