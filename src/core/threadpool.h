/* A persistent pool of worker threads. om_threadpool_run calls fn(arg, ith, nth) once on each
 * of the nth threads (the caller's thread is ith 0) and returns when all are done. Every
 * parallel CPU op follows one contract: thread ith takes its share of the rows (see
 * om_split_range), so ops need no locks. */
#ifndef OM_THREADPOOL_H
#define OM_THREADPOOL_H

typedef struct om_threadpool om_threadpool;
typedef void (*om_parallel_fn)(void *arg, int ith, int nth);

/* n_threads <= 0: one per online CPU. Returns NULL (with om_last_error) on failure. */
om_threadpool *om_threadpool_create(int n_threads);
void om_threadpool_free(om_threadpool *pool);
int om_threadpool_size(const om_threadpool *pool);
void om_threadpool_run(om_threadpool *pool, om_parallel_fn fn, void *arg);

/* The half-open range [*begin, *end) of n items that thread ith of nth takes. */
static inline void om_split_range(long n, int ith, int nth, long *begin, long *end) {
    long per = (n + nth - 1) / nth;
    long b = per * ith, e = b + per;
    if (b > n) b = n;
    if (e > n) e = n;
    *begin = b;
    *end = e;
}

#endif
