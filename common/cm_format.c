/*
 * cm_format.c - format stamps of the data directory and its drive folders (cm_format.h has the
 * file and the rules; docs/upgrades-format.md the operator's view).
 *
 * Why a stamp beside the formats that already carry versions (segment headers, record format
 * bytes): those are read only when a record is, long after a server started serving; an older
 * binary started on a directory a newer one wrote would fail late, or worse, rewrite records it
 * half understands. The stamp makes the refusal happen at start, before anything is opened.
 *
 * The decoder takes the file as untrusted: bounded size, the version read from the first line
 * before anything else (so a newer format is reported as newer, whatever its other lines), then a
 * CRC32C over the rest, then every key exactly once with a checked value. cm_format_open reads all
 * stamps before it writes any, so a refused start leaves the directory as it was.
 */
#include "cm_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_util.h"

#define MAGIC "cairn-format "

static void say(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

size_t cm_format_encode(const cm_format_stamp *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, MAGIC "%u\nkind %s\nid %s\nwritten-by %s\ncreated %s\norigin %s\n",
                     s->version, s->kind == CM_FORMAT_DRIVE ? "drive" : "data", s->id, s->writer,
                     s->created, s->adopted ? "adopted" : "new");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    uint32_t crc = cm_crc32c(0, out, (size_t)n);
    int m = snprintf(out + n, cap - (size_t)n, "crc32c %08x\n", crc);
    if (m < 0 || (size_t)m >= cap - (size_t)n)
        return 0;
    return (size_t)(n + m);
}

