/*
 * tests/unit/test_gateway_upload.c - services/gateway/upload_spool.c and
 * upload_stow.c: the content-addressed spool (name, content, idempotence,
 * no leftovers, a directory that is not there) and the STOW-RS request
 * (multipart/related of one application/dicom part, the statuses taken as
 * stored) against a one-shot HTTP server on a loopback port; the parts
 * of multipart bodies (upload_multipart.c), well-formed and not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "proto/errors.h"
#include "services/gateway/upload.h"

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_spool(void **state)
{
	char dir[] = "/tmp/ss-spool-test-XXXXXX";
	uint8_t data[3000];
	unsigned char d[32];
	char sha[GW_SHA256_HEX + 1], sha2[GW_SHA256_HEX + 1], hex[65];
	char path[256];
	uint8_t back[4000];
	bool created = false;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(gw_spool_put(dir, data, sizeof data, sha, &created),
	                 0);
	assert_true(created);
	crypto_hash_sha256(d, data, sizeof data);
	sodium_bin2hex(hex, sizeof hex, d, sizeof d);
	assert_string_equal(sha, hex);
	snprintf(path, sizeof path, "%s/%s.dcm", dir, sha);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(back, 1, sizeof back, f), sizeof data);
	fclose(f);
	assert_memory_equal(back, data, sizeof data);
	/* The same bytes again: the same single file, no temporary left,
	 * and not this call's to drop. */
	assert_int_equal(gw_spool_put(dir, data, sizeof data, sha2, &created),
	                 0);
	assert_false(created);
	assert_string_equal(sha, sha2);
	assert_int_equal(count_entries(dir), 1);
	/* Other bytes: another name. */
	data[0] ^= 1;
	assert_int_equal(gw_spool_put(dir, data, sizeof data, sha2, &created),
	                 0);
	assert_true(created);
	assert_string_not_equal(sha, sha2);
	assert_int_equal(count_entries(dir), 2);
	/* Dropped: the first file alone is left; dropping again is fine. */
	assert_int_equal(gw_spool_drop(dir, sha2), 0);
	assert_int_equal(count_entries(dir), 1);
	assert_int_equal(gw_spool_drop(dir, sha2), 0);
	assert_int_equal(count_entries(dir), 1);
	/* A directory that is not there: refused, nothing made. */
	snprintf(path, sizeof path, "%s/missing", dir);
	assert_int_equal(gw_spool_put(path, data, sizeof data, sha2, &created),
	                 SS_EUNAVAIL);
	assert_int_equal(count_entries(dir), 1);
	snprintf(path, sizeof path, "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

/* Two workers spooling the same bytes at once: exactly one of them made
 * the file (the other's copy is not its to drop), every round. */
typedef struct put_arg {
	const char *dir;
	const uint8_t *data;
	size_t len;
	bool created;
	int rv;
} put_arg;

static void *
put_thread(void *p)
{
	put_arg *a = p;
	char sha[GW_SHA256_HEX + 1];

	a->rv = gw_spool_put(a->dir, a->data, a->len, sha, &a->created);
	return NULL;
}

static void
test_spool_same_bytes_at_once(void **state)
{
	char dir[] = "/tmp/ss-spool2-XXXXXX", cmd[64];
	static uint8_t data[256 * 1024];

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int round = 0; round < 40; round++) {
		pthread_t t[2];
		put_arg a[2];

		randombytes_buf(data, sizeof data);
		for (int i = 0; i < 2; i++) {
			a[i] = (put_arg){dir, data, sizeof data, false, -1};
			assert_int_equal(
			    pthread_create(&t[i], NULL, put_thread, &a[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[0].rv, 0);
		assert_int_equal(a[1].rv, 0);
		assert_int_equal((int)a[0].created + (int)a[1].created, 1);
	}
	/* one file per round, no temporary left */
	assert_int_equal(count_entries(dir), 40);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A one-shot HTTP server: reads one request, answers with status. */
typedef struct srv {
	int fd;
	int port;
	int status;
	char req[16384];
	size_t len;
} srv;

static void *
serve(void *arg)
{
	srv *s = arg;
	int c = accept(s->fd, NULL, NULL);
	char resp[128];

	if (c < 0)
		return NULL;
	for (;;) {
		ssize_t n =
		    read(c, s->req + s->len, sizeof s->req - 1 - s->len);
		if (n <= 0)
			break;
		s->len += (size_t)n;
		s->req[s->len] = '\0';
		char *end = strstr(s->req, "\r\n\r\n");
		char *cl = strcasestr(s->req, "Content-Length:");
		if (end != NULL && cl != NULL &&
		    s->len >=
		        (size_t)(end + 4 - s->req) + strtoul(cl + 15, NULL, 10))
			break;
	}
	snprintf(resp, sizeof resp,
	         "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: "
	         "close\r\n\r\n{}",
	         s->status);
	(void)!write(c, resp, strlen(resp));
	close(c);
	return NULL;
}

static void
srv_start(srv *s, pthread_t *t, int status)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof a;

	memset(s, 0, sizeof *s);
	s->status = status;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s->fd, 1), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(t, NULL, serve, s), 0);
}

static void
test_stow(void **state)
{
	const uint8_t file[] = "DICM-bytes\r\n--not-a-boundary\0tail";
	char url[128], why[128];
	pthread_t t;
	srv s;

	(void)state;
	/* 200: stored; the request is one application/dicom part. */
	srv_start(&s, &t, 200);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/dicom-web/studies",
	         s.port);
	assert_int_equal(
	    gw_stow_send(url, file, sizeof file, 5000, why, sizeof why), 0);
	pthread_join(t, NULL);
	close(s.fd);
	assert_non_null(strstr(s.req, "POST /dicom-web/studies HTTP/1.1"));
	assert_non_null(strcasestr(s.req, "Content-Type: multipart/related; "
	                                  "type=\"application/dicom\"; "
	                                  "boundary=ss-"));
	char *b = strstr(s.req, "boundary=") + 9;
	char bnd[64];
	size_t bl = strcspn(b, "\r\n");
	assert_true(bl < sizeof bnd);
	memcpy(bnd, b, bl);
	bnd[bl] = '\0';
	char *body = strstr(s.req, "\r\n\r\n") + 4;
	char head[128];
	snprintf(head, sizeof head,
	         "--%s\r\nContent-Type: application/dicom\r\n\r\n", bnd);
	assert_memory_equal(body, head, strlen(head));
	assert_memory_equal(body + strlen(head), file, sizeof file);
	char tail[80];
	snprintf(tail, sizeof tail, "\r\n--%s--\r\n", bnd);
	assert_memory_equal(body + strlen(head) + sizeof file, tail,
	                    strlen(tail));
	/* 409 (the archive refused it): not stored. */
	srv_start(&s, &t, 409);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/studies", s.port);
	assert_int_equal(
	    gw_stow_send(url, file, sizeof file, 5000, why, sizeof why),
	    SS_EUNAVAIL);
	assert_string_equal(why, "HTTP 409");
	pthread_join(t, NULL);
	/* Nobody listening. */
	close(s.fd);
	assert_int_equal(
	    gw_stow_send(url, file, sizeof file, 2000, why, sizeof why),
	    SS_EUNAVAIL);
	assert_true(why[0] != '\0');
}

