/*
 * app.js - the cairn web console (docs/console.md), plain JavaScript without a framework.
 *
 * Every request is signed in this page with SigV4 (sigv4.js) using the keys typed at sign-in;
 * the keys live in memory, or in sessionStorage when the user asks, and are never sent. Names
 * from the server (buckets, keys, drive folders) are put in the page with textContent only,
 * never as HTML, so a key like "<img src=x onerror=...>" shows as text. No inline script or
 * style: the server's Content-Security-Policy forbids them.
 */
(function () {
    'use strict';

    var PAGE = 100;                     /* keys per listing page */
    var PART = 8 * 1024 * 1024;         /* multipart part size; smaller files are one PUT */
    var POLL_MS = 5000, HISTORY = 60;   /* cluster page refresh and sparkline length */
    var STORE = 'cairn-console-creds';

    var creds = null;
    var view = {bucket: '', prefix: '', tokens: [''], page: 0, next: null};
    var timer = null, series = {}, lastMetrics = null;

    function $(id) { return document.getElementById(id); }

    function el(tag, text, cls) {
        var e = document.createElement(tag);
        if (text != null)
            e.textContent = String(text);
        if (cls)
            e.className = cls;
        return e;
    }

    function row(cells) {
        var tr = document.createElement('tr');
        cells.forEach(function (c) {
            var td = c instanceof Node ? c : el('td', c);
            if (c instanceof Node && c.tagName !== 'TD' && c.tagName !== 'TH') {
                td = el('td');
                td.appendChild(c);
            }
            tr.appendChild(td);
        });
        return tr;
    }

    function link(text, fn) {
        var a = el('a', text);
        a.href = '#';
        a.addEventListener('click', function (ev) { ev.preventDefault(); fn(); });
        return a;
    }

    function button(text, fn) {
        var b = el('button', text);
        b.type = 'button';
        b.addEventListener('click', fn);
        return b;
    }

    function clear(node) {
        while (node.firstChild)
            node.removeChild(node.firstChild);
    }

    function showError(msg) {
        var e = $('error');
        e.textContent = msg || '';
        e.hidden = !msg;
    }

    function fmtBytes(n) {
        var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], i = 0;
        n = Number(n) || 0;
        while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
        return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
    }

    function fmtTime(ms) {
        return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : 'never';
    }

    /* ---- signed requests ---- */

    /* Sign and send: path is decoded ("/bucket/key"); body a string or an ArrayBuffer (a file or
     * a part read by the caller), hashed for x-amz-content-sha256. Resolves with the Response;
     * rejects with the S3 or admin error's code and message. */
    function request(method, path, query, body, headers) {
        var data = body == null ? '' : body;
        return CairnSig.sha256Hex(data).then(function (hash) {
            return CairnSig.sign({method: method, host: location.host, path: path, query: query,
                                  headers: headers || {}, payloadHash: hash}, creds);
        }).then(function (auth) {
            var h = Object.assign({}, headers || {});
            h.Authorization = auth.authorization;
            h['x-amz-date'] = auth['x-amz-date'];
            h['x-amz-content-sha256'] = auth['x-amz-content-sha256'];
            var qs = CairnSig.canonicalQuery(query);
            var url = CairnSig.uriEncode(path, true) + (qs ? '?' + qs : '');
            return fetch(url, {method: method, headers: h, body: method === 'GET' || method === 'HEAD' ? undefined : data,
                               credentials: 'omit', cache: 'no-store'});
        }).then(function (resp) {
            if (resp.ok)
                return resp;
            return resp.text().then(function (t) {
                var m = /<Code>([^<]*)<\/Code>(?:[\s\S]*?<Message>([^<]*)<\/Message>)?/.exec(t);
                var j = null;
                try { j = JSON.parse(t); } catch (e) { j = null; }
                var what = m ? m[1] + (m[2] ? ': ' + m[2] : '') : j && j.error ? j.error + ': ' + j.message : t.slice(0, 200);
                throw new Error(method + ' ' + path + ': HTTP ' + resp.status + ' ' + what);
            });
        });
    }

    function xml(resp) {
        return resp.text().then(function (t) {
            return new DOMParser().parseFromString(t, 'application/xml');
        });
    }

    function child(node, name) {
        var c = node.getElementsByTagName(name)[0];
        return c ? c.textContent : '';
    }

    /* ---- sign in ---- */

    function signIn(c) {
        creds = c;
        return request('GET', '/', null).then(function () {
            if ($('remember').checked || sessionStorage.getItem(STORE))
                sessionStorage.setItem(STORE, JSON.stringify({accessKey: c.accessKey, secretKey: c.secretKey, region: c.region}));
            $('signin').hidden = true;
            $('nav').hidden = false;
            $('who').textContent = c.accessKey;
            showError('');
            showBuckets();
        }).catch(function (e) {
            creds = null;
            showError('sign-in failed: ' + e.message);
        });
    }

    function signOut() {
        creds = null;
        sessionStorage.removeItem(STORE);
        stopPolling();
        ['buckets', 'objects', 'cluster'].forEach(function (s) { $(s).hidden = true; });
        $('nav').hidden = true;
        $('signin').hidden = false;
        $('sk').value = '';
    }

    function showOnly(id) {
        ['signin', 'buckets', 'objects', 'cluster'].forEach(function (s) { $(s).hidden = s !== id; });
        if (id !== 'cluster')
            stopPolling();
    }

    /* ---- buckets ---- */

    function showBuckets() {
        showOnly('buckets');
        return request('GET', '/', null).then(xml).then(function (doc) {
            var rows = $('bucket-rows');
            clear(rows);
            Array.prototype.forEach.call(doc.getElementsByTagName('Bucket'), function (b) {
                var name = child(b, 'Name');
                var td = el('td', null, 'name');
                td.appendChild(link(name, function () { openBucket(name, ''); }));
                rows.appendChild(row([td, child(b, 'CreationDate')]));
            });
        }).catch(function (e) { showError(e.message); });
    }

    function createBucket(name) {
        /* S3's rules, checked here too: a '/' or '?' would make the PUT address something else */
        if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) {
            showError('invalid bucket name: 3-63 characters of a-z, 0-9, "." and "-", starting and ending with a letter or digit');
            return Promise.resolve();
        }
        return request('PUT', '/' + name, null).then(function () {
            $('new-bucket').value = '';
            showError('');
            return showBuckets();
        }).catch(function (e) { showError(e.message); });
    }

    /* ---- objects ---- */

    function openBucket(bucket, prefix) {
        view = {bucket: bucket, prefix: prefix, tokens: [''], page: 0, next: null};
        showOnly('objects');
        return listPage();
    }

    function crumbs() {
        var h = $('crumbs');
        clear(h);
        h.appendChild(link('buckets', showBuckets));
        h.appendChild(document.createTextNode(' / '));
        h.appendChild(link(view.bucket, function () { openBucket(view.bucket, ''); }));
        var parts = view.prefix.split('/').filter(function (p, i, a) { return i < a.length - 1; });
        var acc = '';
        parts.forEach(function (p) {
            acc += p + '/';
            var to = acc;
            h.appendChild(document.createTextNode(' / '));
            h.appendChild(link(p, function () { openBucket(view.bucket, to); }));
        });
    }

    function listPage() {
        var q = [['list-type', '2'], ['delimiter', '/'], ['max-keys', String(PAGE)], ['prefix', view.prefix]];
        if (view.tokens[view.page])
            q.push(['continuation-token', view.tokens[view.page]]);
        crumbs();
        return request('GET', '/' + view.bucket, q).then(xml).then(function (doc) {
            var rows = $('object-rows');
            clear(rows);
            Array.prototype.forEach.call(doc.getElementsByTagName('CommonPrefixes'), function (p) {
                var pre = child(p, 'Prefix');
                var td = el('td', null, 'key');
                td.appendChild(link(pre.slice(view.prefix.length), function () { openBucket(view.bucket, pre); }));
                rows.appendChild(row([td, '', '', '']));
            });
            Array.prototype.forEach.call(doc.getElementsByTagName('Contents'), function (c) {
                var key = child(c, 'Key');
                var size = el('td', fmtBytes(child(c, 'Size')), 'num');
                var ops = el('td');
                ops.appendChild(button('Download', function () { download(key); }));
                ops.appendChild(button('Delete', function () { remove(key); }));
                rows.appendChild(row([el('td', key.slice(view.prefix.length), 'key'), size,
                                      child(c, 'LastModified'), ops]));
            });
            var truncated = child(doc.documentElement, 'IsTruncated') === 'true';
            view.next = truncated ? child(doc.documentElement, 'NextContinuationToken') : null;
            $('next-page').disabled = !view.next;
            $('prev-page').disabled = view.page === 0;
            $('page-info').textContent = 'page ' + (view.page + 1);
        }).catch(function (e) { showError(e.message); });
    }

    function nextPage() {
        if (!view.next)
            return;
        view.tokens[view.page + 1] = view.next;
        view.page++;
        listPage();
    }

    function prevPage() {
        if (view.page > 0) {
            view.page--;
            listPage();
        }
    }

    function download(key) {
        return request('GET', '/' + view.bucket + '/' + key, null).then(function (r) { return r.blob(); })
            .then(function (blob) {
                var a = document.createElement('a');
                a.href = URL.createObjectURL(blob);
                a.download = key.split('/').pop() || 'download';
                document.body.appendChild(a);
                a.click();
                a.remove();
                setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
            }).catch(function (e) { showError(e.message); });
    }

    function remove(key) {
        if (!window.confirm('Delete ' + key + '?'))
            return;
        request('DELETE', '/' + view.bucket + '/' + key, null).then(listPage)
            .catch(function (e) { showError(e.message); });
    }

    function progress(text) { $('upload-progress').textContent = text; }

    /* One PUT up to PART bytes; above, a multipart upload of PART-sized parts, one at a time so
     * the page holds one part in memory. */
    function upload(file) {
        var path = '/' + view.bucket + '/' + view.prefix + file.name;
        var type = {'Content-Type': file.type || 'application/octet-stream'};
        if (file.size <= PART) {
            progress('uploading ' + file.name);
            return file.arrayBuffer().then(function (buf) { return request('PUT', path, null, buf, type); })
                .then(function () { progress('uploaded ' + file.name); return listPage(); });
        }
        var id, etags = [], n = Math.ceil(file.size / PART);
        function part(i) {
            if (i > n)
                return Promise.resolve();
            progress('uploading ' + file.name + ': part ' + i + ' of ' + n);
            return file.slice((i - 1) * PART, Math.min(i * PART, file.size)).arrayBuffer().then(function (buf) {
                return request('PUT', path, [['partNumber', String(i)], ['uploadId', id]], buf);
            }).then(function (r) {
                etags.push(r.headers.get('ETag'));
                return part(i + 1);
            });
        }
        return request('POST', path, [['uploads', '']], null, type).then(xml).then(function (doc) {
            id = child(doc.documentElement, 'UploadId');
            return part(1);
        }).then(function () {
            var body = '<CompleteMultipartUpload>' + etags.map(function (e, i) {
                return '<Part><PartNumber>' + (i + 1) + '</PartNumber><ETag>' +
                       String(e).replace(/&/g, '&amp;').replace(/</g, '&lt;') + '</ETag></Part>';
            }).join('') + '</CompleteMultipartUpload>';
            return request('POST', path, [['uploadId', id]], body);
        }).then(function () {
            progress('uploaded ' + file.name);
            return listPage();
        }, function (e) {
            if (id)
                request('DELETE', path, [['uploadId', id]]).catch(function () {});
            throw e;
        });
    }

    /* ---- cluster ---- */

    function stopPolling() {
        if (timer)
            clearInterval(timer);
        timer = null;
    }

    function showCluster() {
        showOnly('cluster');
        stopPolling();
        refreshCluster();
        timer = setInterval(refreshCluster, POLL_MS);
    }

    function record(name, value) {
        var s = series[name] || (series[name] = []);
        s.push(Number(value) || 0);
        if (s.length > HISTORY)
            s.shift();
    }

    /* A small SVG sparkline of series[name], with its last value. */
    function sparkline(name, unit) {
        var s = series[name] || [], w = 180, h = 40;
        var box = el('div', null, 'graph');
        var last = s.length ? s[s.length - 1] : 0;
        box.appendChild(el('div', name + ': ' + (unit === 'B' ? fmtBytes(last) : unit === 'B/s' ? fmtBytes(last) + '/s' : last.toFixed(unit ? 1 : 0) + (unit ? ' ' + unit : '')), 'label'));
        var ns = 'http://www.w3.org/2000/svg';
        var svg = document.createElementNS(ns, 'svg');
        svg.setAttribute('width', w);
        svg.setAttribute('height', h);
        var max = Math.max.apply(null, s.concat([1])), min = Math.min.apply(null, s.concat([0]));
        var pts = s.map(function (v, i) {
            var x = s.length > 1 ? i * (w - 2) / (s.length - 1) + 1 : 1;
            var y = h - 2 - (v - min) / (max - min || 1) * (h - 4);
            return x.toFixed(1) + ',' + y.toFixed(1);
        });
        var line = document.createElementNS(ns, 'polyline');
        line.setAttribute('points', pts.join(' '));
        svg.appendChild(line);
        box.appendChild(svg);
        return box;
    }

    /* Sum of the samples of one metric in a Prometheus text page. */
    function metricSum(text, name) {
        var sum = 0, re = new RegExp('^' + name + '(?:\\{[^}]*\\})? ([0-9.eE+-]+)$', 'gm'), m;
        while ((m = re.exec(text)))
            sum += Number(m[1]);
        return sum;
    }

    function bar(done, total) {
        var b = el('span', null, 'bar'), f = el('span');
        f.style.width = (total > 0 ? Math.min(100, done * 100 / total) : 0) + '%';
        b.appendChild(f);
        return b;
    }

    function refreshCluster() {
        var status = request('GET', '/admin/status', null).then(function (r) { return r.json(); });
        var drives = request('GET', '/admin/drives', null).then(function (r) { return r.json(); });
        var metrics = fetch('/metrics', {credentials: 'omit', cache: 'no-store'})
            .then(function (r) { return r.ok ? r.text() : null; }).catch(function () { return null; });
        return Promise.all([status, drives, metrics]).then(function (a) {
            var st = a[0], dr = a[1], mt = a[2];
            showError('');
            var hl = $('health');
            clear(hl);
            hl.appendChild(el('span', st.ready ? 'ready' : 'not ready', st.ready ? 'ok' : 'bad'));
            hl.appendChild(document.createTextNode('; erasure ' + (st.erasure || '?') + '; ' + st.drives_online + '/' +
                                                   st.drives_total + ' drives online; metadata ' + (st.meta ? st.meta.copies_healthy + '/' + st.meta.copies + ' copies healthy' : '?') +
                                                   (st.cluster ? '; cluster node' : '; single node')));
            var rows = $('drive-rows');
            clear(rows);
            var used = 0;
            (dr.drives || []).forEach(function (d) {
                used += d.used_bytes || 0;
                var state = el('td', d.state, d.online ? 'ok' : 'bad');
                rows.appendChild(row([String(d.drive), state, el('td', fmtBytes(d.used_bytes), 'num'),
                                      el('td', fmtBytes(d.fs_free_bytes), 'num'), el('td', d.blobs, 'num'),
                                      el('td', d.checksum_failures, 'num'), el('td', d.dir, 'name')]));
            });
            var sc = st.scrub || {}, p = sc.pass || {};
            var sd = $('scrub');
            clear(sd);
            sd.appendChild(el('div', (sc.running ? 'running: ' : 'idle; last pass ended ' + fmtTime(sc.last_end_ms) + '; ') +
                                     sc.passes + ' passes, ' + fmtBytes(sc.bytes_verified) + ' verified, ' +
                                     sc.damaged_found + ' damaged found, ' + sc.repaired + ' repaired, ' + sc.repair_failed + ' failed'));
            if (sc.running) {
                sd.appendChild(bar(p.bytes, p.bytes_estimate));
                sd.appendChild(document.createTextNode(' ' + fmtBytes(p.bytes) + ' of ~' + fmtBytes(p.bytes_estimate)));
            }
            var rd = $('repair');
            clear(rd);
            var rp = st.repair;
            if (!rp) {
                rd.textContent = 'no repair on a single node (a scrub pass repairs)';
            } else {
                rd.appendChild(el('div', (rp.running ? 'running' : 'idle') + '; ' + rp.passes + ' passes; ' +
                                         rp.degraded + ' degraded, ' + rp.healed + ' healed, ' + rp.failed + ' failed; ' +
                                         (Number(rp.mbps) || 0).toFixed(1) + ' MB/s' + (rp.running ? ', ETA ' + Math.round(rp.eta_s) + ' s' : '') +
                                         (rp.reason ? ' (' + rp.reason + ')' : '')));
                if (rp.running) {
                    rd.appendChild(bar(rp.scanned, rp.records));
                    rd.appendChild(document.createTextNode(' ' + rp.scanned + ' of ' + rp.records + ' records'));
                }
                record('repair healed', rp.healed);
            }
            var nd = $('nodes');
            clear(nd);
            var nodes = st.cluster && st.cluster.nodes;
            if (Array.isArray(nodes)) {
                var t = el('table');
                t.appendChild(row(['Node', 'AZ', 'Address', 'Layout', 'Drives', 'Live', 'Last seen'].map(function (h) { return el('th', h); })));
                nodes.forEach(function (n) {
                    t.appendChild(row([String(n.id), String(n.az || ''), el('td', n.addr || '', 'name'), String(n.layout_state || ''),
                                       String(n.drives == null ? '' : n.drives),
                                       el('td', n.live ? 'up' : 'down', n.live ? 'ok' : 'bad'), fmtTime(n.last_seen_ms)]));
                });
                nd.appendChild(t);
            } else {
                nd.textContent = st.cluster ? JSON.stringify(st.cluster) : 'single node';
            }
            record('used', used);
            record('scrub verified', sc.bytes_verified);
            var now = Date.now();
            if (mt) {
                var m = {t: now, req: metricSum(mt, 'cairn_requests_total'),
                         rx: metricSum(mt, 'cairn_received_bytes_total'), tx: metricSum(mt, 'cairn_sent_bytes_total')};
                if (lastMetrics) {
                    var dt = (m.t - lastMetrics.t) / 1000 || 1;
                    record('requests/s', (m.req - lastMetrics.req) / dt);
                    record('in', (m.rx - lastMetrics.rx) / dt);
                    record('out', (m.tx - lastMetrics.tx) / dt);
                }
                lastMetrics = m;
                record('connections', metricSum(mt, 'cairn_connections_open'));
            }
            var g = $('graphs');
            clear(g);
            g.appendChild(sparkline('used', 'B'));
            g.appendChild(sparkline('scrub verified', 'B'));
            if (rp)
                g.appendChild(sparkline('repair healed', ''));
            if (mt) {
                g.appendChild(sparkline('requests/s', '/s'));
                g.appendChild(sparkline('in', 'B/s'));
                g.appendChild(sparkline('out', 'B/s'));
                g.appendChild(sparkline('connections', ''));
            } else {
                g.appendChild(el('p', '/metrics is not readable from this address ([metrics] allow / token): request graphs hidden', 'note'));
            }
        }).catch(function (e) { showError(e.message); });
    }

    function startScrub() {
        request('POST', '/admin/scrub', null).then(refreshCluster)
            .catch(function (e) { showError(e.message); });
    }

    /* ---- wiring ---- */

    function init() {
        $('signin-form').addEventListener('submit', function (ev) {
            ev.preventDefault();
            signIn({accessKey: $('ak').value.trim(), secretKey: $('sk').value,
                    region: $('region').value.trim() || 'us-east-1', service: 's3'});
        });
        $('create-form').addEventListener('submit', function (ev) {
            ev.preventDefault();
            createBucket($('new-bucket').value.trim());
        });
        $('upload-form').addEventListener('submit', function (ev) {
            ev.preventDefault();
            var f = $('upload-file').files[0];
            if (f)
                upload(f).catch(function (e) { progress(''); showError(e.message); });
        });
        $('nav-buckets').addEventListener('click', showBuckets);
        $('nav-cluster').addEventListener('click', showCluster);
        $('signout').addEventListener('click', signOut);
        $('scrub-start').addEventListener('click', startScrub);
        $('next-page').addEventListener('click', nextPage);
        $('prev-page').addEventListener('click', prevPage);
        var saved = sessionStorage.getItem(STORE);
        if (saved) {
            try {
                var c = JSON.parse(saved);
                c.service = 's3';
                signIn(c);
            } catch (e) {
                sessionStorage.removeItem(STORE);
            }
        }
    }

    if (document.readyState === 'loading')
        document.addEventListener('DOMContentLoaded', init);
    else
        init();
})();
