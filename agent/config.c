/* config.c: the INI reader and checker for vgpumigd.conf.
 *
 * Grammar: lines; '#' or ';' start a comment line; "[vgpumigd]" or
 * "[peer NAME]" open a section; "key = value" sets a key (surrounding
 * whitespace trimmed, one pair of double quotes stripped).  Unknown sections
 * and keys, keys given twice and keys outside a section are errors at their
 * line.  After parsing, values are checked as a whole (TLS files exist when
 * listen is set, the socket group exists, ...) and errors name the line of
 * the key at fault. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "util/fs.h"
#include "util/validate.h"

#define MAX_LINE 4096
#define MAX_CONFIG (1u << 20)

typedef struct parse_state {
	agent_config *c;
	const char *path;
	unsigned line;
	agent_peer *peer; /* current [peer] section, or NULL for [vgpumigd] */
	bool in_main;
	bool peers_only;       /* a peers.d drop-in (config-peers.c): [peer] sections only */
	unsigned key_line[32]; /* line each main key was set on, for later checks */
} parse_state;

static const char *const main_keys[] = {
	"host_name", "state_dir", "sysfs_root", "socket", "listen", "tls_cert", "tls_key", "tls_ca",
	"lease_seconds", "libvirt_uri", "socket_group", "log_level", "lab_mode", "remove_released",
	"tls_crl", "socket_read_group", "migration_tls",
};

static const char *const level_names[] = { "error", "warn", "info", "debug" };

const char *agent_log_level_name(int level)
{
	return level >= 0 && level < (int)ARRAY_SIZE(level_names) ? level_names[level] : "info";
}

void agent_config_free(agent_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->host_name);
	free(c->state_dir);
	free(c->sysfs_root);
	free(c->socket);
	free(c->listen);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->tls_crl);
	free(c->libvirt_uri);
	free(c->socket_group);
	free(c->socket_read_group);
	for (size_t i = 0; i < c->n_peers; i++) {
		free(c->peers[i].name);
		free(c->peers[i].address);
		free(c->peers[i].libvirt_uri);
		free(c->peers[i].tls_name);
	}
	free(c->peers);
	free(c);
}

