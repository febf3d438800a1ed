/*
 * gw_form.c - the streaming multipart/form-data parser of POST Object (gw_post.h says what it
 * keeps and its bounds).
 *
 * The body is "--B" (after at most a small preamble), then parts, each "CRLF headers CRLF CRLF
 * data", separated by the delimiter "CRLF --B", the last one followed by "--" (RFC 7578, 2046).
 * The parser is a state machine over the evbuffer net fills: each state waits until what it
 * needs is in the buffer (a header block, a whole field value, two bytes after a boundary), all
 * bounded, and consumes it; the file state moves every byte that cannot be the start of a
 * delimiter to the output at once. A delimiter split across two reads is found because the
 * last (delimiter length - 1) bytes always stay in the buffer until more arrive.
 *
 * Once the file part has ended the rest of the body is read and dropped (S3 ignores fields
 * after the file), so the caller's request still ends where the client's body does.
 */
#include "gw_post.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "cm_util.h"

#define BOUNDARY_MAX 70
#define PADDING_MAX 64 /* transport padding (spaces, tabs) allowed after a boundary */

typedef enum {
    ST_PREAMBLE,   /* before the first "--B" */
    ST_BOUNDARY,   /* a boundary was read: "--" (the end), or padding and CRLF (a part) */
    ST_HEADERS,    /* CRLF, the part's header lines, CRLF CRLF */
    ST_FIELD,      /* a field's value up to the next delimiter */
    ST_FILE_START, /* the file's headers were read; not announced yet */
    ST_FILE,       /* the file's bytes up to the next delimiter */
    ST_FILE_END,   /* the file's delimiter was read: "--" or padding and CRLF must follow */
    ST_EPILOGUE    /* after the file, or after a close with no file: dropped */
} form_state;

struct gw_form {
    form_state st;
    char dash[2 + BOUNDARY_MAX + 1];  /* "--B" */
    char delim[4 + BOUNDARY_MAX + 1]; /* "\r\n--B" */
    size_t dash_len, delim_len;
    gw_form_field *fields;
    size_t nfields;
    size_t field_bytes; /* names and values so far */
    char *part_name;    /* the field being read (ST_FIELD) */
    char *filename, *file_type;
    size_t padding; /* padding bytes after the current boundary */
    size_t scan;    /* bytes at the front of the input already searched by this state (find) */
    gw_s3err err;   /* the first error: every later feed answers it again */
    int in_file, done;
};

/* The value of parameter `param` in a header value "type; a=b; c=\"d\"" (heap), or NULL. */
static char *header_param(const char *v, const char *param)
{
    size_t plen = strlen(param);
    const char *p = strchr(v, ';');
    while (p) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *eq = strchr(p, '=');
        const char *semi = strchr(p, ';');
        if (!eq || (semi && semi < eq)) {
            p = semi;
            continue;
        }
        size_t nlen = (size_t)(eq - p);
        while (nlen && (p[nlen - 1] == ' ' || p[nlen - 1] == '\t'))
            nlen--;
        const char *val = eq + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        const char *end;
        if (*val == '"') {
            val++;
            end = strchr(val, '"'); /* browsers percent-encode a quote in a name */
            if (!end)
                return NULL;
        } else {
            end = val + strcspn(val, "; \t");
        }
        if (nlen == plen && strncasecmp(p, param, plen) == 0)
            return strndup(val, (size_t)(end - val));
        p = strchr(end, ';');
    }
    return NULL;
}

gw_s3err gw_form_new(const char *content_type, gw_form **out)
{
    static const char mt[] = "multipart/form-data";
    *out = NULL;
    if (!content_type || strncasecmp(content_type, mt, sizeof(mt) - 1) != 0 ||
        (content_type[sizeof(mt) - 1] != ';' && content_type[sizeof(mt) - 1] != ' '))
        return GW_MALFORMED_POST;
    char *b = header_param(content_type, "boundary");
    size_t n = b ? strlen(b) : 0;
    if (n == 0 || n > BOUNDARY_MAX || strpbrk(b, "\r\n")) {
        free(b);
        return GW_MALFORMED_POST;
    }
    gw_form *f = calloc(1, sizeof(*f));
    if (!f) {
        free(b);
        return GW_INTERNAL;
    }
    f->dash_len = (size_t)snprintf(f->dash, sizeof(f->dash), "--%s", b);
    f->delim_len = (size_t)snprintf(f->delim, sizeof(f->delim), "\r\n--%s", b);
    free(b);
    *out = f;
    return GW_OK;
}

