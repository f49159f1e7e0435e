/*
 * services/gateway/route.c - matching a request against the route table.
 *
 * Contract (gateway.h): a pattern is a path whose segments are literal
 * or '*' (one non-empty segment, a parameter).  The raw path is compared
 * segment by segment, so an encoded '/' (%2F) inside a parameter never
 * splits it; parameters are then percent-decoded (gw_pct_decode: no NUL,
 * no control bytes, valid UTF-8, at most GW_PARAM_MAX bytes).  The first
 * route whose path and method match wins; when only the path matches, the
 * methods of the routes that share it are reported for a 405.
 */
#include <string.h>

#include "proto/errors.h"
#include "services/gateway/gateway.h"

/* Matches path against pattern; raw parameter views into seg/len. */
static bool
match(const char *pattern, const char *path, const char **seg, size_t *len,
      size_t *nseg)
{
	const char *p = pattern, *q = path;
	size_t n = 0;

	while (*p != '\0' && *q != '\0') {
		if (*p == '*') {
			const char *e = q;
			while (*e != '\0' && *e != '/')
				e++;
			if (e == q || n == GW_NPARAMS)
				return false;
			seg[n] = q;
			len[n++] = (size_t)(e - q);
			q = e;
			p++;
			continue;
		}
		if (*p != *q)
			return false;
		p++;
		q++;
	}
	if (*p != '\0' || *q != '\0')
		return false;
	*nseg = n;
	return true;
}

int
gw_route_find(const gw_route *tab, size_t n, int method, const char *path,
              gw_params *pm, int *allowed)
{
	const char *seg[GW_NPARAMS];
	size_t len[GW_NPARAMS], nseg = 0, i, k;

	*allowed = 0;
	pm->n = 0;
	pm->bad = false;
	for (i = 0; i < n; i++) {
		if (!match(tab[i].pattern, path, seg, len, &nseg))
			continue;
		if (!(tab[i].methods & method)) {
			*allowed |= tab[i].methods;
			continue;
		}
		for (k = 0; k < nseg; k++) {
			if (gw_pct_decode(seg[k], len[k], false, pm->v[k],
			                  sizeof pm->v[k], NULL) != 0) {
				pm->v[k][0] = '\0';
				pm->bad = true;
			}
		}
		pm->n = nseg;
		return (int)i;
	}
	return GW_ROUTE_NONE;
}
