/*
 * services/share/register.c - invitations: share.register and
 * share.invitation.get.
 *
 * share.register {invite, user, name, password, addr?} creates the
 * account of an invited address (authz does that) and delivers every
 * share pending for the address to the new personal worklist, once:
 *
 *   RG_TOKEN     the token's keyed hash -> the address (share:{tok:<h>})
 *   RG_CLAIM     claim script on the address's slot: the invitation is
 *                live and nobody else is registering with it; a claim is
 *                a lease (SH_CLAIM_MS) so a crash cannot lock it for good;
 *                returns the pending shares
 *   RG_REGISTER  authz.register with the invitation's address
 *   RG_WHO       only when authz says the id or address is taken: is the
 *                id an account registered with this address (an earlier
 *                attempt failed after authz made it)?
 *   RG_VERIFY    then authz.login with the password given: only the one
 *                who made the account carries on delivering, and the
 *                answer's account is one they can log in to
 *   RG_FETCH     the stored form of each pending study
 *   RG_DELIVER   the deliver script into user:<user> (idempotent)
 *   RG_FINISH    finish script: the address is registered (every token of
 *                it is spent), delivered shares leave the pending set;
 *                shares that arrived meanwhile come back and go round
 *                RG_FETCH once more
 *   RG_RECORD    history records, audit entries; the token key is deleted
 *
 * A registration that fails gives its claim back (deliveries are
 * idempotent and the finish script spends the invitation only for the
 * claim it names), so the invitee can try again at once: with another
 * user id when authz refused, with the same id and password when the
 * account was made.  Unknown, expired and used invitations get the same
 * not_found.
 *
 * share.invitation.get {invite} -> {"email", "expires_at"} lets the
 * registration page show which address is being registered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <sodium.h>

#include "proto/errors.h"
#include "proto/mpcheck.h"
#include "runtime/argv.h"
#include "runtime/audit.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/token.h"
#include "services/share/share.h"

#define SH_CLAIM_MS 60000
#define MAX_ROUNDS  3

static const char gone_msg[] = "invitation unknown, expired or already used";
static const char taken_msg[] = "that user id or email is already taken";

typedef enum rg_step {
	RG_TOKEN,
	RG_CLAIM,
	RG_REGISTER,
	RG_WHO,
	RG_VERIFY,
	RG_FETCH,
	RG_DELIVER,
	RG_FINISH,
	RG_RECORD,
} rg_step;

typedef struct rg_item {
	char uid[SH_UID_MAX + 1];
	char from[SH_WL_MAX + 1];
	char by[SH_MAX_USER + 1];
	char *blob;
	size_t bloblen;
	sh_study st;
	bool found;   /* the study exists */
	bool changed; /* delivery added it */
	struct rg_op *op;
} rg_item;

typedef struct rg_op {
	sh_server *s;
	ss_call *c;
	rg_step step;
	sh_fan fan; /* the step's commands in flight */
	char token_hash[SS_TOKEN_HASH_LEN + 1];
	char email[SH_MAX_EMAIL + 1];
	char user[SH_MAX_USER + 1];
	char name[SH_MAX_NAME + 1];
	char password[SH_MAX_PASSWORD + 1];
	char addr[SH_MAX_ADDR + 1];
	char claim[SH_SHARE_ID_LEN + 1];
	bool claimed;
	bool taken;      /* authz.register: id or address taken */
	int retry_after; /* authz.login's, for a too_many_requests */
	int rounds;
	rg_item *items;
	int nitems;
	int round_start; /* items of the current round */
} rg_op;

static ss_metric *m_registered;

static void step(rg_op *op);

static void
op_free(rg_op *op)
{
	sodium_memzero(op->password, sizeof op->password);
	for (int i = 0; i < op->nitems; i++)
		free(op->items[i].blob);
	free(op->items);
	free(op);
}

static void
on_released(int err, redisReply *r, void *arg)
{
	(void)r;
	if (err != 0)
		ss_warn("invitation.release_failed", NULL, "error",
		        ss_err_word(err), NULL);
	(void)arg;
}

/* Gives the claim back: a no-op once the finish script has spent the
 * invitation (its state names the user then, not the claim). */
static void
release(rg_op *op)
{
	char k[SH_KEY_MAX];
	const char *argv[2];

	if (!op->claimed ||
	    sh_key_mail(k, op->s->patient_key, op->email, "inv") != 0)
		return;
	argv[0] = k;
	argv[1] = op->claim;
	(void)ss_redis_eval(op->s->redis, &sh_script_release, on_released, NULL,
	                    1, 2, argv, NULL);
}

