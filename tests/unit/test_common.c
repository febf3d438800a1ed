/*
 * test_common.c - unit tests for common/: errors, hex, base64, URL coding, time formats, and the
 * durable mkdir (parent path rules; created, existing, missing parent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm_config.h"
#include "cm_err.h"
#include "cm_util.h"
#include "cu_main.h"

static void test_err_names(void)
{
    CU_ASSERT_STRING_EQUAL(cm_err_name(CM_ERR_IO), "CM_ERR_IO");
    CU_ASSERT_STRING_EQUAL(cm_err_str(CM_ERR_NOSPC), "no space left on device");
    CU_ASSERT_STRING_EQUAL(cm_err_name((cm_err)999), "CM_ERR_UNKNOWN");
}

static void test_hex(void)
{
    char out[9];
    uint8_t back[4];
    cm_hex_encode("\x01\xab\xff\x00", 4, out);
    CU_ASSERT_STRING_EQUAL(out, "01abff00");
    CU_ASSERT_EQUAL(cm_hex_decode("01ABff00", 8, back, 4), CM_OK);
    CU_ASSERT_EQUAL(memcmp(back, "\x01\xab\xff\x00", 4), 0);
    CU_ASSERT_EQUAL(cm_hex_decode("0g", 2, back, 1), CM_ERR_INVAL);
}

static void test_base64(void)
{
    /* RFC 4648 test vectors */
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < CM_ARRAY_LEN(in); i++) {
        char enc[16];
        uint8_t dec[16];
        size_t n;
        cm_base64_encode(in[i], strlen(in[i]), enc);
        CU_ASSERT_STRING_EQUAL(enc, want[i]);
        CU_ASSERT_EQUAL(cm_base64_decode(enc, strlen(enc), dec, sizeof(dec), &n), CM_OK);
        CU_ASSERT_EQUAL(n, strlen(in[i]));
        CU_ASSERT_EQUAL(memcmp(dec, in[i], n), 0);
    }
    uint8_t d[8];
    size_t n;
    CU_ASSERT_EQUAL(cm_base64_decode("Zg=", 3, d, 8, &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_base64_decode("Z=g=", 4, d, 8, &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_base64_decode("Zm9vYmFy", 8, d, 2, &n), CM_ERR_TOOBIG);
}

static void test_url(void)
{
    char out[64];
    size_t n;
    CU_ASSERT_EQUAL(cm_url_decode("a%20b+c%2F", 10, out, sizeof(out), &n), CM_OK);
    CU_ASSERT_STRING_EQUAL(out, "a b+c/");
    CU_ASSERT_EQUAL(cm_url_decode("bad%2", 5, out, sizeof(out), &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_url_decode("bad%zz", 6, out, sizeof(out), &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_url_encode("a b/c~é", 8, 1, out, sizeof(out)), 14);
    CU_ASSERT_STRING_EQUAL(out, "a%20b/c~%C3%A9");
    cm_url_encode("a/b", 3, 0, out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a%2Fb");
    /* a query component: '+' is a space, an escaped plus a plus; escapes are checked as above */
    CU_ASSERT_EQUAL(cm_url_decode_form("a+b%2B%20c+", 11, out, sizeof(out), &n), CM_OK);
    CU_ASSERT_STRING_EQUAL(out, "a b+ c ");
    CU_ASSERT_EQUAL(n, 7);
    CU_ASSERT_EQUAL(cm_url_decode_form("%+1", 3, out, sizeof(out), &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_url_decode_form("a%2", 3, out, sizeof(out), &n), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_url_decode_form("a+b", 3, out, 3, &n), CM_ERR_TOOBIG);
}

static void test_time(void)
{
    char buf[32];
    time_t t;
    cm_time_rfc1123(784111777, buf);
    CU_ASSERT_STRING_EQUAL(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    CU_ASSERT_EQUAL(cm_time_parse_http("Sun, 06 Nov 1994 08:49:37 GMT", &t), CM_OK);
    CU_ASSERT_EQUAL(t, 784111777);
    CU_ASSERT_EQUAL(cm_time_parse_http("Sunday, 06-Nov-94 08:49:37 GMT", &t), CM_OK);
    CU_ASSERT_EQUAL(t, 784111777);
    CU_ASSERT_EQUAL(cm_time_parse_http("Sun Nov  6 08:49:37 1994", &t), CM_OK);
    CU_ASSERT_EQUAL(t, 784111777);
    CU_ASSERT_EQUAL(cm_time_parse_http("yesterday", &t), CM_ERR_INVAL);
    cm_time_amzdate(1440938160, buf);
    CU_ASSERT_STRING_EQUAL(buf, "20150830T123600Z");
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20150830T123600Z", &t), CM_OK);
    CU_ASSERT_EQUAL(t, 1440938160);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20150830T123600", &t), CM_ERR_INVAL);
    /* ISO 8601 basic format, digits only: no sign, no blank, no other separator */
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("+0150830T123600Z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("-0150830T123600Z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20150830T12360+Z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20150830 123600Z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20151330T123600Z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("20150830T123600z", &t), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_time_parse_amzdate("19700101T000000Z", &t), CM_OK);
    CU_ASSERT_EQUAL(t, 0);
    cm_time_iso8601(1440938160123LL, buf);
    CU_ASSERT_STRING_EQUAL(buf, "2015-08-30T12:36:00.123Z");
}

static void test_ct_equal(void)
{
    CU_ASSERT_TRUE(cm_ct_equal("abc", "abc", 3));
    CU_ASSERT_FALSE(cm_ct_equal("abc", "abd", 3));
}

typedef struct {
    char seen[512];
} cfg_acc;

static int cfg_cb(void *arg, const char *section, const char *key, const char *value, char *err,
                  size_t errcap)
{
    cfg_acc *a = arg;
    if (strcmp(key, "bad") == 0) {
        snprintf(err, errcap, "unknown key '%s'", key);
        return -1;
    }
    size_t n = strlen(a->seen);
    snprintf(a->seen + n, sizeof(a->seen) - n, "%s.%s=%s;", section, key, value);
    return 0;
}

static void test_dirs(void)
{
    char out[64], path[512];
    cm_parent_dir("a/b/c", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a/b");
    cm_parent_dir("a/b/", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "a");
    cm_parent_dir("b", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, ".");
    cm_parent_dir("/b", out, sizeof(out));
    CU_ASSERT_STRING_EQUAL(out, "/");
    snprintf(path, sizeof(path), "%s/newdir", cu_tmpdir());
    CU_ASSERT_EQUAL(cm_mkdir_durable(path, 0755), CM_OK);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    CU_ASSERT_EQUAL(cm_mkdir_durable(path, 0755), CM_OK); /* already there */
    snprintf(path, sizeof(path), "%s/missing/newdir", cu_tmpdir());
    CU_ASSERT_EQUAL(cm_mkdir_durable(path, 0755), CM_ERR_NOTFOUND);
}

static void test_config(void)
{
    cfg_acc a = {{0}};
    char msg[256];
    const char *text = "# comment\n top = 1\n[server]\nlisten = 127.0.0.1:9000 \n; c\n"
                       "\n[storage]\nname = \"quoted value\"\n";
    CU_ASSERT_EQUAL(cm_config_parse_string(text, "t", cfg_cb, &a, msg, sizeof(msg)), CM_OK);
    CU_ASSERT_STRING_EQUAL(a.seen,
                           ".top=1;server.listen=127.0.0.1:9000;storage.name=quoted value;");
    CU_ASSERT_EQUAL(cm_config_parse_string("[s]\nbad = 1\n", "f", cfg_cb, &a, msg, sizeof(msg)),
                    CM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(msg, "f:2: unknown key 'bad'");
    CU_ASSERT_EQUAL(cm_config_parse_string("[s\n", "f", cfg_cb, &a, msg, sizeof(msg)),
                    CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_config_parse_string("novalue\n", "f", cfg_cb, &a, msg, sizeof(msg)),
                    CM_ERR_INVAL);
    CU_ASSERT_STRING_EQUAL(msg, "f:1: expected 'key = value'");
    CU_ASSERT_EQUAL(cm_config_parse_file("/nonexistent/cairn.conf", cfg_cb, &a, msg, sizeof(msg)),
                    CM_ERR_NOTFOUND);
}

static void test_ident(void)
{
    CU_ASSERT_TRUE(cm_ident_ok("az-1.node_2", 0));
    CU_ASSERT_FALSE(cm_ident_ok("", 0));
    CU_ASSERT_FALSE(cm_ident_ok("a/b", 0));
    CU_ASSERT_FALSE(cm_ident_ok("a b", 0));
    CU_ASSERT_FALSE(cm_ident_ok("caf\xc3\xa9", 0));
    CU_ASSERT_TRUE(cm_ident_ok("abc", 4)); /* max counts the terminator */
    CU_ASSERT_FALSE(cm_ident_ok("abcd", 4));
}

/* cm_buf_room: doubling from the first capacity, what is there kept, a size that would overflow
 * refused with the buffer as it was. */
static void test_buf_room(void)
{
    char *p = NULL;
    size_t cap = 0;
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 0, 10, 16), CM_OK);
    CU_ASSERT_EQUAL(cap, 16);
    memcpy(p, "0123456789", 10);
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 10, 6, 16), CM_OK); /* fits exactly */
    CU_ASSERT_EQUAL(cap, 16);
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 10, 7, 16), CM_OK);
    CU_ASSERT_EQUAL(cap, 32);
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 10, 200, 16), CM_OK);
    CU_ASSERT_EQUAL(cap, 256);
    CU_ASSERT_EQUAL(memcmp(p, "0123456789", 10), 0);
    char *was = p;
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 10, SIZE_MAX - 5, 16), CM_ERR_NOMEM);
    CU_ASSERT_EQUAL(cm_buf_room(&p, &cap, 10, SIZE_MAX / 2, 16), CM_ERR_NOMEM);
    CU_ASSERT(p == was && cap == 256);
    free(p);
}