/* Parse 1..9 decimal digits without a leading zero from p[0..len); -1 when not exactly that. */
static int64_t parse_num(const char *p, size_t len)
{
    if (len == 0 || len > 9 || p[0] == '0')
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Are p[0..len) all characters of the set, 1..max-1 of them? */
static int chars_ok(const char *p, size_t len, size_t max, const char *set)
{
    if (len == 0 || len >= max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!p[i] || !strchr(set, p[i]))
            return 0;
    return 1;
}

/* One "key value" line of the body into s; 0 ok, -1 bad value, -2 unknown key. seen: bit per key.
 */
static int decode_line(const char *k, size_t kl, const char *v, size_t vl, cm_format_stamp *s,
                       unsigned *seen)
{
    static const char *const keys[] = {"kind", "id", "written-by", "created", "origin"};
    size_t i = 0;
    while (i < CM_ARRAY_LEN(keys) && !(strlen(keys[i]) == kl && memcmp(keys[i], k, kl) == 0))
        i++;
    if (i == CM_ARRAY_LEN(keys))
        return -2;
    if (*seen & (1u << i))
        return -1; /* twice */
    *seen |= 1u << i;
    switch (i) {
    case 0:
        if (vl == 4 && memcmp(v, "data", 4) == 0)
            s->kind = CM_FORMAT_DATA;
        else if (vl == 5 && memcmp(v, "drive", 5) == 0)
            s->kind = CM_FORMAT_DRIVE;
        else
            return -1;
        return 0;
    case 1:
        if (vl != 32 || !chars_ok(v, vl, sizeof(s->id), "0123456789abcdef"))
            return -1;
        memcpy(s->id, v, vl), s->id[vl] = 0;
        return 0;
    case 2:
        if (!chars_ok(v, vl, sizeof(s->writer),
                      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~-"))
            return -1;
        memcpy(s->writer, v, vl), s->writer[vl] = 0;
        return 0;
    case 3:
        if (!chars_ok(v, vl, sizeof(s->created), "0123456789-:.TZ"))
            return -1;
        memcpy(s->created, v, vl), s->created[vl] = 0;
        return 0;
    default:
        if (vl == 3 && memcmp(v, "new", 3) == 0)
            s->adopted = 0;
        else if (vl == 7 && memcmp(v, "adopted", 7) == 0)
            s->adopted = 1;
        else
            return -1;
        return 0;
    }
}

cm_err cm_format_decode(const char *buf, size_t len, uint32_t known, cm_format_stamp *out,
                        char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (len > CM_FORMAT_MAX || len < sizeof(MAGIC) || memcmp(buf, MAGIC, sizeof(MAGIC) - 1) != 0 ||
        memchr(buf, 0, len)) {
        say(why, cap, "not a cairn format stamp");
        return CM_ERR_CORRUPT;
    }
    const char *end = buf + len, *p = buf + sizeof(MAGIC) - 1;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    int64_t v = nl ? parse_num(p, (size_t)(nl - p)) : -1;
    if (v < 1) {
        say(why, cap, "unreadable format version");
        return CM_ERR_CORRUPT;
    }
    out->version = (uint32_t)v;
    if (v > known) {
        say(why, cap, "format %u is newer than this cairn knows (%u)", out->version, known);
        return CM_ERR_UNSUPPORTED;
    }
    /* The last line is "crc32c xxxxxxxx\n" over every byte before it. */
    static const size_t crc_line = sizeof("crc32c 01234567\n") - 1;
    uint32_t want = 0;
    char hex[9];
    if ((size_t)(end - nl - 1) < crc_line || memcmp(end - crc_line, "crc32c ", 7) != 0 ||
        end[-1] != '\n' || !chars_ok(end - 9, 8, 9, "0123456789abcdef")) {
        say(why, cap, "no checksum line");
        return CM_ERR_CORRUPT;
    }
    memcpy(hex, end - 9, 8), hex[8] = 0;
    for (int i = 0; i < 8; i++)
        want = want << 4 | (uint32_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
    end -= crc_line;
    if (cm_crc32c(0, buf, (size_t)(end - buf)) != want) {
        say(why, cap, "checksum mismatch");
        return CM_ERR_CORRUPT;
    }
    unsigned seen = 0;
    for (p = nl + 1; p < end; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(end - p)); /* end[-1] is '\n': the CRC covered it */
        const char *sp = nl ? memchr(p, ' ', (size_t)(nl - p)) : NULL;
        int r =
            sp ? decode_line(p, (size_t)(sp - p), sp + 1, (size_t)(nl - sp - 1), out, &seen) : -1;
        if (r != 0) {
            say(why, cap, "%s line %.*s", r == -2 ? "unknown" : "bad",
                (int)CM_MIN(nl ? nl - p : 0, 40), p);
            return CM_ERR_CORRUPT;
        }
    }
    if (seen != 0x1f) {
        say(why, cap, "a key is missing");
        return CM_ERR_CORRUPT;
    }
    return CM_OK;
}

cm_err cm_format_read(const char *dir, uint32_t known, cm_format_stamp *out, char *why, size_t cap)
{
    char path[4200], buf[CM_FORMAT_MAX + 1];
    snprintf(path, sizeof(path), "%s/" CM_FORMAT_FILE, dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang the start */
    if (fd < 0) {
        int err = errno;
        say(why, cap, "%s", strerror(err));
        return err == ENOENT ? CM_ERR_NOTFOUND : CM_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        say(why, cap, "not a regular file");
        return CM_ERR_CORRUPT;
    }
    size_t len = 0;
    ssize_t n = 0;
    while (len < sizeof(buf) &&
           ((n = read(fd, buf + len, sizeof(buf) - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    int err = n < 0 ? errno : 0;
    close(fd);
    if (err) {
        say(why, cap, "%s", strerror(err));
        return CM_ERR_IO;
    }
    return cm_format_decode(buf, len, known, out, why, cap);
}

static cm_err sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return CM_ERR_IO;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? CM_OK : CM_ERR_IO;
}

cm_err cm_format_write(const char *dir, const cm_format_stamp *s)
{
    char text[CM_FORMAT_MAX], tmp[4200], path[4200];
    size_t len = cm_format_encode(s, text, sizeof(text));
    if (len == 0)
        return CM_ERR_INVAL;
    snprintf(path, sizeof(path), "%s/" CM_FORMAT_FILE, dir);
    snprintf(tmp, sizeof(tmp), "%s/" CM_FORMAT_FILE ".tmp.%ld", dir, (long)getpid());
    unlink(tmp); /* a leftover of a crashed start with the same pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == ENOSPC ? CM_ERR_NOSPC : CM_ERR_IO;
    cm_err e = CM_OK;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        e = errno == ENOSPC ? CM_ERR_NOSPC : CM_ERR_IO;
    if (close(fd) != 0 && e == CM_OK)
        e = CM_ERR_IO;
    if (e == CM_OK && link(tmp, path) != 0) /* never replaces a stamp another start wrote */
        e = errno == EEXIST ? CM_ERR_EXISTS : CM_ERR_IO;
    unlink(tmp);
    if (e == CM_OK)
        e = sync_dir(dir);
    return e;
}

/* Does dir hold anything but stamps (FORMAT, FORMAT.tmp.*)? -1 when it cannot be listed. */
static int dir_has_content(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL)
        found = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                strncmp(de->d_name, CM_FORMAT_FILE, strlen(CM_FORMAT_FILE)) != 0;
    closedir(d);
    return found;
}

/*
 * Read the stamp of dir, which must be of the given kind, into *s; *have = 1 when there is one.
 * Refusals fill why, naming the file.
 */
static cm_err read_one(const char *dir, cm_format_kind kind, uint32_t known, cm_format_stamp *s,
                       int *have, char *why, size_t cap)
{
    char w[160] = "";
    cm_err e = cm_format_read(dir, known, s, w, sizeof(w));
    if (e == CM_OK && s->kind != kind) {
        snprintf(w, sizeof(w), "a %s stamp where a %s one belongs",
                 s->kind == CM_FORMAT_DRIVE ? "drive" : "data",
                 kind == CM_FORMAT_DRIVE ? "drive" : "data");
        e = CM_ERR_CORRUPT;
    }
    *have = e == CM_OK;
    if (e == CM_ERR_NOTFOUND || e == CM_OK)
        return CM_OK;
    if (e == CM_ERR_UNSUPPORTED)
        say(why, cap,
            "%s/" CM_FORMAT_FILE " says on-disk format %u; this cairn knows format %u and older: "
            "it was written by a newer cairn, run that version (or newer)",
            dir, s->version, known);
    else if (e == CM_ERR_CORRUPT)
        say(why, cap,
            "%s/" CM_FORMAT_FILE " is corrupt (%s); this cairn writes format %u: check the disk "
            "(cairn fsck), then delete the file: the next start writes it again "
            "(docs/upgrades-format.md)",
            dir, w, known);
    else
        say(why, cap, "%s/" CM_FORMAT_FILE ": cannot read: %s", dir, w);
    return e;
}

static cm_err stamp_dir(const char *dir, const cm_format_stamp *tmpl, cm_format_kind kind,
                        int *adopted)
{
    cm_format_stamp s = *tmpl;
    s.kind = kind;
    int content = dir_has_content(dir);
    if (content < 0)
        return CM_ERR_IO;
    s.adopted = content;
    cm_err e = cm_format_write(dir, &s);
    if (e == CM_OK)
        *adopted += content;
    return e == CM_ERR_EXISTS ? CM_OK : e; /* another start won: the caller's next start reads it */
}

cm_err cm_format_open(const char *data, int ndrives, const char *writer, uint32_t known,
                      cm_format_stamp *out, int *adopted, char *why, size_t cap)
{
    cm_format_stamp top, drive, ref = {0};
    char dir[4200], name[32], ref_name[32] = "the data directory";
    int have_top = 0, have_ref = 0, have[64] = {0};
    cm_err e;

    *adopted = 0;
    if (ndrives < 0 || ndrives > 64)
        return CM_ERR_INVAL;
    if ((e = read_one(data, CM_FORMAT_DATA, known, &top, &have_top, why, cap)) != CM_OK)
        return e;
    if (have_top)
        ref = top, have_ref = 1;
    for (int i = 0; i < ndrives; i++) {
        snprintf(dir, sizeof(dir), "%s/drive%d", data, i);
        snprintf(name, sizeof(name), "drive%d", i);
        if ((e = read_one(dir, CM_FORMAT_DRIVE, known, &drive, &have[i], why, cap)) != CM_OK)
            return e;
        if (!have[i])
            continue;
        if (!have_ref) {
            ref = drive, have_ref = 1;
            snprintf(ref_name, sizeof(ref_name), "%s", name);
            continue;
        }
        if (drive.version != ref.version) {
            say(why, cap, "mixed on-disk formats: drive%d has format %u, %s has format %u", i,
                drive.version, ref_name, ref.version);
            return CM_ERR_CONFLICT;
        }
        if (strcmp(drive.id, ref.id) != 0) {
            say(why, cap,
                "drive%d belongs to another data directory (id %s; %s has id %s): put the right "
                "disk back, or an empty one to be rebuilt",
                i, drive.id, ref_name, ref.id);
            return CM_ERR_CONFLICT;
        }
    }
    if (!have_top) { /* new, or written by a cairn before stamps: stamp it with the drives' id */
        uint8_t raw[16];
        if (!have_ref) {
            if ((e = cm_random(raw, sizeof(raw))) != CM_OK)
                return e;
            cm_hex_encode(raw, sizeof(raw), ref.id);
        }
        ref.version = have_ref ? ref.version : known;
        snprintf(ref.writer, sizeof(ref.writer), "%s", writer);
        cm_time_iso8601(cm_now_ms(), ref.created);
        if ((e = stamp_dir(data, &ref, CM_FORMAT_DATA, adopted)) != CM_OK) {
            say(why, cap, "cannot write the data directory's format stamp: %s", cm_err_str(e));
            return e;
        }
        if ((e = read_one(data, CM_FORMAT_DATA, known, &top, &have_top, why, cap)) != CM_OK)
            return e;
        if (!have_top)
            return CM_ERR_IO;
    }
    cm_format_stamp tmpl = top;
    snprintf(tmpl.writer, sizeof(tmpl.writer), "%s", writer);
    cm_time_iso8601(cm_now_ms(), tmpl.created);
    for (int i = 0; i < ndrives; i++) {
        if (have[i])
            continue;
        snprintf(dir, sizeof(dir), "%s/drive%d", data, i);
        if ((e = cm_mkdir_durable(dir, 0755)) != CM_OK ||
            (e = stamp_dir(dir, &tmpl, CM_FORMAT_DRIVE, adopted)) != CM_OK) {
            say(why, cap, "drive%d: cannot write its format stamp: %s", i, cm_err_str(e));
            return e;
        }
    }
    *out = top;
    return CM_OK;
}
