/**
 * The protobuf wire format for the few containerd messages berth uses, written from containerd's
 * published API (api/services/{content,images,leases,version}/v1, api/types/descriptor.proto).
 * A schema maps field names to numbers and kinds; encode/decode are the proto3 wire rules
 * (varint, length-delimited, maps as repeated key/value entries). Unknown fields are skipped.
 */

/** A field's kind: a scalar, a map<string,string>, or a nested message schema. */
export type Kind = 'string' | 'bytes' | 'int64' | 'bool' | 'enum' | 'map' | Schema;
export interface Field {
  no: number;
  kind: Kind;
  repeated?: boolean;
}
export interface Schema {
  readonly [name: string]: Field;
}

// ---- writing ----

function varint(out: number[], n: number): void {
  if (n < 0) n = 0; // berth never sends negative numbers (sizes, offsets, enums)
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

function tag(out: number[], no: number, wire: number): void {
  varint(out, no * 8 + wire);
}

function pushLen(chunks: Buffer[], head: number[], no: number, body: Buffer): void {
  tag(head, no, 2);
  varint(head, body.length);
  chunks.push(Buffer.from(head), body);
  head.length = 0;
}

/** Encode `msg` per `schema`; fields left undefined (or proto3 defaults) are not written. */
export function encode(schema: Schema, msg: Record<string, unknown>): Buffer {
  const chunks: Buffer[] = [];
  const head: number[] = [];
  for (const [name, f] of Object.entries(schema)) {
    const v = msg[name];
    if (v === undefined || v === null) continue;
    const values = f.repeated ? (v as unknown[]) : [v];
    for (const x of values) {
      switch (f.kind) {
        case 'string':
          if (x === '' && !f.repeated) break;
          pushLen(chunks, head, f.no, Buffer.from(x as string, 'utf8'));
          break;
        case 'bytes':
          if ((x as Uint8Array).length === 0) break;
          pushLen(chunks, head, f.no, Buffer.isBuffer(x) ? x : Buffer.from(x as Uint8Array));
          break;
        case 'int64':
        case 'enum':
          if (x === 0) break;
          tag(head, f.no, 0);
          varint(head, x as number);
          break;
        case 'bool':
          if (!x) break;
          tag(head, f.no, 0);
          head.push(1);
          break;
        case 'map':
          for (const [k, val] of Object.entries(x as Record<string, string>)) pushLen(chunks, head, f.no, encode(MAP_ENTRY, { key: k, value: val }));
          break;
        default:
          pushLen(chunks, head, f.no, encode(f.kind, x as Record<string, unknown>));
      }
    }
  }
  if (head.length) chunks.push(Buffer.from(head));
  return Buffer.concat(chunks);
}

// ---- reading ----

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
      if (mul > 2 ** 70) throw new Error('varint too long');
    }
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const b = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

/** Decode `buf` per `schema`: strings default to '', numbers to 0, repeated to [], maps to {}. */
export function decode<T = Record<string, unknown>>(schema: Schema, buf: Buffer): T {
  const byNo = new Map<number, [string, Field]>();
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(schema)) {
    byNo.set(f.no, [name, f]);
    if (f.repeated) out[name] = [];
    else if (f.kind === 'map') out[name] = {};
    else if (f.kind === 'string') out[name] = '';
    else if (f.kind === 'int64' || f.kind === 'enum') out[name] = 0;
    else if (f.kind === 'bool') out[name] = false;
  }
  const r = new Reader(buf);
  while (r.pos < buf.length) {
    const t = r.varint();
    const no = Math.floor(t / 8);
    const wire = t % 8;
    const hit = byNo.get(no);
    if (!hit) {
      r.skip(wire);
      continue;
    }
    const [name, f] = hit;
    let v: unknown;
    switch (f.kind) {
      case 'string':
        v = r.bytes().toString('utf8');
        break;
      case 'bytes':
        v = r.bytes();
        break;
      case 'int64':
      case 'enum':
        v = r.varint();
        break;
      case 'bool':
        v = r.varint() !== 0;
        break;
      case 'map': {
        const e = decode<{ key: string; value: string }>(MAP_ENTRY, r.bytes());
        (out[name] as Record<string, string>)[e.key] = e.value;
        continue;
      }
      default:
        v = decode(f.kind, r.bytes());
    }
    if (f.repeated) (out[name] as unknown[]).push(v);
    else out[name] = v;
  }
  return out as T;
}

// ---- containerd's messages ----

const MAP_ENTRY: Schema = { key: { no: 1, kind: 'string' }, value: { no: 2, kind: 'string' } };
const Timestamp: Schema = { seconds: { no: 1, kind: 'int64' }, nanos: { no: 2, kind: 'int64' } };
const Empty: Schema = {};
const FieldMask: Schema = { paths: { no: 1, kind: 'string', repeated: true } };

/** containerd.types.Descriptor */
export const Descriptor: Schema = {
  mediaType: { no: 1, kind: 'string' },
  digest: { no: 2, kind: 'string' },
  size: { no: 3, kind: 'int64' },
  annotations: { no: 5, kind: 'map' },
};

