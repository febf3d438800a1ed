/*
 * cm_format.h - the format stamp of a data directory and of each of its drive folders: which
 * on-disk format they hold, checked before a server or fsck touches anything else.
 *
 * A stamp is the small text file FORMAT (docs/upgrades-format.md):
 *
 *     cairn-format 1                            magic and format version: always the first line
 *     kind data                                 data | drive
 *     id 5f0c...(32 hex)                        the data directory's id; its drives carry the same
 *     written-by 0.1.0                          the cairn version that wrote the stamp
 *     created 2026-12-05T09:30:00.000Z          when it was written
 *     origin new                                new | adopted (a directory written before stamps)
 *     crc32c 1a2b3c4d                           CRC32C of every byte before this line
 *
 * It is written once, atomically (a temporary file fsynced, then link()ed to FORMAT, which never
 * replaces an existing stamp, then the directory fsynced), and never rewritten by this version.
 */
#ifndef CM_FORMAT_H
#define CM_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "cm_err.h"

/* The on-disk format this binary reads and writes. Bump it (and teach cm_format_open the
 * upgrade) when a change makes a data directory unreadable to an older cairn. */
#define CM_FORMAT_VERSION 1u
#define CM_FORMAT_FILE "FORMAT"
#define CM_FORMAT_MAX 1024 /* a larger FORMAT file is corrupt */

typedef enum { CM_FORMAT_DATA = 0, CM_FORMAT_DRIVE = 1 } cm_format_kind;

typedef struct {
    uint32_t version;
    cm_format_kind kind;
    char id[33];      /* 32 lowercase hex digits */
    char writer[64];  /* the cairn version that wrote it: [0-9A-Za-z.+~-] */
    char created[32]; /* ISO 8601 UTC */
    int adopted;      /* 1: stamped over a directory an older cairn had written */
} cm_format_stamp;

/* Encode s into out (cap bytes, NUL-terminated). Returns the length, or 0 if it does not fit. */
size_t cm_format_encode(const cm_format_stamp *s, char *out, size_t cap);

/*
 * Decode a stamp from buf[0..len). known is the newest version the caller reads (CM_FORMAT_VERSION
 * but in tests). CM_ERR_UNSUPPORTED when the magic line names a newer version (out->version is set;
 * nothing else is trusted), CM_ERR_CORRUPT for any other malformed byte (a bad CRC, an unknown or
 * missing key, a bad value). why says what.
 */
cm_err cm_format_decode(const char *buf, size_t len, uint32_t known, cm_format_stamp *out,
                        char *why, size_t cap);

/* Read dir/FORMAT. CM_ERR_NOTFOUND when there is none, CM_ERR_IO when it cannot be read, else as
 * cm_format_decode. */
cm_err cm_format_read(const char *dir, uint32_t known, cm_format_stamp *out, char *why, size_t cap);

/* Write dir/FORMAT atomically (see the top). CM_ERR_EXISTS if dir already has one. */
cm_err cm_format_write(const char *dir, const cm_format_stamp *s);

/*
 * The start check of a data directory (which must exist) and its drives data/drive0 ..
 * data/drive<ndrives-1>. Reads every stamp first and refuses, writing nothing, when one is
 * corrupt (CM_ERR_CORRUPT), names a newer format (CM_ERR_UNSUPPORTED) or disagrees with the
 * others in version or id (CM_ERR_CONFLICT: a drive from another data directory, or a mix of
 * formats). Then stamps what has none: the data directory (with the drives' id when they have
 * one; "adopted" when it already held files), and each drive folder (created if missing, as a
 * replaced disk is) with format known (CM_FORMAT_VERSION but in tests). writer is the cairn
 * version. An older format is accepted as it is: format 1 is the first, so there is no upgrade yet
 * (the next version's upgrade goes here, before anything else opens the directory). On success *out
 * is the data directory's stamp and *adopted counts the directories stamped over existing content.
 * why explains a refusal, naming the file and the versions.
 */
cm_err cm_format_open(const char *data, int ndrives, const char *writer, uint32_t known,
                      cm_format_stamp *out, int *adopted, char *why, size_t cap);

#endif
