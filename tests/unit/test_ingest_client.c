/*
 * tests/unit/test_ingest_client.c - runtime/ingest_client.c against a REP
 * server on a thread that plays share's ingest endpoint: it decodes each
 * request, keeps its body for the test to inspect, and answers by uid:
 *   "9.1"  bad_request naming a field
 *   "9.2"  no answer at all (the client times out)
 *   other  ok, created = (uid ends in 1)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "proto/envelope.h"
#include "proto/errors.h"
#include "proto/fields.h"
#include "proto/mpjson.h"
#include "runtime/ingest_client.h"
#include "tests/unit/redis_fixture.h"

static nng_socket srv;
static pthread_t thr;
static char url[64];
static char late_url[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char last_type[SS_MAX_TYPE_LEN + 1];
static char *last_body; /* JSON of the last request's body */
static int requests;

static void *
serve(void *arg)
{
	(void)arg;
	for (;;) {
		char *buf = NULL, uid[80] = "";
		size_t len = 0;
		const char *why;
		ss_pack p;
		ss_msg m;

		if (nng_recv(srv, &buf, &len, NNG_FLAG_ALLOC) != 0)
			return NULL; /* closed */
		/* No cmocka asserts off the test's thread: a request that
		 * does not decode is simply not answered (and not counted). */
		if (ss_msg_decode(&m, buf, len, false, &why) != 0) {
			nng_free(buf, len);
			continue;
		}
		nng_free(buf, len);
		pthread_mutex_lock(&mu);
		requests++;
		snprintf(last_type, sizeof last_type, "%s", m.type);
		free(last_body);
		{
			json_t *j = ss_mp_to_json(m.body);
			last_body =
			    json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(j);
		}
		pthread_mutex_unlock(&mu);
		(void)ss_obj_strcpy(ss_map_get(m.body, "study_uid"), uid,
		                    sizeof uid);
		ss_pack_init(&p);
		if (strcmp(uid, "9.2") == 0) {
			ss_msg_free(&m);
			ss_pack_free(&p);
			continue; /* say nothing */
		}
		if (strcmp(uid, "9.1") == 0) {
			ss_pack_reply_err(&p, m.id, SS_EBADREQ,
			                  "field 'study_date': expected a "
			                  "YYYYMMDD date");
		} else {
			ss_pack_reply_ok(&p, m.id);
			msgpack_pack_map(&p.pk, 2);
			ss_pack_kv_bool(&p, "created",
			                uid[strlen(uid) - 1] == '1');
			ss_pack_kv_bool(&p, "added", true);
		}
		ss_msg_free(&m);
		(void)nng_send(srv, p.sb.data, p.sb.size, 0);
		ss_pack_free(&p);
	}
}

static int
setup(void **state)
{
	(void)state;
	snprintf(url, sizeof url, "tcp://127.0.0.1:%d", ss_rfx_free_port());
	if (nng_rep0_open(&srv) != 0 || nng_listen(srv, url, NULL, 0) != 0)
		return -1;
	return pthread_create(&thr, NULL, serve, NULL) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	nng_close(srv);
	pthread_join(thr, NULL);
	free(last_body);
	return 0;
}

static void
test_publish_every_field(void **state)
{
	ss_study_event ev = {
	    .study_uid = "1.2.3.1",
	    .worklist = "location:ct",
	    .patient_id = "P1",
	    .patient_name = "DOE^JANE",
	    .birth_date = "19800131",
	    .study_date = "20261101",
	    .accession = "A1",
	    .modality = "CT",
	    .description = "CT HEAD",
	};
	ss_ingest_result res;
	ss_ingest *c;

	(void)state;
	assert_int_equal(ss_ingest_open(&c, url, 2000), 0);
	assert_int_equal(ss_ingest_publish(c, &ev, &res), 0);
	assert_true(res.created);
	assert_true(res.added);
	pthread_mutex_lock(&mu);
	assert_string_equal(last_type, "study.arrived");
	assert_string_equal(
	    last_body,
	    "{\"accession\":\"A1\",\"description\":\"CT HEAD\","
	    "\"modality\":\"CT\",\"patient\":{\"birth_date\":\"19800131\","
	    "\"id\":\"P1\",\"name\":\"DOE^JANE\"},\"study_date\":\"20261101\","
	    "\"study_uid\":\"1.2.3.1\",\"worklist\":\"location:ct\"}");
	pthread_mutex_unlock(&mu);
	ss_ingest_close(c);
}

