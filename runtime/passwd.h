/*
 * runtime/passwd.h - password hashing.
 *
 * A stored password is Argon2id (libsodium crypto_pwhash_str, t=2,
 * m=19 MiB at least) of HMAC-SHA256(pepper, password).  The pepper comes
 * from config, never from Redis, so a copy of Redis alone cannot be
 * attacked offline.  Both calls take ~12 ms of CPU: run them on a worker
 * thread (runtime/work.h), never on the loop.
 */
#ifndef SS_RUNTIME_PASSWD_H
#define SS_RUNTIME_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <sodium.h>

#define SS_PASSWD_HASH_LEN crypto_pwhash_STRBYTES
#define SS_PASSWD_OPSLIMIT 2ULL
#define SS_PASSWD_MEMLIMIT (19ULL * 1024 * 1024)

/* Thread: any. Writes a NUL-terminated hash to out; 0 or SS_ENOMEM. */
int ss_passwd_hash(const char *pepper, const char *pw, size_t pwlen,
                   char out[SS_PASSWD_HASH_LEN]);

/* Thread: any. True when pw matches hash. A NULL hash still spends the
 * same work (on a fixed dummy hash) and answers false, so that unknown
 * accounts take as long as wrong passwords. */
bool ss_passwd_verify(const char *pepper, const char *hash, const char *pw,
                      size_t pwlen);

#endif
