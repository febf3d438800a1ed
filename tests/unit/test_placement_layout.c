/*
 * test_placement_layout.c - the cluster topology: building, validation errors, the JSON document
 * (round trip, strict decoding, versions) and the default erasure profile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "pl.h"

static void test_build(void)
{
    pl_topology *t = pl_topology_new(5);
    int idx = -1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n1", "10.0.0.1:9100", "az1", &idx), CM_OK);
    CU_ASSERT_EQUAL(idx, 0);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n1", "10.0.0.2:9100", "az2", NULL), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "bad id", "10.0.0.2:9100", "az2", NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n2", "10.0.0.2", "az2", NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n2", "10.0.0.2:0", "az2", NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n2", "10.0.0.2:70000", "az2", NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n2", "[::1]:9100", "", NULL), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_drive(t, 0, 3, 100, PL_UP), CM_OK);
    CU_ASSERT_EQUAL(pl_topology_add_drive(t, 0, 3, 100, PL_UP), CM_ERR_EXISTS);
    CU_ASSERT_EQUAL(pl_topology_add_drive(t, 0, 4, 0, PL_UP), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_add_drive(t, 1, 4, 1, PL_UP), CM_ERR_INVAL);
    CU_ASSERT_EQUAL(pl_topology_find(t, "n1"), 0);
    CU_ASSERT_EQUAL(pl_topology_find(t, "n9"), -1);
    char err[256] = "";
    CU_ASSERT_EQUAL(pl_topology_validate(t, err, sizeof(err)), CM_OK);
    pl_topology_free(t);
    pl_topology_free(NULL);
}

/* Each corruption of a valid topology is refused by validate with a message. */
static void test_validate(void)
{
    pl_topology *base;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &base), CM_OK);
    char err[256];
    CU_ASSERT_EQUAL(pl_topology_validate(base, err, sizeof(err)), CM_OK);
    for (int c = 0; c < 7; c++) {
        pl_topology *t;
        CU_ASSERT_EQUAL_FATAL(pl_topology_clone(base, &t), CM_OK);
        switch (c) {
        case 0: /* duplicate node id, written behind the add function's back */
            memcpy(t->nodes[3].id, "n1", 3);
            break;
        case 1:
            t->nodes[2].drives[1].weight = 0;
            break;
        case 2:
            t->nodes[0].drives[2].id = t->nodes[0].drives[0].id;
            break;
        case 3:
            memcpy(t->nodes[1].addr, "nohost", 7);
            break;
        case 4:
            memcpy(t->nodes[1].az, "a z", 4);
            break;
        case 5: /* nothing up */
            for (int i = 0; i < t->nnodes; i++)
                t->nodes[i].state = PL_DRAINING;
            break;
        case 6:
            t->nodes[4].drives[0].state = (pl_state)9;
            break;
        }
        err[0] = '\0';
        CU_ASSERT_EQUAL(pl_topology_validate(t, err, sizeof(err)), CM_ERR_INVAL);
        CU_ASSERT(err[0] != '\0');
        char *doc = NULL;
        size_t len;
        CU_ASSERT_EQUAL(pl_topology_encode(t, &doc, &len), CM_ERR_INVAL);
        pl_topology_free(t);
    }
    pl_topology_free(base);
}

static int same_topology(const pl_topology *a, const pl_topology *b)
{
    if (a->epoch != b->epoch || a->nnodes != b->nnodes)
        return 0;
    for (int i = 0; i < a->nnodes; i++) {
        const pl_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (strcmp(x->id, y->id) || strcmp(x->addr, y->addr) || strcmp(x->az, y->az) ||
            x->state != y->state || x->ndrives != y->ndrives)
            return 0;
        for (int j = 0; j < x->ndrives; j++)
            if (x->drives[j].id != y->drives[j].id || x->drives[j].weight != y->drives[j].weight ||
                x->drives[j].state != y->drives[j].state)
                return 0;
    }
    return 1;
}

