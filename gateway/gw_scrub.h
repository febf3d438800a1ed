/*
 * gw_scrub.h - the object-level scrubber: re-read every stored body, verify every block
 * checksum of every cell, and rebuild damaged bodies from parity (docs/scrub.md).
 *
 * A pass walks every bucket's current object records. For each part stored as erasure-coded
 * cells it reads every cell blob in full on its drive (so every 64 KiB block CRC is checked); a
 * missing blob, a blob of the wrong length or a checksum failure marks the body damaged. A damaged
 * body is read whole through ob_read (which reconstructs from parity), written anew under a new
 * blob id, swapped into the record with md_object_replace_layout (only if the record still points
 * at the old blob), and the old blobs are freed through the read-lease rules so GETs in flight
 * keep working. Inline bodies live in the metadata record, with a CRC32C: they are checked, and
 * a mismatch is counted and logged, but cannot be repaired (one copy). Parts of multipart
 * uploads that are not completed yet are skipped.
 *
 * Reads are rate-limited by a token bucket (MB/s); the scrub thread sleeps, never an event loop.
 *
 * Threading: one background thread per scrubber (gw_scrub_start). gw_scrub_trigger and
 * gw_scrub_get_status are cheap and safe from event-loop threads. gw_scrub_run_once runs a pass in
 * the caller's thread (tests, tools); at most one pass runs at a time.
 */
#ifndef GW_SCRUB_H
#define GW_SCRUB_H

#include <stdint.h>

#include "cm_err.h"
#include "gw.h"

typedef struct gw_scrub gw_scrub;

typedef struct {
    double rate_mb;         /* MB/s (10^6 bytes) of cell reads; 0 = unlimited; default 50 */
    int64_t interval_s;     /* seconds from the end of a pass to the next automatic one;
                               0 = passes only on demand; default 86400 */
    const char *state_path; /* file that remembers when the last pass ended; NULL = none */
} gw_scrub_config;

void gw_scrub_config_defaults(gw_scrub_config *cfg);

typedef struct {
    int running;     /* a pass is running or has been requested */
    uint64_t passes; /* passes finished since the scrubber started */
    /* Totals over every pass since start. */
    uint64_t objects_checked, bodies_checked, bytes_verified;
    uint64_t damaged_found, repaired, repair_failed, changed_meanwhile;
    /* Inline bodies (in the metadata record) checked, and those whose CRC32C did not match:
     * counted and logged, never repaired (there is no second copy). */
    uint64_t inline_checked, inline_corrupt;
    int64_t last_start_ms, last_end_ms; /* wall clock of the current/last pass; 0 = never */
    int64_t next_due_ms;                /* next automatic pass; 0 = none scheduled */
    double rate_mb;
    /* The current pass (or the last one when idle), with the estimate taken at its start. */
    uint64_t pass_objects, pass_bytes, pass_damaged, pass_repaired, pass_failed;
    uint64_t pass_inline_corrupt;
    uint64_t est_objects, est_bytes;
} gw_scrub_status;

/* Create a scrubber over g's stores and attach it to g (the admin API finds it there). */
cm_err gw_scrub_new(gw *g, const gw_scrub_config *cfg, gw_scrub **out);
/* Start the background thread (automatic passes, and passes asked for by gw_scrub_trigger). */
cm_err gw_scrub_start(gw_scrub *s);
/* Stop the thread (interrupting a pass between reads), detach from g, free. NULL is a no-op. */
void gw_scrub_free(gw_scrub *s);
/*
 * Ask the background thread for a pass now. *seq receives the number the pass will have
 * (status.passes reaches it when the pass ends). CM_ERR_CONFLICT when a pass runs or is already
 * requested; CM_ERR_UNAVAILABLE when the thread is not started.
 */
cm_err gw_scrub_trigger(gw_scrub *s, uint64_t *seq);
/* Run one whole pass in the calling thread. CM_ERR_CONFLICT when another pass runs. */
cm_err gw_scrub_run_once(gw_scrub *s);
void gw_scrub_get_status(gw_scrub *s, gw_scrub_status *out);

#endif
