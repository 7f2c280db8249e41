import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CAPS,
  buildSpec,
  capMask,
  computeCaps,
  mergeEnv,
  parseBytes,
  parseEnvFile,
  parseTmpfs,
  parseVolume,
  processArgs,
  resolveUser,
} from '../../src/run/spec.js';
import { Runc, parseRuncVersion, runcHasSecurityFixes, startError } from '../../src/run/runc.js';
import { RUN_FLAGS, runOptions, runSplit } from '../../src/cli/commands/run.js';
import { parseDockerArgs } from '../../src/cli/dockerflags.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n';
const GROUP = 'root:x:0:\nwheel:x:10:app\napp:x:1000:\naudio:x:29:app,other\n';

describe('runtime spec', () => {
  it("docker's default capabilities are CapEff 0xa80425fb", () => {
    expect(DEFAULT_CAPS).toHaveLength(14);
    expect(capMask(DEFAULT_CAPS).toString(16)).toBe('a80425fb');
  });

  it('cap-add/cap-drop follow docker, ALL included', () => {
    expect(computeCaps({ capDrop: ['chown'] })).not.toContain('CAP_CHOWN');
    expect(computeCaps({ capAdd: ['SYS_ADMIN'] })).toContain('CAP_SYS_ADMIN');
    expect(computeCaps({ capDrop: ['ALL'], capAdd: ['net_bind_service'] })).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(computeCaps({ capAdd: ['ALL'], capDrop: ['CAP_SYS_ADMIN'] })).not.toContain('CAP_SYS_ADMIN');
    expect(computeCaps({ capAdd: ['ALL'] }).length).toBeGreaterThan(38);
    expect(() => computeCaps({ capAdd: ['NOPE'] })).toThrow(/unknown capability/);
  });

  it('resolves users by name with supplementary groups, and numeric ones', () => {
    expect(resolveUser('app', PASSWD, GROUP)).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29], home: '/home/app', name: 'app' });
    expect(resolveUser('app:audio', PASSWD, GROUP)).toMatchObject({ uid: 1000, gid: 29, additionalGids: [] });
    expect(resolveUser('4242:7', PASSWD, GROUP)).toMatchObject({ uid: 4242, gid: 7, home: '/' });
    expect(resolveUser(undefined, PASSWD, GROUP)).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    expect(() => resolveUser('nobody', PASSWD, GROUP)).toThrow(/unable to find user nobody/);
    expect(() => resolveUser('app:nogroup', PASSWD, GROUP)).toThrow(/unable to find group/);
  });

  it('entrypoint and cmd follow docker', () => {
    const cfg = { Entrypoint: ['/ep'], Cmd: ['a', 'b'] };
    expect(processArgs(cfg, {})).toEqual(['/ep', 'a', 'b']);
    expect(processArgs(cfg, { cmd: ['x'] })).toEqual(['/ep', 'x']);
    expect(processArgs(cfg, { entrypoint: 'sh' })).toEqual(['sh']);
    expect(processArgs(cfg, { entrypoint: '', cmd: ['ls'] })).toEqual(['ls']);
    expect(() => processArgs({}, {})).toThrow(/no command/);
  });

  it('parses mount, tmpfs, memory and env specs, rejecting bad ones', () => {
    expect(parseVolume('/a:/b:ro')).toEqual({ source: '/a', destination: '/b', readonly: true });
    expect(parseVolume('/a/../c:/b')).toEqual({ source: '/c', destination: '/b', readonly: false });
    for (const bad of ['vol:/b', '/a', '/a:b', '/a:/b:rx', '/a:/', ':/b']) expect(() => parseVolume(bad), bad).toThrow(/invalid mount spec/);
    expect(parseTmpfs('/run:size=1m')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=1m'] });
    expect(() => parseTmpfs('run')).toThrow(/invalid tmpfs/);
    expect(parseBytes('512m')).toBe(512 * 1024 * 1024);
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(() => parseBytes('lots')).toThrow(/invalid --memory/);
    expect(mergeEnv(['A=1', 'B=2'], ['A=3'])).toEqual(['A=3', 'B=2']);
    expect(parseEnvFile('# c\nX=1\n\nY=two words\nUNSET_VAR_XYZ\n', {})).toEqual(['X=1', 'Y=two words']);
  });

  it('builds a docker-like config.json', () => {
    const user = resolveUser('app', PASSWD, GROUP);
    const s = buildSpec({ args: ['sh'], env: ['PATH=/bin'], cwd: '/w', user, hostname: 'h1', memory: 64 << 20, cpus: 1.5, pidsLimit: 50, binds: [parseVolume('/x:/y:ro')], tmpfs: [parseTmpfs('/t')], files: { hosts: '/c/hosts' }, readOnly: true });
    expect(s.process.capabilities!.inheritable).toEqual([]);
    expect(s.process.capabilities!.ambient).toEqual([]);
    expect(s.process.capabilities!.effective).toEqual([...DEFAULT_CAPS]);
    expect(s.process.user).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29] });
    expect(s.process.env).toContain('HOME=/home/app');
    expect(s.process.noNewPrivileges).toBe(false);
    expect(s.process.rlimits).toEqual([{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
    expect(s.root).toEqual({ path: 'rootfs', readonly: true });
    expect(s.mounts.map((m) => m.destination)).toEqual(['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm', '/etc/hosts', '/t', '/y']);
    expect(s.mounts.find((m) => m.destination === '/dev/shm')!.options).toContain('size=67108864');
    expect(s.mounts.find((m) => m.destination === '/y')!.options).toContain('ro');
    expect(s.linux.namespaces.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'network']);
    expect(s.linux.maskedPaths).toContain('/proc/kcore');
    expect(s.linux.readonlyPaths).toContain('/proc/sys');
    expect(s.linux.resources!.devices![0]).toEqual({ allow: false, access: 'rwm' });
    expect(s.linux.resources!.memory).toEqual({ limit: 64 << 20 });
    expect(s.linux.resources!.cpu).toEqual({ period: 100000, quota: 150000 });
    expect(s.linux.resources!.pids).toEqual({ limit: 50 });
    const host = buildSpec({ args: ['sh'], env: [], cwd: '/', user, hostname: 'h', network: 'host', privileged: true });
    expect(host.linux.namespaces.map((n) => n.type)).not.toContain('network');
    expect(host.linux.maskedPaths).toBeUndefined();
    expect(host.process.capabilities!.bounding.length).toBeGreaterThan(38);
    expect(() => buildSpec({ args: ['sh'], env: [], cwd: 'rel', user, hostname: 'h' })).toThrow(/absolute/);
  });
});

