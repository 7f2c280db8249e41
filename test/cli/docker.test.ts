/**
 * What a docker user does in the first hour (issue #9): untagged images, image ids, docker's
 * --format, true sizes, rmi/prune reports, help. Through the built CLI, on a real store, runc.
 */
import { execFileSync } from 'node:child_process';
import { linkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { size } from '../../src/cli/format.js';
import { canonicalJson } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import type { Manifest } from '../../src/oci/types.js';
import { ContentStore } from '../../src/store/store.js';
import { busyboxRootfs } from '../fixtures/busybox-image.js';
import { randomImage, runBerth, snapshotTree, testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;
const lines = (s: string) => s.trim().split('\n').filter(Boolean);

/** A busybox rootfs tarball with a hard-linked 1 MiB file (three names, one inode). */
async function rootfsTar(dir: string): Promise<string> {
  const fs = join(dir, 'fs');
  await mkdir(fs);
  busyboxRootfs(fs);
  writeFileSync(join(fs, 'big'), Buffer.alloc(1 << 20, 7));
  linkSync(join(fs, 'big'), join(fs, 'big2'));
  linkSync(join(fs, 'big'), join(fs, 'big3'));
  const tar = join(dir, 'root.tar');
  execFileSync('tar', ['-C', fs, '--numeric-owner', '-cf', tar, '.']);
  return tar;
}

function du(path: string): number {
  return Number(execFileSync('du', ['-sxB1', path], { encoding: 'utf8' }).split('\t')[0]);
}

describe('docker habits', () => {
  it('an untagged import is an image: listed as <none>, found by id (short, full, sha256:) and digest, removed by id', async () => {
    const root = await testdir();
    const d = await testdir();
    const tar = join(d, 'root.tar');
    writeFileSync(tar, execFileSync('tar', ['-C', join(import.meta.dirname, '..'), '-cf', '-', 'kit']));
    const imp = await runBerth(['import', '-c', 'LABEL k=v', tar], { root });
    expect(imp.code, imp.stderr).toBe(0);
    const id = imp.stdout.trim();
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);
    const hex = id.slice(7);
    let r = await runBerth(['images'], { root });
    expect(r.stdout).toMatch(new RegExp(`^<none>\\s+<none>\\s+${hex.slice(0, 12)}\\s`, 'm'));
    expect(lines((await runBerth(['images', '-a', '-q'], { root })).stdout)).toEqual([hex.slice(0, 12)]);
    expect(lines((await runBerth(['images', '-f', 'dangling=true', '--format', '{{.ID}}'], { root })).stdout)).toEqual([hex.slice(0, 12)]);
    expect((await runBerth(['images', '-f', 'dangling=false', '-q'], { root })).stdout).toBe('');
    for (const input of [hex.slice(0, 12), hex, id, hex.slice(0, 6)]) {
      r = await runBerth(['inspect', '-f', '{{.Id}} {{index .Config.Labels "k"}} {{json .RepoTags}}', input], { root });
      expect(r.stdout, `${input}: ${r.stderr}`).toBe(`${id} v []\n`);
    }
    const manifest = (await runBerth(['inspect', '-f', '{{.Digest}}', hex], { root })).stdout.trim();
    expect((await runBerth(['inspect', '-f', '{{.Id}}', manifest], { root })).stdout.trim()).toBe(id);
    expect((await runBerth(['history', '-q', hex.slice(0, 12)], { root })).stdout.trim()).toBe(hex.slice(0, 12));
    // tagging by id names it; the untagged row goes
    expect((await runBerth(['tag', hex.slice(0, 12), 'named:1'], { root })).code).toBe(0);
    expect(lines((await runBerth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { root })).stdout)).toEqual([`named:1 ${hex.slice(0, 12)}`]);
    expect((await runBerth(['rmi', 'named:1'], { root })).stdout).toMatch(new RegExp(`^Untagged: docker.io/library/named:1\\nDeleted: ${id}\\n`));
    expect((await runBerth(['images', '-q'], { root })).stdout).toBe('');
    // by id, untagged
    const again = (await runBerth(['import', tar], { root })).stdout.trim();
    r = await runBerth(['rmi', again.slice(7, 19)], { root });
    expect(r.stdout, r.stderr).toMatch(new RegExp(`^Deleted: ${again}\\n`));
    expect(await readdir(join(root, 'content', 'blobs', 'sha256'))).toEqual([]);
  });

  it('an id is never pulled: run with a missing id answers "no such image" without a registry', async () => {
    const root = await testdir();
    const hex = 'ab'.repeat(32);
    for (const input of [hex, `sha256:${hex}`, hex.slice(0, 12)]) {
      const r = await runBerth(['run', '--rm', input, 'true'], { root, timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/^berth: no such image: /m);
      expect(r.stderr).not.toMatch(/docker\.io|registry|resolv/i);
    }
  });

  it('a loaded archive without names is an untagged image too', async () => {
    const a = await testdir();
    const img = await randomImage(await ContentStore.open(a), { name: 'saved:1', layers: 1 });
    const out = join(await testdir(), 'x.tar');
    // saved by id: the archive carries no name
    expect((await runBerth(['save', '-o', out, img.manifest.config.digest.slice(7, 19)], { root: a })).code).toBe(0);
    const b = await testdir();
    const r = await runBerth(['load', '-i', out], { root: b });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`Loaded image ID: ${img.manifest.config.digest}\n`);
    expect(lines((await runBerth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', '--no-trunc'], { root: b })).stdout)).toEqual([`<none>:<none> ${img.manifest.config.digest}`]);
    // it survives a prune? no: untagged images are what `image prune` removes, as in docker
    expect((await runBerth(['image', 'prune'], { root: b })).stdout).toContain(`Deleted image: ${img.manifest.config.digest}`);
    expect((await runBerth(['images', '-q'], { root: b })).stdout).toBe('');
  });

  it('one image id, one answer: two manifests of one config (plain and gzip layers)', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const img = await randomImage(store, { name: 'cmp:1', layers: 2, gzip: false });
    // The same image with gzip layers: another manifest, the same config (as a second archive gives).
    const layers = [];
    for (const l of img.layers) {
      const c = await store.putBytes(gzipSync(l.tar));
      layers.push({ mediaType: MediaType.OCI_LAYER_GZIP, digest: c.digest, size: c.size });
    }
    const m: Manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: img.manifest.config, layers };
    const mc = await store.putBytes(canonicalJson(m));
    // an untagged index.json entry, as a load of an archive without names leaves it
    await store.updateIndex((ms) => void ms.push({ mediaType: MediaType.OCI_MANIFEST, digest: mc.digest, size: mc.size }));
    const id = img.manifest.config.digest;
    const rows = lines((await runBerth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}'], { root })).stdout).sort();
    expect(rows).toEqual([`<none>:<none> ${id.slice(7, 19)} ${mc.digest}`, `cmp:1 ${id.slice(7, 19)} ${img.root.digest}`].sort());
    // the full id is not "ambiguous": the tagged manifest answers
    for (const input of [id, id.slice(7), id.slice(7, 19)]) {
      const r = await runBerth(['inspect', '-f', '{{.Digest}} {{json .RepoTags}}', input], { root });
      expect(r.stdout, r.stderr).toBe(`${img.root.digest} ["cmp:1"]\n`);
    }
    // a manifest digest names that manifest
    expect((await runBerth(['inspect', '-f', '{{.Digest}} {{.Id}}', mc.digest], { root })).stdout).toBe(`${mc.digest} ${id}\n`);
    // rmi by id acts on both (here after a copy of the store: by name below)
    const copy = await testdir();
    execFileSync('cp', ['-a', `${root}/.`, copy]);
    let r = await runBerth(['rmi', id.slice(7, 19)], { root: copy });
    expect(r.stdout, r.stderr).toMatch(new RegExp(`^Untagged: docker.io/library/cmp:1\\nDeleted: ${id}\\n`));
    expect(r.stdout).toContain(`Deleted: ${mc.digest}`);
    expect(r.stdout).toContain(`Deleted: ${img.root.digest}`);
    expect(await readdir(join(copy, 'content', 'blobs', 'sha256'))).toEqual([]);
    // by name: the tag and its manifest go; the id lives on in the other manifest
    r = await runBerth(['rmi', 'cmp:1'], { root });
    expect(r.stdout, r.stderr).toMatch(new RegExp(`^Untagged: docker.io/library/cmp:1\\n`));
    expect(r.stdout).toContain(`Deleted: ${img.root.digest}`);
    expect(r.stdout).not.toContain(`Deleted: ${id}`);
    expect(lines((await runBerth(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { root })).stdout)).toEqual([`<none>:<none> ${id.slice(7, 19)}`]);
    r = await runBerth(['rmi', id], { root });
    expect(r.stdout, r.stderr).toMatch(new RegExp(`^Deleted: ${id}\\n`));
    expect((await store.readIndex()).manifests).toEqual([]);
    expect(await store.listBlobs()).toEqual([]);
  });

  it('docker --format on images, history, system df, info; inspect has docker keys; SIZE is unpacked', async () => {
    const root = await testdir();
    const d = await testdir();
    const plain = execFileSync('tar', ['-C', join(import.meta.dirname, '..'), '--exclude=buildkit-samples', '-cf', '-', 'kit', 'fixtures'], { maxBuffer: 256 << 20 });
    writeFileSync(join(d, 'r.tar.gz'), gzipSync(plain));
    const imp = await runBerth(['import', '-c', 'CMD ["sh","-c","echo hi"]', '-c', 'ENV A=1', join(d, 'r.tar.gz'), 'fmt:1'], { root });
    expect(imp.code, imp.stderr).toBe(0);
    let r = await runBerth(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}\\t{{.ContentSize}}'], { root });
    const gz = (await stat(join(d, 'r.tar.gz'))).size;
    expect(lines(r.stdout)).toEqual([
      expect.stringMatching(/^REPOSITORY\s+TAG\s+SIZE\s+CONTENT SIZE$/),
      expect.stringMatching(new RegExp(`^fmt\\s+1\\s+${size(plain.length).replace('.', '\\.')}\\s+`)),
    ]);
    expect(size(plain.length)).not.toBe(size(gz));
    r = await runBerth(['images', '--format', 'json'], { root });
    expect(Object.keys(JSON.parse(r.stdout))).toEqual(expect.arrayContaining(['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']));
    r = await runBerth(['inspect', 'fmt:1'], { root });
    const [i] = JSON.parse(r.stdout);
    expect(i).toMatchObject({ RepoTags: ['fmt:1'], Os: 'linux', Size: plain.length, RootFS: { Type: 'layers' }, Config: { Cmd: ['sh', '-c', 'echo hi'], Env: ['A=1'] } });
    expect(i.Id).toMatch(/^sha256:/);
    expect(i.RepoDigests).toEqual([`fmt@${i.Digest}`]);
    r = await runBerth(['inspect', '--format', '{{json .Config.Cmd}} {{range .Config.Env}}{{.}};{{end}} {{.Architecture}}', 'fmt:1'], { root });
    expect(r.stdout).toMatch(/^\["sh","-c","echo hi"\] A=1; \w+\n$/);
    r = await runBerth(['history', '--format', '{{.CreatedBy}}|{{.Size}}', 'fmt:1'], { root });
    expect(r.stdout).toBe(`berth import|${size(plain.length)}\n`);
    r = await runBerth(['system', 'df', '--format', '{{.Type}}={{.TotalCount}}'], { root });
    expect(lines(r.stdout)[0]).toBe('Images=1');
    r = await runBerth(['info', '-f', '{{.Images}} {{.DockerRootDir}}'], { root });
    expect(r.stdout).toBe(`1 ${root}\n`);
  });

  it.runIf(isRoot)('run by id; ps shows familiar names and -s sizes; container inspect -f', async () => {
    const root = await testdir();
    const d = await testdir();
    const tar = await rootfsTar(d);
    const id = (await runBerth(['import', tar], { root })).stdout.trim();
    const r = await runBerth(['run', '--rm', id.slice(7, 19), 'sh', '-c', 'echo by-id'], { root });
    expect(r.stdout, r.stderr).toBe('by-id\n');
    expect((await runBerth(['tag', id, 'deb12:minbase'], { root })).code).toBe(0);
    const run = await runBerth(['run', '-d', '--name', 'sz', 'deb12:minbase', 'sh', '-c', 'head -c 300000 /dev/zero > /tmp/f; sleep 30'], { root });
    expect(run.code, run.stderr).toBe(0);
    try {
      let ps = '';
      for (let i = 0; i < 50 && !/ 3\d\dkB \(virtual/.test(ps); i++) {
        ps = (await runBerth(['ps', '-s'], { root })).stdout;
        await new Promise((res) => setTimeout(res, 100));
      }
      expect(ps).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES\s+SIZE$/m);
      expect(ps).toMatch(/\sdeb12:minbase\s/);
      expect(ps).not.toContain('docker.io/library');
      expect(ps).toMatch(/ 3\d\dkB \(virtual \d/);
      expect((await runBerth(['ps', '--format', '{{.Names}} {{.Image}} {{.State}}'], { root })).stdout).toBe('sz deb12:minbase running\n');
      expect((await runBerth(['container', 'inspect', '-f', '{{.State.Status}} {{.Name}}', 'sz'], { root })).stdout).toBe('running /sz\n');
    } finally {
      expect((await runBerth(['rm', '-f', 'sz'], { root })).code).toBe(0);
    }
  });

  it.runIf(isRoot)('system df agrees with du (hard links once); rmi deletes; system prune reports what it reclaimed', async () => {
    const root = await testdir();
    const d = await testdir();
    const tar = await rootfsTar(d);
    expect((await runBerth(['import', tar, 'deb12:minbase'], { root })).code).toBe(0);
    const id = (await runBerth(['inspect', '-f', '{{.Id}}', 'deb12:minbase'], { root })).stdout.trim();
    // a run unpacks the layer into a snapshot
    let r = await runBerth(['run', '--rm', 'deb12:minbase', 'true'], { root });
    expect(r.code, r.stderr).toBe(0);
    // df: snapshots as du counts them (the three hard-linked names are one 1 MiB inode)
    const df = JSON.parse((await runBerth(['system', 'df', '--format', 'json'], { root })).stdout);
    expect(df.snapshots.size).toBe(du(join(root, 'snapshots')));
    expect(df.containers.size).toBe(du(join(root, 'containers')));
    expect(df.snapshots.size).toBeLessThan(2 * (1 << 20) + 4 * (await stat('/bin/busybox')).size);
    expect(await readdir(join(root, 'content', 'blobs', 'sha256'))).toHaveLength(3);
    // rmi: the last name goes, the image and its blobs with it, in docker's words
    r = await runBerth(['rmi', 'deb12:minbase'], { root });
    expect(r.stdout).toMatch(new RegExp(`^Untagged: docker.io/library/deb12:minbase\\nDeleted: ${id}\\n`));
    expect(await readdir(join(root, 'content', 'blobs', 'sha256'))).toEqual([]);
    // system prune removes the unpacked layer and says how much that was
    const before = du(join(root, 'snapshots'));
    r = await runBerth(['system', 'prune'], { root });
    const after = du(join(root, 'snapshots'));
    expect(r.stdout).toMatch(/^Deleted snapshot: sha256:/m);
    expect(before - after).toBeGreaterThan(1 << 20);
    expect(r.stdout).toContain(`Total reclaimed space: ${size(before - after)}\n`);
  });

  it('bare berth prints the help and exits 0; the help lists the verbs that exist (build, copy)', async () => {
    const r = await runBerth([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: berth/m);
    expect(r.stdout).toMatch(/berth images/);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^  berth build /m);
    expect(r.stdout).toMatch(/^  berth copy /m);
    const h = await runBerth(['--help']);
    expect(h.stdout).toBe(r.stdout);
  });

  it('bad --format and filters: one line, exit 2, store unchanged', async () => {
    const root = await testdir();
    await randomImage(await ContentStore.open(root), { name: 'x:1', layers: 1 });
    const before = await snapshotTree(join(root, 'content'));
    for (const args of [['images', '--format', '{{.ID'], ['images', '-f', 'nope=1'], ['inspect', '-f', '{{if .Id}}', 'x:1'], ['rmi', 'abcd']]) {
      const r = await runBerth(args, { root });
      expect(r.code, args.join(' ')).toBe(args[0] === 'rmi' ? 3 : 2);
      expect(lines(r.stderr)).toHaveLength(1);
    }
    expect(await snapshotTree(join(root, 'content'))).toEqual(before);
  });
});