static void
fail(rg_op *op, int err, const char *msg)
{
	release(op);
	if (op->retry_after > 0)
		ss_call_reply_err_retry(op->c, err, msg, op->retry_after);
	else
		ss_call_reply_err(op->c, err, msg);
	op_free(op);
}

static void
answered(rg_op *op)
{
	if (sh_fan_answered(&op->fan))
		step(op);
}

/* --- pending shares ------------------------------------------------- */

/* Adds the pending shares of a {uid, record, ...} array as items. */
static int
add_items(rg_op *op, const redisReply *r)
{
	rg_item *n;
	size_t count;

	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
		return SS_EINTERNAL;
	count = r->elements / 2;
	if (count == 0)
		return 0;
	if ((n = realloc(op->items,
	                 ((size_t)op->nitems + count) * sizeof *n)) == NULL)
		return SS_ENOMEM;
	op->items = n;
	for (size_t i = 0; i < r->elements; i += 2) {
		const redisReply *u = r->element[i], *rec = r->element[i + 1];
		rg_item *it = &op->items[op->nitems];
		msgpack_unpacked up;
		const char *why;
		bool ok = false;

		memset(it, 0, sizeof *it);
		it->op = op;
		if (u->type != REDIS_REPLY_STRING ||
		    rec->type != REDIS_REPLY_STRING ||
		    !sh_valid_uid(u->str, u->len) ||
		    ss_mpcheck((const uint8_t *)rec->str, rec->len, 4, 4096,
		               &why) != 0)
			return SS_EINTERNAL;
		memcpy(it->uid, u->str, u->len);
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, rec->str, rec->len, NULL) ==
		        MSGPACK_UNPACK_SUCCESS &&
		    up.data.type == MSGPACK_OBJECT_MAP) {
			const msgpack_object *f = ss_map_get(&up.data, "from");
			const msgpack_object *b = ss_map_get(&up.data, "by");
			ok = f != NULL && b != NULL &&
			     ss_obj_strcpy(f, it->from, sizeof it->from) == 0 &&
			     ss_obj_strcpy(b, it->by, sizeof it->by) == 0;
		}
		msgpack_unpacked_destroy(&up);
		if (!ok)
			return SS_EINTERNAL;
		op->nitems++;
	}
	return 0;
}

/* --- the steps ------------------------------------------------------ */

static void
on_redis(int err, redisReply *r, void *arg)
{
	rg_op *op = arg;
	int rv;

	if (!sh_fan_redis_ok(&op->fan, err, r)) {
		answered(op);
		return;
	}
	switch (op->step) {
	case RG_TOKEN:
		if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
		    r->len > SH_MAX_EMAIL)
			sh_fan_err(&op->fan, SS_ENOTFOUND, gone_msg);
		else
			memcpy(op->email, r->str, r->len);
		break;
	case RG_CLAIM:
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		    r->element[0]->type != REDIS_REPLY_STRING) {
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		} else if (strcmp(r->element[0]->str, "busy") == 0) {
			sh_fan_err(
			    &op->fan, SS_ECONFLICT,
			    "a registration with this invitation is under "
			    "way");
		} else if (strcmp(r->element[0]->str, "ok") != 0 ||
		           r->elements != 2) {
			sh_fan_err(&op->fan, SS_ENOTFOUND, gone_msg);
		} else {
			op->claimed = true;
			if ((rv = add_items(op, r->element[1])) != 0)
				sh_fan_err(&op->fan, rv, NULL);
		}
		break;
	case RG_FINISH:
		/* 0: the claim expired and another attempt holds it now; it
		 * will finish the job (deliveries are idempotent). */
		if (r->type == REDIS_REPLY_ARRAY &&
		    (rv = add_items(op, r)) != 0)
			sh_fan_err(&op->fan, rv, NULL);
		break;
	default: /* RG_RECORD: history, audit, token deletion */
		break;
	}
	answered(op);
}

