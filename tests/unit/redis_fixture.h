/*
 * tests/unit/redis_fixture.h - a throw-away redis-server for tests.
 *
 * Header-only (static inline functions): include it in each test file that
 * needs a server.  The server is redis-server from PATH, run in the foreground
 * as our child on 127.0.0.1 and a free port, in a fresh temporary
 * directory, without persistence (--save '' --appendonly no), its output
 * in <dir>/redis.log.  It is killed if the test process dies.
 *
 *   struct ss_rfx fx;
 *   const char *extra[] = {"--requirepass", "s3cret", NULL};
 *
 *   ss_rfx_start(&fx, extra)  starts a server (extra: more redis-server
 *                             arguments, or NULL) and waits until PING
 *                             answers (at most 5 s); 0 or -1.
 *   fx.addr                   "127.0.0.1:<port>", for ss_redis_open.
 *   fx.port                   the port.
 *   ss_rfx_kill(&fx)          SIGKILL + waitpid: a crash.
 *   ss_rfx_restart(&fx)       starts it again on the same port with the
 *                             same arguments and waits for PING; 0 or -1.
 *   ss_rfx_stop(&fx)          SIGTERM + waitpid (if running), then removes
 *                             the directory.  Always call it at the end.
 *   ss_rfx_connect(&fx)       a blocking hiredis connection to the server
 *                             (for test set-up and checks), or NULL;
 *                             redisFree() it.
 *   ss_rfx_open(&fx, &rc)     both, for a group of tests (cmocka's group
 *                             set-up): a server and rc connected to it;
 *                             0 or -1.
 *   ss_rfx_close(&fx, &rc)    frees rc (if any) and stops the server.
 *
 * A server that started with --requirepass still answers PING with an
 * error (NOAUTH): that counts as up.
 */
#ifndef SS_TESTS_REDIS_FIXTURE_H
#define SS_TESTS_REDIS_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define SS_RFX_MAX_EXTRA 16

struct ss_rfx {
	pid_t pid; /* 0 when not running */
	int port;
	char addr[32];
	char dir[64];
	char portstr[8];
	char logpath[96];
	char *extra[SS_RFX_MAX_EXTRA + 1];
};

/* A port nobody listens on right now: bind port 0 and ask which. */
static inline int
ss_rfx_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static inline redisContext *
ss_rfx_connect(const struct ss_rfx *fx)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", fx->port, tv);

	if (c != NULL && c->err != 0) {
		redisFree(c);
		return NULL;
	}
	if (c != NULL)
		redisSetTimeout(c, tv);
	return c;
}

/* Up when PING gets any answer (PONG, or NOAUTH behind a password). */
static inline int
ss_rfx_pings(const struct ss_rfx *fx)
{
	redisContext *c = ss_rfx_connect(fx);
	redisReply *rep;
	int ok = 0;

	if (c == NULL)
		return 0;
	rep = redisCommand(c, "PING");
	if (rep != NULL) {
		ok = rep->type == REDIS_REPLY_STATUS ||
		     rep->type == REDIS_REPLY_ERROR;
		freeReplyObject(rep);
	}
	redisFree(c);
	return ok;
}

static inline void
ss_rfx_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline int
ss_rfx_spawn(struct ss_rfx *fx)
{
	const char *argv[16 + SS_RFX_MAX_EXTRA];
	int n = 0, i, fd, status;
	pid_t pid;

	argv[n++] = "redis-server";
	argv[n++] = "--port";
	argv[n++] = fx->portstr;
	argv[n++] = "--bind";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--save";
	argv[n++] = "";
	argv[n++] = "--appendonly";
	argv[n++] = "no";
	argv[n++] = "--daemonize";
	argv[n++] = "no";
	argv[n++] = "--dir";
	argv[n++] = fx->dir;
	for (i = 0; fx->extra[i] != NULL; i++)
		argv[n++] = fx->extra[i];
	argv[n] = NULL;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Child: only async-signal-safe calls until exec. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(fx->logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	fx->pid = pid;
	/* Wait for PING, at most 5 s; give up early if the child died. */
	for (i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fx->pid = 0;
			return -1;
		}
		if (ss_rfx_pings(fx))
			return 0;
		ss_rfx_sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fx->pid = 0;
	return -1;
}

static inline void
ss_rfx_rmdir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static inline void
ss_rfx_free_extra(struct ss_rfx *fx)
{
	int i;

	for (i = 0; fx->extra[i] != NULL; i++) {
		free(fx->extra[i]);
		fx->extra[i] = NULL;
	}
}

static inline int
ss_rfx_start(struct ss_rfx *fx, const char *const *extra)
{
	int i;

	memset(fx, 0, sizeof(*fx));
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (i == SS_RFX_MAX_EXTRA)
			goto fail;
		fx->extra[i] = strdup(extra[i]);
		if (fx->extra[i] == NULL)
			goto fail;
	}
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/ss-redis-XXXXXX");
	if (mkdtemp(fx->dir) == NULL) {
		fx->dir[0] = '\0';
		goto fail;
	}
	snprintf(fx->logpath, sizeof(fx->logpath), "%s/redis.log", fx->dir);
	/* Another process may take the port between our probe and the
	 * server's bind: try a few. */
	for (i = 0; i < 5; i++) {
		fx->port = ss_rfx_free_port();
		if (fx->port <= 0)
			continue;
		snprintf(fx->portstr, sizeof(fx->portstr), "%d", fx->port);
		snprintf(fx->addr, sizeof(fx->addr), "127.0.0.1:%d", fx->port);
		if (ss_rfx_spawn(fx) == 0)
			return 0;
	}
fail:
	if (fx->dir[0] != '\0')
		ss_rfx_rmdir(fx->dir);
	ss_rfx_free_extra(fx);
	return -1;
}

static inline void
ss_rfx_signal(struct ss_rfx *fx, int sig)
{
	int status;

	if (fx->pid <= 0)
		return;
	kill(fx->pid, sig);
	while (waitpid(fx->pid, &status, 0) < 0 && errno == EINTR)
		;
	fx->pid = 0;
}

static inline void
ss_rfx_kill(struct ss_rfx *fx)
{
	ss_rfx_signal(fx, SIGKILL);
}

static inline int
ss_rfx_restart(struct ss_rfx *fx)
{
	int i;

	ss_rfx_signal(fx, SIGKILL);
	/* The port was ours a moment ago; redis binds with SO_REUSEADDR. */
	for (i = 0; i < 10; i++) {
		if (ss_rfx_spawn(fx) == 0)
			return 0;
		ss_rfx_sleep_ms(100);
	}
	return -1;
}

static inline void
ss_rfx_stop(struct ss_rfx *fx)
{
	ss_rfx_signal(fx, SIGTERM);
	if (fx->dir[0] != '\0')
		ss_rfx_rmdir(fx->dir);
	fx->dir[0] = '\0';
	ss_rfx_free_extra(fx);
}

static inline int
ss_rfx_open(struct ss_rfx *fx, redisContext **rc)
{
	*rc = NULL;
	if (ss_rfx_start(fx, NULL) != 0)
		return -1;
	*rc = ss_rfx_connect(fx);
	return *rc != NULL ? 0 : -1;
}

static inline void
ss_rfx_close(struct ss_rfx *fx, redisContext **rc)
{
	if (*rc != NULL)
		redisFree(*rc);
	*rc = NULL;
	ss_rfx_stop(fx);
}

#endif
