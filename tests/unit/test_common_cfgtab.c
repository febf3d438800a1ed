/*
 * test_common_cfgtab.c - the table-driven configuration engine (cm_cfgtab.h) over a small test
 * table of every type: defaults, file values with their line, refusals naming the line and the
 * key, environment overrides naming the variable, read-back formatting, bad values generated from
 * the table; the address allow-lists (cm_cidr.h); the SIGHUP hook list (cm_reload.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm_cfgtab.h"
#include "cm_cidr.h"
#include "cm_reload.h"
#include "cm_util.h"
#include "cu_main.h"

typedef struct {
    int n;
    long l;
    uint32_t u;
    size_t z;
    double d;
    int b;
    int e;
    char s[16];
    char form[32];
} opts;

static int check_no_space(const char *v, char *why, size_t cap)
{
    if (!strchr(v, ' '))
        return 0;
    snprintf(why, cap, "no spaces");
    return -1;
}

#define F(f) offsetof(opts, f), sizeof(((opts *)0)->f)
static const cm_cfg_key keys[] = {
    {"a", "n", CM_CFG_INT, F(n), 1, 10, NULL, "5", NULL, CM_CFG_LIVE, "an int"},
    {"a", "l", CM_CFG_LONG, F(l), -5, 5e12, NULL, "0", NULL, 0, "a long"},
    {"a", "u", CM_CFG_U32, F(u), 0, 4294967295.0, NULL, "7", NULL, 0, "a u32"},
    {"a", "z", CM_CFG_SIZE, F(z), 0, 1 << 20, NULL, "64", NULL, 0, "a size"},
    {"b", "d", CM_CFG_DOUBLE, F(d), 0, 1.5, NULL, "0.5", NULL, 0, "a double"},
    {"b", "b", CM_CFG_BOOL, F(b), 0, 0, NULL, "on", NULL, 0, "a bool"},
    {"b", "e", CM_CFG_ENUM, F(e), 0, 0, "red|green|blue", "green", NULL, 0, "an enum"},
    {"c", "s", CM_CFG_STR, F(s), 0, 15, NULL, "x", NULL, CM_CFG_SECRET, "a secret"},
    {"c", "form", CM_CFG_STR, F(form), 0, 31, "WORD", "w", check_no_space, 0, "a form"},
};

static cm_cfg_src srcs[CM_ARRAY_LEN(keys)];
static opts o;
static cm_cfg t = {keys, CM_ARRAY_LEN(keys), &o, srcs};

static void fresh(void)
{
    char msg[256];
    memset(&o, 0, sizeof(o));
    CU_ASSERT_EQUAL_FATAL(cm_cfg_defaults(&t, msg, sizeof(msg)), CM_OK);
}

static void test_defaults_and_format(void)
{
    char v[64];
    fresh();
    CU_ASSERT_EQUAL(o.n, 5);
    CU_ASSERT_EQUAL(o.u, 7);
    CU_ASSERT_EQUAL(o.z, 64);
    CU_ASSERT_DOUBLE_EQUAL(o.d, 0.5, 1e-9);
    CU_ASSERT_EQUAL(o.b, 1);
    CU_ASSERT_EQUAL(o.e, 1);
    CU_ASSERT_STRING_EQUAL(o.s, "x");
    cm_cfg_format(&t, 6, v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "green");
    cm_cfg_format(&t, 5, v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "on");
    cm_cfg_format(&t, 7, v, sizeof(v)); /* a secret is never shown */
    CU_ASSERT_STRING_EQUAL(v, "(set)");
    CU_ASSERT_STRING_EQUAL(srcs[0].where, "default");
}

static void test_file_values_and_lines(void)
{
    char msg[256], v[64];
    fresh();
    const char *text = "# comment\n[a]\nn = 9\nl = 4000000000000\n\n[b]\nd = 1.25\nb = no\n"
                       "e = blue\n[c]\ns = \"quoted\"\n";
    CU_ASSERT_EQUAL_FATAL(cm_cfg_parse_string(&t, text, "t.conf", msg, sizeof(msg)), CM_OK);
    CU_ASSERT_EQUAL(o.n, 9);
    CU_ASSERT_EQUAL(o.l, 4000000000000L);
    CU_ASSERT_DOUBLE_EQUAL(o.d, 1.25, 1e-9);
    CU_ASSERT_EQUAL(o.b, 0);
    CU_ASSERT_EQUAL(o.e, 2);
    CU_ASSERT_STRING_EQUAL(o.s, "quoted");
    CU_ASSERT_STRING_EQUAL(srcs[0].where, "t.conf:3");
    CU_ASSERT_STRING_EQUAL(srcs[6].where, "t.conf:9");
    CU_ASSERT_STRING_EQUAL(srcs[3].where, "default");
    cm_cfg_format(&t, 1, v, sizeof(v));
    CU_ASSERT_STRING_EQUAL(v, "4000000000000");
}