static int
split(const char *ct, const char *body, gw_part *p, size_t max, size_t *n)
{
	char why[128];
	/* An exact-size heap copy, so ASan sees any read past the body. */
	size_t len = strlen(body);
	uint8_t *c = malloc(len + 1);
	int rv;

	assert_non_null(c);
	memcpy(c, body, len);
	rv = gw_multipart_split(ct, c, len, p, max, n, why, sizeof why);
	for (size_t i = 0; rv == 0 && i < *n; i++) {
		assert_true(p[i].data >= c && p[i].data + p[i].len <= c + len);
		p[i].data = (const uint8_t *)body + (p[i].data - c);
	}
	free(c);
	return rv;
}

static void
test_multipart(void **state)
{
	gw_part p[4];
	size_t n;

	(void)state;
	/* related: two dicom parts; a text part skipped; preamble ignored */
	assert_int_equal(
	    split("multipart/related; type=\"application/dicom\"; "
	          "boundary=XyZ",
	          "ignored\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\n"
	          "AAA\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	          "--XyZ\r\ncontent-type: Application/DICOM\r\n\r\nB\r\n--B"
	          "\r\n--XyZ--\r\nepilogue",
	          p, 4, &n),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(p[0].len, 3);
	assert_memory_equal(p[0].data, "AAA", 3);
	assert_int_equal(p[1].len, 6);
	assert_memory_equal(p[1].data, "B\r\n--B", 6);
	/* form-data: only parts with a filename; quoted boundary */
	assert_int_equal(
	    split("multipart/form-data; boundary=\"a b\"",
	          "--a b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	          "v\r\n--a b\r\nContent-Disposition: form-data; name=\"f\"; "
	          "filename=\"IM1\"\r\n\r\nDATA\r\n--a b--",
	          p, 4, &n),
	    0);
	assert_int_equal(n, 1);
	assert_memory_equal(p[0].data, "DATA", 4);
	/* form-data: a text file beside the image is skipped, whatever the
	 * lengths of its two headers */
	assert_int_equal(
	    split("multipart/form-data; boundary=b",
	          "--b\r\nContent-Disposition: form-data; name=\"notes\"; "
	          "filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\n"
	          "hi\r\n--b\r\nContent-Disposition: form-data; name=\"f\"; "
	          "filename=\"IM1\"\r\n\r\nDATA\r\n--b--",
	          p, 4, &n),
	    0);
	assert_int_equal(n, 1);
	assert_memory_equal(p[0].data, "DATA", 4);
	/* refused: no boundary, no closing delimiter, garbage after a
	 * delimiter, too many files, headers that never end */
	assert_int_equal(split("multipart/related", "--x\r\n\r\n", p, 4, &n),
	                 SS_EBADREQ);
	assert_int_equal(
	    split("multipart/related; boundary=x",
	          "--x\r\nContent-Type: application/dicom\r\n\r\nAAA", p, 4,
	          &n),
	    SS_EBADREQ);
	assert_int_equal(
	    split("multipart/related; boundary=x", "--xjunk", p, 4, &n),
	    SS_EBADREQ);
	assert_int_equal(
	    split("multipart/related; boundary=x",
	          "--x\r\nContent-Type: application/dicom\r\n\r\n1\r\n"
	          "--x\r\nContent-Type: application/dicom\r\n\r\n2\r\n--x--",
	          p, 1, &n),
	    SS_EBADREQ);
	assert_int_equal(
	    split("multipart/related; boundary=x",
	          "--x\r\nContent-Type: application/dicom\r\n--x--", p, 4, &n),
	    SS_EBADREQ);
	/* a boundary over 70 characters */
	assert_int_equal(
	    split(
	        "multipart/related; boundary="
	        "0123456789012345678901234567890123456789012345678901234567890"
	        "1234567890",
	        "", p, 4, &n),
	    SS_EBADREQ);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spool),
	    cmocka_unit_test(test_spool_same_bytes_at_once),
	    cmocka_unit_test(test_stow),
	    cmocka_unit_test(test_multipart),
	};
	assert_int_equal(sodium_init() >= 0, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
