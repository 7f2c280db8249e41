#!/usr/bin/env node
/**
 * A stand-in `buildctl` for tests: it checks the arguments berth gives it the way buildctl would
 * (known flags, existing local dirs and Dockerfile, named contexts that resolve in the OCI layout,
 * outputs) and replays real recordings of BuildKit (test/fixtures/buildkit-samples, recorded from
 * v0.32.2, v0.24.0 and v0.11.6): progress on stderr, the OCI/docker tar on stdout or in dest, the
 * metadata file, the error reports.
 *
 * Environment:
 *   STANDIN_SCENARIO  nocache (default) | cached | run-fails | parse-error | copy-missing |
 *                     missing-image | lint-warnings | die (daemon dies mid-build) | hang (until killed) |
 *                     corrupt (a damaged OCI tar on stdout)
 *   STANDIN_VERSION   the version to claim (default v0.32.2); picks the recordings' version
 *   STANDIN_LOG       append each invocation's argv here as one JSON line
 * The daemon address (--addr, else BUILDKIT_HOST, else unix:///run/buildkit/buildkitd.sock) must
 * accept a connection (a unix socket or tcp host:port), as with the real buildctl.
 */
import { appendFileSync, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SAMPLES = process.env.STANDIN_SAMPLES ?? fileURLToPath(new URL('../fixtures/buildkit-samples/', import.meta.url));
const VERSION = process.env.STANDIN_VERSION ?? 'v0.32.2';
const SCENARIO = process.env.STANDIN_SCENARIO ?? 'nocache';
const argv = process.argv.slice(2);
if (process.env.STANDIN_LOG) appendFileSync(process.env.STANDIN_LOG, JSON.stringify(argv) + '\n');
if (process.env.STANDIN_PIDFILE && argv.includes('build')) writeFileSync(process.env.STANDIN_PIDFILE, String(process.pid));

const sample = (name) => join(SAMPLES, name);
const fail = (msg, code = 1) => {
  process.stderr.write(`error: ${msg}\n`);
  process.exit(code);
};
/** The recording for this version, else the v0.32.2 one. */
function recording(kind, ext) {
  for (const v of [VERSION, 'v0.32.2', 'v0.24.0']) {
    const p = sample(`${v}-${kind}.${ext}`);
    if (existsSync(p)) return p;
  }
  return undefined;
}

// ---- global flags ----
const globals = {};
let i = 0;
const GLOBAL_VALUE = new Set(['--addr', '--tlsservername', '--tlscacert', '--tlscert', '--tlskey', '--tlsdir', '--timeout']);
for (; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--version' || a === '-v') {
    process.stdout.write(`buildctl github.com/moby/buildkit ${VERSION} 991535e0973488b6a429096d21fa13f81f2d89d8\n`);
    process.exit(0);
  }
  if (GLOBAL_VALUE.has(a)) {
    globals[a] = argv[++i];
    continue;
  }
  if (a.startsWith('-')) fail(`flag provided but not defined: ${a}`);
  break;
}
for (const f of ['--tlscacert', '--tlscert', '--tlskey']) if (globals[f] !== undefined && !existsSync(globals[f])) fail(`could not read ${globals[f]}: open ${globals[f]}: no such file or directory`);
const addr = globals['--addr'] ?? process.env.BUILDKIT_HOST ?? 'unix:///run/buildkit/buildkitd.sock';
const cmd = argv.slice(i);

async function reachable() {
  const m = /^(unix|tcp):\/\/(.*)$/.exec(addr);
  if (!m) {
    if (/^(docker-container|kube-pod|podman-container|nerdctl-container):\/\//.test(addr)) return `connection helper ${addr.split(':')[0]} is not available here`;
    return `unknown scheme in ${addr}`;
  }
  return new Promise((resolve) => {
    const opts = m[1] === 'unix' ? { path: m[2] } : { host: m[2].split(':')[0], port: Number(m[2].split(':')[1]) };
    const s = connect(opts);
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e) => resolve(`${m[1] === 'unix' ? `dial unix ${m[2]}` : `dial tcp ${m[2]}`}: connect: ${e.code === 'ENOENT' ? 'no such file or directory' : 'connection refused'}`));
  });
}
const dialError = (why) => `failed to list workers: Unavailable: connection error: desc = "transport: Error while dialing: ${why}"`;

