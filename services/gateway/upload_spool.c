/*
 * services/gateway/upload_spool.c - content-addressed, durable spool of
 * uploaded DICOM files.
 *
 * Contract in upload.h.  The order is what makes a file durable and
 * never half-present: write a temporary file (O_EXCL, mode 0600) in the
 * same directory, fsync it, link it to its final name (atomic within a
 * file system, and refused when the name exists), drop the temporary
 * name, fsync the directory so the new name itself survives a crash.  A
 * reader therefore sees no file or the whole file.  The final name is
 * the SHA-256 of the bytes, so nothing from the upload (its file name, a
 * path) ever reaches the file system, and a second upload of the same
 * file is the same file.  A file this upload created is dropped again
 * when every upload of its bytes is refused (upload.c); one that was
 * there before belongs to another upload and stays.
 */
#include "services/gateway/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "proto/errors.h"

static void
hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rv = fsync(fd);
	close(fd);
	return rv;
}

int
gw_spool_put(const char *dir, const uint8_t *buf, size_t len,
             char sha[GW_SHA256_HEX + 1], bool *created)
{
	unsigned char d[crypto_hash_sha256_BYTES];
	unsigned char rnd[8];
	char tmp[4096], final[4096], r[17];
	int fd = -1;

	crypto_hash_sha256(d, buf, len);
	hex(d, sizeof d, sha);
	if (snprintf(final, sizeof final, "%s/%s.dcm", dir, sha) >=
	    (int)sizeof final)
		return SS_EUNAVAIL;
	randombytes_buf(rnd, sizeof rnd);
	hex(rnd, sizeof rnd, r);
	if (snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, r) >= (int)sizeof tmp)
		return SS_EUNAVAIL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return SS_EUNAVAIL;
	if (write_all(fd, buf, len) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	/* link() rather than rename(): it fails when the name exists, so
	 * *created is exact even with two workers on the same bytes (same
	 * bytes, same name: the copy already there is as good). */
	*created = link(tmp, final) == 0;
	if (!*created && (errno == EPERM || errno == EOPNOTSUPP)) {
		/* A file system without hard links: rename, *created then
		 * only as exact as a look just before. */
		*created = access(final, F_OK) != 0;
		if (rename(tmp, final) != 0)
			goto fail;
	} else if (!*created && errno != EEXIST) {
		goto fail;
	}
	unlink(tmp);
	if (fsync_dir(dir) != 0)
		return SS_EUNAVAIL;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return SS_EUNAVAIL;
}

int
gw_spool_drop(const char *dir, const char sha[GW_SHA256_HEX + 1])
{
	char final[4096];

	if (snprintf(final, sizeof final, "%s/%s.dcm", dir, sha) >=
	    (int)sizeof final)
		return SS_EUNAVAIL;
	if (unlink(final) != 0 && errno != ENOENT)
		return SS_EUNAVAIL;
	return fsync_dir(dir) == 0 ? 0 : SS_EUNAVAIL;
}
