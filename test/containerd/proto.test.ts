/**
 * berth's protobuf codec for containerd's messages against protobufjs (the encoder grpc-js
 * ships with) as an independent peer: what one writes the other reads, field for field.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { chainIds } from '../../src/containerd/unpack.js';
import { Content, decode, encode, Images } from '../../src/containerd/proto.js';
import { sha256 } from '../../src/oci/digest.js';

// The same messages as containerd's .proto files declare them, for protobufjs.
const root = protobuf.parse(`
syntax = "proto3";
package t;
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Descriptor { string media_type = 1; string digest = 2; int64 size = 3; map<string, string> annotations = 5; }
message Image { string name = 1; map<string, string> labels = 2; Descriptor target = 3; Timestamp created_at = 7; Timestamp updated_at = 8; }
message FieldMask { repeated string paths = 1; }
message UpdateImageRequest { Image image = 1; FieldMask update_mask = 2; }
message WriteContentRequest { int32 action = 1; string ref = 2; int64 total = 3; string expected = 4; int64 offset = 5; bytes data = 6; map<string, string> labels = 7; }
message WriteContentResponse { int32 action = 1; Timestamp started_at = 2; Timestamp updated_at = 3; int64 offset = 4; int64 total = 5; string digest = 6; }
`).root;

describe('protobuf codec', () => {
  it('writes what protobufjs reads (sizes past 2^32, maps, nested messages, bytes)', () => {
    const req = { action: 1, ref: 'berth-sha256:ab', total: 5 * 2 ** 32 + 7, expected: 'sha256:ab', offset: 3 * 2 ** 31, data: Buffer.from('hello'), labels: { a: '1', 'containerd.io/gc.ref.content.l.0': 'sha256:cd' } };
    const T = root.lookupType('t.WriteContentRequest');
    const got = T.toObject(T.decode(encode(Content.WriteContentRequest, req)), { longs: Number, bytes: Buffer }) as Record<string, unknown>;
    expect(got).toEqual({ ...req, data: Buffer.from('hello') });

    const upd = { image: { name: 'docker.io/library/x:1', labels: { k: 'v' }, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:ef', size: 1234, annotations: {} } }, updateMask: { paths: ['target', 'labels.k'] } };
    const U = root.lookupType('t.UpdateImageRequest');
    const u = U.toObject(U.decode(encode(Images.UpdateImageRequest, upd)), { longs: Number }) as { image: { name: string; labels: object; target: { mediaType: string; size: number } }; updateMask: { paths: string[] } };
    expect(u.image.name).toBe(upd.image.name);
    expect(u.image.labels).toEqual({ k: 'v' });
    expect(u.image.target.size).toBe(1234);
    expect(u.image.target.mediaType).toBe(upd.image.target.mediaType);
    expect(u.updateMask.paths).toEqual(['target', 'labels.k']);
  });

  it('reads what protobufjs writes, skipping fields it does not know', () => {
    const R = root.lookupType('t.WriteContentResponse');
    const bytes = Buffer.from(R.encode(R.fromObject({ action: 2, startedAt: { seconds: 1_700_000_000, nanos: 5 }, offset: 2 ** 40 + 1, total: 2 ** 40 + 1, digest: 'sha256:00' })).finish());
    const r = decode<{ action: number; offset: number; total: number; digest: string }>(Content.WriteContentResponse, bytes);
    expect(r).toMatchObject({ action: 2, offset: 2 ** 40 + 1, total: 2 ** 40 + 1, digest: 'sha256:00' });
    // A message with more fields than berth's schema (an Image read as GetImageRequest).
    const I = root.lookupType('t.Image');
    const img = Buffer.from(I.encode(I.fromObject({ name: 'n', labels: { a: 'b' }, createdAt: { seconds: 9 } })).finish());
    expect(decode(Images.GetImageRequest, img)).toEqual({ name: 'n' });
    expect(() => decode(Images.GetImageRequest, img.subarray(0, img.length - 1))).toThrow();
  });

  it('chain ids follow the image spec', () => {
    const a = sha256('a');
    const b = sha256('b');
    const c = sha256('c');
    const ab = sha256(`${a} ${b}`);
    expect(chainIds([a, b, c])).toEqual([a, ab, sha256(`${ab} ${c}`)]);
  });
});
