/*
** Durable file-system steps shared by snapshots and transactional sinks.
** A file is durable once it and its directory entry are fsynced; a rename is
** durable once the directory holding it is fsynced.
*/
#ifndef WEIR_FS_H
#define WEIR_FS_H

#include <stddef.h>
#include <stdint.h>

/* Writes len bytes to path.tmp, fsyncs and closes it, renames it to path and
** fsyncs the directory. Returns 0 or a negative error; on error the
** temporary file is unlinked and path is untouched. */
int wr__fs_write_durable(const char* path, const void* data, size_t len);

/* Fsyncs the file or directory at path. Returns 0 or a negative error. */
int wr_fs_fsync_path(const char* path);

/* Fsyncs the directory that holds path. Returns 0 or a negative error. */
int wr_fs_fsync_parent(const char* path);

/* Reads the whole regular file at path into a malloc'd buffer the caller
** frees. Never blocks on a FIFO: anything but a regular file (a FIFO, a
** device, a directory) is refused with WR_ENOTFILE. Returns 0 or a
** negative error; *data is NULL on error. */
int wr_fs_read_all(const char* path, char** data, size_t* len);

/* Opens the regular file at path for reading, as wr_fs_read_all does
** (never blocking on a FIFO; WR_ENOTFILE for anything but a regular
** file). Returns the file descriptor (the caller closes it) with *size its
** size in bytes, or a negative error. */
int wr_fs_open_regular(const char* path, uint64_t* size);

#endif
