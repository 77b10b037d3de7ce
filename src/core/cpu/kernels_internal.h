/* Shared between the kernel files (kernels*.c) only: the blocking of matmul, written once, and
 * the per-instruction-set pieces it drives.
 *
 * y = x . w^T is computed one of two ways:
 *  - small M (decode, short speculative drafts): memory bound, so every weight byte should be
 *    read once and nothing else should matter. A "small tile" reads up to 4 weight rows
 *    straight from the (possibly mmap'd) checkpoint, converts them in registers and takes their
 *    dot products with up to small_r rows of x. For M > small_r the other rows of x reuse the
 *    same 4 weight rows while they are still in L1.
 *  - larger M (prefill): compute bound. A panel of nr weight rows by kc columns is converted to
 *    f32 and transposed (k-major) once, then an mr x nr register tile of y is accumulated by
 *    outer products (broadcast one x value, multiply a vector of nr weights), for every group
 *    of mr rows of x. The panel stays in L1/L2 and is reused M/mr times; x is read in place.
 */
#ifndef OM_KERNELS_INTERNAL_H
#define OM_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/cpu/cpu_kernels.h"

/* The address base + off for a prefetch, which may lie past the end of base's object: formed
 * as an integer, since such a pointer may not be formed in C (the prefetch itself never
 * faults). */
#define OM_AHEAD(base, off) ((const char *)((uintptr_t)(base) + (size_t)(off)))

/* Largest panel (kc * nr floats) any instruction set uses; it lives on the stack. */
#define OM_GEMM_PANEL_FLOATS (256 * 32)
/* The parts of x and of y that the packed path keeps in L2 (see om_gemm_drive). */
#ifndef OM_GEMM_X_SLICE_FLOATS
#define OM_GEMM_X_SLICE_FLOATS (192 * 1024)
#endif
#ifndef OM_GEMM_Y_BLOCK_FLOATS
#define OM_GEMM_Y_BLOCK_FLOATS (128 * 1024)
#endif

typedef struct om_gemm_pieces {
    int mr, nr, kc;   /* register tile of the packed path and its k block */
    int small_m_max;  /* M up to this uses small tiles */
    int small_r;      /* rows of x per small tile (<= 4) */
    /* Small tile: y[r*ldy + c] = dot(x row r, w row c) for r < R, c < rows (rows <= 4). */
    void (*small)(int R, int K, const float *x, size_t ldx, const char *w, size_t ldw, int rows, float *y,
                  size_t ldy);
    /* panel[k*nr + j] = w(row j, column k) as f32 for k < kc, j < nr; rows >= `rows` are 0. */
    void (*pack)(const char *w, size_t ldw, int rows, int kc, float *panel);
    /* y[i*ldy + j] (+)= sum_k x[i*ldx + k] * panel[k*nr + j] for i < mr, j < ncols. */
    void (*micro)(int mr, int kc, const float *x, size_t ldx, const float *panel, float *y, size_t ldy, int ncols,
                  int accumulate);
} om_gemm_pieces;

static inline void om_gemm_drive(const om_gemm_pieces *p, size_t wsize, int M, int K, const float *x, size_t ldx,
                                 const void *w, size_t ldw, float *y, size_t ldy, int n0, int n1) {
    const char *wb = (const char *)w;
    if (K <= 0) {
        for (int m = 0; m < M; m++)
            for (int n = n0; n < n1; n++) y[(size_t)m * ldy + (size_t)n] = 0.0f;
        return;
    }
    if (M <= p->small_m_max) {
        for (int n = n0; n < n1; n += 4) {
            int rows = n1 - n < 4 ? n1 - n : 4;
            for (int m = 0; m < M; m += p->small_r) {
                int R = M - m < p->small_r ? M - m : p->small_r;
                p->small(R, K, x + (size_t)m * ldx, ldx, wb + (size_t)n * ldw, ldw, rows, y + (size_t)m * ldy + n,
                         ldy);
            }
        }
        return;
    }
    /* Loop order, outermost first: chunks of rows of x, blocks of columns, k blocks, panels
     * of nr columns, groups of mr rows. With the k blocks outside the panels, the slice of x
     * that a k block reads (chunk rows x kc) stays in L2 while the panels of a column block pass
     * by; the column block bounds the part of y that is read and written once per k block, so
     * that it stays in L2 too. Both sizes are chosen to share a 2 MiB L2. */
    _Alignas(64) float panel[OM_GEMM_PANEL_FLOATS];
    int mc = OM_GEMM_X_SLICE_FLOATS / p->kc;
    mc -= mc % p->mr;
    for (int m0 = 0; m0 < M; m0 += mc) {
        int m1 = M - m0 < mc ? M : m0 + mc;
        int nb = OM_GEMM_Y_BLOCK_FLOATS / (m1 - m0);
        nb = nb < p->nr ? p->nr : nb - nb % p->nr;
        for (int b0 = n0; b0 < n1; b0 += nb) {
            int b1 = n1 - b0 < nb ? n1 : b0 + nb;
            for (int k0 = 0; k0 < K; k0 += p->kc) {
                int kc = K - k0 < p->kc ? K - k0 : p->kc;
                for (int n = b0; n < b1; n += p->nr) {
                    int cols = b1 - n < p->nr ? b1 - n : p->nr;
                    /* Cold weights come in at a fraction of the memory bandwidth when only the
                     * pack's short strided reads ask for them, so the next panel's are
                     * requested (into L2) while this one is packed and used. A prefetch past
                     * the end of the weights is harmless: prefetches never fault. */
                    size_t next = (size_t)(n + p->nr) * ldw + (size_t)k0 * wsize;
                    for (int j = 0; j < p->nr; j++)
                        for (size_t b = 0; b < (size_t)kc * wsize; b += 64)
                            __builtin_prefetch(OM_AHEAD(wb, next + (size_t)j * ldw + b), 0, 2);
                    p->pack(wb + (size_t)n * ldw + (size_t)k0 * wsize, ldw, cols, kc, panel);
                    for (int m = m0; m < m1; m += p->mr) {
                        int mr = m1 - m < p->mr ? m1 - m : p->mr;
                        p->micro(mr, kc, x + (size_t)m * ldx + k0, ldx, panel, y + (size_t)m * ldy + n, ldy,
                                 cols, k0 > 0);
                    }
                }
            }
        }
    }
}

/* The kernel sets; kernels.c hands out the ones the CPU supports. */
extern const om_cpu_kernels om_kernels_portable_set;
#if defined(__x86_64__) || defined(__i386__)
extern const om_cpu_kernels om_kernels_avx2_set;
extern const om_cpu_kernels om_kernels_avx512_set;
#endif

#endif
