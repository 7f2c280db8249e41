/**
 * The native door: mknod, xattrs on the link itself, mount/umount2. A tiny N-API addon
 * (native/berth_native.c, built by node-gyp at npm install) does them in-process; when it is
 * missing (or BERTH_NATIVE=0) each call runs a process (mknod, setfattr, getfattr, mount,
 * umount), which is correct but costs a process start per call.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeOps {
  /** 'addon' or 'process' (the fallback). */
  readonly kind: 'addon' | 'process';
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags?: number): void;
  /** The attribute's value, or null when the file has none by that name. */
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
}

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const MNT_DETACH = 2;

interface Addon {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
}

function loadAddon(): Addon | undefined {
  if (process.env.BERTH_NATIVE === '0') return undefined;
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/archive/native.js and src/archive/native.ts are both two levels below the package root.
  const file = join(here, '..', '..', 'native', 'build', 'Release', 'berth_native.node');
  if (!existsSync(file)) return undefined;
  try {
    return createRequire(import.meta.url)(file) as Addon;
  } catch {
    return undefined;
  }
}

/** Run a helper process; a failure becomes an Error with an errno-like `code` when one can be told. */
function run(cmd: string, args: string[]): Buffer {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    const msg = err.stderr?.toString().trim() || err.message;
    const out = new Error(`${cmd}: ${msg}`) as NodeJS.ErrnoException;
    out.code = err.code === 'ENOENT' ? 'ENOENT_PROGRAM' : /No such attribute/i.test(msg) ? 'ENODATA' : /busy/i.test(msg) ? 'EBUSY' : /not mounted|not found/i.test(msg) ? 'EINVAL' : /File exists/i.test(msg) ? 'EEXIST' : /Operation not supported/i.test(msg) ? 'ENOTSUP' : /No such file/i.test(msg) ? 'ENOENT' : 'EIO';
    throw out;
  }
}

const processOps: NativeOps = {
  kind: 'process',
  mknod(path, mode, major, minor) {
    const fmt = mode & 0o170000;
    const t = fmt === S_IFCHR ? 'c' : fmt === S_IFBLK ? 'b' : fmt === S_IFIFO ? 'p' : undefined;
    if (!t) throw Object.assign(new Error(`mknod: unsupported file type ${fmt.toString(8)}`), { code: 'EINVAL' });
    const perm = (mode & 0o7777).toString(8);
    run('mknod', ['-m', perm, path, t, ...(t === 'p' ? [] : [String(major), String(minor)])]);
  },
  lsetxattr(path, name, value) {
    run('setfattr', ['-h', '-n', name, '-v', '0x' + value.toString('hex'), path]);
  },
  lgetxattr(path, name) {
    try {
      const out = run('getfattr', ['-h', '--absolute-names', '-e', 'hex', '--only-values', '-n', name, path]);
      const s = out.toString().trim();
      // --only-values with -e hex still prints raw bytes on some versions; handle both.
      if (/^0x[0-9a-f]*$/i.test(s)) return Buffer.from(s.slice(2), 'hex');
      return out;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENODATA') return null;
      throw e;
    }
  },
  llistxattr(path) {
    const out = run('getfattr', ['-h', '--absolute-names', '-m', '-', path]).toString();
    return out.split('\n').filter((l) => l && !l.startsWith('#'));
  },
  mount(source, target, fstype, flags, data) {
    const opts = [data, flags & 1 ? 'ro' : ''].filter(Boolean).join(',');
    run('mount', ['-t', fstype, ...(opts ? ['-o', opts] : []), source, target]);
  },
  umount2(target, flags) {
    run('umount', [...(flags & MNT_DETACH ? ['-l'] : []), target]);
  },
};

let ops: NativeOps | undefined;

/** The native operations: the addon when built, else the process fallback. */
export function native(): NativeOps {
  if (ops) return ops;
  const a = loadAddon();
  ops = a
    ? {
        kind: 'addon',
        mknod: (p, m, ma, mi) => a.mknod(p, m, ma, mi),
        lsetxattr: (p, n, v, f = 0) => a.lsetxattr(p, n, v, f),
        lgetxattr: (p, n) => a.lgetxattr(p, n),
        llistxattr: (p) => a.llistxattr(p),
        mount: (s, t, f, fl, d) => a.mount(s, t, f, fl, d),
        umount2: (t, f) => a.umount2(t, f),
      }
    : processOps;
  return ops;
}

/** Force one implementation (tests and benchmarks compare them). */
export function setNativeForTesting(kind: 'addon' | 'process' | undefined): NativeOps {
  ops = undefined;
  if (kind === 'process') ops = processOps;
  else if (kind === 'addon') {
    const a = native();
    if (a.kind !== 'addon') throw new Error('the native addon is not built (npm install builds it)');
  }
  return native();
}
