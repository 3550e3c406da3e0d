/*
 * latencyfs: a model of EFS for tests and benchmarks (tests/support/latencyfs.py builds,
 * mounts and reads it). A FUSE passthrough of a local folder that waits a fixed time in
 * every metadata change (create, mkdir, link, symlink, unlink, rmdir, rename, setattr) and
 * in every lookup the kernel cannot answer from its caches; file data passes at local speed.
 * As on NFS, a change's reply carries the new attributes (no second wait), requests are
 * served concurrently, and the kernel serialises the changes to any one folder.
 *
 * Written in C because the model's own cost must stay far below what it models: a Python
 * server spends ~80 us of one core per request, which ten thousand links would pay too.
 *
 *   latencyfs SOURCE MOUNT MUTATE_US LOOKUP_US CACHE_SECONDS THREADS
 *
 * MOUNT/.latencyfs.json reads as the requests served so far, by kind.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum kind { LOOKUP, READDIR, READLINK, CREATE, MKDIR, LINK, SYMLINK, UNLINK, RMDIR, RENAME, SETATTR, KINDS };
static const char *names[KINDS] = {"lookup", "readdir", "readlink", "create", "mkdir", "link",
                                   "symlink", "unlink", "rmdir", "rename", "setattr"};
static atomic_ulong served[KINDS];
static const char *source;
static useconds_t mutate_us, lookup_us;
static double cache_seconds;
static const char STATS[] = "/.latencyfs.json";
/* libfuse asks for the attributes of what a change made right after it, in the same thread:
   NFS returns them with the change's own reply, so that ask costs nothing. */
static __thread int just_changed;

static void cost(enum kind kind, useconds_t us) {
    atomic_fetch_add(&served[kind], 1);
    if (us) usleep(us);
}

static void change(enum kind kind) {
    cost(kind, mutate_us);
    just_changed = 1;
}

static char *real(const char *path, char *buf) {
    snprintf(buf, PATH_MAX, "%s%s", source, path);
    return buf;
}

static int stats_json(char *buf, size_t size) {
    int len = snprintf(buf, size, "{");
    for (int i = 0; i < KINDS; i++)
        len += snprintf(buf + len, size - len, "%s\"%s\": %lu", i ? ", " : "", names[i], atomic_load(&served[i]));
    return len + snprintf(buf + len, size - len, "}");
}

static void *lfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
    (void)conn;
    cfg->use_ino = 1;
    cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = cache_seconds;
    return NULL;
}

static int lfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    if (strcmp(path, STATS) == 0) {
        memset(st, 0, sizeof *st);
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        return 0;
    }
    if (just_changed)
        just_changed = 0;
    else
        cost(LOOKUP, lookup_us);
    int res = fi ? fstat(fi->fh, st) : lstat(real(path, buf), st);
    return res == -1 ? -errno : 0;
}

static int lfs_access(const char *path, int mask) {
    char buf[PATH_MAX];
    if (strcmp(path, STATS) == 0) return 0;
    return access(real(path, buf), mask) == -1 ? -errno : 0;
}

static int lfs_readlink(const char *path, char *out, size_t size) {
    char buf[PATH_MAX];
    cost(READLINK, lookup_us);
    ssize_t n = readlink(real(path, buf), out, size - 1);
    if (n == -1) return -errno;
    out[n] = '\0';
    return 0;
}

static int lfs_readdir(const char *path, void *out, fuse_fill_dir_t fill, off_t offset,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
    char buf[PATH_MAX];
    (void)offset, (void)fi, (void)flags;
    cost(READDIR, lookup_us);
    DIR *dir = opendir(real(path, buf));
    if (!dir) return -errno;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        struct stat st = {.st_ino = entry->d_ino, .st_mode = (mode_t)entry->d_type << 12};
        if (fill(out, entry->d_name, &st, 0, 0)) break;
    }
    closedir(dir);
    if (strcmp(path, "/") == 0) {
        struct stat st = {.st_mode = S_IFREG};
        fill(out, STATS + 1, &st, 0, 0);
    }
    return 0;
}

#define CHANGE(call, kind)                   \
    do {                                     \
        change(kind);                        \
        return (call) == -1 ? -errno : 0;    \
    } while (0)

static int lfs_mkdir(const char *path, mode_t mode) {
    char buf[PATH_MAX];
    CHANGE(mkdir(real(path, buf), mode), MKDIR);
}

static int lfs_unlink(const char *path) {
    char buf[PATH_MAX];
    CHANGE(unlink(real(path, buf)), UNLINK);
}

static int lfs_rmdir(const char *path) {
    char buf[PATH_MAX];
    CHANGE(rmdir(real(path, buf)), RMDIR);
}

static int lfs_symlink(const char *target, const char *path) {
    char buf[PATH_MAX];
    CHANGE(symlink(target, real(path, buf)), SYMLINK);
}

