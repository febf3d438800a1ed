/*
 * sigv4.js - AWS Signature Version 4 for the cairn console, written for this project.
 *
 * Uses the Web Crypto API (crypto.subtle: SHA-256 and HMAC-SHA256) when the browser offers it,
 * else SHA-256 and HMAC written here in plain JavaScript (crypto.subtle exists only in secure
 * contexts: https or localhost). The secret key stays in the caller's memory and only signatures
 * leave the page. Loaded as a classic script in the browser
 * (defines window.CairnSig) and with require() by the node unit test (tests/js/test_sigv4.js).
 *
 *   CairnSig.sign(req, creds) -> Promise of the headers to add:
 *     req:   {method, host, path (decoded, e.g. "/bucket/a b.txt"), query ({name: value} or
 *             [[name, value], ...]), headers ({name: value}, signed), payloadHash (hex)}
 *     creds: {accessKey, secretKey, region, service ("s3"), now (a Date; default new Date())}
 *   returns {authorization, "x-amz-date", "x-amz-content-sha256"}
 *   CairnSig.sha256Hex(data) -> Promise of the hex SHA-256 of a string or ArrayBuffer/view.
 */
(function (root) {
    'use strict';

    var subtle = root.crypto && root.crypto.subtle;
    var enc = new TextEncoder();

    function bytes(data) {
        if (typeof data === 'string')
            return enc.encode(data);
        if (data instanceof ArrayBuffer)
            return new Uint8Array(data);
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }

    /* ---- SHA-256 and HMAC in plain JavaScript (FIPS 180-4, RFC 2104), for pages where the
     * browser offers no crypto.subtle: it does only in secure contexts (https, localhost), and an
     * operator may open the console over plain http on a LAN. */

    var K = new Uint32Array([
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

    function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

    function sha256Plain(msg) {
        var len = msg.length, padded = new Uint8Array(((len + 72) >> 6) << 6);
        padded.set(msg);
        padded[len] = 0x80;
        var dv = new DataView(padded.buffer);
        dv.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
        dv.setUint32(padded.length - 4, (len << 3) >>> 0);
        var h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
        var w = new Uint32Array(64);
        for (var off = 0; off < padded.length; off += 64) {
            for (var t = 0; t < 64; t++) {
                if (t < 16) {
                    w[t] = dv.getUint32(off + 4 * t);
                } else {
                    var s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
                    var s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
                    w[t] = (w[t - 16] + s0 + w[t - 7] + s1) >>> 0;
                }
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
            for (t = 0; t < 64; t++) {
                var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) >>> 0;
                var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
                k = g; g = f; f = e; e = (d + t1) >>> 0;
                d = c; c = b; b = a; a = (t1 + t2) >>> 0;
            }
            h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
        }
        var out = new Uint8Array(32), odv = new DataView(out.buffer);
        for (var i = 0; i < 8; i++)
            odv.setUint32(4 * i, h[i]);
        return out;
    }

    function hmacPlain(key, msg) {
        if (key.length > 64)
            key = sha256Plain(key);
        var ipad = new Uint8Array(64 + msg.length), opad = new Uint8Array(64 + 32);
        for (var i = 0; i < 64; i++) {
            var kb = i < key.length ? key[i] : 0;
            ipad[i] = kb ^ 0x36;
            opad[i] = kb ^ 0x5c;
        }
        ipad.set(msg, 64);
        opad.set(sha256Plain(ipad), 64);
        return sha256Plain(opad);
    }

    function hex(buf) {
        var b = new Uint8Array(buf), s = '';
        for (var i = 0; i < b.length; i++)
            s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
        return s;
    }

    function sha256Hex(data) {
        if (!api.subtle)
            return Promise.resolve(hex(sha256Plain(bytes(data))));
        return api.subtle.digest('SHA-256', bytes(data)).then(hex);
    }

    function hmac(key, data) {
        if (!api.subtle)
            return Promise.resolve(hmacPlain(bytes(key), bytes(data)));
        return api.subtle.importKey('raw', bytes(key), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign'])
            .then(function (k) { return api.subtle.sign('HMAC', k, bytes(data)); });
    }

    /* RFC 3986 percent-encoding of the UTF-8 bytes, as SigV4 wants it: unreserved characters
     * stay, every other byte is %XX upper case; '/' stays only when keepSlash. */
    function uriEncode(s, keepSlash) {
        var b = enc.encode(s), out = '';
        for (var i = 0; i < b.length; i++) {
            var c = b[i];
            if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
                c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || (keepSlash && c === 0x2f))
                out += String.fromCharCode(c);
            else
                out += '%' + (c < 16 ? '0' : '') + c.toString(16).toUpperCase();
        }
        return out;
    }

    function pairs(query) {
        if (!query)
            return [];
        if (Array.isArray(query))
            return query.slice();
        return Object.keys(query).map(function (k) { return [k, query[k]]; });
    }

    /* The query string as sent and as signed (sorted by encoded name, then value). */
    function canonicalQuery(query) {
        var enc2 = pairs(query).map(function (p) {
            return [uriEncode(String(p[0]), false), uriEncode(p[1] == null ? '' : String(p[1]), false)];
        });
        enc2.sort(function (a, b) {
            return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
        });
        return enc2.map(function (p) { return p[0] + '=' + p[1]; }).join('&');
    }

    function amzDate(d) {
        return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    }

    function sign(req, creds) {
        var now = creds.now || new Date();
        var date = amzDate(now), day = date.slice(0, 8);
        var service = creds.service || 's3';
        var headers = {};
        Object.keys(req.headers || {}).forEach(function (k) {
            headers[k.toLowerCase()] = String(req.headers[k]).trim().replace(/\s+/g, ' ');
        });
        headers.host = req.host;
        headers['x-amz-date'] = date;
        headers['x-amz-content-sha256'] = req.payloadHash;
        var names = Object.keys(headers).sort();
        var canonical = [
            req.method,
            uriEncode(req.path, true),
            canonicalQuery(req.query),
            names.map(function (n) { return n + ':' + headers[n] + '\n'; }).join(''),
            names.join(';'),
            req.payloadHash
        ].join('\n');
        var scope = day + '/' + creds.region + '/' + service + '/aws4_request';
        return sha256Hex(canonical).then(function (h) {
            var toSign = 'AWS4-HMAC-SHA256\n' + date + '\n' + scope + '\n' + h;
            return hmac('AWS4' + creds.secretKey, day)
                .then(function (k) { return hmac(k, creds.region); })
                .then(function (k) { return hmac(k, service); })
                .then(function (k) { return hmac(k, 'aws4_request'); })
                .then(function (k) { return hmac(k, toSign); })
                .then(function (sig) {
                    return {
                        authorization: 'AWS4-HMAC-SHA256 Credential=' + creds.accessKey + '/' +
                                           scope + ', SignedHeaders=' + names.join(';') +
                                           ', Signature=' + hex(sig),
                        'x-amz-date': date,
                        'x-amz-content-sha256': req.payloadHash
                    };
                });
        });
    }

    var api = {
        subtle: subtle, /* Web Crypto, or null: the plain functions above (tests set it) */
        sign: sign,
        sha256Hex: sha256Hex,
        uriEncode: uriEncode,
        canonicalQuery: canonicalQuery,
        EMPTY_SHA256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    };
    if (typeof module === 'object' && module.exports)
        module.exports = api;
    else
        root.CairnSig = api;
})(typeof self !== 'undefined' ? self : globalThis);
