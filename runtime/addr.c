/*
 * runtime/addr.c - network addresses (addr.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proto/errors.h"
#include "runtime/addr.h"

int
ss_addr_split(const char *addr, char *host, size_t nhost, uint16_t *port)
{
	const char *h = addr, *end, *colon;
	size_t hlen;
	long p = 0;

	if (strncmp(h, "tcp://", 6) == 0)
		h += 6;
	if (h[0] == '[') {
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			return SS_EBADREQ;
		h++;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		if ((colon = strrchr(h, ':')) == NULL)
			return SS_EBADREQ;
		hlen = (size_t)(colon - h);
	}
	if (hlen == 0 || hlen >= nhost || colon[1] == '\0')
		return SS_EBADREQ;
	for (const char *c = colon + 1; *c != '\0'; c++) {
		if (*c < '0' || *c > '9' || p > 65535)
			return SS_EBADREQ;
		p = p * 10 + (*c - '0');
	}
	if (p < 1 || p > 65535)
		return SS_EBADREQ;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

void
ss_addr_client(const char *addr, char *out, size_t cap)
{
	unsigned char a[16];
	char txt[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET6, addr, a) != 1) {
		snprintf(out, cap, "%s", addr);
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a)) {
		inet_ntop(AF_INET, a + 12, txt, sizeof txt);
		snprintf(out, cap, "%s", txt);
		return;
	}
	memset(a + 8, 0, 8);
	inet_ntop(AF_INET6, a, txt, sizeof txt);
	snprintf(out, cap, "%s/64", txt);
}
