/*
 * runtime/ingest_client.c - a blocking client of share's ingest endpoint.
 *
 * Contract in ingest_client.h.  A cooked REQ socket (NNG matches the
 * reply and resends a request whose connection broke); every call opens
 * its own context, so threads may share a client.  The reply is decoded
 * with ss_msg_decode(), which checks the bytes as any input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"
#include "runtime/ingest_client.h"
#include "runtime/req.h"

#define INGEST_RECV_MAX (1024 * 1024)

struct ss_ingest {
	nng_socket sock;
	int timeout_ms;
};

int
ss_ingest_open(ss_ingest **out, const char *url, int timeout_ms)
{
	ss_ingest *c;
	int rv;

	*out = NULL;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return SS_ENOMEM;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		free(c);
		return rv == NNG_ENOMEM ? SS_ENOMEM : SS_EUNAVAIL;
	}
	if ((rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ,
	                              INGEST_RECV_MAX)) != 0 ||
	    (rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(c->sock);
		free(c);
		switch (rv) {
		case NNG_ENOMEM:
			return SS_ENOMEM;
		case NNG_EADDRINVAL:
		case NNG_EINVAL:
		case NNG_ENOTSUP:
			return SS_EBADREQ;
		default:
			return SS_EUNAVAIL;
		}
	}
	*out = c;
	return 0;
}

void
ss_ingest_close(ss_ingest *c)
{
	if (c == NULL)
		return;
	nng_close(c->sock);
	free(c);
}

static void
kv_opt(ss_pack *p, const char *k, const char *v)
{
	if (v != NULL)
		ss_pack_kv_cstr(p, k, v);
}

static void
pack_event(ss_pack *p, const ss_study_event *ev)
{
	const char *pat[] = {ev->patient_id, ev->patient_name, ev->birth_date};
	const char *top[] = {ev->study_date, ev->accession, ev->modality,
	                     ev->description};
	uint32_t n = 2, np = 0;
	char id[SS_MAX_ID_LEN + 1];

	for (size_t i = 0; i < 3; i++)
		np += pat[i] != NULL;
	for (size_t i = 0; i < 4; i++)
		n += top[i] != NULL;
	ss_req_new_id(id);
	ss_pack_request(p, "study.arrived", id);
	msgpack_pack_map(&p->pk,
	                 n + (np > 0) + ev->match_patient + ev->check_only);
	ss_pack_kv_cstr(p, "study_uid", ev->study_uid);
	ss_pack_kv_cstr(p, "worklist", ev->worklist);
	if (np > 0) {
		ss_pack_key(p, "patient");
		msgpack_pack_map(&p->pk, np);
		kv_opt(p, "id", ev->patient_id);
		kv_opt(p, "name", ev->patient_name);
		kv_opt(p, "birth_date", ev->birth_date);
	}
	kv_opt(p, "study_date", ev->study_date);
	kv_opt(p, "accession", ev->accession);
	kv_opt(p, "modality", ev->modality);
	kv_opt(p, "description", ev->description);
	if (ev->match_patient)
		ss_pack_kv_bool(p, "match_patient", true);
	if (ev->check_only)
		ss_pack_kv_bool(p, "check_only", true);
}

/* One request on its own context: the reply, or an SS_E* error. */
static int
round_trip(ss_ingest *c, ss_pack *p, nng_msg **reply)
{
	nng_aio *aio = NULL;
	nng_msg *m = NULL;
	nng_time deadline, now;
	nng_ctx ctx;
	int rv;

	*reply = NULL;
	if ((rv = nng_ctx_open(&ctx, c->sock)) != 0)
		return rv == NNG_ENOMEM ? SS_ENOMEM : SS_EUNAVAIL;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
	    (rv = nng_msg_alloc(&m, 0)) != 0 ||
	    (rv = nng_msg_append(m, p->sb.data, p->sb.size)) != 0)
		goto fail;
	/* One deadline for both halves: a send that waited for share to
	 * connect leaves the reply only what is left. */
	deadline = nng_clock() + (nng_time)c->timeout_ms;
	nng_aio_set_timeout(aio, c->timeout_ms);
	nng_aio_set_msg(aio, m);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail; /* the message is still ours */
	m = NULL;
	now = nng_clock();
	if (now >= deadline) {
		rv = NNG_ETIMEDOUT;
		goto fail;
	}
	nng_aio_set_timeout(aio, (nng_duration)(deadline - now));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail;
	*reply = nng_aio_get_msg(aio);
fail:
	if (m != NULL)
		nng_msg_free(m);
	if (aio != NULL)
		nng_aio_free(aio);
	nng_ctx_close(ctx);
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return SS_ENOMEM;
	case NNG_ETIMEDOUT:
		return SS_ETIMEDOUT;
	default:
		return SS_EUNAVAIL;
	}
}

int
ss_ingest_publish(ss_ingest *c, const ss_study_event *ev, ss_ingest_result *res)
{
	const msgpack_object *o;
	nng_msg *reply = NULL;
	const char *why;
	ss_pack p;
	ss_msg m;
	int rv;

	memset(res, 0, sizeof *res);
	if (ev->study_uid == NULL || ev->worklist == NULL) {
		snprintf(res->message, sizeof res->message,
		         "study_uid and worklist are required");
		return SS_EBADREQ;
	}
	ss_pack_init(&p);
	pack_event(&p, ev);
	rv = round_trip(c, &p, &reply);
	ss_pack_free(&p);
	if (rv != 0)
		return rv;
	rv = ss_msg_decode(&m, nng_msg_body(reply), nng_msg_len(reply), true,
	                   &why);
	nng_msg_free(reply);
	if (rv != 0) {
		snprintf(res->message, sizeof res->message,
		         "bad reply from share: %s", why);
		return SS_EINTERNAL;
	}
	if (!m.ok) {
		rv = m.err;
		snprintf(res->message, sizeof res->message, "%.*s",
		         (int)m.err_msg.n, m.err_msg.p);
	} else {
		o = ss_map_get(m.body, "created");
		res->created = o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN &&
		               o->via.boolean;
		o = ss_map_get(m.body, "added");
		res->added = o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN &&
		             o->via.boolean;
	}
	ss_msg_free(&m);
	return rv;
}
