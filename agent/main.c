/* main.c: vgpumigd's start, event loop, reload and shutdown.
 *
 *   vgpumigd [--config FILE] [-n]
 *
 * Runs in the foreground (systemd Type=exec).  Start: config, libvirt, the
 * store, libvirt's view of the devices its domains use, then the first
 * reconcile (so a claim of a running VM is committed, not expired; with
 * libvirt unreachable it waits), the migrations found unfinished in the
 * store resumed, and only then the API sockets, so the first answer comes
 * from a repaired store.  Stop: the API servers, then every migration
 * worker aborted and joined, then the store and the config.  The one loop waits on a signalfd (TERM/INT: stop;
 * HUP: reload) and a timerfd (housekeeping every min(5 s, lease/4)).  A
 * reload swaps the config only when the new file parses; sockets,
 * state_dir, sysfs_root, host_name and libvirt_uri need a restart; TLS
 * files and the socket's group are re-applied (agent_http_reload). */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>

#include "metrics.h"
#include "migrations.h"
#include "routes.h"
#include "vgm-config.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: vgpumigd [--config FILE] [-n]\n"
		   "  --config FILE  configuration (default %s)\n"
		   "  -n             check the configuration and exit\n",
		AGENT_DEFAULT_CONFIG);
}

static unsigned tick_seconds(unsigned lease)
{
	return MAX(1u, MIN(5u, lease / 4));
}

static int arm_timer(int tfd, unsigned seconds)
{
	struct itimerspec its = { .it_interval = { seconds, 0 }, .it_value = { seconds, 0 } };

	return timerfd_settime(tfd, 0, &its, NULL);
}

/* Keep what needs a restart from the running config; say so once. */
static void keep_restart_only(const agent_config *old, agent_config *new)
{
	char **pairs[][2] = {
		{ (char **)&old->socket, &new->socket },     { (char **)&old->listen, &new->listen },
		{ (char **)&old->state_dir, &new->state_dir },
		{ (char **)&old->sysfs_root, &new->sysfs_root },
		{ (char **)&old->host_name, &new->host_name },
		{ (char **)&old->libvirt_uri, &new->libvirt_uri },
	};
	bool changed = false;

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		char *o = *pairs[i][0], **n = pairs[i][1];

		if (STRPTR_EQ(o, *n))
			continue;
		changed = true;
		free(*n);
		*n = o ? strdup(o) : NULL;
	}
	if (changed)
		log_warn("reload: socket, listen, state_dir, sysfs_root, host_name and libvirt_uri changes need a restart");
}

static void reload(agent *a, int tfd)
{
	_cleanup_(agent_config_freep) agent_config *c = NULL, *old = NULL;
	vgm_error err = { 0 };

	pthread_mutex_lock(&a->lock);
	_cleanup_free_ char *path = strdup(a->cfg->path);
	pthread_mutex_unlock(&a->lock);
	if (!path || agent_config_load(path, &c, &err) < 0) {
		log_error("reload refused, keeping the running config: %s", vgm_error_message(&err));
		return;
	}
	pthread_mutex_lock(&a->lock);
	keep_restart_only(a->cfg, c);
	c->socket_gid = c->socket_group ? c->socket_gid : a->cfg->socket_gid;
	old = a->cfg;
	a->cfg = TAKE_PTR(c);
	pthread_mutex_unlock(&a->lock);
	agent_log_set_level(a->cfg->log_level);
	agent_http_reload(a);
	arm_timer(tfd, tick_seconds(a->cfg->lease_seconds));
	log_info("reloaded %s (%zu peer(s), log_level %s, lease %us)", path, a->cfg->n_peers,
		 agent_log_level_name(a->cfg->log_level), a->cfg->lease_seconds);
}

/* The device layer's create, with the "claim-before-write" fault point:
 * a device exists, the claim that wants it is not yet durable. */
static int create_with_fault(void *ctx, vgm_host *h, const char *parent, const char *type_id,
			     const char *uuid, char **out_id, vgm_error *err)
{
	int r = vgm_device_create(h, parent, type_id, uuid, out_id, err);

	if (r >= 0)
		agent_test_crash_point(ctx, "claim-before-write");
	return r;
}

