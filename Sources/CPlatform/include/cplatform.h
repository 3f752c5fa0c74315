#ifndef SWVHDX_CPLATFORM_H
#define SWVHDX_CPLATFORM_H
#include <stddef.h>
#include <stdint.h>

// Linux calls the Swift Glibc module does not export (glibc declares them only under
// _GNU_SOURCE), wrapped so Swift links them directly. Each returns what the call returns and
// leaves errno set; where the platform has no such call they fail with ENOSYS.

/// fallocate(2).
int swvhdx_fallocate(int fd, int mode, int64_t offset, int64_t length);
/// copy_file_range(2) (glibc 2.27+).
int64_t swvhdx_copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t length, unsigned flags);
/// renameat2(2) at the current directory (glibc 2.28+).
int swvhdx_renameat2(const char *from, const char *to, unsigned flags);
/// sync_file_range(2).
int swvhdx_sync_file_range(int fd, int64_t offset, int64_t length, unsigned flags);
/// glibc's mallopt(M_MMAP_THRESHOLD, bytes): allocations of at least `bytes` are mapped and
/// unmapped on their own, and the threshold no longer rises on its own. Returns 1 when set, 0
/// where the C library has no such setting.
int swvhdx_set_mmap_threshold(size_t bytes);

#endif