static int lfs_link(const char *from, const char *to) {
    char a[PATH_MAX], b[PATH_MAX];
    CHANGE(link(real(from, a), real(to, b)), LINK);
}

static int lfs_rename(const char *from, const char *to, unsigned int flags) {
    char a[PATH_MAX], b[PATH_MAX];
    CHANGE(renameat2(AT_FDCWD, real(from, a), AT_FDCWD, real(to, b), flags), RENAME);
}

static int lfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    CHANGE(fi ? fchmod(fi->fh, mode) : chmod(real(path, buf), mode), SETATTR);
}

static int lfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    CHANGE(fi ? fchown(fi->fh, uid, gid) : lchown(real(path, buf), uid, gid), SETATTR);
}

static int lfs_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    CHANGE(fi ? ftruncate(fi->fh, size) : truncate(real(path, buf), size), SETATTR);
}

static int lfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    CHANGE(fi ? futimens(fi->fh, tv) : utimensat(AT_FDCWD, real(path, buf), tv, AT_SYMLINK_NOFOLLOW), SETATTR);
}

static int lfs_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    change(CREATE);
    int fd = open(real(path, buf), fi->flags, mode);
    if (fd == -1) return -errno;
    fi->fh = fd;
    return 0;
}

static int lfs_open(const char *path, struct fuse_file_info *fi) {
    char buf[PATH_MAX];
    if (strcmp(path, STATS) == 0) {
        fi->direct_io = 1; /* its size is unknown until it is read */
        fi->fh = (uint64_t)-1;
        return 0;
    }
    int fd = open(real(path, buf), fi->flags & ~O_CREAT);
    if (fd == -1) return -errno;
    fi->fh = fd;
    return 0;
}

static int lfs_read(const char *path, char *out, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)path;
    if (fi->fh == (uint64_t)-1) {
        char json[1024];
        int len = stats_json(json, sizeof json);
        if (offset >= len) return 0;
        size_t n = (size_t)(len - offset) < size ? (size_t)(len - offset) : size;
        memcpy(out, json + offset, n);
        return (int)n;
    }
    ssize_t n = pread(fi->fh, out, size, offset);
    return n == -1 ? -errno : (int)n;
}

static int lfs_write(const char *path, const char *data, size_t size, off_t offset, struct fuse_file_info *fi) {
    (void)path;
    ssize_t n = pwrite(fi->fh, data, size, offset);
    return n == -1 ? -errno : (int)n;
}

static int lfs_statfs(const char *path, struct statvfs *st) {
    (void)path;
    return statvfs(source, st) == -1 ? -errno : 0;
}

static int lfs_release(const char *path, struct fuse_file_info *fi) {
    (void)path;
    if (fi->fh != (uint64_t)-1) close(fi->fh);
    return 0;
}

static int lfs_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
    (void)path;
    return (datasync ? fdatasync(fi->fh) : fsync(fi->fh)) == -1 ? -errno : 0;
}

static const struct fuse_operations operations = {
    .init = lfs_init,         .getattr = lfs_getattr, .access = lfs_access,   .readlink = lfs_readlink,
    .readdir = lfs_readdir,   .mkdir = lfs_mkdir,     .unlink = lfs_unlink,   .rmdir = lfs_rmdir,
    .symlink = lfs_symlink,   .link = lfs_link,       .rename = lfs_rename,   .chmod = lfs_chmod,
    .chown = lfs_chown,       .truncate = lfs_truncate, .utimens = lfs_utimens, .create = lfs_create,
    .open = lfs_open,         .read = lfs_read,       .write = lfs_write,     .statfs = lfs_statfs,
    .release = lfs_release,   .fsync = lfs_fsync,
};

int main(int argc, char *argv[]) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s SOURCE MOUNT MUTATE_US LOOKUP_US CACHE_SECONDS THREADS\n", argv[0]);
        return 2;
    }
    source = realpath(argv[1], NULL);
    if (!source) {
        perror(argv[1]);
        return 2;
    }
    mutate_us = (useconds_t)atoi(argv[3]);
    lookup_us = (useconds_t)atoi(argv[4]);
    cache_seconds = atof(argv[5]);
    char *fuse_argv[] = {argv[0], "-o", "fsname=latencyfs,default_permissions", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
    struct fuse *fuse = fuse_new(&args, &operations, sizeof operations, NULL);
    if (!fuse || fuse_mount(fuse, argv[2]) != 0) return 1;
    if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) return 1;
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(loop, (unsigned)atoi(argv[6]));
    fuse_loop_cfg_set_idle_threads(loop, (unsigned)atoi(argv[6]));
    int res = fuse_loop_mt(fuse, loop);
    fuse_loop_cfg_destroy(loop);
    fuse_remove_signal_handlers(fuse_get_session(fuse));
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    return res ? 1 : 0;
}
