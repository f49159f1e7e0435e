/*
 * runtime/pub.h - events on NNG PUB.
 *
 * An event is the topic (its type, e.g. "study.shared"), one 0x00 byte,
 * then one msgpack envelope {"v":1,"type":...,"id":...,"body":{...}};
 * subscribers filter on the topic prefix ("study." for a family,
 * "study.shared\0" for exactly one topic).  PUB is lossy by design:
 * nothing of ours depends on an event arriving (the durable record is the
 * audit stream).  Sending never blocks: when a subscriber is slow its copy
 * is dropped.
 */
#ifndef SS_RUNTIME_PUB_H
#define SS_RUNTIME_PUB_H

#include <stdbool.h>

#include "proto/envelope.h"

typedef struct ss_pub ss_pub;

int ss_pub_listen(ss_pub **out, const char *url);
void ss_pub_close(ss_pub *p);
/* True while at least one subscriber is connected: a caller on a hot
 * path may skip building an event nobody would get, and then counts it
 * with ss_pub_unheard(). */
bool ss_pub_heard(const ss_pub *pub);
void ss_pub_unheard(ss_pub *pub);
/* p holds a request envelope whose type is the topic.  0 when NNG took
 * the event, or when no subscriber is connected (the event is then only
 * counted, in studyshare_events_unheard_total); SS_EUNAVAIL when it refused it
 * (counted in studyshare_events_dropped_total); SS_EINTERNAL for an empty topic
 * or one longer than SS_MAX_TYPE_LEN. */
int ss_pub_send(ss_pub *pub, const char *topic, ss_pack *p);

#endif
