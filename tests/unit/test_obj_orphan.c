/*
 * test_obj_orphan.c - the orphan sweep's verdicts (obj/ob_orphan.c): a named cell is kept
 * whatever its age; an unnamed one younger than the grace, or of unknown age, is kept as young;
 * an unnamed old one is a candidate, deleted only when the second round does not name it either.
 */
#include <string.h>

#include "cu_main.h"
#include "ob_orphan.h"

static void test_verdicts(void)
{
    /* named old, named young, unnamed young, unnamed of unknown age, unnamed at the grace,
     * unnamed old (named in round 2), unnamed old (unnamed in round 2) */
    const int64_t ages[] = {9000, 5, 5, -1, 3600, 7200, 7200};
    const uint8_t named[] = {1, 1, 0, 0, 0, 0, 0};
    uint8_t v[7];
    CU_ASSERT_EQUAL(ob_orphan_first(ages, named, 7, 3600, v), 3);
    CU_ASSERT_EQUAL(v[0], OB_ORPHAN_NAMED);
    CU_ASSERT_EQUAL(v[1], OB_ORPHAN_NAMED);
    CU_ASSERT_EQUAL(v[2], OB_ORPHAN_YOUNG);
    CU_ASSERT_EQUAL(v[3], OB_ORPHAN_YOUNG);
    CU_ASSERT_EQUAL(v[4], OB_ORPHAN_CANDIDATE); /* exactly the grace old: old enough */
    CU_ASSERT_EQUAL(v[5], OB_ORPHAN_CANDIDATE);
    CU_ASSERT_EQUAL(v[6], OB_ORPHAN_CANDIDATE);
    const uint8_t named2[] = {0, 1, 0}; /* for the three candidates, in order */
    CU_ASSERT_EQUAL(ob_orphan_second(v, 7, named2), 2);
    CU_ASSERT_EQUAL(v[4], OB_ORPHAN_ORPHAN);
    CU_ASSERT_EQUAL(v[5], OB_ORPHAN_NAMED); /* its name moved during round one */
    CU_ASSERT_EQUAL(v[6], OB_ORPHAN_ORPHAN);
    CU_ASSERT_EQUAL(v[2], OB_ORPHAN_YOUNG); /* the others stay as they were */
}

static void test_grace_zero(void)
{
    const int64_t ages[] = {0, -1};
    const uint8_t named[] = {0, 0};
    uint8_t v[2];
    CU_ASSERT_EQUAL(ob_orphan_first(ages, named, 2, 0, v), 1);
    CU_ASSERT_EQUAL(v[0], OB_ORPHAN_CANDIDATE);
    CU_ASSERT_EQUAL(v[1], OB_ORPHAN_YOUNG);
    CU_ASSERT_EQUAL(ob_orphan_first(ages, named, 0, 0, v), 0); /* an empty page */
}

void cu_register(void)
{
    static const cu_test tests[] = {
        {"verdicts", test_verdicts}, {"grace_zero", test_grace_zero}, {NULL, NULL}};
    cu_add_suite("obj_orphan", tests);
}