void gw_form_free(gw_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nfields; i++) {
        free(f->fields[i].name);
        free(f->fields[i].value);
    }
    free(f->fields);
    free(f->part_name);
    free(f->filename);
    free(f->file_type);
    free(f);
}

/*
 * Offset of s in in, or -1; the search starts at f->scan, past what earlier calls of this state
 * searched (a trickling client would otherwise make each read rescan the whole field: quadratic).
 * When s is not there yet, f->scan moves to where a match could still begin.
 */
static ssize_t find(gw_form *f, struct evbuffer *in, const char *s, size_t n)
{
    struct evbuffer_ptr start;
    size_t len = evbuffer_get_length(in);
    if (evbuffer_ptr_set(in, &start, f->scan <= len ? f->scan : len, EVBUFFER_PTR_SET) != 0)
        return -1;
    ssize_t pos = evbuffer_search(in, s, n, &start).pos;
    f->scan = pos >= 0 ? 0 : len >= n ? len - (n - 1) : 0; /* found: the state consumes it */
    return pos;
}

/*
 * One part's header block (headers[0..len), lines without the final CRLF CRLF): its name and,
 * for the file, filename and type. Only Content-Disposition (form-data) and Content-Type count.
 */
static gw_s3err part_headers(gw_form *f, char *headers)
{
    char *name = NULL, *filename = NULL, *type = NULL;
    int disposition = 0;
    for (char *line = headers, *next; line; line = next) {
        next = strstr(line, "\r\n");
        if (next) {
            *next = '\0';
            next += 2;
        }
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "content-disposition") == 0 && !disposition) {
            disposition = 1;
            if (strncasecmp(v, "form-data", 9) != 0)
                break;
            name = header_param(v, "name");
            filename = header_param(v, "filename");
        } else if (strcasecmp(line, "content-type") == 0 && !type) {
            type = strdup(v);
        }
    }
    if (!name || !name[0]) {
        free(name);
        free(filename);
        free(type);
        return GW_MALFORMED_POST;
    }
    if (strcasecmp(name, "file") == 0) {
        free(name);
        f->filename = filename ? filename : strdup("");
        f->file_type = type;
        f->st = ST_FILE_START;
        return f->filename ? GW_OK : GW_INTERNAL;
    }
    free(filename);
    free(type);
    if (f->nfields == GW_FORM_MAX_FIELDS || gw_form_get(f->fields, f->nfields, name)) {
        free(name);
        return GW_MALFORMED_POST; /* too many fields, or one repeated */
    }
    f->part_name = name;
    f->st = ST_FIELD;
    return GW_OK;
}

