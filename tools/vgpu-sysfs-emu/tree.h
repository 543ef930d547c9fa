/* tree.h: the in-memory file tree that vgpu-sysfs-emu serves over FUSE.
 *
 * A node is a directory, an attribute (a sysfs-style file whose text is
 * produced by a show callback when it is opened and whose writes go to a
 * store callback), or a symlink.  Symlink targets are stored relative, the
 * way the kernel lays them out, computed from absolute in-tree paths by
 * tree_add_link(), so realpath(3) and tools such as mdevctl resolve them.
 *
 * Invariants: a node belongs to exactly one parent (the root has none);
 * sibling names are unique; nodes are freed only by tree_remove(), which
 * frees the whole subtree.  The tree does no locking: every caller holds
 * the emulator's lock (emu.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef enum tree_kind {
	TREE_DIR,
	TREE_ATTR,
	TREE_LINK,
} tree_kind;

typedef struct tree_node tree_node;

/* show: return a malloc'd NUL-terminated text (or NULL on ENOMEM).
 * store: act on one write(2) of len bytes; return 0 or -errno. */
typedef char *(*tree_show_fn)(tree_node *n);
typedef int (*tree_store_fn)(tree_node *n, const char *buf, size_t len);

struct tree_node {
	char *name;
	tree_kind kind;
	mode_t mode; /* permission bits only */
	tree_node *parent;
	tree_node *first_child;
	tree_node *last_child;
	tree_node *next;
	char *text;   /* attribute with fixed content (show == NULL) */
	char *target; /* symlink target, relative */
	tree_show_fn show;
	tree_store_fn store;
	void *data; /* owner-defined, not freed by the tree */
	unsigned long long serial; /* unique per tree, never reused: tells a
				    * node from a later one at the same path */
	unsigned long long next_serial; /* root only */
};

tree_node *tree_new_root(void);
/* Free a node and its subtree, unlinking it from its parent. NULL is fine. */
void tree_remove(tree_node *n);

/* Look up an absolute path ("/", "/sys/class").  Symlinks are not followed. */
tree_node *tree_lookup(tree_node *root, const char *path);
tree_node *tree_child(const tree_node *dir, const char *name);
/* Absolute path of a node (malloc'd). */
char *tree_path(const tree_node *n);

/* Create every missing directory of an absolute path; return the last. */
tree_node *tree_mkdir_p(tree_node *root, const char *path);
/* Read-only attribute with fixed text (printf-style). */
tree_node *tree_add_text(tree_node *dir, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Attribute with callbacks; mode 0444, 0644 or 0200 as in sysfs. */
tree_node *tree_add_attr(tree_node *dir, const char *name, mode_t mode, tree_show_fn show,
			 tree_store_fn store, void *data);
/* Symlink named name in dir pointing at the absolute in-tree path target_abs;
 * the stored target is relative to dir. */
tree_node *tree_add_link(tree_node *dir, const char *name, const char *target_abs);

/* Relative path from directory from_abs to to_abs (malloc'd). */
char *tree_relpath(const char *from_abs, const char *to_abs);
