/**
 * OCI runtime `config.json` from an image config and `berth run` options, as docker makes it:
 * default mounts, docker's 14 capabilities, masked and read-only paths, a deny-by-default
 * devices cgroup, RLIMIT_NOFILE, namespaces. Pure: the caller reads /etc/passwd and /etc/group
 * from the rootfs and passes their text in.
 */
import { isAbsolute, posix } from 'node:path';
import { BerthError } from '../errors.js';
import type { ImageConfig } from '../oci/types.js';

// ---- the OCI runtime spec subset berth writes ----

export interface SpecMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface SpecUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
  username?: string;
}

export interface SpecCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface SpecProcess {
  terminal?: boolean;
  user: SpecUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: SpecCapabilities;
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  consoleSize?: { height: number; width: number };
}

export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

export interface RuntimeSpec {
  ociVersion: string;
  process: SpecProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: SpecMount[];
  annotations?: Record<string, string>;
  linux: {
    namespaces: { type: string; path?: string }[];
    resources?: {
      devices?: DeviceRule[];
      memory?: { limit?: number; swap?: number };
      cpu?: { quota?: number; period?: number; shares?: number };
      pids?: { limit: number };
    };
    cgroupsPath?: string;
    maskedPaths?: string[];
    readonlyPaths?: string[];
    devices?: unknown[];
  };
}

// ---- docker's defaults ----

/** docker's default capability set (CapEff 0x00000000a80425fb). */
export const DEFAULT_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Every capability by number (linux/capability.h), for --privileged and --cap-add ALL. */
export const ALL_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** The capability bitmask of a set (what /proc/PID/status shows as CapEff). */
export function capMask(caps: readonly string[]): bigint {
  let m = 0n;
  for (const c of caps) {
    const i = ALL_CAPS.indexOf(c);
    if (i >= 0) m |= 1n << BigInt(i);
  }
  return m;
}

export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** deny-all, then docker's default allow list. */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', access: 'm' }, // mknod of any char device
  { allow: true, type: 'b', access: 'm' }, // mknod of any block device
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // /dev/null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // /dev/zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // /dev/full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // /dev/random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // /dev/urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // /dev/tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const SHM_SIZE = 64 * 1024 * 1024;
export const NOFILE = 1048576;