static void
test_publish_minimal_event(void **state)
{
	ss_study_event ev = {.study_uid = "1.2.3.4", .worklist = "group:x"};
	ss_ingest_result res;
	ss_ingest *c;

	(void)state;
	assert_int_equal(ss_ingest_open(&c, url, 2000), 0);
	assert_int_equal(ss_ingest_publish(c, &ev, &res), 0);
	assert_false(res.created);
	pthread_mutex_lock(&mu);
	/* No patient map and no other field when none is known. */
	assert_string_equal(last_body, "{\"study_uid\":\"1.2.3.4\","
	                               "\"worklist\":\"group:x\"}");
	pthread_mutex_unlock(&mu);
	ss_ingest_close(c);
}

static void
test_refusal_carries_code_and_message(void **state)
{
	ss_study_event ev = {.study_uid = "9.1", .worklist = "location:ct"};
	ss_ingest_result res;
	ss_ingest *c;
	int before;

	(void)state;
	assert_int_equal(ss_ingest_open(&c, url, 2000), 0);
	assert_int_equal(ss_ingest_publish(c, &ev, &res), SS_EBADREQ);
	assert_non_null(strstr(res.message, "'study_date'"));
	/* Required fields are checked before anything is sent. */
	pthread_mutex_lock(&mu);
	before = requests;
	pthread_mutex_unlock(&mu);
	ev.worklist = NULL;
	assert_int_equal(ss_ingest_publish(c, &ev, &res), SS_EBADREQ);
	pthread_mutex_lock(&mu);
	assert_int_equal(requests, before);
	pthread_mutex_unlock(&mu);
	ss_ingest_close(c);
}

static void
test_timeouts(void **state)
{
	ss_study_event ev = {.study_uid = "9.2", .worklist = "location:ct"};
	char nobody[64];
	ss_ingest_result res;
	ss_ingest *c;

	(void)state;
	assert_int_equal(ss_ingest_open(&c, url, 300), 0);
	assert_int_equal(ss_ingest_publish(c, &ev, &res), SS_ETIMEDOUT);
	/* The client stays usable. */
	ev.study_uid = "1.5";
	assert_int_equal(ss_ingest_publish(c, &ev, &res), 0);
	ss_ingest_close(c);
	/* Nobody listening: open works (the dialer keeps trying), the call
	 * times out. */
	snprintf(nobody, sizeof nobody, "tcp://127.0.0.1:%d",
	         ss_rfx_free_port());
	assert_int_equal(ss_ingest_open(&c, nobody, 300), 0);
	assert_int_equal(ss_ingest_publish(c, &ev, &res), SS_ETIMEDOUT);
	ss_ingest_close(c);
	assert_int_equal(ss_ingest_open(&c, "bogus://x", 300), SS_EBADREQ);
	assert_null(c);
}

/* A share that starts listening late and never answers. */
static void *
late_listener(void *arg)
{
	nng_socket *s = arg;

	usleep(500 * 1000);
	if (nng_rep0_open(s) == 0)
		(void)nng_listen(*s, late_url, NULL, 0);
	return NULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The send's wait (for share to connect) and the reply's share one
 * timeout: the call ends near it, not near twice it. */
static void
test_one_timeout_for_send_and_reply(void **state)
{
	ss_study_event ev = {.study_uid = "9.3", .worklist = "location:ct"};
	ss_ingest_result res;
	nng_socket late;
	pthread_t t;
	ss_ingest *c;
	double t0;

	(void)state;
	snprintf(late_url, sizeof late_url, "tcp://127.0.0.1:%d",
	         ss_rfx_free_port());
	assert_int_equal(ss_ingest_open(&c, late_url, 1000), 0);
	assert_int_equal(pthread_create(&t, NULL, late_listener, &late), 0);
	t0 = now_s();
	assert_int_equal(ss_ingest_publish(c, &ev, &res), SS_ETIMEDOUT);
	assert_true(now_s() - t0 < 1.45);
	assert_int_equal(pthread_join(t, NULL), 0);
	ss_ingest_close(c);
	nng_close(late);
}

static void *
publisher(void *arg)
{
	ss_ingest *c = arg;
	ss_study_event ev = {.study_uid = "1.7", .worklist = "location:ct"};
	ss_ingest_result res;
	intptr_t bad = 0;

	for (int i = 0; i < 50; i++)
		bad += ss_ingest_publish(c, &ev, &res) != 0;
	return (void *)bad;
}

static void
test_threads_share_a_client(void **state)
{
	pthread_t t[4];
	ss_ingest *c;
	void *bad;

	(void)state;
	assert_int_equal(ss_ingest_open(&c, url, 2000), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, publisher, c), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
	}
	ss_ingest_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_every_field),
	    cmocka_unit_test(test_publish_minimal_event),
	    cmocka_unit_test(test_refusal_carries_code_and_message),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_one_timeout_for_send_and_reply),
	    cmocka_unit_test(test_threads_share_a_client),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
