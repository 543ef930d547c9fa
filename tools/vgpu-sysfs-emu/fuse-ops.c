/* fuse-ops.c: FUSE high-level operations over the emulated tree.
 *
 * Semantics copied from sysfs (kernfs): opening an attribute for writing
 * when it has no store, or for reading when it has no show, fails with
 * EACCES even for root; a read sees the text produced when the file was
 * opened (a snapshot, as sysfs fills its buffer on first read); each
 * write(2) is one store of at most a page; a write through a file whose
 * node has gone (a removed mdev's "remove") fails with ENODEV; nothing can
 * be created, renamed or deleted (EPERM).  Caches are off (timeouts 0 and
 * direct I/O) so state changes are visible at once.
 *
 * Every operation holds emu->lock while it touches the tree; an open file
 * keeps its snapshot and the node's serial, never a node pointer, so
 * removing nodes while files are open is safe, and a write never reaches a
 * node created later at the same path (a re-created mdev's "remove"). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "emu.h"
#include "fuse-ops.h"
#include "xalloc.h"

#define SYSFS_PAGE 4096

typedef struct open_file {
	char *text; /* snapshot for readers, NULL for write-only opens */
	size_t len;
	unsigned long long serial; /* the node opened (tree_node.serial) */
} open_file;

static emu *ctx_emu(void)
{
	return fuse_get_context()->private_data;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->use_ino = 0;
	return ctx_emu();
}

static void fill_stat(const emu *e, const tree_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atime = st->st_mtime = st->st_ctime = e->started;
	switch (n->kind) {
	case TREE_DIR:
		st->st_mode = S_IFDIR | n->mode;
		st->st_nlink = 2;
		break;
	case TREE_ATTR:
		st->st_mode = S_IFREG | n->mode;
		st->st_nlink = 1;
		st->st_size = SYSFS_PAGE;
		break;
	case TREE_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(n->target);
		break;
	}
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	emu *e = ctx_emu();
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	if (n)
		fill_stat(e, n, st);
	pthread_mutex_unlock(&e->lock);
	return n ? 0 : -ENOENT;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	emu *e = ctx_emu();
	int r = 0;
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	if (!n)
		r = -ENOENT;
	else if (n->kind != TREE_LINK)
		r = -EINVAL;
	else if (size > 0)
		snprintf(buf, size, "%s", n->target);
	pthread_mutex_unlock(&e->lock);
	return r;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	emu *e = ctx_emu();
	int r = 0;
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	if (!n)
		r = -ENOENT;
	else if (n->kind != TREE_DIR)
		r = -ENOTDIR;
	else {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		for (tree_node *c = n->first_child; c; c = c->next)
			if (filler(buf, c->name, NULL, 0, 0))
				break;
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

static int check_open(const tree_node *n, int flags)
{
	int acc = flags & O_ACCMODE;
	if (n->kind == TREE_DIR)
		return acc == O_RDONLY ? 0 : -EISDIR;
	if (n->kind != TREE_ATTR)
		return -ELOOP; /* the kernel follows links before open; not reached */
	bool can_read = (n->mode & 0444) && (n->show || n->text);
	bool can_write = (n->mode & 0222) && n->store;
	if ((acc == O_RDONLY || acc == O_RDWR) && !can_read)
		return -EACCES;
	if ((acc == O_WRONLY || acc == O_RDWR) && !can_write)
		return -EACCES;
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	emu *e = ctx_emu();
	open_file *of = NULL;
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	int r = n ? check_open(n, fi->flags) : -ENOENT;
	if (r == 0 && n->kind == TREE_ATTR) {
		of = xcalloc(1, sizeof(*of));
		of->serial = n->serial;
		if ((fi->flags & O_ACCMODE) != O_WRONLY) {
			of->text = n->show ? n->show(n) : xstrdup(n->text);
			of->len = strlen(of->text);
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (r == 0) {
		fi->fh = (uint64_t)(uintptr_t)of;
		fi->direct_io = 1;
	}
	return r;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	open_file *of = (open_file *)(uintptr_t)fi->fh;
	if (!of || !of->text)
		return -EBADF;
	if (off < 0 || (size_t)off >= of->len)
		return 0;
	size_t k = of->len - (size_t)off;
	if (k > size)
		k = size;
	memcpy(buf, of->text + off, k);
	return (int)k;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	emu *e = ctx_emu();
	open_file *of = (open_file *)(uintptr_t)fi->fh;
	if (size > SYSFS_PAGE)
		size = SYSFS_PAGE;
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	int r;
	if (!n || !of || n->serial != of->serial)
		r = -ENODEV; /* the attribute went away while open (maybe replaced) */
	else if (n->kind != TREE_ATTR || !n->store)
		r = -EACCES;
	else
		r = n->store(n, buf, size);
	pthread_mutex_unlock(&e->lock);
	return r < 0 ? r : (int)size;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	open_file *of = (open_file *)(uintptr_t)fi->fh;
	if (of)
		free(of->text);
	free(of);
	return 0;
}

/* O_TRUNC from a shell's "echo 1 > attr" arrives as a truncate; sysfs
 * ignores it for writable attributes. */
static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	emu *e = ctx_emu();
	pthread_mutex_lock(&e->lock);
	tree_node *n = tree_lookup(e->root, path);
	int r = !n ? -ENOENT : (n->kind == TREE_ATTR && n->store) ? 0 : -EPERM;
	pthread_mutex_unlock(&e->lock);
	return r;
}

static int op_deny_path(const char *path) { return -EPERM; }
static int op_deny_mode(const char *path, mode_t mode) { return -EPERM; }
static int op_deny_mknod(const char *path, mode_t mode, dev_t dev) { return -EPERM; }
static int op_deny_2(const char *from, const char *to) { return -EPERM; }
static int op_deny_rename(const char *from, const char *to, unsigned int flags) { return -EPERM; }
static int op_deny_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EPERM;
}
static int op_deny_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	return -EPERM;
}
static int op_deny_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EPERM;
}
static int op_deny_utimens(const char *path, const struct timespec tv[2],
			   struct fuse_file_info *fi)
{
	return -EPERM;
}

const struct fuse_operations emu_fuse_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readlink = op_readlink,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.truncate = op_truncate,
	.mknod = op_deny_mknod,
	.mkdir = op_deny_mode,
	.unlink = op_deny_path,
	.rmdir = op_deny_path,
	.symlink = op_deny_2,
	.link = op_deny_2,
	.rename = op_deny_rename,
	.chmod = op_deny_chmod,
	.chown = op_deny_chown,
	.create = op_deny_create,
	.utimens = op_deny_utimens,
};