/* One step of the state machine: GW_OK with *more set when it needs more input. */
static gw_s3err step(gw_form *f, struct evbuffer *in, struct evbuffer *file_out, int *more)
{
    size_t len = evbuffer_get_length(in);
    ssize_t pos;
    unsigned char two[2];
    *more = 0;

    switch (f->st) {
    case ST_PREAMBLE:
        if ((pos = find(f, in, f->dash, f->dash_len)) < 0) {
            *more = 1;
            return len > GW_FORM_MAX_PREAMBLE + f->dash_len ? GW_MALFORMED_POST : GW_OK;
        }
        if ((size_t)pos > GW_FORM_MAX_PREAMBLE)
            return GW_MALFORMED_POST;
        evbuffer_drain(in, (size_t)pos + f->dash_len);
        f->st = ST_BOUNDARY;
        return GW_OK;
    case ST_BOUNDARY:
        if (len < 2) {
            *more = 1;
            return GW_OK;
        }
        evbuffer_copyout(in, two, 2);
        if (two[0] == '-' && two[1] == '-') {
            evbuffer_drain(in, len); /* the close delimiter: the rest is epilogue */
            f->st = ST_EPILOGUE;
            return GW_OK;
        }
        if (two[0] == ' ' || two[0] == '\t') { /* transport padding */
            evbuffer_drain(in, 1);
            return ++f->padding > PADDING_MAX ? GW_MALFORMED_POST : GW_OK;
        }
        if (two[0] != '\r' || two[1] != '\n')
            return GW_MALFORMED_POST;
        f->padding = 0;
        f->st = ST_HEADERS;
        return GW_OK;
    case ST_HEADERS: {
        if ((pos = find(f, in, "\r\n\r\n", 4)) < 0) {
            *more = 1;
            return len > GW_FORM_MAX_HEADER + 4 ? GW_MALFORMED_POST : GW_OK;
        }
        if (pos == 0 || (size_t)pos > GW_FORM_MAX_HEADER)
            return GW_MALFORMED_POST; /* no header at all (no name), or too many */
        char *h = malloc((size_t)pos + 1);
        if (!h)
            return GW_INTERNAL;
        evbuffer_drain(in, 2);
        evbuffer_remove(in, h, (size_t)pos - 2);
        h[pos - 2] = '\0';
        evbuffer_drain(in, 4);
        gw_s3err e = part_headers(f, h);
        free(h);
        return e;
    }
    case ST_FIELD: {
        size_t room = GW_FORM_MAX_FIELD_BYTES - CM_MIN(f->field_bytes, GW_FORM_MAX_FIELD_BYTES);
        size_t nlen = strlen(f->part_name);
        pos = find(f, in, f->delim, f->delim_len);
        if (pos < 0 && len <= room + f->delim_len) {
            *more = 1;
            return GW_OK;
        }
        if (pos < 0 || (size_t)pos + nlen > room)
            return GW_MAX_POST_PRE_DATA;
        gw_form_field *nf = realloc(f->fields, (f->nfields + 1) * sizeof(*nf));
        if (!nf)
            return GW_INTERNAL;
        f->fields = nf;
        gw_form_field *fd = &nf[f->nfields];
        if (!(fd->value = malloc((size_t)pos + 1)))
            return GW_INTERNAL;
        evbuffer_remove(in, fd->value, (size_t)pos);
        fd->value[pos] = '\0';
        fd->len = (size_t)pos;
        fd->name = f->part_name;
        f->part_name = NULL;
        f->nfields++;
        f->field_bytes += nlen + (size_t)pos;
        evbuffer_drain(in, f->delim_len);
        f->st = ST_BOUNDARY;
        return GW_OK;
    }
    case ST_FILE_START:
        f->in_file = 1;
        f->st = ST_FILE;
        *more = 1; /* return to the caller: the fields are complete */
        return GW_OK;
    case ST_FILE:
        if ((pos = find(f, in, f->delim, f->delim_len)) >= 0) {
            evbuffer_remove_buffer(in, file_out, (size_t)pos);
            evbuffer_drain(in, f->delim_len);
            f->st = ST_FILE_END;
            return GW_OK;
        }
        if (len >= f->delim_len) /* the rest could begin a delimiter: kept for the next read */
            evbuffer_remove_buffer(in, file_out, len - (f->delim_len - 1));
        f->scan = 0; /* what is left is only that tail: searched again with the next bytes */
        *more = 1;
        return GW_OK;
    case ST_FILE_END: /* a whole boundary line, as after any other part, ends the file */
        if (len < 2) {
            *more = 1;
            return GW_OK;
        }
        evbuffer_copyout(in, two, 2);
        if ((two[0] == ' ' || two[0] == '\t') && ++f->padding <= PADDING_MAX) {
            evbuffer_drain(in, 1);
            return GW_OK;
        }
        if (!(two[0] == '-' && two[1] == '-') && !(two[0] == '\r' && two[1] == '\n'))
            return GW_MALFORMED_POST;
        f->done = 1;
        f->st = ST_EPILOGUE;
        return GW_OK;
    case ST_EPILOGUE:
        evbuffer_drain(in, len);
        *more = 1;
        return GW_OK;
    }
    return GW_INTERNAL;
}

gw_s3err gw_form_feed(gw_form *f, struct evbuffer *in, struct evbuffer *file_out)
{
    int more = 0;
    gw_s3err e = f->err;
    while (e == GW_OK && !more)
        e = step(f, in, file_out, &more);
    f->err = e;
    return e;
}

int gw_form_in_file(const gw_form *f)
{
    return f->in_file;
}

int gw_form_done(const gw_form *f)
{
    return f->done;
}

const gw_form_field *gw_form_fields(const gw_form *f, size_t *n)
{
    *n = f->nfields;
    return f->fields;
}

const char *gw_form_filename(const gw_form *f)
{
    return f->filename ? f->filename : "";
}

const char *gw_form_file_type(const gw_form *f)
{
    return f->file_type;
}

const gw_form_field *gw_form_get(const gw_form_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}
