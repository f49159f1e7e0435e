/*
 * services/gateway/upload.h - guest uploads: what happens to one DICOM
 * file after its header was read (runtime/dicom.h), off the loop.
 *
 *   upload_spool.c  the file is kept durably in the spool directory under
 *                   the SHA-256 of its bytes: written to a temporary file,
 *                   fsynced, linked into place, the directory fsynced.  A
 *                   name from the upload is never used.
 *   upload_stow.c   the file is sent to a DICOMweb STOW-RS URL (libcurl,
 *                   multipart/related; type="application/dicom").
 *   upload_multipart.c  the files of a multipart body.
 *   upload.c        the routes /u/{token} and /u/{token}/files.
 *
 * The spool and STOW functions block (disk, network): call them from the
 * gateway's worker threads, never from the loop.
 */
#ifndef SS_GATEWAY_UPLOAD_H
#define SS_GATEWAY_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SHA256_HEX 64

/*
 * Stores buf in dir as "<sha256 hex>.dcm" and puts the hex digest in sha.
 * Storing the same bytes again changes nothing (the name is the content).
 * 0 once the file and its directory entry are on disk, *created telling
 * whether this call made it (false: an earlier upload had); SS_EUNAVAIL
 * when the disk refused (nothing is left behind but what was there
 * before).
 */
int gw_spool_put(const char *dir, const uint8_t *buf, size_t len,
                 char sha[GW_SHA256_HEX + 1], bool *created);

/*
 * Removes "<sha>.dcm" from dir: a file gw_spool_put() created for an
 * upload that was then refused, so that nothing of it is kept.  0, or
 * SS_EUNAVAIL when the disk refused (the file stays).
 */
int gw_spool_drop(const char *dir, const char sha[GW_SHA256_HEX + 1]);

/*
 * POSTs buf as one application/dicom part of a multipart/related body to
 * url (a STOW-RS studies URL).  0 when the server stored it (200, or 202
 * with warnings); SS_EUNAVAIL when it could not be reached, timed out or
 * refused; why (may be NULL) gets the HTTP status or curl's reason.
 */
int gw_stow_send(const char *url, const uint8_t *buf, size_t len,
                 long timeout_ms, char *why, size_t why_len);

/* One file of a multipart body: a view into it. */
typedef struct gw_part {
	const uint8_t *data;
	size_t len;
} gw_part;

/* Most files one multipart request may carry. */
#define GW_PARTS_MAX 1000

/*
 * The file parts of a multipart body (multipart/related or
 * multipart/form-data; ctype is the request's Content-Type with its
 * boundary): parts that say application/dicom or application/octet-stream,
 * or form-data parts with a filename.  Other parts are skipped.  0 with
 * *nparts set (0 is possible), or SS_EBADREQ with why set: no boundary,
 * malformed, no closing delimiter, more than max files.  Never reads
 * outside [body, body + len).
 */
int gw_multipart_split(const char *ctype, const uint8_t *body, size_t len,
                       gw_part *parts, size_t max, size_t *nparts, char *why,
                       size_t why_len);

#endif
