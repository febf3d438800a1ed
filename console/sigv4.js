/*
 * sigv4.js - AWS Signature Version 4 for the cairn console, written for this project.
 *
 * Uses the Web Crypto API (crypto.subtle: SHA-256 and HMAC-SHA256); the secret key stays in the
 * caller's memory and only signatures leave the page. Loaded as a classic script in the browser
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
        return typeof data === 'string' ? enc.encode(data) : data;
    }

    function hex(buf) {
        var b = new Uint8Array(buf), s = '';
        for (var i = 0; i < b.length; i++)
            s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
        return s;
    }

    function needSubtle() {
        if (!subtle)
            throw new Error('Web Crypto is not available: open the console over https or from ' +
                            'localhost (browsers offer crypto.subtle only in secure contexts)');
    }

    function sha256Hex(data) {
        needSubtle();
        return subtle.digest('SHA-256', bytes(data)).then(hex);
    }

    function hmac(key, data) {
        needSubtle();
        return subtle.importKey('raw', bytes(key), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign'])
            .then(function (k) { return subtle.sign('HMAC', k, bytes(data)); });
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