static int open_state(agent *a, vgm_error *err)
{
	vgm_store_devops devops = { .create = create_with_fault, .ctx = a };
	vgm_store_opts opts = {
		.host_name = a->cfg->host_name,
		.remove_released = a->cfg->remove_released,
		.in_use = !agent_config_no_libvirt(a->cfg) ? agent_in_use : NULL,
		.in_use_ctx = a,
		.devops = a->crash_at ? &devops : NULL,
	};
	int r;

	if (mkdir(a->cfg->state_dir, 0700) < 0 && errno != EEXIST)
		return vgm_error_set(err, errno, "cannot create state_dir %s: %s", a->cfg->state_dir,
				     strerror(errno));
	if ((r = vgm_host_new(a->cfg->sysfs_root, &a->host, err)) < 0 ||
	    (r = vgm_store_open(a->cfg->state_dir, &opts, &a->store, err)) < 0)
		return r;
	/* every inventory reader (checks, facts, libvirt pass) shares the store's
	 * kept-current copy: no request waits for a full sysfs scan.  The first
	 * reconcile runs in the first housekeeping pass, after libvirt's view. */
	vgm_host_set_inventory_source(a->host, vgm_store_inventory_source, a->store);
	return 0;
}

static int agent_start(agent *a, vgm_error *err)
{
	int r;

	if (!agent_config_no_libvirt(a->cfg) &&
	    (r = agent_virt_open(a->cfg->libvirt_uri, &a->virt, err)) < 0)
		return r;
	if ((r = open_state(a, err)) < 0)
		return r;
	agent_nvml_open(a);
	if (agent_metrics_new(&a->metrics) < 0 || agent_jobs_new(&a->jobs) < 0)
		return vgm_error_set(err, ENOMEM, "out of memory");
	/* libvirt's in-use view, then the reconcile, then the migrations the
	 * store says were running, then facts (housekeeping.c), all before the
	 * first request. */
	agent_housekeeping(a);
	if ((r = agent_http_start(a, err)) < 0)
		return r;
	agent_evacuations_resume(a); /* its runner talks to our own API */
	return 0;
}

static void agent_stop(agent *a)
{
	agent_pending_event *e, *next;

	agent_evacuations_stop(a); /* its workers use the API, the store and libvirt */
	agent_http_stop(a);
	log_debug("API servers stopped");
	if (a->cfg && a->cfg->socket)
		unlink(a->cfg->socket);
	/* Workers journal into the store and read the config: join them all
	 * before either goes. */
	agent_jobs_stop(a->jobs);
	a->jobs = NULL;
	vgm_store_close(a->store);
	vgm_host_free(a->host);
	agent_virt_close(a->virt);
	vgm_nvml_close(a->nvml);
	agent_metrics_free(a->metrics);
	vgm_device_uses_free(a->in_use, a->n_in_use);
	json_decref(a->facts);
	for (e = a->events; e; e = next) {
		next = e->next;
		free(e->domain_uuid);
		free(e->domain_name);
		free(e);
	}
	agent_config_free(a->cfg);
	if (a->wake_fd >= 0)
		close(a->wake_fd);
	pthread_cond_destroy(&a->synced);
	pthread_mutex_destroy(&a->evac_lock);
	pthread_mutex_destroy(&a->lock);
}

#if VGM_TEST_HOOKS
void agent_test_crash_point(agent *a, const char *point)
{
	if (!a->crash_at || !STREQ(a->crash_at, point))
		return;
	log_warn("VGPUMIG_TEST_CRASH_AT=%s: killing myself here (test fault point)", point);
	raise(SIGKILL);
}
#endif

static int run_loop(agent *a, int sfd, int tfd)
{
	struct pollfd p[3] = { { .fd = sfd, .events = POLLIN }, { .fd = tfd, .events = POLLIN },
			       { .fd = a->wake_fd, .events = POLLIN } };

	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			return 1;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					reload(a, tfd);
				} else {
					log_info("signal %u: shutting down", si.ssi_signo);
					return 0;
				}
			}
		}
		if (p[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				agent_housekeeping(a);
		}
		if (p[2].revents & POLLIN)
			agent_sync_requested(a);
	}
}

