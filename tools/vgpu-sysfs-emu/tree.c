/* tree.c: see tree.h.  The emulator is a test tool: running out of memory
 * while building the tree aborts (xalloc.h), since a half-built tree would
 * lie to the program under test. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"
#include "xalloc.h"

tree_node *tree_new_root(void)
{
	tree_node *n = xcalloc(1, sizeof(*n));
	n->name = xstrdup("");
	n->kind = TREE_DIR;
	n->mode = 0755;
	return n;
}

static void tree_free(tree_node *n)
{
	tree_node *c = n->first_child;
	while (c) {
		tree_node *next = c->next;
		tree_free(c);
		c = next;
	}
	free(n->name);
	free(n->text);
	free(n->target);
	free(n);
}

static void tree_unlink(tree_node *n)
{
	tree_node *p = n->parent, *prev = NULL;
	if (!p)
		return;
	for (tree_node *c = p->first_child; c; prev = c, c = c->next) {
		if (c != n)
			continue;
		if (prev)
			prev->next = c->next;
		else
			p->first_child = c->next;
		if (p->last_child == c)
			p->last_child = prev;
		break;
	}
	n->parent = NULL;
	n->next = NULL;
}

void tree_remove(tree_node *n)
{
	if (!n)
		return;
	tree_unlink(n);
	tree_free(n);
}

tree_node *tree_child(const tree_node *dir, const char *name)
{
	if (!dir || dir->kind != TREE_DIR)
		return NULL;
	for (tree_node *c = dir->first_child; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

tree_node *tree_lookup(tree_node *root, const char *path)
{
	tree_node *n = root;
	const char *p = path;
	while (n && *p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		char comp[256];
		if (len >= sizeof(comp))
			return NULL;
		memcpy(comp, p, len);
		comp[len] = '\0';
		n = tree_child(n, comp);
		p += len;
	}
	return n;
}

char *tree_path(const tree_node *n)
{
	if (!n->parent)
		return xstrdup("/");
	size_t len = 0;
	for (const tree_node *c = n; c->parent; c = c->parent)
		len += strlen(c->name) + 1;
	char *s = xmalloc(len + 1);
	s[len] = '\0';
	for (const tree_node *c = n; c->parent; c = c->parent) {
		size_t k = strlen(c->name);
		len -= k;
		memcpy(s + len, c->name, k);
		s[--len] = '/';
	}
	return s;
}

static tree_node *tree_add(tree_node *dir, const char *name, tree_kind kind, mode_t mode)
{
	tree_node *n = xcalloc(1, sizeof(*n));
	tree_node *root = dir;
	while (root->parent)
		root = root->parent;
	n->serial = ++root->next_serial;
	n->name = xstrdup(name);
	n->kind = kind;
	n->mode = mode;
	n->parent = dir;
	if (dir->last_child)
		dir->last_child->next = n;
	else
		dir->first_child = n;
	dir->last_child = n;
	return n;
}

tree_node *tree_mkdir_p(tree_node *root, const char *path)
{
	tree_node *n = root;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, "/");
		char *comp = xstrndup(p, len);
		tree_node *c = tree_child(n, comp);
		if (!c)
			c = tree_add(n, comp, TREE_DIR, 0755);
		free(comp);
		n = c;
		p += len;
	}
	return n;
}

tree_node *tree_add_text(tree_node *dir, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = xvasprintf(fmt, ap);
	va_end(ap);
	tree_node *n = tree_add(dir, name, TREE_ATTR, 0444);
	n->text = text;
	return n;
}

tree_node *tree_add_attr(tree_node *dir, const char *name, mode_t mode, tree_show_fn show,
			 tree_store_fn store, void *data)
{
	tree_node *n = tree_add(dir, name, TREE_ATTR, mode);
	n->show = show;
	n->store = store;
	n->data = data;
	return n;
}

tree_node *tree_add_link(tree_node *dir, const char *name, const char *target_abs)
{
	char *from = tree_path(dir);
	tree_node *n = tree_add(dir, name, TREE_LINK, 0777);
	n->target = tree_relpath(from, target_abs);
	free(from);
	return n;
}

/* Length of the longest common leading run of whole components of two
 * absolute paths (the index of the '/' that ends it). */
static size_t common_prefix(const char *a, const char *b)
{
	size_t i = 0, last = 0;
	for (; a[i] && a[i] == b[i]; i++)
		if (a[i] == '/')
			last = i;
	if ((!a[i] && (b[i] == '/' || !b[i])) || (!b[i] && a[i] == '/'))
		last = i;
	return last;
}

char *tree_relpath(const char *from_abs, const char *to_abs)
{
	size_t common = common_prefix(from_abs, to_abs);
	unsigned ups = 0;
	for (const char *p = from_abs + common; *p; p++)
		if (*p == '/' && p[1])
			ups++;
	const char *rest = to_abs + common;
	while (*rest == '/')
		rest++;
	size_t len = ups * 3 + strlen(rest) + 2;
	char *s = xmalloc(len);
	s[0] = '\0';
	for (unsigned i = 0; i < ups; i++)
		strcat(s, "../");
	strcat(s, rest);
	if (!*s)
		strcpy(s, ".");
	size_t sl = strlen(s);
	if (sl > 1 && s[sl - 1] == '/')
		s[sl - 1] = '\0';
	return s;
}