static void test_random_string(void)
{
    char a[65], b[65];
    memset(a, 'x', sizeof(a));
    CU_ASSERT_EQUAL(cm_random_string(a, 40, "AB"), CM_OK);
    CU_ASSERT_EQUAL(strlen(a), 40);
    CU_ASSERT_EQUAL(strspn(a, "AB"), 40);
    CU_ASSERT_EQUAL(cm_random_string(a, 64, "0123456789"), CM_OK);
    CU_ASSERT_EQUAL(cm_random_string(b, 64, "0123456789"), CM_OK);
    CU_ASSERT_NOT_EQUAL(strcmp(a, b), 0); /* 10^64 outcomes: equal only when broken */
    CU_ASSERT_EQUAL(cm_random_string(a, 65, "AB"), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_random_string(a, 4, ""), CM_ERR_INVAL);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"err_names", test_err_names},
                                    {"hex", test_hex},
                                    {"base64", test_base64},
                                    {"url", test_url},
                                    {"time", test_time},
                                    {"ct_equal", test_ct_equal},
                                    {"config", test_config},
                                    {"dirs", test_dirs},
                                    {"ident", test_ident},
                                    {"buf_room", test_buf_room},
                                    {NULL, NULL}};
    static const cu_test random_tests[] = {{"random_string", test_random_string}, {NULL, NULL}};
    cu_add_suite("common", tests);
    cu_add_suite("common_random", random_tests);
}
