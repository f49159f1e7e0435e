/*
 * runtime/pipes.h - how many pipes (connections) an NNG socket has.
 *
 * A REQ client refuses at once when no peer is connected and its
 * readiness probe reports it; a PUB socket skips events nobody would get.
 * Both keep the count with NNG's pipe notifications: +1 when a pipe is
 * added, -1 when it is removed (REM_POST comes for every pipe that had
 * ADD_PRE, started or not).  The counter is updated on NNG's threads and
 * read anywhere.
 */
#ifndef SS_RUNTIME_PIPES_H
#define SS_RUNTIME_PIPES_H

#include <stdatomic.h>

#include <nng/nng.h>

/* Starts counting s's pipes into *n (set to 0 first); an NNG error. */
int ss_pipes_count(nng_socket s, atomic_int *n);

#endif