/** Where the runtime mounts over the rootfs: symlinks at these paths are replaced first. */
export const RUNTIME_DIRS: readonly string[] = ['/proc', '/dev', '/sys', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys/fs/cgroup'];
export const RUNTIME_FILES: readonly string[] = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

// ---- option parsing (pure) ----

export interface BindSpec {
  source: string;
  destination: string;
  readonly: boolean;
}

/** `-v /host:/ctr[:ro|rw]`: absolute paths only (named volumes are not supported). */
export function parseVolume(spec: string): BindSpec {
  const parts = spec.split(':');
  const bad = (why: string) =>
    new BerthError('INVALID_ARGUMENT', `invalid mount spec ${JSON.stringify(spec)}: ${why}`, { hint: 'use -v /host/path:/container/path[:ro]' });
  if (parts.length < 2 || parts.length > 3) throw bad('expected HOST:CONTAINER[:OPTIONS]');
  const [source, destination, options] = parts as [string, string, string | undefined];
  if (!source || !isAbsolute(source)) throw bad(source ? 'named volumes are not supported, the host path must be absolute' : 'empty host path');
  if (!destination || !destination.startsWith('/')) throw bad('the container path must be absolute');
  if (posix.normalize(destination) === '/') throw bad('cannot mount over /');
  let readonly = false;
  for (const o of (options ?? '').split(',').filter(Boolean)) {
    if (o === 'ro') readonly = true;
    else if (o === 'rw') readonly = false;
    else if (!['z', 'Z', 'rprivate', 'private', 'rslave', 'slave', 'rshared', 'shared', 'nocopy', 'consistent', 'cached', 'delegated'].includes(o)) throw bad(`unknown option ${JSON.stringify(o)}`);
  }
  return { source: posix.normalize(source), destination: posix.normalize(destination), readonly };
}

/** `--tmpfs /path[:opts]`. */
export function parseTmpfs(spec: string): SpecMount {
  const i = spec.indexOf(':');
  const dest = i === -1 ? spec : spec.slice(0, i);
  const opts = i === -1 ? [] : spec.slice(i + 1).split(',').filter(Boolean);
  if (!dest.startsWith('/') || posix.normalize(dest) === '/') {
    throw new BerthError('INVALID_ARGUMENT', `invalid tmpfs spec ${JSON.stringify(spec)}: the path must be absolute and not /`, { hint: 'use --tmpfs /path[:size=64m,mode=1777]' });
  }
  for (const o of opts) {
    if (!/^[a-z_]+(=[A-Za-z0-9.,_-]+)?$/.test(o)) throw new BerthError('INVALID_ARGUMENT', `invalid tmpfs option ${JSON.stringify(o)} in ${JSON.stringify(spec)}`);
  }
  const base = ['nosuid', 'nodev', 'noexec'].filter((d) => !opts.includes(d.replace(/^no/, '')) && !(d === 'noexec' && opts.includes('exec')));
  return { destination: posix.normalize(dest), type: 'tmpfs', source: 'tmpfs', options: [...base, ...opts] };
}

/** `512m`, `1g`, `1048576` → bytes. */
export function parseBytes(s: string, what = '--memory'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new BerthError('INVALID_ARGUMENT', `invalid ${what} value ${JSON.stringify(s)}`, { hint: 'use a number with an optional unit b, k, m, g' });
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

/** Docker capability flags: names with or without CAP_, any case, or ALL. */
export function normalizeCap(c: string): string {
  const up = c.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPS.includes(name)) throw new BerthError('INVALID_ARGUMENT', `unknown capability ${JSON.stringify(c)}`, { hint: 'see capabilities(7)' });
  return name;
}

export function computeCaps(opts: { capAdd?: readonly string[]; capDrop?: readonly string[]; privileged?: boolean }): string[] {
  if (opts.privileged) return [...ALL_CAPS];
  const add = (opts.capAdd ?? []).map(normalizeCap);
  const drop = (opts.capDrop ?? []).map(normalizeCap);
  // moby/oci/caps.TweakCapabilities: add ALL wins, then drop ALL, else drop then add.
  if (add.includes('ALL')) return ALL_CAPS.filter((c) => !drop.includes(c));
  if (drop.includes('ALL')) return [...new Set(add)];
  const set = DEFAULT_CAPS.filter((c) => !drop.includes(c));
  for (const c of add) if (!set.includes(c)) set.push(c);
  return set;
}

// ---- users ----

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  name?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(text: string): { name: string; gid: number; members: string[] }[] {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

const isNum = (s: string) => /^\d+$/.test(s);

/**
 * `-u`/USER resolution as runc's libcontainer/user does: `name|uid[:group|gid]`, names through
 * the container's /etc/passwd and /etc/group, supplementary groups from /etc/group membership
 * (only when no group was given).
 */
export function resolveUser(spec: string | undefined, passwd: string | undefined, group: string | undefined): ResolvedUser {
  const s = (spec ?? '').trim() || '0';
  const [u, g] = s.split(':', 2) as [string, string | undefined];
  const users = parsePasswd(passwd ?? '');
  const groups = parseGroup(group ?? '');
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (isNum(u)) {
    uid = Number(u);
    entry = users.find((e) => e.uid === uid);
  } else {
    entry = users.find((e) => e.name === u);
    if (!entry) throw new BerthError('INVALID_ARGUMENT', `unable to find user ${u}: no matching entries in passwd file`, { hint: 'use a numeric uid or a user in the image /etc/passwd' });
    uid = entry.uid;
  }
  if (uid > 0x7fffffff) throw new BerthError('INVALID_ARGUMENT', `uid ${u} is out of range`);
  let gid = entry?.gid ?? 0;
  if (g !== undefined && g !== '') {
    if (isNum(g)) gid = Number(g);
    else {
      const ge = groups.find((x) => x.name === g);
      if (!ge) throw new BerthError('INVALID_ARGUMENT', `unable to find group ${g}: no matching entries in group file`);
      gid = ge.gid;
    }
  }
  const additionalGids: number[] = [];
  if ((g === undefined || g === '') && entry) {
    for (const ge of groups) if (ge.members.includes(entry.name) && ge.gid !== gid && !additionalGids.includes(ge.gid)) additionalGids.push(ge.gid);
  }
  return { uid, gid, additionalGids, home: entry?.home ?? '/', ...(entry ? { name: entry.name } : {}) };
}

// ---- process ----

/** docker's Entrypoint/Cmd rules: --entrypoint resets the image Cmd; CLI args replace Cmd. */
export function processArgs(config: ImageConfig['config'], o: { entrypoint?: string; cmd?: readonly string[] }): string[] {
  let ep = [...(config?.Entrypoint ?? [])];
  let cmd = [...(config?.Cmd ?? [])];
  if (o.entrypoint !== undefined) {
    ep = o.entrypoint === '' ? [] : [o.entrypoint];
    cmd = [];
  }
  if (o.cmd && o.cmd.length > 0) cmd = [...o.cmd];
  const args = [...ep, ...cmd];
  if (args.length === 0) throw new BerthError('INVALID_ARGUMENT', 'no command specified', { hint: 'give a command after the image name or use --entrypoint' });
  return args;
}

/** Merge env lists: later entries replace earlier ones by name, order of first appearance kept. */
export function mergeEnv(...lists: (readonly string[] | undefined)[]): string[] {
  const m = new Map<string, string>();
  for (const l of lists) for (const e of l ?? []) {
    const i = e.indexOf('=');
    const k = i === -1 ? e : e.slice(0, i);
    if (!k) continue;
    m.set(k, e);
  }
  return [...m.values()];
}

/** `-e NAME` takes NAME from the host environment (dropped when unset), `-e NAME=v` sets it. */
export function parseEnvFlags(flags: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (const f of flags) {
    if (f.includes('=')) {
      if (f.startsWith('=')) throw new BerthError('INVALID_ARGUMENT', `invalid environment variable ${JSON.stringify(f)}`);
      out.push(f);
    } else if (hostEnv[f] !== undefined) out.push(`${f}=${hostEnv[f]}`);
  }
  return out;
}

/** An --env-file's lines: `#` comments and blank lines skipped. */
export function parseEnvFile(text: string, hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  return parseEnvFlags(
    text
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => l.trim() && !l.trimStart().startsWith('#')),
    hostEnv,
  );
}

// ---- the spec ----

export interface SpecOptions {
  args: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  /** UTS hostname (default: none set, the runtime keeps its own). */
  hostname?: string;
  /** The rootfs: absolute, or relative to the bundle directory (default `rootfs`). */
  rootfs?: string;
  tty?: boolean;
  readOnly?: boolean;
  network?: 'private' | 'host' | 'none';
  privileged?: boolean;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  binds?: readonly BindSpec[];
  tmpfs?: readonly SpecMount[];
  /** Any other mounts (a build step's cache, secret or bind mounts), added after binds and tmpfs. */
  mounts?: readonly SpecMount[];
  /** Host files bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname. */
  files?: { hosts?: string; resolvConf?: string; hostname?: string };
  cgroupsPath?: string;
  annotations?: Record<string, string>;
  /** RLIMIT_NOFILE (default 1048576; callers cap it at what they may set). */
  nofile?: number;
}

function defaultMounts(privileged: boolean): SpecMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', privileged ? 'rw' : 'ro'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${SHM_SIZE}`] },
  ];
}

