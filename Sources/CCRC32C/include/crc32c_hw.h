#ifndef SWVHDX_CRC32C_HW_H
#define SWVHDX_CRC32C_HW_H
#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC-32C instruction (x86-64 SSE4.2, AArch64 CRC) and the environment
/// does not turn it off (VHDX_CRC32C_HW=0), else 0.
int swvhdx_crc32c_hw_available(void);

/// Continues a CRC-32C over `length` bytes with the CPU's instruction. `crc` is the running
/// value in its inverted (internal) form. Only call when swvhdx_crc32c_hw_available().
uint32_t swvhdx_crc32c_hw(uint32_t crc, const void *bytes, size_t length);

#endif
