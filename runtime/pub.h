/*
 * runtime/pub.h - events on NNG PUB.
 *
 * An event is the topic (its type, e.g. "study.shared") followed by one
 * msgpack envelope {"v":1,"type":...,"id":...,"body":{...}}; subscribers
 * filter on the topic prefix.  PUB is lossy by design: nothing of ours
 * depends on an event arriving (the durable record is the audit stream).
 * Sending never blocks: when a subscriber is slow its copy is dropped.
 */
#ifndef SS_RUNTIME_PUB_H
#define SS_RUNTIME_PUB_H

#include "proto/envelope.h"

typedef struct ss_pub ss_pub;

int ss_pub_listen(ss_pub **out, const char *url);
void ss_pub_close(ss_pub *p);
/* p holds a request envelope whose type is the topic. */
int ss_pub_send(ss_pub *pub, const char *topic, ss_pack *p);

#endif
