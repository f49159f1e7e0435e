/*
 * services/gateway/static.c - the files of the web UI.
 *
 * Contract (gateway.h): "/" is <web-root>/index.html and "/static/NAME"
 * is <web-root>/static/NAME, for flat names of known types only: no
 * slash, no leading dot, so nothing outside that directory can be named.
 * Files are read when asked for (an edit shows without a restart), sent
 * with their Content-Type, an ETag from size and modification time, and
 * Cache-Control from the static-max-age setting (0: "no-cache", i.e.
 * revalidate every time, which is right for files whose names carry no
 * version); If-None-Match answers 304.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

static const struct {
	const char *ext;
	const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

const char *
gw_static_type(const char *name)
{
	size_t n = strlen(name), e;

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		e = strlen(types[i].ext);
		if (n > e && strcmp(name + n - e, types[i].ext) == 0)
			return types[i].type;
	}
	return NULL;
}

bool
gw_static_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return gw_static_type(name) != NULL;
}

/* Serves <web-root>/<dir><name>. */
static void
serve(gw_req *r, const char *dir, const char *name)
{
	char path[2048], etag[64], cache[48];
	const char *inm;
	struct evbuffer *body = NULL;
	struct stat st;
	int fd = -1;

	snprintf(path, sizeof path, "%s/%s%s", r->s->web_root, dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		gw_fail(r, SS_ENOTFOUND, "no such file");
		return;
	}
	snprintf(etag, sizeof etag, "W/\"%jx-%jx%09lx\"", (uintmax_t)st.st_size,
	         (uintmax_t)st.st_mtim.tv_sec,
	         (unsigned long)st.st_mtim.tv_nsec);
	if (r->s->cfg->static_max_age_ms > 0)
		snprintf(cache, sizeof cache, "public, max-age=%" PRId64,
		         r->s->cfg->static_max_age_ms / 1000);
	else
		snprintf(cache, sizeof cache, "no-cache");
	gw_add_header(r, "ETag", etag);
	inm = gw_header(r, "If-None-Match");
	if (inm != NULL && strcmp(inm, etag) == 0) {
		close(fd);
		gw_reply_body(r, 304, NULL, cache, NULL);
		return;
	}
	if (st.st_size == 0) {
		close(fd);
		fd = -1;
	}
	if ((body = evbuffer_new()) == NULL ||
	    (fd >= 0 && evbuffer_add_file(body, fd, 0, st.st_size) != 0)) {
		/* evbuffer_add_file closes fd even when it fails */
		if (body == NULL && fd >= 0)
			close(fd);
		else
			evbuffer_free(body);
		gw_fail(r, SS_ENOMEM, NULL);
		return;
	}
	gw_reply_body(r, 200, gw_static_type(name), cache, body);
	evbuffer_free(body);
}

void
gw_static_serve(gw_req *r, const char *name)
{
	if (!gw_static_name_ok(name)) {
		gw_fail(r, SS_ENOTFOUND, "no such file");
		return;
	}
	serve(r, "static/", name);
}

void
gw_page_index(gw_req *r)
{
	serve(r, "", "index.html");
}

void
gw_page_static(gw_req *r)
{
	gw_static_serve(r, r->pm.v[0]);
}
