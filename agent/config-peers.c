/* config-peers.c: the peers.d drop-in directory of vgpumigd's config.
 *
 * Configuration management writes one file per peer, so a fleet of N hosts
 * needs no N x N edits of one file: /etc/vgpumig/peers.d/host-b.conf holds
 *   [peer host-b]
 *   address = 198.51.100.2:7443
 * The directory is peers.d beside the config file.  Every regular file named
 * *.conf is read, in name order (so messages are stable); other names
 * (editor backups, .dpkg-old, hidden files) are skipped, as systemd and apt
 * do.  Each file must hold exactly one [peer NAME] section with an address;
 * a peer named twice, anywhere, is an error naming the file and line.  The
 * whole set is checked with the main file, so `vgpumigd -n` validates it all
 * and a SIGHUP reload applies it only when every file is sound.  A missing
 * directory simply adds no peers. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "util/fs.h"

#define PEERS_DIR "peers.d"
#define MAX_PEER_FILES 4096
#define MAX_PEER_FILE (64u * 1024)

static bool is_dropin_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 5 && STREQ(n + len - 5, ".conf");
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strv_freep(char ***v)
{
	if (!*v)
		return;
	for (char **p = *v; *p; p++)
		free(*p);
	free(*v);
}

/* The *.conf names in dir, sorted, NULL-terminated; *out NULL when dir does not exist. */
static int list_dropins(const char *dir, char ***out, vgm_error *err)
{
	_cleanup_(strv_freep) char **names = calloc(MAX_PEER_FILES + 1, sizeof(char *));
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	*out = NULL;
	if (!d)
		return errno == ENOENT ? 0 :
		       vgm_error_setr(err, errno, "invalid_config", "%s: cannot read the peers directory: %s",
				      dir, strerror(errno));
	while (names && (de = readdir(d))) {
		if (!is_dropin_name(de->d_name))
			continue;
		if (n == MAX_PEER_FILES) {
			closedir(d);
			return vgm_error_setr(err, E2BIG, "invalid_config",
					      "%s: more than %d peer files", dir, MAX_PEER_FILES);
		}
		if (!(names[n++] = strdup(de->d_name)))
			break;
	}
	closedir(d);
	if (!names || (n && !names[n - 1]))
		return vgm_error_set(err, ENOMEM, "out of memory");
	qsort(names, n, sizeof(char *), cmp_names);
	*out = TAKE_PTR(names);
	return 0;
}

/* One drop-in: exactly one [peer NAME] section, with an address. */
static int load_dropin(agent_config *c, const char *path, vgm_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t before = c->n_peers;
	struct stat sb;
	int r;

	if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return vgm_error_setr(err, EINVAL, "invalid_config", "%s:0: not a regular file; "
				      "peers.d holds one NAME.conf file per peer", path);
	if ((r = vgm_read_file(path, MAX_PEER_FILE, &text, NULL)) < 0)
		return vgm_error_setr(err, -r, "invalid_config", "%s:0: cannot read: %s", path,
				      strerror(-r));
	if ((r = agent_config_parse_peers(c, path, text, err)) < 0)
		return r;
	if (c->n_peers == before)
		return vgm_error_setr(err, EINVAL, "invalid_config",
				      "%s:0: no [peer NAME] section; a peers.d file holds one peer", path);
	if (c->n_peers > before + 1)
		return vgm_error_setr(err, EINVAL, "invalid_config",
				      "%s:%u: a second peer ([peer %s]); put each peer in its own file",
				      path, c->peers[before + 1].line, c->peers[before + 1].name);
	if (!c->peers[before].address)
		return vgm_error_setr(err, EINVAL, "invalid_config",
				      "%s:%u: [peer %s] has no address (add address = HOST:PORT)", path,
				      c->peers[before].line, c->peers[before].name);
	return 0;
}

int agent_config_load_peers_d(agent_config *c, const char *config_path, vgm_error *err)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_(strv_freep) char **names = NULL;
	const char *slash = strrchr(config_path, '/');
	int r;

	if (slash)
		r = asprintf(&dir, "%.*s/%s", (int)(slash - config_path), config_path, PEERS_DIR);
	else
		r = asprintf(&dir, "%s", PEERS_DIR);
	if (r < 0) {
		dir = NULL;
		return vgm_error_set(err, ENOMEM, "out of memory");
	}
	if ((r = list_dropins(dir, &names, err)) < 0 || !names)
		return r;
	for (char **n = names; *n; n++) {
		_cleanup_free_ char *path = NULL;

		if (asprintf(&path, "%s/%s", dir, *n) < 0) {
			path = NULL;
			return vgm_error_set(err, ENOMEM, "out of memory");
		}
		if ((r = load_dropin(c, path, err)) < 0)
			return r;
	}
	return 0;
}
