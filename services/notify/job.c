/*
 * services/notify/job.c - decodes a job read from the stream.
 *
 * The bytes come from Redis, where any client that can XADD may have put
 * them: they are untrusted.  ss_mail_open() (runtime/mailq.h) checks the
 * envelope {"v": 2, "id", "box"} and opens the box with the mail key; a
 * box that does not open is refused like any bad job.  The mail inside is
 * checked as if it came from anyone too: ss_mpcheck() walks it before
 * msgpack-c allocates anything (depth 2: the mail map and its vars map; no
 * string longer than a var value may be), ss_fields_parse() checks the
 * fields, and the checks of runtime/mailq.h (address, template, var names
 * and values) finish the job.  Every refusal is SS_EUNPROC with a reason
 * fit for a log line and the dead-letter stream: it never quotes the
 * input except a var name, which is [a-z0-9_] by then.
 */
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpcheck.h"
#include "services/notify/notify.h"

enum { F_TEMPLATE, F_TO, F_VARS, F_CREATED, F_BOUNCE, F_N };

static const ss_field_spec spec[F_N] = {
    [F_TEMPLATE] = {"template", SS_F_STR, true, 1, 64},
    [F_TO] = {"to", SS_F_STR, true, 1, SS_MAIL_ADDR_MAX},
    [F_VARS] = {"vars", SS_F_MAP, true, 0, SS_MAIL_MAX_VARS},
    [F_CREATED] = {"created_at", SS_F_INT, true, 0, 0},
    [F_BOUNCE] = {"bounce_to", SS_F_STR, false, 1, SS_MAIL_ADDR_MAX},
};

static void
why_set(char *why, size_t whylen, const char *fmt, const char *arg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, fmt, arg);
}

static int
decode_vars(nt_job *j, const msgpack_object *vars, char *why, size_t whylen)
{
	char name[SS_MAIL_VAR_MAX + 1];

	for (uint32_t i = 0; i < vars->via.map.size; i++) {
		const msgpack_object *k = &vars->via.map.ptr[i].key;
		const msgpack_object *v = &vars->via.map.ptr[i].val;
		nt_var *out = &j->vars[j->nvars];

		if (k->type != MSGPACK_OBJECT_STR ||
		    !ss_mail_var_name_ok(k->via.str.ptr, k->via.str.size)) {
			why_set(why, whylen,
			        "field 'vars': names must be 1..64 characters "
			        "of [a-z0-9_]%s",
			        "");
			return SS_EUNPROC;
		}
		memcpy(name, k->via.str.ptr, k->via.str.size);
		name[k->via.str.size] = '\0';
		for (size_t p = 0; p < j->nvars; p++) {
			if (j->vars[p].nlen == k->via.str.size &&
			    memcmp(j->vars[p].name, name, j->vars[p].nlen) ==
			        0) {
				why_set(why, whylen,
				        "field 'vars': duplicate name '%s'",
				        name);
				return SS_EUNPROC;
			}
		}
		if (v->type != MSGPACK_OBJECT_STR) {
			why_set(why, whylen, "var '%s': expected string", name);
			return SS_EUNPROC;
		}
		if (!ss_mail_value_ok(v->via.str.ptr, v->via.str.size)) {
			why_set(why, whylen,
			        "var '%s': not UTF-8, contains NUL or too long",
			        name);
			return SS_EUNPROC;
		}
		out->name = k->via.str.ptr;
		out->nlen = k->via.str.size;
		out->val = v->via.str.ptr;
		out->vlen = v->via.str.size;
		j->nvars++;
	}
	return 0;
}

/* An address field into dst (SS_MAIL_ADDR_MAX + 1 bytes). */
static int
take_addr(const msgpack_object *o, const char *field, char *dst, char *why,
          size_t whylen)
{
	ss_str s = ss_obj_str(o);
	char w[32];

	snprintf(w, sizeof w, "field '%s': %%s", field);
	if (memchr(s.p, '\r', s.n) != NULL || memchr(s.p, '\n', s.n) != NULL) {
		why_set(why, whylen, w, "contains CR or LF");
		return SS_EUNPROC;
	}
	if (!ss_mail_addr_ok(s.p, s.n)) {
		why_set(why, whylen, w, "not a mail address");
		return SS_EUNPROC;
	}
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
	return 0;
}

static int
decode_fields(nt_job *j, const msgpack_object *map, char *why, size_t whylen)
{
	const msgpack_object *f[F_N];
	ss_str s;

	if (ss_fields_parse(map, spec, F_N, f, why, whylen) != 0)
		return SS_EUNPROC;
	s = ss_obj_str(f[F_TEMPLATE]);
	if (!ss_mail_template_ok(s.p, s.n)) {
		why_set(why, whylen, "field 'template': %s",
		        "unknown template");
		return SS_EUNPROC;
	}
	memcpy(j->template, s.p, s.n);
	j->template[s.n] = '\0';
	if (take_addr(f[F_TO], "to", j->to, why, whylen) != 0 ||
	    (f[F_BOUNCE] != NULL && take_addr(f[F_BOUNCE], "bounce_to",
	                                      j->bounce_to, why, whylen) != 0))
		return SS_EUNPROC;
	j->created_at = ss_obj_int(f[F_CREATED]);
	return decode_vars(j, f[F_VARS], why, whylen);
}

int
nt_job_decode_mail(nt_job *j, const char *id, const void *buf, size_t len,
                   char *why, size_t whylen)
{
	const char *w = NULL;
	int rv = SS_EUNPROC;

	memset(j, 0, sizeof(*j));
	msgpack_unpacked_init(&j->up);
	snprintf(j->id, sizeof j->id, "%s", id);
	if (len > SS_MAIL_PLAIN_MAX) {
		why_set(why, whylen, "%s", "job too large");
		goto fail;
	}
	if (ss_mpcheck(buf, len, 2, SS_MAIL_MAX_VALUE, &w) != 0) {
		why_set(why, whylen, "bad msgpack in the box: %s", w);
		goto fail;
	}
	switch (msgpack_unpack_next(&j->up, buf, len, NULL)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rv = SS_ENOMEM;
		why_set(why, whylen, "%s", "out of memory");
		goto fail;
	default:
		why_set(why, whylen, "%s", "bad msgpack in the box: malformed");
		goto fail;
	}
	if ((rv = decode_fields(j, &j->up.data, why, whylen)) != 0)
		goto fail;
	return 0;
fail:
	/* Keep the id: the dead letter can then name it. */
	msgpack_unpacked_destroy(&j->up);
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof j->id, "%s", id);
	return rv != 0 ? rv : SS_EUNPROC;
}

int
nt_job_decode(nt_job *j, const ss_seal_key *key, const void *buf, size_t len,
              char *why, size_t whylen)
{
	char id[SS_MAIL_ID_LEN + 1];
	unsigned char *plain;
	size_t plainlen;
	int rv;

	rv = ss_mail_open(key, buf, len, id, &plain, &plainlen, why, whylen);
	if (rv != 0) {
		memset(j, 0, sizeof(*j));
		memcpy(j->id, id, sizeof id);
		return rv;
	}
	/* The mail's strings point into plain: the job owns it from here. */
	if ((rv = nt_job_decode_mail(j, id, plain, plainlen, why, whylen)) !=
	    0) {
		ss_mail_plain_free(plain, plainlen);
		return rv;
	}
	j->plain = plain;
	j->plainlen = plainlen;
	return 0;
}

void
nt_job_free(nt_job *j)
{
	msgpack_unpacked_destroy(&j->up);
	ss_mail_plain_free(j->plain, j->plainlen);
	memset(j, 0, sizeof(*j));
}
