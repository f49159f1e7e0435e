/*
 * services/gateway/upload_stow.c - forwarding a DICOM file to a DICOMweb
 * STOW-RS endpoint (PS3.18 "Store Transaction").
 *
 * Contract in upload.h.  One file, one request: a multipart/related body
 * of one application/dicom part, with a random boundary that cannot occur
 * in the file (it is checked).  Runs on a worker thread; each call has its
 * own curl handle, so calls from several threads are independent.
 */
#include "services/gateway/upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <sodium.h>

#include "proto/errors.h"

/* The response body is not needed beyond its status; drop it. */
static size_t
sink(char *p, size_t sz, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return sz * n;
}

static void
boundary(char out[41], const uint8_t *buf, size_t len)
{
	for (;;) {
		unsigned char r[16];
		randombytes_buf(r, sizeof r);
		memcpy(out, "ss-", 3);
		for (size_t i = 0; i < sizeof r; i++)
			snprintf(out + 3 + 2 * i, 3, "%02x", r[i]);
		if (memmem(buf, len, out, strlen(out)) == NULL)
			return;
	}
}

static void
reason(char *why, size_t n, const char *s)
{
	if (why != NULL && n > 0)
		snprintf(why, n, "%s", s);
}

int
gw_stow_send(const char *url, const uint8_t *buf, size_t len, long timeout_ms,
             char *why, size_t why_len)
{
	char b[41], head[160], tail[64], ctype[160];
	struct curl_slist *hdr = NULL;
	CURL *c = NULL;
	char *body = NULL;
	long status = 0;
	int rv = SS_EUNAVAIL;

	boundary(b, buf, len);
	int hn = snprintf(head, sizeof head,
	                  "--%s\r\nContent-Type: application/dicom\r\n\r\n", b);
	int tn = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", b);
	size_t total = (size_t)hn + len + (size_t)tn;
	if ((body = malloc(total)) == NULL) {
		reason(why, why_len, "out of memory");
		goto fail;
	}
	memcpy(body, head, (size_t)hn);
	memcpy(body + hn, buf, len);
	memcpy(body + hn + len, tail, (size_t)tn);
	snprintf(ctype, sizeof ctype,
	         "Content-Type: multipart/related; type=\"application/dicom\"; "
	         "boundary=%s",
	         b);
	if ((c = curl_easy_init()) == NULL ||
	    (hdr = curl_slist_append(hdr, ctype)) == NULL ||
	    (hdr = curl_slist_append(hdr, "Accept: application/dicom+json")) ==
	        NULL ||
	    /* no 1 s wait for a "100 Continue" before a large body */
	    (hdr = curl_slist_append(hdr, "Expect:")) == NULL) {
		reason(why, why_len, "out of memory");
		goto fail;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)total);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		reason(why, why_len, curl_easy_strerror(cc));
		goto fail;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 || status == 202) {
		reason(why, why_len, "");
		rv = 0;
	} else {
		char s[32];
		snprintf(s, sizeof s, "HTTP %ld", status);
		reason(why, why_len, s);
	}

fail:
	curl_slist_free_all(hdr);
	if (c != NULL)
		curl_easy_cleanup(c);
	free(body);
	return rv;
}
