/*
 * runtime/addr.h - network addresses: host:port settings, and whom a
 * per-address limit counts.
 *
 * ss_addr_split() reads the host:port settings (--admin-addr, the
 * gateway's --listen, --redis-addr), one rule for all: "host:port",
 * "[v6]:port", either after "tcp://"; the port 1..65535 in digits.
 *
 * An IPv6 client is counted by its /64, the block one subscriber or host
 * gets: counting single addresses would let it pick a fresh one for every
 * request.  An IPv4-mapped address counts as its IPv4 address; an IPv4
 * address, or anything that is not an address ("-"), as given.  The
 * gateway's rate limits and authz's failed-login limit per address both
 * count this, so one host cannot spread its guesses over its /64.
 */
#ifndef SS_RUNTIME_ADDR_H
#define SS_RUNTIME_ADDR_H

#include <stddef.h>
#include <stdint.h>

/* Room for any answer: an IPv6 text form and "/64". */
#define SS_ADDR_CLIENT_MAX (46 + 4)

/* The client addr counts as, into out (cap bytes, NUL-terminated;
 * truncated when cap is smaller than SS_ADDR_CLIENT_MAX or addr is not an
 * address and longer). */
void ss_addr_client(const char *addr, char *out, size_t cap);

/* Splits addr into host (nhost bytes, NUL-terminated, without the
 * brackets of an IPv6 host) and port: 0, or SS_EBADREQ for anything
 * else (no port, an empty or too long host, a port that is not 1..65535
 * in digits, an unclosed bracket). */
int ss_addr_split(const char *addr, char *host, size_t nhost, uint16_t *port);

#endif
