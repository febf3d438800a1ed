-- wrk_s3.lua: requests over a list of presigned targets, for bench/run.sh and bench/cluster.sh.
--
-- Environment: WRK_PATHS (file of targets, one per line, from bench/presign.py; unset or empty:
-- the URL given to wrk, as for nginx), WRK_METHOD (GET
-- or PUT), WRK_BODY (PUT body size in bytes), WRK_ORDER ("seq": thread t of T walks targets t,
-- t+T, t+2T, ... so threads never write the same key at once, as `cairn bench` walks PUT keys;
-- "random": uniform picks, as `cairn bench` picks GET keys). Each thread keeps its own copy.
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
end

function init(args)
    paths = {}
    local file = os.getenv("WRK_PATHS") or ""
    if file ~= "" then
        for line in io.lines(file) do
            paths[#paths + 1] = line
        end
    end
    method = os.getenv("WRK_METHOD") or "GET"
    order = os.getenv("WRK_ORDER") or "random"
    local n = tonumber(os.getenv("WRK_BODY") or "0")
    body = nil
    if n > 0 then
        body = string.rep("x", n)
    end
    nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
    nextidx = tid
    math.randomseed(1234 + tid)
end

function request()
    if #paths == 0 then -- no list: the URL's own path (nginx)
        return wrk.format(method, nil, nil, body)
    end
    local p
    if order == "seq" then
        p = paths[(nextidx % #paths) + 1]
        nextidx = nextidx + nthreads
    else
        p = paths[math.random(#paths)]
    end
    return wrk.format(method, p, nil, body)
end

-- One JSON line after wrk's own report, for bench/summarize.py.
function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        'WRKJSON {"requests": %d, "seconds": %.6f, "bytes": %d, "ops_per_s": %.3f, ' ..
        '"mb_per_s": %.3f, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
        '"timeout": %d}, "latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "p99_9": %.3f, ' ..
        '"max": %.3f}}\n',
        summary.requests, secs, summary.bytes, summary.requests / secs,
        summary.bytes / secs / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
        latency:percentile(99.9) / 1e3, latency.max / 1e3))
end
