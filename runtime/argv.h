/*
 * runtime/argv.h - building a Redis command's argument vector.
 *
 * Scripts take long argument lists (a directory import passes every
 * worklist); ss_argv collects copies of the arguments with their lengths so
 * that they are binary-safe and outlive the caller's buffers.
 */
#ifndef SS_RUNTIME_ARGV_H
#define SS_RUNTIME_ARGV_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_argv {
	const char **v;
	size_t *lens;
	int n;
	int cap;
	int oom; /* a push failed: the vector is incomplete */
} ss_argv;

void ss_argv_init(ss_argv *a);
void ss_argv_free(ss_argv *a);
/* Copies s (len bytes; strlen when len is (size_t)-1). */
void ss_argv_push(ss_argv *a, const char *s, size_t len);
void ss_argv_pushs(ss_argv *a, const char *s);
void ss_argv_pushi(ss_argv *a, int64_t v);
/* 0, or SS_ENOMEM when any push failed. */
int ss_argv_status(const ss_argv *a);

#endif