/** The process part (shared by run and exec). */
export function buildProcess(o: Pick<SpecOptions, 'args' | 'env' | 'cwd' | 'user' | 'tty' | 'privileged' | 'capAdd' | 'capDrop' | 'nofile'>): SpecProcess {
  if (!o.cwd.startsWith('/')) throw new BerthError('INVALID_ARGUMENT', `the working directory ${JSON.stringify(o.cwd)} must be an absolute path`);
  const caps = computeCaps(o);
  let env = o.env;
  if (!env.some((e) => e.startsWith('PATH='))) env = [`PATH=${DEFAULT_PATH}`, ...env];
  if (!env.some((e) => e.startsWith('HOME='))) env = [...env, `HOME=${o.user.home || '/'}`];
  if (o.tty && !env.some((e) => e.startsWith('TERM='))) env = [...env, 'TERM=xterm'];
  return {
    terminal: !!o.tty,
    user: { uid: o.user.uid, gid: o.user.gid, ...(o.user.additionalGids.length ? { additionalGids: o.user.additionalGids } : {}) },
    args: o.args,
    env,
    cwd: posix.normalize(o.cwd),
    capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: o.nofile ?? NOFILE, soft: o.nofile ?? NOFILE }],
    noNewPrivileges: false,
  };
}