static int perr(parse_state *st, unsigned line, vgm_error *err, const char *fmt, ...) _printf_(4, 5);
static int perr(parse_state *st, unsigned line, vgm_error *err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return vgm_error_setr(err, EINVAL, "invalid_config", "%s:%u: %s", st->path, line, msg);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_bool(const char *v, bool *out)
{
	if (STREQ(v, "true") || STREQ(v, "yes") || STREQ(v, "1") || STREQ(v, "on"))
		*out = true;
	else if (STREQ(v, "false") || STREQ(v, "no") || STREQ(v, "0") || STREQ(v, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || !isdigit((unsigned char)*v) || n < lo || n > hi)
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

int agent_split_hostport(const char *s, char **host, unsigned *port)
{
	const char *colon;
	size_t hl;

	*host = NULL;
	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		colon = close + 1;
		s++;
		hl = (size_t)(close - s);
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl > 253 || parse_uint(colon + 1, 1, 65535, port) < 0)
		return -EINVAL;
	*host = strndup(s, hl);
	return *host ? 0 : -ENOMEM;
}

static char **main_slot(agent_config *c, const char *key)
{
	if (STREQ(key, "host_name")) return &c->host_name;
	if (STREQ(key, "state_dir")) return &c->state_dir;
	if (STREQ(key, "sysfs_root")) return &c->sysfs_root;
	if (STREQ(key, "socket")) return &c->socket;
	if (STREQ(key, "listen")) return &c->listen;
	if (STREQ(key, "tls_cert")) return &c->tls_cert;
	if (STREQ(key, "tls_key")) return &c->tls_key;
	if (STREQ(key, "tls_ca")) return &c->tls_ca;
	if (STREQ(key, "tls_crl")) return &c->tls_crl;
	if (STREQ(key, "socket_read_group")) return &c->socket_read_group;
	if (STREQ(key, "libvirt_uri")) return &c->libvirt_uri;
	if (STREQ(key, "socket_group")) return &c->socket_group;
	return NULL;
}

static int set_main_key(parse_state *st, const char *key, const char *val, vgm_error *err)
{
	agent_config *c = st->c;
	char **slot;
	size_t k;
	int level;

	for (k = 0; k < ARRAY_SIZE(main_keys); k++)
		if (STREQ(key, main_keys[k]))
			break;
	if (k == ARRAY_SIZE(main_keys))
		return perr(st, st->line, err, "unknown key '%s' in [vgpumigd]", key);
	if (st->key_line[k])
		return perr(st, st->line, err, "key '%s' is already set on line %u", key, st->key_line[k]);
	st->key_line[k] = st->line;
	if ((slot = main_slot(c, key))) {
		free(*slot);
		*slot = strdup(val);
		return *slot ? 0 : -ENOMEM;
	}
	if (STREQ(key, "lease_seconds")) {
		if (parse_uint(val, 1, 86400, &c->lease_seconds) < 0)
			return perr(st, st->line, err, "lease_seconds '%s' must be a number from 1 to 86400", val);
	} else if (STREQ(key, "lab_mode") || STREQ(key, "remove_released") ||
		   STREQ(key, "migration_tls")) {
		bool *b = STREQ(key, "lab_mode") ? &c->lab_mode :
			  STREQ(key, "migration_tls") ? &c->migration_tls : &c->remove_released;

		if (parse_bool(val, b) < 0)
			return perr(st, st->line, err, "%s '%s' must be true or false", key, val);
	} else if (STREQ(key, "log_level")) {
		for (level = 0; level < (int)ARRAY_SIZE(level_names); level++)
			if (STREQ(val, level_names[level]))
				break;
		if (level == (int)ARRAY_SIZE(level_names))
			return perr(st, st->line, err, "log_level '%s' must be error, warn, info or debug", val);
		c->log_level = level;
	}
	return 0;
}

/* "sha256:AB:CD:..." or 64 hex digits, colons optional. */
static int parse_fingerprint(const char *v, unsigned char out[32])
{
	size_t n = 0;

	if (strncasecmp(v, "sha256:", 7) == 0)
		v += 7;
	while (*v) {
		unsigned hi, lo;

		if (*v == ':') {
			v++;
			continue;
		}
		if (n == 32 || !isxdigit((unsigned char)v[0]) || !isxdigit((unsigned char)v[1]))
			return -EINVAL;
		hi = (unsigned)(isdigit((unsigned char)v[0]) ? v[0] - '0' : (tolower(v[0]) - 'a' + 10));
		lo = (unsigned)(isdigit((unsigned char)v[1]) ? v[1] - '0' : (tolower(v[1]) - 'a' + 10));
		out[n++] = (unsigned char)(hi << 4 | lo);
		v += 2;
	}
	return n == 32 ? 0 : -EINVAL;
}

/* One key of a [peer NAME] section (also the unit a peers.d/ file would
 * reuse): every peer key is parsed and checked here. */
static int set_peer_key(parse_state *st, const char *key, const char *val, vgm_error *err)
{
	agent_peer *p = st->peer;
	char **slot = STREQ(key, "address") ? &p->address :
		      STREQ(key, "libvirt_uri") ? &p->libvirt_uri :
		      STREQ(key, "tls_name") ? &p->tls_name : NULL;
	_cleanup_free_ char *host = NULL;
	unsigned port;
	bool b;

	if (STREQ(key, "tls_fingerprint")) {
		if (p->has_fingerprint)
			return perr(st, st->line, err, "key '%s' is already set in [peer %s]", key, p->name);
		if (parse_fingerprint(val, p->fingerprint) < 0)
			return perr(st, st->line, err,
				    "tls_fingerprint '%s' must be a SHA-256 fingerprint (64 hex digits, "
				    "e.g. from 'certtool --fingerprint --hash=sha256')", val);
		p->has_fingerprint = true;
		return 0;
	}
	if (STREQ(key, "migration_tls")) {
		if (p->migration_tls >= 0)
			return perr(st, st->line, err, "key '%s' is already set in [peer %s]", key, p->name);
		if (parse_bool(val, &b) < 0)
			return perr(st, st->line, err, "migration_tls '%s' must be true or false", val);
		p->migration_tls = b;
		return 0;
	}
	if (!slot)
		return perr(st, st->line, err,
			    "unknown key '%s' in [peer %s] (known: address, libvirt_uri, tls_name, "
			    "tls_fingerprint, migration_tls)", key, p->name);
	if (*slot)
		return perr(st, st->line, err, "key '%s' is already set in [peer %s]", key, p->name);
	if (STREQ(key, "address") && agent_split_hostport(val, &host, &port) < 0)
		return perr(st, st->line, err, "address '%s' must be HOST:PORT", val);
	if (STREQ(key, "tls_name") && (!vgm_name_valid(val) || strlen(val) > 253))
		return perr(st, st->line, err, "tls_name '%s' may only use letters, digits and _.:-", val);
	*slot = strdup(val);
	return *slot ? 0 : -ENOMEM;
}

static int open_section(parse_state *st, char *s, vgm_error *err)
{
	agent_config *c = st->c;
	agent_peer *p;
	char *name;

	st->peer = NULL;
	st->in_main = false;
	if (STREQ(s, "vgpumigd")) {
		if (st->peers_only)
			return perr(st, st->line, err,
				    "[vgpumigd] belongs in the main config; a peers.d file holds one [peer NAME]");
		st->in_main = true;
		return 0;
	}
	if (strncmp(s, "peer", 4) != 0 || !isspace((unsigned char)s[4]))
		return perr(st, st->line, err, "unknown section [%s] (known: [vgpumigd], [peer NAME])", s);
	name = trim(s + 4);
	if (!vgm_name_valid(name) || strlen(name) > 128)
		return perr(st, st->line, err, "peer name '%s' may only use letters, digits and _.:-", name);
	if (agent_config_find_peer(c, name))
		return perr(st, st->line, err, "peer '%s' is defined twice", name);
	p = realloc(c->peers, (c->n_peers + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	c->peers = p;
	p = &c->peers[c->n_peers++];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	p->line = st->line;
	p->migration_tls = -1;
	st->peer = p;
	return p->name ? 0 : -ENOMEM;
}

static int parse_line(parse_state *st, char *line, vgm_error *err)
{
	char *s = trim(line), *eq, *key, *val;
	size_t n;

	if (!*s || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		n = strlen(s);
		if (s[n - 1] != ']')
			return perr(st, st->line, err, "section header is missing its ']'");
		s[n - 1] = '\0';
		return open_section(st, trim(s + 1), err);
	}
	eq = strchr(s, '=');
	if (!eq)
		return perr(st, st->line, err, "expected 'key = value', '[section]' or a comment");
	*eq = '\0';
	key = trim(s);
	val = trim(eq + 1);
	n = strlen(val);
	if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
		val[n - 1] = '\0';
		val++;
	}
	if (!st->in_main && !st->peer)
		return perr(st, st->line, err, "key '%s' outside a section; put it under [vgpumigd]", key);
	return st->peer ? set_peer_key(st, key, val, err) : set_main_key(st, key, val, err);
}

static unsigned key_line(const parse_state *st, const char *key)
{
	for (size_t k = 0; k < ARRAY_SIZE(main_keys); k++)
		if (STREQ(key, main_keys[k]))
			return st->key_line[k] ? st->key_line[k] : 1;
	return 1;
}

static int set_default(char **slot, const char *v)
{
	if (*slot && **slot)
		return 0;
	free(*slot);
	*slot = v ? strdup(v) : NULL;
	return !v || *slot ? 0 : -ENOMEM;
}

static int apply_defaults(agent_config *c)
{
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) < 0 || !*host)
		snprintf(host, sizeof(host), "localhost");
	if (set_default(&c->host_name, host) < 0 || set_default(&c->state_dir, "/var/lib/vgpumig") < 0 ||
	    set_default(&c->sysfs_root, "/") < 0 ||
	    set_default(&c->socket, "/run/vgpumig/vgpumigd.sock") < 0 ||
	    set_default(&c->libvirt_uri, "qemu:///system") < 0)
		return -ENOMEM;
	if (c->listen && !*c->listen) {
		free(c->listen);
		c->listen = NULL;
	}
	if (c->socket_group && !*c->socket_group) {
		free(c->socket_group);
		c->socket_group = NULL;
	}
	if (c->socket_read_group && !*c->socket_read_group) {
		free(c->socket_read_group);
		c->socket_read_group = NULL;
	}
	if (c->tls_crl && !*c->tls_crl) {
		free(c->tls_crl);
		c->tls_crl = NULL;
	}
	return 0;
}

static int check_file(parse_state *st, const char *key, const char *path, vgm_error *err)
{
	if (!path || !*path)
		return perr(st, key_line(st, "listen"), err,
			    "listen is set, so %s is needed (or leave listen empty to turn the peer API off)", key);
	if (access(path, R_OK) < 0)
		return perr(st, key_line(st, key), err, "%s '%s' cannot be read: %s", key, path, strerror(errno));
	return 0;
}

static int group_gid(parse_state *st, const char *key, const char *name, gid_t *gid, vgm_error *err)
{
	struct group *g;

	if (!name)
		return 0;
	g = getgrnam(name);
	if (!g)
		return perr(st, key_line(st, key), err, "%s '%s' does not exist", key, name);
	*gid = g->gr_gid;
	return 0;
}

/* Clear text is allowed only when the config says so: a qemu+tcp:// peer
 * (libvirt's unencrypted, unauthenticated transport) needs migration_tls = no. */
static int check_peer(parse_state *st, const agent_peer *p, vgm_error *err)
{
	if (!p->address)
		return perr(st, p->line, err, "[peer %s] has no address (add address = HOST:PORT)", p->name);
	if (agent_peer_migration_tls(st->c, p) && p->libvirt_uri &&
	    strncmp(p->libvirt_uri, "qemu+tcp://", 11) == 0)
		return perr(st, p->line, err,
			    "[peer %s] libvirt_uri '%s' is clear text while migration_tls is on; use "
			    "qemu+tls:// or say 'migration_tls = no' for this peer", p->name,
			    p->libvirt_uri);
	return 0;
}

static int check_config(parse_state *st, vgm_error *err)
{
	agent_config *c = st->c;
	_cleanup_free_ char *host = NULL;
	unsigned port;
	int r;

	if (!vgm_name_valid(c->host_name))
		return perr(st, key_line(st, "host_name"), err,
			    "host_name '%s' may only use letters, digits and _.:-", c->host_name);
	if (c->listen) {
		if (agent_split_hostport(c->listen, &host, &port) < 0)
			return perr(st, key_line(st, "listen"), err, "listen '%s' must be HOST:PORT", c->listen);
		if ((r = check_file(st, "tls_cert", c->tls_cert, err)) < 0 ||
		    (r = check_file(st, "tls_key", c->tls_key, err)) < 0 ||
		    (r = check_file(st, "tls_ca", c->tls_ca, err)) < 0)
			return r;
	}
	if ((r = group_gid(st, "socket_group", c->socket_group, &c->socket_gid, err)) < 0 ||
	    (r = group_gid(st, "socket_read_group", c->socket_read_group, &c->socket_read_gid, err)) < 0)
		return r;
	if (c->listen && c->tls_crl && access(c->tls_crl, R_OK) < 0)
		return perr(st, key_line(st, "tls_crl"), err, "tls_crl '%s' cannot be read: %s",
			    c->tls_crl, strerror(errno));
	if (c->socket[0] != '/' || c->state_dir[0] != '/')
		return perr(st, key_line(st, c->socket[0] != '/' ? "socket" : "state_dir"), err,
			    "socket and state_dir must be absolute paths");
	if (strlen(c->socket) >= 108)
		return perr(st, key_line(st, "socket"), err, "socket path is longer than 107 bytes");
	for (size_t i = 0; i < c->n_peers; i++)
		if ((r = check_peer(st, &c->peers[i], err)) < 0)
			return r;
	return 0;
}

static int parse_text(parse_state *st, char *text, vgm_error *err)
{
	char *line;
	int r;

	/* strsep keeps empty lines so line numbers stay right */
	for (st->line = 1; (line = strsep(&text, "\n")); st->line++) {
		if (strlen(line) > MAX_LINE)
			return perr(st, st->line, err, "line is longer than %d bytes", MAX_LINE);
		if ((r = parse_line(st, line, err)) < 0)
			return r == -ENOMEM ? vgm_error_set(err, ENOMEM, "out of memory") : r;
	}
	st->line--;
	return 0;
}

int agent_config_parse(const char *path, char *text, agent_config **out, vgm_error *err)
{
	_cleanup_(agent_config_freep) agent_config *c = calloc(1, sizeof(*c));
	parse_state st = { .c = c, .path = path };
	int r;

	*out = NULL;
	if (!c)
		return vgm_error_set(err, ENOMEM, "out of memory");
	c->lease_seconds = 300;
	c->log_level = LOG_INFO_;
	c->remove_released = true;
	c->migration_tls = true;
	if ((r = parse_text(&st, text, err)) < 0 || (r = agent_config_load_peers_d(c, path, err)) < 0)
		return r;
	if ((c->path = strdup(path)) == NULL || apply_defaults(c) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	if ((r = check_config(&st, err)) < 0)
		return r;
	*out = TAKE_PTR(c);
	return 0;
}

int agent_config_parse_peers(agent_config *c, const char *path, char *text, vgm_error *err)
{
	parse_state st = { .c = c, .path = path, .peers_only = true };
	int r = parse_text(&st, text, err);

	return r == -ENOMEM ? vgm_error_set(err, ENOMEM, "out of memory") : r;
}

int agent_config_load(const char *path, agent_config **out, vgm_error *err)
{
	_cleanup_free_ char *text = NULL;
	int r;

	*out = NULL;
	if ((r = vgm_read_file(path, MAX_CONFIG, &text, NULL)) < 0)
		return vgm_error_setr(err, -r, "invalid_config", "%s:0: cannot read the config: %s", path,
				      strerror(-r));
	return agent_config_parse(path, text, out, err);
}

const agent_peer *agent_config_find_peer(const agent_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (STREQ(c->peers[i].name, name))
			return &c->peers[i];
	return NULL;
}

bool agent_config_no_libvirt(const agent_config *c)
{
	return STREQ(c->libvirt_uri, "none");
}

bool agent_peer_migration_tls(const agent_config *c, const agent_peer *p)
{
	return p->migration_tls >= 0 ? p->migration_tls != 0 : c->migration_tls;
}

char *agent_peer_libvirt_uri(const agent_config *c, const agent_peer *p)
{
	char *uri = NULL;

	if (p->libvirt_uri)
		return strdup(p->libvirt_uri);
	if (asprintf(&uri, "qemu+%s://%s/system", agent_peer_migration_tls(c, p) ? "tls" : "tcp",
		     p->name) < 0)
		return NULL;
	return uri;
}
