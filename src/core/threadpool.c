/* The persistent worker pool behind every parallel CPU op (see threadpool.h).
 *
 * A decode step issues a few hundred short parallel ops per token, so what matters is the
 * latency of one om_threadpool_run, not its throughput. Workers therefore wait for work by
 * spinning on a generation counter that the caller bumps; only after a bounded spin (so an
 * idle process does not burn its CPUs) do they sleep on a futex (a condition variable where
 * there is no futex). The caller, after doing its own share as thread 0, waits for the
 * workers the same way: spin, then sleep. While spinning, a thread yields its CPU every few
 * microseconds (after the first), so that when there are more runnable threads than CPUs
 * (a pool larger than the machine, other processes) the thread being waited for gets to run.
 *
 * Memory ordering: the task (fn, arg, n_pending) is written before the release increment of
 * `generation` and read after a worker's acquire load of it; each worker's (seq_cst) decrement
 * of `n_pending` publishes its results to the caller's acquire load of zero. The sleep/wake
 * handshakes are Dekker-style (announce, then re-check, both seq_cst), so a wake-up is never
 * lost.
 *
 * Runs from several threads on one pool are serialized by a mutex; a task must not call
 * om_threadpool_run on its own pool (it would wait for itself). */
#include "core/threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#define OM_HAVE_FUTEX 1
#else
#define OM_HAVE_FUTEX 0
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long a waiting thread spins before it sleeps. Long enough to bridge the serial work
 * between two ops of a decode step (norms, sampling of a small vocabulary), short enough that
 * a process waiting for input goes quiet almost at once. */
#define SPIN_NS 200000L

typedef struct worker {
    om_threadpool *pool;
    int ith;
    pthread_t thread;
} worker;

struct om_threadpool {
    int n_threads;
    worker *workers; /* n_threads - 1 of them; the caller is thread 0 */

    /* The task of the current run; written only while no worker is inside a task. */
    om_parallel_fn fn;
    void *arg;
    int shutdown;

    /* Separate cache lines: workers spin on `generation` while others decrement
     * `n_pending`, and a line shared by both would bounce between the cores. */
    _Alignas(64) atomic_uint generation; /* bumped once per run (and once at shutdown) */
    atomic_int n_sleeping;               /* workers asleep (or about to be) on `generation` */
    _Alignas(64) atomic_int n_pending;   /* workers that have not finished the current run */
    atomic_int caller_sleeping;

    pthread_mutex_t run_lock; /* one run at a time when several threads share a pool */
#if !OM_HAVE_FUTEX
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_cond;
#endif
};

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Sleeping on an atomic int's address: returns at once if *addr != expected. Both atomic_int
 * and atomic_uint are plain 32-bit words on every platform we build for. */
static void wait_on(om_threadpool *pool, void *addr, int expected) {
#if OM_HAVE_FUTEX
    (void)pool;
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    pthread_mutex_lock(&pool->sleep_lock);
    if (atomic_load((atomic_int *)addr) == expected) pthread_cond_wait(&pool->sleep_cond, &pool->sleep_lock);
    pthread_mutex_unlock(&pool->sleep_lock);
#endif
}

static void wake_all(om_threadpool *pool, void *addr) {
#if OM_HAVE_FUTEX
    (void)pool;
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
    pthread_mutex_lock(&pool->sleep_lock);
    pthread_cond_broadcast(&pool->sleep_cond);
    pthread_mutex_unlock(&pool->sleep_lock);
#endif
}

/* Waits until pool->generation differs from `seen`; returns the new value. */
static unsigned wait_for_work(om_threadpool *pool, unsigned seen) {
    long deadline = 0;
    for (int spins = 0;; spins++) {
        unsigned g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((spins & 63) != 63) continue;
        long t = now_ns();
        if (!deadline) {
            deadline = t + SPIN_NS;
            continue;
        }
        if (t < deadline) {
            sched_yield();
            continue;
        }
        atomic_fetch_add(&pool->n_sleeping, 1);
        if (atomic_load(&pool->generation) == seen) wait_on(pool, &pool->generation, (int)seen);
        atomic_fetch_sub(&pool->n_sleeping, 1);
        deadline = 0;
    }
}

