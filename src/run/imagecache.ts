/**
 * What a previous `berth run` already worked out, so a warm run does not do it again: the image
 * a reference resolved to (manifest and config digest, the config's run settings, the top chain
 * id of its unpacked layers) and the users resolved in that rootfs. One small JSON file under
 * <root>/containers/, valid while the store's index.json is the same file (any tag, untag, load
 * or pull rewrites it by rename, which drops the whole cache). Content by digest never changes,
 * so nothing else can make an entry wrong; a damaged or unreadable cache is just a miss.
 */
import { readFileSync, statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { ContainerConfig } from '../oci/types.js';
import type { ResolvedUser } from './spec.js';
import { randomHex } from '../oci/digest.js';

/** An image as `create` needs it, without reading the store. */
export interface ResolvedImage {
  /** The tag it was found by (full normalised name), when it was. */
  name?: string;
  manifestDigest: string;
  configDigest: string;
  /** The config's `config` object (Entrypoint, Cmd, Env, User, WorkingDir, StopSignal, ...). */
  config: ContainerConfig | undefined;
  /** Chain id of the top layer: the committed snapshot the container is prepared on. */
  chainId: string;
}

interface CacheFile {
  /** Identity of index.json when this was written: inode, size, mtime (ns). */
  index: string;
  refs: Record<string, ResolvedImage>;
  /** chain id → user spec → resolution in that rootfs. */
  users: Record<string, Record<string, ResolvedUser>>;
}

export class ImageCache {
  readonly file: string;
  readonly indexPath: string;
  #data: CacheFile | undefined;
  #key: string | undefined;
  #dirty = false;

  constructor(file: string, indexPath: string) {
    this.file = file;
    this.indexPath = indexPath;
  }

  /** Read synchronously: two small files, and a warm run waits on nothing else meanwhile. */
  async #load(): Promise<CacheFile> {
    if (this.#data) return this.#data;
    const st = statSync(this.indexPath, { bigint: true, throwIfNoEntry: false });
    this.#key = st ? `${st.ino}:${st.size}:${st.mtimeNs}` : 'none';
    let d: CacheFile | undefined;
    try {
      d = JSON.parse(readFileSync(this.file, 'utf8')) as CacheFile;
    } catch {
      d = undefined;
    }
    if (!d || d.index !== this.#key || typeof d.refs !== 'object' || typeof d.users !== 'object') d = { index: this.#key, refs: {}, users: {} };
    return (this.#data = d);
  }

  async image(ref: string): Promise<ResolvedImage | undefined> {
    return (await this.#load()).refs[ref];
  }

  async setImage(ref: string, img: ResolvedImage): Promise<void> {
    (await this.#load()).refs[ref] = img;
    this.#dirty = true;
  }

  async user(chainId: string, spec: string): Promise<ResolvedUser | undefined> {
    return (await this.#load()).users[chainId]?.[spec];
  }

  async setUser(chainId: string, spec: string, u: ResolvedUser): Promise<void> {
    const d = await this.#load();
    (d.users[chainId] ??= {})[spec] = u;
    this.#dirty = true;
  }

  /** Write the changes (atomically; a lost race only loses a cache entry). */
  async save(): Promise<void> {
    if (!this.#dirty || !this.#data) return;
    this.#dirty = false;
    const tmp = `${this.file}.tmp-${process.pid}-${randomHex(3)}`;
    try {
      await writeFile(tmp, JSON.stringify(this.#data));
      await rename(tmp, this.file);
    } catch {
      /* a cache */
    }
  }
}