static int parse_args(int argc, char **argv, const char **config, bool *check)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:nhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': *config = optarg; break;
		case 'n': *check = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("vgpumigd %s\n", VGM_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

#if VGM_TEST_HOOKS
/* VGPUMIG_TEST_PROTOCOL=N: speak protocol N (and N-1) instead of this build's
 * range, as the previous release did: the lab's mixed-version test runs one
 * host this way.  A test switch, not a setting: operators never need it. */
static int agent_protocol_from_env(vgm_protocol_range *out, vgm_error *err)
{
	const char *v = getenv("VGPUMIG_TEST_PROTOCOL");
	char *end;
	unsigned long n;

	*out = vgm_protocol_native();
	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n > VGM_PROTOCOL_MAX)
		return vgm_error_setr(err, EINVAL, "invalid_config",
				      "VGPUMIG_TEST_PROTOCOL='%s' is not a protocol version; unset it or "
				      "give one from %u to %u", v, VGM_PROTOCOL_OLDEST, VGM_PROTOCOL_VERSION);
	return vgm_protocol_for((unsigned)n, out, err);
}
#endif

int main(int argc, char **argv)
{
	const char *config = AGENT_DEFAULT_CONFIG;
	agent a = { .lock = PTHREAD_MUTEX_INITIALIZER, .evac_lock = PTHREAD_MUTEX_INITIALIZER, .synced = PTHREAD_COND_INITIALIZER,
		    .local_fd = -1, .wake_fd = -1 };
	vgm_error err = { 0 };
	bool check = false;
	sigset_t mask;
	_cleanup_close_ int sfd = -1, tfd = -1;
	int rc;

	if (parse_args(argc, argv, &config, &check) < 0)
		return 2;
#if VGM_TEST_HOOKS
	a.crash_at = getenv("VGPUMIG_TEST_CRASH_AT");
#endif
	/* VGPUMIG_TEST_PROTOCOL: the mixed-version lab test (test builds only) */
	a.protocol = vgm_protocol_native();
#if VGM_TEST_HOOKS
	if (agent_protocol_from_env(&a.protocol, &err) < 0) {
		fprintf(stderr, "%s\n", vgm_error_message(&err));
		return 1;
	}
#endif
	if (agent_config_load(config, &a.cfg, &err) < 0) {
		fprintf(stderr, "%s\n", vgm_error_message(&err));
		return 1;
	}
	if (check) {
		printf("%s: ok\n", config);
		agent_config_free(a.cfg);
		return 0;
	}
	agent_log_set_level(a.cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* blocked before any thread starts, so only the signalfd sees them */
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	a.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0 || tfd < 0 || a.wake_fd < 0 || arm_timer(tfd, tick_seconds(a.cfg->lease_seconds)) < 0) {
		log_error("signalfd/timerfd: %s", strerror(errno));
		agent_stop(&a);
		return 1;
	}
	if (agent_start(&a, &err) < 0) {
		log_error("%s", vgm_error_message(&err));
		agent_stop(&a);
		return 1;
	}
	log_info("vgpumigd %s ready on host %s (state %s, sysfs %s, libvirt %s%s)", VGM_VERSION,
		 a.cfg->host_name, a.cfg->state_dir, a.cfg->sysfs_root, a.cfg->libvirt_uri,
		 a.cfg->lab_mode ? ", LAB MODE" : "");
#if VGM_TEST_HOOKS
	if (a.protocol.newest != VGM_PROTOCOL_VERSION)
		log_warn("VGPUMIG_TEST_PROTOCOL: speaking protocol %u-%u, not this build's %u-%u",
			 a.protocol.oldest, a.protocol.newest, VGM_PROTOCOL_OLDEST, VGM_PROTOCOL_VERSION);
#endif
	rc = run_loop(&a, sfd, tfd);
	agent_stop(&a);
	return rc;
}