if (cmd[0] === 'debug' && cmd[1] === 'workers') {
  const why = await reachable();
  if (why) fail(dialError(why));
  process.stdout.write('ID\t\t\t\tPLATFORMS\nstandin0\t\t\tlinux/amd64\n');
  process.exit(0);
}
if (cmd[0] !== 'build' && cmd[0] !== 'b') fail(`unknown command ${JSON.stringify(cmd[0])} for the stand-in`);

// ---- build flags, checked as buildctl checks them ----
const b = { local: {}, opt: [], output: [], secret: [], ssh: [], allow: [], importCache: [], exportCache: [], ociLayout: {} };
const VALUE = {
  '--frontend': (v) => (b.frontend = v),
  '--local': (v) => {
    const [k, d] = v.split(/=(.*)/s);
    b.local[k] = d;
  },
  '--opt': (v) => b.opt.push(v),
  '--output': (v) => b.output.push(v),
  '-o': (v) => b.output.push(v),
  '--progress': (v) => (b.progress = v),
  '--metadata-file': (v) => (b.metadataFile = v),
  '--secret': (v) => b.secret.push(v),
  '--ssh': (v) => b.ssh.push(v),
  '--allow': (v) => b.allow.push(v),
  '--import-cache': (v) => b.importCache.push(v),
  '--export-cache': (v) => b.exportCache.push(v),
  '--oci-layout': (v) => {
    const [k, d] = v.split(/=(.*)/s);
    b.ociLayout[k] = d;
  },
};
const BOOL = { '--no-cache': () => (b.noCache = true) };
for (let j = 1; j < cmd.length; j++) {
  const a = cmd[j];
  if (VALUE[a]) {
    if (j + 1 >= cmd.length) fail(`flag needs an argument: ${a}`);
    VALUE[a](cmd[++j]);
  } else if (BOOL[a]) BOOL[a]();
  else fail(`flag provided but not defined: ${a}`);
}
if (b.frontend !== 'dockerfile.v0') fail(`the stand-in replays dockerfile.v0 builds only, got --frontend ${b.frontend}`);
if (!['rawjson', 'plain', 'tty', 'auto', 'quiet'].includes(b.progress ?? 'auto')) fail(`invalid progress mode ${b.progress}`);
if (b.progress === 'rawjson' && VERSION.startsWith('v0.11')) fail(`invalid progress mode rawjson`);
for (const k of ['context', 'dockerfile']) {
  if (!b.local[k]) fail(`--local ${k}=DIR is required`);
  if (!existsSync(b.local[k]) || !statSync(b.local[k]).isDirectory()) fail(`${b.local[k]}: not a directory`);
}
const opts = Object.fromEntries(b.opt.map((o) => o.split(/=(.*)/s)));
const filename = opts.filename ?? 'Dockerfile';
if (!existsSync(join(b.local.dockerfile, filename))) fail(`failed to solve: failed to read dockerfile: open ${filename}: no such file or directory`);
for (const [k, v] of Object.entries(opts)) {
  if (!k.startsWith('context:')) continue;
  const m = /^oci-layout:\/\/([^@]+)@(sha256:[a-f0-9]{64})$/.exec(v);
  if (!m) fail(`invalid named context ${k}=${v}`);
  const dir = b.ociLayout[m[1]];
  if (!dir) fail(`oci-layout store ${m[1]} was not given with --oci-layout`);
  if (!existsSync(join(dir, 'index.json')) || !existsSync(join(dir, 'blobs', 'sha256', m[2].slice(7)))) fail(`failed to solve: ${m[2]}: not found in OCI layout ${dir}`);
}
for (const s of b.secret) {
  const f = Object.fromEntries(s.split(',').map((x) => x.split(/=(.*)/s)));
  if (!f.id) fail(`failed to parse secret: id is required`);
  if (f.src && !existsSync(f.src)) fail(`failed to parse secret: open ${f.src}: no such file or directory`);
  if (f.env && process.env[f.env] === undefined) fail(`failed to parse secret: env ${f.env} is not set`);
}
if (b.output.length === 0) fail('an --output is required by the stand-in');

