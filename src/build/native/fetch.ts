/**
 * ADD of an http(s) URL: fetched with the registry room's HTTP client (TLS verified, redirects
 * followed by hand, https→http refused, retries on resets), hashed while it is written, checked
 * against `--checksum`, saved as the URL's base name with mode 0600 as docker does.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../../errors.js';
import { Transport } from '../../registry/http.js';

export interface Fetched {
  path: string;
  name: string;
  digest: string;
}

/** Download `url` into `dir`; `checksum` is `sha256:<hex>`. */
export async function fetchUrl(url: string, dir: string, opts: { checksum?: string; signal?: AbortSignal } = {}): Promise<Fetched> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BerthError('UNSUPPORTED', `ADD ${url}: only http and https URLs can be fetched`);
  if (opts.checksum !== undefined && !/^sha256:[0-9a-f]{64}$/.test(opts.checksum)) {
    throw new BerthError('INVALID_ARGUMENT', `--checksum=${opts.checksum} is not a sha256 digest`, { hint: 'give sha256:<64 hex digits>' });
  }
  const name = posix.basename(u.pathname) || '__unnamed__';
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const transport = new Transport({ insecureRegistries: [u.host] });
  try {
    const res = await transport.request(u.host, { method: 'GET', url, what: `ADD ${url}`, noAuth: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (res.status !== 200) {
      await res.body.dump();
      throw new BerthError(res.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', `ADD ${url}: the server answered ${res.status}`);
    }
    const h = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _e, cb) {
        h.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(res.body, tap, createWriteStream(path, { mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
    const digest = `sha256:${h.digest('hex')}`;
    if (opts.checksum !== undefined && digest !== opts.checksum) {
      throw new BerthError('DIGEST_MISMATCH', `ADD ${url}: content digest ${digest} does not match --checksum ${opts.checksum}`);
    }
    const lm = res.header('last-modified');
    const t = lm ? new Date(lm) : undefined;
    if (t && !Number.isNaN(t.getTime())) await utimes(path, t, t);
    return { path, name, digest };
  } finally {
    await transport.close();
  }
}
