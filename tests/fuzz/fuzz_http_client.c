/*
 * fuzz_http_client.c - libFuzzer target for the HTTP client's response parser (net_client.c),
 * which reads what other nodes answer.
 *
 * Checks beyond "no crash": a response it accepts has a status of 100..999 (1xx only when more
 * follows, so never as the final answer); the body it counts is never longer than the input; and
 * a HEAD response never has a body.
 */
#include <stdint.h>
#include <stdlib.h>

#include "net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int status = 0;
    uint64_t body = 0;
    cm_err e = net_resp_parse(data, size, "GET", &status, &body);
    if (e == CM_OK && (status < 200 || status > 999 || body > size))
        abort();
    if (e != CM_OK && e != CM_AGAIN && e != CM_ERR_CLOSED)
        abort();
    e = net_resp_parse(data, size, "HEAD", &status, &body);
    if (e == CM_OK && body != 0)
        abort();
    return 0;
}
