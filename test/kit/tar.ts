/**
 * The tests' one tar builder: ustar headers with PAX records where asked (xattrs:
 * `pax: { 'SCHILY.xattr.user.x': 'v' }`) or where names are long; every entry type (files,
 * directories, symlinks, hard links, devices, fifos, whiteouts are just names) and, for hostile
 * cases, lies (declared sizes without bodies, NUL bytes in names, unknown type flags).
 * No vitest import: fixture scripts compiled on their own use it too.
 */

export interface TarEntry {
  name: string;
  /** ustar type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo, or anything. */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** Declared size, when it should differ from the body's length. */
  size?: number;
  /** PAX records written in an 'x' header before the entry. */
  pax?: Record<string, Buffer | string>;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(e: { name: string; type: string; size: number; linkname?: string; mode: number; uid: number; gid: number; mtime: number; devmajor: number; devminor: number }): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name.slice(0, 100), 0, 100, 'utf8');
  h.write(octal(e.mode, 8), 100);
  h.write(octal(e.uid, 8), 108);
  h.write(octal(e.gid, 8), 116);
  // Sizes above 8 GiB use the base-256 encoding (GNU), as real archivers do.
  if (e.size > 0o77777777777) {
    h[124] = 0x80;
    let v = BigInt(e.size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  } else h.write(octal(e.size, 12), 124);
  h.write(octal(e.mtime, 12), 136);
  h.write('        ', 148);
  h.write(e.type.slice(0, 1), 156, 'latin1');
  if (e.linkname) h.write(e.linkname.slice(0, 100), 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write(octal(e.devmajor, 8), 329);
  h.write(octal(e.devminor, 8), 337);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Encode entries as a tar stream (ustar, with PAX headers where asked or where names are long). */
export function tarBytes(entries: TarEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    const pax: Record<string, Buffer | string> = { ...(e.pax ?? {}) };
    if (Buffer.byteLength(e.name) > 100 || e.name.includes('\0')) pax.path ??= e.name;
    if (e.linkname && (Buffer.byteLength(e.linkname) > 100 || e.linkname.includes('\0'))) pax.linkpath ??= e.linkname;
    const keys = Object.keys(pax);
    if (keys.length > 0) {
      const recs = Buffer.concat(keys.map((k) => paxRecord(k, Buffer.isBuffer(pax[k]) ? (pax[k] as Buffer) : Buffer.from(pax[k] as string))));
      out.push(header({ name: 'PaxHeader', type: 'x', size: recs.length, mode: 0o644, uid: 0, gid: 0, mtime: 0, devmajor: 0, devminor: 0 }), recs, pad(recs.length));
    }
    const type = e.type ?? '0';
    out.push(
      header({
        name: e.name.replace(/\0/g, ''),
        type,
        size: e.size ?? data.length,
        ...(e.linkname !== undefined ? { linkname: e.linkname.replace(/\0/g, '') } : {}),
        mode: e.mode ?? (type === '5' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: e.mtime ?? 1_600_000_000,
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (data.length > 0) out.push(data, pad(data.length));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}


/** A tar of regular files (mode 0644, owner 0:0, mtime 0), in the given order. */
export function tarOf(files: Record<string, Buffer | string>): Buffer {
  return tarBytes(Object.entries(files).map(([name, data]) => ({ name, data, mode: 0o644, mtime: 0 })));
}