static void expect_refused(const char *text, const char *want)
{
    char msg[256];
    fresh();
    CU_ASSERT_EQUAL(cm_cfg_parse_string(&t, text, "t.conf", msg, sizeof(msg)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    if (!strstr(msg, want))
        fprintf(stderr, "got '%s', want '%s'\n", msg, want);
}

static void test_refusals_name_line_and_key(void)
{
    expect_refused("[a]\n\nn = 11\n",
                   "t.conf:3: invalid value '11' for a.n (expected integer 1..10)");
    expect_refused("[a]\nn = 3x\n", "t.conf:2: invalid value '3x' for a.n");
    expect_refused("[a]\nn =\n", "t.conf:2: invalid value '' for a.n");
    expect_refused("[a]\nu = -1\n", "t.conf:2: invalid value '-1' for a.u");
    expect_refused("[b]\nd = nan\n", "t.conf:2: invalid value 'nan' for b.d");
    expect_refused("[b]\nb = maybe\n", "t.conf:2: invalid value 'maybe' for b.b (expected on|off)");
    expect_refused("[b]\ne = pink\n", "expected red|green|blue");
    expect_refused("[c]\ns = 0123456789abcdef\n", "t.conf:2: invalid value");
    expect_refused("[c]\nform = two words\n", "t.conf:2: invalid value 'two words' for c.form "
                                              "(no spaces)");
    expect_refused("[a]\nnope = 1\n", "t.conf:2: unknown key 'nope' in section [a]");
    expect_refused("[a]\nn = 2\n[zz\n", "t.conf:3: malformed section header");
}

/* Every key refuses the bad value the engine makes for it, and keeps its default. */
static void test_bad_value_for_every_key(void)
{
    char bad[128], why[256], before[64], after[64];
    for (size_t i = 0; i < t.n; i++) {
        fresh();
        cm_cfg_bad_value(&keys[i], bad, sizeof(bad));
        cm_cfg_format(&t, (int)i, before, sizeof(before));
        CU_ASSERT_EQUAL(cm_cfg_set(&t, (int)i, bad, "test", why, sizeof(why)), -1);
        cm_cfg_format(&t, (int)i, after, sizeof(after));
        CU_ASSERT_STRING_EQUAL(before, after);
        CU_ASSERT_STRING_EQUAL(srcs[i].where, "default");
    }
}

static const char *fake_env(void *arg, const char *name)
{
    const char *const *kv = arg;
    for (; kv[0]; kv += 2)
        if (strcmp(kv[0], name) == 0)
            return kv[1];
    return NULL;
}

static void test_env_overrides(void)
{
    char msg[256], name[64];
    cm_cfg_env_name(&keys[8], name, sizeof(name));
    CU_ASSERT_STRING_EQUAL(name, "CAIRN_C_FORM");
    fresh();
    CU_ASSERT_EQUAL(cm_cfg_parse_string(&t, "[a]\nn = 9\n", "t.conf", msg, sizeof(msg)), CM_OK);
    const char *good[] = {"CAIRN_A_N", "2", "CAIRN_B_E", "red", NULL};
    CU_ASSERT_EQUAL(cm_cfg_apply_env(&t, fake_env, (void *)good, msg, sizeof(msg)), CM_OK);
    CU_ASSERT_EQUAL(o.n, 2); /* the environment wins over the file */
    CU_ASSERT_EQUAL(o.e, 0);
    CU_ASSERT_STRING_EQUAL(srcs[0].where, "env CAIRN_A_N");
    const char *bad[] = {"CAIRN_B_D", "7", NULL};
    CU_ASSERT_EQUAL(cm_cfg_apply_env(&t, fake_env, (void *)bad, msg, sizeof(msg)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "CAIRN_B_D: invalid value '7' for b.d"));
}

static void test_table_misfit_refused(void)
{
    /* a row whose field is not the size its type writes is refused, not written past */
    static const cm_cfg_key wrong[] = {
        {"a", "n", CM_CFG_LONG, offsetof(opts, n), sizeof(int), 0, 9, NULL, "1", NULL, 0, "x"}};
    cm_cfg_src s[1];
    cm_cfg w = {wrong, 1, &o, s};
    char msg[256];
    CU_ASSERT_EQUAL(cm_cfg_defaults(&w, msg, sizeof(msg)), CM_ERR_INVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "does not fit its field"));
}

/* A reload compares values, secrets included (their listing hides them: "(set)" both times). */
static void test_same_sees_secrets(void)
{
    opts o2;
    cm_cfg_src s2[CM_ARRAY_LEN(keys)];
    cm_cfg t2 = {keys, CM_ARRAY_LEN(keys), &o2, s2};
    char msg[256], why[256];
    fresh();
    memset(&o2, 0x5a, sizeof(o2)); /* garbage past every string's NUL */
    CU_ASSERT_EQUAL_FATAL(cm_cfg_defaults(&t2, msg, sizeof(msg)), CM_OK);
    for (size_t i = 0; i < t.n; i++)
        CU_ASSERT_TRUE(cm_cfg_same(&t, &t2, (int)i));
    CU_ASSERT_EQUAL(cm_cfg_set(&t2, 7, "other", "test", why, sizeof(why)), 0);
    CU_ASSERT_FALSE(cm_cfg_same(&t, &t2, 7));
    CU_ASSERT_EQUAL(cm_cfg_set(&t2, 4, "0.75", "test", why, sizeof(why)), 0);
    CU_ASSERT_FALSE(cm_cfg_same(&t, &t2, 4));
    CU_ASSERT_TRUE(cm_cfg_same(&t, &t2, 0));
}

static void test_doc_row(void)
{
    char row[256];
    cm_cfg_doc_row(&keys[0], row, sizeof(row));
    CU_ASSERT_STRING_EQUAL(row, "| `a.n` | integer 1..10 | `5` | yes | an int |");
    cm_cfg_doc_row(&keys[8], row, sizeof(row));
    CU_ASSERT_STRING_EQUAL(row, "| `c.form` | WORD, at most 31 bytes | `w` | restart | a form |");
}

static void test_cidr(void)
{
    cm_cidr_list l;
    CU_ASSERT_EQUAL(cm_cidr_list_parse("127.0.0.0/8, ::1,10.1.2.0/23", &l), CM_OK);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "127.0.0.1:5555"));
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "127.255.0.9"));
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "[::1]:80"));
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "[::ffff:127.0.0.2]:80")); /* dual-stack listener */
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "10.1.3.255:1"));
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "10.1.4.0:1"));
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "128.0.0.1:1"));
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "[::2]:80"));
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "unknown"));
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "[::1"));
    CU_ASSERT_EQUAL(cm_cidr_list_parse("", &l), CM_OK);
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_FALSE(cm_cidr_list_match(&l, "127.0.0.1:1"));
    CU_ASSERT_EQUAL(cm_cidr_list_parse("0.0.0.0/0", &l), CM_OK);
    CU_ASSERT_TRUE(cm_cidr_list_match(&l, "8.8.8.8:53"));
    CU_ASSERT_EQUAL(cm_cidr_list_parse("10.0.0.0/33", &l), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_cidr_list_parse("::/129", &l), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_cidr_list_parse("localhost", &l), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_cidr_list_parse("1.2.3.4/", &l), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(cm_cidr_list_parse("1.2.3.4/-1", &l), CM_ERR_INVAL);
}

