/*
 * runtime/addr.c - whom a per-address limit counts (addr.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "runtime/addr.h"

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