export function buildSpec(o: SpecOptions): RuntimeSpec {
  const privileged = !!o.privileged;
  const network = o.network ?? 'private';
  const namespaces: { type: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (network !== 'host') namespaces.push({ type: 'network' });
  const mounts = defaultMounts(privileged);
  const seen = new Set(mounts.map((m) => m.destination));
  const add = (m: SpecMount) => {
    // a user mount at a default destination replaces it (docker does the same)
    if (seen.has(m.destination)) {
      const i = mounts.findIndex((x) => x.destination === m.destination);
      mounts.splice(i, 1);
    }
    seen.add(m.destination);
    mounts.push(m);
  };
  const f = o.files ?? {};
  if (f.hosts) add({ destination: '/etc/hosts', type: 'bind', source: f.hosts, options: ['rbind', 'rprivate'] });
  if (f.resolvConf) add({ destination: '/etc/resolv.conf', type: 'bind', source: f.resolvConf, options: ['rbind', 'rprivate'] });
  if (f.hostname) add({ destination: '/etc/hostname', type: 'bind', source: f.hostname, options: ['rbind', 'rprivate'] });
  for (const t of o.tmpfs ?? []) add(t);
  for (const b of o.binds ?? []) add({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate', ...(b.readonly ? ['ro'] : [])] });
  for (const m of o.mounts ?? []) {
    if (!m.destination.startsWith('/') || posix.normalize(m.destination) === '/') {
      throw new BerthError('INVALID_ARGUMENT', `invalid mount destination ${JSON.stringify(m.destination)}: it must be absolute and not /`);
    }
    add({ ...m, destination: posix.normalize(m.destination), ...(m.options ? { options: [...m.options] } : {}) });
  }

  const resources: NonNullable<RuntimeSpec['linux']['resources']> = {
    devices: privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((d) => ({ ...d })),
  };
  if (o.memory !== undefined) {
    if (!(o.memory >= 6 * 1024 * 1024)) throw new BerthError('INVALID_ARGUMENT', `--memory ${o.memory} is below the 6 MiB minimum`);
    resources.memory = { limit: o.memory };
  }
  if (o.cpus !== undefined) {
    if (!(o.cpus > 0) || o.cpus > 1024) throw new BerthError('INVALID_ARGUMENT', `invalid --cpus ${o.cpus}`, { hint: 'give a positive number such as 0.5 or 2' });
    resources.cpu = { period: 100000, quota: Math.round(o.cpus * 100000) };
  }
  if (o.pidsLimit !== undefined) {
    if (!Number.isInteger(o.pidsLimit)) throw new BerthError('INVALID_ARGUMENT', `invalid --pids-limit ${o.pidsLimit}`);
    resources.pids = { limit: o.pidsLimit <= 0 ? -1 : o.pidsLimit };
  }

  return {
    ociVersion: '1.0.2',
    process: buildProcess(o),
    root: { path: o.rootfs ?? 'rootfs', readonly: !!o.readOnly },
    ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
    mounts,
    ...(o.annotations ? { annotations: o.annotations } : {}),
    linux: {
      namespaces,
      resources,
      ...(o.cgroupsPath ? { cgroupsPath: o.cgroupsPath } : {}),
      ...(privileged ? {} : { maskedPaths: [...MASKED_PATHS], readonlyPaths: [...READONLY_PATHS] }),
    },
  };
}

/** /etc/hosts for a container. */
export function hostsFile(hostname: string, network: 'private' | 'host' | 'none'): string {
  const base = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';
  return network === 'host' ? base : `${base}127.0.1.1\t${hostname}\n`;
}

/** /etc/resolv.conf from the host's: loopback nameservers dropped unless the host network is shared. */
export function resolvConf(host: string, network: 'private' | 'host' | 'none'): string {
  if (network === 'host') return host;
  return host
    .split('\n')
    .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
    .join('\n');
}
