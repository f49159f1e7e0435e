/*
 * tools/cli_bus.c - one blocking request over NNG for the CLI.
 *
 * --timeout bounds each step: reaching the daemon, sending, the reply.
 * NNG's blocking dial waits as long as the kernel's connect does (minutes
 * when a firewall drops the SYN), then for the peer's handshake.  So a TCP
 * address is first tried here within the timeout (a refused or
 * unreachable one fails at once, with its reason), then NNG dials in the
 * background and the send waits for its handshake within the timeout.
 * Other transports (ipc://) keep NNG's blocking dial: it fails at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto/errors.h"
#include "proto/mpjson.h"
#include "runtime/req.h"
#include "tools/cli.h"

#define CLI_RECV_MAX_DEFAULT 1048576 /* runtime/common.c's recv-max */

/* One connect to ai within timeout_ms: 0, or an errno. */
static int
try_connect(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	fd = socket(ai->ai_family,
	            ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            ai->ai_protocol);
	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		err = errno;
		if (err == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			                    &len) != 0)
				err = errno;
		}
	}
	close(fd);
	return err;
}

/* Whether url's TCP address takes a connection within timeout_ms; other
 * transports (ipc://) are left to NNG's own dial (*tcp false).  0, or a
 * message in why. */
static int
reachable(const char *url, int timeout_ms, bool *tcp, char *why, size_t n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	nng_url *u = NULL;
	int rv, err = EHOSTUNREACH;

	if (nng_url_parse(&u, url) != 0)
		return 0; /* NNG's dial names what is wrong with it */
	if (strstr(u->u_scheme, "tcp") == NULL || u->u_hostname[0] == '\0') {
		nng_url_free(u);
		return 0;
	}
	*tcp = true;
	if ((rv = getaddrinfo(u->u_hostname, u->u_port, &hints, &res)) != 0) {
		snprintf(why, n, "%s", gai_strerror(rv));
		nng_url_free(u);
		return -1;
	}
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		if ((err = try_connect(ai, timeout_ms)) == 0)
			break;
	freeaddrinfo(res);
	nng_url_free(u);
	if (err == 0)
		return 0;
	snprintf(why, n, "%s",
	         err == ETIMEDOUT ? "no connection within the timeout"
	                          : strerror(err));
	return -1;
}

int
cli_call(const cli_opts *o, const char *url, const char *type,
         const json_t *body, json_t **reply)
{
	char id[SS_MAX_ID_LEN + 1], reason[128];
	bool tcp = false;
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	const char *why = NULL;
	nng_msg *msg = NULL;
	ss_pack p;
	ss_msg m;
	int rv, code = CLI_UNREACHABLE;

	*reply = NULL;
	ss_pack_init(&p);
	ss_req_new_id(id);
	ss_pack_request(&p, type, id);
	if (ss_json_to_mp(&p, body) != 0) {
		fprintf(stderr, "studyshare: the request cannot be encoded\n");
		code = CLI_USAGE;
		goto fail;
	}
	if (reachable(url, o->timeout_ms, &tcp, reason, sizeof reason) != 0) {
		fprintf(stderr, "studyshare: %s: %s\n", url, reason);
		goto fail;
	}
	if ((rv = nng_req0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, o->timeout_ms)) !=
	        0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, o->timeout_ms)) !=
	        0 ||
	    (rv = nng_dial(sock, url, NULL, tcp ? NNG_FLAG_NONBLOCK : 0)) !=
	        0 ||
	    (rv = nng_send(sock, p.sb.data, p.sb.size, 0)) != 0 ||
	    (rv = nng_recvmsg(sock, &msg, 0)) != 0) {
		fprintf(stderr, "studyshare: %s: %s\n", url, nng_strerror(rv));
		/* A daemon drops what is over its --recv-max unanswered. */
		if (rv == NNG_ETIMEDOUT && p.sb.size > CLI_RECV_MAX_DEFAULT)
			fprintf(stderr,
			        "studyshare: the request was %zu bytes: a "
			        "daemon drops requests over its --recv-max "
			        "(%d by default)\n",
			        p.sb.size, CLI_RECV_MAX_DEFAULT);
		goto fail;
	}
	if (ss_msg_decode(&m, nng_msg_body(msg), nng_msg_len(msg), true,
	                  &why) != 0) {
		fprintf(stderr, "studyshare: bad reply from %s: %s\n", url,
		        why);
		code = CLI_ERR;
		goto fail;
	}
	if (m.ok) {
		*reply = ss_mp_to_json(m.body);
		code = *reply != NULL ? CLI_OK : CLI_ERR;
	} else {
		fprintf(stderr, "studyshare: %s: %.*s\n", ss_err_word(m.err),
		        (int)m.err_msg.n, m.err_msg.p);
		code = CLI_ERR;
	}
	ss_msg_free(&m);
fail:
	if (msg != NULL)
		nng_msg_free(msg);
	if (nng_socket_id(sock) > 0)
		nng_close(sock);
	ss_pack_free(&p);
	return code;
}

void
cli_print(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	fputc('\n', stdout);
}
