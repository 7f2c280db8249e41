#!/usr/bin/env node
/**
 * A stand-in `buildkitd` for the private-daemon tests: checks the flags berth starts it with
 * (--root DIR, --addr unix://PATH, OCI worker on, containerd worker off), then answers
 * connections on that socket until SIGTERM.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';

const a = process.argv.slice(2);
const val = (f) => a[a.indexOf(f) + 1];
if (!a.includes('--root') || !existsSync(val('--root'))) { console.error('buildkitd: --root DIR is required'); process.exit(1); }
const addr = val('--addr') ?? '';
if (!addr.startsWith('unix://')) { console.error(`buildkitd: unsupported --addr ${addr}`); process.exit(1); }
if (!a.includes('--oci-worker=true') || !a.includes('--containerd-worker=false')) { console.error('buildkitd: expected the OCI worker only'); process.exit(1); }
const path = addr.slice(7);
const srv = createServer((s) => s.end()).listen(path, () => console.error(`running server on ${path}`));
const stop = () => srv.close(() => { try { unlinkSync(path); } catch {} process.exit(0); });
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
