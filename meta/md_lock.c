/*
 * md_lock.c - the rules of Object Lock (docs/object-lock.md): when a version is protected, which
 * retention changes are allowed, and the end of a bucket's default retention.
 *
 * A version is protected while its legal hold is on, or while its retain-until date is in the
 * future: COMPLIANCE for everyone, GOVERNANCE unless the request bypasses it (the gateway decides
 * who may: x-amz-bypass-governance-retention and s3:BypassGovernanceRetention). The store applies
 * md_lock_protects inside the write op that would destroy a version (md_version.c), so every path
 * that deletes or replaces a version gets the same answer, atomically with the change.
 *
 * Retention may be lengthened and GOVERNANCE raised to COMPLIANCE at any time; a running
 * retention may be shortened, removed or (GOVERNANCE only) changed only with the bypass; a
 * running COMPLIANCE retention never. Once the date has passed the retention no longer binds and
 * any change is allowed.
 *
 * Threading: pure functions.
 */
#include <time.h>

#include "md_int.h"

int md_lock_protects(const md_object *o, int64_t now_ms, int bypass)
{
    if (o->delete_marker)
        return 0;
    if (o->legal_hold)
        return 1;
    if (!o->lock_mode || o->lock_until_ms <= now_ms)
        return 0;
    return o->lock_mode == MD_LOCK_COMPLIANCE || !bypass;
}

cm_err md_lock_change_ok(const md_object *cur, uint8_t mode, int64_t until_ms, int64_t now_ms,
                         int bypass)
{
    if (!cur->lock_mode || cur->lock_until_ms <= now_ms)
        return CM_OK; /* nothing running */
    int keeps = mode && until_ms >= cur->lock_until_ms;
    if (cur->lock_mode == MD_LOCK_COMPLIANCE)
        return keeps && mode == MD_LOCK_COMPLIANCE ? CM_OK : CM_ERR_LOCKED;
    return keeps || bypass ? CM_OK : CM_ERR_LOCKED;
}

cm_err md_lock_apply(md_object *o, const md_lock_change *ch, int64_t now_ms)
{
    cm_err e = CM_OK;
    if (ch->set_retention &&
        (e = md_lock_change_ok(o, ch->mode, ch->until_ms, now_ms, ch->bypass_governance)) != CM_OK)
        return e;
    if (ch->set_retention) {
        o->lock_mode = ch->mode;
        o->lock_until_ms = ch->mode ? ch->until_ms : 0;
    }
    if (ch->set_hold)
        o->legal_hold = ch->legal_hold;
    return CM_OK;
}

cm_err md_lock_default_until(int64_t now_ms, uint8_t unit, uint32_t period, int64_t *until_ms)
{
    if (unit == MD_LOCK_DAYS && period >= 1 && period <= MD_LOCK_MAX_DAYS) {
        *until_ms = now_ms + (int64_t)period * 86400000;
        return CM_OK;
    }
    if (unit != MD_LOCK_YEARS || period < 1 || period > MD_LOCK_MAX_YEARS)
        return CM_ERR_RANGE;
    /* Calendar years in UTC: 29 February rolls to 1 March in a year without one (timegm
     * normalises the day). */
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return CM_ERR_RANGE;
    tm.tm_year += (int)period;
    time_t end = timegm(&tm);
    if (end == (time_t)-1)
        return CM_ERR_RANGE;
    *until_ms = (int64_t)end * 1000 + now_ms % 1000;
    return CM_OK;
}
