// test_sigv4.js - the console's SigV4 signer (console/sigv4.js) against the examples AWS publishes
// in "Signature Calculations for the Authorization Header" (Amazon S3 API reference): the same
// credentials, date, requests and expected signatures, with Web Crypto and with the plain
// JavaScript SHA-256/HMAC the signer falls back to. Run: node tests/js/test_sigv4.js
'use strict';
const assert = require('assert');
const path = require('path');
// Debian 12's node 18 offers Web Crypto only as require('crypto').webcrypto, not as the global a
// browser (and node >= 19) has; sigv4.js looks for the global when it loads
if (!globalThis.crypto)
    globalThis.crypto = require('crypto').webcrypto;
const sig = require(path.join(__dirname, '..', '..', 'console', 'sigv4.js'));

const creds = {
    accessKey: 'AKIAIOSFODNN7EXAMPLE',
    secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
    service: 's3',
    now: new Date(Date.UTC(2013, 4, 24, 0, 0, 0))
};
const host = 'examplebucket.s3.amazonaws.com';

const cases = [
    {
        name: 'GET Object with a Range',
        req: {method: 'GET', host, path: '/test.txt', headers: {Range: 'bytes=0-9'},
              payloadHash: sig.EMPTY_SHA256},
        signed: 'host;range;x-amz-content-sha256;x-amz-date',
        want: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41'
    },
    {
        name: 'GET Bucket lifecycle',
        req: {method: 'GET', host, path: '/', query: {lifecycle: ''}, payloadHash: sig.EMPTY_SHA256},
        signed: 'host;x-amz-content-sha256;x-amz-date',
        want: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543'
    },
    {
        name: 'GET Bucket (list objects) with max-keys and prefix',
        req: {method: 'GET', host, path: '/', query: {prefix: 'J', 'max-keys': '2'},
              payloadHash: sig.EMPTY_SHA256},
        signed: 'host;x-amz-content-sha256;x-amz-date',
        want: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7'
    }
];

async function vectors() {
    // the PUT example's payload hash is the SHA-256 of its body
    const body = 'Welcome to Amazon S3.';
    const bodyHash = await sig.sha256Hex(body);
    assert.strictEqual(bodyHash, '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072');
    cases.push({
        name: 'PUT Object',
        req: {method: 'PUT', host, path: '/test$file.text',
              headers: {Date: 'Fri, 24 May 2013 00:00:00 GMT', 'x-amz-storage-class': 'REDUCED_REDUNDANCY'},
              payloadHash: bodyHash},
        signed: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
        want: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd'
    });
    for (const c of cases) {
        const h = await sig.sign(c.req, creds);
        assert.strictEqual(h['x-amz-date'], '20130524T000000Z', c.name);
        assert.strictEqual(h.authorization,
                           'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/' +
                           'aws4_request, SignedHeaders=' + c.signed + ', Signature=' + c.want, c.name);
        console.log('ok - ' + c.name + (sig.subtle ? ' (Web Crypto)' : ' (plain JavaScript)'));
    }
    // encoding: unreserved characters stay, UTF-8 bytes are %XX upper case, '/' only in paths
    assert.strictEqual(sig.uriEncode('a b/ü~*', true), 'a%20b/%C3%BC~%2A');
    assert.strictEqual(sig.uriEncode('a/b', false), 'a%2Fb');
    assert.strictEqual(sig.canonicalQuery([['prefix', 'x/y'], ['delimiter', '/'], ['a', '']]),
                       'a=&delimiter=%2F&prefix=x%2Fy');
    console.log('ok - encoding');
}

async function main() {
    const subtle = sig.subtle;
    assert.ok(subtle, 'node offers crypto.subtle');
    await vectors();
    // the plain JavaScript SHA-256/HMAC (pages without Web Crypto) against the same vectors,
    // and against Web Crypto on inputs around the 64-byte block and padding edges
    sig.subtle = null;
    cases.length = 3;
    await vectors();
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70000]) {
        const data = new Uint8Array(n).map((_, i) => (i * 131 + n) & 255);
        const plain = await sig.sha256Hex(data);
        sig.subtle = subtle;
        const web = await sig.sha256Hex(data);
        sig.subtle = null;
        assert.strictEqual(plain, web, 'sha256 of ' + n + ' bytes');
    }
    const longKey = 'k'.repeat(100); // longer than a block: hashed first
    const creds2 = Object.assign({}, creds, {secretKey: longKey});
    const req = {method: 'GET', host, path: '/x', payloadHash: sig.EMPTY_SHA256};
    const plainSig = await sig.sign(req, creds2);
    sig.subtle = subtle;
    assert.deepStrictEqual(await sig.sign(req, creds2), plainSig, 'long secret');
    console.log('ok - plain SHA-256 equals Web Crypto (11 lengths, a long key)');
}

main().then(() => console.log('PASS test_sigv4'), (e) => {
    console.error('FAIL test_sigv4: ' + (e && e.stack || e));
    process.exit(1);
});
