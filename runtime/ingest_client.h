/*
 * runtime/ingest_client.h - announcing a study to share, from C.
 *
 * For the authors of other services (a PACS bridge, a modality router, the
 * upload path): one call sends a study.arrived event (API.md "Studies",
 * proto/README.md "share") to share's ingest endpoint and waits for the
 * reply, which share sends only after the study is stored.
 *
 *   ss_ingest *c;
 *   ss_ingest_result res;
 *   ss_study_event ev = {.study_uid = "1.2.840.1",
 *                        .worklist = "location:ct",
 *                        .study_date = "20261101"};
 *
 *   ss_ingest_open(&c, "tcp://127.0.0.1:7300", 5000);
 *   switch (ss_ingest_publish(c, &ev, &res)) {
 *   case 0:            stored (res.created, res.added)
 *   case SS_EUNAVAIL:
 *   case SS_ETIMEDOUT: send the same event again later: always safe
 *   default:           refused: res.message names the field
 *   }
 *   ss_ingest_close(c);
 *
 * Blocking: call it from your own threads, not from an event loop.  One
 * client may be used by several threads at once (each call has its own
 * NNG context).  The dialer connects in the background and reconnects by
 * itself, so open does not fail when share is not up yet.
 */
#ifndef SS_RUNTIME_INGEST_CLIENT_H
#define SS_RUNTIME_INGEST_CLIENT_H

#include <stdbool.h>

typedef struct ss_study_event {
	const char *study_uid; /* required */
	const char *worklist;  /* required, "<kind>:<id>" */
	/* Optional: NULL when unknown. */
	const char *patient_id;
	const char *patient_name;
	const char *birth_date; /* YYYYMMDD */
	const char *study_date; /* YYYYMMDD */
	const char *accession;
	const char *modality;
	const char *description;
	/* For senders that are not trusted with every study (the upload
	 * path): a study already stored is added to the worklist only when
	 * its patient (id, name, birth date) is this event's; otherwise
	 * SS_ECONFLICT.  A study UID alone must not open another's study. */
	bool match_patient;
	/* With match_patient: nothing is stored, and the answer is the
	 * SS_ECONFLICT the event would get, or 0 (created, added false).  The
	 * upload path asks this before it forwards a file to the archive. */
	bool check_only;
} ss_study_event;

typedef struct ss_ingest_result {
	bool created;      /* the study was new */
	bool added;        /* the worklist did not hold it yet */
	char message[256]; /* on a refusal: share's message */
} ss_ingest_result;

typedef struct ss_ingest ss_ingest;

/* 0, SS_EBADREQ for a malformed URL, SS_ENOMEM or SS_EUNAVAIL. */
int ss_ingest_open(ss_ingest **out, const char *url, int timeout_ms);
void ss_ingest_close(ss_ingest *c);

/*
 * Sends ev and waits at most the client's timeout for the reply.
 * Returns 0 when share stored it; the error code of share's reply when it
 * refused (SS_EBADREQ, SS_ENOTFOUND, SS_EUNAVAIL, ...), with its message
 * in res->message; SS_ETIMEDOUT when no reply came in time (share down or
 * unreachable); SS_EBADREQ without sending when a required field is NULL.
 */
int ss_ingest_publish(ss_ingest *c, const ss_study_event *ev,
                      ss_ingest_result *res);

#endif
