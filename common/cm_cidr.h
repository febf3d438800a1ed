/*
 * cm_cidr.h - address allow-lists: "CIDR,CIDR,..." of IPv4 ("127.0.0.0/8") and IPv6 ("::1/128")
 * prefixes; an address without "/bits" is a single host. An IPv4-mapped IPv6 peer
 * (::ffff:a.b.c.d, what a dual-stack listener sees) matches the IPv4 entries.
 */
#ifndef CM_CIDR_H
#define CM_CIDR_H

#include <stdint.h>

#include "cm_err.h"

#define CM_CIDR_MAX 32 /* entries in one list */

typedef struct {
    uint8_t addr[16]; /* IPv4 in the first 4 bytes */
    int v6;
    int bits;
} cm_cidr;

typedef struct {
    cm_cidr e[CM_CIDR_MAX];
    int n;
} cm_cidr_list;

/* Parse text ("" or only spaces = the empty list). CM_ERR_INVAL for a bad entry or too many. */
cm_err cm_cidr_list_parse(const char *text, cm_cidr_list *out);
/*
 * 1 when peer is in the list. peer is an address as net_req_peer gives it: "a.b.c.d:port",
 * "[v6]:port", or a bare address; anything else matches nothing.
 */
int cm_cidr_list_match(const cm_cidr_list *l, const char *peer);

#endif
