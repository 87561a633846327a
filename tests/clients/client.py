#!/usr/bin/python3
"""A real Python HTTP client fetching URLs in order, for integration_clients.

usage: client.py LIBRARY USER-AGENT URL...
LIBRARY: http.client, urllib, requests, urllib3, httpx or aiohttp.
USER-AGENT: '-' keeps the library's default (http.client sends none).
Where the library keeps connections alive (all but urllib), the URLs go over
one connection as far as the library reuses it. For each URL one line:
'STATUS LENGTH SHA256' of what the library returned as the answer, or
'ERROR NAME' when it raised. Exit status 0 unless the arguments are wrong.
"""
import hashlib
import sys
import urllib.parse

TIMEOUT = 30


def line(status, body):
    return "%d %d %s" % (status, len(body), hashlib.sha256(body).hexdigest())


def headers_for(ua):
    return {} if ua == "-" else {"User-Agent": ua}


def run_http_client(ua, urls):
    import http.client
    u = urllib.parse.urlsplit(urls[0])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
    for url in urls:
        p = urllib.parse.urlsplit(url)
        path = p.path + ("?" + p.query if p.query else "")
        try:
            conn.request("GET", path, headers=headers_for(ua))
            r = conn.getresponse()
            yield line(r.status, r.read())
        except Exception as e:  # the answer of this URL is what is being tested
            yield "ERROR " + type(e).__name__
            conn.close()


def run_urllib(ua, urls):
    import urllib.error
    import urllib.request
    for url in urls:
        try:
            req = urllib.request.Request(url, headers=headers_for(ua))
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                yield line(r.status, r.read())
        except urllib.error.HTTPError as e:
            yield line(e.code, e.read())
        except Exception as e:
            yield "ERROR " + type(e).__name__


def run_requests(ua, urls):
    import requests
    s = requests.Session()
    for url in urls:
        try:
            r = s.get(url, headers=headers_for(ua), timeout=TIMEOUT)
            yield line(r.status_code, r.content)
        except Exception as e:
            yield "ERROR " + type(e).__name__


def run_urllib3(ua, urls):
    import urllib3
    pool = urllib3.PoolManager(timeout=TIMEOUT, retries=False)
    for url in urls:
        try:
            r = pool.request("GET", url, headers=headers_for(ua))
            yield line(r.status, r.data)
        except Exception as e:
            yield "ERROR " + type(e).__name__


def run_httpx(ua, urls):
    import httpx
    with httpx.Client(timeout=TIMEOUT) as c:
        for url in urls:
            try:
                r = c.get(url, headers=headers_for(ua))
                yield line(r.status_code, r.content)
            except Exception as e:
                yield "ERROR " + type(e).__name__


def run_aiohttp(ua, urls):
    import asyncio
    import aiohttp

    async def main():
        out = []
        t = aiohttp.ClientTimeout(total=TIMEOUT)
        async with aiohttp.ClientSession(timeout=t) as s:
            for url in urls:
                try:
                    async with s.get(url, headers=headers_for(ua)) as r:
                        out.append(line(r.status, await r.read()))
                except Exception as e:
                    out.append("ERROR " + type(e).__name__)
        return out

    return asyncio.run(main())


LIBRARIES = {
    "http.client": run_http_client,
    "urllib": run_urllib,
    "requests": run_requests,
    "urllib3": run_urllib3,
    "httpx": run_httpx,
    "aiohttp": run_aiohttp,
}

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in LIBRARIES:
        sys.stderr.write(__doc__)
        sys.exit(2)
    for out in LIBRARIES[sys.argv[1]](sys.argv[2], sys.argv[3:]):
        print(out, flush=True)
