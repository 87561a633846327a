// A real Node.js HTTP client fetching URLs in order, for integration_clients.
//
// usage: node client.mjs LIBRARY USER-AGENT URL...
// LIBRARY: http (the http module, a keep-alive agent) or fetch (undici).
// USER-AGENT: '-' keeps the library's default (http sends none, fetch "node").
// For each URL one line: 'STATUS LENGTH SHA256' of what the library returned
// as the answer, or 'ERROR NAME' when it failed.
import { createHash } from 'node:crypto';
import http from 'node:http';

const TIMEOUT_MS = 30000;
const [lib, ua, ...urls] = process.argv.slice(2);

function line(status, body) {
  return `${status} ${body.length} ${createHash('sha256').update(body).digest('hex')}`;
}

function headersFor() {
  return ua === '-' ? {} : { 'User-Agent': ua };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function getHttp(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: headersFor(), timeout: TIMEOUT_MS }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(line(res.statusCode, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function getFetch(url) {
  const r = await fetch(url, { headers: headersFor(), signal: AbortSignal.timeout(TIMEOUT_MS) });
  return line(r.status, Buffer.from(await r.arrayBuffer()));
}

if ((lib !== 'http' && lib !== 'fetch') || !ua || urls.length === 0) {
  process.stderr.write('usage: node client.mjs http|fetch USER-AGENT URL...\n');
  process.exit(2);
}
for (const url of urls) {
  try {
    console.log(await (lib === 'http' ? getHttp(url) : getFetch(url)));
  } catch (e) {
    console.log(`ERROR ${e.name}`);
  }
}
agent.destroy();
