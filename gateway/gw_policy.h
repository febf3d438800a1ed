/*
 * gw_policy.h - bucket policies (IAM policy JSON, parsed with jansson) and their evaluation, and
 * the table that names the IAM action of every S3 operation (docs/users.md).
 *
 * Pure functions: a policy is parsed once into a gw_policy and evaluated against a request
 * context (principal, action, resource, condition values) without any server state, so the unit
 * tests drive them directly.
 *
 * What a policy may say: Version, Id, Statement (one object or a list) of Sid, Effect
 * (Allow|Deny), Principal ("*", {"AWS": "*" | account id | "arn:aws:iam::ACCOUNT:root" |
 * "arn:aws:iam::ACCOUNT:user/NAME", or a list of them}), Action or NotAction (s3:Name, with * and ?
 * wildcards, case-insensitive), Resource or NotResource ("arn:aws:s3:::BUCKET" and
 * "arn:aws:s3:::BUCKET/KEYPATTERN", * and ? wildcards; the bucket must be the policy's), Condition
 * (operators StringEquals, StringNotEquals, StringLike, StringNotLike, StringEqualsIgnoreCase,
 * IpAddress, NotIpAddress, Bool, Null; keys aws:SourceIp, aws:SecureTransport, aws:username,
 * s3:prefix, s3:delimiter, s3:ExistingObjectTag/<key>). Anything else is MalformedPolicy, so a
 * condition cairn cannot evaluate is never silently dropped.
 *
 * cairn is one account: an account id or account root ARN in a Principal names every user;
 * a user ARN names that user, whatever account id it carries.
 */
#ifndef GW_POLICY_H
#define GW_POLICY_H

#include <stddef.h>

#include "gw_err.h"
#include "md.h"

#define GW_POLICY_MAX 20480 /* bytes of policy JSON, as S3 */

typedef struct gw_policy gw_policy;

/*
 * Parse the policy of bucket from json (len bytes). GW_OK with *out (gw_policy_free), or
 * GW_MALFORMED_POLICY with a message in msg (cap bytes) saying what is wrong.
 */
gw_s3err gw_policy_parse(const char *json, size_t len, const char *bucket, gw_policy **out,
                         char *msg, size_t cap);
void gw_policy_free(gw_policy *p); /* NULL is a no-op */

/*
 * Public, as S3's GetBucketPolicyStatus says: some Allow statement grants to every principal
 * ("*") without a condition that narrows it to fixed source addresses or named users.
 */
int gw_policy_is_public(const gw_policy *p);
/* 1 when some statement has an s3:ExistingObjectTag condition (evaluation needs the tags). */
int gw_policy_uses_tags(const gw_policy *p);

/* What the evaluator knows about a request (all borrowed; NULL = absent). */
typedef struct {
    const char *user;      /* the requesting user's name; NULL: anonymous */
    const char *action;    /* "s3:GetObject" */
    const char *resource;  /* "arn:aws:s3:::bucket" or "arn:aws:s3:::bucket/key" */
    const char *source_ip; /* peer address without port ("127.0.0.1", "::1") */
    int secure;            /* came over TLS */
    const char *prefix;    /* listing: s3:prefix ("" when the listing gives none) */
    const char *delimiter; /* listing: s3:delimiter */
    const md_meta *tags;   /* the object's tags, for s3:ExistingObjectTag/<key> */
    size_t ntags;
} gw_policy_ctx;

typedef enum { GW_POLICY_NONE = 0, GW_POLICY_ALLOW, GW_POLICY_DENY } gw_policy_effect;

/*
 * Evaluate: GW_POLICY_DENY when a matching Deny statement applies (explicit deny wins),
 * GW_POLICY_ALLOW when only Allow statements do, GW_POLICY_NONE when none does. *public_only (may
 * be NULL) is 1 when the result is ALLOW and every Allow that matched has the "*" principal
 * (RestrictPublicBuckets ignores those for anonymous requests), else 0.
 */
gw_policy_effect gw_policy_eval(const gw_policy *p, const gw_policy_ctx *c, int *public_only);

/* Wildcard match (* any run, ? one character), case-sensitive or not (exposed for tests). */
int gw_policy_glob(const char *pattern, const char *s, int nocase);

#endif
