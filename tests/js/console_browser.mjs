// console_browser.mjs - drive the web console in a headless Chromium over the DevTools protocol
// (node's own WebSocket client where it has one, node >= 22; else the `ws` package pinned in
// tests/js/package-lock.json, which test_console.sh installs with `npm ci`, as on Debian 12's node
// 18). Run by tests/integration/test_console.sh:
//   node console_browser.mjs DEVTOOLS_PORT ENDPOINT BUCKET SHOTS_DIR UPLOAD_SMALL UPLOAD_BIG
// Credentials from CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY (typed into the sign-in form through the
// protocol, never in a URL). Prints "ok - ..." lines; exits 1 at the first failed check.
import fs from 'node:fs';
import path from 'node:path';

const [port, endpoint, bucket, shots, small, big] = process.argv.slice(2);
// ws offers the same onopen/onmessage/send surface and hands text frames over as strings
const WebSocketClient = globalThis.WebSocket ?? (await import('ws')).WebSocket;
const HOSTILE = '<img src=x onerror=window.__pwned=1>';
let ws, seq = 0;
const pending = new Map(), problems = [];

function fail(msg) {
    console.log('FAIL - ' + msg);
    process.exit(1);
}

function send(method, params = {}) {
    const id = ++seq;
    ws.send(JSON.stringify({id, method, params}));
    return new Promise((resolve, reject) => pending.set(id, {resolve, reject, method}));
}

async function evaluate(expr) {
    const r = await send('Runtime.evaluate', {expression: expr, awaitPromise: true, returnByValue: true});
    if (r.exceptionDetails)
        throw new Error('evaluate ' + expr + ': ' + JSON.stringify(r.exceptionDetails).slice(0, 300));
    return r.result.value;
}

// Wait (bounded) until expr is truthy in the page; its value.
async function until(what, expr, ms = 10000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await evaluate(expr).catch(() => null);
        if (v)
            return v;
        if (Date.now() > end) {
            const err = await evaluate("document.getElementById('error').textContent").catch(() => '');
            fail(what + ' (timed out; page error: ' + err + ')');
        }
        await new Promise((r) => setTimeout(r, 100));
    }
}

async function shot(name) {
    const r = await send('Page.captureScreenshot', {format: 'png'});
    fs.writeFileSync(path.join(shots, name), Buffer.from(r.data, 'base64'));
    console.log('ok - screenshot ' + name);
}

function ok(msg) { console.log('ok - ' + msg); }

