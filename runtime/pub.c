/*
 * runtime/pub.c - events on NNG PUB.
 *
 * Contract: an event on the wire is
 *
 *   <topic bytes> 0x00 <msgpack envelope>
 *
 * NNG SUB filters by byte prefix, so a subscriber that wants one topic
 * subscribes to "study.shared" followed by the 0x00 byte (which keeps
 * "study.shared_x" out), and one that wants a family subscribes to a prefix
 * such as "study." without it.  The envelope starts after the first 0x00:
 * topics contain none.
 *
 * Sending never blocks (NNG_FLAG_NONBLOCK).  An event NNG refuses is
 * counted in studyshare_events_dropped_total; a slow subscriber's copy is
 * dropped inside NNG, where we cannot see it.  While no subscriber is
 * connected (runtime/pipes.h) an event is not handed
 * to NNG at all, which would only discard it: it is counted in
 * studyshare_events_unheard_total, and ss_pub_heard() lets a caller skip
 * building it.  Call from the loop.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>

#include "proto/errors.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/pipes.h"
#include "runtime/pub.h"

/* Events queued per subscriber before NNG drops that subscriber's copy:
 * enough for a burst of shares. */
#define PUB_SENDBUF 256

struct ss_pub {
	nng_socket sock;
	atomic_int npipes;
	ss_metric *published;
	ss_metric *dropped;
	ss_metric *unheard;
};

int
ss_pub_listen(ss_pub **out, const char *url)
{
	ss_pub *p;
	int rv;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return SS_ENOMEM;
	p->published = ss_counter("studyshare_events_published_total",
	                          "Events handed to NNG PUB.", NULL);
	p->dropped = ss_counter("studyshare_events_dropped_total",
	                        "Events NNG PUB refused.", NULL);
	p->unheard =
	    ss_counter("studyshare_events_unheard_total",
	               "Events not sent: no subscriber was connected.", NULL);
	if ((rv = nng_pub0_open(&p->sock)) != 0) {
		free(p);
		goto nng_fail;
	}
	if ((rv = ss_pipes_count(p->sock, &p->npipes)) != 0 ||
	    (rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, PUB_SENDBUF)) !=
	        0 ||
	    (rv = nng_listen(p->sock, url, NULL, 0)) != 0) {
		nng_close(p->sock);
		free(p);
		goto nng_fail;
	}
	ss_info("pub.listening", NULL, "url", url, NULL);
	*out = p;
	return 0;

nng_fail:
	ss_error("pub.listen_failed", NULL, "url", url, "error",
	         nng_strerror(rv), NULL);
	switch (rv) {
	case NNG_ENOMEM:
		return SS_ENOMEM;
	case NNG_EADDRINVAL:
	case NNG_EINVAL:
	case NNG_ENOTSUP:
		return SS_EBADREQ; /* a bad address in the configuration */
	default:
		return SS_EUNAVAIL;
	}
}

void
ss_pub_close(ss_pub *p)
{
	if (p == NULL)
		return;
	nng_close(p->sock);
	free(p);
}

/*
 * Returns 0 when NNG took the event, SS_EUNAVAIL when it refused it (the
 * event is dropped and counted), SS_ENOMEM, or SS_EINTERNAL for a topic
 * that is empty or longer than SS_MAX_TYPE_LEN (a caller's bug).
 */
bool
ss_pub_heard(const ss_pub *pub)
{
	return atomic_load(&pub->npipes) > 0;
}

void
ss_pub_unheard(ss_pub *pub)
{
	ss_metric_add(pub->unheard, 1);
}

int
ss_pub_send(ss_pub *pub, const char *topic, ss_pack *p)
{
	nng_msg *nm;
	size_t tlen = strlen(topic);
	char *b;
	int rv;

	if (tlen == 0 || tlen > SS_MAX_TYPE_LEN)
		return SS_EINTERNAL;
	if (!ss_pub_heard(pub)) {
		ss_pub_unheard(pub);
		return 0;
	}
	if (nng_msg_alloc(&nm, tlen + 1 + p->sb.size) != 0) {
		ss_metric_add(pub->dropped, 1);
		return SS_ENOMEM;
	}
	b = nng_msg_body(nm);
	memcpy(b, topic, tlen);
	b[tlen] = '\0';
	memcpy(b + tlen + 1, p->sb.data, p->sb.size);
	if ((rv = nng_sendmsg(pub->sock, nm, NNG_FLAG_NONBLOCK)) != 0) {
		nng_msg_free(nm);
		ss_metric_add(pub->dropped, 1);
		ss_warn("pub.dropped", NULL, "topic", topic, "error",
		        nng_strerror(rv), NULL);
		return SS_EUNAVAIL;
	}
	ss_metric_add(pub->published, 1);
	return 0;
}