static void
on_item(int err, redisReply *r, void *arg)
{
	rg_item *it = arg;
	rg_op *op = it->op;

	if (!sh_fan_redis_ok(&op->fan, err, r)) {
		answered(op);
		return;
	}
	if (op->step == RG_FETCH) {
		if (r->type == REDIS_REPLY_STRING && r->len > 0 &&
		    (it->blob = malloc(r->len)) != NULL) {
			memcpy(it->blob, r->str, r->len);
			it->bloblen = r->len;
			it->found =
			    sh_study_open(&op->s->seal, it->uid, it->blob,
			                  it->bloblen, &it->st) == 0;
		} else if (r->type == REDIS_REPLY_STRING && r->len > 0) {
			sh_fan_err(&op->fan, SS_ENOMEM, NULL);
		}
		if (!it->found)
			ss_warn("invitation.study_missing", ss_call_id(op->c),
			        "study_uid", it->uid, NULL);
	} else if (r->type == REDIS_REPLY_INTEGER) {
		it->changed = r->integer == 1;
	} else {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
	}
	answered(op);
}

static void
on_authz(int err, const ss_msg *reply, void *arg)
{
	rg_op *op = arg;
	int rv = sh_authz_err(err, reply);
	char m[300] = "", email[SH_MAX_EMAIL + 1];
	const msgpack_object *reg;

	if (op->step == RG_REGISTER) {
		if (rv == SS_ECONFLICT) {
			op->taken = true; /* ask who holds the id */
		} else if (rv != 0) {
			if (err == 0 && reply != NULL)
				snprintf(m, sizeof m, "%.*s",
				         (int)reply->err_msg.n,
				         reply->err_msg.p);
			sh_fan_err(&op->fan, rv, m[0] ? m : NULL);
		}
		answered(op);
		return;
	}
	if (op->step == RG_VERIFY) {
		/* The account's password, or the same answer as a taken id:
		 * no hint that this id holds the address. */
		if (rv == SS_EUNAUTH) {
			sh_fan_err(&op->fan, SS_ECONFLICT, taken_msg);
		} else if (rv == SS_ETOOMANY && reply != NULL) {
			/* authz's login limit: its words and its Retry-After */
			snprintf(m, sizeof m, "%.*s", (int)reply->err_msg.n,
			         reply->err_msg.p);
			op->retry_after = reply->retry_after;
			sh_fan_err(&op->fan, rv, m[0] ? m : NULL);
		} else if (rv != 0) {
			sh_fan_err(&op->fan, rv, NULL);
		}
		answered(op);
		return;
	}
	/* RG_WHO: an account of this address made by an earlier attempt. */
	reg = rv == 0 ? ss_map_get(reply->body, "registered") : NULL;
	email[0] = '\0';
	if (rv == 0) {
		const msgpack_object *e = ss_map_get(reply->body, "email");
		if (e == NULL || ss_obj_strcpy(e, email, sizeof email) != 0)
			email[0] = '\0';
	}
	if (rv != 0 && rv != SS_ENOTFOUND)
		sh_fan_err(&op->fan, rv, NULL);
	else if (reg == NULL || reg->type != MSGPACK_OBJECT_BOOLEAN ||
	         !reg->via.boolean || strcasecmp(email, op->email) != 0)
		sh_fan_err(&op->fan, SS_ECONFLICT, taken_msg);
	answered(op);
}

static int
send_claim(rg_op *op)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX];
	ss_argv a;
	int64_t now = sh_now_ms();
	int rv;

	if (sh_key_mail(k1, op->s->patient_key, op->email, "inv") != 0 ||
	    sh_key_mail(k2, op->s->patient_key, op->email, "pending") != 0)
		return SS_EINTERNAL;
	sh_share_id(op->claim);
	ss_argv_init(&a);
	ss_argv_pushs(&a, k1);
	ss_argv_pushs(&a, k2);
	ss_argv_pushs(&a, op->token_hash);
	ss_argv_pushi(&a, now);
	ss_argv_pushs(&a, op->claim);
	ss_argv_pushi(&a, now + SH_CLAIM_MS);
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(op->s->redis, &sh_script_claim, on_redis, op,
		                   2, a.n, a.v, a.lens);
	ss_argv_free(&a);
	return rv;
}

static int
send_register(rg_op *op)
{
	ss_pack *p = sh_authz_begin(op->s, "authz.register", ss_call_id(op->c));

	msgpack_pack_map(&p->pk, 4);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_kv_cstr(p, "name", op->name);
	ss_pack_kv_cstr(p, "email", op->email);
	ss_pack_kv_cstr(p, "password", op->password);
	return sh_authz_send_alone(op->s, on_authz, op);
}

static int
send_who(rg_op *op)
{
	ss_pack *p = sh_authz_begin(op->s, "authz.user.get", ss_call_id(op->c));

	msgpack_pack_map(&p->pk, 1);
	ss_pack_kv_cstr(p, "user", op->user);
	return sh_authz_send(op->s, on_authz, op);
}

