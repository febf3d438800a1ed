/*
 * test_common_format.c - format stamps (cm_format.h): encode/decode round trip, a newer version
 * reported as newer whatever follows it, every flipped byte and every truncation refused as
 * corrupt, and the start check: a new directory stamped, an old one adopted with its data left
 * alone, a future stamp, a corrupt stamp, a mix of versions and a drive of another data directory
 * refused without writing anything, a replaced (empty) drive stamped with the directory's id.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm_checksum.h"
#include "cm_format.h"
#include "cm_util.h"
#include "cu_main.h"

static const cm_format_stamp SAMPLE = {.version = CM_FORMAT_VERSION,
                                       .kind = CM_FORMAT_DRIVE,
                                       .id = "00112233445566778899aabbccddeeff",
                                       .writer = "0.1.0",
                                       .created = "2026-12-05T09:30:00.000Z",
                                       .adopted = 1};

static void write_file(const char *path, const char *text, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL((size_t)write(fd, text, len), len);
    close(fd);
}

/* A fresh directory under the test's scratch dir. */
static const char *fresh_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", cu_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
    return path;
}

static void test_round_trip(void)
{
    char text[CM_FORMAT_MAX], why[200];
    cm_format_stamp back;
    size_t len = cm_format_encode(&SAMPLE, text, sizeof(text));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL(strncmp(text, "cairn-format 1\nkind drive\n", 26), 0);
    CU_ASSERT_EQUAL(cm_format_decode(text, len, CM_FORMAT_VERSION, &back, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(memcmp(&back, &SAMPLE, sizeof(back)), 0);
    CU_ASSERT_EQUAL(cm_format_encode(&SAMPLE, text, 20), 0); /* does not fit */
}

/* A newer stamp is refused as newer even when the rest is something this version cannot read. */
static void test_newer(void)
{
    char why[200] = "";
    cm_format_stamp s;
    const char *t = "cairn-format 7\nshards 12\n";
    CU_ASSERT_EQUAL(cm_format_decode(t, strlen(t), CM_FORMAT_VERSION, &s, why, sizeof(why)),
                    CM_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(s.version, 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "format 7"));
}

static void test_every_byte_and_length(void)
{
    char text[CM_FORMAT_MAX], why[200];
    cm_format_stamp s;
    size_t len = cm_format_encode(&SAMPLE, text, sizeof(text));
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            text[i] ^= (char)(1 << bit);
            cm_err e = cm_format_decode(text, len, CM_FORMAT_VERSION, &s, why, sizeof(why));
            /* the version digit may turn into a larger version: reported as newer */
            CU_ASSERT(e == CM_ERR_CORRUPT || (e == CM_ERR_UNSUPPORTED && s.version > 1));
            text[i] ^= (char)(1 << bit);
        }
    }
    for (size_t n = 0; n < len; n++)
        CU_ASSERT_EQUAL(cm_format_decode(text, n, CM_FORMAT_VERSION, &s, why, sizeof(why)),
                        CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(cm_format_decode(text, len, CM_FORMAT_VERSION, &s, why, sizeof(why)), CM_OK);
}

/* Lines with a good CRC but a bad body: unknown key, twice a key, a missing key, version 0. */
static void test_bad_bodies(void)
{
    static const char *const bodies[] = {
        "cairn-format 1\nkind data\nid 00112233445566778899aabbccddeeff\nwritten-by 1\ncreated "
        "2026\norigin new\ncolour blue\n",
        "cairn-format 1\nkind data\nkind data\nid 00112233445566778899aabbccddeeff\nwritten-by "
        "1\ncreated 2026\norigin new\n",
        "cairn-format 1\nkind data\nwritten-by 1\ncreated 2026\norigin new\n",
        "cairn-format 1\nkind disk\nid 00112233445566778899aabbccddeeff\nwritten-by 1\ncreated "
        "2026\norigin new\n",
        "cairn-format 1\nkind data\nid 00112233445566778899AABBCCDDEEFF\nwritten-by 1\ncreated "
        "2026\norigin new\n",
        "cairn-format 01\nkind data\nid 00112233445566778899aabbccddeeff\nwritten-by 1\ncreated "
        "2026\norigin new\n",
        "cairn-format 0\n",
    };
    char text[CM_FORMAT_MAX], why[200];
    cm_format_stamp s;
    for (size_t i = 0; i < CM_ARRAY_LEN(bodies); i++) {
        size_t n = strlen(bodies[i]);
        memcpy(text, bodies[i], n);
        n += (size_t)snprintf(text + n, sizeof(text) - n, "crc32c %08x\n",
                              cm_crc32c(0, bodies[i], strlen(bodies[i])));
        CU_ASSERT_EQUAL(cm_format_decode(text, n, CM_FORMAT_VERSION, &s, why, sizeof(why)),
                        CM_ERR_CORRUPT);
    }
}

static void test_new_directory(void)
{
    char why[300] = "", drive[600];
    cm_format_stamp top, d;
    int adopted = -1;
    const char *data = fresh_dir("new");
    CU_ASSERT_EQUAL_FATAL(
        cm_format_open(data, 3, "9.9.9", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_OK);
    CU_ASSERT_EQUAL(adopted, 0);
    CU_ASSERT_EQUAL(top.version, CM_FORMAT_VERSION);
    CU_ASSERT_EQUAL(top.kind, CM_FORMAT_DATA);
    CU_ASSERT_STRING_EQUAL(top.writer, "9.9.9");
    CU_ASSERT_EQUAL(top.adopted, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(drive, sizeof(drive), "%s/drive%d", data, i);
        CU_ASSERT_EQUAL(cm_format_read(drive, CM_FORMAT_VERSION, &d, why, sizeof(why)), CM_OK);
        CU_ASSERT_EQUAL(d.kind, CM_FORMAT_DRIVE);
        CU_ASSERT_STRING_EQUAL(d.id, top.id);
    }
    /* a second start reads the same stamp and writes nothing */
    cm_format_stamp again;
    CU_ASSERT_EQUAL(
        cm_format_open(data, 3, "10.0.0", CM_FORMAT_VERSION, &again, &adopted, why, sizeof(why)),
        CM_OK);
    CU_ASSERT_EQUAL(memcmp(&again, &top, sizeof(top)), 0);
    /* a replaced (emptied) drive gets a stamp with the directory's id */
    snprintf(drive, sizeof(drive), "%s/drive1/" CM_FORMAT_FILE, data);
    CU_ASSERT_EQUAL(unlink(drive), 0);
    CU_ASSERT_EQUAL(
        cm_format_open(data, 3, "10.0.0", CM_FORMAT_VERSION, &again, &adopted, why, sizeof(why)),
        CM_OK);
    snprintf(drive, sizeof(drive), "%s/drive1", data);
    CU_ASSERT_EQUAL(cm_format_read(drive, CM_FORMAT_VERSION, &d, why, sizeof(why)), CM_OK);
    CU_ASSERT_STRING_EQUAL(d.id, top.id);
    CU_ASSERT_STRING_EQUAL(d.writer, "10.0.0");
}

/* A directory a cairn before stamps wrote: adopted, its files left as they were. */
static void test_adopt_old(void)
{
    char why[300] = "", path[600], buf[16] = "";
    cm_format_stamp top, d;
    int adopted = 0;
    const char *data = fresh_dir("old");
    snprintf(path, sizeof(path), "%s/drive0", data);
    CU_ASSERT_EQUAL(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/drive0/seg-00000001.cbs", data);
    write_file(path, "segment", 7);
    snprintf(path, sizeof(path), "%s/credentials", data);
    write_file(path, "creds", 5);
    CU_ASSERT_EQUAL_FATAL(
        cm_format_open(data, 2, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_OK);
    CU_ASSERT_EQUAL(adopted, 2); /* the directory and drive0; drive1 is new */
    CU_ASSERT_EQUAL(top.adopted, 1);
    snprintf(path, sizeof(path), "%s/drive1", data);
    CU_ASSERT_EQUAL(cm_format_read(path, CM_FORMAT_VERSION, &d, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(d.adopted, 0);
    snprintf(path, sizeof(path), "%s/drive0/seg-00000001.cbs", data);
    int fd = open(path, O_RDONLY);
    CU_ASSERT_EQUAL(read(fd, buf, sizeof(buf)), 7);
    close(fd);
    CU_ASSERT_STRING_EQUAL(buf, "segment");
}

/* The directory's stamp lost but the drives keep theirs: it is rewritten with their id. */
static void test_top_lost(void)
{
    char why[300] = "", path[600];
    cm_format_stamp top, again;
    int adopted = 0;
    const char *data = fresh_dir("toplost");
    CU_ASSERT_EQUAL_FATAL(
        cm_format_open(data, 2, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_OK);
    snprintf(path, sizeof(path), "%s/" CM_FORMAT_FILE, data);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(
        cm_format_open(data, 2, "0.1.0", CM_FORMAT_VERSION, &again, &adopted, why, sizeof(why)),
        CM_OK);
    CU_ASSERT_STRING_EQUAL(again.id, top.id);
}

/* Refusals leave every file as it was: no stamp is written anywhere. */
static void test_refusals(void)
{
    char why[400] = "", path[600], text[CM_FORMAT_MAX];
    cm_format_stamp top, other = SAMPLE;
    int adopted = 0;
    const char *data = fresh_dir("refuse");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", data);

    /* drive1 from another data directory */
    CU_ASSERT_EQUAL_FATAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_OK);
    snprintf(path, sizeof(path), "%s/drive1/" CM_FORMAT_FILE, dir);
    size_t len = cm_format_encode(&other, text, sizeof(text));
    write_file(path, text, len);
    snprintf(path, sizeof(path), "%s/drive2/" CM_FORMAT_FILE, dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_CONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "drive1 belongs to another data directory"));
    CU_ASSERT_EQUAL(access(path, F_OK), -1); /* drive2 not stamped by the refused start */

    /* a newer format on drive1 */
    const char *future = "cairn-format 2\nkind drive\n";
    snprintf(path, sizeof(path), "%s/drive1/" CM_FORMAT_FILE, dir);
    write_file(path, future, strlen(future));
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "drive1/FORMAT says on-disk format 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "format 1 and older"));

    /* a data directory's stamp copied into a drive folder */
    snprintf(path, sizeof(path), "%s/drive1/" CM_FORMAT_FILE, dir);
    other.kind = CM_FORMAT_DATA;
    len = cm_format_encode(&other, text, sizeof(text));
    write_file(path, text, len);
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "a data stamp where a drive one belongs"));

    /* a FORMAT that is no file (a directory; a FIFO would hang a blocking open) */
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(mkfifo(path, 0644), 0);
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a regular file"));
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(mkdir(path, 0755), 0);
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_CORRUPT);
    CU_ASSERT_EQUAL(rmdir(path), 0);

    /* a corrupt data directory stamp */
    snprintf(path, sizeof(path), "%s/" CM_FORMAT_FILE, dir);
    write_file(path, "cairn-format 1\nkind da", 22);
    CU_ASSERT_EQUAL(
        cm_format_open(dir, 3, "0.1.0", CM_FORMAT_VERSION, &top, &adopted, why, sizeof(why)),
        CM_ERR_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "refuse/FORMAT is corrupt"));
}

/* A binary that knows formats 1 and 2 finds drive1 at 2 and the rest at 1: a mix, refused. */
static void test_mixed(void)
{
    char why[400] = "", path[600];
    cm_format_stamp top, d;
    int adopted = 0;
    const char *data = fresh_dir("mixed");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", data);
    CU_ASSERT_EQUAL_FATAL(cm_format_open(dir, 3, "0.1.0", 1, &top, &adopted, why, sizeof(why)),
                          CM_OK);
    snprintf(path, sizeof(path), "%s/drive1", dir);
    CU_ASSERT_EQUAL(cm_format_read(path, 1, &d, why, sizeof(why)), CM_OK);
    snprintf(path, sizeof(path), "%s/drive1/" CM_FORMAT_FILE, dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    d.version = 2;
    snprintf(path, sizeof(path), "%s/drive1", dir);
    CU_ASSERT_EQUAL(cm_format_write(path, &d), CM_OK);
    CU_ASSERT_EQUAL(cm_format_write(path, &d), CM_ERR_EXISTS); /* never replaced */
    /* the 2-knowing binary accepts an all-1 directory as it is, but not the mix */
    CU_ASSERT_EQUAL(cm_format_open(dir, 3, "0.2.0", 2, &top, &adopted, why, sizeof(why)),
                    CM_ERR_CONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "drive1 has format 2, the data directory has format 1"));
    /* and this binary calls drive1 newer */
    CU_ASSERT_EQUAL(cm_format_open(dir, 3, "0.1.0", 1, &top, &adopted, why, sizeof(why)),
                    CM_ERR_UNSUPPORTED);
    snprintf(path, sizeof(path), "%s/drive1/" CM_FORMAT_FILE, dir);
    CU_ASSERT_EQUAL(unlink(path), 0);
    CU_ASSERT_EQUAL(cm_format_open(dir, 3, "0.2.0", 2, &top, &adopted, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(top.version, 1);
    snprintf(path, sizeof(path), "%s/drive1", dir);
    CU_ASSERT_EQUAL(cm_format_read(path, 2, &d, why, sizeof(why)), CM_OK);
    CU_ASSERT_EQUAL(d.version, 1); /* a drive stamped into a format-1 directory says 1 */
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"round_trip", test_round_trip},
        {"newer", test_newer},
        {"every_byte_and_length", test_every_byte_and_length},
        {"bad_bodies", test_bad_bodies},
        {"new_directory", test_new_directory},
        {"adopt_old", test_adopt_old},
        {"top_lost", test_top_lost},
        {"refusals", test_refusals},
        {"mixed", test_mixed},
        {NULL, NULL},
    };
    cu_add_suite("format", tests);
}