static void *worker_main(void *p) {
    worker *w = p;
    om_threadpool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_work(pool, seen);
        if (pool->shutdown) break;
        pool->fn(pool->arg, w->ith, pool->n_threads);
        if (atomic_fetch_sub(&pool->n_pending, 1) == 1 && atomic_load(&pool->caller_sleeping))
            wake_all(pool, &pool->n_pending);
    }
    return NULL;
}

/* The caller's wait for the workers of one run. */
static void wait_for_workers(om_threadpool *pool) {
    long deadline = 0;
    for (int spins = 0;; spins++) {
        int left = atomic_load_explicit(&pool->n_pending, memory_order_acquire);
        if (left == 0) return;
        cpu_relax();
        if ((spins & 63) != 63) continue;
        long t = now_ns();
        if (!deadline) {
            deadline = t + SPIN_NS;
            continue;
        }
        if (t < deadline) {
            sched_yield();
            continue;
        }
        atomic_store(&pool->caller_sleeping, 1);
        left = atomic_load(&pool->n_pending);
        if (left != 0) wait_on(pool, &pool->n_pending, left);
        atomic_store(&pool->caller_sleeping, 0);
        deadline = 0;
    }
}

/* Publishes the current task to the workers and wakes any that sleep. */
static void start_workers(om_threadpool *pool) {
    atomic_store_explicit(&pool->n_pending, pool->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add(&pool->generation, 1); /* seq_cst: orders against n_sleeping below */
    if (atomic_load(&pool->n_sleeping) > 0) wake_all(pool, &pool->generation);
}

om_threadpool *om_threadpool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    /* aligned_alloc, not calloc: the struct's cache-line alignment must hold. */
    om_threadpool *pool = aligned_alloc(_Alignof(om_threadpool), sizeof *pool);
    if (pool) memset(pool, 0, sizeof *pool);
    if (!pool) {
        om_errorf("threadpool: out of memory");
        return NULL;
    }
    pool->n_threads = n_threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->n_pending, 0);
    atomic_init(&pool->n_sleeping, 0);
    atomic_init(&pool->caller_sleeping, 0);
    pthread_mutex_init(&pool->run_lock, NULL);
#if !OM_HAVE_FUTEX
    pthread_mutex_init(&pool->sleep_lock, NULL);
    pthread_cond_init(&pool->sleep_cond, NULL);
#endif
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            pool->n_threads = 1;
            om_threadpool_free(pool);
            om_errorf("threadpool: out of memory for %d threads", n_threads);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker *w = &pool->workers[i - 1];
        w->pool = pool;
        w->ith = i;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            /* Only the workers started so far get joined. */
            pool->n_threads = i;
            om_threadpool_free(pool);
            om_errorf("threadpool: cannot start thread %d of %d (error %d)", i, n_threads, rc);
            return NULL;
        }
    }
    return pool;
}

void om_threadpool_free(om_threadpool *pool) {
    if (!pool) return;
    if (pool->n_threads > 1) {
        pool->shutdown = 1;
        start_workers(pool);
        for (int i = 1; i < pool->n_threads; i++) pthread_join(pool->workers[i - 1].thread, NULL);
    }
    pthread_mutex_destroy(&pool->run_lock);
#if !OM_HAVE_FUTEX
    pthread_mutex_destroy(&pool->sleep_lock);
    pthread_cond_destroy(&pool->sleep_cond);
#endif
    free(pool->workers);
    free(pool);
}

int om_threadpool_size(const om_threadpool *pool) { return pool->n_threads; }

void om_threadpool_run(om_threadpool *pool, om_parallel_fn fn, void *arg) {
    if (pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->run_lock);
    pool->fn = fn;
    pool->arg = arg;
    start_workers(pool);
    fn(arg, 0, pool->n_threads);
    wait_for_workers(pool);
    pthread_mutex_unlock(&pool->run_lock);
}
