#define _GNU_SOURCE
#include "cplatform.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#if defined(__linux__)

int swvhdx_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

int64_t swvhdx_copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t length, unsigned flags) {
    // loff_t is a 64-bit signed integer, as int64_t is.
    return (int64_t)copy_file_range(fd_in, (void *)off_in, fd_out, (void *)off_out, length, flags);
}

int swvhdx_renameat2(const char *from, const char *to, unsigned flags) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
}

int swvhdx_sync_file_range(int fd, int64_t offset, int64_t length, unsigned flags) {
    return sync_file_range(fd, (off_t)offset, (off_t)length, flags);
}

#else

int swvhdx_fallocate(int fd, int mode, int64_t offset, int64_t length) { errno = ENOSYS; return -1; }
int64_t swvhdx_copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t length, unsigned flags) { errno = ENOSYS; return -1; }
int swvhdx_renameat2(const char *from, const char *to, unsigned flags) { errno = ENOSYS; return -1; }
int swvhdx_sync_file_range(int fd, int64_t offset, int64_t length, unsigned flags) { errno = ENOSYS; return -1; }

#endif

#if defined(__GLIBC__)
#include <malloc.h>
int swvhdx_set_mmap_threshold(size_t bytes) { return mallopt(M_MMAP_THRESHOLD, (int)bytes); }
#else
int swvhdx_set_mmap_threshold(size_t bytes) { (void)bytes; return 0; }
#endif
