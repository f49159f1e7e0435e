/*
 * tools/cli_bus.c - one blocking request over NNG for the CLI.
 */
#include <stdio.h>
#include <string.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "proto/errors.h"
#include "proto/mpjson.h"
#include "runtime/req.h"
#include "tools/cli.h"

int
cli_call(const cli_opts *o, const char *url, const char *type,
         const json_t *body, json_t **reply)
{
	char id[SS_MAX_ID_LEN + 1];
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
	if ((rv = nng_req0_open(&sock)) != 0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, o->timeout_ms)) !=
	        0 ||
	    (rv = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, o->timeout_ms)) !=
	        0 ||
	    (rv = nng_dial(sock, url, NULL, 0)) != 0 ||
	    (rv = nng_send(sock, p.sb.data, p.sb.size, 0)) != 0 ||
	    (rv = nng_recvmsg(sock, &msg, 0)) != 0) {
		fprintf(stderr, "studyshare: %s: %s\n", url, nng_strerror(rv));
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