const Info: Schema = { digest: { no: 1, kind: 'string' }, size: { no: 2, kind: 'int64' }, createdAt: { no: 3, kind: Timestamp }, updatedAt: { no: 4, kind: Timestamp }, labels: { no: 5, kind: 'map' } };

export const Content = {
  Info,
  InfoResponse: { info: { no: 1, kind: Info } } as Schema,
  UpdateRequest: { info: { no: 1, kind: Info }, updateMask: { no: 2, kind: FieldMask } } as Schema,
  UpdateResponse: { info: { no: 1, kind: Info } } as Schema,
  InfoRequest: { digest: { no: 1, kind: 'string' } } as Schema,
  ReadContentRequest: { digest: { no: 1, kind: 'string' }, offset: { no: 2, kind: 'int64' }, size: { no: 3, kind: 'int64' } } as Schema,
  ReadContentResponse: { offset: { no: 1, kind: 'int64' }, data: { no: 2, kind: 'bytes' } } as Schema,
  WriteContentRequest: {
    action: { no: 1, kind: 'enum' },
    ref: { no: 2, kind: 'string' },
    total: { no: 3, kind: 'int64' },
    expected: { no: 4, kind: 'string' },
    offset: { no: 5, kind: 'int64' },
    data: { no: 6, kind: 'bytes' },
    labels: { no: 7, kind: 'map' },
  } as Schema,
  WriteContentResponse: {
    action: { no: 1, kind: 'enum' },
    startedAt: { no: 2, kind: Timestamp },
    updatedAt: { no: 3, kind: Timestamp },
    offset: { no: 4, kind: 'int64' },
    total: { no: 5, kind: 'int64' },
    digest: { no: 6, kind: 'string' },
  } as Schema,
  AbortRequest: { ref: { no: 1, kind: 'string' } } as Schema,
};

/** WriteAction of the content service. */
export const WriteAction = { STAT: 0, WRITE: 1, COMMIT: 2 } as const;

const Image: Schema = {
  name: { no: 1, kind: 'string' },
  labels: { no: 2, kind: 'map' },
  target: { no: 3, kind: Descriptor },
  createdAt: { no: 7, kind: Timestamp },
  updatedAt: { no: 8, kind: Timestamp },
};

export const Images = {
  Image,
  GetImageRequest: { name: { no: 1, kind: 'string' } } as Schema,
  ImageResponse: { image: { no: 1, kind: Image } } as Schema,
  CreateImageRequest: { image: { no: 1, kind: Image } } as Schema,
  UpdateImageRequest: { image: { no: 1, kind: Image }, updateMask: { no: 2, kind: FieldMask } } as Schema,
  ListImagesRequest: { filters: { no: 1, kind: 'string', repeated: true } } as Schema,
  ListImagesResponse: { images: { no: 1, kind: Image, repeated: true } } as Schema,
  DeleteImageRequest: { name: { no: 1, kind: 'string' }, sync: { no: 2, kind: 'bool' } } as Schema,
};

const Lease: Schema = { id: { no: 1, kind: 'string' }, createdAt: { no: 2, kind: Timestamp }, labels: { no: 3, kind: 'map' } };
export const Leases = {
  CreateRequest: { id: { no: 1, kind: 'string' }, labels: { no: 3, kind: 'map' } } as Schema,
  CreateResponse: { lease: { no: 1, kind: Lease } } as Schema,
  DeleteRequest: { id: { no: 1, kind: 'string' }, sync: { no: 2, kind: 'bool' } } as Schema,
};

export const Version = {
  Empty,
  VersionResponse: { version: { no: 1, kind: 'string' }, revision: { no: 2, kind: 'string' } } as Schema,
};

/** containerd.types.Mount */
const Mount: Schema = { type: { no: 1, kind: 'string' }, source: { no: 2, kind: 'string' }, target: { no: 3, kind: 'string' }, options: { no: 4, kind: 'string', repeated: true } };

export const Snapshots = {
  PrepareSnapshotRequest: { snapshotter: { no: 1, kind: 'string' }, key: { no: 2, kind: 'string' }, parent: { no: 3, kind: 'string' }, labels: { no: 4, kind: 'map' } } as Schema,
  PrepareSnapshotResponse: { mounts: { no: 1, kind: Mount, repeated: true } } as Schema,
  CommitSnapshotRequest: { snapshotter: { no: 1, kind: 'string' }, name: { no: 2, kind: 'string' }, key: { no: 3, kind: 'string' }, labels: { no: 4, kind: 'map' } } as Schema,
  StatSnapshotRequest: { snapshotter: { no: 1, kind: 'string' }, key: { no: 2, kind: 'string' } } as Schema,
  StatSnapshotResponse: { info: { no: 1, kind: { name: { no: 1, kind: 'string' }, parent: { no: 2, kind: 'string' }, kind: { no: 3, kind: 'enum' }, labels: { no: 6, kind: 'map' } } } } as Schema,
  RemoveSnapshotRequest: { snapshotter: { no: 1, kind: 'string' }, key: { no: 2, kind: 'string' } } as Schema,
};

export const Diff = {
  ApplyRequest: { diff: { no: 1, kind: Descriptor }, mounts: { no: 2, kind: Mount, repeated: true } } as Schema,
  ApplyResponse: { applied: { no: 1, kind: Descriptor } } as Schema,
};