/* A failed password counts against the account's login limits, as a
 * failed login would. */
static int
send_verify(rg_op *op)
{
	ss_pack *p = sh_authz_begin(op->s, "authz.login", ss_call_id(op->c));

	msgpack_pack_map(&p->pk, op->addr[0] != '\0' ? 3 : 2);
	ss_pack_kv_cstr(p, "user", op->user);
	ss_pack_kv_cstr(p, "password", op->password);
	if (op->addr[0] != '\0')
		ss_pack_kv_cstr(p, "addr", op->addr);
	return sh_authz_send_alone(op->s, on_authz, op);
}

static void
start_fetch(rg_op *op)
{
	char k[SH_KEY_MAX];

	for (int i = op->round_start; i < op->nitems && op->fan.err == 0; i++) {
		if (sh_key_study(k, op->items[i].uid, NULL) != 0) {
			sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
			return;
		}
		sh_fan_sent(&op->fan, ss_redis_cmd(op->s->redis, on_item,
		                                   &op->items[i], "GET %s", k));
	}
}

static void
start_deliver(rg_op *op)
{
	char wl[SH_WL_MAX + 1];

	snprintf(wl, sizeof wl, "user:%s", op->user);
	for (int i = op->round_start; i < op->nitems && op->fan.err == 0; i++) {
		rg_item *it = &op->items[i];
		if (it->found)
			sh_fan_sent(&op->fan, sh_store_deliver(
			                          op->s, wl, &it->st, it->blob,
			                          it->bloblen, on_item, it));
	}
}

static void
start_finish(rg_op *op)
{
	char k1[SH_KEY_MAX], k2[SH_KEY_MAX];
	ss_argv a;
	int rv;

	if (sh_key_mail(k1, op->s->patient_key, op->email, "inv") != 0 ||
	    sh_key_mail(k2, op->s->patient_key, op->email, "pending") != 0) {
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
		return;
	}
	ss_argv_init(&a);
	ss_argv_pushs(&a, k1);
	ss_argv_pushs(&a, k2);
	ss_argv_pushs(&a, op->claim);
	ss_argv_pushs(&a, op->user);
	for (int i = op->round_start; i < op->nitems; i++)
		ss_argv_pushs(&a, op->items[i].uid);
	op->round_start = op->nitems; /* what comes back is the next round */
	if ((rv = ss_argv_status(&a)) == 0)
		rv = ss_redis_eval(op->s->redis, &sh_script_finish, on_redis,
		                   op, 2, a.n, a.v, a.lens);
	ss_argv_free(&a);
	sh_fan_sent(&op->fan, rv);
}

static char *
audit_detail(const rg_op *op, const rg_item *it)
{
	char wl[SH_WL_MAX + 1];
	json_t *d;
	char *s;

	snprintf(wl, sizeof wl, "user:%s", op->user);
	d = json_pack("{s:s, s:s, s:s, s:b}", "email", op->email, "to", wl,
	              "invited_by", it->by, "changed", it->changed);
	s = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	return s;
}

static void
start_record(rg_op *op)
{
	char wl[SH_WL_MAX + 1], id[SH_SHARE_ID_LEN + 1], k[SH_KEY_MAX];
	int64_t now = sh_now_ms();

	snprintf(wl, sizeof wl, "user:%s", op->user);
	for (int i = 0; i < op->nitems && op->fan.err == 0; i++) {
		rg_item *it = &op->items[i];
		sh_record rec = {
		    .id = id,
		    .at_ms = now,
		    .by = it->by,
		    .from = it->from,
		    .email = op->email,
		    .worklist = wl,
		    .status = "delivered",
		    .changed = it->changed,
		};
		const char *data;
		size_t len;
		char *detail;
		ss_pack p;

		if (!it->found)
			continue;
		sh_share_id(id);
		ss_pack_init(&p);
		sh_record_pack(&p, &rec);
		data = p.sb.data;
		len = p.sb.size;
		sh_fan_sent(&op->fan,
		            sh_history_append(op->s, it->uid, 1, &data, &len,
		                              on_redis, op));
		ss_pack_free(&p);
		if ((detail = audit_detail(op, it)) == NULL) {
			sh_fan_err(&op->fan, SS_ENOMEM, NULL);
			break;
		}
		sh_fan_sent(&op->fan,
		            ss_audit_append(op->s->redis, "share",
		                            &(ss_audit){
		                                .actor = op->user,
		                                .action = "share.invitation."
		                                          "accepted",
		                                .object = it->uid,
		                                .worklist = it->from,
		                                .detail = detail,
		                                .addr = op->addr,
		                            },
		                            on_redis, op));
		free(detail);
	}
	/* The used token goes; the address's state refuses it anyway. */
	if (op->fan.err == 0 && sh_key_token(k, op->token_hash) == 0)
		sh_fan_sent(&op->fan, ss_redis_cmd(op->s->redis, on_redis, op,
		                                   "DEL %s", k));
}

