// CRC-32C with the CPU's own instruction: export streams checksum every payload byte, and the
// table-driven Swift version (VHDXFormat's CRC32C) runs at a fraction of disk speed. The
// polynomial and conventions are the same; CRC32C.update picks this when the CPU has it.
#include "crc32c_hw.h"
#include <stdlib.h>
#include <string.h>

// VHDX_CRC32C_HW=0 turns the instruction off (to test and measure the Swift path).
static int disabled(void) {
    const char *v = getenv("VHDX_CRC32C_HW");
    return v != NULL && strcmp(v, "0") == 0;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

int swvhdx_crc32c_hw_available(void) {
    __builtin_cpu_init();
    return !disabled() && __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t swvhdx_crc32c_hw(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    uint64_t c = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length > 0) {
        c32 = _mm_crc32_u8(c32, *p++);
        length--;
    }
    return c32;
}

#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#include <asm/hwcap.h>

int swvhdx_crc32c_hw_available(void) { return !disabled() && (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }

__attribute__((target("+crc")))
uint32_t swvhdx_crc32c_hw(uint32_t crc, const void *bytes, size_t length) {
    const unsigned char *p = bytes;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = __crc32cd(crc, word);
        p += 8;
        length -= 8;
    }
    while (length > 0) {
        crc = __crc32cb(crc, *p++);
        length--;
    }
    return crc;
}

#else
int swvhdx_crc32c_hw_available(void) { return 0; }
uint32_t swvhdx_crc32c_hw(uint32_t crc, const void *bytes, size_t length) { (void)bytes; (void)length; return crc; }
#endif