describe('runc wrapper', () => {
  it('parses the version and warns before the 2025 fixes', () => {
    const v = parseRuncVersion('runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n');
    expect(v.version).toBe('1.1.5+ds1');
    expect(v.warning).toMatch(/predates the 2025 security fixes/);
    for (const ok of ['1.2.8', '1.2.9', '1.3.3', '1.4.0-rc.2', '1.4.0', '1.4.1', '2.0.0']) expect(runcHasSecurityFixes(ok), ok).toBe(true);
    for (const old of ['1.1.15', '1.2.7', '1.3.2', '1.4.0-rc.1', '1.0.0']) expect(runcHasSecurityFixes(old), old).toBe(false);
  });

  it('reports a missing runc as UNAVAILABLE with how to install it', async () => {
    const r = new Runc({ root: '/nonexistent-berth-runc-root', binary: '/nonexistent/runc' });
    await expect(r.version()).rejects.toMatchObject({ code: 'UNAVAILABLE', hint: 'install it: apt-get install runc' });
    await expect(r.list()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(r.globalArgs()).toEqual(['--root', '/nonexistent-berth-runc-root']);
  });

  it('maps start failures to 127 and 126 like docker', () => {
    expect(startError('runc run failed: unable to start container process: exec: "nope": executable file not found in $PATH', ['nope']).exitCode).toBe(127);
    expect(startError('runc run failed: unable to start container process: exec: "/etc/passwd": permission denied', ['/etc/passwd']).exitCode).toBe(126);
    expect(startError('something else').exitCode).toBe(9);
  });
});

describe('docker-style argv', () => {
  it('stops at the image and keeps the command verbatim', () => {
    const r = parseDockerArgs(['--rm', '-it', '-e', 'A=1', '-eB=2', '--name=x', '--root', '/r', '--net', 'none', 'img', 'sh', '-c', 'echo --rm', '--root', '/x'], RUN_FLAGS, 1, 'run');
    expect(r.flags).toMatchObject({ rm: true, interactive: true, tty: true, env: ['A=1', 'B=2'], name: 'x', root: '/r', network: 'none' });
    expect(r.positionals).toEqual(['img']);
    expect(r.rest).toEqual(['sh', '-c', 'echo --rm', '--root', '/x']);
    expect(r.consumed).toBe(11);
    expect(runSplit(['-v', '/a:/b', 'img', '-v']).consumed).toBe(3);
    expect(runSplit(['--', 'img', '--rm']).consumed).toBe(2);
    expect(() => runSplit(['--rm'])).toThrow(/requires at least 1 argument: IMAGE/);
    expect(() => runSplit(['-e'])).toThrow(/flag needs an argument: --env/);
    expect(() => parseDockerArgs(['--bogus', 'img'], RUN_FLAGS, 1, 'run')).toThrow(/unknown flag/);
  });

  it('maps run flags to the facade\'s options as docker does', () => {
    const r = runOptions({ rm: true, env: ['A=1', 'HOME_X'], 'env-file': 'e.list', memory: '512m', cpus: '1.5', 'pids-limit': '-1', network: 'none', detach: true, tty: true, interactive: true }, { stdinIsTTY: false });
    expect(r.options).toMatchObject({ rm: true, env: ['A=1', 'HOME_X'], envFiles: ['e.list'], memory: '512m', cpus: 1.5, pidsLimit: -1, network: 'none', tty: false, stdin: 'inherit', pull: 'missing' });
    expect(r.detach).toBe(true);
    expect(r.warnings).toHaveLength(1);
    expect(runOptions({ network: 'bridge' }, { stdinIsTTY: false }).options.network).toBe('private');
    expect(() => runOptions({ tty: true }, { stdinIsTTY: false })).toThrow(/not a TTY/);
    expect(() => runOptions({ cpus: 'x' }, { stdinIsTTY: false })).toThrow(/invalid --cpus/);
    expect(() => runOptions({ network: 'bridge0' }, { stdinIsTTY: false })).toThrow(/unsupported --network/);
    expect(() => runOptions({ pull: 'sometimes' }, { stdinIsTTY: false })).toThrow(/invalid --pull/);
  });
});