static void
done(rg_op *op)
{
	int n = 0;
	ss_pack *p;

	for (int i = 0; i < op->nitems; i++)
		n += op->items[i].found;
	ss_metric_add(m_registered, 1);
	ss_info("invitation.accepted", ss_call_id(op->c), "user", op->user,
	        NULL);
	p = ss_call_reply_ok(op->c);
	msgpack_pack_map(&p->pk, 2);
	ss_pack_key(p, "user");
	msgpack_pack_map(&p->pk, 4);
	ss_pack_kv_cstr(p, "id", op->user);
	ss_pack_kv_cstr(p, "name", op->name);
	ss_pack_kv_cstr(p, "email", op->email);
	ss_pack_kv_cstr(p, "organisation", NULL);
	ss_pack_key(p, "delivered");
	msgpack_pack_array(&p->pk, (uint32_t)n);
	for (int i = 0; i < op->nitems; i++)
		if (op->items[i].found)
			ss_pack_cstr(p, op->items[i].uid);
	ss_call_reply_end(op->c);
	op_free(op);
}

/* Called when every answer of the current step is in. */
static void
step(rg_op *op)
{
	for (;;) {
		if (op->fan.err != 0) {
			fail(op, op->fan.err,
			     op->fan.errmsg[0] ? op->fan.errmsg : NULL);
			return;
		}
		op->fan.pending = 1;
		switch (op->step) {
		case RG_TOKEN:
			op->step = RG_CLAIM;
			sh_fan_sent(&op->fan, send_claim(op));
			break;
		case RG_CLAIM:
			op->step = RG_REGISTER;
			sh_fan_sent(&op->fan, send_register(op));
			break;
		case RG_REGISTER:
			if (op->taken) {
				op->step = RG_WHO;
				sh_fan_sent(&op->fan, send_who(op));
				break;
			}
			/* authz created the account */
			op->step = RG_FETCH;
			start_fetch(op);
			break;
		case RG_WHO:
			op->step = RG_VERIFY;
			sh_fan_sent(&op->fan, send_verify(op));
			break;
		case RG_VERIFY:
			op->step = RG_FETCH;
			start_fetch(op);
			break;
		case RG_FETCH:
			op->step = RG_DELIVER;
			start_deliver(op);
			break;
		case RG_DELIVER:
			op->step = RG_FINISH;
			start_finish(op);
			break;
		case RG_FINISH:
			if (op->round_start < op->nitems &&
			    ++op->rounds <= MAX_ROUNDS) {
				op->step = RG_FETCH; /* arrived meanwhile */
				start_fetch(op);
				break;
			}
			op->step = RG_RECORD;
			start_record(op);
			break;
		default:
			done(op);
			return;
		}
		if (--op->fan.pending > 0)
			return;
	}
}

static int
hash_invite(const sh_server *s, const msgpack_object *o,
            char out[SS_TOKEN_HASH_LEN + 1])
{
	ss_str t = ss_obj_str(o);

	return ss_token_hash(s->cfg->token_key, strlen(s->cfg->token_key),
	                     SH_TOKEN_PURPOSE, t.p, t.n, out);
}

