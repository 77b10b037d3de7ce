/* Run-time choice of the CPU kernel set (see cpu_kernels.h).
 *
 * A set is usable when the CPU has its instructions and the OS saves their registers on a
 * context switch (XCR0, read with xgetbv): a hypervisor or kernel may hide AVX-512 state even
 * where cpuid lists the instructions. The choice is made once (pthread_once) and can be forced
 * down with OMINIX_CPU=portable|avx2|avx512, which is how the slower sets are benchmarked. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu/kernels_internal.h"
#include "core/cpu/quant_kernels.h"
#include "core/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

typedef struct {
    int avx2;   /* AVX2 + FMA + F16C, with YMM state enabled */
    int avx512; /* AVX-512 F/BW/VL/DQ, with opmask and ZMM state enabled */
    int avx512_bf16;
} cpu_features;

static unsigned long long read_xcr0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static cpu_features detect(void) {
    cpu_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return f;
    unsigned long long xcr0 = read_xcr0();
    int ymm_state = (xcr0 & 0x6) == 0x6;            /* SSE and AVX state */
    int zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    unsigned a1, b1, c1, d1;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    (void)b1, (void)c1, (void)d1;
    f.avx2 = ymm_state && avx2 && fma && f16c;
    f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl;
    f.avx512_bf16 = f.avx512 && ((a1 >> 5) & 1);
    return f;
}
#endif

static const om_cpu_kernels *chosen;
static const om_cpu_kernels *have_avx2, *have_avx512;
/* The sets with the quantized-weight kernels of quant_kernels.h filled in. */
static om_cpu_kernels filled[3];
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void choose(void) {
#if defined(__x86_64__) || defined(__i386__)
    cpu_features f = detect();
    filled[1] = om_kernels_avx2_set, filled[2] = om_kernels_avx512_set;
    if (f.avx2) om_quant_kernels_fill(&filled[1], OM_QUANT_AVX2), have_avx2 = &filled[1];
    /* The AVX-512 kernels use F/BW/VL/DQ only; avx512_bf16 would need bf16 activations. */
    if (f.avx512) om_quant_kernels_fill(&filled[2], OM_QUANT_AVX512), have_avx512 = &filled[2];
    OM_DEBUG("cpu: avx2 %s, avx512 %s, avx512_bf16 %s", f.avx2 ? "yes" : "no", f.avx512 ? "yes" : "no",
             f.avx512_bf16 ? "yes" : "no");
#endif
    const char *force = getenv("OMINIX_CPU");
    int limit = 2; /* 0 portable, 1 avx2, 2 avx512 */
    if (force && *force) {
        if (!strcmp(force, "portable"))
            limit = 0;
        else if (!strcmp(force, "avx2"))
            limit = 1;
        else if (!strcmp(force, "avx512"))
            limit = 2;
        else
            OM_WARN("OMINIX_CPU=%s is not one of portable, avx2, avx512; ignored", force);
    }
    filled[0] = om_kernels_portable_set;
    om_quant_kernels_fill(&filled[0], OM_QUANT_PORTABLE);
    chosen = &filled[0];
    if (limit >= 1 && have_avx2) chosen = have_avx2;
    if (limit >= 2 && have_avx512) chosen = have_avx512;
    OM_DEBUG("cpu: using the %s kernels", chosen->name);
}

const om_cpu_kernels *om_cpu_kernels_get(void) {
    pthread_once(&detect_once, choose);
    return chosen;
}

const om_cpu_kernels *om_cpu_kernels_portable(void) {
    pthread_once(&detect_once, choose);
    return &filled[0];
}

const om_cpu_kernels *om_cpu_kernels_avx2(void) {
    pthread_once(&detect_once, choose);
    return have_avx2;
}

const om_cpu_kernels *om_cpu_kernels_avx512(void) {
    pthread_once(&detect_once, choose);
    return have_avx512;
}
