/* CPU feature bits for choosing OpenBLAS's kernels: the same cpuid/xgetbv queries OpenBLAS's own detection makes,
   so brainmap compares like with like. x86 only; elsewhere every query reports "not available". */
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* regs = eax, ebx, ecx, edx of cpuid(leaf, subleaf); 0 if the CPU has no such leaf. */
static inline int brainmap_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int regs[4]) {
    return __get_cpuid_count(leaf, subleaf, &regs[0], &regs[1], &regs[2], &regs[3]);
}

/* XCR0: which register states the OS saves (bits 1–2 SSE/AVX, 5–7 AVX-512). Only valid when cpuid reports OSXSAVE. */
static inline unsigned long long brainmap_xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#else
static inline int brainmap_cpuid(unsigned int leaf, unsigned int subleaf, unsigned int regs[4]) {
    (void)leaf; (void)subleaf; regs[0] = regs[1] = regs[2] = regs[3] = 0; return 0;
}
static inline unsigned long long brainmap_xgetbv0(void) { return 0; }
#endif