static void test_round_trip(void)
{
    pl_topology *t;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 2, 4, &t), CM_OK);
    t->epoch = 42;
    t->nodes[1].state = PL_DRAINING;
    t->nodes[2].drives[3].state = PL_DOWN;
    t->nodes[5].drives[0].state = PL_REMOVED;
    t->nodes[4].drives[1].weight = PL_MAX_WEIGHT;
    snprintf(t->nodes[0].addr, sizeof(t->nodes[0].addr), "[fd00::1]:9100");
    char *doc = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(pl_topology_encode(t, &doc, &len), CM_OK);
    CU_ASSERT_EQUAL(strlen(doc), len);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"version\":1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"epoch\":42"));
    pl_topology *back = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(pl_topology_decode(doc, len, &back, err, sizeof(err)), CM_OK);
    CU_ASSERT(same_topology(t, back));
    /* encoding the decoded copy gives the same bytes */
    char *again = NULL;
    size_t len2 = 0;
    CU_ASSERT_EQUAL(pl_topology_encode(back, &again, &len2), CM_OK);
    CU_ASSERT(len2 == len && memcmp(doc, again, len) == 0);
    free(doc);
    free(again);
    pl_topology_free(back);
    pl_topology_free(t);
}

/* Encode then decode; the caller frees. */
static pl_topology *through_doc(const pl_topology *t, char **doc)
{
    size_t len = 0;
    pl_topology *back = NULL;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(pl_topology_encode(t, doc, &len), CM_OK);
    CU_ASSERT_EQUAL_FATAL(pl_topology_decode(*doc, len, &back, err, sizeof(err)), CM_OK);
    return back;
}

/*
 * Node indices survive the document across epochs (layouts of bodies record them): a node added
 * to the first AZ keeps the others' indices, a removed node keeps its slot, and a document in
 * the grouped order carries no slots (as every document before them).
 */
static void test_stable_node_indices(void)
{
    pl_topology *t, *back;
    char *doc = NULL;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 1, 2, &t), CM_OK); /* n1 az1, n2 az2, n3 az3 */
    back = through_doc(t, &doc);
    CU_ASSERT_PTR_NULL(strstr(doc, "\"slot\""));
    CU_ASSERT(same_topology(t, back));
    free(doc);
    pl_topology_free(back);
    int idx;
    CU_ASSERT_EQUAL(pl_topology_add_node(t, "n4", "127.0.0.1:9200", "az1", &idx), CM_OK);
    CU_ASSERT_EQUAL(pl_topology_add_drive(t, idx, 0, 100, PL_UP), CM_OK);
    t->nodes[1].state = PL_REMOVED;
    back = through_doc(t, &doc); /* grouping would list n1 n4 n2 n3 */
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"slot\":3"));
    CU_ASSERT(same_topology(t, back));
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(pl_topology_find(back, t->nodes[i].id), i);
    char *again = NULL;
    pl_topology *twice = through_doc(back, &again);
    CU_ASSERT_STRING_EQUAL(doc, again);
    pl_topology_free(twice);
    free(again);
    free(doc);
    pl_topology_free(back);
    pl_topology_free(t);
    /* slots on some nodes only, repeated, or out of range are refused */
    static const char *bad[] = {
        "{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
        "\"addr\":\"1.2.3.4:5\",\"slot\":0,\"drives\":[{\"id\":0,\"weight\":1}]},{\"id\":\"n2\","
        "\"addr\":\"1.2.3.4:6\",\"drives\":[{\"id\":0,\"weight\":1}]}]}]}",
        "{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
        "\"addr\":\"1.2.3.4:5\",\"slot\":1,\"drives\":[{\"id\":0,\"weight\":1}]},{\"id\":\"n2\","
        "\"addr\":\"1.2.3.4:6\",\"slot\":1,\"drives\":[{\"id\":0,\"weight\":1}]}]}]}",
        "{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
        "\"addr\":\"1.2.3.4:5\",\"slot\":2,\"drives\":[{\"id\":0,\"weight\":1}]}]}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        CU_ASSERT_EQUAL(pl_topology_decode(bad[i], strlen(bad[i]), &back, err, sizeof(err)),
                        CM_ERR_INVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "slot"));
    }
}

