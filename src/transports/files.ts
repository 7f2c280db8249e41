/**
 * Image layouts on disk as sources and targets of `copy()`, without berth's store in between:
 * an OCI layout directory, and an uncompressed tar file (oci-archive, docker-archive) read in
 * place through an index of its members (headers only: blobs are read by byte range, so an
 * archive -> containerd copy never writes the layers anywhere first).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarWriter } from '../archive/tar.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { ContentSource, ContentTarget, OpOptions } from '../oci/content.js';
import { canonicalJson, digestHex, sha256, VerifyingStream, verifyBytes } from '../oci/digest.js';
import { parseJson, parseManifestOrIndex } from '../oci/manifest.js';
import { MediaType } from '../oci/mediatype.js';
import { familiarName, familiarString, normalizeReference, parseReference } from '../oci/reference.js';
import { Annotation, type Descriptor, type Digest, type Index } from '../oci/types.js';

/** A member of a layout: its size and a way to read (a range of) it. */
interface FileEntry {
  size: number;
  read(start?: number, end?: number): Readable;
}

interface Files {
  readonly what: string;
  get(name: string): Promise<FileEntry | undefined>;
}

class DirFiles implements Files {
  readonly what: string;
  constructor(readonly dir: string) {
    this.what = `directory ${dir}`;
  }
  async get(name: string): Promise<FileEntry | undefined> {
    const p = join(this.dir, name);
    try {
      const st = await lstat(p);
      if (!st.isFile()) return undefined;
      return { size: st.size, read: (start = 0, end = st.size) => createReadStream(p, { start, end: end - 1, highWaterMark: 1 << 20 }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw fromSystemError(e, `${this.what}: ${name}`);
    }
  }
}

function octal(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    // base-256 (GNU) for sizes past 8 GiB
    let n = 0;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.toString('utf8', 0, z === -1 ? len : z);
}

/** The members of an uncompressed tar file, found by reading headers and seeking past bodies. */
class TarFiles implements Files {
  readonly what: string;
  readonly members = new Map<string, { offset: number; size: number; link?: string }>();
  constructor(readonly path: string) {
    this.what = `archive ${path}`;
  }
  static async open(path: string): Promise<TarFiles> {
    const t = new TarFiles(path);
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw fromSystemError(e, `archive ${path}`);
    }
    try {
      const total = (await fh.stat()).size;
      const h = Buffer.alloc(512);
      let pos = 0;
      let paxPath: string | undefined;
      let paxSize: number | undefined;
      let longName: string | undefined;
      for (;;) {
        if (pos + 512 > total) throw new BerthError('INVALID_ARGUMENT', `${t.what}: truncated tar archive`);
        await fh.read(h, 0, 512, pos);
        if (pos === 0 && ((h[0] === 0x1f && h[1] === 0x8b) || (h[0] === 0x28 && h[1] === 0xb5))) {
          throw new BerthError('UNSUPPORTED', `${t.what} is compressed`, { hint: 'decompress it first (archives made by docker save, skopeo and berth are plain tar)' });
        }
        if (h.every((x) => x === 0)) break;
        if (h.toString('latin1', 257, 262) !== 'ustar' && pos === 0) throw new BerthError('INVALID_ARGUMENT', `${t.what} is not a tar archive`);
        const type = String.fromCharCode(h[156]! || 0x30);
        const size = paxSize ?? octal(h, 124, 12);
        const body = pos + 512;
        let name = longName ?? paxPath ?? (h.toString('latin1', 257, 262) === 'ustar' && h[345] ? `${cstr(h, 345, 155)}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
        pos = body + Math.ceil(size / 512) * 512;
        if (type === 'x' || type === 'L') {
          const data = Buffer.alloc(size);
          await fh.read(data, 0, size, body);
          if (type === 'L') longName = cstr(data, 0, size);
          else {
            for (let i = 0; i < data.length; ) {
              const sp = data.indexOf(0x20, i);
              const len = parseInt(data.toString('latin1', i, sp), 10);
              if (!(len > 0)) break;
              const rec = data.toString('utf8', sp + 1, i + len - 1);
              const eq = rec.indexOf('=');
              const k = rec.slice(0, eq);
              if (k === 'path') paxPath = rec.slice(eq + 1);
              if (k === 'size') paxSize = Number(rec.slice(eq + 1));
              i += len;
            }
          }
          continue;
        }
        if (type === 'g') continue;
        longName = paxPath = paxSize = undefined;
        while (name.startsWith('./')) name = name.slice(2);
        if (type === '0' || type === '7') t.members.set(name, { offset: body, size });
        else if (type === '1' || type === '2') {
          const link = cstr(h, 157, 100);
          t.members.set(name, { offset: 0, size: 0, link: type === '1' ? link.replace(/^\.\//, '') : posix.normalize(posix.join(posix.dirname(name), link)) });
        }
      }
    } finally {
      await fh.close();
    }
    return t;
  }
  async get(name: string): Promise<FileEntry | undefined> {
    let m = this.members.get(name);
    for (let hops = 0; m?.link !== undefined && hops < 16; hops++) m = this.members.get(m.link);
    if (!m || m.link !== undefined) return undefined;
    const { offset, size } = m;
    return { size, read: (start = 0, end = size) => createReadStream(this.path, { start: offset + start, end: offset + end - 1, highWaterMark: 1 << 20 }) };
  }
}

async function readAll(e: FileEntry, cap: number, what: string): Promise<Buffer> {
  if (e.size > cap) throw new BerthError('INVALID_ARGUMENT', `${what}: ${e.size} bytes is more than the ${cap}-byte limit`);
  const chunks: Buffer[] = [];
  for await (const c of e.read()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** An image found in a layout: its root and the name it carries. */
export interface LayoutImage {
  root: Descriptor;
  /** The image's full name, when the layout gives one. */
  name?: string;
  /** Its `org.opencontainers.image.ref.name`. */
  refName?: string;
}

function blobName(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`;
}

/**
 * An OCI layout (directory or tar file) or a docker-save archive as a ContentSource. Archives
 * in docker's old format (manifest.json and layer.tar files only) get a manifest made from
 * manifest.json, kept in memory and served like any other blob.
 */
export class LayoutSource implements ContentSource {
  readonly #docs = new Map<string, Buffer>();
  readonly #paths = new Map<string, string>();
  private constructor(readonly files: Files) {}

  static async openDir(dir: string): Promise<LayoutSource> {
    try {
      if (!(await lstat(dir)).isDirectory()) throw new BerthError('INVALID_ARGUMENT', `${dir} is not a directory`);
    } catch (e) {
      throw fromSystemError(e, `OCI layout ${dir}`);
    }
    return new LayoutSource(new DirFiles(dir));
  }

  static async openArchive(file: string): Promise<LayoutSource> {
    return new LayoutSource(await TarFiles.open(file));
  }

  async #entry(desc: Pick<Descriptor, 'digest'>): Promise<FileEntry> {
    const e = await this.files.get(this.#paths.get(desc.digest) ?? blobName(desc.digest));
    if (!e) throw new BerthError('NOT_FOUND', `${this.files.what}: blob ${desc.digest} is missing`, { hint: 'the layout is incomplete' });
    return e;
  }

  async fetchBytes(desc: Descriptor): Promise<Buffer> {
    const doc = this.#docs.get(desc.digest);
    if (doc) return doc;
    const data = await readAll(await this.#entry(desc), 16 << 20, `${this.files.what}: ${desc.digest}`);
    verifyBytes(data, { digest: desc.digest, size: desc.size, what: `${this.files.what}: ${desc.digest}` });
    return data;
  }

  async fetch(desc: Descriptor): Promise<Readable> {
    const doc = this.#docs.get(desc.digest);
    if (doc) return Readable.from([doc]);
    const e = await this.#entry(desc);
    return e.read().pipe(new VerifyingStream({ digest: desc.digest, size: desc.size, what: `${this.files.what}: ${desc.digest}` }));
  }

  async has(desc: Descriptor): Promise<boolean> {
    if (this.#docs.has(desc.digest)) return true;
    const e = await this.files.get(this.#paths.get(desc.digest) ?? blobName(desc.digest));
    return e !== undefined && e.size === desc.size;
  }

  /** The images the layout names: index.json entries, else docker's manifest.json. */
  async images(): Promise<LayoutImage[]> {
    const idx = await this.files.get('index.json');
    if (idx) {
      const index = parseManifestOrIndex(await readAll(idx, 4 << 20, `${this.files.what}: index.json`), { mediaType: MediaType.OCI_INDEX }, `${this.files.what}: index.json`);
      if (index.kind !== 'index') throw new BerthError('INVALID_ARGUMENT', `${this.files.what}: index.json is not an index`);
      return index.index.manifests.map((m) => {
        const { annotations, ...root } = m;
        // ref.name is a full name (berth, containerd) or just a tag-like string (skopeo's oci:DIR:REF).
        const refName = annotations?.[Annotation.REF_NAME];
        const name = annotations?.[Annotation.CONTAINERD_NAME] ?? (refName?.includes('/') ? refName : undefined);
        return { root: { ...root, ...(annotations ? { annotations } : {}) }, ...(name ? { name } : {}), ...(refName ? { refName } : {}) };
      });
    }
    const mf = await this.files.get('manifest.json');
    if (!mf) throw new BerthError('INVALID_ARGUMENT', `${this.files.what} has neither index.json nor manifest.json`, { hint: 'it is not an OCI layout or docker-save archive' });
    const list = parseJson(await readAll(mf, 4 << 20, `${this.files.what}: manifest.json`), `${this.files.what}: manifest.json`) as { Config: string; RepoTags?: string[]; Layers: string[] }[];
    if (!Array.isArray(list)) throw new BerthError('INVALID_ARGUMENT', `${this.files.what}: manifest.json is not a list`);
    const out: LayoutImage[] = [];
    for (const m of list) {
      const cfgEntry = await this.files.get(m.Config);
      if (!cfgEntry) throw new BerthError('NOT_FOUND', `${this.files.what}: ${m.Config} is missing`);
      const cfg = await readAll(cfgEntry, 8 << 20, m.Config);
      const config: Descriptor = { mediaType: MediaType.DOCKER_CONFIG, digest: sha256(cfg), size: cfg.length };
      this.#docs.set(config.digest, cfg);
      const layers: Descriptor[] = [];
      for (const l of m.Layers) {
        const e = await this.files.get(l);
        if (!e) throw new BerthError('NOT_FOUND', `${this.files.what}: layer ${l} is missing`);
        const h = createHash('sha256');
        for await (const c of e.read()) h.update(c as Buffer);
        const digest = `sha256:${h.digest('hex')}` as Digest;
        this.#paths.set(digest, l);
        layers.push({ mediaType: MediaType.DOCKER_LAYER, digest, size: e.size });
      }
      const bytes = canonicalJson({ schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST, config, layers });
      const root: Descriptor = { mediaType: MediaType.DOCKER_MANIFEST, digest: sha256(bytes), size: bytes.length };
      this.#docs.set(root.digest, bytes);
      const tags = m.RepoTags ?? [];
      if (tags.length === 0) out.push({ root });
      for (const t of tags) out.push({ root, name: normalizeReference(t) });
    }
    return out;
  }

  /** The one image `ref` names (or the only image when `ref` is not given). */
  async select(ref: string | undefined): Promise<LayoutImage> {
    const all = await this.images();
    if (ref === undefined) {
      const roots = new Set(all.map((i) => i.root.digest));
      if (roots.size === 1) return all[0]!;
      throw new BerthError(all.length ? 'INVALID_ARGUMENT' : 'NOT_FOUND', `${this.files.what} holds ${all.length ? `${roots.size} images` : 'no image'}`, all.length ? { hint: 'name one as …:REF' } : {});
    }
    let full: string | undefined;
    try {
      full = normalizeReference(ref);
    } catch {
      /* a bare tag such as "latest" */
    }
    const hit = all.find((i) => i.root.annotations?.[Annotation.REF_NAME] === ref || i.name === ref || (full && i.name && safeNormalize(i.name) === full));
    if (!hit) throw new BerthError('NOT_FOUND', `${this.files.what} has no image ${JSON.stringify(ref)}`, { hint: `it has: ${all.map((i) => i.name ?? i.root.annotations?.[Annotation.REF_NAME] ?? i.root.digest).join(', ') || 'none'}` });
    return hit;
  }
}

function safeNormalize(n: string): string | undefined {
  try {
    return normalizeReference(n);
  } catch {
    return undefined;
  }
}

/** Write `path` atomically: `fn` fills a file beside it, which is renamed over `path` at the end. */
async function atomically<T>(path: string, fn: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = join(dirname(path), `.${posix.basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const r = await fn(tmp);
    await rename(tmp, path);
    return r;
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e instanceof BerthError ? e : fromSystemError(e, `writing ${path}`);
  }
}

/** An OCI layout directory as a target: blobs land verified (temp file, rename), index.json last. */
export class LayoutDirTarget implements ContentTarget {
  constructor(readonly dir: string) {}

  async exists(desc: Descriptor): Promise<boolean> {
    try {
      return (await lstat(join(this.dir, blobName(desc.digest)))).size === desc.size;
    } catch {
      return false;
    }
  }

  async write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    const path = join(this.dir, blobName(desc.digest));
    await mkdir(dirname(path), { recursive: true });
    await atomically(path, async (tmp) => {
      const src = Buffer.isBuffer(content) ? Readable.from([content]) : await content();
      await pipeline(src, new VerifyingStream({ digest: desc.digest, size: desc.size }), createWriteStream(tmp), opts.signal ? { signal: opts.signal } : {});
    });
  }

  /** Add (or replace) the index entry `ref` -> `root`. */
  async finish(root: Descriptor, ref: string | undefined, fullName: string | undefined): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    let index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] };
    try {
      index = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as Index;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new BerthError('INVALID_ARGUMENT', `${this.dir}/index.json is not valid JSON`, { cause: e });
    }
    const { annotations: _a, ...plain } = root;
    const entry: Descriptor = ref ? { ...plain, annotations: { [Annotation.REF_NAME]: ref, ...(fullName ? { [Annotation.CONTAINERD_NAME]: fullName } : {}) } } : plain;
    const manifests = index.manifests.filter((m) => (ref ? m.annotations?.[Annotation.REF_NAME] !== ref : m.digest !== root.digest));
    await atomically(join(this.dir, 'index.json'), (tmp) => writeFile(tmp, canonicalJson({ ...index, manifests: [...manifests, entry] })));
  }
}

/**
 * An oci-archive or docker-archive file as a target: members are appended to a tar written
 * beside the file as blobs arrive (one at a time), the documents go last, then it is renamed
 * over the file. Nothing half-written is ever at `path`.
 */
export class ArchiveFileTarget implements ContentTarget {
  readonly #tw = new TarWriter();
  readonly #written = new Set<string>();
  readonly #tmp: string;
  readonly #out: Promise<void>;
  #queue: Promise<void> = Promise.resolve();
  #failed: unknown;

  constructor(
    readonly path: string,
    readonly format: 'oci' | 'docker',
    signal?: AbortSignal,
  ) {
    this.#tmp = join(dirname(path), `.${posix.basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    this.#out = pipeline(this.#tw.readable, createWriteStream(this.#tmp), signal ? { signal } : {});
    this.#out.catch((e) => (this.#failed ??= e));
    this.#queue = this.#tw.addDirectory('blobs').then(() => this.#tw.addDirectory('blobs/sha256'));
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.#written.has(desc.digest);
  }

  write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    const run = async () => {
      if (this.#failed) throw this.#failed;
      if (this.#written.has(desc.digest)) return;
      const name = blobName(desc.digest);
      if (Buffer.isBuffer(content)) {
        verifyBytes(content, { digest: desc.digest, size: desc.size });
        await this.#tw.addBytes(name, content);
      } else {
        await this.#tw.addStream(name, desc.size, await content(), opts.signal ? { signal: opts.signal } : {});
      }
      this.#written.add(desc.digest);
    };
    const p = this.#queue.then(run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Write the index (and docker's manifest.json), close the tar and rename it into place. */
  async finish(image: { root: Descriptor; name?: string; ref?: string; config?: Digest; layers?: Digest[] }): Promise<void> {
    try {
      await this.#queue;
      if (this.#failed) throw this.#failed;
      const { annotations: _a, platform: _p, ...plain } = image.root;
      const annotations: Record<string, string> = {};
      if (image.name) {
        annotations[Annotation.CONTAINERD_NAME] = image.name;
        annotations[Annotation.REF_NAME] = this.format === 'docker' ? (parseReference(image.name).tag ?? 'latest') : (image.ref ?? image.name);
      } else if (image.ref) annotations[Annotation.REF_NAME] = image.ref;
      const entry = Object.keys(annotations).length ? { ...plain, annotations } : plain;
      await this.#tw.addBytes('index.json', canonicalJson({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [entry] }));
      if (this.format === 'docker' && image.config && image.layers) {
        const tags = image.name ? [familiarString(parseReference(image.name))] : [];
        await this.#tw.addBytes('manifest.json', canonicalJson([{ Config: blobName(image.config), RepoTags: tags, Layers: image.layers.map(blobName) }]));
      }
      await this.#tw.addBytes('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
      if (this.format === 'docker' && image.name && image.config) {
        const ref = parseReference(image.name);
        await this.#tw.addBytes('repositories', canonicalJson({ [familiarName(ref)]: { [ref.tag ?? 'latest']: digestHex(image.config) } }));
      }
      this.#tw.finish();
      await this.#out;
      await rename(this.#tmp, this.path);
    } catch (e) {
      await this.abort();
      throw e instanceof BerthError ? e : fromSystemError(e, `writing ${this.path}`);
    }
  }

  /** Drop the file beside the target (a failed copy). */
  async abort(): Promise<void> {
    this.#tw.destroy();
    await this.#out.catch(() => {});
    await unlink(this.#tmp).catch(() => {});
  }
}