const why = await reachable();
if (why) fail(dialError(why).replace('failed to list workers', 'failed to get status'));

// ---- replay ----
const kind = b.progress === 'rawjson' ? 'rawjson' : 'plain';
const ext = kind === 'rawjson' ? 'jsonl' : 'txt';
const SUCCESS = new Set(['nocache', 'cached', 'lint-warnings']);
const scenario = SCENARIO === 'die' || SCENARIO === 'hang' || SCENARIO === 'corrupt' ? 'nocache' : SCENARIO;
const progressFile = recording(`${kind}-${scenario}`, ext) ?? recording(`plain-${scenario}`, 'txt');
if (!progressFile) fail(`the stand-in has no recording for ${scenario}`);
const progress = readFileSync(progressFile, 'utf8').split('\n').filter((l) => !l.startsWith('WALL '));

const write = (s) => (b.progress === 'quiet' && !s.startsWith('error') ? Promise.resolve() : new Promise((res) => process.stderr.write(s, res)));
if (SCENARIO === 'die' || SCENARIO === 'hang') {
  // Half the progress, then the daemon goes away (or nothing more happens until a signal).
  for (const l of progress.slice(0, Math.floor(progress.length / 2))) await write(l + '\n');
  if (SCENARIO === 'hang') {
    process.on('SIGTERM', () => process.exit(143));
    setInterval(() => {}, 1000);
    await new Promise(() => {});
  }
  await new Promise((r) => setTimeout(r, 200));
  fail('failed to solve: Unavailable: error reading from server: EOF');
}
const isJson = (l) => l.startsWith('{');
const body = kind === 'rawjson' ? progress.filter(isJson) : progress;
const trailer = kind === 'rawjson' ? progress.filter((l) => !isJson(l)) : [];
for (const l of body) if (l) await write(l + '\n');
if (!SUCCESS.has(scenario)) {
  for (const l of trailer) await write(l + '\n');
  process.exit(1);
}

// The OCI tar and its metadata are one v0.32.2 recording: they name the same digests.
let metadata = JSON.parse(readFileSync(sample('v0.32.2-metadata-oci.json'), 'utf8'));
const toStdout = [];
for (const o of b.output) {
  const f = Object.fromEntries(o.match(/("[^"]*(?:""[^"]*)*"|[^,]+)/g).map((x) => x.replace(/^"|"$/g, '').replace(/""/g, '"').split(/=(.*)/s)));
  if (f.type === 'image' || f.type === 'registry') {
    if (f.push !== 'true' && f.type === 'image') fail('the stand-in has no image store: use push=true');
    metadata = { ...JSON.parse(readFileSync(recording('metadata-push', 'json'), 'utf8')), 'image.name': f.name };
  } else if (f.type === 'oci' || f.type === 'docker' || f.type === 'tar') {
    if (!f.dest) fail(`output ${f.type} requires dest`);
    const tar = sample(f.type === 'docker' ? 'v0.32.2-run-basic-docker.tar' : 'v0.32.2-run-basic-oci.tar');
    if (f.dest === '-') toStdout.push(tar);
    else copyFileSync(tar, f.dest);
  } else if (f.type === 'local') {
    if (!f.dest || f.dest === '-') fail('output local requires a dest directory');
    mkdirSync(f.dest, { recursive: true });
    writeFileSync(join(f.dest, 'greeting'), 'hello\nexec-form\n');
  } else fail(`unsupported exporter type ${f.type}`);
}
if (toStdout.length > 1) fail('only one output can be written to stdout');
if (b.metadataFile) writeFileSync(b.metadataFile, JSON.stringify(metadata, null, 2));
for (const l of trailer) await write(l + '\n');
if (toStdout.length === 1) {
  if (SCENARIO === 'corrupt') {
    const buf = readFileSync(toStdout[0]);
    // Flip one byte inside the layer blob's content (past the first headers).
    buf[buf.length >> 1] ^= 0xff;
    await new Promise((res) => process.stdout.write(buf, res));
  } else {
    await new Promise((res, rej) => createReadStream(toStdout[0]).on('end', res).on('error', rej).pipe(process.stdout, { end: false }));
  }
}
process.exit(0);