static int hook_calls[3];

static int hook_ok(void *arg, char *why, size_t cap)
{
    (void)why, (void)cap;
    hook_calls[*(int *)arg]++;
    return 0;
}

static int hook_fail(void *arg, char *why, size_t cap)
{
    hook_calls[*(int *)arg]++;
    snprintf(why, cap, "certificate file missing");
    return -1;
}

static void test_reload_hooks(void)
{
    cm_reload *r = NULL;
    static int ids[3] = {0, 1, 2};
    CU_ASSERT_EQUAL_FATAL(cm_reload_new(&r), CM_OK);
    CU_ASSERT_EQUAL(cm_reload_add(r, "one", hook_ok, &ids[0]), CM_OK);
    CU_ASSERT_EQUAL(cm_reload_add(r, "two", hook_fail, &ids[1]), CM_OK);
    CU_ASSERT_EQUAL(cm_reload_add(r, "three", hook_ok, &ids[2]), CM_OK);
    CU_ASSERT_EQUAL(cm_reload_run(r), 1); /* a failure does not stop the others */
    CU_ASSERT_EQUAL(hook_calls[0], 1);
    CU_ASSERT_EQUAL(hook_calls[1], 1);
    CU_ASSERT_EQUAL(hook_calls[2], 1);
    for (int i = 3; i < CM_RELOAD_MAX; i++)
        CU_ASSERT_EQUAL(cm_reload_add(r, "more", hook_ok, &ids[0]), CM_OK);
    CU_ASSERT_EQUAL(cm_reload_add(r, "too many", hook_ok, &ids[0]), CM_ERR_TOOBIG);
    cm_reload_free(r);
    cm_reload_free(NULL);
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"defaults_and_format", test_defaults_and_format},
        {"file_values_and_lines", test_file_values_and_lines},
        {"refusals_name_line_and_key", test_refusals_name_line_and_key},
        {"bad_value_for_every_key", test_bad_value_for_every_key},
        {"env_overrides", test_env_overrides},
        {"table_misfit_refused", test_table_misfit_refused},
        {"same_sees_secrets", test_same_sees_secrets},
        {"doc_row", test_doc_row},
        {"cidr", test_cidr},
        {"reload_hooks", test_reload_hooks},
        {NULL, NULL},
    };
    cu_add_suite("cfgtab", tests);
}