void
sh_handle_register(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"invite", SS_F_STR, true, 1, 128},
	    {"user", SS_F_STR, true, 1, SH_MAX_USER},
	    {"name", SS_F_STR, true, 1, SH_MAX_NAME},
	    {"password", SS_F_STR, true, 1, SH_MAX_PASSWORD},
	    {"addr", SS_F_STR, false, 1, SH_MAX_ADDR},
	};
	const msgpack_object *f[5];
	sh_server *s = arg;
	char k[SH_KEY_MAX];
	ss_str pw;
	rg_op *op;

	if (m_registered == NULL)
		m_registered =
		    ss_counter("studyshare_invitations_accepted_total",
		               "Registrations through an invitation.", NULL);
	if (sh_parse(c, body, spec, 5, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	op->fan.reqid = ss_call_id(c);
	(void)ss_obj_strcpy(f[1], op->user, sizeof op->user);
	(void)ss_obj_strcpy(f[2], op->name, sizeof op->name);
	pw = ss_obj_str(f[3]);
	memcpy(op->password, pw.p, pw.n);
	if (f[4] != NULL)
		(void)ss_obj_strcpy(f[4], op->addr, sizeof op->addr);
	if (hash_invite(s, f[0], op->token_hash) != 0) {
		fail(op, SS_ENOTFOUND, gone_msg);
		return;
	}
	op->step = RG_TOKEN;
	op->fan.pending = 1;
	if (sh_key_token(k, op->token_hash) != 0)
		sh_fan_err(&op->fan, SS_EINTERNAL, NULL);
	else
		sh_fan_sent(&op->fan,
		            ss_redis_cmd(s->redis, on_redis, op, "GET %s", k));
	answered(op);
}

/* --- share.invitation.get ------------------------------------------- */

typedef struct iv_op {
	sh_server *s;
	ss_call *c;
	bool have_email;
	char token_hash[SS_TOKEN_HASH_LEN + 1];
	char email[SH_MAX_EMAIL + 1];
} iv_op;

static void
iv_done(iv_op *op, int err, const char *msg, int64_t expires)
{
	if (err == 0) {
		char at[SH_TIME_LEN + 1];
		ss_pack *p = ss_call_reply_ok(op->c);

		sh_time_fmt(expires, at);
		msgpack_pack_map(&p->pk, 2);
		ss_pack_kv_cstr(p, "email", op->email);
		ss_pack_kv_cstr(p, "expires_at", at);
		ss_call_reply_end(op->c);
	} else {
		ss_call_reply_err(op->c, err, msg);
	}
	free(op);
}

static void
on_iv(int err, redisReply *r, void *arg)
{
	iv_op *op = arg;
	char k[SH_KEY_MAX], field[SS_TOKEN_HASH_LEN + 3];
	int64_t exp;
	int rv;

	if (err != 0 || r->type == REDIS_REPLY_ERROR) {
		iv_done(op, err != 0 ? sh_err(err) : SS_EINTERNAL, NULL, 0);
		return;
	}
	if (!op->have_email) {
		if (r->type != REDIS_REPLY_STRING || r->len == 0 ||
		    r->len > SH_MAX_EMAIL) {
			iv_done(op, SS_ENOTFOUND, gone_msg, 0);
			return;
		}
		memcpy(op->email, r->str, r->len);
		op->have_email = true;
		snprintf(field, sizeof field, "t:%s", op->token_hash);
		if ((rv = sh_key_mail(k, op->s->patient_key, op->email,
		                      "inv")) == 0)
			rv = ss_redis_cmd(op->s->redis, on_iv, op,
			                  "HMGET %s %s state", k, field);
		if (rv != 0)
			iv_done(op, sh_err(rv), NULL, 0);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    (exp = strtoll(r->element[0]->str, NULL, 10)) <= sh_now_ms() ||
	    (r->element[1]->type == REDIS_REPLY_STRING &&
	     strncmp(r->element[1]->str, "user:", 5) == 0)) {
		iv_done(op, SS_ENOTFOUND, gone_msg, 0);
		return;
	}
	iv_done(op, 0, NULL, exp);
}

void
sh_handle_invitation(ss_call *c, const msgpack_object *body, void *arg)
{
	static const ss_field_spec spec[] = {
	    {"invite", SS_F_STR, true, 1, 128},
	};
	const msgpack_object *f[1];
	sh_server *s = arg;
	char k[SH_KEY_MAX];
	iv_op *op;
	int rv;

	if (sh_parse(c, body, spec, 1, f) != 0)
		return;
	if ((op = calloc(1, sizeof *op)) == NULL) {
		ss_call_reply_err(c, SS_ENOMEM, NULL);
		return;
	}
	op->s = s;
	op->c = c;
	if (hash_invite(s, f[0], op->token_hash) != 0) {
		iv_done(op, SS_ENOTFOUND, gone_msg, 0);
		return;
	}
	if ((rv = sh_key_token(k, op->token_hash)) == 0)
		rv = ss_redis_cmd(s->redis, on_iv, op, "GET %s", k);
	if (rv != 0)
		iv_done(op, sh_err(rv), NULL, 0);
}