static void test_decode_errors(void)
{
    static const struct {
        const char *doc;
        cm_err want;
    } cases[] = {
        {"not json", CM_ERR_INVAL},
        {"[]", CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1}", CM_ERR_INVAL},
        {"{\"version\":2,\"epoch\":1,\"azs\":[]}", CM_ERR_UNSUPPORTED},
        {"{\"version\":0,\"epoch\":1,\"azs\":[]}", CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"azs\":[]}", CM_ERR_INVAL}, /* nothing to place on */
        {"{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
         "\"addr\":\"h:1\",\"drives\":[{\"id\":0,\"weight\":1,\"state\":\"sideways\"}]}]}]}",
         CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
         "\"addr\":\"h:1\",\"drives\":[{\"id\":0,\"weight\":0}]}]}]}",
         CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
         "\"addr\":\"h:1\",\"drives\":[{\"id\":0,\"weight\":1},{\"id\":0,\"weight\":1}]}]}]}",
         CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":\"n1\","
         "\"addr\":\"h:1\",\"drives\":[{\"id\":0,\"weight\":1}]}]},{\"name\":\"b\",\"nodes\":"
         "[{\"id\":\"n1\",\"addr\":\"h:2\",\"drives\":[{\"id\":0,\"weight\":1}]}]}]}",
         CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"azs\":[{\"name\":\"a\",\"nodes\":[]},{\"name\":\"a\","
         "\"nodes\":[]}]}",
         CM_ERR_INVAL},
        {"{\"version\":1,\"epoch\":1,\"epoch\":2,\"azs\":[]}", CM_ERR_INVAL},
        /* a minimal valid one, with an unknown member a later version might add */
        {"{\"version\":1,\"epoch\":9,\"future\":true,\"azs\":[{\"name\":\"a\",\"nodes\":[{\"id\":"
         "\"n1\",\"addr\":\"h:1\",\"drives\":[{\"id\":0,\"weight\":1}]}]}]}",
         CM_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_topology *t = NULL;
        char err[256] = "";
        cm_err e = pl_topology_decode(cases[i].doc, strlen(cases[i].doc), &t, err, sizeof(err));
        CU_ASSERT_EQUAL(e, cases[i].want);
        if (e != cases[i].want)
            printf("case %zu: %s (%s)\n", i, cm_err_name(e), err);
        if (e == CM_OK) {
            CU_ASSERT_EQUAL(t->epoch, 9);
            CU_ASSERT_EQUAL(t->nnodes, 1);
            pl_topology_free(t);
        } else {
            CU_ASSERT(err[0] != '\0');
        }
    }
}

static void test_default_profile(void)
{
    static const struct {
        int azs, nodes, drives, k, m;
    } cases[] = {
        {3, 2, 2, 8, 4},                                   /* 12 drives over 3 AZs */
        {3, 2, 4, 8, 4}, {3, 2, 1, 4, 2}, {2, 3, 4, 4, 2}, /* 24 drives but 2 AZs */
        {4, 1, 3, 8, 4}, {1, 1, 6, 4, 2}, {1, 1, 4, 2, 2},
        {1, 1, 5, 2, 2}, {1, 1, 3, 2, 1}, {2, 1, 1, 1, 1}, /* small layouts */
        {1, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_topology *t;
        int k = 0, m = 0;
        CU_ASSERT_EQUAL_FATAL(
            pl_topology_uniform(cases[i].azs, cases[i].nodes, cases[i].drives, &t), CM_OK);
        pl_default_profile(t, &k, &m);
        CU_ASSERT(k == cases[i].k && m == cases[i].m);
        pl_topology_free(t);
    }
    /* 12 drives over 3 AZs, but one AZ's node drains: 8 drives take cells, so 4+2 */
    pl_topology *t;
    int k, m;
    CU_ASSERT_EQUAL_FATAL(pl_topology_uniform(3, 1, 4, &t), CM_OK);
    pl_default_profile(t, &k, &m);
    CU_ASSERT(k == 8 && m == 4);
    t->nodes[2].state = PL_DRAINING;
    pl_default_profile(t, &k, &m);
    CU_ASSERT(k == 4 && m == 2);
    pl_topology_free(t);
    CU_ASSERT_EQUAL_FATAL(pl_topology_single(6, &t), CM_OK);
    pl_default_profile(t, &k, &m);
    CU_ASSERT(k == 4 && m == 2);
    pl_topology_free(t);
}

static void test_states(void)
{
    for (int s = 0; s <= (int)PL_REMOVED; s++) {
        pl_state back;
        CU_ASSERT_EQUAL(pl_state_parse(pl_state_name((pl_state)s), &back), CM_OK);
        CU_ASSERT_EQUAL((int)back, s);
    }
    pl_state x;
    CU_ASSERT_EQUAL(pl_state_parse("UP", &x), CM_ERR_INVAL);
}

void cu_register(void)
{
    static const cu_test tests[] = {{"build", test_build},
                                    {"validate", test_validate},
                                    {"round_trip", test_round_trip},
                                    {"stable_node_indices", test_stable_node_indices},
                                    {"decode_errors", test_decode_errors},
                                    {"default_profile", test_default_profile},
                                    {"states", test_states},
                                    {NULL, NULL}};
    cu_add_suite("placement_layout", tests);
}
