import type { Readable } from 'node:stream';
import type { Descriptor } from './types.js';

/** Progress events every long operation reports through `onProgress`. */
export type ProgressEvent =
  | { type: 'blob-start'; digest: string; size: number; mediaType: string; id?: string }
  | { type: 'blob-progress'; digest: string; done: number; size: number }
  | { type: 'blob-done'; digest: string; size: number; skipped?: boolean; reason?: string }
  | { type: 'message'; text: string }
  /** What the operation will transfer, once known (before its first blob). */
  | { type: 'plan'; blobs: number; size: number };

export interface OpOptions {
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
}

/** A place content is read from (the store, a registry, an archive). */
export interface ContentSource {
  /** Read a small document (manifest, index, config) whole; verified against the descriptor. */
  fetchBytes(desc: Descriptor, opts?: OpOptions): Promise<Buffer>;
  /** A verified stream of a blob: it errors at the end when size or digest differ. */
  fetch(desc: Descriptor, opts?: OpOptions): Promise<Readable>;
  /** Whether the source holds it (sparse sources such as partial archives). */
  has?(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
}

/** A place content is written to (the store, a registry, an archive writer). */
export interface ContentTarget {
  exists(desc: Descriptor, opts?: OpOptions): Promise<boolean>;
  /** Write a blob; the target verifies size and digest before it becomes visible. */
  write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts?: OpOptions): Promise<void>;
}

/** A blob response that may start part-way: `start` is where `body` begins in the blob. */
export interface BlobBody {
  start: number;
  body: Readable;
}

/**
 * A source that can continue a blob from an offset (a registry with Range requests). The
 * store's resuming target uses it to finish partial ingests.
 */
export interface ResumableSource extends ContentSource {
  /** GET a blob from `offset`; a source that cannot honour the offset answers from 0. */
  openBlob(desc: Descriptor, offset: number, opts?: OpOptions): Promise<BlobBody>;
  /** Whether an error while reading a body is worth continuing from where it stopped. */
  retryable?(e: unknown): boolean;
  /** What to call the source in messages (`host/repo`). */
  readonly where?: string;
}
