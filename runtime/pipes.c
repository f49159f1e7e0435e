/*
 * runtime/pipes.c - see pipes.h.
 */
#include "runtime/pipes.h"

/* An NNG thread. */
static void
pipes_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	atomic_int *n = arg;

	(void)pipe;
	if (ev == NNG_PIPE_EV_ADD_PRE)
		atomic_fetch_add(n, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(n, 1);
}

int
ss_pipes_count(nng_socket s, atomic_int *n)
{
	int rv;

	atomic_init(n, 0);
	if ((rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_PRE, pipes_event, n)) != 0)
		return rv;
	return nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, pipes_event, n);
}