async function main() {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const page = list.find((t) => t.type === 'page');
    if (!page)
        fail('no page target in chromium');
    ws = new WebSocketClient(page.webSocketDebuggerUrl);
    await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('devtools websocket')); });
    ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.id && pending.has(m.id)) {
            const p = pending.get(m.id);
            pending.delete(m.id);
            m.error ? p.reject(new Error(p.method + ': ' + m.error.message)) : p.resolve(m.result);
        } else if (m.method === 'Log.entryAdded' && m.params.entry.level === 'error') {
            problems.push(m.params.entry.text);
        } else if (m.method === 'Runtime.exceptionThrown') {
            problems.push(JSON.stringify(m.params.exceptionDetails).slice(0, 300));
        }
    };
    await send('Runtime.enable');
    await send('Log.enable');
    await send('Page.enable');
    await send('Emulation.setDeviceMetricsOverride', {width: 1200, height: 900, deviceScaleFactor: 1, mobile: false});
    await send('Page.navigate', {url: endpoint + '/_console/'});
    await until('console page loaded', "document.readyState === 'complete' && !!window.CairnSig");
    ok('console loaded, signer present');

    // sign in: the form, as a user would fill it
    const ak = JSON.stringify(process.env.CAIRN_ACCESS_KEY), sk = JSON.stringify(process.env.CAIRN_SECRET_KEY);
    await evaluate(`document.getElementById('ak').value = ${ak}; document.getElementById('sk').value = ${sk};
                    document.getElementById('signin-form').requestSubmit(); true`);
    await until('signed in, bucket list shown', `!document.getElementById('buckets').hidden &&
        [...document.querySelectorAll('#bucket-rows a')].some((a) => a.textContent === ${JSON.stringify(bucket)})`);
    if (await evaluate('location.href.includes(' + sk + ')'))
        fail('the secret key is in the URL');
    ok('signed in; bucket listed');

    // a bucket name that is not one is refused in the page, nothing sent
    await evaluate(`document.getElementById('new-bucket').value = 'x/y'; document.getElementById('create-form').requestSubmit(); true`);
    await until('bad bucket name refused', "/invalid bucket name/.test(document.getElementById('error').textContent)");
    ok('bucket name x/y refused in the page');

    // create a bucket through the form
    const nb = bucket + '-made';
    await evaluate(`document.getElementById('new-bucket').value = ${JSON.stringify(nb)};
                    document.getElementById('create-form').requestSubmit(); true`);
    await until('created bucket listed', `[...document.querySelectorAll('#bucket-rows a')].some((a) => a.textContent === ${JSON.stringify(nb)})`);
    ok('bucket created from the console');

    // the bucket: the hostile key shows as text, nothing ran
    await evaluate(`[...document.querySelectorAll('#bucket-rows a')].find((a) => a.textContent === ${JSON.stringify(bucket)}).click(); true`);
    await until('hostile key listed', `[...document.querySelectorAll('#object-rows td.key')].some((t) => t.textContent === ${JSON.stringify(HOSTILE)})`);
    if (await evaluate("document.querySelectorAll('#object-rows img').length") !== 0)
        fail('the hostile key became an <img> element');
    await new Promise((r) => setTimeout(r, 300));
    if (await evaluate('window.__pwned === 1'))
        fail('the hostile key ran script');
    ok('hostile key rendered as text, no element, no script');
    await shot('console-objects.png');

    // a hostile folder name: a link whose text is the name, and so is the breadcrumb inside it
    await until('hostile folder listed', "[...document.querySelectorAll('#object-rows a')].some((a) => a.textContent === '<b>bold<b>/')");
    await evaluate("[...document.querySelectorAll('#object-rows a')].find((a) => a.textContent === '<b>bold<b>/').click(); true");
    await until('inside the hostile folder', "[...document.querySelectorAll('#object-rows td.key')].some((t) => t.textContent === '<i>in<i>') && [...document.querySelectorAll('#crumbs a')].some((a) => a.textContent === '<b>bold<b>')");
    if (await evaluate("document.querySelectorAll('#objects b, #objects i').length") !== 0)
        fail('a hostile folder or key name became an element');
    ok('hostile folder and key inside it rendered as text, also in the breadcrumb');
    await evaluate(`[...document.querySelectorAll('#crumbs a')].find((a) => a.textContent === ${JSON.stringify(bucket)}).click(); true`);
    await until('back at the bucket', "[...document.querySelectorAll('#object-rows a')].some((a) => a.textContent === 'many/')");

    // a folder with more than a page of keys
    await evaluate(`[...document.querySelectorAll('#object-rows a')].find((a) => a.textContent === 'many/').click(); true`);
    await until('first page of many/', "document.querySelectorAll('#object-rows tr').length === 100 && !document.getElementById('next-page').disabled");
    await evaluate("document.getElementById('next-page').click(); true");
    await until('second page of many/', "document.querySelectorAll('#object-rows tr').length === 5 && document.getElementById('next-page').disabled");
    await evaluate("document.getElementById('prev-page').click(); true");
    await until('back to the first page', "document.querySelectorAll('#object-rows tr').length === 100");
    ok('paging: 100 + 5 keys under many/, back again');

    // uploads (one PUT, and a multipart one above 8 MiB) into the folder
    const doc = await send('DOM.getDocument');
    const input = await send('DOM.querySelector', {nodeId: doc.root.nodeId, selector: '#upload-file'});
    for (const f of [small, big]) {
        await send('DOM.setFileInputFiles', {nodeId: input.nodeId, files: [f]});
        await evaluate("document.getElementById('upload-form').requestSubmit(); true");
        const name = JSON.stringify(path.basename(f));
        await until('upload of ' + f, `[...document.querySelectorAll('#object-rows td.key')].some((t) => t.textContent === ${name})`, 30000);
        ok('uploaded ' + path.basename(f) + ' (' + fs.statSync(f).size + ' bytes)');
    }

    // download: the page's signed GET of the hostile key returns its body
    // plain: without Web Crypto (a page over plain http on a LAN), the plain JavaScript hashes
    const signedGet = (plain) => evaluate(`(async () => {
        const saved = CairnSig.subtle;
        if (${plain})
            CairnSig.subtle = null;
        try {
            const p = '/' + ${JSON.stringify(bucket)} + '/' + ${JSON.stringify(HOSTILE)};
            const a = await CairnSig.sign({method: 'GET', host: location.host, path: p, payloadHash: CairnSig.EMPTY_SHA256},
                                          {accessKey: ${ak}, secretKey: ${sk}, region: 'us-east-1', service: 's3'});
            const r = await fetch(CairnSig.uriEncode(p, true), {headers: {Authorization: a.authorization,
                'x-amz-date': a['x-amz-date'], 'x-amz-content-sha256': a['x-amz-content-sha256']}});
            return r.status + ' ' + await r.text();
        } finally {
            CairnSig.subtle = saved;
        }
    })()`);
    for (const plain of [false, true]) {
        const body = await signedGet(plain);
        if (body !== '200 hostile body')
            fail('signed GET of the hostile key' + (plain ? ' without Web Crypto: ' : ': ') + body);
    }
    ok('signed GET from the page, with and without Web Crypto');

    // delete one key of the folder through its button
    await evaluate('window.confirm = () => true; true');
    await evaluate(`[...document.querySelectorAll('#object-rows tr')].find((tr) => tr.cells[0].textContent === 'k000')
                    .querySelectorAll('button')[1].click(); true`);
    await until('k000 gone', "![...document.querySelectorAll('#object-rows td.key')].some((t) => t.textContent === 'k000') && document.querySelectorAll('#object-rows tr').length > 0");
    ok('deleted k000 from the console');

    // cluster page: drives, scrub, graphs (two polls for the rates)
    await evaluate("document.getElementById('nav-cluster').click(); true");
    await until('drives shown', "document.querySelectorAll('#drive-rows tr').length > 0 && document.querySelectorAll('#graphs svg').length >= 2");
    const health = await evaluate("document.getElementById('health').textContent");
    if (!/^ready/.test(health))
        fail('health line: ' + health);
    await until('request graphs', "document.querySelectorAll('#graphs svg polyline[points*=\" \"]').length >= 3", 15000);
    ok('cluster page: ' + health);
    await evaluate("document.getElementById('scrub-start').click(); true");
    await until('a scrub pass done', "/ [1-9][0-9]* passes/.test(document.getElementById('scrub').textContent)", 20000);
    ok('scrub pass started from the console and finished');
    await shot('console-cluster.png');

    const csp = problems.filter((p) => /Content Security Policy|Refused/.test(p));
    if (csp.length)
        fail('CSP violations: ' + csp.join(' | '));
    const errs = problems.filter((p) => !/favicon/.test(p));
    if (errs.length)
        fail('page errors: ' + errs.join(' | '));
    ok('no CSP violation, no page error');
    ws.close();
}

main().then(() => process.exit(0), (e) => fail(e && e.stack || String(e)));
